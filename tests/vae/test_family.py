"""The VAE on the core loop: config checks, outputs, determinism, resume bit-identity, guards,
sampling, and the conditional VAE's runs and class-conditional samples."""

import functools
import json

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from genjax import sampling
from genjax.configs.vae_mnist import get_config
from genjax.core import checkpoint, loop, sharding
from genjax.core.errors import CheckpointError, ConfigError
from genjax.vae import config as vae_cfg, data as vae_data, family as vae_family
from genjax.vae import sampling as vae_sampling, steps as vae_steps
from genjax.data.image_sets import filled
from genjax.vae.family import VAEFamily, train_vae
from genjax.vae.state import build_setup, init_state, learning_rate_schedule
from tests.conftest import snapshot


@pytest.fixture
def vae_config(data_root):
  config = get_config("tiny")
  config.data_dir = data_root
  return config


def restore_final(config, workdir):
  config = filled(vae_cfg.resolve(config))
  setup = build_setup(config)
  abstract = jax.eval_shape(lambda: init_state(setup, jax.random.key(0)))
  manager = checkpoint.open_manager(workdir)
  try:
    return checkpoint.restore_latest(manager, abstract, checkpoint.make_record("vae", config),
                                     vae_cfg.RESUMABLE)
  finally:
    manager.close()


def checkpoint_steps(workdir):
  return sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())


def without_wall_time(path):
  return [{k: v for k, v in json.loads(line).items() if k not in ("wall_s", "eval_s")}
          for line in path.read_text().splitlines()]


@pytest.mark.parametrize("key,value", [
    ("model", "gan"), ("decoder", "poisson"), ("binarization", "otsu"), ("dataset", "cifar10"),
    ("batch_size", 0), ("latent_dim", -1), ("iwae_k", 0), ("num_steps", -1), ("num_epochs", 0),
    ("learning_rate", 0.0), ("beta", -1.0), ("hidden", (16, 0)), ("eval_nll_k", 10),
    ("eval_k_chunk", 0), ("decoder_std", 0.0), ("lr_schedule", "step")])
def test_bad_config_names_the_field(vae_config, key, value):
  vae_config[key] = value
  with pytest.raises(ConfigError, match=f"config.{key}"):
    vae_cfg.validate(vae_config)


def test_conditional_must_be_a_bool(vae_config):
  # A ConfigDict rejects a str for a bool field; a run's config.json can still hold one.
  config = ml_collections.ConfigDict({**vae_config.to_dict(), "conditional": "yes"})
  with pytest.raises(ConfigError, match="config.conditional"):
    vae_cfg.validate(config)


def test_tiny_shrinks_any_variant():
  small = get_config("flax_example,tiny")
  assert (small.hidden, small.activation, small.binarization) == ((16,), "relu", "static")
  assert small.num_steps == get_config("tiny").num_steps == 6
  assert get_config("conv,tiny").arch == "conv"
  with pytest.raises(ValueError, match="'flax'"):
    get_config("flax,tiny")


def test_epochs_become_steps(vae_config):
  vae_config.update(num_steps=0, num_epochs=2.0, batch_size=128)
  family = VAEFamily(VAEFamily.validate(vae_config), sharding.make_mesh(1))
  family.load_data()  # the data's size sets the steps
  assert family.config.num_steps == 938  # ceil(120000 / 128)
  assert vae_config.num_steps == 0  # the caller's config is left alone


def test_burda_schedule_has_eight_stages(vae_config):

  vae_config.update(lr_schedule="burda", num_steps=3280)  # one step per published epoch
  lrs = [float(learning_rate_schedule(vae_config)(s)) for s in (0, 1, 4, 13, 3279)]
  np.testing.assert_allclose(lrs, [1e-3 * 10 ** (-i / 7) for i in (0, 1, 2, 3, 7)], rtol=1e-5)


def test_static_binarization_is_one_fixed_draw():
  pixels = np.full((2, 28, 28), 128, np.uint8)
  a = vae_data.fixed_binarization(pixels, 0, "train")
  assert set(np.unique(a)) == {0, 1} and abs(a.mean() - 128 / 255) < 0.05
  np.testing.assert_array_equal(a, vae_data.fixed_binarization(pixels, 0, "train"))
  assert not np.array_equal(a, vae_data.fixed_binarization(pixels, 0, "test"))
  dynamic = [vae_data.to_inputs(jnp.asarray(pixels), "dynamic", jax.random.key(i)) for i in (0, 1)]
  assert not np.array_equal(dynamic[0], dynamic[1])
  np.testing.assert_allclose(vae_data.to_inputs(jnp.asarray(pixels), "none"), 128 / 255)


def run_chunk(config, seed, n, state=None):
  setup = build_setup(filled(vae_cfg.resolve(config)))
  state = init_state(setup, jax.random.key(0)) if state is None else state
  pixels, _ = vae_data.training_pixels(filled(config), labels=False).arrays()
  # max_steps as in the runs: the compiled chunk is shared with the other tests.
  return vae_steps.train_chunk(setup, state, pixels, jax.random.key(seed),
                               config.steps_per_dispatch, n)


@pytest.mark.parametrize("model", ["vae", "iwae"])
def test_chunks_are_deterministic_seeded_and_compose(vae_config, model):
  vae_config.model = model
  state_a, metrics_a = run_chunk(vae_config, 1, 5)
  state_b, metrics_b = run_chunk(vae_config, 1, 5)
  jax.tree.map(np.testing.assert_array_equal, (state_a, metrics_a), (state_b, metrics_b))
  state_c, _ = run_chunk(vae_config, 2, 5)
  assert not np.array_equal(state_a.params["decoder"]["Dense_1"]["kernel"],
                            state_c.params["decoder"]["Dense_1"]["kernel"])
  part, _ = run_chunk(vae_config, 1, 2)
  part, _ = run_chunk(vae_config, 1, 3, part)
  jax.tree.map(np.testing.assert_array_equal, state_a, part)
  assert int(state_a.step) == 5 and np.isnan(metrics_a["loss"][5:]).all()


def test_conditional_chunks_need_the_labels(vae_config):
  vae_config.conditional = True
  with pytest.raises(ValueError, match="needs labels_N"):
    run_chunk(vae_config, 1, 2)  # the pixels alone


@pytest.mark.slow
def test_run_writes_outputs(vae_config, tmp_path):
  vae_config.eval_interval = 3
  summary = train_vae(vae_config, tmp_path)
  assert summary["step"] == 6
  rows = [r for r in loop.MetricsLog.read(tmp_path / "metrics.jsonl") if "kind" not in r]
  assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]
  assert set(rows[0]) == {"step", "loss", "neg_elbo", "kl", "recon", "wall_s"}
  result = json.loads((tmp_path / "eval.json").read_text())
  assert result["num_examples"] == 40 and result["nll_k"] == 12 and result["iwae_k"] == 3
  assert result["neg_elbo"] >= result["neg_iwae_bound"] >= result["nll"] > 0
  evals = [r for r in loop.MetricsLog.read(tmp_path / "metrics.jsonl") if r.get("kind")]
  assert [r["step"] for r in evals] == [3, 6] and evals[0]["num_examples"] == 1000
  pictures = {"reconstructions.png", "samples.png", "interpolation.png", "traversal.png",
              "manifold.png", "latent_scatter.png", "loss_curve.png"}  # latent_dim 2: all of them
  assert pictures <= {p.name for p in tmp_path.glob("*.png")}
  assert sorted(p.name for p in (tmp_path / "images").glob("*.png")) == [
      "mnist_0.png", "mnist_3.png", "mnist_6.png"]
  assert checkpoint_steps(tmp_path) == [3, 6]
  assert result["conditional"] is False and not (tmp_path / "samples_by_class.png").exists()
  images = sampling.sample_images(tmp_path, 1500, seed=1)
  assert images.shape == (1500, 28, 28) and images.dtype == np.float32
  assert 0.0 <= images.min() and images.max() <= 1.0 and images.std() > 0.01
  np.testing.assert_array_equal(images, sampling.sample_images(tmp_path, 1500, seed=1))
  with pytest.raises(ConfigError, match="^label 3: .* is not conditional"):
    sampling.sample_images(tmp_path, 10, label=3)
  earlier = sampling.sample_images(tmp_path, 10, seed=1, step=3)  # any kept step
  assert not np.allclose(earlier, images[:10])
  with pytest.raises(ConfigError, match="^drs keeps a GAN's samples; .* is a VAE run"):
    sampling.sample_images(tmp_path, 10, use_drs=True)


@pytest.mark.slow
def test_conditional_run_samples_by_class(vae_config, tmp_path):
  vae_config.conditional = True
  summary = train_vae(vae_config, tmp_path)
  result = json.loads((tmp_path / "eval.json").read_text())
  assert result["conditional"] is True  # the figures are bounds on log p(x|y)
  assert result["neg_elbo"] >= result["neg_iwae_bound"] >= result["nll"] > 0
  assert (tmp_path / "samples_by_class.png").stat().st_size > 1000
  assert "samples_by_class.png" in summary["pictures"] and not (tmp_path / "manifold.png").exists()
  sample = functools.partial(vae_sampling.sample_images, tmp_path, 30, 1)
  by_label = [sample(label=k) for k in range(10)]
  np.testing.assert_array_equal(by_label[3], sample(label=3))
  assert not np.array_equal(by_label[3], by_label[5])
  # Without a label each sample decodes the same z with a uniformly drawn label.
  mixed = sample()
  distance_NxK = np.stack([np.abs(mixed - images).max(axis=(1, 2)) for images in by_label], 1)
  assert (distance_NxK.min(axis=1) < 1e-6).all()
  assert len(set(distance_NxK.argmin(axis=1))) > 3
  with pytest.raises(ConfigError, match="^label must be a class"):
    sampling.sample_images(tmp_path, 30, 1, label=10)
  # An unconditional config refuses its checkpoint, naming the key, and writes nothing.
  before = snapshot(tmp_path)
  vae_config.update(conditional=False, num_steps=9)
  with pytest.raises(CheckpointError, match="conditional=True"):
    train_vae(vae_config, tmp_path)
  assert snapshot(tmp_path) == before


@pytest.mark.slow
@pytest.mark.parametrize("conditional", [False, True])
def test_interrupted_run_resumes_bit_identically(vae_config, tmp_path, monkeypatch, conditional):
  vae_config.conditional = conditional
  train_vae(vae_config, tmp_path / "whole")
  save_grid = vae_family.save_prior_grid

  def interrupt_at_step_3(setup, state, grid_in, workdir, config, step):
    save_grid(setup, state, grid_in, workdir, config, step)
    if step == 3:
      raise KeyboardInterrupt  # Ctrl-C between chunks: the loop checkpoints step 3

  monkeypatch.setattr(vae_family, "save_prior_grid", interrupt_at_step_3)
  with pytest.raises(KeyboardInterrupt):
    train_vae(vae_config, tmp_path / "resumed")
  assert not (tmp_path / "resumed" / "eval.json").exists()
  monkeypatch.undo()
  summary = train_vae(vae_config, tmp_path / "resumed")
  assert summary["start_step"] == 3 and summary["step"] == 6
  whole_state, _ = restore_final(vae_config, tmp_path / "whole")
  resumed_state, step = restore_final(vae_config, tmp_path / "resumed")
  assert step == 6
  jax.tree.map(np.testing.assert_array_equal, whole_state, resumed_state)
  assert without_wall_time(tmp_path / "whole" / "metrics.jsonl") == \
      without_wall_time(tmp_path / "resumed" / "metrics.jsonl")
  whole, resumed = (json.loads((tmp_path / d / "eval.json").read_text())
                    for d in ("whole", "resumed"))
  assert {**whole, "eval_s": 0} == {**resumed, "eval_s": 0}


@pytest.mark.slow
def test_foreign_checkpoints_are_refused_and_nothing_overwritten(vae_config, tmp_path):
  train_vae(vae_config, tmp_path)
  before = snapshot(tmp_path)
  for key, value in (("latent_dim", 3), ("binarization", "static"), ("model", "iwae"),
                     ("conditional", True), ("learning_rate", 0.5)):
    other = vae_config.copy_and_resolve_references()
    other.update({key: value, "num_steps": 9})
    with pytest.raises(CheckpointError, match=key):
      train_vae(other, tmp_path)
  assert snapshot(tmp_path) == before


@pytest.mark.slow
def test_autoencoder_run_and_its_refusal_to_sample(vae_config, tmp_path):
  vae_config.update(model="ae", latent_dim=3, binarization="none", decoder="gaussian",
                    dataset="fashion_mnist", eval_interval=3)
  summary = train_vae(vae_config, tmp_path)
  assert set(summary["eval"]) >= {"recon", "num_examples", "active_units"}
  assert "nll" not in summary["eval"] and not (tmp_path / "samples.png").exists()
  assert (tmp_path / "traversal.png").exists()
  assert (tmp_path / "images" / "fashion_mnist_6.png").exists()
  assert len(loop.MetricsLog.read(tmp_path / "metrics.jsonl")) == 6 + 2  # steps, evaluations
  with pytest.raises(ConfigError, match="no prior"):
    sampling.sample_images(tmp_path, 10)


def test_a_decaying_schedule_may_not_be_stretched_on_resume(vae_config, tmp_path):
  vae_config.lr_schedule = "cosine"
  config = vae_cfg.resolve(vae_config)
  saved = checkpoint.make_record("vae", config)["config"]
  longer = config.copy_and_resolve_references()
  longer.num_steps = 60
  vae_cfg.check_resume(saved, config, 6)  # the same schedule
  with pytest.raises(ConfigError, match="config.num_steps 60 .*cosine learning rates"):
    vae_cfg.check_resume(saved, longer, 6)
  constant = config.copy_and_resolve_references()
  constant.update(lr_schedule="constant", num_steps=60)
  vae_cfg.check_resume({**saved, "lr_schedule": "constant"}, constant, 6)
