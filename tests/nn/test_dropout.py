"""The unrolled hash is jax.random's; the masks keep each element at the rate asked, alone."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.nn.dropout import Dropout, keep_mask, threefry_bits


@pytest.mark.parametrize("shape", [(7,), (3, 5, 11)])
def test_the_unrolled_hash_gives_jax_randoms_bits(shape):
  key = jax.random.key(42)
  np.testing.assert_array_equal(threefry_bits(key, shape), jax.random.bits(key, shape))


def test_the_masks_keep_each_element_at_the_rate_and_independently():
  shape = (8, 128, 192)  # a mask the size of a Transformer step's
  mask = np.asarray(keep_mask(jax.random.key(3), shape, 0.9), np.float64)
  assert mask.shape == shape
  n = mask.size
  assert abs(mask.mean() - 0.9) < 4 * np.sqrt(0.09 / n)  # four standard errors
  flat = mask.reshape(-1)
  for lag in (1, 2, 3, 4, 192):  # neighbours share a hash (1-3) or a row (192): no matter
    assert abs(np.corrcoef(flat[:-lag], flat[lag:])[0, 1]) < 4 / np.sqrt(n)
  again = np.asarray(keep_mask(jax.random.key(3), shape, 0.9), np.float64)
  other = np.asarray(keep_mask(jax.random.key(4), shape, 0.9), np.float64)
  np.testing.assert_array_equal(mask, again)
  assert abs((mask == other).mean() - (0.9 ** 2 + 0.1 ** 2)) < 0.005  # independent keys


def test_dropout_scales_what_it_keeps_and_passes_through_when_deterministic():
  x = jax.random.normal(jax.random.key(0), (4, 9, 16))
  rngs = {"dropout": jax.random.key(5)}
  out = Dropout(0.3).apply({}, x, deterministic=False, rngs=rngs)
  kept = out != 0
  np.testing.assert_allclose(out[kept], x[kept] / 0.7, rtol=1e-6)
  assert 0.2 < float(jnp.mean(~kept)) < 0.4  # it dropped about the rate
  np.testing.assert_array_equal(Dropout(0.3).apply({}, x, deterministic=True), x)
