"""The texts a language model trains on: Tiny Shakespeare, any UTF-8 file, or SST-2's sentences
each behind its sentiment label (a conditional model: the label is the line's first character).
"""

import numpy as np

from genjax.data import shakespeare, sst2

# First character of a labelled line: control characters, so that no sentence holds them.
LABEL_CHARS = ("\x01", "\x02")  # negative, positive
NULL_LABEL = "\x03"  # a label withheld (classifier-free guidance); in every conditional vocabulary
DATASETS = ("tiny_shakespeare", "sst2_conditional")


def readable(text: str, dataset: str) -> str:
  """Text as a reader is shown it: for a conditional dataset, without the label characters,
  which tell the model a line's label and which a terminal would not show."""
  if dataset != "sst2_conditional":  # any other text keeps every character it has
    return text
  return text.translate({ord(c): None for c in (*LABEL_CHARS, NULL_LABEL)})


def labelled_lines(split: sst2.Split) -> str:
  """One line per sentence, its label's character first: the text of a conditional model."""
  return "".join(f"{LABEL_CHARS[int(y)]}{' '.join(tokens)}\n"
                 for tokens, y in zip(split.sentences, split.labels_N))


def train_and_validation(config) -> tuple[str, str, str]:
  """(training text, validation text, the source's name for messages)."""
  if config.dataset == "sst2_conditional":
    data_dir = config.data_dir or None
    # Each line after a newline, the first one too: a window from a newline sees the label.
    return ("\n" + labelled_lines(sst2.load_split("train", data_dir)),
            "\n" + labelled_lines(sst2.load_split("dev", data_dir)), "sst2")
  if config.text_file:
    text, source = shakespeare.read_text_file(config.text_file), config.text_file
  else:
    text, source = shakespeare.load_text(config.data_dir or None), "tiny_shakespeare"
  train, validation = shakespeare.split_text(text, config.validation_fraction)
  return train, validation, source


def line_starts(tokens_N, newline_id: int, context: int):
  """Offsets of the newlines a window of context + 1 tokens can begin at."""
  starts_S = np.flatnonzero(np.asarray(tokens_N) == newline_id)
  return starts_S[starts_S < len(tokens_N) - context].astype(np.int32)
