"""Shared fixtures: the real data folder, tiny configs, finished tiny runs, entry-point runner."""

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
# Tiny models run a few steps: cheaper LLVM passes compile them a quarter faster. Every run a
# test compares with another is compiled the same way.
FAST_COMPILE = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
if os.environ.get("GENJAX_TEST_FAST_COMPILE", "1") == "1" and \
    FAST_COMPILE not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + FAST_COMPILE).strip()

import pytest  # noqa: E402

from genjax.configs.gan_mnist import get_config  # noqa: E402

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# Absolute: subprocesses and notebook kernels run in other folders.
DATA_ROOT = Path(os.environ.get("GENJAX_DATA_DIR") or PROJECT_ROOT.parent / "shared" / "data"
                 ).expanduser().resolve()
os.environ["GENJAX_DATA_DIR"] = str(DATA_ROOT)


def pytest_sessionfinish():
  """The run that made the compilation cache removes it (the xdist controller, or a plain run)."""
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


def snapshot(folder: Path) -> dict:
  """Every file under folder with its bytes: proof that nothing was written."""
  return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
          if p.is_file()}


def run_experiment(script, *args, data_root=None, env=None, timeout=300):
  """Runs experiments/<script> as a user would: a fresh process, output captured."""
  full_env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT), **(env or {}))
  if data_root:
    full_env["GENJAX_DATA_DIR"] = str(Path(data_root).resolve())
  return subprocess.run([sys.executable, str(PROJECT_ROOT / "experiments" / script), *args],
                        capture_output=True, text=True, env=full_env, timeout=timeout)


def trained_experiment(tmp_path_factory, script, *args, data_root):
  """(workdir, result) of a finished run of experiments/<script> in a fresh folder."""
  workdir = tmp_path_factory.mktemp(script.removesuffix(".py")) / "run"
  result = run_experiment(script, f"--workdir={workdir}", *args, data_root=data_root)
  assert result.returncode == 0, result.stderr[-3000:]
  return workdir, result


def assert_one_line_error(result, *needles):
  """A non-zero exit with exactly one `error:` line holding every needle, no traceback."""
  assert result.returncode != 0, result.stdout[-2000:]
  assert "Traceback" not in result.stderr, result.stderr[-3000:]
  lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
  assert len(lines) == 1, result.stderr[-3000:]
  for needle in needles:
    assert needle in lines[0], lines[0]
  return lines[0]


@pytest.fixture(scope="session")
def tiny_gan_run(tmp_path_factory, data_root):
  """fn(variant) -> the workdir of a finished run of the GAN config `variant` (e.g. "cgan,tiny":
  checkpoints at 3 and 6), trained once per test run (per xdist worker). Tests only read it."""
  from genjax.gan.family import train_gan

  runs = {}

  def run(variant: str):
    if variant not in runs:
      config = get_config(variant)
      config.data_dir = data_root
      runs[variant] = tmp_path_factory.mktemp(variant.replace(",", "_"))
      train_gan(config, runs[variant])
    return runs[variant]

  return run
