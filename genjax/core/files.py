"""Files a run writes beside its checkpoints, written whole or not at all."""

import os
from pathlib import Path

from genjax.core.errors import WorkdirError


def write_atomic(path, data: str | bytes) -> None:
  """Writes `data` to a temporary file beside `path`, then renames it over `path`: a reader,
  or a run killed midway, never sees half a file."""
  path = Path(path)
  tmp = path.with_name(path.name + ".tmp")
  if isinstance(data, bytes):
    tmp.write_bytes(data)
  else:
    tmp.write_text(data)
  os.replace(tmp, path)


def check_out_dir(out, workdir) -> Path:
  """A new (or empty) folder for a run made from another (averaged checkpoints): nothing there
  is ever overwritten, and never the run's own workdir."""
  out = Path(out)
  if out.resolve() == Path(workdir).resolve():
    raise WorkdirError(f"--out {out} is the run's own workdir; name a new folder")
  if out.exists() and (not out.is_dir() or any(out.iterdir())):
    raise WorkdirError(f"--out {out} exists and is not empty; name a new folder")
  try:
    out.mkdir(parents=True, exist_ok=True)
  except OSError as exc:
    raise WorkdirError(f"cannot create --out {out}: {exc.strerror or exc}") from None
  return out
