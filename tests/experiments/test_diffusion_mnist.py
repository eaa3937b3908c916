"""End to end through the diffusion entry points, as a user runs them (subprocesses, real data)."""

import json

import numpy as np
import pytest

from tests.conftest import PROJECT_ROOT, assert_one_line_error, trained_experiment
from tests.conftest import run_experiment as run

pytestmark = pytest.mark.slow  # end to end on tiny runs: the full suite's tier

CONFIG = f"--config={PROJECT_ROOT}/genjax/configs/diffusion_mnist.py"


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, data_root):
  return trained_experiment(tmp_path_factory, "diffusion_mnist.py", f"{CONFIG}:tiny",
                            "--config.eval_interval=6", "--config.eval_num=100",
                            data_root=data_root)


def test_training_leaves_grids_metrics_checkpoints_and_the_done_line(trained_run):
  workdir, result = trained_run
  done = [line for line in result.stdout.splitlines() if line.startswith("done:")]
  assert len(done) == 1 and "done: 6 steps" in done[0], result.stdout
  assert "judge at step 6: FID " in done[0] and ", classes " in done[0]
  assert sorted(p.name for p in (workdir / "images").glob("*.png")) == ["0.png", "3.png", "6.png"]
  rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  assert [r["kind"] for r in rows if "kind" in r] == ["eval"] and rows[-1]["train_s"] > 0
  assert (workdir / "checkpoints_best").is_dir() and (workdir / "loss_curve.png").exists()


def test_sample_and_evaluate_take_the_sampling_flags(trained_run, tmp_path, data_root):
  workdir, _ = trained_run
  out = tmp_path / "s.npz"
  result = run("sample.py", f"--workdir={workdir}", "--num=30", f"--out={out}", "--nfe=2",
               "--sampler=euler", "--label=7")
  assert result.returncode == 0, result.stderr
  images = np.load(out)["images"]
  assert images.shape == (30, 28, 28) and 0 <= images.min() and images.max() <= 1
  result = run("evaluate.py", f"--workdir={workdir}", "--num=100", "--nfe=2", "--guidance=2",
               "--noreferences", data_root=data_root)
  assert result.returncode == 0, result.stderr
  report = json.loads((workdir / "eval.json").read_text())
  assert report["sampling"] == {"sampler": "heun", "nfe": 2, "guidance": 2.0}
  assert "label_accuracy" in report["rows"]["samples"]


@pytest.mark.parametrize("args,needle", [
    ((f"{CONFIG}:tiny", "--config.nfe=0"), "--config.nfe must be a positive multiple of 2"),
    ((f"{CONFIG}:tiny", "--config.sampler=ddim"), "--config.sampler 'ddim' is unknown for a "
                                                   "flow run; choose one of euler, heun"),
    ((f"{CONFIG}:flow,tiny", "--config.guidance=2"), "--config.guidance 2 needs a conditional"),
])
def test_bad_config_is_one_line_and_writes_nothing(args, needle, tmp_path, data_root):
  result = run("diffusion_mnist.py", f"--workdir={tmp_path / 'run'}", *args, data_root=data_root)
  assert_one_line_error(result, needle)
  assert not (tmp_path / "run").exists()


def test_bad_sampling_flags_are_one_line(trained_run, tiny_gan_run, tmp_path):
  workdir, _ = trained_run
  out = f"--out={tmp_path}/x.npz"
  assert_one_line_error(run("sample.py", f"--workdir={workdir}", "--nfe=0", out),
                        "--nfe must be a positive multiple of 2")
  assert_one_line_error(run("evaluate.py", f"--workdir={workdir}", "--sampler=ddim"),
                        "--sampler 'ddim' is unknown for a flow run")
  gan = tiny_gan_run("tiny")
  assert_one_line_error(run("sample.py", f"--workdir={gan}", "--guidance=2", out),
                        "--guidance applies to diffusion runs", "'gan' run")
  assert not (tmp_path / "x.npz").exists()
  assert_one_line_error(run("diffusion_likelihood.py", f"--workdir={gan}"),
                        "--workdir", "holds a 'gan' run; this command reads 'diffusion' runs")
  assert_one_line_error(run("diffusion_likelihood.py", f"--workdir={workdir}", "--num=0"),
                        "--num must be a positive integer")


def test_likelihood_with_the_exact_trace_and_the_nfe_table(trained_run, data_root):
  workdir, _ = trained_run
  result = run("diffusion_likelihood.py", f"--workdir={workdir}", "--num=2", "--batch=1",
               "--steps=1", "--exact", data_root=data_root)
  assert result.returncode == 0, result.stderr
  assert "bits/dim" in result.stdout and "exact trace: bits/dim" in result.stdout
  report = json.loads((workdir / "likelihood_exact.json").read_text())
  assert report["num"] == 2 and len(report["exact"]["per_image_exact"]) == 2
  assert 0 < report["bits_per_dim"] < 100
  result = run("diffusion_nfe.py", f"--workdir={workdir}", "--nfe=1,4", "--samplers=heun",
               "--num=20", data_root=data_root)
  assert result.returncode == 0, result.stderr
  table = json.loads((workdir / "nfe_fid.json").read_text())
  assert [(r["sampler"], r["nfe"]) for r in table["rows"]] == [("heun", 4)]  # 1 is no Heun step
  assert (workdir / "nfe_fid.png").exists()
