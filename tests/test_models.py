"""Shapes, dtypes and the Keras initializers/BatchNorm settings of the tutorial's models."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.models import Discriminator, Generator


@pytest.fixture(scope="module")
def g_vars():
  return Generator().init(jax.random.key(0), jnp.zeros((2, 100)), train=False)


@pytest.fixture(scope="module")
def d_vars():
  return Discriminator().init(jax.random.key(1), jnp.zeros((2, 28, 28)))


def test_generator_shapes_and_range(g_vars):
  z = jax.random.normal(jax.random.key(2), (7, 100))
  images = Generator().apply(g_vars, z, train=False)
  assert images.shape == (7, 28, 28) and images.dtype == jnp.float32
  assert float(jnp.abs(images).max()) <= 1.0
  widths = [g_vars["params"][f"Dense_{i}"]["kernel"].shape for i in range(4)]
  assert widths == [(100, 256), (256, 512), (512, 1024), (1024, 784)]


def test_discriminator_shapes(d_vars):
  logits = Discriminator().apply(d_vars, jnp.ones((5, 28, 28)))
  assert logits.shape == (5,) and logits.dtype == jnp.float32
  widths = [d_vars["params"][f"Dense_{i}"]["kernel"].shape for i in range(3)]
  assert widths == [(784, 512), (512, 256), (256, 1)]
  assert "batch_stats" not in d_vars


def test_glorot_uniform_kernels_and_zero_biases(g_vars, d_vars):
  for params in (g_vars["params"], d_vars["params"]):
    for name, layer in params.items():
      if not name.startswith("Dense"):
        continue
      kernel = np.asarray(layer["kernel"])
      fan_in, fan_out = kernel.shape
      limit = np.sqrt(6.0 / (fan_in + fan_out))
      assert np.abs(kernel).max() <= limit
      if kernel.size > 1000:  # uniform on [-limit, limit]: std limit/sqrt(3), mean 0
        assert abs(kernel.std() / (limit / np.sqrt(3)) - 1) < 0.05
        assert abs(kernel.mean()) < 0.05 * limit
      np.testing.assert_array_equal(layer["bias"], 0.0)


def test_batchnorm_keras_momentum_and_epsilon(g_vars):
  bn = g_vars["params"]["BatchNorm_0"]
  np.testing.assert_array_equal(bn["scale"], 1.0)
  np.testing.assert_array_equal(bn["bias"], 0.0)
  z = jax.random.normal(jax.random.key(3), (64, 100))
  _, updated = Generator().apply(g_vars, z, train=True, mutable=["batch_stats"])
  # Moving mean follows Keras: 0.8 * old + 0.2 * batch mean of the post-LeakyReLU activations.
  h = jax.nn.leaky_relu(z @ g_vars["params"]["Dense_0"]["kernel"], 0.2)
  expected_mean = 0.8 * g_vars["batch_stats"]["BatchNorm_0"]["mean"] + 0.2 * h.mean(0)
  np.testing.assert_allclose(updated["batch_stats"]["BatchNorm_0"]["mean"], expected_mean,
                             rtol=1e-5, atol=1e-6)
  # Inference uses running stats with epsilon 1e-3: fresh stats (0, 1) scale by 1/sqrt(1+1e-3).
  assert Generator().bn_epsilon == 1e-3


def test_train_and_inference_modes_differ(g_vars):
  z = jax.random.normal(jax.random.key(4), (16, 100))
  train_out, _ = Generator().apply(g_vars, z, train=True, mutable=["batch_stats"])
  infer_out = Generator().apply(g_vars, z, train=False)
  assert not np.allclose(train_out, infer_out)
