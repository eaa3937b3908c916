"""Data parallelism on 8 virtual CPU devices; run by tests/core/test_sharding.py in its own process.

The device count is fixed when JAX starts, so these tests need
XLA_FLAGS=--xla_force_host_platform_device_count=8 set before Python imports jax.
"""

import jax
import numpy as np
import pytest

from genjax import sampling
from genjax.core import checkpoint, sharding
from genjax.core.errors import ConfigError
from genjax.gan import steps
from genjax.data.image_sets import filled
from genjax.gan.family import GANFamily, train_gan
from genjax.configs.vae_mnist import get_config as get_vae_config
from genjax.gan.state import build_gan, init_state
from genjax.vae import config as vae_config, steps as vae_steps
from genjax.vae.family import train_vae
from genjax.vae.state import build_setup, init_state as vae_init

pytestmark = pytest.mark.skipif(jax.device_count() != 8, reason="needs 8 (virtual) devices")


def run_chunk(config, num_devices, n=4):
  mesh = sharding.make_mesh(num_devices)
  gan = build_gan(filled(config), mesh)
  state = sharding.put_replicated(init_state(gan, jax.random.key(0)), mesh)
  images = sharding.put_replicated(
      jax.random.randint(jax.random.key(9), (64, 28, 28), 0, 256).astype(np.uint8), mesh)
  state, metrics = steps.train_chunk(gan, state, images, jax.random.key(1), 8, n)
  return gan, state, metrics


@pytest.mark.parametrize("mode", ["keras"])
def test_sharded_run_matches_single_device(tiny_config, mode):
  tiny_config.update(batch_size=16, d_update=mode)
  _, single, single_metrics = run_chunk(tiny_config, 1)
  gan, sharded, sharded_metrics = run_chunk(tiny_config, 8)
  for name in steps.METRIC_NAMES:
    np.testing.assert_allclose(sharded_metrics[name][:4], single_metrics[name][:4], rtol=1e-4,
                               atol=1e-5)
  # Same global batch, same keys: only the order of floating-point sums differs.
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-4), sharded, single)
  leaf = sharded.g_params["Dense_0"]["kernel"]
  assert len(leaf.sharding.device_set) == 8 and leaf.sharding.is_fully_replicated
  hlo = steps.compiled_chunk(gan, 8).lower(sharded, jax.numpy.zeros((64, 28, 28), np.uint8),
                                           jax.random.key(1), 1).compile().as_text()
  assert "all-reduce" in hlo  # gradients and BatchNorm statistics are reduced over `data`


def test_batch_not_divisible_is_a_clear_error(tiny_config, tmp_path):
  tiny_config.batch_size = 12
  with pytest.raises(ConfigError, match="batch_size=12 is not divisible by the 8 devices"):
    train_gan(tiny_config, tmp_path / "run")
  assert not (tmp_path / "run").exists()


def test_too_many_devices_is_a_clear_error(tiny_config, tmp_path):
  tiny_config.num_devices = 16
  with pytest.raises(ConfigError, match="num_devices=16 but 8 device"):
    train_gan(tiny_config, tmp_path / "run")


def test_sharded_checkpoint_restores_on_other_device_counts(tiny_config, tmp_path):
  tiny_config.update(batch_size=16, num_devices=1)
  train_gan(tiny_config, tmp_path / "single")
  half = tiny_config.copy_and_resolve_references()
  half.update(num_steps=3, num_devices=8)
  train_gan(half, tmp_path / "moved")  # written from 8 devices
  tiny_config.num_devices = 2
  summary = train_gan(tiny_config, tmp_path / "moved")  # resumed on 2
  assert summary["start_step"] == 3 and summary["step"] == 6
  tiny_config = filled(tiny_config)
  gan = build_gan(tiny_config)
  abstract = sharding.abstract_replicated(
      jax.eval_shape(lambda: init_state(gan, jax.random.key(0))), sharding.make_mesh(1))
  states = []
  for name in ("single", "moved"):
    manager = checkpoint.open_manager(tmp_path / name)
    state, step = checkpoint.restore_latest(manager, abstract,
                                            checkpoint.make_record("gan", tiny_config),
                                            GANFamily.resumable)
    assert step == 6
    states.append(state)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-4), *states)
  images = sampling.sample_images(tmp_path / "moved", 10)  # and on one device
  assert images.shape == (10, 28, 28)


def test_sharded_vae_matches_single_device_and_trains(data_root, tmp_path):
  config = vae_config.resolve(get_vae_config("tiny"))
  config.update(batch_size=16, data_dir=data_root)
  config = filled(config)
  pixels = jax.random.randint(jax.random.key(2), (64, 28, 28), 0, 256).astype(np.uint8)
  results = []
  for n in (1, 8):
    mesh = sharding.make_mesh(n)
    setup = build_setup(config, mesh)
    state = sharding.put_replicated(vae_init(setup, jax.random.key(0)), mesh)
    results.append(vae_steps.train_chunk(setup, state, sharding.put_replicated(pixels, mesh),
                                         jax.random.key(1), 8, 4))
  (single, m1), (sharded, m8) = results
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5), m8, m1)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-4), sharded, single)
  config.num_devices = 8
  summary = train_vae(config, tmp_path / "vae")  # end to end on 8 devices
  assert (tmp_path / "vae" / "eval.json").exists() and summary


def lm_chunk(model: str, num_devices: int, n: int = 3):
  from genjax.configs.text_lm import get_config as get_lm_config
  from genjax.text import chars, lm

  config = get_lm_config(f"{model},tiny")
  config.batch_size = 8
  text = "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind\n" * 4
  config.vocab = chars.build_vocab(text)
  mesh = sharding.make_mesh(num_devices)
  setup = lm.build_setup(config, mesh)
  state = sharding.put_replicated(lm.init_state(setup, jax.random.key(0)), mesh)
  data = sharding.put_replicated({"tokens": chars.encode(text, config.vocab, "text"),
                                  "starts": None}, mesh)
  return lm.compiled_chunk(setup, 4)(state, data, jax.random.key(1), n)


@pytest.mark.parametrize("model", ["transformer", "lstm"])
def test_sharded_language_model_step_matches_single_device(model):
  single, single_metrics = lm_chunk(model, 1)
  sharded, sharded_metrics = lm_chunk(model, 8)
  np.testing.assert_allclose(sharded_metrics["loss"], single_metrics["loss"], rtol=1e-5)
  for a, b in zip(jax.tree.leaves(sharded.params), jax.tree.leaves(single.params)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-4, atol=2e-6)
  assert len(jax.tree.leaves(sharded.params)[0].sharding.device_set) == 8


def test_sharded_diffusion_step_matches_single_device(data_root):
  from genjax.configs.diffusion_mnist import get_config as get_diffusion_config
  from genjax.diffusion import config as diffusion_config, steps as diffusion_steps
  from genjax.diffusion.state import build as build_diffusion, init_state as diffusion_init

  from genjax.data.image_sets import filled

  config = filled(diffusion_config.resolve(get_diffusion_config("tiny")))  # MNIST's shape
  config.update(batch_size=16, data_dir=data_root)
  images = jax.random.randint(jax.random.key(2), (64, 28, 28), 0, 256).astype(np.uint8)
  labels = np.arange(64, dtype=np.int32) % 10
  results = []
  for n in (1, 8):
    mesh = sharding.make_mesh(n)
    static = build_diffusion(config, mesh)
    state = sharding.put_replicated(diffusion_init(static, jax.random.key(0)), mesh)
    data = sharding.put_replicated((images, labels), mesh)
    results.append(diffusion_steps.train_chunk(static, state, *data[:1], jax.random.key(1), 4, 3,
                                               data[1]))
  (single, m1), (sharded, m8) = results
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5), m8, m1)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-4), sharded, single)
  assert len(jax.tree.leaves(sharded.params)[0].sharding.device_set) == 8
