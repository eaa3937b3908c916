"""Data parallelism with jax.sharding: a 1-D `data` mesh, batch split, state replicated; and the
start of a run over many processes (hosts), from the environment."""

import atexit
import os
import re
import selectors
import signal
import socket
import threading
import time
from typing import NamedTuple

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from genjax.core import cli
from genjax.core.errors import ConfigError, GenjaxError

DATA_AXIS = "data"

# The cluster, as the launcher (genjax.launch) or a user sets it on every process.
ADDRESS_VAR = "GENJAX_COORDINATOR_ADDRESS"  # host:port of process 0
COUNT_VAR = "GENJAX_NUM_PROCESSES"
ID_VAR = "GENJAX_PROCESS_ID"
AUTO_VAR = "GENJAX_DISTRIBUTED"  # 1: JAX's own detection (Cloud TPU, SLURM, JAX_* variables)
INIT_TIMEOUT_VAR = "GENJAX_INIT_TIMEOUT"  # seconds every process waits for the others to join
HEARTBEAT_TIMEOUT_VAR = "GENJAX_HEARTBEAT_TIMEOUT"  # seconds of silence that declare one dead
DEFAULT_INIT_TIMEOUT, DEFAULT_HEARTBEAT_TIMEOUT = 15, 10
# The file descriptor of a socket genjax.launch bound and listens on at the coordinator's
# address, inherited by process 0.
LISTEN_FD_VAR = "GENJAX_COORDINATOR_FD"


class Cluster(NamedTuple):
  address: str  # host:port where process 0 serves the others
  num_processes: int
  process_id: int


def _int_var(name: str, low: int) -> int:
  text = os.environ.get(name, "").strip()
  try:
    value = int(text)
  except ValueError:
    raise ConfigError(f"{name}={text!r} is not an integer", field=name) from None
  if value < low:
    raise ConfigError(f"{name}={value} must be at least {low}", field=name)
  return value


def cluster_from_env() -> Cluster | None:
  """The explicit cluster settings, checked (ConfigError naming the variable); None if unset."""
  names = (ADDRESS_VAR, COUNT_VAR, ID_VAR)
  given = [name for name in names if os.environ.get(name, "").strip()]
  if not given:
    return None
  missing = [name for name in names if name not in given]
  if missing:
    raise ConfigError(f"{missing[0]} is not set but {given[0]} is: a run over many processes "
                      f"needs all of {', '.join(names)}", field=missing[0])
  count, process_id = _int_var(COUNT_VAR, 1), _int_var(ID_VAR, 0)
  if process_id >= count:
    raise ConfigError(f"{ID_VAR}={process_id} is not below {COUNT_VAR}={count} (the ids are "
                      f"0 to {count - 1})", field=ID_VAR)
  address = os.environ[ADDRESS_VAR].strip()
  host, _, port = address.rpartition(":")
  if not host or not port.isdigit() or not 0 < int(port) < 65536:
    raise ConfigError(f"{ADDRESS_VAR}={address!r} is not HOST:PORT", field=ADDRESS_VAR)
  return Cluster(address, count, process_id)


def _timeouts() -> tuple[int, int]:
  """(initialization, heartbeat) timeouts in seconds, from the environment or the defaults."""
  found = []
  for name, default in ((INIT_TIMEOUT_VAR, DEFAULT_INIT_TIMEOUT),
                        (HEARTBEAT_TIMEOUT_VAR, DEFAULT_HEARTBEAT_TIMEOUT)):
    found.append(_int_var(name, 1) if os.environ.get(name, "").strip() else default)
  return found[0], found[1]


def maybe_initialize_distributed() -> None:
  """Joins the run's other processes when the environment says there are any.

  GENJAX_COORDINATOR_ADDRESS, GENJAX_NUM_PROCESSES and GENJAX_PROCESS_ID (set by genjax.launch,
  or on each host by hand) name the cluster explicitly; GENJAX_DISTRIBUTED=1 lets JAX detect it
  (Cloud TPU, SLURM, or JAX_COORDINATOR_ADDRESS/JAX_NUM_PROCESSES/JAX_PROCESS_ID). Afterwards
  jax.devices() lists every process's devices. A bad setting, a coordinator nobody answers at,
  or a process that never joins is a ConfigError naming the variable, within the
  initialization timeout. Once joined, SIGTERM or the end of another process ends this one
  with one line (`stop_with_the_others`).
  """
  if jax.distributed.is_initialized():
    return
  cluster = cluster_from_env()
  auto = os.environ.get(AUTO_VAR, "").strip()
  if auto not in ("", "0", "1"):
    raise ConfigError(f"{AUTO_VAR}={auto!r} must be 1 (JAX detects the cluster) or 0",
                      field=AUTO_VAR)
  init_timeout, heartbeat_timeout = _timeouts()
  if cluster is None and auto != "1" or cluster is not None and cluster.num_processes == 1:
    return
  # Collectives between CPU processes; GPU and TPU backends bring their own.
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  timeouts = dict(initialization_timeout=init_timeout,
                  heartbeat_timeout_seconds=heartbeat_timeout)
  if cluster is None:
    jax.distributed.initialize(**timeouts)
    stop_with_the_others({})
    return
  lifelines = roll_call(cluster, init_timeout)
  bind = None
  if cluster.process_id == 0:  # JAX's coordination service listens there, not on [::]
    family, host, port = resolve(cluster.address)
    bind = f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
  jax.distributed.initialize(coordinator_address=cluster.address,
                             num_processes=cluster.num_processes,
                             process_id=cluster.process_id, coordinator_bind_address=bind,
                             **timeouts)
  stop_with_the_others(lifelines)


def resolve(address: str) -> tuple[int, str, int]:
  """(family, IP, port) of a HOST:PORT address; a ConfigError if its host is unknown."""
  host, _, port = address.rpartition(":")
  try:
    family, _, _, _, sockaddr = socket.getaddrinfo(host.strip("[]"), int(port),
                                                   type=socket.SOCK_STREAM)[0]
  except (socket.gaierror, UnicodeError) as exc:
    raise ConfigError(f"{ADDRESS_VAR}={address}: cannot resolve {host} "
                      f"({getattr(exc, 'strerror', None) or exc})", field=ADDRESS_VAR) from None
  return family, sockaddr[0], int(port)


def roll_call(cluster: Cluster, timeout_s: int) -> dict[int, socket.socket]:
  """Before JAX starts, every process tells process 0 (at the coordinator's address) its id and
  count, so that a coordinator nobody answers at, a process that never comes, an id given twice
  or counts that differ are one ConfigError on every process within timeout_s. (JAX itself ends
  every process with a C++ stack trace after its timeout for the first three, and lets
  processes with different counts join.) Returns the connections, kept open as lifelines:
  process 0's to each other process, the others' to process 0."""
  if cluster.process_id == 0:
    verdict, conns = _hear_roll_call(cluster, timeout_s)
  else:
    verdict, conns = _answer_roll_call(cluster, timeout_s)
  if verdict != "ok":
    for conn in conns.values():
      conn.close()
    raise ConfigError(verdict)
  return conns


def _read_line(conn: socket.socket) -> str:
  data = b""
  while not data.endswith(b"\n") and len(data) < 1024:
    chunk = conn.recv(1024)
    if not chunk:
      break
    data += chunk
  return data.decode(errors="replace").strip()


def _listen(cluster: Cluster) -> socket.socket:
  """Process 0's listener at the coordinator's address: the one genjax.launch bound for it
  (so that no other program takes the port in between), or a new one."""
  fd = os.environ.pop(LISTEN_FD_VAR, "")
  if fd.isdigit():
    return socket.socket(fileno=int(fd))
  family, host, port = resolve(cluster.address)
  return socket.create_server((host, port), family=family)


def _hear_roll_call(cluster: Cluster, timeout_s: int) -> tuple[str, dict]:
  """Process 0: waits for processes 1..N-1; tells each the verdict ("ok" or the problem)."""
  count, port = cluster.num_processes, int(cluster.address.rpartition(":")[2])
  try:
    server = _listen(cluster)
  except OSError as exc:
    return (f"{ADDRESS_VAR}={cluster.address}: process 0 cannot listen on port {port} "
            f"({exc.strerror or exc})"), {}
  deadline, peers, verdict = time.monotonic() + timeout_s, {}, "ok"
  with server:
    while len(peers) < count - 1 and verdict == "ok" and time.monotonic() < deadline:
      server.settimeout(max(deadline - time.monotonic(), 0.01))
      try:
        conn, _ = server.accept()
        conn.settimeout(max(deadline - time.monotonic(), 0.01))
        said = _read_line(conn).split()
      except OSError:
        continue
      if len(said) != 3 or said[0] != "genjax" or not (said[1] + said[2]).isdigit():
        conn.close()  # not one of ours
        continue
      process_id, their_count = int(said[1]), int(said[2])
      if their_count != count:
        verdict = (f"{COUNT_VAR} differs between processes: process {process_id} has "
                   f"{their_count}, process 0 has {count}")
      elif process_id in peers or process_id == 0:
        verdict = f"{ID_VAR}={process_id} is given to two processes"
      peers.setdefault(process_id, []).append(conn)
    missing = [i for i in range(1, count) if i not in peers]
    if verdict == "ok" and missing:
      listed = ", ".join(map(str, missing[:8])) + (", ..." if len(missing) > 8 else "")
      verdict = (f"{COUNT_VAR}={count} but process(es) {listed} did not join at "
                 f"{cluster.address} within {timeout_s} s ({INIT_TIMEOUT_VAR})")
    for conn in (c for conns in peers.values() for c in conns):
      try:
        conn.sendall(verdict.encode() + b"\n")
      except OSError:
        pass  # that process has gone; it reports its own error
      if verdict != "ok":
        conn.close()
  return verdict, {process_id: conns[0] for process_id, conns in peers.items()
                   if verdict == "ok"}


def _answer_roll_call(cluster: Cluster, timeout_s: int) -> tuple[str, dict]:
  """Processes 1..N-1: check in with process 0 (retrying until it listens); its verdict."""
  host, _, port = cluster.address.rpartition(":")
  deadline = time.monotonic() + timeout_s
  while True:
    try:
      conn = socket.create_connection((host.strip("[]"), int(port)), timeout=2.0)
      break
    except OSError as exc:
      if time.monotonic() >= deadline:
        return (f"{ADDRESS_VAR}={cluster.address}: no process 0 answered there within "
                f"{timeout_s} s ({exc.strerror or exc}); check the address and that process 0 "
                f"is running ({INIT_TIMEOUT_VAR} sets the wait)"), {}
      time.sleep(0.25)
  # Process 0 answers once every process has joined, or at its own deadline.
  conn.settimeout(timeout_s + 5)
  try:
    conn.sendall(f"genjax {cluster.process_id} {cluster.num_processes}\n".encode())
    verdict = _read_line(conn)
  except OSError:
    verdict = ""
  return (verdict or f"{ADDRESS_VAR}={cluster.address}: process 0 stopped during the roll "
          "call"), {0: conn}


# Set at a normal exit (before JAX's own shutdown, which waits for every process): from then
# on a closed lifeline is another process exiting normally.
_exiting = threading.Event()
_wakeup = []  # the socket pair SIGTERM writes to: kept open while the process lives


def stop_with_the_others(lifelines: dict[int, socket.socket]) -> None:
  """Once joined: SIGTERM, or the end of the process at the other end of a lifeline, ends this
  process at once with one line (cli.end_process), even while it waits inside a collective.

  Otherwise JAX's coordination client aborts the process with a C++ stack trace when process 0
  ends, and process 0 waits for its heartbeat timeout to learn that another one has ended.
  genjax.launch sends SIGTERM to the others when one ends, and a cluster's scheduler before it
  takes the hosts back. (This replaces the SIGTERM handler of JAX's preemption notifier;
  genjax does not save at preemption.)
  """
  atexit.register(_exiting.set)  # registered after JAX's own exit hook: runs before it
  wake_r, wake_w = socket.socketpair()
  wake_w.setblocking(False)
  _wakeup.extend((wake_r, wake_w))
  on_main = threading.current_thread() is threading.main_thread()
  if on_main:
    signal.signal(signal.SIGTERM, lambda *_: _stopped("SIGTERM arrived", 143))
    # The handler above runs only when the main thread runs Python; the byte the signal
    # writes here wakes the watcher below at once.
    theirs = signal.set_wakeup_fd(wake_w.fileno(), warn_on_full_buffer=False)
    if theirs != -1:  # an event loop's: it keeps it, and SIGTERM waits for the main thread
      signal.set_wakeup_fd(theirs)
  selector = selectors.DefaultSelector()
  selector.register(wake_r, selectors.EVENT_READ, None)
  for process_id, conn in lifelines.items():
    conn.setblocking(True)
    selector.register(conn, selectors.EVENT_READ, process_id)
  threading.Thread(target=_watch, args=(selector,), name="genjax-lifelines",
                   daemon=True).start()


def _watch(selector) -> None:
  while True:
    for key, _ in selector.select():
      try:
        data = key.fileobj.recv(64)
      except OSError:
        data = b""
      if key.data is None and bytes([signal.SIGTERM]) in data:
        _stopped("SIGTERM arrived", 143)
      elif not data:
        selector.unregister(key.fileobj)
        if key.data is not None and not _exiting.is_set():
          _stopped(f"process {key.data} of the run ended", 1)


def _stopped(reason: str, code: int) -> None:
  cli.end_process(f"stopped: {reason}; rerun to resume from the last checkpoint", code)


def is_primary_process() -> bool:
  """Whether this process is the one that writes files and prints (process 0)."""
  return jax.process_index() == 0


def value_of_process_0(value):
  """Process 0's `value` (a number or bool) on every process; `value` itself with one process.

  For decisions every process must take alike, such as whether to save.
  """
  if jax.process_count() == 1:
    return value
  return type(value)(multihost_utils.broadcast_one_to_all(np.asarray(value)).item())


def local_copy(tree):
  """`tree` as host arrays when the run spans many processes (as is with one): a computation
  that only one process runs must not take arrays that span the others."""
  return tree if jax.process_count() == 1 else jax.device_get(tree)


# How the XLA runtime starts its errors' messages (absl status codes).
_XLA_STATUS = re.compile(r"(UNKNOWN|UNAVAILABLE|INTERNAL|DEADLINE_EXCEEDED|ABORTED|CANCELLED|"
                         r"FAILED_PRECONDITION|DATA_LOSS|RESOURCE_EXHAUSTED): ")


def shared_computation_error(exc: Exception) -> GenjaxError | None:
  """One line for an XLA runtime error in a run over many processes, None otherwise.

  When one process stops, the others fail at their next collective (with Gloo: a connection
  reset by peer); their tracebacks would say nothing more.
  """
  if jax.process_count() == 1 or not (isinstance(exc, jax.errors.JaxRuntimeError) or
                                      _XLA_STATUS.match(str(exc))):
    return None
  text = " ".join(str(exc).split())
  return GenjaxError(f"process {jax.process_index()} of {jax.process_count()}: a computation "
                     f"shared with the other processes failed, most likely because another one "
                     f"stopped ({text[:240]})")


CPU_DEVICES_FLAG = "--xla_force_host_platform_device_count"


def split_cpu(count: int) -> None:
  """Run JAX's CPU backend as `count` devices sharing the machine's cores, so a data mesh over
  them splits each batch (XLA then runs the shards side by side, and the step's many small
  kernels keep both cores busy: docs/results.md has the speeds). Only before JAX starts its
  backends: an entry point calls it first thing. A count of 1, or XLA_FLAGS that already set
  a count, leave everything as it is. Only the CPU backend changes; a GPU or TPU is untouched."""
  flags_text = os.environ.get("XLA_FLAGS", "")
  if not isinstance(count, int) or count <= 1 or CPU_DEVICES_FLAG in flags_text:
    return  # a bad count is the config check's to report
  from jax._src import xla_bridge  # noqa: PLC0415  (whether the backends are up: JAX's own)

  if xla_bridge.backends_are_initialized():
    raise ConfigError(f"config.cpu_devices={count} needs setting before JAX starts; set "
                      f"XLA_FLAGS={CPU_DEVICES_FLAG}={count} instead", field="config.cpu_devices")
  os.environ["XLA_FLAGS"] = f"{flags_text} {CPU_DEVICES_FLAG}={count}".strip()


def make_mesh(num_devices: int = 0) -> Mesh:
  """A `data` mesh over the first num_devices devices (0: all of them)."""
  devices = jax.devices()
  if num_devices < 0 or num_devices > len(devices):
    raise ConfigError(f"config.num_devices={num_devices} but {len(devices)} device(s) are "
                      f"available ({devices[0].platform}); use 0 for all")
  chosen = devices[:num_devices or len(devices)]
  idle = sorted(set(range(jax.process_count())) - {d.process_index for d in chosen})
  if idle:  # a process without a device in the mesh would hold no part of the state
    raise ConfigError(f"config.num_devices={num_devices} leaves process {idle[0]} of "
                      f"{jax.process_count()} without a device; use 0 for all devices")
  return Mesh(np.array(chosen), (DATA_AXIS,))


def check_divisible(batch_size: int, mesh: Mesh, field: str = "config.batch_size") -> None:
  n = mesh.devices.size
  if batch_size % n:
    raise ConfigError(f"{field}={batch_size} is not divisible by the {n} devices of the "
                      f"'{DATA_AXIS}' mesh axis; use a multiple of {n}, or fewer devices "
                      "(config.num_devices, bench_jit.py --num_devices)")


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec())


def batch_split(mesh: Mesh) -> NamedSharding:
  """Leading (batch) axis split over `data`, the rest whole."""
  return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def constrain_batch(x: jax.Array, mesh: Mesh | None) -> jax.Array:
  """Inside jit: ask XLA to split x's batch axis over the mesh (no-op without a mesh)."""
  if mesh is None:
    return x
  return jax.lax.with_sharding_constraint(x, batch_split(mesh))


def put_replicated(tree, mesh: Mesh):
  """Every leaf on every device of the mesh; on many hosts each gives its full local copy."""
  sharding = replicated(mesh)
  if jax.process_count() == 1:
    return jax.device_put(tree, sharding)
  return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)),
                      tree)


def abstract_replicated(abstract_tree, mesh: Mesh):
  """ShapeDtypeStructs carrying the replicated sharding: Orbax restores onto any device count."""
  sharding = replicated(mesh)
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding),
                      abstract_tree)
