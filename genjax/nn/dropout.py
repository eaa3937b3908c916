"""Dropout in few kernels on the CPU, its masks from a quarter of the hashes flax's take.

On the CPU, JAX lowers the Threefry-2x32 hash behind jax.random as a rolled loop of five
iterations (it compiles faster), so each random array costs about twenty kernels and its
intermediate 32-bit arrays are written to memory and read back: a Transformer step's dropout
masks (nine of batch x context x width) cost 1,700 kernels and 1.7 GB of memory traffic. The
same hash written out here, round by round (`threefry_bits` gives jax.random.bits' numbers; a
test checks it), is one elementwise computation XLA can fuse.

flax's nn.Dropout hashes one counter per element and keeps 23 of its 64 bits. Here one hash
gives four elements their 16 bits each (the hash's two 32-bit words, halved): a quarter of the
hashing, which was an eighth of the Transformer's step. 16 bits set the keep probability to
within 1/65,536 of the asked one (docs/results.md has the speeds).
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))


def _rotl(x, r: int):
  return (x << np.uint32(r)) | (x >> np.uint32(32 - r))


def threefry2x32(k1, k2, x1, x2):
  """The Threefry-2x32 hash (20 rounds, Salmon et al. 2011) of counters (x1, x2) under key
  (k1, k2), unrolled: uint32 arrays in, two uint32 arrays out."""
  ks = (k1, k2, k1 ^ k2 ^ np.uint32(0x1BD11BDA))
  x = [x1 + ks[0], x2 + ks[1]]
  for block in range(5):
    for r in _ROTATIONS[block % 2]:
      x[0] = x[0] + x[1]
      x[1] = x[0] ^ _rotl(x[1], r)
    x = [x[0] + ks[(block + 1) % 3], x[1] + ks[(block + 2) % 3] + np.uint32(block + 1)]
  return x


def threefry_bits(key, shape) -> jnp.ndarray:
  """jax.random.bits(key, shape) (uint32). For a threefry key under JAX's partitionable
  scheme (jax_threefry_partitionable, the default) computed here: the hash of each element's
  index, its two halves XORed; for any other key, by jax.random.bits."""
  if (not jax.config.jax_threefry_partitionable
      or not jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
      or str(jax.random.key_impl(key)) != "threefry2x32"):
    return jax.random.bits(key, shape)  # another scheme: JAX's own (no faster)
  k1, k2 = jax.random.key_data(key)
  index = jnp.arange(int(np.prod(shape)), dtype=jnp.uint32).reshape(shape)
  # 64-bit counters, high word zero below 2**32 elements (iota_2x32_shape's split).
  high, low = threefry2x32(k1, k2, jnp.zeros_like(index), index)
  return high ^ low


def keep_mask(key, shape, keep: float) -> jnp.ndarray:
  """A boolean array of `shape`, each element True with probability `keep` (to 1/65,536), from
  one Threefry-2x32 hash per four elements."""
  if (not jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
      or str(jax.random.key_impl(key)) != "threefry2x32"):
    return jax.random.bernoulli(key, keep, shape)  # another scheme: JAX's own
  size = int(np.prod(shape))
  k1, k2 = jax.random.key_data(key)
  counters = jnp.arange(-(-size // 4), dtype=jnp.uint32)
  high, low = threefry2x32(k1, k2, jnp.zeros_like(counters), counters)
  # Written once: fused into each consumer, the hash would be recomputed for every element.
  words = jax.lax.optimization_barrier(jnp.stack([high, low], axis=-1).reshape(-1))
  fields = (words[:, None] >> np.array([0, 16], np.uint32)) & np.uint32(0xFFFF)
  threshold = np.uint32(round(keep * 65536))
  return (fields.reshape(-1)[:size] < threshold).reshape(shape)


class Dropout(nn.Module):
  """flax.linen.Dropout (same rng collection, same scaling by 1 / (1 - rate)) on keep_mask."""

  rate: float
  deterministic: bool | None = None
  rng_collection: str = "dropout"

  @nn.compact
  def __call__(self, inputs, deterministic: bool | None = None):
    deterministic = nn.merge_param("deterministic", self.deterministic, deterministic)
    if self.rate == 0.0 or deterministic:
      return inputs
    keep = 1.0 - self.rate
    mask = keep_mask(self.make_rng(self.rng_collection), inputs.shape, keep)
    return jax.lax.select(mask, inputs / keep, jnp.zeros_like(inputs))
