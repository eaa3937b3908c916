"""Discriminator rejection sampling: the acceptance rule, the ratio network, real tiny runs."""

import json
import shutil

import jax
import numpy as np
import optax
import pytest

from genjax import sampling
from genjax.core.errors import CheckpointError, ConfigError, WorkdirError
from genjax.data.images import load_dataset, scale_to_tanh_range
from genjax.eval.scoring import EvaluationError
from genjax.gan import drs as rejection
from genjax.gan.sampling import class_seed, gan_draws
from tests.conftest import run_experiment

pytestmark = pytest.mark.slow  # end to end on tiny runs: the full suite's tier


def test_accept_probs_are_the_capped_ratio():
  np.testing.assert_allclose(rejection.accept_probs([0.0, -1.0, 2.0, 1.0], 1.0),
                             [np.exp(-1.0), np.exp(-2.0), 1.0, 1.0])


def test_thresholds_are_each_class_percentile():
  logits = np.array([0.0, 1.0, 2.0, 10.0, 20.0, 30.0])
  labels = np.array([0, 0, 0, 1, 1, 1])
  np.testing.assert_allclose(rejection.thresholds_C(logits, labels, 50, 2), [1.0, 20.0])
  np.testing.assert_allclose(rejection.thresholds_C(logits, None, 100, 0), [30.0])


def test_the_true_log_ratio_turns_the_proposal_into_the_target():
  # Proposal N(0, 1), target N(1, 1): log p/q = x - 1/2. Rejection with the exact ratio
  # (threshold: the pool's largest logit) must leave N(1, 1) samples.
  x = np.random.default_rng(0).normal(size=400_000)
  logits = x - 0.5
  keep = np.random.default_rng(1).random(x.size) < rejection.accept_probs(
      logits, rejection.thresholds_C(logits, None, 100, 0)[0])
  assert abs(x[keep].mean() - 1.0) < 0.03 and abs(x[keep].std() - 1.0) < 0.03
  assert abs(x.mean()) < 0.01  # the proposal itself was not the target


def test_ratio_network_learns_a_visible_difference(data_root):
  # "G" draws the real digits shifted 4 pixels right: trivially told apart, if training works.
  images, labels = load_dataset("mnist", "train", data_root)
  real = scale_to_tanh_range(images[:2000])
  fake = np.roll(real, 4, axis=2)
  train_pools, held_out = rejection.pools_of(real, labels[:2000], fake, labels[:2000],
                                             np.random.default_rng(0))
  net, tx = rejection.ratio_network(10, (16, 32)), optax.adam(1e-3)
  state = rejection.init_ratio_state(net, tx, jax.random.key(0))
  before = rejection.holdout_fit(net, state.params, held_out)
  state, metrics = rejection.compiled_chunk(net, tx, 32)(state, train_pools, jax.random.key(1),
                                                           60)
  after = rejection.holdout_fit(net, state.params, held_out)
  assert int(state.step) == 60
  assert after["accuracy"] > 0.95 and after["bce"] < 0.5 * before["bce"], (before, after)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_gan_run):
  """Copies of the tiny conditional and unconditional DCGAN runs, each with a DRS fit."""
  out = {}
  for recipe in ("cgan", "dcgan"):
    out[recipe] = tmp_path_factory.mktemp(recipe) / "run"
    shutil.copytree(tiny_gan_run(f"{recipe},tiny"), out[recipe])
    rejection.fit(out[recipe], num_steps=200, pool_per_class=200, percentile=75.0,
                  log=lambda line: None, channels=(16, 32))
  return out


def test_fit_writes_a_record_and_a_checkpoint(runs):
  record = json.loads((runs["cgan"] / "drs" / "drs.json").read_text())
  assert record["g_step"] == 6 and record["num_classes"] == 10
  assert len(record["thresholds"]) == 10 and len(record["expected_acceptance"]) == 10
  assert all(0 < a < 0.97 for a in record["expected_acceptance"]), record  # threshold: p75
  assert (runs["cgan"] / "drs" / "checkpoints" / "6").is_dir()
  assert len(json.loads((runs["dcgan"] / "drs" / "drs.json").read_text())["thresholds"]) == 1


@pytest.mark.parametrize("recipe,label", [("cgan", 3), ("dcgan", None)])
def test_kept_samples_are_g_samples_in_order_and_some_are_rejected(runs, recipe, label):
  candidates = gan_draws(runs[recipe]).chunk(5, label, 0).reshape(1000, -1)
  kept = sampling.sample_images(runs[recipe], 40, seed=5, label=label, use_drs=True)
  np.testing.assert_array_equal(kept, sampling.sample_images(runs[recipe], 40, 5, label,
                                                             use_drs=True))
  # Every kept image is one of the seed's candidates, in the stream's order, and (threshold:
  # the 75th percentile) far from all of them are kept.
  rows = [np.flatnonzero((candidates == k.reshape(-1)).all(axis=1)) for k in kept]
  assert all(len(r) == 1 for r in rows)
  positions = [r[0] for r in rows]
  assert positions == sorted(positions) and positions[-1] >= 45


def test_unlabelled_conditional_samples_cycle_through_the_classes(runs):
  images = sampling.sample_images(runs["cgan"], 23, seed=2, use_drs=True)
  threes = sampling.sample_images(runs["cgan"], 2, seed=class_seed(2, 3), label=3,
                                  use_drs=True)
  np.testing.assert_array_equal(images[3::10], threes)


def test_a_fit_is_never_overwritten(runs):
  before = (runs["cgan"] / "drs" / "drs.json").read_text()
  with pytest.raises(WorkdirError, match="already holds a DRS fit"):
    rejection.fit(runs["cgan"], num_steps=5, pool_per_class=10)
  assert (runs["cgan"] / "drs" / "drs.json").read_text() == before


def test_bad_requests_are_one_line_errors(runs, tmp_path):
  with pytest.raises(ConfigError, match="fitted to the G of step 6, not step 3"):
    sampling.sample_images(runs["cgan"], 4, label=1, step=3, use_drs=True)
  for kwargs, flag in (({"num_steps": 0}, "^num_steps"), ({"percentile": 0.0}, "^percentile"),
                       ({"pool_per_class": -1}, "^pool_per_class")):
    with pytest.raises(ConfigError, match=flag):
      rejection.fit(runs["cgan"], **kwargs)
  (tmp_path / "config.json").write_text((runs["cgan"] / "config.json").read_text())
  with pytest.raises(CheckpointError, match="fit_drs.py"):
    rejection.read_record(tmp_path)


def test_entry_points(runs, tmp_path, data_root):
  result = run_experiment("evaluate.py", f"--workdir={runs['cgan']}", "--drs", "--num=200",
                          "--noreferences", f"--json={tmp_path / 'e.json'}", data_root=data_root)
  assert result.returncode == 0, result.stderr
  report = json.loads((tmp_path / "e.json").read_text())
  assert report["num_samples"] == 200 and report["drs"]["g_step"] == 6
  assert "samples kept by DRS (200-step fit to the G of step 6" in result.stdout
  result = run_experiment("fit_drs.py", f"--workdir={runs['cgan']}", "--num_steps=5",
                          data_root=data_root)
  assert result.returncode == 1 and "Traceback" not in result.stderr
  assert result.stderr.strip().splitlines()[-1].startswith("error: ")
  assert "already holds a DRS fit" in result.stderr
  out = tmp_path / "kept.npz"
  result = run_experiment("sample.py", f"--workdir={runs['dcgan']}", "--drs", "--num=30",
                          f"--out={out}", data_root=data_root)
  assert result.returncode == 0, result.stderr
  np.testing.assert_array_equal(np.load(out)["images"],
                                sampling.sample_images(runs["dcgan"], 30, 0, use_drs=True))


def test_drs_needs_a_workdir(tmp_path):
  with pytest.raises(EvaluationError, match="^drs keeps samples of --workdir"):
    sampling.evaluate(samples=tmp_path / "x.npz", use_drs=True)
