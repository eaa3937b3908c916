"""Labels sentences with a trained sentence classifier (experiments/text_classify.py).

  python experiments/classify_text.py --workdir runs/sst2 --text "a gorgeous, witty film"
  python experiments/classify_text.py --workdir runs/sst2 --input reviews.txt --out labels.jsonl

One JSON object per input (one input per line of --input), in input order: `text`, `label`
(the class's index: for SST-2 0 negative, 1 positive) and `label_name` (the class's name in the
training data); from a two-class model `p_positive` (the probability of class 1), from one of
more classes `probabilities` (each class's name and probability); printed, or written to --out.
Raw text is tokenized as the training data were (lower-cased, punctuation split off). A line
without words (an empty one) is skipped: its row has `label` and the probabilities null and
`skipped` true, so rows and lines stay aligned, and one line on stderr says how many were
skipped.
"""

import json
import sys

from absl import flags

from genjax.core import cli
from genjax.core.errors import GenjaxError
from genjax.data import source

_WORKDIR = flags.DEFINE_string("workdir", None, "A text_classify.py run.", required=True)
_TEXT = flags.DEFINE_string("text", None, "One sentence to classify.")
_INPUT = flags.DEFINE_string("input", None, "A UTF-8 file, one sentence per line.")
_OUT = flags.DEFINE_string("out", None, "Write the JSON lines here instead of printing them.")


def row(sentence: str, label: int, probs_K, names) -> dict:
  """The output line of one input line; label -1 (no words) is a skipped row."""
  key = "p_positive" if len(names) == 2 else "probabilities"
  if label < 0:
    return {"text": sentence, "label": None, key: None, "skipped": True}
  out = {"text": sentence, "label": int(label)}
  if len(names) == 2:  # SST-2's row as it always was, its label's name after it
    out["p_positive"] = round(float(probs_K[1]), 6)
  else:
    out["probabilities"] = {n: round(float(p), 6) for n, p in zip(names, probs_K)}
  return {**out, "label_name": names[label]}


def classify() -> str:
  if (_TEXT.value is None) == (_INPUT.value is None):
    raise GenjaxError("give exactly one of --text and --input")
  if _INPUT.value is None:
    sentences, origin = [_TEXT.value], "--text"
  else:
    sentences, origin = source.read_utf8(_INPUT.value).splitlines(), _INPUT.value
  from genjax.text.classify import predict_classes  # jax loads after the flags are checked

  labels, probs_NxK, names = predict_classes(_WORKDIR.value, sentences, origin)
  lines = "".join(json.dumps(row(s, y, p, names), ensure_ascii=False) + "\n"
                  for s, y, p in zip(sentences, labels, probs_NxK))
  skipped = int((labels < 0).sum())
  if skipped:
    print(f"note: {origin}: skipped {skipped} line{'s' if skipped > 1 else ''} without words "
          "(their rows say \"skipped\": true)", file=sys.stderr)
  if _OUT.value:
    cli.write_output(_OUT.value, lines)
    return ""
  return lines


def main(argv):
  del argv
  print(cli.run(classify), end="")


if __name__ == "__main__":
  cli.main(main)
