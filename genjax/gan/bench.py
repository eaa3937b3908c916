"""Throughput of the jitted GAN training chunk, in iterations/s and as a fraction of matmul peak."""

import time

import jax
import jax.numpy as jnp
import ml_collections

from genjax.core import bench, sharding
from genjax.gan.steps import compiled_chunk, train_chunk, train_step
from genjax.gan.state import GAN, GANState, build_gan, init_state

IMAGE_SHAPE = (28, 28)


def random_images(n: int = 60000, seed: int = 1) -> jax.Array:
  """MNIST-sized uint8 images made on device: speed does not depend on pixel values."""
  return jax.random.bits(jax.random.key(seed), (n, *IMAGE_SHAPE), jnp.uint8)


def random_labels(n: int = 60000, seed: int = 2) -> jax.Array:
  """Classes 0..9 for a conditional GAN's images: speed does not depend on them either."""
  return jax.random.randint(jax.random.key(seed), (n,), 0, 10, jnp.int32)


def step_flops(gan: GAN, state: GANState, images: jax.Array, key: jax.Array,
               labels: jax.Array | None = None) -> float | None:
  """FLOPs of one train_step from XLA's cost analysis of the compiled step; None if unavailable."""
  # One step, not train_chunk: XLA counts a while loop's body once, whatever the trip count
  # (checked: train_chunk with max_steps 10 or 1000 reports the same ~1 step).
  compiled = jax.jit(train_step, static_argnums=0).lower(gan, state, images, key,
                                                         labels).compile()
  return bench.compiled_flops(compiled)


def _mlp_macs(widths) -> tuple[int, int]:
  """Per-example multiply-adds of the dense stack `widths`, and of its first layer alone."""
  macs = [k * n for k, n in zip(widths[:-1], widths[1:])]
  return sum(macs), macs[0]


def analytic_step_flops(config: ml_collections.ConfigDict,
                        batch_size: int | None = None) -> float | None:
  """Matmul FLOPs (2*m*k*n each) of one MLP train_step (None for other architectures).

  Bias, activations and Adam are left out.

  Per example, with G = G's forward MACs, D = D's, G1/D1 their first layers:
    G inference forward for D's fakes:                            G
    D step on reals and on fakes: forward + weight grads + input grads past layer 1:  2 * (3D - D1)
    G step: G forward + weight grads + input grads past layer 1:  3G - G1
            D forward + input grads through every layer (D's weight grads are dead:
            stop_gradient):                                       2D
  Total 4G - G1 + 8D - 2D1. The joint D update (one G forward, D on both halves) counts the same.
  """
  if config.arch != "mlp":  # convolutions: XLA's count only
    return None
  b = config.batch_size if batch_size is None else batch_size
  g, g1 = _mlp_macs([config.latent_dim, *config.g_hidden, IMAGE_SHAPE[0] * IMAGE_SHAPE[1]])
  d, d1 = _mlp_macs([IMAGE_SHAPE[0] * IMAGE_SHAPE[1], *config.d_hidden, 1])
  return 2.0 * b * (4 * g - g1 + 8 * d - 2 * d1)


def benchmark_gan(config: ml_collections.ConfigDict, batch_size: int, iters: int | None = None,
                  images: jax.Array | None = None, *, seconds: float = 5.0, repeats: int = 3,
                  matmul_n: int = 2048, matmul_flops: float | None = None, seed: int = 0,
                  num_devices: int = 1, compute_dtype: str = "float32") -> dict:
  """Compile time and steady-state speed of train_chunk; iters=None picks it from `seconds`.

  The global batch is split over a `data` mesh of num_devices (0: all) devices.
  """
  config = ml_collections.ConfigDict(config.to_dict())  # don't mutate the caller's config
  config.batch_size = batch_size
  config.compute_dtype = compute_dtype
  mesh = sharding.make_mesh(num_devices)
  sharding.check_divisible(batch_size, mesh, "batch size")
  state_key, base_key = jax.random.split(jax.random.key(seed))
  # Jitted: eager flax init dispatches (and compiles) op by op, seconds on a small CPU.
  state = jax.jit(init_state, static_argnums=(0, 2))(build_gan(config), state_key, IMAGE_SHAPE)
  if images is None:
    images = random_images()
  labels = random_labels(len(images)) if config.conditional else None

  # FLOPs of the whole global batch: counted on the unsharded program.
  flops_xla = step_flops(build_gan(config), state, images, base_key, labels)
  flops_analytic = analytic_step_flops(config)
  gan = build_gan(config, mesh)
  state, images, labels = sharding.put_replicated((state, images, labels), mesh)

  # max_steps is static (it sizes the metrics buffers); num_steps is traced, so any chunk
  # length up to it reuses one executable.
  max_steps = iters if iters is not None else bench.MAX_CHUNK
  t0 = time.perf_counter()
  compiled_chunk(gan, max_steps).lower(state, images, base_key, 1, labels).compile()
  compile_s = time.perf_counter() - t0
  # The jit call below finds that executable in jax's cache; it still pays the first transfer
  # and run of one step (and would pay compile again if the cache missed).
  t0 = time.perf_counter()
  state, _ = jax.block_until_ready(train_chunk(gan, state, images, base_key, max_steps, 1, labels))
  first_call_s = time.perf_counter() - t0

  def dispatch(num_steps):
    """Seconds for one train_chunk call of num_steps iterations; advances the state."""
    nonlocal state
    t0 = time.perf_counter()
    state, _ = jax.block_until_ready(
        train_chunk(gan, state, images, base_key, max_steps, num_steps, labels))  # donated
    return time.perf_counter() - t0

  iters, times = bench.time_chunks(dispatch, max_steps, iters, seconds, repeats)
  iters_per_s = bench.median_rate(iters, times)
  flops_per_iter = flops_xla if flops_xla is not None else flops_analytic
  if matmul_flops is None:
    # Measured right after the GAN, not once per run: on a shared host the speed available
    # drifts (up to 2x here), and the ratio should compare like with like.
    matmul_flops = bench.matmul_flops_per_s(matmul_n)
  # A DCGAN on a backend without XLA's count has no FLOP figure: left out, not guessed.
  flops_per_s = None if flops_per_iter is None else flops_per_iter * iters_per_s
  return {
      "batch_size": batch_size,
      "d_update": config.d_update,
      "arch": config.arch,
      "conditional": bool(config.conditional),
      "iters": iters,
      "repeats": repeats,
      "dispatch_s": times,
      "iters_per_s": iters_per_s,
      "images_per_s": iters_per_s * batch_size,  # real images consumed (D also sees B fakes)
      "mesh_devices": mesh.devices.size,
      "images_per_s_per_device": iters_per_s * batch_size / mesh.devices.size,
      "compute_dtype": compute_dtype,
      "compile_s": compile_s,
      "first_call_s": first_call_s,
      "flops_per_iter": flops_per_iter,
      "flops_per_iter_xla": flops_xla,
      "flops_per_iter_analytic": flops_analytic,
      "flops_source": "xla" if flops_xla is not None else (
          "analytic" if flops_analytic is not None else None),
      "flops_per_s": flops_per_s,
      "matmul_flops_per_s": matmul_flops,
      "flops_ratio": None if flops_per_s is None else flops_per_s / matmul_flops,
      **bench.device_info(),
  }
