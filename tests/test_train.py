"""The training loop: config checks, resume bit-identity, divergence, and nothing overwritten."""

import json
from pathlib import Path

import jax
import numpy as np
import pytest

from genjax import checkpoint, evaluation, train
from genjax.data import DataError
from genjax.errors import CheckpointError, ConfigError, TrainingDiverged, WorkdirError
from genjax.train_state import build_gan, init_state


def snapshot(folder: Path) -> dict:
  """Every file under folder with its bytes: proof that nothing was written."""
  return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
          if p.is_file()}


def restore_final(config, workdir):
  gan = build_gan(config)
  abstract = jax.eval_shape(lambda: init_state(gan, jax.random.key(0)))
  manager = checkpoint.open_manager(workdir)
  return checkpoint.restore_latest(manager, abstract, checkpoint.identity_of(config))


@pytest.mark.parametrize("key,value", [
    ("batch_size", 0), ("batch_size", -4), ("latent_dim", 0), ("sample_interval", 0),
    ("log_interval", -1), ("checkpoint_interval", 0), ("num_steps", -1), ("grid_size", 0),
    ("d_update", "both"), ("learning_rate", 0.0), ("g_hidden", (16, 0)), ("beta1", 1.0)])
def test_bad_config_names_the_field(tiny_config, key, value):
  tiny_config[key] = value
  with pytest.raises(ConfigError, match=f"config.{key}"):
    train.validate_config(tiny_config)


def test_unknown_dataset(tiny_config, tmp_path):
  tiny_config.dataset = "cifar10"
  with pytest.raises(ConfigError, match="cifar10"):
    train.train_and_evaluate(tiny_config, tmp_path / "run")
  assert not (tmp_path / "run").exists()


def test_unwritable_workdir(tiny_config, tmp_path):
  blocker = tmp_path / "a_file"
  blocker.write_text("not a folder")
  with pytest.raises(WorkdirError, match="a_file"):
    train.train_and_evaluate(tiny_config, blocker / "run")


def test_missing_data_dir_is_named(tiny_config, tmp_path):
  tiny_config.data_dir = str(tmp_path / "nowhere")
  with pytest.raises(DataError, match="nowhere"):
    train.train_and_evaluate(tiny_config, tmp_path / "run")


def test_next_chunk_length_stops_at_events(tiny_config):
  tiny_config.update(num_steps=20, sample_interval=7, checkpoint_interval=5, steps_per_dispatch=4)
  lengths, step = [], 0
  while step < tiny_config.num_steps:
    lengths.append(train.next_chunk_length(step, tiny_config))
    step += lengths[-1]
  assert lengths == [4, 1, 2, 3, 4, 1, 4, 1]  # ends at 4,5,7,10,14,15,19,20


def test_run_writes_outputs(tiny_config, tmp_path):
  summary = train.train_and_evaluate(tiny_config, tmp_path)
  assert summary["step"] == 6
  rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]
  assert set(rows[0]) == {"step", "d_loss", "d_acc", "g_loss", "wall_s"}
  pngs = sorted(p.name for p in (tmp_path / "images").glob("*.png"))
  assert pngs == ["mnist_0.png", "mnist_3.png", "mnist_6.png"]
  assert (tmp_path / "loss_curve.png").stat().st_size > 1000
  assert json.loads((tmp_path / "config.json").read_text())["batch_size"] == 8
  assert sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit()) == [3, 6]


def test_resume_is_bit_identical(tiny_config, tmp_path):
  train.train_and_evaluate(tiny_config, tmp_path / "whole")
  half = tiny_config.copy_and_resolve_references()
  half.num_steps = 3
  train.train_and_evaluate(half, tmp_path / "resumed")
  summary = train.train_and_evaluate(tiny_config, tmp_path / "resumed")
  assert summary["start_step"] == 3 and summary["step"] == 6
  whole_state, _ = restore_final(tiny_config, tmp_path / "whole")
  resumed_state, step = restore_final(tiny_config, tmp_path / "resumed")
  assert step == 6
  jax.tree.map(np.testing.assert_array_equal, whole_state, resumed_state)
  drop_wall = lambda p: [{k: v for k, v in json.loads(l).items() if k != "wall_s"}  # noqa: E731
                         for l in p.read_text().splitlines()]
  assert drop_wall(tmp_path / "whole" / "metrics.jsonl") == \
      drop_wall(tmp_path / "resumed" / "metrics.jsonl")


def test_constant_run_resumed_with_a_decaying_tail_is_the_uninterrupted_run(tiny_config, tmp_path):
  tail = tiny_config.copy_and_resolve_references()
  tail.update(lr_schedule="linear", lr_decay_fraction=0.5)  # full rate to step 3, then to 0
  train.train_and_evaluate(tail, tmp_path / "whole")
  constant = tiny_config.copy_and_resolve_references()
  constant.num_steps = 3
  train.train_and_evaluate(constant, tmp_path / "resumed")
  assert train.train_and_evaluate(tail, tmp_path / "resumed")["start_step"] == 3
  whole_state, _ = restore_final(tail, tmp_path / "whole")
  resumed_state, _ = restore_final(tail, tmp_path / "resumed")
  jax.tree.map(np.testing.assert_array_equal, whole_state, resumed_state)
  train.train_and_evaluate(tiny_config, tmp_path / "plain")  # the tail did slow the updates
  plain_state, _ = restore_final(tiny_config, tmp_path / "plain")
  assert not np.array_equal(jax.tree.leaves(plain_state.g_params)[0],
                            jax.tree.leaves(whole_state.g_params)[0])


def test_foreign_checkpoint_is_refused_and_nothing_overwritten(tiny_config, tmp_path):
  train.train_and_evaluate(tiny_config, tmp_path)
  before = snapshot(tmp_path)
  # A decay over all 9 steps would change the rates of the 6 already taken at a constant one.
  for key, value in (("latent_dim", 16), ("lr_schedule", "linear")):
    other = tiny_config.copy_and_resolve_references()
    other.update({key: value, "num_steps": 9, "lr_decay_fraction": 1.0})
    with pytest.raises(CheckpointError, match=key):
      train.train_and_evaluate(other, tmp_path)
  assert snapshot(tmp_path) == before


def test_corrupt_checkpoint_is_refused_and_nothing_overwritten(tiny_config, tmp_path):
  train.train_and_evaluate(tiny_config, tmp_path)
  latest = tmp_path / "checkpoints" / "6"
  for path in latest.rglob("*"):
    if path.is_file() and "state" in path.parts:
      path.write_bytes(b"\x00garbage")  # every array file of the state
  before = snapshot(tmp_path)
  longer = tiny_config.copy_and_resolve_references()
  longer.num_steps = 9
  with pytest.raises(CheckpointError, match="checkpoints/6"):
    train.train_and_evaluate(longer, tmp_path)
  assert snapshot(tmp_path) == before


def test_divergence_stops_and_keeps_last_good_checkpoint(tiny_config, tmp_path):
  half = tiny_config.copy_and_resolve_references()
  half.num_steps = 3
  train.train_and_evaluate(half, tmp_path)
  good = snapshot(tmp_path / "checkpoints" / "3")
  tiny_config.learning_rate = 1e38  # not part of a run's identity: may change on resume
  with pytest.raises(TrainingDiverged, match="last good checkpoint is step 3"):
    train.train_and_evaluate(tiny_config, tmp_path)
  steps_kept = sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit())
  assert steps_kept == [3]
  assert snapshot(tmp_path / "checkpoints" / "3") == good
  state, step = restore_final(tiny_config, tmp_path)
  assert step == 3 and bool(train.all_finite(state))


# --- the recipes beyond the tutorial -------------------------------------------------------

from genjax.configs.gan_mnist import RECIPES, get_config  # noqa: E402


@pytest.mark.parametrize("key,value", [
    ("arch", "resnet"), ("loss", "bce"), ("n_critic", 0), ("ema_decay", 1.0),
    ("gp_weight", -1.0), ("r1_weight", -0.5), ("lr_schedule", "cosine"), ("lr_decay_fraction", 0.0),
    ("g_channels", (8, 0)), ("g_channels", (8, 8, 8)), ("d_learning_rate", -1e-4),
    ("mode_seeking", -1.0), ("g_refine", -4), ("consistency_weight", -1.0),
    ("consistency_shift", 14), ("consistency_shift", -1), ("d_mbstd", 1), ("d_mbstd", 3)])
def test_bad_recipe_config_names_the_field(tiny_config, key, value):
  tiny_config.arch = "dcgan"
  tiny_config[key] = value
  with pytest.raises(ConfigError, match=f"config.{key}"):
    train.validate_config(tiny_config)


def test_mode_seeking_needs_an_even_batch_and_refine_the_dcgan(tiny_config):
  tiny_config.update(mode_seeking=1.0, batch_size=7)
  with pytest.raises(ConfigError, match="config.batch_size must be even"):
    train.validate_config(tiny_config)
  tiny_config.update(mode_seeking=0.0, batch_size=8, g_refine=4, arch="mlp")
  with pytest.raises(ConfigError, match="config.g_refine .*arch='dcgan'"):
    train.validate_config(tiny_config)
  tiny_config.update(g_refine=0, g_blur=True)
  with pytest.raises(ConfigError, match="config.g_blur .*arch='dcgan'"):
    train.validate_config(tiny_config)
  tiny_config.update(g_blur=False, g_class_bn=True, arch="dcgan", conditional=False)
  with pytest.raises(ConfigError, match="config.g_class_bn .*config.conditional=True"):
    train.validate_config(tiny_config)


@pytest.mark.parametrize("penalty", ["r1_weight", "consistency_weight"])
def test_penalties_need_the_joint_update(tiny_config, penalty):
  tiny_config.update({penalty: 1.0, "d_update": "seed"})
  with pytest.raises(ConfigError, match=f"config.{penalty} needs config.d_update='joint'"):
    train.validate_config(tiny_config)


@pytest.mark.parametrize("dataset", ["mnist", "fashion_mnist"])
@pytest.mark.parametrize("recipe", [r for r in RECIPES if r != "mlp"])
def test_every_recipe_trains_end_to_end(recipe, dataset, data_root, tmp_path):
  config = get_config(f"{recipe},tiny")
  config.update(data_dir=data_root, dataset=dataset, num_steps=4, sample_interval=4,
                checkpoint_interval=4)
  summary = train.train_and_evaluate(config, tmp_path)
  assert summary["step"] == 4
  rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert len(rows) == 4 and all(np.isfinite(r[k]) for r in rows for k in ("d_loss", "g_loss"))
  assert (tmp_path / "images" / f"{dataset}_4.png").exists()
  assert (tmp_path / "checkpoints" / "4").is_dir()


def test_cgan_fashion_is_cgan_with_its_fashion_changes():
  base, best = get_config("cgan"), get_config("cgan_fashion")
  changed = {k for k in best if best[k] != base[k]}
  assert changed == {"dataset", "g_channels", "g_refine", "g_blur", "d_mbstd", "ema_decay",
                     "num_steps"}
  # the checkpoints kept at the end are the ones the README averages
  kept = [best.num_steps - i * best.checkpoint_interval for i in range(best.keep_checkpoints)]
  assert sorted(kept) == [40000, 44000, 48000]
  train.validate_config(best)


def test_conditional_run_draws_one_row_per_class_and_scores_labels(data_root, tmp_path):
  config = get_config("cgan,tiny")
  config.update(data_dir=data_root, eval_interval=3, eval_num=200)
  summary = train.train_and_evaluate(config, tmp_path)
  gan = build_gan(config)
  assert train.grid_rows_cols(gan, config) == (10, 10)
  assert 0.0 <= summary["final_eval"]["label_accuracy"] <= 1.0
  assert summary["final_eval"]["class_min"] <= 0.1 <= summary["final_eval"]["class_max"]
  # evaluate.py on a conditional run: FIDs per class for the samples and the real floor
  rows = evaluation.evaluate_source(workdir=tmp_path, num=200)["rows"]
  assert len(rows["samples"]["class_fid"]) == len(rows["real_train"]["class_fid"]) == 10
  assert np.mean(rows["samples"]["class_fid"]) > np.mean(rows["real_train"]["class_fid"])


def test_resume_is_bit_identical_with_spectral_norm_and_ema(data_root, tmp_path):
  config = get_config("hinge_sn,tiny")
  config.data_dir = data_root
  train.train_and_evaluate(config, tmp_path / "whole")
  half = config.copy_and_resolve_references()
  half.num_steps = 3
  train.train_and_evaluate(half, tmp_path / "resumed")
  train.train_and_evaluate(config, tmp_path / "resumed")
  whole, _ = restore_final(config, tmp_path / "whole")
  resumed, step = restore_final(config, tmp_path / "resumed")
  assert step == 6 and whole.d_state and whole.g_ema
  jax.tree.map(np.testing.assert_array_equal, whole, resumed)
