"""Trains the tutorial's MNIST GAN.

  python experiments/gan_mnist.py                      # tutorial defaults, fresh runs/ folder
  python experiments/gan_mnist.py --workdir runs/gan --config.num_steps=30000
  python experiments/gan_mnist.py --config.dataset=fashion_mnist --config.print_interval=200

Rerunning on the same --workdir resumes from its latest checkpoint.
"""

from absl import app, flags
from ml_collections import config_flags

import genjax.configs.gan_mnist as gan_config
from genjax import cli, sharding, train

_WORKDIR = flags.DEFINE_string("workdir", None, "Run folder (default: a new one under runs/).")
_CONFIG = config_flags.DEFINE_config_file("config", gan_config.__file__, "Training config.")


def main(argv):
  del argv
  sharding.maybe_initialize_distributed()
  workdir = _WORKDIR.value or cli.default_workdir(f"gan_{_CONFIG.value.dataset}")
  summary = cli.run_reporting_errors(train.train_and_evaluate, _CONFIG.value, workdir)
  final = summary["final"] or {}
  print(f"done: {summary['step']} iterations in {summary['train_s']:.1f} s "
        f"({summary['iters_per_s']:.0f} it/s); d_loss={final.get('d_loss', float('nan')):.3f} "
        f"d_acc={final.get('d_acc', float('nan')):.2f} g_loss={final.get('g_loss', float('nan')):.3f}"
        f"; outputs in {summary['workdir']}")


if __name__ == "__main__":
  app.run(main)
