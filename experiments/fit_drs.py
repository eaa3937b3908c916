"""Fits discriminator rejection sampling (Azadi et al. 2019) to a GAN run's generator.

  python experiments/fit_drs.py --workdir runs/fashion_avg [--num_steps 3000] \
      [--pool_per_class 6000] [--percentile 90] [--step N] [--seed 0]
  python experiments/evaluate.py --workdir runs/fashion_avg --drs --seeds 0,1,2,3

Trains a fresh CNN to tell the training images from a pool of G's own images (BCE; its logit
estimates the density ratio) and writes it with per-class acceptance thresholds to
WORKDIR/drs/, which sample.py --drs and evaluate.py --drs read. It never overwrites a fit.
What DRS has measured: docs/recipes.md, "Extras".
"""

from absl import flags

from genjax.core import cli
from genjax.gan import drs

_WORKDIR = flags.DEFINE_string("workdir", None, "The GAN run's folder.", required=True)
_STEP = flags.DEFINE_integer("step", None, "The checkpoint whose G to fit (default: newest).")
_NUM_STEPS = flags.DEFINE_integer("num_steps", 3000, "Training steps of the ratio network "
                                  "(longer fits, sharper ratios, scored worse: docs/results.md).")
_POOL = flags.DEFINE_integer("pool_per_class", 6000, "G's images per class in the pool "
                             "(10x this for unconditional runs).")
_PERCENTILE = flags.DEFINE_float("percentile", 90.0, "Each class's acceptance threshold: this "
                                 "percentile of held-out pool logits (100: exact rejection).")
_BATCH = flags.DEFINE_integer("batch_size", 64, "Real and generated images per step, each.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the network's initialization and batches.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Folder with mnist/ and fashion-mnist/ "
                                "(default: the run's config.data_dir, else $GENJAX_DATA_DIR).")


def main(argv):
  del argv
  record = cli.run(
      lambda: drs.fit(_WORKDIR.value, _NUM_STEPS.value, _POOL.value, _PERCENTILE.value,
                      _BATCH.value, _SEED.value, _STEP.value, data_dir=_DATA_DIR.value),
      flag_names={"config.data_dir": "--data_dir"})
  accept = record["expected_acceptance"]
  print(f"fitted DRS to the G of step {record['g_step']} in {record['fit_s']:.0f} s: held-out "
        f"BCE {record['holdout']['bce']:.3f} (chance 0.693), accuracy "
        f"{record['holdout']['accuracy']:.3f}; expected acceptance {min(accept):.2f}-"
        f"{max(accept):.2f}; wrote {drs.drs_dir(_WORKDIR.value)}")


if __name__ == "__main__":
  cli.main(main)
