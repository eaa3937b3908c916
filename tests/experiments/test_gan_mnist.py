"""End to end through the GAN's entry points, as a user runs them (subprocesses, real data)."""

import json

import numpy as np
import pytest

from tests.conftest import PROJECT_ROOT, assert_one_line_error, trained_experiment
from tests.conftest import run_experiment as run

pytestmark = pytest.mark.slow  # end to end on tiny runs: the full suite's tier

TINY = f"--config={PROJECT_ROOT}/genjax/configs/gan_mnist.py:tiny"


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, data_root):
  return trained_experiment(tmp_path_factory, "gan_mnist.py", TINY, "--config.print_interval=3",
                            "--config.eval_interval=6", "--config.eval_num=200",
                            data_root=data_root)


def test_gan_mnist_leaves_pngs_metrics_checkpoint(trained_run):
  workdir, result = trained_run
  assert "3 [D loss:" in result.stdout + result.stderr  # the tutorial's log line
  done = [line for line in result.stdout.splitlines() if line.startswith("done:")]
  assert len(done) == 1 and "done: 6 iterations" in done[0]
  assert "judge at step 6: FID " in done[0] and ", score " in done[0]
  assert (workdir / "images" / "mnist_6.png").exists()
  assert len((workdir / "metrics.jsonl").read_text().splitlines()) == 6 + 1  # + the evaluation
  assert (workdir / "checkpoints" / "6").is_dir() and (workdir / "loss_curve.png").exists()
  assert not (workdir / "eval_curve.png").exists()  # one evaluation is no curve


def test_sample_feeds_from_the_checkpoint(trained_run, tmp_path):
  workdir, _ = trained_run
  out = tmp_path / "samples.npz"
  result = run("sample.py", f"--workdir={workdir}", "--num=1234", f"--out={out}", "--seed=1")
  assert result.returncode == 0, result.stderr
  images = np.load(out)["images"]
  assert images.shape == (1234, 28, 28) and images.dtype == np.float32
  assert 0.0 <= images.min() and images.max() <= 1.0 and images.std() > 0.01


# The library's checks are tested in tests/gan/test_family.py; here, how the entry point says them.
@pytest.mark.parametrize("flag,needle", [
    ("--config.r1_weight=1.0", "--config.r1_weight needs --config.d_update='joint'"),
    ("--config.num_step=10", "--config.num_step: no such config key; did you mean "
                             "--config.num_steps?"),
    ("--config.batch_size=x", "--config.batch_size"),
    ("--config.data_dir=/nowhere", "/nowhere"),
])
def test_gan_mnist_bad_input_is_one_line_and_writes_nothing(flag, needle, tmp_path, data_root):
  result = run("gan_mnist.py", f"--workdir={tmp_path / 'run'}", TINY, flag, data_root=data_root)
  assert_one_line_error(result, needle)
  assert not (tmp_path / "run").exists()


def test_no_data_and_no_network_fails_with_the_flag(tmp_path):
  env = {"GENJAX_DATA_DIR": "", "GENJAX_OFFLINE": "1", "TFDS_DATA_DIR": str(tmp_path / "tfds")}
  result = run("gan_mnist.py", f"--workdir={tmp_path / 'run'}", TINY, env=env)
  assert_one_line_error(result, "no data for 'mnist'", "--config.data_dir or GENJAX_DATA_DIR")
  assert not (tmp_path / "run").exists()
  np.savez(tmp_path / "s.npz", images=np.zeros((4, 28, 28), np.float32))
  result = run("evaluate.py", f"--samples={tmp_path}/s.npz", env=env)
  assert_one_line_error(result, "--data_dir or GENJAX_DATA_DIR")


def test_gan_mnist_foreign_checkpoint_is_one_line(trained_run, data_root):
  workdir, _ = trained_run
  before = (workdir / "config.json").read_text()
  result = run("gan_mnist.py", f"--workdir={workdir}", TINY, "--config.latent_dim=5",
               data_root=data_root)
  assert_one_line_error(result, "latent_dim=8 (config says 5)")
  assert (workdir / "config.json").read_text() == before


def test_sample_bad_input_is_one_line(trained_run, tmp_path):
  workdir, _ = trained_run
  assert_one_line_error(run("sample.py", f"--workdir={tmp_path / 'none'}",
                            f"--out={tmp_path}/x.npz"), "--workdir", str(tmp_path / "none"))
  assert_one_line_error(run("sample.py", f"--workdir={workdir}", "--num=0",
                            f"--out={tmp_path}/x.npz"), "--num must be a positive integer")
  assert_one_line_error(run("sample.py", f"--workdir={workdir}", "--label=3",
                            f"--out={tmp_path}/x.npz"), "--label 3", "not conditional")
  assert not (tmp_path / "x.npz").exists()


@pytest.mark.slow
def test_evaluate_workdir_and_samples(trained_run, tmp_path, data_root):
  workdir, _ = trained_run
  result = run("evaluate.py", f"--workdir={workdir}", "--num=300", "--seeds=0,1",
               data_root=data_root)
  assert result.returncode == 0, result.stderr
  seeds = json.loads((workdir / "eval_seeds.json").read_text())
  report = seeds["reports"][0]
  assert report["num_samples"] == 300 and report["dataset"] == "mnist"
  assert set(report["rows"]) == {"samples", "real_train", "uniform_noise"}
  assert report["judge"]["test_accuracy"] >= 99.3
  assert seeds["reports"][1]["rows"]["samples"] != report["rows"]["samples"]
  assert seeds["seed_spread"]["fid"] == [r["rows"]["samples"]["fid"] for r in seeds["reports"]]
  assert "real_train" in result.stdout and "over seeds 0, 1: FID" in result.stdout
  samples = tmp_path / "s.npz"
  assert run("sample.py", f"--workdir={workdir}", "--num=300", f"--out={samples}").returncode == 0
  result = run("evaluate.py", f"--samples={samples}", "--noreferences", data_root=data_root)
  assert result.returncode == 0, result.stderr
  again = json.loads(samples.with_suffix(".eval.json").read_text())
  assert again["rows"]["samples"] == report["rows"]["samples"]  # seed 0's samples, again


def test_evaluate_bad_input_is_one_line(tmp_path, data_root):
  np.savez(tmp_path / "bad.npz", images=np.full((3, 28, 28), 7.0, np.float32))
  assert_one_line_error(run("evaluate.py", f"--samples={tmp_path}/bad.npz", data_root=data_root),
                        "bad.npz")
  assert_one_line_error(run("evaluate.py", f"--samples={tmp_path}/bad.npz", "--seeds=1,x",
                            data_root=data_root), "--seeds must be integers")
