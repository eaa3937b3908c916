"""Samples and scores of any run, whatever its family: the thin layer the entry points call.

The family is read from the run's config.json; each family's own module restores its model
from the checkpoint's record. Scoring (genjax.eval) sees only the image arrays.
"""

import json
from pathlib import Path

import ml_collections
import numpy as np

from genjax.core.errors import CheckpointError, ConfigError, WorkdirError, field_error
from genjax.data.images import NUM_CLASSES
from genjax.eval import scoring
from genjax.gan import drs, sampling as gan_sampling
from genjax.vae import sampling as vae_sampling

VAE_MODELS = ("vae", "iwae", "ae")  # runs of experiments/vae_mnist.py (an ae cannot sample)


def load_run_config(workdir) -> ml_collections.ConfigDict:
  path = Path(workdir) / "config.json"
  if not Path(workdir).is_dir():
    raise WorkdirError(f"workdir {workdir} does not exist", field="workdir")
  try:
    return ml_collections.ConfigDict(json.loads(path.read_text()))
  except (OSError, json.JSONDecodeError) as exc:
    raise CheckpointError(f"cannot read the run config {path}: {exc}") from None


def family_of(run_config, workdir) -> str:
  """"gan" or "vae": the families that sample images."""
  model = run_config.get("model", "")
  if model in VAE_MODELS:
    return "vae"
  if model == "gan":
    return "gan"
  raise ConfigError(f"{workdir} holds a {model!r} run; samples come from GAN and VAE runs")


def check_label(label, run_config, workdir) -> None:
  """A label needs a conditional run and a class in 0..9."""
  if label is None:
    return
  if not run_config.get("conditional", False):
    raise field_error("label", f"{label}: {workdir} is not conditional; train with "
                      "--config.conditional=True (e.g. the cgan recipe) to sample by class")
  if not isinstance(label, (int, np.integer)) or isinstance(label, bool) or \
      not 0 <= label < NUM_CLASSES:
    raise field_error("label", f"must be a class in 0..{NUM_CLASSES - 1}, got {label!r}")


def sampler(workdir, run_config, step: int | None = None, use_drs: bool = False):
  """fn(num, seed, label) -> images in [0, 1] of the checkpoint at step (None: the newest),
  restored once; with use_drs, G's samples as the run's DRS fit keeps them."""
  if family_of(run_config, workdir) == "vae":
    if step is not None:
      raise field_error("step", f"{step}: {workdir} is a VAE run, which samples its newest "
                        "checkpoint only")
    if use_drs:
      raise field_error("drs", f"keeps a GAN's samples; {workdir} is a VAE run")
    return lambda num, seed, label: vae_sampling.sample_images(workdir, num, seed, label)
  draws = gan_sampling.gan_draws(workdir, step)
  if use_drs:
    return drs.rejecting_draw(workdir, draws.chunk, draws.step, draws.num_classes)
  return draws.draw


def check_num(num) -> None:
  if not isinstance(num, int) or isinstance(num, bool) or num <= 0:
    raise field_error("num", f"must be a positive integer, got {num!r}")


def sample_images(workdir, num: int, seed: int = 0, label: int | None = None,
                  step: int | None = None, use_drs: bool = False) -> np.ndarray:
  """(num, 28, 28) float32 in [0, 1]: G in inference mode, or a VAE's decoder means.

  label K: every sample of class K (conditional runs); None: a conditional GAN cycles through
  the classes (balanced), a conditional VAE draws them uniformly. step: that checkpoint of a
  GAN run (None: the newest). use_drs: keep G's samples by the run's DRS fit.
  """
  check_num(num)
  run_config = load_run_config(workdir)
  check_label(label, run_config, workdir)
  return sampler(workdir, run_config, step, use_drs)(num, seed, label)


def sample_by_class(workdir, num: int, seed: int = 0, step: int | None = None,
                    use_drs: bool = False) -> tuple[np.ndarray, np.ndarray]:
  """(images, labels): about num / 10 samples asked for each class of a conditional run."""
  run_config = load_run_config(workdir)
  check_label(0, run_config, workdir)
  draw = sampler(workdir, run_config, step, use_drs)
  per_class = [num // NUM_CLASSES + (k < num % NUM_CLASSES) for k in range(NUM_CLASSES)]
  images = [draw(n, gan_sampling.class_seed(seed, k), k) for k, n in enumerate(per_class) if n]
  labels = np.concatenate([np.full(n, k) for k, n in enumerate(per_class) if n])
  return np.concatenate(images), labels


def write_samples(path, images: np.ndarray) -> None:
  """Writes `images` to an .npz; the parent folder must exist or be creatable."""
  path = Path(path)
  try:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
      np.savez_compressed(f, images=images)
  except OSError as exc:
    raise WorkdirError(f"cannot write samples to {path}: {exc.strerror or exc}",
                       field="out") from None


def evaluate(samples=None, workdir=None, num: int = 10000, seed: int = 0,
             dataset: str | None = None, data_dir: str | None = None, references: bool = True,
             degraded: bool = False, spectrum: bool = False, step: int | None = None,
             use_drs: bool = False) -> dict:
  """The judge's report on a sample file or on samples drawn from a run (genjax.eval.scoring).

  A conditional run is sampled num / 10 per class and scored for label accuracy too.
  """
  if (samples is None) == (workdir is None):
    raise scoring.EvaluationError("give exactly one of --samples FILE.npz or --workdir DIR")
  if not isinstance(num, int) or num < 2:
    raise field_error("num", f"must be an integer >= 2, got {num!r}", scoring.EvaluationError)
  if step is not None and workdir is None:
    raise field_error("step", "picks a checkpoint of --workdir; --samples are already drawn",
                      scoring.EvaluationError)
  if use_drs and workdir is None:
    raise field_error("drs", "keeps samples of --workdir's G; --samples are already drawn",
                      scoring.EvaluationError)
  if degraded and not references:
    raise field_error("degraded", "scores degraded reference images: drop --noreferences",
                      scoring.EvaluationError)
  labels = None
  if workdir is not None:
    run_config = load_run_config(workdir)
    dataset = dataset or run_config.get("dataset", "mnist")
    data_dir = data_dir or run_config.get("data_dir") or None
    if run_config.get("conditional", False):
      images, labels = sample_by_class(workdir, num, seed, step, use_drs)
    else:
      images = sample_images(workdir, num, seed, step=step, use_drs=use_drs)
    source = {"workdir": str(workdir), "seed": seed, "step": step}
    if use_drs:
      source["drs"] = drs.read_record(workdir)
  else:
    images, source = scoring.load_samples(samples), {"samples": str(samples)}
  return scoring.report(images, labels, dataset or "mnist", data_dir, source, seed, references,
                        degraded, spectrum)


def evaluate_seeds(seeds, samples=None, workdir=None, num: int = 10000,
                   dataset: str | None = None, data_dir: str | None = None,
                   degraded: bool = False, step: int | None = None,
                   use_drs: bool = False) -> dict:
  """`evaluate` at each seed, and their spread: {"seed_spread": ..., "reports": [...]}.

  The floor's reference subset moves with the seed as much as the samples do, so a target
  stated as a multiple of the floor is read off the means, not off one lucky seed.
  """
  seeds = scoring.parse_seeds(seeds)
  reports = [evaluate(samples, workdir, num, seed, dataset, data_dir, degraded=degraded,
                      step=step, use_drs=use_drs) for seed in seeds]
  return {"seed_spread": scoring.seed_spread(reports, seeds), "reports": reports}
