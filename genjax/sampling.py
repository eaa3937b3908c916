"""Samples and scores of any run, whatever its family: the thin layer the entry points call.

The run is opened by genjax.core.runs, which picks its family from the checkpoint's record;
each family's own module draws from the restored model. Scoring (genjax.eval) sees only the
image arrays.
"""

from pathlib import Path

import numpy as np

from genjax.core import runs
from genjax.core.errors import WorkdirError, field_error
from genjax.data import image_sets, images as builtin
from genjax.data.pixels import example_shape
from genjax.diffusion import sampling as diffusion_sampling
from genjax.eval import scoring
from genjax.gan import drs, sampling as gan_sampling
from genjax.vae import sampling as vae_sampling

IMAGE_FAMILIES = ("gan", "vae", "diffusion")  # the families whose runs draw images


def open_run(workdir, step: int | None = None) -> runs.Restored:
  """A run that draws images, at `step` (None: its newest readable checkpoint)."""
  return runs.restore(workdir, families=IMAGE_FAMILIES, step=step)


def num_classes_of(config) -> int:
  """The classes a run's data has (a family that does not record them trains on MNIST or
  Fashion-MNIST: 10)."""
  return config.num_classes if "num_classes" in config else builtin.NUM_CLASSES


def check_label(label, run: runs.Restored) -> None:
  """A label needs a conditional run and one of its classes, 0..K-1."""
  if label is None:
    return
  if not run.config.get("conditional", False):
    raise field_error("label", f"{label}: {run.workdir} is not conditional; train with "
                      "--config.conditional=True (e.g. the cgan recipe) to sample by class")
  top = num_classes_of(run.config) - 1
  if not isinstance(label, (int, np.integer)) or isinstance(label, bool) or \
      not 0 <= label <= top:
    raise field_error("label", f"must be a class in 0..{top}, got {label!r}")


def given_settings(run: runs.Restored, settings: dict | None) -> dict:
  """The diffusion sampling settings asked for ({"sampler", "nfe", "guidance"}, None each:
  the run's own); any of them on another family's run is an error naming it."""
  given = {k: v for k, v in (settings or {}).items() if v is not None}
  if given and run.family != "diffusion":
    name = next(iter(given))
    raise field_error(name, f"applies to diffusion runs; {run.workdir} is a {run.family!r} run")
  return given


def sampler(run: runs.Restored, use_drs: bool = False, settings: dict | None = None):
  """fn(num, seed, label) -> images in [0, 1] of a restored run; with use_drs, G's samples as
  the run's DRS fit keeps them. settings: a diffusion run's sampler, nfe and guidance."""
  given = given_settings(run, settings)
  if run.family == "diffusion":
    if use_drs:
      raise field_error("drs", f"keeps a GAN's samples; {run.workdir} is a diffusion run")
    return diffusion_sampling.draws_of(run, **given).draw
  if run.family == "vae":
    if use_drs:
      raise field_error("drs", f"keeps a GAN's samples; {run.workdir} is a VAE run")
    return vae_sampling.draw_of(run)
  draws = gan_sampling.draws_of(run)
  if use_drs:
    return drs.rejecting_draw(run.workdir, draws.chunk, draws.step, draws.num_classes,
                              example_shape(run.config.image_shape))
  return draws.draw


def check_num(num) -> None:
  if not isinstance(num, int) or isinstance(num, bool) or num <= 0:
    raise field_error("num", f"must be a positive integer, got {num!r}")


def sample_images(workdir, num: int, seed: int = 0, label: int | None = None,
                  step: int | None = None, use_drs: bool = False,
                  settings: dict | None = None) -> np.ndarray:
  """(num, H, W) (or (num, H, W, C) in colour) float32 in [0, 1]: G in inference mode, or a
  VAE's decoder means.

  label K: every sample of class K (conditional runs); None: a conditional GAN cycles through
  the classes (balanced), a conditional VAE draws them uniformly. step: that checkpoint of the
  run (None: the newest). use_drs: keep G's samples by the run's DRS fit. settings: a
  diffusion run's {"sampler", "nfe", "guidance"} (None: those of its config).
  """
  check_num(num)
  run = open_run(workdir, step)
  check_label(label, run)
  return sampler(run, use_drs, settings)(num, seed, label)


def sample_by_class(run: runs.Restored, num: int, seed: int = 0, use_drs: bool = False,
                    settings: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
  """(images, labels): about num / K samples asked for each of a conditional run's K classes."""
  check_label(0, run)
  draw, k_classes = sampler(run, use_drs, settings), num_classes_of(run.config)
  per_class = [num // k_classes + (k < num % k_classes) for k in range(k_classes)]
  images = [draw(n, gan_sampling.class_seed(seed, k, k_classes), k)
            for k, n in enumerate(per_class) if n]
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


def reference_for(run, dataset: str | None, data_dir: str | None, judge: str | None):
  """The judge and real test set that score a run's samples (run None: a sample file's): the
  judge named, else the run's config.judge, else the shipped judge of the data (`dataset`, else
  the run's, else MNIST). A judge's own record names its data."""
  config = run.config if run is not None else {}
  if "image_size" in config:  # the image families' runs record their data
    spec = image_sets.DataSpec.of(config)
  else:
    spec = image_sets.DataSpec(config.get("dataset") or "mnist")
  if dataset:
    spec = spec._replace(dataset=image_sets.resolve_dataset(dataset, "dataset"))
  spec = spec._replace(data_dir=data_dir or spec.data_dir)
  return scoring.reference_of(spec, judge or config.get("judge", ""))


def evaluate(samples=None, workdir=None, num: int = 10000, seed: int = 0,
             dataset: str | None = None, data_dir: str | None = None, references: bool = True,
             degraded: bool = False, spectrum: bool = False, step: int | None = None,
             use_drs: bool = False, judge: str | None = None,
             settings: dict | None = None) -> dict:
  """The judge's report on a sample file or on samples drawn from a run (genjax.eval.scoring).

  A conditional run is sampled num / K per class and scored for label accuracy too. judge: a
  judge's workdir (default: the run's config.judge, else the data's shipped judge). settings:
  a diffusion run's {"sampler", "nfe", "guidance"} (None: those of its config).
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
  if workdir is None and any(v is not None for v in (settings or {}).values()):
    name = next(k for k, v in settings.items() if v is not None)
    raise field_error(name, "draws --workdir's diffusion samples; --samples are already drawn",
                      scoring.EvaluationError)
  labels, run = None, None
  if workdir is not None:
    run = open_run(workdir, step)
  ref = reference_for(run, dataset, data_dir, judge)
  if run is not None:
    if run.config.get("conditional", False):
      images, labels = sample_by_class(run, num, seed, use_drs, settings)
    else:
      images = sampler(run, use_drs, settings)(num, seed, None)
    source = {"workdir": str(workdir), "seed": seed, "step": run.step}
    if run.family == "diffusion":  # how the samples were drawn
      source["sampling"] = diffusion_sampling.settings_of(
          run.config, **given_settings(run, settings))._asdict()
    if use_drs:
      source["drs"] = drs.read_record(workdir)
  else:
    images = scoring.load_samples(samples, ref.judge.example_shape)
    source = {"samples": str(samples)}
  return scoring.report(images, labels, ref, source, seed, references, degraded, spectrum)


def evaluate_seeds(seeds, samples=None, workdir=None, num: int = 10000,
                   dataset: str | None = None, data_dir: str | None = None,
                   degraded: bool = False, step: int | None = None,
                   use_drs: bool = False, judge: str | None = None,
                   settings: dict | None = None) -> dict:
  """`evaluate` at each seed, and their spread: {"seed_spread": ..., "reports": [...]}.

  The floor's reference subset moves with the seed as much as the samples do, so a target
  stated as a multiple of the floor is read off the means, not off one lucky seed.
  """
  seeds = scoring.parse_seeds(seeds)
  reports = [evaluate(samples, workdir, num, seed, dataset, data_dir, degraded=degraded,
                      step=step, use_drs=use_drs, judge=judge, settings=settings)
             for seed in seeds]
  return {"seed_spread": scoring.seed_spread(reports, seeds), "reports": reports}
