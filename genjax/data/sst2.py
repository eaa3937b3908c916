"""SST-2 (GLUE's binary sentence sentiment) read from its tab-separated files.

data_dir/sst2/{train,dev,test}.tsv, as in GLUE's SST-2.zip: a header line (`sentence\tlabel`,
or `index\tsentence` for the unlabelled test split), one sentence a line, lower-cased and
tokenized (tokens separated by spaces), labels 0 (negative) and 1 (positive). The text holds no
quote characters, so quoting is off: a field is everything between two tabs. TFDS's glue/sst2
builder needs the original zip, so there is no download: without a data folder the error says
where to put the files.
"""

import functools
from pathlib import Path
from typing import NamedTuple

import numpy as np

from genjax.core.errors import DataError
from genjax.data import source
from genjax.data.source import resolve_data_dir

FOLDER = "sst2"
SPLITS = ("train", "dev", "test")
LABELLED = ("train", "dev")  # GLUE keeps the test labels private
LABELS = ("0", "1")


class Split(NamedTuple):
  """sentences: token lists; labels_N: int32 (None for the test split); path: the file."""

  sentences: tuple
  labels_N: np.ndarray | None
  path: str


def _decode(path: Path) -> str:
  text = source.read_utf8(path)
  if not text.strip():
    raise DataError(f"{path}: the file is empty")
  return text


def _columns(path: Path, header: str, labelled: bool) -> tuple[int, int | None]:
  """(sentence column, label column) from the header; a missing column is named."""
  names = header.split("\t")
  needed = ("sentence", "label") if labelled else ("sentence",)
  missing = [n for n in needed if n not in names]
  if missing:
    raise DataError(f"{path}: line 1: the header {header!r} has no {missing[0]!r} column "
                    f"(expected tab-separated columns {', '.join(needed)})")
  return names.index("sentence"), names.index("label") if labelled else None


def read_tsv(path, labelled: bool = True) -> Split:
  """One split file: its header checked, then every row (a bad one is named with its line)."""
  path = Path(path)
  lines = _decode(path).split("\n")
  if lines[-1] == "":
    lines.pop()  # the final newline
  sentence_col, label_col = _columns(path, lines[0].rstrip("\r"), labelled)
  width = len(lines[0].split("\t"))
  sentences, labels = [], []
  for number, line in enumerate(lines[1:], 2):
    fields = line.rstrip("\r").split("\t")
    if len(fields) != width:
      raise DataError(f"{path}: line {number} has {len(fields)} tab-separated fields, the "
                      f"header {width}")
    tokens = fields[sentence_col].split()
    if not tokens:
      raise DataError(f"{path}: line {number} has an empty sentence")
    sentences.append(tuple(tokens))
    if label_col is not None:
      label = fields[label_col].strip()
      if label not in LABELS:
        raise DataError(f"{path}: line {number} has label {label!r}; labels are 0 or 1")
      labels.append(int(label))
  if not sentences:
    raise DataError(f"{path}: no sentences after the header")
  labels_N = np.asarray(labels, np.int32) if labelled else None
  return Split(tuple(sentences), labels_N, str(path))


def no_data_hint() -> str:
  return (f"no data for 'sst2': set config.data_dir or GENJAX_DATA_DIR to a folder with "
          f"{FOLDER}/train.tsv and {FOLDER}/dev.tsv (GLUE's SST-2; TFDS's glue/sst2 needs the "
          "original zip, so nothing is downloaded)")


def load_split(split: str, data_dir=None) -> Split:
  """A split of data_dir/sst2 (else $GENJAX_DATA_DIR/sst2), read once per folder."""
  if split not in SPLITS:
    raise DataError(f"unknown split {split!r} for 'sst2'; valid splits: {', '.join(SPLITS)}")
  root = resolve_data_dir(data_dir)
  if root is None:
    raise DataError(no_data_hint(), field="config.data_dir")
  return _load_cached(split, root)


@functools.lru_cache(maxsize=8)
def _load_cached(split: str, root: str) -> Split:
  split_data = read_tsv(Path(root) / FOLDER / f"{split}.tsv", labelled=split in LABELLED)
  if split_data.labels_N is not None:
    split_data.labels_N.flags.writeable = False  # the cache stays intact
  return split_data
