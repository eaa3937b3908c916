"""Sampling by class from conditional runs, and the errors around --label."""

import numpy as np
import pytest

from genjax import sampling
from genjax.core.errors import CheckpointError, ConfigError
from genjax.gan.sampling import class_seed

pytestmark = pytest.mark.slow  # end to end on tiny runs: the full suite's tier


@pytest.fixture
def runs(tiny_gan_run):
  """A tiny conditional and a tiny unconditional DCGAN run."""
  return {"cgan": tiny_gan_run("cgan,tiny"), "dcgan": tiny_gan_run("dcgan,tiny")}


def test_label_selects_the_class_and_is_deterministic(runs):
  threes = sampling.sample_images(runs["cgan"], 7, seed=1, label=3)
  sevens = sampling.sample_images(runs["cgan"], 7, seed=1, label=7)
  assert threes.shape == (7, 28, 28) and 0 <= threes.min() and threes.max() <= 1
  np.testing.assert_array_equal(threes, sampling.sample_images(runs["cgan"], 7, seed=1, label=3))
  assert not np.allclose(threes, sevens)  # same noise, other class


def test_sample_by_class_covers_every_class(runs):
  images, labels = sampling.sample_by_class(sampling.open_run(runs["cgan"]), 25, seed=0)
  assert images.shape == (25, 28, 28)
  np.testing.assert_array_equal(np.bincount(labels), [3] * 5 + [2] * 5)
  np.testing.assert_array_equal(images[:3], sampling.sample_images(runs["cgan"], 3, 0, label=0))


def test_evaluation_seeds_never_share_noise(runs):
  seeds = {class_seed(s, k) for s in range(5) for k in range(10)}
  assert len(seeds) == 50 and class_seed(0, 3) == 3  # seed 0's classes unchanged
  # Seed 1's class-1 block is drawn from its own noise, not seed 0's class-2 noise.
  images, labels = sampling.sample_by_class(sampling.open_run(runs["cgan"]), 20, seed=1)
  block = images[labels == 1]
  np.testing.assert_array_equal(
      block, sampling.sample_images(runs["cgan"], 2, class_seed(1, 1), label=1))
  assert not np.allclose(block, sampling.sample_images(runs["cgan"], 2, 2, label=1))


def test_bad_labels_are_one_line_errors(runs):
  with pytest.raises(ConfigError, match="not conditional"):
    sampling.sample_images(runs["dcgan"], 4, label=3)
  for bad in (10, -1):
    with pytest.raises(ConfigError, match="^label must be a class in 0..9"):
      sampling.sample_images(runs["cgan"], 4, label=bad)


def test_step_picks_a_kept_checkpoint(runs):
  newest = sampling.sample_images(runs["cgan"], 5, seed=2)
  np.testing.assert_array_equal(newest, sampling.sample_images(runs["cgan"], 5, seed=2, step=6))
  earlier = sampling.sample_images(runs["cgan"], 5, seed=2, step=3)
  assert not np.allclose(newest, earlier)  # three more iterations of training
  images, _ = sampling.sample_by_class(sampling.open_run(runs["cgan"], step=3), 10, seed=2)
  np.testing.assert_array_equal(
      images[:1], sampling.sample_images(runs["cgan"], 1, class_seed(2, 0), 0, step=3))
  with pytest.raises(CheckpointError, match=r"no checkpoint of step 4 .*\[3, 6\]"):
    sampling.sample_images(runs["cgan"], 5, step=4)
