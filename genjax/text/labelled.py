"""Sentences of one's own for the classifier: tab-separated files with a header, a text column
and a label column (their names configurable), any number of classes, labels as names or
integers.

The training file's distinct labels are the classes, in order: numerically when every one is
an integer, else alphabetically. Text is tokenized as raw text (words.tokenize). A bad file is
one line naming it, the line and the column: a header without the column asked for, a row
with an empty text or label, a development label the training file never uses.
"""

from pathlib import Path
from typing import NamedTuple

import numpy as np

from genjax.core.errors import DataError
from genjax.data import source
from genjax.text import words


class LabelledFile(NamedTuple):
  """sentences: token lists; labels: the label column's strings, stripped; path: the file."""

  sentences: tuple
  labels: tuple
  path: str


def _column(path, header: list, name: str, key: str) -> int:
  if name not in header:
    raise DataError(f"{path}: line 1: no column {name!r} ({key}); the header has "
                    f"{', '.join(repr(h) for h in header)}")
  return header.index(name)


def read_labelled(path, text_column: str, label_column: str) -> LabelledFile:
  """Every row of a labelled TSV: its header checked, each row's text tokenized."""
  path = Path(path)
  lines = source.read_utf8(path).split("\n")
  if lines[-1] == "":
    lines.pop()  # the final newline
  if not lines or not lines[0].strip():
    raise DataError(f"{path}: the file is empty; it needs a header line naming its columns")
  header = lines[0].rstrip("\r").split("\t")
  text_col = _column(path, header, text_column, "config.text_column")
  label_col = _column(path, header, label_column, "config.label_column")
  sentences, labels = [], []
  for number, line in enumerate(lines[1:], 2):
    fields = line.rstrip("\r").split("\t")
    if len(fields) != len(header):
      raise DataError(f"{path}: line {number} has {len(fields)} tab-separated fields, the "
                      f"header {len(header)}")
    tokens = words.tokenize(fields[text_col])
    if not tokens:
      raise DataError(f"{path}: line {number}: no words in column {text_column!r}")
    label = fields[label_col].strip()
    if not label:
      raise DataError(f"{path}: line {number}: empty label in column {label_column!r}")
    sentences.append(tuple(tokens))
    labels.append(label)
  if not sentences:
    raise DataError(f"{path}: no rows after the header")
  return LabelledFile(tuple(sentences), tuple(labels), str(path))


def class_names(split: LabelledFile, label_column: str) -> tuple:
  """The training file's distinct labels in class order: numeric when all are integers."""
  names = sorted(set(split.labels))
  if all(_is_int(n) for n in names):
    names.sort(key=int)
  if len(names) < 2:
    raise DataError(f"{split.path}: column {label_column!r} holds one label ({names[0]!r}); a "
                    "classifier needs two or more")
  return tuple(names)


def _is_int(text: str) -> bool:
  return text.lstrip("+-").isdigit()


def label_ids(split: LabelledFile, names, label_column: str) -> np.ndarray:
  """labels_N: each row's class index; a label outside `names` names its line."""
  index = {name: i for i, name in enumerate(names)}
  for number, label in enumerate(split.labels, 2):
    if label not in index:
      raise DataError(f"{split.path}: line {number}: label {label!r} in column "
                      f"{label_column!r} is not one of the training file's labels "
                      f"({', '.join(names)})")
  return np.asarray([index[label] for label in split.labels], np.int32)
