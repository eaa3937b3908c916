"""A run killed with SIGKILL at random moments, again and again, then let finish, ends exactly
as a run that was never stopped: the same parameters bit for bit and the same metrics rows.

The toy run saves a checkpoint every two steps, so saves are most of its time and most kills
land inside one. An append to metrics.jsonl takes microseconds, too short to hit by chance: one
round cuts the file in the middle of its last row, as a kill between an append's writes leaves
it, before the run is resumed.
"""

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.slow

TOY = str(PROJECT_ROOT / "tests" / "core" / "toy_run.py")
SETTINGS = ("num_steps=240", "checkpoint_interval=2", "keep_checkpoints=3", "sample_interval=50",
            "log_interval=1")


def start(workdir):
  return subprocess.Popen([sys.executable, TOY, str(workdir), *SETTINGS],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=dict(os.environ, PYTHONPATH=str(PROJECT_ROOT)))


def finished(proc):
  out, err = proc.communicate(timeout=300)
  assert proc.returncode == 0, err[-3000:]
  return json.loads([line for line in out.splitlines() if line.startswith("{")][-1])


def where_it_landed(workdir) -> str:
  """What the kill interrupted, as the files show it."""
  folder = workdir / "checkpoints"
  if folder.is_dir() and any("tmp" in p.name for p in folder.iterdir()):
    return "save"  # orbax writes a step under a temporary name and renames it when complete
  metrics = workdir / "metrics.jsonl"
  if metrics.exists() and metrics.read_bytes()[-1:] not in (b"", b"\n"):
    return "append"
  return "between"


def rows(workdir):
  return [{k: v for k, v in json.loads(line).items() if k != "wall_s"}
          for line in (workdir / "metrics.jsonl").read_text().splitlines()]


def test_kills_at_random_moments_then_a_finish_equal_a_straight_run(tmp_path):
  straight = finished(start(tmp_path / "straight"))
  workdir, rng, landed = tmp_path / "killed", random.Random(0), []
  while len(landed) < 6 or "save" not in landed:
    assert len(landed) < 20, landed  # saves are most of the run: some kill lands in one
    proc = start(workdir)
    metrics = workdir / "metrics.jsonl"
    size = metrics.stat().st_size if metrics.exists() else 0
    deadline = time.monotonic() + 120
    while (not metrics.exists() or metrics.stat().st_size <= size) and proc.poll() is None:
      assert time.monotonic() < deadline
      time.sleep(0.01)  # until this process has trained (restoring is not the point)
    time.sleep(rng.uniform(0.0, 1.0))
    assert proc.poll() is None, "the run finished before its kill: give it more steps"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    landed.append(where_it_landed(workdir))
  text = (workdir / "metrics.jsonl").read_text()
  (workdir / "metrics.jsonl").write_text(text + text.splitlines()[-1][:17])  # half a row
  resumed = finished(start(workdir))
  assert resumed["start_step"] > 0
  assert (resumed["w"], resumed["b"]) == (straight["w"], straight["b"]), landed
  assert rows(workdir) == rows(tmp_path / "straight")
  print(f"kills landed: {landed}")
