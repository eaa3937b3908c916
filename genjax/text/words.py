"""Words: SST-2's tokens, a tokenizer that splits everyday text the way the dataset was split,
and a vocabulary of the training split's words (`<pad>` = 0, `<unk>` = 1).

The dataset is lower-cased Penn-Treebank-style tokens: punctuation split off ("great ."),
clitics split as the treebank does ("it 's", "does n't", "ca n't", "wo n't", "can not",
"gon na"), opening quotes as ` and ``, closing ones as ' and '', hyphenated words and
abbreviations ("mr.", "u.s.") kept whole. `tokenize` reproduces that from raw text, and leaves
the dataset's own sentences as they are (a round trip).
"""

import functools
import hashlib
import json
import re
import zlib
from collections import Counter

import numpy as np

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1

# Typographic characters as the treebank writes them.
_NORMALIZE = (("\u2018", "`"), ("\u2019", "'"), ("\u201c", "``"), ("\u201d", "''"),
              ("\u2026", "..."), ("\u2014", " -- "), ("\u2013", " -- "), ("\u00a0", " "))
# Tokens that stand as they are (the dataset's punctuation and clitics).
STANDALONE = frozenset({
    ".", ",", ";", ":", "!", "?", "(", ")", "[", "]", "{", "}", "`", "``", "'", "''", "--",
    "-", "...", "$", "#", "%", "&", "*", "/", "'s", "'re", "'ve", "'ll", "'d", "'m", "n't",
    "'em", "'til", "'n", "'n'", "ol'", "o'"})
_LEADING = ("``", "`", "(", "[", "{", "$", "#", "...", "--")
_TRAILING = ("''", "...", "--", ",", ";", ":", ")", "]", "}", "%")
_MARKS = re.compile(r"[!?]+$")  # "!", "?!?": one token, as in the dataset
# A straight double quote opens after a space or bracket, and closes anywhere else.
_OPEN_QUOTE, _CLOSE_QUOTE = re.compile(r'(^|[\s(\[{])"'), re.compile(r'"')
# Leading apostrophes that belong to the word ("'70s", "'em"); any other opens a quote.
_KEEPS_APOSTROPHE = re.compile(r"^'(\d|em$|til$|n$|cause$)")
_CLITIC = re.compile(r"^(.+?)(n't|'s|'re|'ve|'ll|'d|'m)$")
_FUSED = {"cannot": ("can", "not"), "gonna": ("gon", "na"), "wanna": ("wan", "na"),
          "gotta": ("got", "ta"), "gimme": ("gim", "me"), "lemme": ("lem", "me")}
_INNER = re.compile(r"(\.\.\.|--|(?<=\D),|,(?=\D))")
# Words whose final period is part of them: "mr.", "u.s.", "j.", "etc.".
ABBREVIATIONS = frozenset({
    "mr", "mrs", "ms", "dr", "st", "jr", "sr", "vs", "no", "etc", "inc", "co", "ltd", "vol",
    "mt", "ft", "al", "pa", "wash", "prof", "gen", "rev", "sgt", "capt", "col", "lt", "gov",
    "sen", "rep", "bros", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec"})


def split_tokens(sentence: str) -> list[str]:
  """The dataset's own tokens: already split, so whitespace separates them."""
  return sentence.split()


def _is_abbreviation(word: str) -> bool:
  core = word[:-1]
  return bool(core) and ("." in core or len(core) == 1 or core in ABBREVIATIONS)


def _standalone(word: str) -> bool:
  return word in STANDALONE or bool(_MARKS.fullmatch(word))


def _opener(word: str) -> str | None:
  """The punctuation opening `word`, if any ("(", "``", a quote's apostrophe)."""
  opener = next((p for p in _LEADING if word.startswith(p) and len(word) > len(p)), None)
  if opener is None and word.startswith("'") and len(word) > 1 and \
      not _KEEPS_APOSTROPHE.match(word) and not _CLITIC.match(word):
    opener = "'"
  return opener


def _closer(word: str) -> str | None:
  """The punctuation closing `word`, if any (",", "?!", a quote, a sentence's period)."""
  marks = _MARKS.search(word)
  if marks and marks.start():
    return marks.group(0)
  closer = next((p for p in _TRAILING if word.endswith(p) and len(word) > len(p)), None)
  if closer is None and word.endswith("'") and len(word) > 1:
    closer = "'"  # a closing quote, or a plural's possessive ("viewers '")
  if closer is None and word.endswith(".") and len(word) > 1 and not _is_abbreviation(word):
    closer = "."
  return closer


def _peel(word: str) -> tuple[list[str], str, list[str]]:
  """(leading tokens, core, trailing tokens) of one whitespace-separated word."""
  lead, trail = [], []
  while word and not _standalone(word) and (opener := _opener(word)):
    lead.append("`" if opener == "'" else opener)  # an opening single quote is `
    word = word[len(opener):]
  while word and not _standalone(word) and not _CLITIC.fullmatch(word) and \
      (closer := _closer(word)):
    trail.insert(0, closer)
    word = word[:-len(closer)]
  return lead, word, trail


def _split_core(core: str) -> list[str]:
  """Clitics and fused words of a word without its punctuation."""
  if not core or _standalone(core):
    return [core] if core else []
  if core in _FUSED:
    return list(_FUSED[core])
  match = _CLITIC.match(core)
  if match:
    return [*_split_core(match.group(1)), match.group(2)]
  return [core]


def _split_word(word: str) -> list[str]:
  parts = [p for p in _INNER.split(word) if p]
  if len(parts) > 1:  # "good...but", "film--and", "funny,smart"
    return [t for p in parts for t in _split_word(p)]
  lead, core, trail = _peel(word)
  return lead + _split_core(core) + trail


def tokenize(text: str) -> list[str]:
  """Everyday text as the dataset's tokens: "It's not bad, isn't it?" -> it 's not bad , is
  n't it ?"""
  text = text.lower()
  for old, new in _NORMALIZE:
    text = text.replace(old, new)
  text = _CLOSE_QUOTE.sub(" '' ", _OPEN_QUOTE.sub(r"\1 `` ", text))
  return [t for word in text.split() for t in _split_word(word)]


def build_vocab(sentences, min_count: int = 1) -> tuple[str, ...]:
  """`<pad>`, `<unk>`, then every word seen at least min_count times, the most frequent first
  (ties in alphabetical order, so the vocabulary is a function of the data alone)."""
  counts = Counter(t for s in sentences for t in s)
  words = sorted((w for w, c in counts.items() if c >= min_count and w not in (PAD, UNK)),
                 key=lambda w: (-counts[w], w))
  return (PAD, UNK, *words)


def vocab_sha256(vocab) -> str:
  """The vocabulary's fingerprint, as a checkpoint's record keeps it."""
  return hashlib.sha256(json.dumps(list(vocab)).encode("utf-8")).hexdigest()


def vocab_json(vocab) -> str:
  return json.dumps({"words": list(vocab), "sha256": vocab_sha256(vocab)}) + "\n"


def lookup(vocab) -> dict:
  return {w: i for i, w in enumerate(vocab)}


def encode(tokens, index: dict) -> np.ndarray:
  """int32 ids of the tokens; a word outside the vocabulary is `<unk>`."""
  return np.asarray([index.get(t, UNK_ID) for t in tokens], np.int32)


def decode(ids, vocab) -> list[str]:
  """The words of the ids, padding dropped."""
  return [vocab[int(i)] for i in np.asarray(ids) if int(i) != PAD_ID]


# fastText's subwords (Bojanowski et al. 2017): the word's character n-grams, "<" and ">"
# marking its ends, and the marked word itself, hashed into a fixed number of buckets.
NGRAM_SIZES = (3, 4, 5)


# SST-2 repeats its words: with the cache its training split encodes in 0.9 s instead of 5.
@functools.lru_cache(maxsize=1 << 17)
def subword_ids(word: str, num_buckets: int, width: int) -> np.ndarray:
  """int32 ids in 1..num_buckets-1 of the word's subwords (crc32: the same in every process),
  the first `width` of them, padded with 0; read-only, as it is shared by every call."""
  marked = f"<{word}>"
  grams = [marked] + [marked[i:i + n] for n in NGRAM_SIZES for i in range(len(marked) - n + 1)]
  ids = [1 + zlib.crc32(g.encode("utf-8")) % (num_buckets - 1) for g in dict.fromkeys(grams)]
  out = np.zeros(width, np.int32)
  out[:min(width, len(ids))] = ids[:width]
  out.flags.writeable = False
  return out


def encode_subwords(tokens, num_buckets: int, width: int) -> np.ndarray:
  """subwords_LxG of a sentence's tokens (G = width; 0 when num_buckets is 0: none)."""
  if not num_buckets:
    return np.zeros((len(tokens), 0), np.int32)
  return np.stack([subword_ids(t, num_buckets, width) for t in tokens]).reshape(-1, width)
