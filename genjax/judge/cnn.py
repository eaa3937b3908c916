"""The judge's CNN, its batched prediction, and the shipped weights that score samples."""

import functools
import hashlib
import json
from pathlib import Path

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from genjax.core import runs
from genjax.core.errors import GenjaxError
from genjax.data import image_sets, pixels
from genjax.data.images import DATASETS, NUM_CLASSES
from genjax.nn.layers import conv3x3_valid, max_pool2

JUDGE_DIR = Path(__file__).parent / "weights"


class JudgeError(GenjaxError):
  """Shipped judge weights that are missing, corrupt or do not match their metadata."""


class CNN(nn.Module):
  """Images in [0, 1] (B x H x W, or B x H x W x C) -> (logits_BxK, features_BxF):
  [conv3x3-ReLU-pool] x2, dense F."""

  conv_features: tuple = (32, 64)
  feature_dim: int = 128
  conv_dropout: float = 0.25
  dense_dropout: float = 0.5
  num_classes: int = NUM_CLASSES

  @nn.compact
  def __call__(self, images_BxHxW: jnp.ndarray, train: bool):
    h = 2.0 * images_BxHxW - 1.0  # centred input
    h = h[..., None] if h.ndim == 3 else h
    for i, width in enumerate(self.conv_features):
      kernel = self.param(f"conv{i}_kernel", nn.initializers.lecun_normal(),
                          (3, 3, h.shape[-1], width))
      bias = self.param(f"conv{i}_bias", nn.initializers.zeros, (width,))
      h = max_pool2(nn.relu(conv3x3_valid(h, kernel) + bias))
    h = nn.Dropout(self.conv_dropout, deterministic=not train)(h.reshape(h.shape[0], -1))
    features_BxF = nn.relu(nn.Dense(self.feature_dim, name="features")(h))
    h = nn.Dropout(self.dense_dropout, deterministic=not train)(features_BxF)
    return nn.Dense(self.num_classes, name="logits")(h), features_BxF


def build_cnn(config, num_classes: int) -> CNN:
  """The CNN a config (ConfigDict or its to_dict()) describes, with num_classes outputs."""
  return CNN(conv_features=tuple(config["conv_features"]), feature_dim=config["feature_dim"],
             conv_dropout=config["conv_dropout"], dense_dropout=config["dense_dropout"],
             num_classes=num_classes)


@functools.partial(jax.jit, static_argnums=0)
def _forward(model: CNN, params, x_BxHxW):
  logits_Bx10, features_BxF = model.apply({"params": params}, x_BxHxW, train=False)
  return jax.nn.softmax(logits_Bx10), features_BxF


def predict(model: CNN, params, images, batch_size: int = 1000, example_shape=(28, 28)):
  """(probs_NxK, features_NxF) as NumPy; the last batch is padded so one compiled shape serves
  all. example_shape: one image's, (H, W) or (H, W, C)."""
  images = np.asarray(images)
  if images.ndim == 4 and images.shape[-1] == 1:
    images = images[..., 0]
  if images.shape[1:] != tuple(example_shape):
    raise JudgeError(f"judge expects images of shape [N,{','.join(map(str, example_shape))}], "
                     f"got {list(images.shape)}")
  if np.issubdtype(images.dtype, np.integer):
    images = images.astype(np.float32) / 255.0
  elif images.size and (images.min() < -1e-3 or images.max() > 1 + 1e-3):
    raise JudgeError(f"judge expects images in [0, 1], got values in [{images.min():.3g}, "
                     f"{images.max():.3g}] (map tanh outputs with x * 0.5 + 0.5)")
  n = len(images)
  padded = np.zeros((-(-n // batch_size) * batch_size, *example_shape), np.float32)
  padded[:n] = images
  outs = [_forward(model, params, padded[i:i + batch_size]) for i in range(0, n, batch_size)]
  if not outs:
    return (np.zeros((0, model.num_classes), np.float32),
            np.zeros((0, model.feature_dim), np.float32))
  return tuple(np.concatenate([np.asarray(o[k]) for o in outs])[:n] for k in (0, 1))


def accuracy_percent(probs_Nx10: np.ndarray, labels_N) -> float:
  return float(100.0 * np.mean(probs_Nx10.argmax(-1) == np.asarray(labels_N)))


def data_sha256(images: np.ndarray, labels: np.ndarray) -> str:
  """sha256 of the uint8 image bytes followed by the int32 label bytes."""
  return hashlib.sha256(np.ascontiguousarray(images).tobytes()
                        + np.ascontiguousarray(labels, np.int32).tobytes()).hexdigest()


class Judge:
  """A trained CNN with its metadata: scores images as class probabilities and features.

  spec: the data it was trained on (its test split is the real reference); example_shape:
  one image's array shape."""

  def __init__(self, dataset: str, meta: dict, model: CNN, params, example_shape=(28, 28),
               spec: image_sets.DataSpec | None = None, where: dict | None = None):
    self.dataset, self.meta, self.model = dataset, meta, model
    self.example_shape, self.spec = tuple(example_shape), spec
    self.params = jax.device_put(params)  # once, not per predict call
    self.identity = {"dataset": dataset, "weights_sha256": meta["weights_sha256"],
                     "test_accuracy": meta["test_accuracy"], **(where or {})}

  def predict(self, images_NxHxW, batch_size: int = 1000):
    """(probs_NxK, features_NxF) as float32 NumPy; images float in [0, 1] (or uint8)."""
    return predict(self.model, self.params, images_NxHxW, batch_size, self.example_shape)

  def accuracy(self, images_NxHxW, labels_N) -> float:
    """Top-1 accuracy in percent."""
    return accuracy_percent(self.predict(images_NxHxW)[0], labels_N)


def load_judge(dataset: str, judge_dir=None) -> Judge:
  """The judge shipped for `dataset` (or the one in judge_dir), verified and cached."""
  if dataset not in DATASETS:
    raise JudgeError(f"no judge for unknown dataset {dataset!r}; choose one of "
                     f"{', '.join(DATASETS)}")
  return _load_judge_cached(dataset, str(Path(judge_dir or JUDGE_DIR).resolve()))


@functools.lru_cache(maxsize=None)
def _load_judge_cached(dataset: str, judge_dir: str) -> Judge:
  folder = Path(judge_dir)
  weights_path, meta_path = folder / f"{dataset}.msgpack", folder / f"{dataset}.json"
  out = "" if folder == JUDGE_DIR.resolve() else f" --out {folder}"
  fix = f"train it with: python experiments/train_classifier.py --dataset {dataset}{out}"
  for path, what in ((meta_path, "metadata"), (weights_path, "weights")):
    if not path.is_file():
      raise JudgeError(f"{path}: judge {what} not found; {fix}")
  try:
    meta = json.loads(meta_path.read_text())
    expected_sha, config = meta["weights_sha256"], meta["config"]
    model = build_cnn(config, NUM_CLASSES)  # the shipped judges are MNIST's and Fashion's
  except (ValueError, KeyError, TypeError) as exc:
    raise JudgeError(f"{meta_path}: corrupt judge metadata ({type(exc).__name__}: "
                     f"{str(exc).splitlines()[0] if str(exc) else ''}); {fix}") from None
  payload = weights_path.read_bytes()
  actual_sha = hashlib.sha256(payload).hexdigest()
  if actual_sha != expected_sha:
    raise JudgeError(f"{weights_path}: sha256 {actual_sha[:16]} does not match "
                     f"{meta_path.name}'s {str(expected_sha)[:16]}; {fix}")
  try:
    template = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 28, 28)),
                                                 train=False)["params"])
    params = flax.serialization.msgpack_restore(payload)
    shapes = jax.tree.map(lambda p: (np.shape(p), np.asarray(p).dtype), params)
    if shapes != jax.tree.map(lambda t: (t.shape, t.dtype), template):
      raise ValueError("parameter names or shapes differ from the metadata's CNN")
  except (ValueError, TypeError, KeyError) as exc:
    raise JudgeError(f"{weights_path}: corrupt judge weights ({str(exc).splitlines()[0]}); "
                     f"{fix}") from None
  return Judge(dataset, meta, model, params)


META_FILE = "judge.json"  # a trained judge's figures, beside its checkpoints


def load_judge_run(workdir) -> Judge:
  """The judge trained in `workdir` (train_classifier.py --workdir), its newest checkpoint."""
  return _load_judge_run(str(Path(workdir).expanduser().resolve()))


@functools.lru_cache(maxsize=4)
def _load_judge_run(workdir: str) -> Judge:
  try:
    run = runs.restore(workdir, families=("judge",))
  except GenjaxError as exc:
    text = str(exc)
    raise JudgeError(f"judge {text[len('workdir '):] if text.startswith('workdir ') else text}",
                     field="judge") from None
  meta_path = Path(workdir) / META_FILE
  meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {"test_accuracy": None}
  params = jax.device_get(run.state.params)
  meta["weights_sha256"] = hashlib.sha256(flax.serialization.to_bytes(params)).hexdigest()
  spec = image_sets.DataSpec.of(run.config)
  return Judge(run.config.dataset, meta, run.static.model, params,
               pixels.example_shape(run.config.image_shape), spec,
               {"workdir": workdir, "step": run.step})
