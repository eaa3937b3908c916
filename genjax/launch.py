"""Starts a run over several processes on this machine, as several hosts would run it.

  python -m genjax.launch --num_processes 2 -- experiments/gan_mnist.py --workdir runs/gan2
  python -m genjax.launch --num_processes 2 --devices_per_process 2 -- experiments/vae_mnist.py ...

Every process runs `python SCRIPT ARGS` with GENJAX_COORDINATOR_ADDRESS=127.0.0.1:PORT,
GENJAX_NUM_PROCESSES=N and GENJAX_PROCESS_ID=i; the script joins the others
(`genjax.core.sharding.maybe_initialize_distributed`), and JAX sees every process's devices as
one mesh. On a real cluster, set the same three variables on each host and run the same command
there (or GENJAX_DISTRIBUTED=1 where JAX finds the cluster itself: Cloud TPU, SLURM); see
docs/design.md, "Many hosts".

The launcher binds the port itself and hands the listening socket to process 0, so no other
program can take it in between. Process 0's output passes through as it is; the others' lines
are prefixed with their id. When a process fails (a non-zero exit or a signal), the others get
SIGTERM at once and SIGKILL GRACE_S later; what they print meanwhile is cut to their one-line
`error:`/`stopped:`/`interrupted:` message (JAX's native logs of the loss are dropped), and the
launcher ends with one line naming the failed process, and its exit code. Ctrl-C sends SIGINT
to the processes, with the same grace.
"""

import argparse
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import time

GRACE_S = 5  # how long the others may take to stop after SIGTERM or Ctrl-C, before SIGKILL
HOLD_S = 0.5  # how long a native log line waits, in case it reports a failure seen meanwhile
# absl's prefix, as in "E1207 09:02:30.717403    4472 coordination_service_agent.cc:289] ".
_NATIVE_LOG = re.compile(rb"^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ \S+:\d+\] ")
_LAST_WORDS = (b"error:", b"stopped:", b"interrupted:")  # the workers' one-line endings


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
  env.pop("GENJAX_COORDINATOR_FD", None)
  if args.devices_per_process:
    flags = [f for f in env.get("XLA_FLAGS", "").split()
             if not f.startswith("--xla_force_host_platform_device_count")]
    flags.append(f"--xla_force_host_platform_device_count={args.devices_per_process}")
    env["XLA_FLAGS"] = " ".join(flags)
  return env


def describe(returncode: int) -> str:
  if returncode < 0:
    try:
      return f"was killed by {signal.Signals(-returncode).name}"
    except ValueError:
      return f"was killed by signal {-returncode}"
  return f"exited with status {returncode}"


def exit_code(returncode: int) -> int:
  return 128 - returncode if returncode < 0 else returncode  # a signal -9: 128 + 9, as shells


class Worker:
  """One process of the run: its output, line by line, and its end."""

  def __init__(self, index: int, proc: subprocess.Popen, num: int):
    self.index, self.proc, self.num = index, proc, num
    self.prefix = b"" if index == 0 else f"[process {index}] ".encode()
    self.partial = {proc.stdout: b"", proc.stderr: b""}
    self.held = []  # (time, line) of stderr waiting behind a native log line
    self.said_last_words = False
    self.ended = False
    self.pidfd = None  # readable the moment the process ends (Linux 5.3 on); else polled
    try:
      self.pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
      pass

  def lines(self, stream, data: bytes) -> list:
    """The complete lines in data (after what came before); "" (EOF) flushes the rest."""
    text = self.partial[stream] + data
    body = text[:-1] if text.endswith(b"\r") else text  # perhaps the first half of a \r\n
    cut = max(body.rfind(b"\n"), body.rfind(b"\r")) + 1 if data else len(text)
    self.partial[stream] = text[cut:]
    return re.findall(rb"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$", text[:cut])


class Supervisor:
  """Forwards the workers' output and ends them together (see the module's docstring)."""

  def __init__(self):
    self.workers = []
    self.failed = None  # the first worker that failed
    self.stopped_by = None  # the signal that stopped the launcher (Ctrl-C: SIGINT)
    self.kill_at = None  # when the stragglers get SIGKILL
    self.signalled, self.killed = [], []  # the processes stopped by the launcher
    self.open_bar = {}  # stream: the worker whose progress bar is its last line
    self.selector = selectors.DefaultSelector()

  def add(self, worker) -> None:
    self.workers.append(worker)
    for stream in (worker.proc.stdout, worker.proc.stderr):
      os.set_blocking(stream.fileno(), False)
      self.selector.register(stream, selectors.EVENT_READ, (worker, stream))
    if worker.pidfd is not None:
      self.selector.register(worker.pidfd, selectors.EVENT_READ, (worker, None))

  @property
  def stopping(self) -> bool:
    return self.failed is not None or self.stopped_by is not None

  def on_signal(self, signum, _frame) -> None:
    if self.stopped_by is not None:  # a second Ctrl-C: no more waiting
      self.kill_at = time.monotonic()
      return
    self.stopped_by = signum
    self.signal_all(signal.SIGINT if signum == signal.SIGINT else signal.SIGTERM)

  def signal_all(self, signum) -> None:
    self.kill_at = self.kill_at or time.monotonic() + GRACE_S
    for worker in self.workers:
      if worker.proc.poll() is None:
        worker.proc.send_signal(signum)
        self.signalled.append(worker.index)

  def run(self) -> int:
    drain_until = None  # once all have ended: what they left in their pipes, for a second
    while self.selector.get_map() and (drain_until is None or time.monotonic() < drain_until):
      events = self.selector.select(timeout=0.1)
      # Ends first: a line read in this turn may already be another process's reaction.
      self.check_ends()
      for key, _ in events:
        worker, stream = key.data
        if stream is not None and key.fd in self.selector.get_map():
          self.read(worker, stream)
      self.release_held()
      if self.kill_at is not None and time.monotonic() > self.kill_at:
        for worker in self.workers:
          if worker.proc.poll() is None:
            worker.proc.kill()
            self.killed.append(worker.index)
      if drain_until is None and all(worker.ended for worker in self.workers):
        drain_until = time.monotonic() + 1  # a process they started may hold the pipes
    return self.finish()

  def check_ends(self) -> None:
    ended = [w for w in self.workers if not w.ended and w.proc.poll() is not None]
    for worker in ended:
      worker.ended = True
      if worker.pidfd is not None:
        self.selector.unregister(worker.pidfd)
        os.close(worker.pidfd)
    failures = [w for w in ended if w.proc.returncode != 0]
    if failures and not self.stopping:
      # Several found ended at once: one that did not exit 1 or abort (the others' reactions
      # to an end) is most likely the first.
      self.failed = min(failures, key=lambda w: (w.proc.returncode in (1, -6), w.index))
      self.signal_all(signal.SIGTERM)

  def read(self, worker, stream) -> None:
    try:
      data = os.read(stream.fileno(), 1 << 16)
    except BlockingIOError:
      return
    if not data:
      self.selector.unregister(stream)
    for line in worker.lines(stream, data):
      if stream is worker.proc.stdout:
        self.write(sys.stdout, worker, line)
      else:
        self.emit(worker, line)

  def emit(self, worker, line: bytes) -> None:
    """A stderr line: on its way, held, or (once the run is stopping) cut."""
    if self.stopping and worker is not self.failed:
      if line.startswith(_LAST_WORDS) and not worker.said_last_words:
        worker.said_last_words = True
        self.write(sys.stderr, worker, line)
      return
    if worker.held or _NATIVE_LOG.match(line):
      worker.held.append((time.monotonic(), line))
    else:
      self.write(sys.stderr, worker, line)

  def release_held(self) -> None:
    for worker in self.workers:
      if worker.held and (worker is self.failed or self.stopping or
                          time.monotonic() - worker.held[0][0] > HOLD_S):
        held, worker.held = worker.held, []
        for _, line in held:
          if worker is self.failed or not self.stopping:
            self.write(sys.stderr, worker, line)
          else:
            self.emit(worker, line)

  def write(self, out, worker, line: bytes) -> None:
    # A progress bar ends its lines with \r (or nothing): a line from elsewhere starts below.
    bar = self.open_bar.get(out)
    if bar is not None and bar is not worker:
      out.buffer.write(b"\n")
    self.open_bar[out] = None if line.endswith(b"\n") else worker
    if worker is not None:
      line = worker.prefix + line
    out.buffer.write(line)
    out.flush()

  def finish(self) -> int:
    codes = [worker.proc.wait() for worker in self.workers]
    self.release_held()
    killed = ", ".join(map(str, sorted(set(self.killed))))
    if self.failed is not None:
      code = self.failed.proc.returncode
      # The others stopped by the launcher, or (a dead coordinator seen by all) on their own.
      after = "; the others were stopped" if self.signalled else "; the others ended with it"
      after += f" (process(es) {killed} killed after {GRACE_S} s)" if killed else ""
      self.say(f"error: process {self.failed.index} of {self.failed.num} {describe(code)}{after}")
      return exit_code(code)
    if self.stopped_by is not None:
      if killed:
        self.say(f"error: process(es) {killed} did not stop within {GRACE_S} s and were killed")
      return 128 + self.stopped_by
    return next((exit_code(c) for c in codes if c), 0)

  def say(self, line: str) -> None:
    self.write(sys.stderr, None, f"{line}\n".encode())


def listen(port: int) -> socket.socket:
  """A socket listening at the coordinator's address for process 0 (port 0: one the system
  picks); the port stays taken from here on."""
  try:
    return socket.create_server(("127.0.0.1", port))
  except OSError as exc:
    print(f"error: --port {port} cannot be used: {exc.strerror or exc}", file=sys.stderr)
    sys.exit(2)


def launch(args) -> int:
  supervisor = Supervisor()
  # Installed before the processes start, so that they start with the default dispositions
  # (a background shell job has SIGINT ignored, and that would pass on to them).
  for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    if signum == signal.SIGHUP and signal.getsignal(signum) == signal.SIG_IGN:
      continue  # nohup's: kept
    signal.signal(signum, supervisor.on_signal)
  with listen(args.port) as listener:
    port, fd = listener.getsockname()[1], listener.fileno()
    for i in range(args.num_processes):
      if supervisor.stopped_by is not None:
        break
      env = process_env(args, i, port)
      if i == 0:
        env["GENJAX_COORDINATOR_FD"] = str(fd)
      # A group of their own: a Ctrl-C reaches them once, from the launcher.
      proc = subprocess.Popen([sys.executable, *args.command], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, pass_fds=(fd,) if i == 0 else (),
                              start_new_session=True, preexec_fn=stop_with_the_launcher)
      supervisor.add(Worker(i, proc, args.num_processes))
  return supervisor.run()


def stop_with_the_launcher() -> None:
  """In a worker before it starts (Linux): SIGTERM when the launcher dies, even by SIGKILL, so
  that no worker is left running without it. Elsewhere a no-op."""
  if sys.platform.startswith("linux"):
    import ctypes
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGTERM))


def main(argv=None) -> int:
  return launch(parse_args(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
  sys.exit(main())
