"""Where a dataset comes from: config.data_dir, then $GENJAX_DATA_DIR, then TFDS's download.

A download is attempted only when a quick probe reaches the dataset's host: offline, a command
fails in seconds with a hint instead of minutes of retries. GENJAX_OFFLINE=1 skips the probe and
treats the network as absent.
"""

import importlib.util
import os
import socket
import threading
from pathlib import Path

from genjax.core.errors import DataError

# The hosts TFDS's builders download from.
DOWNLOAD_HOSTS = {"mnist": "storage.googleapis.com",
                  "fashion_mnist": "fashion-mnist.s3-website.eu-central-1.amazonaws.com",
                  "tiny_shakespeare": "raw.githubusercontent.com"}
PROBE_SECONDS = 5.0


def resolve_data_dir(data_dir) -> str | None:
  """data_dir if given, else $GENJAX_DATA_DIR, else None; absolute, and the folder must exist."""
  if data_dir:
    folder, source = str(data_dir), "config.data_dir"
  elif os.environ.get("GENJAX_DATA_DIR"):
    folder, source = os.environ["GENJAX_DATA_DIR"], "GENJAX_DATA_DIR"
  else:
    return None
  path = Path(folder).expanduser()
  if not path.is_dir():
    raise DataError(f"data folder {folder!r} (from {source}) does not exist",
                    field="config.data_dir" if source == "config.data_dir" else None)
  return str(path.resolve())


def host_reachable(host: str, timeout: float = PROBE_SECONDS) -> bool:
  """Whether a TCP connection to host:443 opens within `timeout` seconds (DNS included)."""
  if os.environ.get("GENJAX_OFFLINE") == "1":
    return False
  result = []

  def probe():
    try:
      socket.create_connection((host, 443), timeout=timeout).close()
      result.append(True)
    except OSError:
      result.append(False)

  thread = threading.Thread(target=probe, daemon=True)  # getaddrinfo has no timeout of its own
  thread.start()
  thread.join(timeout)
  return bool(result and result[0])


def no_data_hint(name: str, folder_hint: str) -> str:
  """The hint for a run that found no local data and cannot download."""
  tfds_missing = importlib.util.find_spec("tensorflow_datasets") is None
  return (f"no data for {name!r}: set config.data_dir or GENJAX_DATA_DIR to a folder with "
          f"{folder_hint}, or connect to the internet for TFDS's download"
          + (" (pip install genjax[tfds])" if tfds_missing else ""))


def read_bytes(path) -> bytes:
  """A file's bytes, or a DataError naming it."""
  path = Path(path)
  try:
    return path.read_bytes()
  except FileNotFoundError:
    raise DataError(f"{path}: file not found") from None
  except OSError as err:
    raise DataError(f"{path}: cannot read ({err.strerror or err})") from None


def read_utf8(path) -> str:
  """A UTF-8 text file's text, or a DataError naming it (and the line of a bad byte)."""
  raw = read_bytes(path)
  try:
    return raw.decode("utf-8")
  except UnicodeDecodeError as err:
    line = raw[:err.start].count(b"\n") + 1
    raise DataError(f"{path}: not UTF-8 text (byte {err.start}, line {line})") from None
