"""Shared layers: the fixed low-pass after G's upsamplings, the class-conditional BatchNorm."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from genjax.nn.layers import ClassBatchNorm, blur_2x


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



def test_class_batchnorm_starts_plain_and_scales_each_class_by_its_own_row():
  h = jax.random.normal(jax.random.key(0), (6, 3, 3, 4)) * 2.0 + 1.0
  labels = jnp.array([0, 1, 2, 0, 1, 2])
  norm = ClassBatchNorm(num_classes=3, use_running_average=False)
  variables = norm.init(jax.random.key(1), h, labels)
  out, _ = norm.apply(variables, h, labels, mutable=["batch_stats"])
  plain = nn.BatchNorm(use_running_average=False, momentum=0.9)
  expected, _ = plain.apply(plain.init(jax.random.key(1), h), h, mutable=["batch_stats"])
  np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)  # init: scale 1, offset 0
  params = variables["params"]
  params = {**params, "scale": params["scale"].at[1].set(3.0),
            "offset": params["offset"].at[2].set(-0.5)}
  out2, _ = norm.apply({**variables, "params": params}, h, labels, mutable=["batch_stats"])
  np.testing.assert_allclose(out2[labels == 0], expected[labels == 0], rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(out2[labels == 1], 3.0 * expected[labels == 1], rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(out2[labels == 2], expected[labels == 2] - 0.5, rtol=1e-5, atol=1e-5)
