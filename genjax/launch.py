"""Starts a run over several processes on this machine, as several hosts would run it.

  python -m genjax.launch --num_processes 2 -- experiments/gan_mnist.py --workdir runs/gan2
  python -m genjax.launch --num_processes 2 --devices_per_process 2 -- experiments/vae_mnist.py ...

Every process runs `python SCRIPT ARGS` with GENJAX_COORDINATOR_ADDRESS=127.0.0.1:PORT,
GENJAX_NUM_PROCESSES=N and GENJAX_PROCESS_ID=i; the script joins the others
(`genjax.core.sharding.maybe_initialize_distributed`), and JAX sees every process's devices as
one mesh. On a real cluster, set the same three variables on each host and run the same command
there (or GENJAX_DISTRIBUTED=1 where JAX finds the cluster itself: Cloud TPU, SLURM); see
docs/design.md, "Many hosts".

Process 0's output passes through as it is; the others' lines are prefixed with their id. When
a process fails, the others are given a grace period to stop on their own (they notice within
the heartbeat timeout), then stopped; the launcher exits with the first failure's code.
"""

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time

GRACE_S = 60  # how long the others may take to notice a failed process and stop


def free_port() -> int:
  with socket.socket() as probe:
    probe.bind(("127.0.0.1", 0))
    return probe.getsockname()[1]


def parse_args(argv) -> argparse.Namespace:
  parser = argparse.ArgumentParser(
      prog="python -m genjax.launch",
      description="Runs SCRIPT in N local processes that train as one (one per host).",
      usage="python -m genjax.launch --num_processes N [--devices_per_process K] [--port P] "
            "-- SCRIPT [ARGS...]")
  parser.add_argument("--num_processes", type=int, required=True)
  parser.add_argument("--devices_per_process", type=int, default=0,
                      help="CPU devices each process gets (0: the platform's own)")
  parser.add_argument("--port", type=int, default=0, help="coordinator port (0: a free one)")
  if "--" not in argv:
    parser.error("give the script after --, e.g. -- experiments/gan_mnist.py --workdir W")
  split = argv.index("--")
  args = parser.parse_args(argv[:split])
  args.command = argv[split + 1:]
  if args.num_processes < 1:
    parser.error(f"--num_processes must be at least 1, got {args.num_processes}")
  if args.devices_per_process < 0:
    parser.error(f"--devices_per_process must be 0 or more, got {args.devices_per_process}")
  if not 0 <= args.port < 65536:
    parser.error(f"--port must be 0 to 65535, got {args.port}")
  if not args.command:
    parser.error("no script after --")
  if not os.path.isfile(args.command[0]):
    parser.error(f"script {args.command[0]} does not exist")
  return args


def process_env(args, process_id: int, port: int) -> dict:
  env = dict(os.environ, GENJAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}",
             GENJAX_NUM_PROCESSES=str(args.num_processes), GENJAX_PROCESS_ID=str(process_id),
             PYTHONUNBUFFERED="1")
  if args.devices_per_process:
    flags = [f for f in env.get("XLA_FLAGS", "").split()
             if not f.startswith("--xla_force_host_platform_device_count")]
    flags.append(f"--xla_force_host_platform_device_count={args.devices_per_process}")
    env["XLA_FLAGS"] = " ".join(flags)
  return env


def forward(stream, out, prefix: str) -> None:
  """Copies a child's output line by line, each line prefixed (process 0: no prefix)."""
  for line in iter(stream.readline, ""):
    out.write(prefix + line)
    out.flush()


def launch(args) -> int:
  port = args.port or free_port()
  procs, threads = [], []
  for i in range(args.num_processes):
    proc = subprocess.Popen([sys.executable, *args.command], env=process_env(args, i, port),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    prefix = "" if i == 0 else f"[process {i}] "
    for stream, out in ((proc.stdout, sys.stdout), (proc.stderr, sys.stderr)):
      thread = threading.Thread(target=forward, args=(stream, out, prefix), daemon=True)
      thread.start()
      threads.append(thread)
    procs.append(proc)
  return wait_all(procs, threads)


def exit_code(returncode: int) -> int:
  return 128 - returncode if returncode < 0 else returncode


def wait_all(procs, threads) -> int:
  """The first non-zero exit code (0 if none); the rest stopped after GRACE_S past it."""
  first_failure, failed_at = 0, None
  try:
    while any(p.poll() is None for p in procs):
      for p in procs:
        if p.poll() not in (None, 0) and not first_failure:  # a signal -9: 128 + 9, as shells
          first_failure, failed_at = exit_code(p.returncode), time.monotonic()
      if failed_at is not None and time.monotonic() - failed_at > GRACE_S:
        for p in procs:
          if p.poll() is None:
            p.kill()
      time.sleep(0.2)
  except KeyboardInterrupt:
    for p in procs:
      if p.poll() is None:
        p.send_signal(signal.SIGINT)
    for p in procs:
      p.wait()
    return 130
  for thread in threads:
    thread.join(timeout=5)
  codes = [exit_code(p.returncode) for p in procs]
  return first_failure or next((c for c in codes if c), 0)


def main(argv=None) -> int:
  return launch(parse_args(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
  sys.exit(main())
