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
