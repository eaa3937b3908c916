"""The GAN on the core loop: config checks, its outputs, resume, schedules and every recipe."""

import json

import jax
import numpy as np
import pytest

from genjax import sampling
from genjax.configs.gan_mnist import get_config
from genjax.core import checkpoint, loop, sharding
from genjax.core.errors import CheckpointError, ConfigError
from genjax.data.image_sets import filled
from genjax.gan import config as gan_config
from genjax.gan.family import GANFamily, grid_rows_cols, train_gan
from genjax.gan.state import build_gan, init_state
from tests.conftest import snapshot


def restore_final(config, workdir):
  config = filled(config)
  gan = build_gan(config)
  abstract = jax.eval_shape(lambda: init_state(gan, jax.random.key(0)))
  manager = checkpoint.open_manager(workdir)
  try:
    return checkpoint.restore_latest(manager, abstract, checkpoint.make_record("gan", config),
                                     GANFamily.resumable)
  finally:
    manager.close()


@pytest.mark.parametrize("key,value", [
    ("batch_size", 0), ("batch_size", -4), ("latent_dim", 0), ("sample_interval", 0),
    ("log_interval", -1), ("checkpoint_interval", 0), ("num_steps", -1), ("grid_size", 0),
    ("d_update", "seed"), ("learning_rate", 0.0), ("g_hidden", (16, 0)), ("beta1", 1.0),
    ("dataset", "cifar10"), ("adam_form", "adamw")])
def test_bad_config_names_the_field(tiny_config, key, value):
  tiny_config[key] = value
  with pytest.raises(ConfigError, match=f"config.{key}"):
    gan_config.validate(tiny_config)


@pytest.mark.parametrize("key,value", [
    ("arch", "resnet"), ("loss", "bce"), ("n_critic", 0), ("ema_decay", 1.0),
    ("gp_weight", -1.0), ("r1_weight", -0.5), ("lr_schedule", "cosine"),
    ("lr_decay_fraction", 0.0), ("g_channels", (8, 0)), ("g_channels", (8, 8, 8)),
    ("d_learning_rate", -1e-4), ("mode_seeking", -1.0), ("g_refine", -4),
    ("consistency_weight", -1.0), ("consistency_shift", 14), ("consistency_shift", -1),
    ("d_mbstd", 1), ("d_mbstd", 3)])
def test_bad_recipe_config_names_the_field(tiny_config, key, value):
  tiny_config.arch = "dcgan"
  tiny_config[key] = value
  with pytest.raises(ConfigError, match=f"config.{key}"):
    gan_config.validate(tiny_config)


def test_recipe_combinations_are_checked(tiny_config):
  tiny_config.update(mode_seeking=1.0, batch_size=7)
  with pytest.raises(ConfigError, match="config.batch_size must be even"):
    gan_config.validate(tiny_config)
  tiny_config.update(mode_seeking=0.0, batch_size=8, g_refine=4, arch="mlp")
  with pytest.raises(ConfigError, match="config.g_refine .*arch='dcgan'"):
    gan_config.validate(tiny_config)
  tiny_config.update(g_refine=0, g_blur=True)
  with pytest.raises(ConfigError, match="config.g_blur .*arch='dcgan'"):
    gan_config.validate(tiny_config)
  tiny_config.update(g_blur=False, g_class_bn=True, arch="dcgan", conditional=False)
  with pytest.raises(ConfigError, match="config.g_class_bn .*config.conditional=True"):
    gan_config.validate(tiny_config)
  for penalty in ("r1_weight", "consistency_weight"):
    tiny_config.update({"g_class_bn": False, penalty: 1.0, "d_update": "keras"})
    with pytest.raises(ConfigError, match=f"config.{penalty} needs config.d_update='joint'"):
      gan_config.validate(tiny_config)
    tiny_config[penalty] = 0.0


def test_a_run_writes_the_gan_outputs(tiny_gan_run):
  workdir = tiny_gan_run("tiny")
  rows = loop.MetricsLog.read(workdir / "metrics.jsonl")
  assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]
  assert set(rows[0]) == {"step", "d_loss", "d_acc", "g_loss", "wall_s"}
  pngs = sorted(p.name for p in (workdir / "images").glob("*.png"))
  assert pngs == ["mnist_0.png", "mnist_3.png", "mnist_6.png"]
  assert (workdir / "loss_curve.png").stat().st_size > 1000
  assert not (workdir / "eval_curve.png").exists()  # no evaluation in the tiny config
  config = json.loads((workdir / "config.json").read_text())
  assert config["batch_size"] == 8 and config["d_update"] == "keras"
  assert sorted(int(p.name) for p in (workdir / "checkpoints").iterdir()) == [3, 6]


@pytest.mark.slow
def test_resume_is_bit_identical_with_spectral_norm_and_ema(data_root, tmp_path):
  config = get_config("hinge_sn,tiny")
  config.data_dir = data_root
  train_gan(config, tmp_path / "whole")
  half = config.copy_and_resolve_references()
  half.num_steps = 3
  train_gan(half, tmp_path / "resumed")
  assert train_gan(config, tmp_path / "resumed")["start_step"] == 3
  whole, _ = restore_final(config, tmp_path / "whole")
  resumed, step = restore_final(config, tmp_path / "resumed")
  assert step == 6 and whole.d_state and whole.g_ema
  jax.tree.map(np.testing.assert_array_equal, whole, resumed)


def test_a_decaying_tail_may_follow_a_constant_run_but_not_rewrite_its_past():
  constant = checkpoint.make_record("gan", get_config("tiny"))
  tail = get_config("tiny")
  tail.update(num_steps=10, lr_schedule="linear", lr_decay_fraction=0.4)  # decays 6 -> 10
  family = GANFamily(GANFamily.validate(tail), sharding.make_mesh(1))
  family.check_resume(constant, 7)  # steps 0..6 keep the full rate
  with pytest.raises(CheckpointError, match="lr_schedule.*before 8"):
    family.check_resume(constant, 8)


@pytest.mark.slow
def test_a_constant_run_resumed_with_a_tail_is_the_uninterrupted_run(tiny_config, tmp_path):
  tail = tiny_config.copy_and_resolve_references()
  tail.update(lr_schedule="linear", lr_decay_fraction=0.5)  # full rate to step 3, then to 0
  train_gan(tail, tmp_path / "whole")
  constant = tiny_config.copy_and_resolve_references()
  constant.num_steps = 3
  train_gan(constant, tmp_path / "resumed")
  assert train_gan(tail, tmp_path / "resumed")["start_step"] == 3
  whole_state, _ = restore_final(tail, tmp_path / "whole")
  resumed_state, _ = restore_final(tail, tmp_path / "resumed")
  jax.tree.map(np.testing.assert_array_equal, whole_state, resumed_state)
  refused = tail.copy_and_resolve_references()
  refused.num_steps = 9  # a window over 4.5 -> 9 would change steps 4 and 5
  before = snapshot(tmp_path / "resumed")
  with pytest.raises(CheckpointError, match="lr_schedule"):
    train_gan(refused, tmp_path / "resumed")
  assert snapshot(tmp_path / "resumed") == before


@pytest.mark.slow
# The losses and penalties of dcgan, lsgan and r1 are checked step by step in test_steps.py.
@pytest.mark.parametrize("recipe,dataset", [
    ("hinge_sn", "fashion_mnist"), ("wgan_gp", "mnist"), ("cgan", "mnist"),
    ("cgan_fashion", "fashion_mnist")])
def test_every_recipe_trains_end_to_end(recipe, dataset, data_root, tmp_path):
  config = get_config(f"{recipe},tiny")
  config.update(data_dir=data_root, dataset=dataset, num_steps=2, sample_interval=2,
                checkpoint_interval=2)
  summary = train_gan(config, tmp_path)
  assert summary["step"] == 2
  rows = loop.MetricsLog.read(tmp_path / "metrics.jsonl")
  assert len(rows) == 2 and all(np.isfinite(r[k]) for r in rows for k in ("d_loss", "g_loss"))
  assert (tmp_path / "images" / f"{dataset}_2.png").exists()
  assert (tmp_path / "checkpoints" / "2").is_dir()


def test_cgan_fashion_is_cgan_with_its_fashion_changes():
  base, best = get_config("cgan"), get_config("cgan_fashion")
  changed = {k for k in best if best[k] != base[k]}
  assert changed == {"dataset", "g_channels", "g_refine", "g_blur", "d_mbstd", "ema_decay",
                     "num_steps"}
  # the checkpoints kept at the end are the ones the documented average uses
  kept = [best.num_steps - i * best.checkpoint_interval for i in range(best.keep_checkpoints)]
  assert sorted(kept) == [40000, 44000, 48000]
  gan_config.validate(best)


@pytest.mark.slow
def test_a_conditional_run_draws_one_row_per_class_and_is_scored_by_class(tiny_gan_run):
  workdir = tiny_gan_run("cgan,tiny")
  config = get_config("cgan,tiny")
  assert grid_rows_cols(build_gan(filled(config)), config) == (10, 10)
  report = sampling.evaluate(workdir=workdir, num=200)
  rows = report["rows"]
  assert 0.0 <= rows["samples"]["label_accuracy"] <= 1.0
  assert len(rows["samples"]["class_fid"]) == len(rows["real_train"]["class_fid"]) == 10
  assert np.mean(rows["samples"]["class_fid"]) > np.mean(rows["real_train"]["class_fid"])


@pytest.mark.slow
def test_training_evaluates_and_keeps_the_best_checkpoint(tiny_config, tmp_path):
  tiny_config.update(eval_interval=3, eval_num=200)
  summary = train_gan(tiny_config, tmp_path)
  rows = loop.MetricsLog.read(tmp_path / "metrics.jsonl")
  evals = [r for r in rows if r.get("kind") == "eval"]
  assert [r["step"] for r in evals] == [3, 6]
  assert all(r["fid"] > 0 and 1 <= r["score"] <= 10 for r in evals)
  best = [p.name for p in (tmp_path / "checkpoints_best").iterdir() if p.name.isdigit()]
  best_step = min(evals, key=lambda r: r["fid"])["step"]
  assert best == [str(best_step)]
  assert (tmp_path / "eval_curve.png").stat().st_size > 1000
  assert summary["final_eval"]["step"] == 6 and summary["eval_s"] > 0
  # Resuming from step 3 replays step 6's evaluation and keeps the best where it was.
  longer = tiny_config.copy_and_resolve_references()
  longer.num_steps = 9
  train_gan(longer, tmp_path)
  evals = loop.MetricsLog.read(tmp_path / "metrics.jsonl")
  assert [r["step"] for r in evals if r.get("kind") == "eval"] == [3, 6, 9]
