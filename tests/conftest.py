"""Shared fixtures: the real data folder and the tiny GAN config."""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# One XLA compilation cache per test run, shared by the pytest-xdist workers and the experiment
# subprocesses (they inherit the environment): many tests build the same tiny networks, and
# compiling, not running, is most of their time. Set before anything imports jax.
_OWN_CACHE = "JAX_COMPILATION_CACHE_DIR" not in os.environ  # the xdist workers inherit it
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                      os.path.join(tempfile.gettempdir(), f"genjax-test-xla-cache-{os.getpid()}"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "-1")

import pytest  # noqa: E402

from genjax.configs.gan_mnist import get_config  # noqa: E402

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DATA_ROOT = Path(os.environ.get("GENJAX_DATA_DIR") or PROJECT_ROOT.parent / "shared" / "data")


def pytest_sessionfinish(session, exitstatus):
  """The run that made the compilation cache removes it (the xdist controller, or a plain run)."""
  del session, exitstatus
  if _OWN_CACHE and "PYTEST_XDIST_WORKER" not in os.environ:
    shutil.rmtree(os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)


@pytest.fixture(scope="session")
def data_root() -> str:
  """The real data folder; missing data is a failure, not a skip."""
  assert (DATA_ROOT / "mnist").is_dir(), f"MNIST gz files not found in {DATA_ROOT}"
  return str(DATA_ROOT)


@pytest.fixture
def tiny_config(data_root):
  config = get_config("tiny")
  config.data_dir = data_root
  return config


def run_experiment(script, *args, data_root=None):
  """Runs experiments/<script> as a user would: a fresh process, output captured."""
  env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT))
  if data_root:
    env["GENJAX_DATA_DIR"] = data_root
  return subprocess.run([sys.executable, str(PROJECT_ROOT / "experiments" / script), *args],
                        capture_output=True, text=True, env=env, timeout=300)


def trained_experiment(tmp_path_factory, script, *args, data_root):
  """(workdir, result) of a finished run of experiments/<script> in a fresh folder."""
  workdir = tmp_path_factory.mktemp(script.removesuffix(".py")) / "run"
  result = run_experiment(script, f"--workdir={workdir}", *args, data_root=data_root)
  assert result.returncode == 0, result.stderr
  return workdir, result


@pytest.fixture(scope="session")
def tiny_gan_run(tmp_path_factory, data_root):
  """fn(variant) -> the workdir of a finished run of the GAN config `variant` (e.g. "cgan,tiny":
  checkpoints at 3 and 6), trained once per session (per xdist worker). Tests only read it."""
  from genjax import train

  runs = {}

  def run(variant: str):
    if variant not in runs:
      config = get_config(variant)
      config.data_dir = data_root
      runs[variant] = tmp_path_factory.mktemp(variant.replace(",", "_"))
      train.train_and_evaluate(config, runs[variant])
    return runs[variant]

  return run
