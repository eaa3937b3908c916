"""Sentences as the classifier reads them: word ids and subword ids (`encode_sentences`), and
length buckets, each one padded array per field (`make_buckets`), so every bucket's shape
compiles once and a batch is one gather on the device."""

from typing import NamedTuple

import numpy as np

from genjax.text import words


class Bucket(NamedTuple):
  """Sentences of one length range, padded with <pad> (0) to the range's end."""

  tokens_NxT: np.ndarray
  lengths_N: np.ndarray
  labels_N: np.ndarray
  subwords_NxTxG: np.ndarray  # G = 0 without subwords


def padded_width(length: int, boundaries) -> int:
  """The bucket a sentence of `length` tokens goes to; past the last, the last's width doubled
  until it holds the sentence (at most twice the work, and few shapes to compile)."""
  for bound in boundaries:
    if length <= bound:
      return bound
  return boundaries[-1] << (-(-length // boundaries[-1]) - 1).bit_length()


def batch_rows(width: int, count: int, boundaries, batch_size: int) -> int:
  """Rows of one batch of `count` sentences padded to `width`: batch_size within the buckets
  (one compiled shape each). Past the last bucket, at most the rows that hold batch_size rows
  of the last bucket's tokens, and at most the power of two at or above count: one long
  sentence then costs time in proportion to its length, not batch_size times it (and the
  memory of a batch of ordinary sentences)."""
  if width <= boundaries[-1]:
    return batch_size
  return max(1, min(batch_size * boundaries[-1] // width, 1 << (count - 1).bit_length()))


class Encoded(NamedTuple):
  """Sentences as the model reads them: word ids (L each) and subword ids (L x G each)."""

  ids: list
  subwords: list


def encode_sentences(token_lists, index: dict, config) -> Encoded:
  """The sentences' word ids in `index`, and their subwords where config asks for them."""
  buckets, width = config.subword_buckets, config.subword_width
  return Encoded([words.encode(t, index) for t in token_lists],
                 [words.encode_subwords(t, buckets, width) for t in token_lists])


def pad_rows(encoded: Encoded, width: int, rows: int):
  """(tokens_RxT, lengths_R, subwords_RxTxG): the sentences padded to `width`, then empty
  rows up to `rows`."""
  tokens = np.zeros((rows, width), np.int32)
  lengths = np.zeros(rows, np.int32)
  subwords = np.zeros((rows, width, encoded.subwords[0].shape[1]), np.int32)
  for i, (ids, sub) in enumerate(zip(*encoded)):
    tokens[i, :len(ids)], lengths[i], subwords[i, :len(ids)] = ids, len(ids), sub
  return tokens, lengths, subwords


def rows_of(encoded: Encoded, rows) -> Encoded:
  return Encoded([encoded.ids[i] for i in rows], [encoded.subwords[i] for i in rows])


def make_buckets(encoded: Encoded, labels_N, boundaries) -> list[Bucket]:
  """The non-empty buckets of the sentences (original order within each)."""
  widths_N = np.array([padded_width(len(ids), boundaries) for ids in encoded.ids])
  buckets = []
  for width in boundaries:
    rows = np.flatnonzero(widths_N == width)
    if rows.size:
      tokens, lengths, subwords = pad_rows(rows_of(encoded, rows), width, rows.size)
      buckets.append(Bucket(tokens, lengths, labels_N[rows].astype(np.int32), subwords))
  return buckets
