"""Tiny Shakespeare (karpathy/char-rnn's input.txt) read directly or through TFDS, and any
UTF-8 text file as a corpus."""

import functools
import os
from pathlib import Path

from genjax.core.errors import DataError
from genjax.data import source
from genjax.data.source import DOWNLOAD_HOSTS, host_reachable, no_data_hint, resolve_data_dir

FOLDER, FILE = "tiny_shakespeare", "input.txt"
TFDS_NAME = "tiny_shakespeare"
TFDS_SPLITS = ("train", "validation", "test")  # 90/5/5 %: together, the whole file in order


def read_text_file(path) -> str:
  """A non-empty UTF-8 text file, or a one-line error naming it."""
  text = source.read_utf8(path)
  if not text:
    raise DataError(f"{path}: the corpus is empty")
  return text


def load_tfds(manual_dir=None, tfds_data_dir=None) -> str:
  """The whole text through tensorflow_datasets' builder (its three splits, in order)."""
  try:
    import tensorflow_datasets as tfds
  except ImportError as err:
    raise DataError(f"loading {TFDS_NAME!r} through TFDS needs tensorflow-datasets: "
                    f"pip install genjax[tfds] ({err})") from err
  config = tfds.download.DownloadConfig(manual_dir=str(manual_dir)) if manual_dir else None
  try:
    builder = tfds.builder(TFDS_NAME, data_dir=None if tfds_data_dir is None
                           else str(tfds_data_dir))
    builder.download_and_prepare(download_config=config)
    parts = []
    for split in TFDS_SPLITS:
      example = next(iter(tfds.as_numpy(builder.as_dataset(split=split))))
      parts.append(example["text"].decode("utf-8"))
  except Exception as err:  # TFDS/TF raise many unrelated types; report them uniformly
    reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
    source = f" from {manual_dir}" if manual_dir else ""
    raise DataError(f"TFDS could not load {TFDS_NAME!r}{source}: {reason}") from err
  return "".join(parts)


@functools.lru_cache(maxsize=4)
def _load_cached(root: str | None, tfds_dir: str | None) -> str:
  if root is not None:
    return read_text_file(Path(root) / FOLDER / FILE)
  hint = no_data_hint(TFDS_NAME, f"{FOLDER}/{FILE}")
  try:
    import tensorflow_datasets as tfds
    prepared = tfds.builder(TFDS_NAME, data_dir=tfds_dir).is_prepared()
  except Exception:  # not installed, or an unreadable data dir
    prepared = False
  if not prepared and not host_reachable(DOWNLOAD_HOSTS[TFDS_NAME]):
    raise DataError(hint, field="config.data_dir")
  try:
    return load_tfds(tfds_data_dir=tfds_dir)
  except DataError as err:
    raise DataError(f"{hint} ({err})", field="config.data_dir") from err


def load_text(data_dir=None) -> str:
  """The whole Tiny Shakespeare text: data_dir/tiny_shakespeare/input.txt, else through TFDS."""
  root = resolve_data_dir(data_dir)
  tfds_dir = os.environ.get("TFDS_DATA_DIR") if root is None else None
  return _load_cached(root, tfds_dir)


def split_text(text: str, validation_fraction: float) -> tuple[str, str]:
  """(train, validation): the first 1 - fraction of the characters, then the rest (nanoGPT's
  shakespeare_char split at 0.1, which is also TFDS's train | validation + test)."""
  cut = int(len(text) * (1.0 - validation_fraction))
  return text[:cut], text[cut:]
