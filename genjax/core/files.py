"""Files a run writes beside its checkpoints, written whole or not at all."""

import os
from pathlib import Path


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
