"""Draws samples from a run's latest checkpoint (or, for GAN runs, the one at --step).

  python experiments/sample.py --workdir runs/gan --num 10000 --out samples.npz [--seed 0]
  python experiments/sample.py --workdir runs/cgan --label 7 --num 100 --out sevens.npz
  python experiments/sample.py --workdir runs/cgan --step 8000 --num 100 --out early.npz
  python experiments/sample.py --workdir runs/cgan --drs --num 100 --out kept.npz
  python experiments/sample.py --workdir runs/diffusion --nfe 8 --num 100 --out fast.npz

Writes `images`: (N, H, W) float32 in [0, 1] ((N, H, W, C) in colour; MNIST's are (N, 28, 28)):
a GAN's generator in inference mode, or a VAE's decoder means (Bernoulli probabilities) of
prior draws. With --label K (conditional runs) every sample is of class K. With --drs, G's samples as the run's discriminator
rejection sampling fit keeps them (experiments/fit_drs.py).
"""

from absl import flags

from genjax import sampling
from genjax.core import cli

_WORKDIR = flags.DEFINE_string("workdir", None, "Run folder holding checkpoints/.", required=True)
_NUM = flags.DEFINE_integer("num", 10000, "Number of samples.")
_OUT = flags.DEFINE_string("out", None, "Output .npz file.", required=True)
_SEED = flags.DEFINE_integer("seed", 0, "Sampling seed.")
_LABEL = flags.DEFINE_integer("label", None, "Class to sample (conditional runs only).")
_STEP = flags.DEFINE_integer("step", None, "A GAN run's checkpoint to sample (default: newest).")
_DRS = flags.DEFINE_bool("drs", False, "Keep G's samples by the run's discriminator rejection "
                         "sampling fit (experiments/fit_drs.py).")
_SETTINGS = cli.define_sampling_flags()


def sample_and_write():
  images = sampling.sample_images(_WORKDIR.value, _NUM.value, _SEED.value, _LABEL.value,
                                  _STEP.value, _DRS.value, _SETTINGS())
  sampling.write_samples(_OUT.value, images)
  return images


def main(argv):
  del argv
  images = cli.run(sample_and_write)
  print(f"wrote {images.shape[0]} samples {images.shape} to {_OUT.value}")


if __name__ == "__main__":
  cli.main(main)
