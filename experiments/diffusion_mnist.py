"""Trains a diffusion or flow-matching model on MNIST / Fashion-MNIST, or on your own images.

  python experiments/diffusion_mnist.py --workdir runs/diffusion     # the default recipe
  python experiments/diffusion_mnist.py --config=genjax/configs/diffusion_mnist.py:ddpm_cond \
      --workdir runs/ddpm
  python experiments/diffusion_mnist.py --config=genjax/configs/diffusion_mnist.py:gpu \
      --workdir runs/diffusion_gpu                                    # on a GPU
  python experiments/diffusion_mnist.py --workdir runs/digits_flow --config.dataset=folder:PATH \
      --config.image_size=32 --config.judge=runs/digits_judge         # a folder per class

Writes images/<step>.png, metrics.jsonl (the judge's FID rows with their training seconds),
loss_curve.png, eval_curve.png and checkpoints/ (checkpoints_best/: the lowest FID). Rerunning
on the same --workdir resumes from its latest checkpoint.
"""

from absl import flags

import genjax.configs.diffusion_mnist as diffusion_config
from genjax.core import cli

_WORKDIR = flags.DEFINE_string("workdir", None, "Run folder (default: a new one under runs/).")
_CONFIG = cli.define_config(diffusion_config.__file__)


def done_line(summary: dict) -> str:
  from genjax.core import loop

  final, judged = summary["final"] or {}, summary["final_eval"]
  line = f"done: {loop.trained_text(summary)}; loss={final.get('loss', float('nan')):.4f}"
  if judged:
    line += (f"; judge at step {judged['step']}: FID {judged['fid']:.2f}, score "
             f"{judged['score']:.2f}, classes {judged['class_min']:.3f}-{judged['class_max']:.3f}")
  return line + f"; outputs in {summary['workdir']}"


def main(argv):
  del argv
  from genjax.core import sharding  # jax and the models load after the flags are checked
  from genjax.diffusion.family import train_diffusion

  def train(config, workdir):
    sharding.maybe_initialize_distributed()  # joins the run's other processes, if any
    name = f"{config.objective}_{config.dataset}"
    return train_diffusion(config, workdir or cli.default_workdir(name))

  summary = cli.run(train, _CONFIG.value, _WORKDIR.value)
  if sharding.is_primary_process():
    print(done_line(summary))


if __name__ == "__main__":
  cli.main(main)
