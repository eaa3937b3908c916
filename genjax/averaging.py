"""Weights averaged over a run's checkpoints, written as a new run: the thin layer
experiments/average_checkpoints.py calls, picking the family's own averaging from the run's
record (a GAN's generator with standing BatchNorm statistics, a diffusion U-Net's weights)."""

from genjax.core import runs
from genjax.diffusion import averaging as diffusion_averaging
from genjax.gan import averaging as gan_averaging

FAMILIES = ("gan", "diffusion")  # the families whose runs average


def average_checkpoints(workdir, steps, out, standing_batches: int = 200, seed: int = 0) -> dict:
  """Writes to `out` a run sampling from the mean of the run's sampling weights at `steps`;
  standing_batches and seed are the GAN's (its BatchNorm statistics). Returns what was done,
  with the run's family."""
  family = runs.restore(workdir, families=FAMILIES).family
  if family == "diffusion":
    record = diffusion_averaging.average_checkpoints(workdir, steps, out)
  else:
    record = gan_averaging.average_checkpoints(workdir, steps, out, standing_batches, seed)
  return {"family": family, **record}
