"""Runs over several real processes on localhost (CPU collectives over Gloo): the same code path
as several GPU or TPU hosts. The toy family keeps each run to seconds; one tiny GAN run shows a
real family under the launcher."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from genjax.launch import GRACE_S
from tests.conftest import PROJECT_ROOT, assert_one_line_error, snapshot

TOY = str(PROJECT_ROOT / "tests" / "core" / "toy_run.py")
ALL_DEVICES = "num_devices=0"
# A run that would take a minute: one event a step, each 0.1 s.
SLOW = ("num_steps=600", "sample_interval=1", "checkpoint_interval=1000", "event_sleep_s=0.1")
# What JAX and Python print when they abort a process.
CRASH_DUMPS = ("Fatal Python error", "Terminating process", "Check failure", "Traceback",
               "coordination_service", "    @ ")


def free_port() -> int:
  """A port free now, for processes started by hand (genjax.launch binds its own)."""
  with socket.socket() as probe:
    probe.bind(("127.0.0.1", 0))
    return probe.getsockname()[1]


def launch(workdir, *overrides, processes=2, devices_per_process=1, timeout=180):
  """A toy run through `python -m genjax.launch`; (final parameters' bits, the result)."""
  result = subprocess.run(
      [sys.executable, "-m", "genjax.launch", f"--num_processes={processes}",
       f"--devices_per_process={devices_per_process}", "--", TOY, str(workdir), ALL_DEVICES,
       *overrides], capture_output=True, text=True, timeout=timeout, cwd=PROJECT_ROOT,
      env=dict(os.environ, PYTHONPATH=str(PROJECT_ROOT)))
  return parsed(result), result


def with_devices(env: dict, devices: int) -> dict:
  """env with `devices` virtual CPU devices, its other XLA flags kept (the compiled code, and
  so the arithmetic, depends on them)."""
  flags = [f for f in env.get("XLA_FLAGS", "").split()
           if not f.startswith("--xla_force_host_platform_device_count")]
  return {**env, "XLA_FLAGS": " ".join(flags + [
      f"--xla_force_host_platform_device_count={devices}"])}


def single(workdir, *overrides, devices=2):
  """The same toy run in one process over `devices` virtual CPU devices."""
  env = with_devices(dict(os.environ, PYTHONPATH=str(PROJECT_ROOT)), devices)
  result = subprocess.run([sys.executable, TOY, str(workdir), ALL_DEVICES, *overrides],
                          capture_output=True, text=True, timeout=120, env=env)
  return parsed(result), result


def parsed(result):
  assert result.returncode == 0, result.stderr[-3000:]
  return json.loads([line for line in result.stdout.splitlines() if line.startswith("{")][-1])


def losses(workdir):
  rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  return [(r["step"], r["loss"]) for r in rows if "loss" in r]


def test_two_processes_train_as_one_process_over_two_devices(tmp_path):
  two, result = launch(tmp_path / "two")
  one, _ = single(tmp_path / "one")
  assert (two["w"], two["b"]) == (one["w"], one["b"])  # bit for bit: the same partitioning
  assert losses(tmp_path / "two") == losses(tmp_path / "one")
  assert result.stdout.count('{"w"') == 1  # process 0 alone reports
  # One set of files, written by process 0 alone.
  assert sorted(p.name for p in (tmp_path / "two" / "events").iterdir()) == \
      ["0.txt", "10.txt", "12.txt", "5.txt"]
  # Against one device: the same arithmetic up to the order of the gradient's sum.
  lone, _ = single(tmp_path / "lone", devices=1)
  as_float = lambda bits: float(np.uint32(bits).view(np.float32))  # noqa: E731
  assert as_float(two["w"]) == pytest.approx(as_float(lone["w"]), rel=1e-5)
  assert as_float(two["b"]) == pytest.approx(as_float(lone["b"]), rel=1e-5, abs=1e-6)


@pytest.mark.slow
def test_two_processes_of_two_devices_each(tmp_path):
  four, _ = launch(tmp_path / "four", devices_per_process=2)
  one, _ = single(tmp_path / "one", devices=4)
  assert (four["w"], four["b"]) == (one["w"], one["b"])


@pytest.mark.slow
def test_resume_across_process_counts(tmp_path):
  whole, _ = launch(tmp_path / "whole")
  launch(tmp_path / "a", "num_steps=6")  # two processes, then one
  resumed, _ = single(tmp_path / "a")
  assert resumed["start_step"] == 6 and (resumed["w"], resumed["b"]) == (whole["w"], whole["b"])
  single(tmp_path / "b", "num_steps=6")  # one process, then two
  resumed, _ = launch(tmp_path / "b")
  assert resumed["start_step"] == 6 and (resumed["w"], resumed["b"]) == (whole["w"], whole["b"])
  assert losses(tmp_path / "a") == losses(tmp_path / "whole") == losses(tmp_path / "b")


def start_processes(workdir, port, *overrides):
  """The two processes of a run, started by hand (as on two hosts) so one can be killed."""
  procs = []
  for i in range(2):
    env = with_devices(dict(os.environ, PYTHONPATH=str(PROJECT_ROOT), GENJAX_NUM_PROCESSES="2",
                            GENJAX_PROCESS_ID=str(i), GENJAX_HEARTBEAT_TIMEOUT="5",
                            GENJAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}"), 1)
    procs.append(subprocess.Popen([sys.executable, TOY, str(workdir), ALL_DEVICES, *overrides],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=env))
  return procs


@pytest.mark.slow
def test_a_killed_process_stops_the_other_and_the_run_resumes_bit_identical(tmp_path):
  slow = ("num_steps=60", "sample_interval=1", "checkpoint_interval=10", "event_sleep_s=0.1")
  whole, _ = launch(tmp_path / "whole", *slow)
  workdir = tmp_path / "killed"
  procs = start_processes(workdir, free_port(), *slow)
  deadline = time.monotonic() + 90
  while not (workdir / "checkpoints" / "20").is_dir() and time.monotonic() < deadline:
    time.sleep(0.2)
  assert procs[0].poll() is None, procs[0].communicate()[1][-2000:]
  procs[1].send_signal(signal.SIGKILL)
  killed_at = time.monotonic()
  _, stderr = procs[0].communicate(timeout=60)
  assert time.monotonic() - killed_at < 60
  # One line: its collective failed, or it saw process 1's end first.
  errors = [line for line in stderr.splitlines() if line.startswith(("error:", "stopped:"))]
  assert procs[0].returncode != 0 and len(errors) == 1, stderr[-3000:]
  assert "Traceback" not in stderr
  resumed, _ = launch(workdir, *slow)
  assert 20 <= resumed["start_step"] < 60
  assert (resumed["w"], resumed["b"]) == (whole["w"], whole["b"])


def test_bad_cluster_settings_are_one_line_and_write_nothing(tmp_path):
  env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT), GENJAX_INIT_TIMEOUT="3",
             GENJAX_COORDINATOR_ADDRESS=f"127.0.0.1:{free_port()}")
  cases = [
      (dict(GENJAX_NUM_PROCESSES="2", GENJAX_PROCESS_ID="2"), "GENJAX_PROCESS_ID=2 is not below"),
      (dict(GENJAX_NUM_PROCESSES="two", GENJAX_PROCESS_ID="0"), "GENJAX_NUM_PROCESSES='two'"),
      (dict(GENJAX_NUM_PROCESSES="2", GENJAX_PROCESS_ID="1"), "no process 0 answered"),
      (dict(GENJAX_NUM_PROCESSES="2", GENJAX_PROCESS_ID="0"), "did not join"),
  ]
  for settings, needle in cases:
    started = time.monotonic()
    result = subprocess.run([sys.executable, TOY, str(tmp_path / "run"), ALL_DEVICES],
                            capture_output=True, text=True, timeout=60,
                            env={**env, **settings})
    assert_one_line_error(result, needle)
    assert time.monotonic() - started < 30
  assert snapshot(tmp_path) == {}
  launched = subprocess.run(  # a mesh that leaves a process without a device
      [sys.executable, "-m", "genjax.launch", "--num_processes=2", "--", TOY,
       str(tmp_path / "run"), "num_devices=1"], capture_output=True, text=True, timeout=120,
      cwd=PROJECT_ROOT, env=dict(os.environ, PYTHONPATH=str(PROJECT_ROOT)))
  assert launched.returncode == 1 and "Traceback" not in launched.stderr
  assert "--config.num_devices=1 leaves process 1 of 2 without a device" in launched.stderr
  assert not (tmp_path / "run" / "checkpoints").exists()
  result = subprocess.run([sys.executable, "-m", "genjax.launch", "--num_processes=0", "--",
                           TOY], capture_output=True, text=True, cwd=PROJECT_ROOT)
  assert result.returncode == 2 and "--num_processes must be at least 1" in result.stderr


@pytest.mark.slow
def test_the_gan_trains_over_two_processes_as_over_two_devices(tmp_path, data_root):
  script = str(PROJECT_ROOT / "experiments" / "gan_mnist.py")
  config = f"--config={PROJECT_ROOT}/genjax/configs/gan_mnist.py:tiny"
  env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT), GENJAX_DATA_DIR=str(data_root))
  two = subprocess.run([sys.executable, "-m", "genjax.launch", "--num_processes=2", "--",
                        script, f"--workdir={tmp_path / 'two'}", config],
                       capture_output=True, text=True, timeout=300, cwd=PROJECT_ROOT, env=env)
  assert two.returncode == 0, two.stderr[-3000:]
  one = subprocess.run([sys.executable, script, f"--workdir={tmp_path / 'one'}", config],
                       capture_output=True, text=True, timeout=300, env=with_devices(env, 2))
  assert one.returncode == 0, one.stderr[-3000:]
  assert two.stdout.count("done:") == 1

  def training_rows(workdir):  # without the wall times, which differ
    return [(r["step"], r.get("d_loss"), r.get("g_loss"))
            for r in map(json.loads, (workdir / "metrics.jsonl").read_text().splitlines())
            if "d_loss" in r]
  assert training_rows(tmp_path / "two") == training_rows(tmp_path / "one")
  assert len(training_rows(tmp_path / "two")) > 1


def start_launcher(workdir):
  """A slow toy run under genjax.launch: (the launcher, {process id: pid}) once under way."""
  launcher = subprocess.Popen(
      [sys.executable, "-m", "genjax.launch", "--num_processes=2", "--devices_per_process=1",
       "--", TOY, str(workdir), ALL_DEVICES, *SLOW], stdout=subprocess.PIPE,
      stderr=subprocess.PIPE, text=True, cwd=PROJECT_ROOT,
      env=dict(os.environ, PYTHONPATH=str(PROJECT_ROOT)))
  deadline = time.monotonic() + 120
  while not (workdir / "events" / "3.txt").exists():  # process 0 writes it after step 3
    assert launcher.poll() is None and time.monotonic() < deadline, launcher.communicate()
    time.sleep(0.1)
  return launcher, children(launcher.pid)


def children(pid: int) -> dict:
  """{GENJAX_PROCESS_ID: pid} of the processes that `pid` started, read from /proc."""
  found = {}
  for entry in Path("/proc").iterdir():
    try:
      if not entry.name.isdigit() or parent(entry) != pid:
        continue
      env = (entry / "environ").read_bytes().split(b"\0")
    except OSError:  # ended meanwhile
      continue
    ids = [item.split(b"=", 1)[1] for item in env if item.startswith(b"GENJAX_PROCESS_ID=")]
    found[int(ids[0])] = int(entry.name)
  return found


def parent(proc_entry: Path) -> int:
  return int((proc_entry / "stat").read_text().rsplit(")", 1)[1].split()[1])


def own_lines(lines: list, process_id: int) -> list:
  """The lines of one process in the launcher's stderr (process 0's carry no prefix)."""
  if process_id:
    return [line for line in lines if line.startswith(f"[process {process_id}] ")]
  return [line for line in lines if not line.startswith("[process ")]


def ended_together(launcher, pids: dict, since: float, limit_s: float = 30, last_own: int = 1):
  """The launcher's (stderr lines, seconds from `since` to its exit), once checked that every
  process said at most one line and no crash dump, and that none is left running. The last
  `last_own` lines are the launcher's own."""
  _, stderr = launcher.communicate(timeout=limit_s)
  took = time.monotonic() - since
  lines = stderr.splitlines()
  assert not any(dump in stderr for dump in CRASH_DUMPS), stderr[-3000:]
  for process_id, pid in pids.items():
    assert len(own_lines(lines[:len(lines) - last_own], process_id)) <= 1, stderr[-3000:]
    with pytest.raises(ProcessLookupError):
      os.kill(pid, 0)
  return lines, took


@pytest.mark.parametrize("victim", [1, 0])
def test_the_launcher_names_a_killed_process_and_stops_the_other(tmp_path, victim):
  launcher, pids = start_launcher(tmp_path / "run")
  assert sorted(pids) == [0, 1]
  os.kill(pids[victim], signal.SIGKILL)
  lines, took = ended_together(launcher, pids, time.monotonic())
  assert launcher.returncode == 128 + signal.SIGKILL and took < 30
  # The other is stopped by the launcher, or (the coordinator gone) may end first on its own.
  assert lines[-1] in (f"error: process {victim} of 2 was killed by SIGKILL; the others {end}"
                       for end in ("were stopped", "ended with it")), lines
  said = own_lines(lines[:-1], 1 - victim)
  assert len(said) == 1, lines
  assert said[0].removeprefix("[process 1] ").startswith(("stopped:", "error:")), lines


def running(pid: int) -> bool:
  """Whether `pid` still runs (an orphan that ended may stay a zombie nobody reaps)."""
  try:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
  except OSError:
    return False


def test_the_workers_stop_when_the_launcher_itself_is_killed(tmp_path):
  launcher, pids = start_launcher(tmp_path / "run")
  launcher.kill()
  launcher.communicate()
  deadline = time.monotonic() + 30
  while any(running(pid) for pid in pids.values()):
    assert time.monotonic() < deadline, "a worker outlived its launcher"
    time.sleep(0.1)


def test_ctrl_c_stops_every_process_at_once(tmp_path):
  launcher, pids = start_launcher(tmp_path / "run")
  launcher.send_signal(signal.SIGINT)
  lines, took = ended_together(launcher, pids, time.monotonic(), GRACE_S + 10, last_own=0)
  assert launcher.returncode == 130 and took < GRACE_S, lines  # none needed SIGKILL


def test_a_failed_process_is_named_and_the_others_killed_after_the_grace(tmp_path):
  script = tmp_path / "exits.py"
  script.write_text("import os, signal, sys, time\n"
                    "if os.environ['GENJAX_PROCESS_ID'] == '1':\n"
                    "  time.sleep(0.5)\n"
                    "  sys.exit(3)\n"
                    "signal.signal(signal.SIGTERM, signal.SIG_IGN)  # stays until SIGKILL\n"
                    "time.sleep(60)\n")
  started = time.monotonic()
  result = subprocess.run([sys.executable, "-m", "genjax.launch", "--num_processes=2", "--",
                           str(script)], capture_output=True, text=True, timeout=60,
                          cwd=PROJECT_ROOT)
  assert result.returncode == 3 and time.monotonic() - started < GRACE_S + 10
  assert result.stderr.splitlines() == [
      f"error: process 1 of 2 exited with status 3; the others were stopped (process(es) 0 "
      f"killed after {GRACE_S} s)"], result.stderr


def test_a_taken_port_is_one_line(tmp_path):
  with socket.create_server(("127.0.0.1", 0)) as taken:
    port = taken.getsockname()[1]
    result = subprocess.run([sys.executable, "-m", "genjax.launch", "--num_processes=2",
                             f"--port={port}", "--", TOY, str(tmp_path / "run")],
                            capture_output=True, text=True, timeout=60, cwd=PROJECT_ROOT)
  assert_one_line_error(result, f"--port {port} cannot be used")
  assert snapshot(tmp_path) == {}
