"""Entry-point plumbing: flags and user errors become one line on stderr and a non-zero exit.

The library names config fields `config.KEY` and arguments by name; here they become the flags
the user typed: `--config.KEY`, `--NAME`, or what a script maps them to (`--data_dir`).
"""

import os
import re
import sys
import time
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


def exit_now(code: int):
  """sys.exit, or, in a run over many processes, os._exit after flushing: at exit JAX waits
  for every process to shut down together, and for one that has stopped it would wait for the
  heartbeat timeout and then abort with a C++ stack trace."""
  if _joined_others():
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
  sys.exit(code)


def fail(message: str, code: int = 2):
  print(f"error: {message}", file=sys.stderr)
  exit_now(code)


def run(fn, *args, flag_names: dict | None = None, **kwargs):
  """Calls fn; a GenjaxError exits 1 with its message alone, Ctrl-C exits 130."""
  logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
  try:
    return fn(*args, **kwargs)
  except GenjaxError as exc:
    fail(flag_message(exc, flag_names), 1)
  except KeyboardInterrupt:
    if _joined_others():  # no process knows where the others stopped: no save
      print("interrupted: rerun to resume from the last checkpoint", file=sys.stderr)
    else:
      print("interrupted: the last completed chunk was checkpointed; rerun to resume",
            file=sys.stderr)
    exit_now(130)


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
