"""Checkpoint averaging and standing BatchNorm statistics, on tiny real runs."""

import jax
import numpy as np
import pytest

from genjax import sampling
from genjax.core.errors import CheckpointError, ConfigError, WorkdirError
from genjax.gan import averaging
from genjax.gan.sampling import restore_generator
from genjax.gan.state import balanced_labels, sampling_variables
from tests.conftest import run_experiment

pytestmark = pytest.mark.slow  # end to end on tiny runs: the full suite's tier


@pytest.fixture
def runs(tiny_gan_run):
  """Tiny runs with checkpoints at 3 and 6: a conditional DCGAN with EMA, the MLP without."""
  return {variant: tiny_gan_run(variant) for variant in ("cgan,tiny", "tiny")}


def leaves(tree):
  return [np.asarray(l) for l in jax.tree.leaves(tree)]


@pytest.mark.parametrize("variant", ["cgan,tiny", "tiny"])
def test_average_is_the_leafwise_mean(runs, variant, tmp_path):
  workdir = runs[variant]
  averaging.average_checkpoints(workdir, [6, 3], tmp_path / "avg", standing_batches=0)
  gan, state_3, _, _ = restore_generator(workdir, 3)
  _, state_6, _, _ = restore_generator(workdir, 6)
  _, averaged, _, step = restore_generator(tmp_path / "avg")
  assert step == 6
  a, b = leaves(sampling_variables(gan, state_3)), leaves(sampling_variables(gan, state_6))
  assert any(not np.array_equal(x, y) for x, y in zip(a, b))  # the two really differ
  for mean, x, y in zip(leaves(sampling_variables(gan, averaged)), a, b):
    np.testing.assert_allclose(mean, (x + y) / 2, rtol=1e-6, atol=1e-7)


def test_one_checkpoint_without_standing_statistics_samples_the_same(runs, tmp_path):
  workdir = runs["cgan,tiny"]
  averaging.average_checkpoints(workdir, [6], tmp_path / "one", standing_batches=0)
  np.testing.assert_array_equal(sampling.sample_images(tmp_path / "one", 20, seed=2),
                                sampling.sample_images(workdir, 20, seed=2))


@pytest.mark.parametrize("variant", ["cgan,tiny", "tiny"])
def test_standing_statistics_of_one_batch_are_its_training_mode_statistics(runs, variant):
  gan, state, config, _ = restore_generator(runs[variant])
  variables = sampling_variables(gan, state)
  key, batch = jax.random.key(4), 16
  stats = averaging.standing_batch_stats(gan, variables, key, 1, batch)
  z = jax.random.normal(jax.random.split(key, 1)[0], (batch, config.latent_dim))
  labels = balanced_labels(batch) if gan.num_classes else None
  in_training, _ = gan.generator.apply(variables, z, train=True, labels_B=labels,
                                       mutable=["batch_stats"])
  with_standing = gan.generator.apply({**variables, "batch_stats": stats}, z, train=False,
                                      labels_B=labels)
  np.testing.assert_allclose(with_standing, in_training, atol=2e-5)
  stored = gan.generator.apply(variables, z, train=False, labels_B=labels)
  assert not np.allclose(stored, in_training, atol=2e-5)  # the test can tell them apart


def test_standing_statistics_change_the_samples(runs, tmp_path):
  workdir = runs["cgan,tiny"]
  record = averaging.average_checkpoints(workdir, [6], tmp_path / "standing", standing_batches=3)
  assert record["standing_batches"] == 3 and (tmp_path / "standing" / "averaged_from.json").exists()
  assert not np.allclose(sampling.sample_images(tmp_path / "standing", 20),
                         sampling.sample_images(workdir, 20))


def test_bad_requests_are_clear_and_write_nothing(runs, tmp_path):
  workdir = runs["cgan,tiny"]
  with pytest.raises(CheckpointError, match=r"no checkpoint of step 5 .*\[3, 6\]"):
    averaging.average_checkpoints(workdir, [3, 5], tmp_path / "missing")
  assert not (tmp_path / "missing").exists()
  with pytest.raises(ConfigError, match="^steps must name checkpoint steps"):
    averaging.average_checkpoints(workdir, [], tmp_path / "none")
  with pytest.raises(WorkdirError, match="own workdir"):
    averaging.average_checkpoints(workdir, [6], workdir)
  taken = tmp_path / "taken"
  taken.mkdir()
  (taken / "keep.txt").write_text("mine")
  with pytest.raises(WorkdirError, match="not empty"):
    averaging.average_checkpoints(workdir, [6], taken)
  assert [p.name for p in taken.iterdir()] == ["keep.txt"]


def test_entry_point_feeds_sample_py(runs, tmp_path):
  workdir, out = runs["cgan,tiny"], tmp_path / "avg"
  result = run_experiment("average_checkpoints.py", f"--workdir={workdir}", "--steps=3,6",
                          f"--out={out}", "--standing_batches=2")
  assert result.returncode == 0, result.stderr
  result = run_experiment("sample.py", f"--workdir={out}", "--num=10", f"--out={tmp_path}/s.npz")
  assert result.returncode == 0, result.stderr
  bad = run_experiment("average_checkpoints.py", f"--workdir={workdir}", "--steps=3,x",
                       f"--out={tmp_path / 'bad'}")
  assert bad.returncode != 0 and "Traceback" not in bad.stderr
  assert [l for l in bad.stderr.splitlines() if l.startswith("error:")] == [
      "error: --steps must be integers, got 3,x"]
