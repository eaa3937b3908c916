"""Scores image sets with a judge against the real test set (the judge's features).

The judge is the shipped CNN of MNIST or Fashion-MNIST, or one trained on any labelled
dataset (experiments/train_classifier.py --dataset ... --workdir J): then its run's record
names the data, and the real test set is that data's test split.
"""

import dataclasses
import functools
import math
import time

import jax
import jax.numpy as jnp
import numpy as np
from scipy import ndimage

from genjax.core import sharding
from genjax.core.errors import GenjaxError
from genjax.data import image_sets, images as builtin
from genjax.eval import metrics, spectra
from genjax.judge.cnn import Judge, load_judge, load_judge_run

METRIC_KEYS = ("fid", "score", "kl_to_uniform", "confident", "precision", "recall")
PR_K = 3  # neighbours for improved precision/recall (Kynkäänniemi et al. 2019)


class EvaluationError(GenjaxError):
  """Samples that cannot be scored: wrong shape, range, or an unreadable file."""


@dataclasses.dataclass(frozen=True)
class Reference:
  """The judge and its view of the real test set: features and their Gaussian fit."""

  judge: Judge
  features_NxF: np.ndarray
  labels_N: np.ndarray  # the test set's classes, for per-class FIDs
  stats: tuple
  sq_radii_N: jax.Array  # k-NN radii for precision/recall, k = PR_K
  spec: image_sets.DataSpec  # the data whose test split this is


def missing_judge_text(spec: image_sets.DataSpec, flag: str = "--judge ") -> str:
  """Why nothing scores this data (no shipped judge, none named) and what to do."""
  if not image_sets.open_split(spec, "train").num_classes:
    return (f"evaluation needs a labelled judge, and {spec.dataset} has no classes to train one "
            "on; samples and curves need none")
  size = f" --config.image_size={spec.image_size}" if spec.image_size else ""
  return (f"no shipped judge scores {spec.dataset}; train one with python "
          f"experiments/train_classifier.py --dataset {spec.dataset}{size} --workdir J, then "
          f"give {flag}J")


def shipped(spec: image_sets.DataSpec) -> bool:
  """Whether a shipped judge scores this data (MNIST or Fashion-MNIST at 28 x 28)."""
  return spec.dataset in builtin.DATASETS and spec.image_size in (0, builtin.SIDE)


@functools.lru_cache(maxsize=4)
def reference_of(spec: image_sets.DataSpec, judge: str = "") -> Reference:
  """The judge (the workdir `judge`, else the data's shipped one) and the real test set's
  features: the judge's own data's test split."""
  if judge:
    found = load_judge_run(judge)
    spec = found.spec._replace(data_dir=spec.data_dir or found.spec.data_dir)
  elif shipped(spec):
    found = load_judge(spec.dataset)
  else:
    raise EvaluationError(f"judge: {missing_judge_text(spec)}", field="judge")
  test_images, test_labels = image_sets.load_arrays(spec, "test")
  _, features = found.predict(test_images)
  return Reference(found, features, np.asarray(test_labels),
                   metrics.gaussian_stats(jnp.asarray(features)),
                   metrics.real_sq_radii(features, PR_K), spec)


def reference(dataset, data_dir: str | None = None, judge: str = "") -> Reference:
  """reference_of a dataset name (or a Reference, returned as is)."""
  if isinstance(dataset, Reference):
    return dataset
  spec = image_sets.DataSpec(image_sets.resolve_dataset(dataset, "dataset"), data_dir)
  return reference_of(spec, judge)


def training_reference(config) -> Reference | None:
  """A training run's reference for its evaluations (config.judge, else a shipped judge); None,
  with a line saying so, where nothing can score its data."""
  spec = image_sets.DataSpec.of(config)
  if config.judge or shipped(spec):
    return reference_of(spec, config.judge)
  if sharding.is_primary_process():
    print(f"evaluation off: {missing_judge_text(spec, '--config.judge=')}")
  return None


def check_images(images, source: str, example_shape=(28, 28)) -> np.ndarray:
  """(N, *example_shape) finite floats in [0, 1], else a one-line error naming `source`."""
  images = np.asarray(images)
  shape = ", ".join(map(str, example_shape))
  if images.shape[1:] != tuple(example_shape) or images.shape[0] < 2:
    raise EvaluationError(f"{source}: images must have shape (N>=2, {shape}), got {images.shape}")
  if not np.issubdtype(images.dtype, np.floating):
    raise EvaluationError(f"{source}: images must be floats in [0, 1], got dtype {images.dtype}")
  if not np.isfinite(images).all():
    raise EvaluationError(f"{source}: images contain NaN or inf")
  if images.min() < 0.0 or images.max() > 1.0:
    raise EvaluationError(f"{source}: images must lie in [0, 1], got "
                          f"[{images.min():.3g}, {images.max():.3g}]")
  return images.astype(np.float32)


def load_samples(path, example_shape=(28, 28)) -> np.ndarray:
  """The `images` array of a sample .npz, checked."""
  try:
    with np.load(path) as npz:
      if "images" not in npz:
        raise EvaluationError(f"{path}: no 'images' array (has {', '.join(npz.files) or 'none'})")
      images = npz["images"]
  except (OSError, ValueError, EOFError) as exc:
    raise EvaluationError(f"{path}: not a readable .npz ({' '.join(str(exc).split())[:200]})") \
        from None
  return check_images(images, str(path), example_shape)


def per_class_fid(features_NxF, labels_N, ref: Reference) -> list[float]:
  """FID of each class's images against the test images of that class (nan where < 2)."""
  labels_N = np.asarray(labels_N)
  fids = []
  for k in range(int(ref.labels_N.max()) + 1):
    mine = features_NxF[labels_N == k]
    fids.append(math.nan if len(mine) < 2 else float(metrics.frechet_distance_from_features(
        jnp.asarray(mine), jnp.asarray(ref.features_NxF[ref.labels_N == k]))))
  return fids


def score_images(images, ref: Reference, source: str = "samples", labels_N=None,
                 per_class: bool = False) -> dict:
  """Every metric of the image set against ref's test set, plus the sample count.

  labels_N: the class each image was generated for (conditional models); adds
  label_accuracy, the share the judge classifies as that class, and with per_class the
  list class_fid: each class's FID against its own test images (where the FID comes from).
  """
  images = check_images(images, source, ref.judge.example_shape)
  probs, features = ref.judge.predict(images)
  scores = metrics.all_metrics(ref.features_NxF, ref.stats, features, probs, PR_K,
                               ref.sq_radii_N)
  if labels_N is not None:
    scores["label_accuracy"] = float(np.mean(np.argmax(probs, axis=1) == np.asarray(labels_N)))
    if per_class:
      scores["class_fid"] = per_class_fid(features, labels_N, ref)
  return {**scores, "num_samples": int(images.shape[0])}


def evaluate_images(images_NxHxW, dataset, data_dir: str | None = None,
                    source: str = "samples", labels_N=None, per_class: bool = False) -> dict:
  """score_images against the reference of `dataset` (a name scored by its shipped judge, or
  a Reference)."""
  return score_images(images_NxHxW, reference(dataset, data_dir), source, labels_N, per_class)


def real_subset(dataset, data_dir: str | None, num: int, rng) -> tuple:
  """(num, ...) float32 training images in [0, 1], drawn without replacement, and their labels
  (only those images are decoded); dataset: a name, or a Reference (its data)."""
  spec = dataset.spec if isinstance(dataset, Reference) else image_sets.DataSpec(
      image_sets.resolve_dataset(dataset, "dataset"), data_dir)
  train = image_sets.open_split(spec, "train")
  chosen = rng.choice(len(train), size=min(num, len(train)), replace=False)
  images_, labels = train.take(chosen)
  return images_.astype(np.float32) / 255.0, np.asarray(labels)


def reference_rows(dataset, data_dir: str | None, num: int, seed: int = 0,
                   degraded: bool = False, per_class: bool = False) -> dict:
  """The floor (real train images vs test) and uniform noise, scored like any samples.

  dataset: a name (its shipped judge) or a Reference. degraded: also the same real images
  slightly blurred, noised and binarized, which shows how much of an FID small pixel-level
  differences alone can cost. per_class: the floor row gets label_accuracy and class_fid
  too, from the real images' own labels.
  """
  ref = reference(dataset, data_dir)
  rng = np.random.default_rng(seed)
  subset, subset_labels = real_subset(ref, None, num, rng)
  noise = rng.uniform(0.0, 1.0, size=(num, *ref.judge.example_shape)).astype(np.float32)
  real_labels = subset_labels if per_class else None
  rows = {"real_train": score_images(subset, ref, labels_N=real_labels, per_class=per_class),
          "uniform_noise": score_images(noise, ref)}
  if degraded:
    sigma = (0, 0.5, 0.5) + (0,) * (subset.ndim - 3)  # spatial axes only
    versions = {"real_blur_0.5px": ndimage.gaussian_filter(subset, sigma),
                "real_noise_0.05": subset + rng.normal(0.0, 0.05, subset.shape),
                "real_binarized": (subset > 0.5).astype(np.float32)}
    rows.update({name: score_images(np.clip(x, 0.0, 1.0).astype(np.float32), ref)
                 for name, x in versions.items()})
  return rows


def format_table(rows: dict) -> str:
  """One line per named row of metrics; class shares min-max; label accuracy, per-class FIDs."""
  header = f"{'':<16}" + "".join(f"{k:>14}" for k in (*METRIC_KEYS, "class_share", "num_samples"))
  lines = [header]
  for name, row in rows.items():
    shares = f"{min(row['class_hist']):.3f}-{max(row['class_hist']):.3f}"
    lines.append(f"{name:<16}" + "".join(f"{row[k]:>14.4f}" for k in METRIC_KEYS)
                 + f"{shares:>14}{row['num_samples']:>14d}")
    if "label_accuracy" in row:
      asked = "requested" if name == "samples" else "true"  # the floor: real images' own
      lines.append(f"{'':<16}judge's accuracy on the {asked} labels: "
                   f"{100 * row['label_accuracy']:.2f}%")
    if "class_fid" in row:
      lines.append(f"{'':<16}FID per class: " + ", ".join(
          f"{k}: {fid:.2f}" for k, fid in enumerate(row["class_fid"])))
  return "\n".join(lines)


def report(images_NxHxW, labels_N, ref: Reference, source: dict, seed: int = 0,
           references: bool = True, degraded: bool = False, spectrum: bool = False) -> dict:
  """What evaluate.py prints and writes for an image set: metrics, references, the judge's
  identity and `source` (where the images came from).

  labels_N: the class each image was asked for (conditional models), or None. spectrum: adds
  the radial power spectrum against the real reference subset's (per class when labelled).
  """
  if degraded and not references:
    raise EvaluationError("degraded scores degraded reference images: drop --noreferences",
                          field="degraded")
  t0 = time.perf_counter()
  per_class = labels_N is not None
  name = str(source.get("samples") or source.get("workdir"))
  rows = {"samples": score_images(images_NxHxW, ref, name, labels_N, per_class)}
  eval_s = time.perf_counter() - t0
  if references:
    rows.update(reference_rows(ref, None, len(images_NxHxW), seed, degraded, per_class))
  out = {**source, "dataset": ref.spec.dataset, "num_samples": len(images_NxHxW),
         "judge": ref.judge.identity, "eval_s": round(eval_s, 3), "rows": rows}
  if spectrum:  # the floor row's real subset (same seed), so the two compare like with like
    real, real_labels = real_subset(ref, None, len(images_NxHxW), np.random.default_rng(seed))
    out["spectrum"] = spectra.spectrum_report(images_NxHxW, real, labels_N,
                                              real_labels if per_class else None)
  return out


def parse_seeds(seeds) -> list[int]:
  """At least two different integer seeds."""
  try:
    seeds = [int(s) for s in seeds]
  except (TypeError, ValueError):
    raise EvaluationError(f"seeds must be integers separated by commas, got {seeds!r}",
                          field="seeds") from None
  if len(seeds) < 2 or len(set(seeds)) != len(seeds):
    raise EvaluationError(f"seeds needs at least two different seeds, got {seeds}",
                          field="seeds")
  return seeds


def seed_spread(reports: list[dict], seeds: list[int]) -> dict:
  """Each seed's FID, real-data floor and their ratio, and the means of the three."""
  fids = [r["rows"]["samples"]["fid"] for r in reports]
  floors = [r["rows"]["real_train"]["fid"] for r in reports]
  return {"seeds": list(seeds), "fid": fids, "floor": floors,
          "ratio": [f / floor for f, floor in zip(fids, floors)],
          "mean_fid": float(np.mean(fids)), "std_fid": float(np.std(fids)),
          "mean_floor": float(np.mean(floors)),
          "mean_ratio": float(np.mean(fids) / np.mean(floors))}


def format_seed_spread(spread: dict) -> str:
  listed = lambda xs, fmt: ", ".join(format(x, fmt) for x in xs)  # noqa: E731
  return (f"over seeds {listed(spread['seeds'], 'd')}: FID {listed(spread['fid'], '.2f')} "
          f"(mean {spread['mean_fid']:.2f} ± {spread['std_fid']:.2f}); floor "
          f"{listed(spread['floor'], '.2f')} (mean {spread['mean_floor']:.2f}); FID/floor "
          f"{listed(spread['ratio'], '.1f')}, mean FID / mean floor "
          f"{spread['mean_ratio']:.2f}×")
