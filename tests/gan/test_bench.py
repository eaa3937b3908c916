"""The GAN's benchmark and experiments/bench_jit.py (tiny models, short budgets)."""

import json
import math
import subprocess
import sys

import jax
import pytest

from genjax.configs.gan_mnist import get_config
from genjax.gan import bench
from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.slow  # compiles and times real chunks
SCRIPT = PROJECT_ROOT / "experiments" / "bench_jit.py"
LIMITS = {"matmul_flops_per_s": 5e10, "bytes_per_s": 1e10}


def check_record(record, batch_size, d_update="keras"):
  assert record["batch_size"] == batch_size and record["d_update"] == d_update
  for key in ("iters_per_s", "items_per_s", "compile_s", "flops_per_iter", "roofline_s",
              "matmul_flops_per_s", "bytes_per_s"):
    assert math.isfinite(record[key]) and record[key] > 0, key
  assert record["items_per_s"] == pytest.approx(record["iters_per_s"] * batch_size)
  assert record["kernels"] > 10
  assert record["bound"] in ("compute", "memory", "cache", "overhead")
  assert record["num_devices"] >= 1 and record["jax_version"] == jax.__version__
  assert jax.devices()[0].platform in record["device"]


def test_benchmark_gan_tiny(data_root):
  record = bench.benchmark_gan(get_config("tiny"), 4, 2, repeats=2, limits=LIMITS)
  check_record(record, 4)
  # The step's matmuls timed alone, and their share of the measured step.
  assert math.isfinite(record["dots_alone_s"]) and record["dots_alone_s"] >= 0
  assert record["dot_share"] == pytest.approx(record["dots_alone_s"] * record["iters_per_s"])
  assert record["iters"] == 2 and len(record["dispatch_s"]) == 2


def test_benchmark_conditional_dcgan(data_root):
  """The cgan recipe trains on labelled images; XLA counts its convolutions' FLOPs."""
  record = bench.benchmark_gan(get_config("cgan,tiny"), 4, 2, repeats=1, limits=LIMITS,
                               time_dots=False)
  check_record(record, 4, "joint")
  assert record["conditional"] and record["arch"] == "dcgan"
  assert record["flops_per_iter_analytic"] is None and record["flops_source"] == "xla"


def test_analytic_flops_match_xla(data_root):
  """Matmuls are most of the step; XLA also counts bias, activations, BatchNorm and Adam."""
  config = get_config()
  record = bench.benchmark_gan(config, 32, 2, repeats=1, limits=LIMITS, time_dots=False)
  # Measured at batch 32: XLA 640.1 MFLOP vs 599.6 analytic, 40.5 MFLOP (6.8%) more: Adam over
  # 2.0M parameters (D's 0.53M updated twice), biases, activations, BatchNorm, the loss.
  # XLA below the matmul count would mean it dropped live work, or we counted dead work.
  assert 1.0 <= record["flops_per_iter_xla"] / bench.analytic_step_flops(config) <= 1.25


def test_analytic_flops_by_hand():
  c = get_config("tiny")  # latent 8, G 16-32-784, D 784-32-16-1, batch 8
  g = 8 * 16 + 16 * 32 + 32 * 784
  d = 784 * 32 + 32 * 16 + 16
  expected = 2.0 * 8 * (4 * g - 8 * 16 + 8 * d - 2 * 784 * 32)
  assert bench.analytic_step_flops(c) == expected
  assert bench.analytic_step_flops(c, batch_size=16) == 2 * expected


def run_script(*args, data_root=None):
  env = None if data_root is None else {**__import__("os").environ, "GENJAX_DATA_DIR": data_root}
  return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                        timeout=300, env=env)


def test_script_writes_json_with_the_roofline(tmp_path, data_root):
  out = tmp_path / "bench.json"
  proc = run_script("--models", "tutorial,keras", "--batch_sizes", "8", "--seconds", "0.3",
                    "--matmul_n", "256", "--bandwidth_mb", "8", "--dtypes", "float32,bfloat16",
                    "--nodots_alone", "--json", str(out), data_root=data_root)
  assert proc.returncode == 0, proc.stderr[-2000:]
  records = json.loads(out.read_text())
  keras = records.pop(1)  # float32 only, timed in a process of its own
  assert [(r["model"], r["compute_dtype"]) for r in records] == [("tutorial", "float32"),
                                                                 ("tutorial", "bfloat16")]
  for record in records:
    check_record(record, 8)
    assert "dots_alone_s" not in record  # --nodots_alone
  assert keras["model"] == "keras" and keras["batch_size"] == 8 and keras["iters_per_s"] > 0
  assert keras["flops"] == bench.analytic_step_flops(get_config(), 8)
  assert keras["params"] == 2_027_025  # G 1,493,520 (BatchNorm statistics too), D 533,505
  speedup = records[0]["iters_per_s"] / keras["iters_per_s"]
  assert f"tutorial over keras, batch 8: {speedup:.1f}x" in proc.stdout
  # the bfloat16 record's roofline is held against the bfloat16 matmul, measured beside it
  assert "matmul_bf16_flops_per_s" not in records[0] and records[1]["matmul_bf16_flops_per_s"] > 0
  compute_s = records[1]["flops"] / records[1]["matmul_bf16_flops_per_s"]
  assert records[1]["compute_s"] == pytest.approx(compute_s)
  assert "x roof" in proc.stdout and "of mm" in proc.stdout and records[0]["bound"] in proc.stdout


@pytest.mark.parametrize("args", [["--batch_sizes", "0"], ["--batch_sizes", "32,x"],
                                  ["--d_update", "both"], ["--json", "/nonexistent/dir/b.json"],
                                  ["--models", "stylegan"]])
def test_script_bad_flags(args):
  proc = run_script(*args)
  assert proc.returncode != 0
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1 and "error" in lines[0] and "Traceback" not in proc.stderr, proc.stderr
