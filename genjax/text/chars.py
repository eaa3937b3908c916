"""A character vocabulary: the sorted characters of a training text, one id each."""

import functools

import numpy as np

from genjax.core.errors import DataError


def build_vocab(text: str) -> str:
  """The sorted distinct characters of `text`, as one string (id i is character i)."""
  return "".join(sorted(set(text)))


def position_of(text: str, index: int) -> str:
  """'line L, column C' of text[index] (1-based), for error messages."""
  line = text.count("\n", 0, index) + 1
  column = index - (text.rfind("\n", 0, index) + 1) + 1
  return f"line {line}, column {column}"


def encode(text: str, vocab: str, source: str = "text") -> np.ndarray:
  """int32 ids of every character; a character outside the vocabulary is a one-line error
  naming it and where it is."""
  table = _lookup_table(vocab)
  ids = table[np.frombuffer(text.encode("utf-32-le"), np.uint32)] if text else \
      np.zeros(0, np.int32)
  unknown = np.flatnonzero(ids < 0)
  if unknown.size:
    i = int(unknown[0])
    raise DataError(f"{source}: character {text[i]!r} at {position_of(text, i)} is not in the "
                    f"model's vocabulary ({len(vocab)} characters)")
  return ids


@functools.lru_cache(maxsize=8)
def _lookup_table(vocab: str) -> np.ndarray:
  """id of every Unicode code point, -1 outside the vocabulary."""
  table = np.full(0x110000, -1, np.int32)
  table[[ord(c) for c in vocab]] = np.arange(len(vocab), dtype=np.int32)
  table.flags.writeable = False
  return table


def decode(ids, vocab: str) -> str:
  return "".join(vocab[int(i)] for i in np.asarray(ids))
