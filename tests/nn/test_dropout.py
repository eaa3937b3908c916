"""The fused dropout draws jax.random's bits and flax's masks exactly."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.nn.dropout import Dropout, threefry_bits


@pytest.mark.parametrize("shape", [(7,), (3, 5, 11)])
def test_the_unrolled_hash_gives_jax_randoms_bits(shape):
  key = jax.random.key(42)
  np.testing.assert_array_equal(threefry_bits(key, shape), jax.random.bits(key, shape))


def test_the_masks_are_flaxs_bit_for_bit():
  x = jax.random.normal(jax.random.key(0), (4, 9, 16))
  rngs = {"dropout": jax.random.key(5)}
  ours = Dropout(0.3).apply({}, x, deterministic=False, rngs=rngs)
  theirs = nn.Dropout(0.3).apply({}, x, deterministic=False, rngs=rngs)
  np.testing.assert_array_equal(ours, theirs)
  assert 0.2 < float(jnp.mean(ours == 0)) < 0.4  # it dropped about the rate
  np.testing.assert_array_equal(Dropout(0.3).apply({}, x, deterministic=True), x)
