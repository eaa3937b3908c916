"""Judges a label-conditioned language model with the sentence classifier: the text twin of the
conditional GAN judged by the CNN.

  python experiments/text_lm.py --config=genjax/configs/text_lm.py:sst2_conditional \
      --workdir runs/sst2_lm
  python experiments/text_classify.py --workdir runs/sst2
  python experiments/judge_text.py --lm_workdir runs/sst2_lm --classifier_workdir runs/sst2 \
      --guidance 4

Samples --num sentences per label (0 negative, 1 positive) and prints, as JSON, the share the
classifier labels as asked, per label and overall, next to the share of real dev sentences it
labels as their annotators did, and the language model's own accuracy on the dev sentences
by Bayes' rule. --guidance mixes the labelled and unlabelled predictions (classifier-free
guidance). --out also writes it to a file.
"""

import json
from pathlib import Path

from absl import flags

from genjax.core import cli
from genjax.core.errors import WorkdirError

_LM = flags.DEFINE_string("lm_workdir", None, "A sst2_conditional language-model run.",
                          required=True)
_CLASSIFIER = flags.DEFINE_string("classifier_workdir", None, "A text_classify.py run.",
                                  required=True)
_NUM = flags.DEFINE_integer("num", 500, "Sentences sampled per label.")
_SEED = flags.DEFINE_integer("seed", 0, "Sampling seed.")
_TEMPERATURE = flags.DEFINE_float("temperature", 1.0, "Softmax temperature of the sampling.")
_GUIDANCE = flags.DEFINE_float("guidance", None, "Classifier-free guidance's weight (a model "
                               "trained with config.label_dropout > 0); unset: none.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Folder with sst2/dev.tsv (default: "
                                "$GENJAX_DATA_DIR).")
_OUT = flags.DEFINE_string("out", None, "Also write the report (JSON) here.")
FLAG_NAMES = {"num": "--num", "guidance": "--guidance", "lm_workdir": "--lm_workdir",
              "classifier_workdir": "--classifier_workdir"}


def judge():
  from genjax.text.conditional import judge as judge_samples  # jax loads after the flags

  for flag in (_LM, _CLASSIFIER):
    if not Path(flag.value).is_dir():
      raise WorkdirError(f"{flag.name} {flag.value} is not a folder", field=flag.name)
  report = judge_samples(_LM.value, _CLASSIFIER.value, _NUM.value, _SEED.value,
                         _TEMPERATURE.value, _DATA_DIR.value, _GUIDANCE.value)
  text = json.dumps(report, indent=2, ensure_ascii=False)
  if _OUT.value:
    cli.write_output(_OUT.value, text + "\n")
  return text


def main(argv):
  del argv
  print(cli.run(judge, flag_names=FLAG_NAMES))


if __name__ == "__main__":
  cli.main(main)
