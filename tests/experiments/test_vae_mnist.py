"""End to end through experiments/vae_mnist.py and sample.py, as a user runs them."""

import json

import numpy as np
import pytest

from tests.conftest import PROJECT_ROOT, assert_one_line_error, trained_experiment
from tests.conftest import run_experiment as run

pytestmark = pytest.mark.slow  # end to end on tiny runs: the full suite's tier

TINY = f"--config={PROJECT_ROOT}/genjax/configs/vae_mnist.py:tiny"


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, data_root):
  return trained_experiment(tmp_path_factory, "vae_mnist.py", TINY, "--config.model=iwae",
                            data_root=data_root)


def test_vae_mnist_leaves_eval_pictures_metrics_checkpoint(trained_run):
  workdir, result = trained_run
  assert "done: 6 steps" in result.stdout and "nll=" in result.stdout
  result = json.loads((workdir / "eval.json").read_text())
  assert result["model"] == "iwae" and result["nll_k"] == 12 and np.isfinite(result["nll"])
  for name in ("reconstructions", "samples", "interpolation", "traversal", "manifold",
               "latent_scatter", "loss_curve"):
    assert (workdir / f"{name}.png").stat().st_size > 1000, name
  assert len((workdir / "metrics.jsonl").read_text().splitlines()) == 6  # no evaluation rows
  assert (workdir / "checkpoints" / "6").is_dir()


def test_sample_feeds_from_a_vae_checkpoint(trained_run, tmp_path):
  workdir, _ = trained_run
  out = tmp_path / "samples.npz"
  result = run("sample.py", f"--workdir={workdir}", "--num=1234", f"--out={out}", "--seed=1")
  assert result.returncode == 0, result.stderr
  images = np.load(out)["images"]
  assert images.shape == (1234, 28, 28) and images.dtype == np.float32
  assert 0.0 <= images.min() and images.max() <= 1.0 and images.std() > 0.01


def test_bad_config_and_foreign_checkpoint_are_one_line(trained_run, tmp_path, data_root):
  workdir, _ = trained_run
  for workdir_, flag, needle in ((tmp_path / "run", "--config.binarization=otsu", "otsu"),
                                 (tmp_path / "run", "--config.hiden=3", "--config.hidden?"),
                                 (workdir, "--config.latent_dim=5", "latent_dim"),
                                 (workdir, "--config.conditional=True", "conditional=False")):
    result = run("vae_mnist.py", f"--workdir={workdir_}", TINY, flag, data_root=data_root)
    assert_one_line_error(result, needle)
  assert not (tmp_path / "run").exists()
