"""The judge's FID of a diffusion run's samples against the function evaluations they cost.

  python experiments/diffusion_nfe.py --workdir runs/diffusion --nfe 4,8,16,32,64,128 --num 2000
  python experiments/diffusion_nfe.py --workdir runs/ddpm --samplers ddim --guidance 2

Every sampler of the run's objective (or --samplers) at every NFE (Heun's only at even ones),
from the same noise; prints the table (FID, FID over the real-data floor at the same count,
score, recall, samples per second) and writes nfe_fid.json and nfe_fid.png into the workdir.
"""

from absl import flags

from genjax.core import cli

_WORKDIR = flags.DEFINE_string("workdir", None, "A diffusion run's folder.", required=True)
_NFE = flags.DEFINE_list("nfe", ["4", "8", "16", "32", "64", "128"], "Function evaluations.")
_SAMPLERS = flags.DEFINE_list("samplers", None, "Samplers (default: the objective's).")
_NUM = flags.DEFINE_integer("num", 2000, "Samples per point (class-balanced if conditional).")
_SEED = flags.DEFINE_integer("seed", 0, "Noise seed (and the floor's real subset's).")
_GUIDANCE = flags.DEFINE_float("guidance", None, "Guidance scale (default: the run's).")
_STEP = flags.DEFINE_integer("step", None, "A kept checkpoint (default: the newest).")


def main(argv):
  del argv
  from genjax.diffusion import nfe  # jax loads after the flags are checked

  result = cli.run(nfe.fid_by_nfe, _WORKDIR.value, _NFE.value, _SAMPLERS.value, _NUM.value,
                   _SEED.value, _GUIDANCE.value, _STEP.value, flag_names={"sampler": "--samplers"})
  print(f"step {result['step']}, {result['num']} samples, guidance {result['guidance']:g}, "
        f"real-data floor {result['floor']:.2f}")
  print(nfe.format_table(result))
  print(f"wrote {result['workdir']}/nfe_fid.json and nfe_fid.png")


if __name__ == "__main__":
  cli.main(main)
