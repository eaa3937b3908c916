"""Scores generated images with a judge (shipped, or --judge): its FID, score, class shares,
precision, recall.

  python experiments/evaluate.py --samples samples.npz [--dataset mnist]
  python experiments/evaluate.py --workdir runs/gan [--num 10000] [--seed 0] [--degraded]
                                [--spectrum] [--step 28000] [--drs]
  python experiments/evaluate.py --workdir runs/gan --seeds 0,1,2   (the spread over seeds)
  python experiments/evaluate.py --workdir runs/diffusion --nfe 16 --sampler euler --guidance 2
  python experiments/evaluate.py --workdir runs/faces --judge runs/judge_faces   (own data)

Prints a table (the samples, the real-data floor, uniform noise; columns: the judge's FID,
score, KL of the class histogram to uniform, share of confident samples, precision, recall, the
range of class shares) and writes it as JSON next to the samples (FILE.eval.json) or into the
workdir (eval.json, with the step it sampled), or to --json; with --spectrum also the
power-spectrum plot beside it (the JSON's name with .spectrum.png for .json). With --seeds,
every seed's table, then each seed's FID, floor and FID/floor ratio and their means.
"""

import json
from pathlib import Path

from absl import flags

from genjax import sampling
from genjax.core import cli
from genjax.eval import scoring, spectra

_SAMPLES = flags.DEFINE_string("samples", None, "An .npz with images (N, H, W) or (N, H, W, C) "
                               "in [0, 1].")
_WORKDIR = flags.DEFINE_string("workdir", None, "A run folder: sample its latest checkpoint.")
_NUM = flags.DEFINE_integer("num", 10000, "Samples to draw with --workdir.")
_SEED = flags.DEFINE_integer("seed", 0, "Sampling seed (and the reference subset's).")
_STEP = flags.DEFINE_integer("step", None, "With --workdir (GAN runs): score this checkpoint, "
                             "not the newest.")
_DRS = flags.DEFINE_bool("drs", False, "With --workdir (GAN runs): keep G's samples by the run's "
                         "discriminator rejection sampling fit (experiments/fit_drs.py).")
_SEEDS = flags.DEFINE_list("seeds", None, "Several seeds instead of --seed: their spread.")
_DATASET = flags.DEFINE_string("dataset", None, "mnist or fashion_mnist (default: the run's); "
                               "with --judge, the judge's data.")
_JUDGE = flags.DEFINE_string("judge", None, "A judge's workdir (train_classifier.py --workdir): "
                             "scores samples of its data (default: the run's config.judge, "
                             "else the shipped judge).")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Folder with mnist/ and fashion-mnist/ "
                                "(default: the run's config.data_dir, else $GENJAX_DATA_DIR).")
_JSON = flags.DEFINE_string("json", None, "Where to write the JSON report.")
_REFERENCES = flags.DEFINE_bool("references", True, "Also score real train images and noise.")
_DEGRADED = flags.DEFINE_bool("degraded", False, "Also score the real images blurred (0.5 px), "
                              "noised (sigma 0.05) and binarized: the judge's sensitivity.")
_SPECTRUM = flags.DEFINE_bool("spectrum", False, "Also compare radial power spectra with real "
                              "images (per class for conditional runs) and plot them.")
diffusion_settings = cli.define_sampling_flags("With --workdir, diffusion runs")


# The library names the run's data folder config.data_dir; here it is a flag of its own.
FLAG_NAMES = {"config.data_dir": "--data_dir"}


def output_path(workdir_name: str, samples_suffix: str) -> Path:
  """--json, else workdir_name in the workdir, else beside the samples with samples_suffix."""
  if _JSON.value:
    return Path(_JSON.value)
  if _WORKDIR.value:
    return Path(_WORKDIR.value) / workdir_name
  return Path(_SAMPLES.value).with_suffix(samples_suffix)


def write_json(out: Path, obj) -> None:
  try:
    out.write_text(json.dumps(obj, indent=2))
  except OSError as exc:
    raise scoring.EvaluationError(f"cannot write {out}: {exc.strerror or exc}") from None


def print_drs(report) -> None:
  """With --drs: which fit kept the samples, and the share it keeps."""
  if "drs" in report:
    fit = report["drs"]
    print(f"samples kept by DRS ({fit['num_steps']}-step fit to the G of step {fit['g_step']}; "
          f"it keeps {min(fit['expected_acceptance']):.0%}-{max(fit['expected_acceptance']):.0%})")


def main(argv):
  del argv
  if _SEEDS.value:
    return main_seeds()

  def evaluate_and_write():
    report = sampling.evaluate(_SAMPLES.value, _WORKDIR.value, _NUM.value, _SEED.value,
                               _DATASET.value, _DATA_DIR.value, references=_REFERENCES.value,
                               degraded=_DEGRADED.value, spectrum=_SPECTRUM.value,
                               step=_STEP.value, use_drs=_DRS.value, judge=_JUDGE.value,
                               settings=diffusion_settings())
    out = output_path("eval.json", ".eval.json")
    write_json(out, report)
    if "spectrum" in report:
      spectra.save_spectrum_plot(report["spectrum"], out.with_name(out.stem + ".spectrum.png"))
    return report, out

  report, out = cli.run(evaluate_and_write, flag_names=FLAG_NAMES)
  judge = report["judge"]
  print(f"judge: {judge.get('workdir', judge['dataset'] + ' CNN')}, test accuracy "
        f"{judge['test_accuracy']}%, weights {judge['weights_sha256'][:12]}")
  print(scoring.format_table(report["rows"]))
  print_drs(report)
  if "spectrum" in report:
    print(spectra.format_summary(report["spectrum"]))
  print(f"scored {report['num_samples']} samples in {report['eval_s']:.1f} s; wrote {out}")


def main_seeds():
  """--seeds: each seed's table, then the spread line; JSON {"seed_spread", "reports"}."""

  def evaluate_and_write():
    if not _REFERENCES.value or _SPECTRUM.value:
      raise scoring.EvaluationError("--seeds compares every seed with its own real-data "
                                    "floor: drop --noreferences and --spectrum")
    result = sampling.evaluate_seeds(_SEEDS.value, _SAMPLES.value, _WORKDIR.value, _NUM.value,
                                     _DATASET.value, _DATA_DIR.value, degraded=_DEGRADED.value,
                                     step=_STEP.value, use_drs=_DRS.value, judge=_JUDGE.value,
                                     settings=diffusion_settings())
    out = output_path("eval_seeds.json", ".eval_seeds.json")
    write_json(out, result)
    return result, out

  result, out = cli.run(evaluate_and_write, flag_names=FLAG_NAMES)
  for seed, report in zip(result["seed_spread"]["seeds"], result["reports"]):
    print(f"seed {seed}:\n{scoring.format_table(report['rows'])}")
  print_drs(result["reports"][0])
  print(scoring.format_seed_spread(result["seed_spread"]))
  print(f"wrote {out}")


if __name__ == "__main__":
  cli.main(main)
