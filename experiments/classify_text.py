"""Labels sentences with a trained sentence classifier (experiments/text_classify.py).

  python experiments/classify_text.py --workdir runs/sst2 --text "a gorgeous, witty film"
  python experiments/classify_text.py --workdir runs/sst2 --input reviews.txt --out labels.jsonl

One JSON object per input (one input per line of --input), in input order: `text`, `label`
(0 negative, 1 positive) and `p_positive`; printed, or written to --out. Raw text is tokenized
as the training data were (lower-cased, punctuation split off). An empty line is an error
naming it.
"""

import json
from absl import flags

from genjax.core import cli
from genjax.core.errors import GenjaxError
from genjax.data import source

_WORKDIR = flags.DEFINE_string("workdir", None, "A text_classify.py run.", required=True)
_TEXT = flags.DEFINE_string("text", None, "One sentence to classify.")
_INPUT = flags.DEFINE_string("input", None, "A UTF-8 file, one sentence per line.")
_OUT = flags.DEFINE_string("out", None, "Write the JSON lines here instead of printing them.")


def classify() -> str:
  if (_TEXT.value is None) == (_INPUT.value is None):
    raise GenjaxError("give exactly one of --text and --input")
  if _INPUT.value is None:
    sentences, origin = [_TEXT.value], "--text"
  else:
    sentences, origin = source.read_utf8(_INPUT.value).splitlines(), _INPUT.value
  from genjax.text.classify import predict  # jax loads after the flags are checked

  labels, p_positive = predict(_WORKDIR.value, sentences, origin)
  lines = "".join(json.dumps({"text": s, "label": int(y), "p_positive": round(float(p), 6)},
                             ensure_ascii=False) + "\n"
                  for s, y, p in zip(sentences, labels, p_positive))
  if _OUT.value:
    cli.write_output(_OUT.value, lines)
    return ""
  return lines


def main(argv):
  del argv
  print(cli.run(classify), end="")


if __name__ == "__main__":
  cli.main(main)
