"""Trains the tutorial's MNIST GAN, or any recipe of genjax/configs/gan_mnist.py.

  python experiments/gan_mnist.py                      # tutorial defaults, fresh runs/ folder
  python experiments/gan_mnist.py --workdir runs/gan --config.num_steps=30000
  python experiments/gan_mnist.py --config=genjax/configs/gan_mnist.py:cgan --workdir runs/cgan

Rerunning on the same --workdir resumes from its latest checkpoint.
"""

from absl import flags

import genjax.configs.gan_mnist as gan_config
from genjax.core import cli

_WORKDIR = flags.DEFINE_string("workdir", None, "Run folder (default: a new one under runs/).")
_CONFIG = cli.define_config(gan_config.__file__)


def done_line(summary: dict) -> str:
  from genjax.core import loop

  final, judged = summary["final"] or {}, summary["final_eval"]
  nan = float("nan")
  line = (f"done: {loop.trained_text(summary, 'iterations')}; "
          f"d_loss={final.get('d_loss', nan):.3f} d_acc={final.get('d_acc', nan):.2f} "
          f"g_loss={final.get('g_loss', nan):.3f}")
  if judged:
    line += f"; judge at step {judged['step']}: FID {judged['fid']:.2f}, score {judged['score']:.2f}"
  return line + f"; outputs in {summary['workdir']}"


def main(argv):
  del argv
  from genjax.core import sharding  # jax and the models load after the flags are checked
  from genjax.data.image_sets import short_name
  from genjax.gan.family import train_gan

  def train(config, workdir):
    sharding.maybe_initialize_distributed()  # joins the run's other processes, if any
    return train_gan(config, workdir or cli.default_workdir(f"gan_{short_name(config.dataset)}"))

  summary = cli.run(train, _CONFIG.value, _WORKDIR.value)
  if sharding.is_primary_process():
    print(done_line(summary))


if __name__ == "__main__":
  cli.main(main)
