"""Trains an RNN sentence classifier on SST-2 (a bidirectional LSTM by default), from scratch.

  python experiments/text_classify.py --workdir runs/sst2
  python experiments/text_classify.py --config=genjax/configs/text_classify.py:gru --workdir runs/gru

Writes metrics.jsonl (training loss and accuracy; dev loss and accuracy every eval_interval),
loss_curve.png, eval.json (dev_accuracy, dev_loss, the confusion matrix, accuracy by sentence
length), vocab.json and checkpoints/. Rerunning on the same --workdir resumes.
Then: python experiments/classify_text.py --workdir runs/sst2 --text "a gorgeous, witty film"
"""

from absl import flags

import genjax.configs.text_classify as text_classify_config
from genjax.core import cli

_WORKDIR = flags.DEFINE_string("workdir", None, "Run folder (default: a new one under runs/).")
_CONFIG = cli.define_config(text_classify_config.__file__)


def main(argv):
  del argv
  from genjax.core import loop, sharding  # jax and the models load after the flags are checked
  from genjax.text.classify import train_classifier

  def train(config, workdir):
    sharding.maybe_initialize_distributed()  # joins the run's other processes, if any
    return train_classifier(config, workdir or cli.default_workdir(f"sst2_{config.encoder}"))

  summary = cli.run(train, _CONFIG.value, _WORKDIR.value)
  if not sharding.is_primary_process():
    return
  result = summary["eval"]
  print(f"done: {loop.trained_text(summary)} "
        f"({result['params']:,} parameters, {result['vocab_size']:,} words); dev accuracy "
        f"{result['dev_accuracy']:.2f}%, dev loss {result['dev_loss']:.4f}; outputs in "
        f"{summary['workdir']}")


if __name__ == "__main__":
  cli.main(main)
