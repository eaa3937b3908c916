"""Samples and scores of any run, whatever its family: the thin layer the entry points call.

The run is opened by genjax.core.runs, which picks its family from the checkpoint's record;
each family's own module draws from the restored model. Scoring (genjax.eval) sees only the
image arrays.
"""

from pathlib import Path

import numpy as np

from genjax.core import runs
from genjax.core.errors import WorkdirError, field_error
from genjax.data.images import NUM_CLASSES
from genjax.eval import scoring
from genjax.gan import drs, sampling as gan_sampling
from genjax.vae import sampling as vae_sampling

IMAGE_FAMILIES = ("gan", "vae")  # the families whose runs draw images


def open_run(workdir, step: int | None = None) -> runs.Restored:
  """A run that draws images, at `step` (None: its newest readable checkpoint)."""
  return runs.restore(workdir, families=IMAGE_FAMILIES, step=step)


def check_label(label, run: runs.Restored) -> None:
  """A label needs a conditional run and a class in 0..9."""
  if label is None:
    return
  if not run.config.get("conditional", False):
    raise field_error("label", f"{label}: {run.workdir} is not conditional; train with "
                      "--config.conditional=True (e.g. the cgan recipe) to sample by class")
  if not isinstance(label, (int, np.integer)) or isinstance(label, bool) or \
      not 0 <= label < NUM_CLASSES:
    raise field_error("label", f"must be a class in 0..{NUM_CLASSES - 1}, got {label!r}")


def sampler(run: runs.Restored, use_drs: bool = False):
  """fn(num, seed, label) -> images in [0, 1] of a restored run; with use_drs, G's samples as
  the run's DRS fit keeps them."""
  if run.family == "vae":
    if use_drs:
      raise field_error("drs", f"keeps a GAN's samples; {run.workdir} is a VAE run")
    return vae_sampling.draw_of(run)
  draws = gan_sampling.draws_of(run)
  if use_drs:
    return drs.rejecting_draw(run.workdir, draws.chunk, draws.step, draws.num_classes)
  return draws.draw


def check_num(num) -> None:
  if not isinstance(num, int) or isinstance(num, bool) or num <= 0:
    raise field_error("num", f"must be a positive integer, got {num!r}")


def sample_images(workdir, num: int, seed: int = 0, label: int | None = None,
                  step: int | None = None, use_drs: bool = False) -> np.ndarray:
  """(num, 28, 28) float32 in [0, 1]: G in inference mode, or a VAE's decoder means.

  label K: every sample of class K (conditional runs); None: a conditional GAN cycles through
  the classes (balanced), a conditional VAE draws them uniformly. step: that checkpoint of the
  run (None: the newest). use_drs: keep G's samples by the run's DRS fit.
  """
  check_num(num)
  run = open_run(workdir, step)
  check_label(label, run)
  return sampler(run, use_drs)(num, seed, label)


def sample_by_class(run: runs.Restored, num: int, seed: int = 0,
                    use_drs: bool = False) -> tuple[np.ndarray, np.ndarray]:
  """(images, labels): about num / 10 samples asked for each class of a conditional run."""
  check_label(0, run)
  draw = sampler(run, use_drs)
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
    run = open_run(workdir, step)
    dataset = dataset or run.config.get("dataset", "mnist")
    data_dir = data_dir or run.config.get("data_dir") or None
    if run.config.get("conditional", False):
      images, labels = sample_by_class(run, num, seed, use_drs)
    else:
      images = sampler(run, use_drs)(num, seed, None)
    source = {"workdir": str(workdir), "seed": seed, "step": run.step}
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
