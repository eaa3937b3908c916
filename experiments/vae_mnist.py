"""Trains and evaluates an autoencoder, VAE or IWAE on (dynamically binarized) MNIST.

  python experiments/vae_mnist.py                          # classic 200-200-50 VAE
  python experiments/vae_mnist.py --workdir runs/iwae --config=genjax/configs/vae_mnist.py:iwae50
  python experiments/vae_mnist.py --config.model=ae --config.dataset=fashion_mnist
  python experiments/vae_mnist.py --config=genjax/configs/vae_mnist.py:flax_example
  python experiments/vae_mnist.py --config.conditional=True   # q(z|x,y), p(x|z,y): by class

Writes metrics.jsonl, loss_curve.png, images/, checkpoints/, eval.json (test neg ELBO, IWAE
bound and k=5000 NLL in nats; of log p(x|y) for a conditional run) and the pictures
(samples_by_class.png too, for a conditional run). Rerunning on the same --workdir resumes from
its latest checkpoint (and, once trained, only evaluates again, e.g. with other --config.eval_*).
"""

from absl import flags

import genjax.configs.vae_mnist as vae_config
from genjax.core import cli

_WORKDIR = flags.DEFINE_string("workdir", None, "Run folder (default: a new one under runs/).")
_CONFIG = cli.define_config(vae_config.__file__)


def main(argv):
  del argv
  from genjax.core import loop, sharding  # jax and the models load after the flags are checked
  from genjax.data.image_sets import short_name
  from genjax.vae.family import train_vae

  def train(config, workdir):
    sharding.maybe_initialize_distributed()  # joins the run's other processes, if any
    name = f"{config.model}_{short_name(config.dataset)}"
    return train_vae(config, workdir or cli.default_workdir(name))

  summary = cli.run(train, _CONFIG.value, _WORKDIR.value)
  if not sharding.is_primary_process():
    return
  figures = ", ".join(f"{k}={v:.2f}" for k, v in summary["eval"].items()
                      if k in ("neg_elbo", "neg_iwae_bound", "nll", "recon"))
  given = ", of log p(x|y)" if summary["eval"].get("conditional") else ""
  print(f"done: {loop.trained_text(summary)}; test ({summary['eval']['num_examples']} "
        f"examples, nats{given}): {figures}; outputs in {summary['workdir']}")


if __name__ == "__main__":
  cli.main(main)
