"""The all-reduce volume is the real model's gradient size; the estimate behaves sensibly."""

import json
import subprocess
import sys

from genjax.gan import scaling
from genjax.configs.gan_mnist import get_config
from tests.conftest import PROJECT_ROOT


def test_gradient_volume_counts_the_tutorial_models():
  volume = scaling.gradient_floats_per_iter(get_config())
  # G 100-256-512-1024-784 with BatchNorm scale/bias, D 784-512-256-1 (weights + biases).
  g = 100 * 256 + 256 * 512 + 512 * 1024 + 1024 * 784 + (256 + 512 + 1024 + 784) \
      + 2 * (256 + 512 + 1024)
  d = 784 * 512 + 512 * 256 + 256 + 512 + 256 + 1
  assert volume["g_params"] == g and volume["d_params"] == d
  assert volume["total"] == g + 2 * d + 2 * (256 + 512 + 1024)


def test_estimate_adds_communication_to_compute():
  link = scaling.INTERCONNECTS["h100_nvlink_8"]
  fast = scaling.estimate_step(get_config(), 1e-4, link)
  slow = scaling.estimate_step(get_config(), 1e-2, link)
  assert fast["step_s"] > 1e-4 and fast["transfer_s"] > 0
  assert slow["scaling_efficiency"] > fast["scaling_efficiency"]
  assert abs(fast["step_s"] - (1e-4 + fast["transfer_s"] + fast["latency_s"])) < 1e-12


def test_cli_reads_bench_json(tmp_path):
  (tmp_path / "b.json").write_text(json.dumps([{"batch_size": 512, "iters_per_s": 50.0,
                                                "device": "cpu:0"}]))
  result = subprocess.run([sys.executable, str(PROJECT_ROOT / "experiments/scaling_estimate.py"),
                           f"--bench_json={tmp_path}/b.json", "--interconnect=tpu_v2_8"],
                          capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(PROJECT_ROOT), "PATH": "/usr/bin:/bin"})
  assert result.returncode == 0, result.stderr
  assert "global 4096" in result.stdout and "ms/step" in result.stdout
