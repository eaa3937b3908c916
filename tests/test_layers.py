"""Shared layers: the fixed low-pass after G's upsamplings."""

import jax.numpy as jnp
import numpy as np

from genjax.layers import blur_2x


def test_blur_removes_a_checkerboard_and_keeps_constants():
  y, x = jnp.meshgrid(jnp.arange(8), jnp.arange(8), indexing="ij")
  board = jnp.where((y + x) % 2 == 0, 1.0, -1.0)[None, :, :, None]
  blurred = blur_2x(board)[0, :, :, 0]
  np.testing.assert_allclose(blurred[1:-1, 1:-1], 0.0, atol=1e-7)  # interior: gone
  assert float(jnp.abs(blurred).max()) < 1.0
  constant = jnp.full((2, 5, 6, 3), 0.7)
  np.testing.assert_allclose(blur_2x(constant), constant, rtol=1e-6)


def test_blur_averages_each_channel_alone_with_121_weights():
  h = jnp.zeros((1, 5, 5, 2)).at[0, 2, 2, 0].set(16.0)  # an impulse in channel 0
  blurred = blur_2x(h)
  np.testing.assert_allclose(blurred[0, 1:4, 1:4, 0], [[1, 2, 1], [2, 4, 2], [1, 2, 1]])
  np.testing.assert_array_equal(blurred[..., 1], 0.0)

