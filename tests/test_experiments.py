"""End to end through the entry points, as a user runs them (subprocesses, real data)."""

import json

import numpy as np
import pytest

from tests.conftest import PROJECT_ROOT
from tests.conftest import run_experiment as run
from tests.conftest import trained_experiment

TINY = f"--config={PROJECT_ROOT}/genjax/configs/gan_mnist.py:tiny"




def assert_one_line_error(result, *needles):
  assert result.returncode != 0
  assert "Traceback" not in result.stderr, result.stderr
  lines = [l for l in result.stderr.splitlines() if l.startswith("error:")]
  assert len(lines) == 1, result.stderr
  for needle in needles:
    assert needle in lines[0]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, data_root):
  return trained_experiment(tmp_path_factory, "gan_mnist.py", TINY, "--config.print_interval=3",
                            data_root=data_root)


def test_gan_mnist_leaves_pngs_metrics_checkpoint(trained_run):
  workdir, result = trained_run
  assert "3 [D loss:" in result.stdout + result.stderr  # the tutorial's log line
  assert "done: 6 iterations" in result.stdout
  assert (workdir / "images" / "mnist_6.png").exists()
  assert len((workdir / "metrics.jsonl").read_text().splitlines()) == 6
  assert (workdir / "checkpoints" / "6").is_dir()
  assert (workdir / "loss_curve.png").exists()


def test_sample_feeds_from_the_checkpoint(trained_run, tmp_path):
  workdir, _ = trained_run
  out = tmp_path / "samples.npz"
  result = run("sample.py", f"--workdir={workdir}", "--num=1234", f"--out={out}", "--seed=1")
  assert result.returncode == 0, result.stderr
  images = np.load(out)["images"]
  assert images.shape == (1234, 28, 28) and images.dtype == np.float32
  assert 0.0 <= images.min() and images.max() <= 1.0 and images.std() > 0.01
  again = tmp_path / "again.npz"
  run("sample.py", f"--workdir={workdir}", "--num=1234", f"--out={again}", "--seed=1")
  np.testing.assert_array_equal(np.load(again)["images"], images)


@pytest.mark.parametrize("flag,needle", [
    ("--config.batch_size=0", "config.batch_size"),
    ("--config.latent_dim=-3", "config.latent_dim"),
    ("--config.sample_interval=0", "config.sample_interval"),
    ("--config.num_steps=-5", "config.num_steps"),
    ("--config.dataset=svhn", "svhn"),
])
def test_gan_mnist_bad_config_is_one_line(flag, needle, tmp_path, data_root):
  result = run("gan_mnist.py", f"--workdir={tmp_path / 'run'}", TINY, flag, data_root=data_root)
  assert_one_line_error(result, needle)
  assert not (tmp_path / "run").exists()


def test_gan_mnist_foreign_checkpoint_is_one_line(trained_run, data_root):
  workdir, _ = trained_run
  before = (workdir / "config.json").read_text()
  result = run("gan_mnist.py", f"--workdir={workdir}", TINY, "--config.latent_dim=5",
               data_root=data_root)
  assert_one_line_error(result, "latent_dim")
  assert (workdir / "config.json").read_text() == before


def test_sample_bad_input_is_one_line(trained_run, tmp_path):
  workdir, _ = trained_run
  assert_one_line_error(run("sample.py", f"--workdir={tmp_path}", f"--out={tmp_path}/x.npz"),
                        str(tmp_path))
  assert_one_line_error(run("sample.py", f"--workdir={workdir}", "--num=0",
                            f"--out={tmp_path}/x.npz"), "--num")
  assert json.loads((workdir / "config.json").read_text())["model"] == "gan"
  assert_one_line_error(run("sample.py", f"--workdir={workdir}", "--label=3",
                            f"--out={tmp_path}/x.npz"), "--label 3", "not conditional")


def test_evaluate_workdir_and_samples(trained_run, tmp_path, data_root):
  workdir, _ = trained_run
  result = run("evaluate.py", f"--workdir={workdir}", "--num=300", f"--json={tmp_path}/e.json",
               data_root=data_root)
  assert result.returncode == 0, result.stderr
  report = json.loads((tmp_path / "e.json").read_text())
  assert report["num_samples"] == 300 and report["dataset"] == "mnist"
  assert set(report["rows"]) == {"samples", "real_train", "uniform_noise"}
  assert report["judge"]["test_accuracy"] >= 99.3
  assert "real_train" in result.stdout and "fid" in result.stdout
  samples = tmp_path / "s.npz"
  run("sample.py", f"--workdir={workdir}", "--num=300", f"--out={samples}")
  result = run("evaluate.py", f"--samples={samples}", "--noreferences",
               data_root=data_root)
  assert result.returncode == 0, result.stderr
  again = json.loads(samples.with_suffix(".eval.json").read_text())
  assert again["rows"]["samples"] == report["rows"]["samples"]  # same seed, same samples
  result = run("evaluate.py", f"--workdir={workdir}", "--num=300", "--seeds=0,1",
               data_root=data_root)
  assert result.returncode == 0, result.stderr
  seeds = json.loads((workdir / "eval_seeds.json").read_text())
  assert seeds["reports"][0]["rows"] == report["rows"]  # seed 0 is the run above
  assert seeds["reports"][1]["rows"]["samples"] != report["rows"]["samples"]
  assert seeds["seed_spread"]["fid"] == [r["rows"]["samples"]["fid"] for r in seeds["reports"]]
  assert "over seeds 0, 1: FID" in result.stdout


def test_evaluate_bad_input_is_one_line(tmp_path, data_root):
  np.savez(tmp_path / "bad.npz", images=np.full((3, 28, 28), 7.0, np.float32))
  assert_one_line_error(run("evaluate.py", f"--samples={tmp_path}/bad.npz", data_root=data_root),
                        "bad.npz")
  assert_one_line_error(run("evaluate.py", data_root=data_root), "exactly one")
