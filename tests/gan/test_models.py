"""Shapes, dtypes and the Keras initializers/BatchNorm settings of the tutorial's models."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.gan.models import Discriminator, Generator


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


# --- DCGAN, conditioning, spectral normalization ----------------------------------------------

from genjax.gan.models import DCGANDiscriminator, DCGANGenerator, minibatch_stddev  # noqa: E402


def test_dcgan_shapes_and_layers():
  g, d = DCGANGenerator(channels=(16, 8)), DCGANDiscriminator(channels=(8, 16))
  z = jax.random.normal(jax.random.key(0), (3, 100))
  g_vars = g.init(jax.random.key(1), z, train=False)
  images = g.apply(g_vars, z, train=False)
  assert images.shape == (3, 28, 28) and float(jnp.abs(images).max()) <= 1.0
  p = g_vars["params"]
  assert p["project"]["kernel"].shape == (100, 7 * 7 * 16)
  assert p["up_0"]["kernel"].shape == (9 * 16, 4 * 8)  # 7x7 -> 14x14, 8 channels
  assert p["out"]["kernel"].shape == (9 * 8, 4 * 1)  # 14x14 -> 28x28, one channel
  d_vars = d.init(jax.random.key(2), images)
  logits = d.apply(d_vars, images)
  assert logits.shape == (3,) and logits.dtype == jnp.float32
  q = d_vars["params"]
  assert q["conv_0"]["kernel"].shape == (9 * 1, 8) and q["conv_1"]["kernel"].shape == (9 * 8, 16)
  assert q["out"]["kernel"].shape == (7 * 7 * 16, 1)


def test_dcgan_refine_layer_works_at_full_size():
  g = DCGANGenerator(channels=(16, 8), refine_channels=4)
  z = jax.random.normal(jax.random.key(0), (3, 100))
  g_vars = g.init(jax.random.key(1), z, train=False)
  images, _ = g.apply(g_vars, z, train=True, mutable=["batch_stats"])
  assert images.shape == (3, 28, 28) and float(jnp.abs(images).max()) <= 1.0
  p = g_vars["params"]
  assert p["up_refine"]["kernel"].shape == (9 * 8, 4 * 4)  # 14x14x8 -> 28x28x4
  assert p["out"]["kernel"].shape == (9 * 4, 1)  # a 3x3 conv at 28x28 to one channel
  assert g_vars["batch_stats"]["BatchNorm_2"]["mean"].shape == (4,)


def test_dcgan_blur_keeps_the_parameters_and_smooths_the_output():
  z = jax.random.normal(jax.random.key(0), (4, 100))
  sharp, smooth = (DCGANGenerator(channels=(16, 8), refine_channels=4, blur=b) for b in (0, 1))
  g_vars = sharp.init(jax.random.key(1), z, train=False)
  assert jax.tree.map(jnp.shape, smooth.init(jax.random.key(1), z, train=False)) == \
      jax.tree.map(jnp.shape, g_vars)
  out_sharp, out_smooth = (g.apply(g_vars, z, train=True, mutable=["batch_stats"])[0]
                           for g in (sharp, smooth))
  # Neighbouring pixels differ less once the upsampled features are low-passed.
  roughness = lambda x: float(jnp.abs(jnp.diff(x, axis=1)).mean())  # noqa: E731
  assert roughness(out_smooth) < roughness(out_sharp)


def test_dcgan_class_bn_gives_each_batchnorm_a_table_per_class():
  z = jax.random.normal(jax.random.key(0), (4, 100))
  y = jnp.array([0, 3, 3, 9])
  g = DCGANGenerator(channels=(16, 8), refine_channels=4, num_classes=10, class_bn=True)
  g_vars = g.init(jax.random.key(1), z, train=False, labels_B=y)
  tables = {k: v["scale"].shape for k, v in g_vars["params"].items() if k.startswith("Class")}
  assert sorted(tables.values()) == [(10, 4), (10, 8), (10, 7 * 7 * 16)]
  # A class's own scale row changes that class's samples only.
  params = jax.tree_util.tree_map_with_path(
      lambda path, a: a.at[3].mul(2.0) if path[-1].key == "scale" else a, g_vars["params"])
  before, after = (g.apply({**g_vars, "params": p}, z, train=False, labels_B=y)
                   for p in (g_vars["params"], params))
  changed = np.abs(np.asarray(after - before)).max(axis=(1, 2)) > 1e-4
  assert changed.tolist() == [False, True, True, False]


def test_minibatch_stddev_sees_its_group_only():
  x = jax.random.normal(jax.random.key(0), (8, 28, 28))
  d = DCGANDiscriminator(channels=(8, 16), mbstd_group=4)
  d_vars = d.init(jax.random.key(1), x[:1])  # a batch of one initializes the same parameters
  assert d_vars["params"]["out"]["kernel"].shape == (7 * 7 * (16 + 1), 1)
  before, after = d.apply(d_vars, x), d.apply(d_vars, x.at[5].add(1.0))
  assert (np.asarray(before) != np.asarray(after)).tolist() == [False] * 4 + [True] * 4
  # The extra channel is the group's mean feature std: zero for a group of identical images.
  h = jax.random.normal(jax.random.key(2), (4, 2, 2, 3))
  std = minibatch_stddev(h, 2)[..., -1]
  np.testing.assert_allclose(std[:2], np.full((2, 2, 2), np.asarray(h[:2]).std(0).mean()),
                             rtol=1e-5)
  np.testing.assert_allclose(minibatch_stddev(jnp.stack([h[0]] * 4), 2)[..., -1], 1e-4,
                             rtol=1e-3)


@pytest.mark.parametrize("arch", ["mlp", "dcgan"])
def test_conditional_networks_use_the_label(arch):
  if arch == "mlp":
    g, d = Generator(hidden=(16,), num_classes=10), Discriminator(hidden=(16,), num_classes=10)
  else:
    g, d = DCGANGenerator((8, 4), num_classes=10), DCGANDiscriminator((4, 8), num_classes=10)
  z = jax.random.normal(jax.random.key(0), (4, 100))
  y0, y1 = jnp.zeros(4, jnp.int32), jnp.array([1, 2, 3, 9])
  g_vars = g.init(jax.random.key(1), z, train=False, labels_B=y0)
  x0, x1 = (g.apply(g_vars, z, train=False, labels_B=y) for y in (y0, y1))
  assert not np.allclose(x0, x1, atol=1e-4)  # same noise, other class: other image
  d_vars = d.init(jax.random.key(2), x0, y0)
  # The projection embedding starts small; make it matter as training would.
  d_vars = jax.tree.map(lambda a: a * 50 if a.ndim == 2 and a.shape[0] == 10 else a, d_vars)
  l0, l1 = d.apply(d_vars, x0, y0), d.apply(d_vars, x0, y1)
  assert np.all(np.abs(np.asarray(l0 - l1)) > 1e-4)
  with pytest.raises(ValueError, match="labels_B"):
    g.apply(g_vars, z, train=False)


@pytest.mark.parametrize("arch", ["mlp", "dcgan"])
def test_spectral_norm_estimate_converges_to_largest_singular_value(arch):
  if arch == "mlp":
    d = Discriminator(hidden=(32, 16), spectral_norm=True)
  else:
    d = DCGANDiscriminator((8, 16), spectral_norm=True)
  x = jax.random.normal(jax.random.key(0), (2, 28, 28))
  variables = d.init(jax.random.key(1), x)
  apply = jax.jit(lambda v: d.apply(v, x, update_stats=True, mutable=["spectral"])[1])
  spectral = {"spectral": variables["spectral"]}
  for _ in range(60):  # one power iteration per training step, as in training
    spectral = apply({"params": variables["params"], **spectral})
  for name, layer in variables["params"].items():
    if "kernel" not in layer:
      continue
    w = np.asarray(layer["kernel"], np.float64)
    u = np.asarray(spectral["spectral"][name]["u"], np.float64)
    v = w @ u / np.linalg.norm(w @ u)
    sigma_est = v @ w @ u
    sigma_true = np.linalg.svd(w, compute_uv=False)[0]
    np.testing.assert_allclose(sigma_est, sigma_true, rtol=1e-3)
    # The layer really divides by it: the normalized kernel's top singular value is ~1.
    assert abs(np.linalg.svd(w / sigma_est, compute_uv=False)[0] - 1.0) < 1e-3


def test_spectral_norm_vectors_move_only_when_asked():
  d = DCGANDiscriminator((4, 8), spectral_norm=True)
  x = jnp.ones((2, 28, 28))
  variables = d.init(jax.random.key(1), x)
  _, frozen = d.apply(variables, x, mutable=["spectral"])
  _, moved = d.apply(variables, x, update_stats=True, mutable=["spectral"])
  jax.tree.map(np.testing.assert_array_equal, frozen["spectral"], variables["spectral"])
  assert not np.allclose(moved["spectral"]["conv_1"]["u"], variables["spectral"]["conv_1"]["u"])
