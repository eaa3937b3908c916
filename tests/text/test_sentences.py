"""Sentences as the classifier reads them: subword ids, length buckets."""

import numpy as np

from genjax.text import sentences, words


def test_buckets_hold_each_sentence_once_padded_to_their_length():
  ids = [np.arange(1, n + 1, dtype=np.int32) for n in (3, 9, 2, 17, 8)]
  subwords = [np.full((n, 2), 5, np.int32) for n in (3, 9, 2, 17, 8)]
  encoded = sentences.Encoded(ids, subwords)
  buckets = sentences.make_buckets(encoded, np.array([0, 1, 0, 1, 1]), (8, 16, 32))
  assert [b.tokens_NxT.shape for b in buckets] == [(3, 8), (1, 16), (1, 32)]
  assert [b.subwords_NxTxG.shape for b in buckets] == [(3, 8, 2), (1, 16, 2), (1, 32, 2)]
  assert sorted(n for b in buckets for n in b.lengths_N) == [2, 3, 8, 9, 17]
  for b in buckets:
    assert (b.tokens_NxT != 0).sum(1).tolist() == b.lengths_N.tolist()
    assert (b.subwords_NxTxG != 0).all(2).sum(1).tolist() == b.lengths_N.tolist()


def test_subwords_are_hashed_ngrams_that_related_words_share():
  funny, unfunny = (set(words.subword_ids(w, 1 << 20, 64).tolist()) - {0}
                    for w in ("funny", "unfunny"))
  assert len(funny) == 1 + 5 + 4 + 3  # <funny>, then its 3-, 4- and 5-grams with the marks
  assert len(funny & unfunny) == 4 + 3 + 2  # fun unn nny ny>, funn unny nny>, funny unny>
  assert max(funny | unfunny) < 1 << 20 and len(words.subword_ids("a", 4, 9).nonzero()[0]) <= 3
  np.testing.assert_array_equal(words.subword_ids("funny", 1000, 64),
                                words.subword_ids("funny", 1000, 64))  # crc32, not hash()
  assert (words.subword_ids("incomprehensible", 1000, 8) > 0).all()  # the first 8 of 46
  assert words.encode_subwords(["a", "film"], 0, 8).shape == (2, 0)
  assert words.encode_subwords(["a", "film"], 1000, 8).shape == (2, 8)
