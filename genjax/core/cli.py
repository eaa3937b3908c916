"""Entry-point plumbing: flags and user errors become one line on stderr and a non-zero exit.

The library names config fields `config.KEY` and arguments by name; here they become the flags
the user typed: `--config.KEY`, `--NAME`, or what a script maps them to (`--data_dir`).
"""

import json
import os
import re
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

from absl import app, flags, logging

from genjax.core.errors import GenjaxError, WorkdirError

_CONFIG_FIELD = re.compile(r"(?<![\w.-])config\.(\w+)")


def flag_message(exc: GenjaxError, flag_names: dict | None = None) -> str:
  """The error's message with its field and every `config.KEY` named as a flag."""
  flag_names = flag_names or {}
  text = str(exc)
  field = getattr(exc, "field", None)
  # An environment variable (GENJAX_PROCESS_ID) is named as it is set.
  if field and not field.startswith("config.") and not field.isupper() and text.startswith(field):
    text = flag_names.get(field, f"--{field}") + text[len(field):]
  return _CONFIG_FIELD.sub(
      lambda m: flag_names.get(m.group(0), f"--{m.group(0)}"), text)


def _joined_others() -> bool:
  """Whether this process is one of a run over many (cli never loads jax itself)."""
  jax = sys.modules.get("jax")
  return jax is not None and jax.distributed.is_initialized()


# Held by the thread that ends the process; never released (the process exits).
_ending = threading.Lock()


def end_process(line: str, code: int):
  """Prints line on stderr and exits with code.

  In a run over many processes: os._exit after flushing, as at exit JAX waits for every process
  to shut down together, and for one that has stopped it would wait for the heartbeat timeout
  and then abort with a C++ stack trace. There a failing collective, a signal and another
  process's end (genjax.core.sharding) may each end the process at once: the first says its
  line, the others wait here for the exit.
  """
  if not _joined_others():
    print(line, file=sys.stderr)
    sys.exit(code)
  while True:
    try:
      _ending.acquire()
      break
    except KeyboardInterrupt:  # a Ctrl-C while another thread is ending the process
      continue
  for stream in (sys.stdout, sys.stderr):
    try:
      stream.flush()
    except (OSError, RuntimeError, ValueError):  # a signal handler inside a write
      pass
  try:  # os.write: a handler may run while the main thread is inside sys.stderr's own write
    os.write(2, f"{line}\n".encode(errors="replace"))
  except OSError:  # nobody reads stderr any more (a launcher that died): exit all the same
    pass
  os._exit(code)


def fail(message: str, code: int = 2):
  end_process(f"error: {message}", code)


def run(fn, *args, flag_names: dict | None = None, **kwargs):
  """Calls fn; a GenjaxError exits 1 with its message alone, Ctrl-C exits 130."""
  logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
  try:
    return fn(*args, **kwargs)
  except GenjaxError as exc:
    fail(flag_message(exc, flag_names), 1)
  except KeyboardInterrupt:
    if _joined_others():  # no process knows where the others stopped: no save
      end_process("interrupted: rerun to resume from the last checkpoint", 130)
    end_process("interrupted: the last completed chunk was checkpointed; rerun to resume", 130)
  except Exception as exc:
    if not _joined_others():
      raise
    # A bug's traceback, then an exit that does not wait at JAX's shutdown barrier for the
    # others, which may be blocked in a collective this process will never join.
    traceback.print_exc()
    end_process(f"error: {type(exc).__name__} in this process; the run stops", 1)


def _bad_override_message(exc: Exception, argv) -> str:
  """One line for a --config.KEY=VALUE that ml_collections could not apply."""
  text = " ".join(str(a) for a in exc.args) if exc.args else str(exc)
  key = re.search(r"'([^'\\]+)", text)
  suggestion = re.search(r'Did you mean "([^"]+)"', text)
  overrides = [a.split("=", 1)[0] for a in argv if a.startswith("--config.")]
  flag = next((o for o in overrides if key and o.rsplit(".", 1)[-1] == key.group(1)),
              overrides[0] if overrides else "--config")
  if suggestion:
    fixed = flag.rsplit(".", 1)[0] + "." + suggestion.group(1)
    return f"{flag}: no such config key; did you mean {fixed}?"
  reason = " ".join(text.split())[:200]
  return f"{flag}: {reason}" if reason else f"{flag}: cannot be applied"


def define_config(default_file: str, name: str = "config", help_text: str = "Training config."):
  """DEFINE_config_file, whose overrides are checked when it is defined: a mistyped key is
  one line with ml_collections' suggestion, not a traceback."""
  from ml_collections import config_flags

  try:
    return config_flags.DEFINE_config_file(name, default_file, help_text)
  except (KeyError, AttributeError, ValueError, TypeError, flags.Error) as exc:
    fail(_bad_override_message(exc, sys.argv))


def define_sampling_flags(prefix: str = "Diffusion runs"):
  """--sampler, --nfe and --guidance, for the commands that draw a diffusion run's samples;
  returns fn() -> {"sampler", "nfe", "guidance"} (None where not given: the run's own)."""
  sampler = flags.DEFINE_string("sampler", None, f"{prefix}: ddpm or ddim, euler or heun "
                                "(default: the run's config.sampler).")
  nfe = flags.DEFINE_integer("nfe", None, f"{prefix}: network evaluations per sample "
                             "(default: the run's config.nfe).")
  guidance = flags.DEFINE_float("guidance", None, f"{prefix} (conditional): the guidance scale "
                                "(default: the run's config.guidance).")
  return lambda: {"sampler": sampler.value, "nfe": nfe.value, "guidance": guidance.value}


def parse_flags(argv):
  """absl's parser, with a bad flag or config value as one line and exit 2."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as exc:
    fail(" ".join(str(exc).split()))
  except (KeyError, AttributeError, ValueError, TypeError) as exc:  # a config override
    fail(_bad_override_message(exc, argv))


def main(fn):
  """app.run(fn) with one-line flag errors."""
  app.run(fn, flags_parser=parse_flags)


def default_workdir(name: str) -> str:
  """A fresh folder under runs/ named after the experiment and the time."""
  if _joined_others():  # each process would read its own clock
    raise GenjaxError("workdir must be given when a run spans many processes", field="workdir")
  return str(Path("runs") / f"{name}_{time.strftime('%Y%m%d_%H%M%S')}")


def write_output(path: str, text: str, flag: str = "out") -> None:
  """Writes a command's output file, or raises a WorkdirError naming the flag."""
  try:
    Path(path).write_text(text)
  except OSError as exc:
    raise WorkdirError(f"cannot write {path}: {exc.strerror or exc}", field=flag) from None


def run_module(module: str, args: list, what: str) -> dict:
  """The JSON record `python -m module args` prints last, run in a fresh process (a baseline
  that must not share this one's libraries); GenjaxError naming `what` and the child's last
  stderr line when it fails."""
  # The child finds this genjax even when it runs from a checkout that is not installed.
  package_parent = str(Path(__file__).resolve().parents[2])
  env = {**os.environ, "PYTHONPATH": os.pathsep.join(
      p for p in (package_parent, os.environ.get("PYTHONPATH")) if p)}
  done = subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True,
                        text=True, env=env)
  if done.returncode != 0:
    lines = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
    raise GenjaxError(f"{what} failed: {lines[-1]}")
  return json.loads(done.stdout.strip().splitlines()[-1])
