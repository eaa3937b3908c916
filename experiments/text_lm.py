"""Trains a character-level language model (a Transformer, or an LSTM) on Tiny Shakespeare.

  python experiments/text_lm.py --workdir runs/shakespeare          # the Transformer recipe
  python experiments/text_lm.py --config=genjax/configs/text_lm.py:lstm --workdir runs/lstm
  python experiments/text_lm.py --config.text_file=my_corpus.txt --workdir runs/mine

Writes metrics.jsonl (training loss; validation loss every eval_interval), samples/<step>.txt,
loss_curve.png, eval.json (val_loss, val_bpc, train_loss, params, tokens_seen, train_seconds)
and checkpoints/. Rerunning on the same --workdir resumes from its latest checkpoint.
"""

from absl import flags

import genjax.configs.text_lm as text_lm_config
from genjax.core import cli

_WORKDIR = flags.DEFINE_string("workdir", None, "Run folder (default: a new one under runs/).")
_CONFIG = cli.define_config(text_lm_config.__file__)


def main(argv):
  del argv
  from genjax.core import loop, sharding  # jax and the models load after the flags are checked
  from genjax.text.lm import train_lm

  config = _CONFIG.value
  workdir = _WORKDIR.value or cli.default_workdir(f"text_{config.model}")

  def train():
    sharding.split_cpu(config.cpu_devices)  # before anything starts JAX
    sharding.maybe_initialize_distributed()
    return train_lm(config, workdir)

  summary = cli.run(train)
  result = summary["eval"]
  print(f"done: {loop.trained_text(summary)} "
        f"({result['params']:,} parameters); validation "
        f"loss {result['val_loss']:.4f} nats, {result['val_bpc']:.4f} bits per character; "
        f"outputs in {summary['workdir']}")


if __name__ == "__main__":
  cli.main(main)
