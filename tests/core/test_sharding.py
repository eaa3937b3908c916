"""Mesh checks on one device here; the 8-device suite runs in a child process."""

import os
import subprocess
import sys

import jax
import pytest

from genjax.core import sharding
from genjax.core.errors import ConfigError
from tests.conftest import PROJECT_ROOT


def test_mesh_over_all_devices_and_errors():
  mesh = sharding.make_mesh(0)
  assert mesh.axis_names == ("data",) and mesh.devices.size == jax.device_count()
  with pytest.raises(ConfigError, match="num_devices"):
    sharding.make_mesh(jax.device_count() + 1)
  sharding.check_divisible(32, mesh)


def test_splitting_the_cpu_after_jax_started_is_one_line(monkeypatch):
  monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_enable_fast_math=false")
  jax.devices()  # started
  with pytest.raises(ConfigError, match="config.cpu_devices=2 needs setting before JAX"):
    sharding.split_cpu(2)
  sharding.split_cpu(1)  # one device: nothing to do
  assert os.environ["XLA_FLAGS"] == "--xla_cpu_enable_fast_math=false"


@pytest.mark.parametrize("preset,want", [("", 2), ("--xla_force_host_platform_device_count=3", 3)])
def test_splitting_the_cpu_before_jax_starts_gives_devices_unless_xla_flags_say(preset, want):
  code = ("from genjax.core import sharding; sharding.split_cpu(2); import jax; "
          "print(jax.device_count(), jax.devices()[0].platform)")
  env = dict(os.environ, XLA_FLAGS=preset, PYTHONPATH=str(PROJECT_ROOT))
  result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, cwd=PROJECT_ROOT, timeout=120)
  assert result.returncode == 0, result.stderr[-2000:]
  assert result.stdout.split() == [str(want), "cpu"]


@pytest.mark.slow
def test_eight_virtual_devices_suite(data_root):
  """Sharded == single-device, cross-device-count restore, divisibility error (8 CPU devices)."""
  flags = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
  env = dict(os.environ, XLA_FLAGS=flags.strip(),
             GENJAX_DATA_DIR=data_root, PYTHONPATH=str(PROJECT_ROOT))
  result = subprocess.run(
      [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
       str(PROJECT_ROOT / "tests" / "multidevice")],
      capture_output=True, text=True, env=env, cwd=PROJECT_ROOT, timeout=600)
  assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
  assert " passed" in result.stdout and "skipped" not in result.stdout
