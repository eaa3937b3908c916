"""Averages a GAN's G, or a diffusion run's U-Net, over the run's checkpoints into a new
workdir that sample.py and evaluate.py read.

  python experiments/average_checkpoints.py --workdir runs/fashion --steps 88000,92000,96000 \
      --out runs/fashion_avg [--standing_batches 200] [--seed 0]
  python experiments/evaluate.py --workdir runs/fashion_avg --num 10000

Sampling weights (the EMA when the run keeps one) are averaged leaf by leaf; BatchNorm
statistics are re-estimated over --standing_batches training-mode batches (0: averaged too;
GAN runs only: a diffusion U-Net has none).
--out must be new or empty. What averaging has measured: docs/recipes.md, "Extras".
"""

from absl import flags

from genjax.core import cli
from genjax.core.errors import field_error
from genjax import averaging

_WORKDIR = flags.DEFINE_string("workdir", None, "The GAN or diffusion run's folder.",
                                required=True)
_STEPS = flags.DEFINE_list("steps", None, "Checkpoint steps to average.", required=True)
_OUT = flags.DEFINE_string("out", None, "A new folder for the averaged run.", required=True)
_STANDING = flags.DEFINE_integer("standing_batches", 200,
                                 "Batches for re-estimated BatchNorm statistics (0: average).")
_SEED = flags.DEFINE_integer("seed", 0, "Noise seed of the standing statistics.")


def parse_steps(values) -> list[int]:
  try:
    return [int(v) for v in values]
  except ValueError:
    raise field_error("steps", f"must be integers, got {','.join(values)}") from None


def main(argv):
  del argv
  record = cli.run(
      lambda: averaging.average_checkpoints(_WORKDIR.value, parse_steps(_STEPS.value), _OUT.value,
                                            _STANDING.value, _SEED.value))
  done = f"averaged steps {record['steps']} of {record['workdir']} into {_OUT.value}"
  if record["family"] == "gan":
    done += f" (standing BatchNorm statistics over {record['standing_batches']} batches)"
  print(done)


if __name__ == "__main__":
  cli.main(main)
