"""The diffusion family: config checks, guidance, a tiny run resumed bit for bit, and its
readers (samples by class, averaged checkpoints)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import averaging, sampling
from genjax.configs.diffusion_mnist import VARIANTS, get_config
from genjax.core import loop, runs
from genjax.core.errors import ConfigError
from genjax.data import image_sets
from genjax.diffusion import config as diffusion_config, samplers
from genjax.diffusion import family as diffusion_family
from genjax.diffusion.family import train_diffusion
from tests.conftest import snapshot


@pytest.fixture
def tiny(data_root):
  config = get_config("tiny")
  config.data_dir = data_root
  return config


@pytest.mark.parametrize("key,value,needle", [
    ("objective", "score", "config.objective"), ("sampler", "heun", "config.sampler 'heun' is "
     "unknown for a ddpm run"), ("nfe", 0, "config.nfe must be a positive integer"),
    ("channels", (10,), "config.groups"), ("channels", (8, 16, 16), "config.channels"),
    ("patch", 4, "config.patch"),
    ("label_dropout", 0.0, "config.label_dropout"), ("t_sampling", "beta", "config.t_sampling"),
    ("batch_size", 0, "config.batch_size"), ("ema_decay", 1.0, "config.ema_decay")])
def test_bad_config_names_the_field(tiny, key, value, needle):
  tiny.update(objective="ddpm", sampler="ddim")
  tiny[key] = value
  with pytest.raises(ConfigError, match=needle):
    diffusion_config.validate(tiny)


def test_sampling_settings_are_checked_against_the_run():
  with pytest.raises(ConfigError, match="nfe must be a positive multiple of 2"):
    diffusion_config.check_sampling("flow", True, "heun", 7, 1.0, ("s", "nfe", "g"))
  with pytest.raises(ConfigError, match="guidance 2 needs a conditional run"):
    diffusion_config.check_sampling("flow", False, "euler", 8, 2.0, ("s", "n", "guidance"))
  diffusion_config.check_sampling("ddpm", False, "ddpm", 1, 1.0)


def test_every_variant_validates_and_tiny_shrinks_it():
  for name in ["", *VARIANTS]:
    config = diffusion_config.resolve(get_config(f"{name},tiny" if name else "tiny"))
    assert config.num_steps == 6 and config.channels == (8,) and config.patch == 2
    assert config.num_classes is None and config.image_shape is None  # the data sets them
    if ":" not in config.dataset:
      assert image_sets.filled(config).image_shape == (28, 28, 1)


def test_a_size_the_unet_cannot_halve_is_one_line(tiny):
  tiny.update(image_size=36, channels=(8, 8, 8))
  with pytest.raises(ConfigError, match=r"^config.channels \(8, 8, 8\) with config.patch=2 "
                     "needs sides that are multiples of 8, not 36x36; change config.image_size"):
    diffusion_config.validate(tiny)


def test_guidance_zero_is_the_unconditional_model_and_one_the_conditional():
  """guided() on a network whose prediction depends on the label: guidance 0 is the null
  label's prediction alone, 1 the label's alone, g the mix u + g (c - u)."""
  calls = []

  def apply(z_BxD, t_B, labels_B):
    calls.append(labels_B.shape[0])
    return z_BxD * (labels_B[:, None] + 1.0) + t_B[:, None]

  z, labels, null = jnp.ones((3, 2)), jnp.array([1, 2, 3]), jnp.full((3,), 10)
  np.testing.assert_array_equal(samplers.guided(apply, labels, 0.0, 10)(z, 0.5),
                                apply(z, jnp.full((3,), 0.5), null))
  np.testing.assert_array_equal(samplers.guided(apply, labels, 1.0, 10)(z, 0.5),
                                apply(z, jnp.full((3,), 0.5), labels))
  c, u = apply(z, jnp.full((3,), 0.5), labels), apply(z, jnp.full((3,), 0.5), null)
  np.testing.assert_allclose(samplers.guided(apply, labels, 3.0, 10)(z, 0.5), u + 3.0 * (c - u))
  assert calls == [3, 3, 3, 3, 3, 3, 6]  # one evaluation each, both in one batch when mixed
  unconditional = lambda z_BxD, t_B, labels_B: (labels_B, z_BxD + t_B[:, None])  # noqa: E731
  labels_seen, _ = samplers.guided(unconditional, None, 1.0, 10)(z, 0.5)
  assert labels_seen is None


@pytest.mark.slow
def test_interrupted_run_resumes_bit_identically_and_its_readers_work(data_root, tmp_path,
                                                                     monkeypatch):
  config = get_config("tiny")
  config.data_dir = data_root
  train_diffusion(config, tmp_path / "whole")
  save_grid = diffusion_family.save_grid

  def interrupt_at_step_3(*args):
    save_grid(*args)
    if args[-2] == 3:
      raise KeyboardInterrupt  # Ctrl-C between chunks: the loop checkpoints step 3

  monkeypatch.setattr(diffusion_family, "save_grid", interrupt_at_step_3)
  with pytest.raises(KeyboardInterrupt):
    train_diffusion(config, tmp_path / "resumed")
  monkeypatch.undo()
  summary = train_diffusion(config, tmp_path / "resumed")
  assert summary["start_step"] == 3 and summary["step"] == 6
  whole, resumed = (runs.restore(tmp_path / d) for d in ("whole", "resumed"))
  assert whole.step == resumed.step == 6 and whole.family == "diffusion"
  jax.tree.map(np.testing.assert_array_equal, whole.state, resumed.state)
  rows = [loop.MetricsLog.read(tmp_path / d / "metrics.jsonl") for d in ("whole", "resumed")]
  assert [{**r, "wall_s": 0} for r in rows[0]] == [{**r, "wall_s": 0} for r in rows[1]]
  assert sorted(p.name for p in (tmp_path / "whole" / "images").glob("*.png")) == \
      ["0.png", "3.png", "6.png"]

  images = sampling.sample_images(tmp_path / "whole", 12, label=3)
  assert images.shape == (12, 28, 28) and 0 <= images.min() and images.max() <= 1
  before = snapshot(tmp_path / "whole")
  record = averaging.average_checkpoints(tmp_path / "whole", [3, 6], tmp_path / "avg")
  assert record["family"] == "diffusion" and snapshot(tmp_path / "whole") == before
  key = "ema_params" if config.ema_decay else "params"
  at = {s: getattr(runs.restore(tmp_path / "whole", step=s).state, key) for s in (3, 6)}
  averaged = getattr(runs.restore(tmp_path / "avg").state, key)
  jax.tree.map(lambda a, x, y: np.testing.assert_allclose(a, (x + y) / 2, rtol=1e-6), averaged,
               at[3], at[6])
