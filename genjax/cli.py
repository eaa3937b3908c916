"""Shared entry-point plumbing: user errors become one line on stderr and a non-zero exit."""

import sys
from pathlib import Path

from absl import logging

from genjax.errors import GenjaxError


def run_reporting_errors(fn, *args, **kwargs):
  """Calls fn; a GenjaxError exits 1 with its message alone, Ctrl-C exits 130."""
  logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
  try:
    return fn(*args, **kwargs)
  except GenjaxError as exc:
    print(f"error: {exc}", file=sys.stderr)
    sys.exit(1)
  except KeyboardInterrupt:
    print("interrupted: the last completed chunk was checkpointed; rerun to resume",
          file=sys.stderr)
    sys.exit(130)


def default_workdir(name: str) -> str:
  """A fresh folder under runs/ named after the experiment and the time."""
  import time
  return str(Path("runs") / f"{name}_{time.strftime('%Y%m%d_%H%M%S')}")
