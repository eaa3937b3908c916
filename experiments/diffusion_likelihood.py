"""Bits per dimension of MNIST test images under a flow run, through its probability-flow ODE.

  python experiments/diffusion_likelihood.py --workdir runs/flow --num 100
  python experiments/diffusion_likelihood.py --workdir runs/flow --num 4 --exact --steps 8

The first --num test images, uniformly dequantized, with Hutchinson's trace estimator (one
Rademacher probe per image) along --steps RK4 steps; the figure is the mean over images with
its standard error. --exact also computes the exact trace on the same paths (one Jacobian-vector
product per pixel: a handful of images) and the two estimates' difference. A conditional run
is scored by its null label (the unconditional model p(x)), or with --given_label by the true
labels (log p(x|y)). Writes likelihood.json (likelihood_exact.json) into the workdir, or --json.
For scale, MNIST bits/dim of other flows: FFJORD 0.99, Glow 1.05, RealNVP 1.06.
"""

import json
from pathlib import Path

from absl import flags

from genjax.core import cli

_WORKDIR = flags.DEFINE_string("workdir", None, "A flow run's folder.", required=True)
_NUM = flags.DEFINE_integer("num", 100, "Test images (the first ones of the test set).")
_STEPS = flags.DEFINE_integer("steps", 32, "RK4 steps of the ODE (4 evaluations each).")
_EXACT = flags.DEFINE_bool("exact", False, "Also the exact trace, to check the estimator.")
_GIVEN_LABEL = flags.DEFINE_bool("given_label", False, "log p(x|y) of a conditional run.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the dequantization noise and the probes.")
_BATCH = flags.DEFINE_integer("batch", 50, "Images per ODE solve.")
_STEP = flags.DEFINE_integer("step", None, "A kept checkpoint (default: the newest).")
_JSON = flags.DEFINE_string("json", None, "Where to write the JSON report.")

REFERENCES = "FFJORD 0.99, Glow 1.05, RealNVP 1.06"


def summary(result: dict) -> str:
  se = result["standard_error"]
  line = (f"bits/dim {result['bits_per_dim']:.4f}" + (f" ± {se:.4f} (standard error)" if se
                                                      else "")
          + f" over {result['num']} test images, step {result['step']}, {result['steps']} RK4 "
          f"steps, {'log p(x|y)' if result['given_label'] else 'log p(x)'}, "
          f"{result['seconds']:.0f} s; other flows on MNIST: {REFERENCES}")
  if "exact" in result:
    exact = result["exact"]
    line += (f"\nexact trace: bits/dim {exact['bits_per_dim']:.4f}; Hutchinson minus exact "
             f"{exact['mean_difference']:+.4f}" + (f" ± {exact['difference_se']:.4f}"
                                                   if exact["difference_se"] else ""))
  return line


def main(argv):
  del argv
  from genjax.diffusion import likelihood  # jax loads after the flags are checked

  def evaluate_and_write():
    result = likelihood.evaluate_bits_per_dim(_WORKDIR.value, _NUM.value, _STEPS.value,
                                              _EXACT.value, _GIVEN_LABEL.value, _SEED.value,
                                              _BATCH.value, _STEP.value)
    name = "likelihood_exact.json" if _EXACT.value else "likelihood.json"
    out = Path(_JSON.value or Path(_WORKDIR.value) / name)
    cli.write_output(str(out), json.dumps(result, indent=2), flag="json")
    return result, out

  result, out = cli.run(evaluate_and_write)
  print(summary(result))
  print(f"wrote {out}")


if __name__ == "__main__":
  cli.main(main)
