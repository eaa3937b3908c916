"""The judge: a compact CNN classifier, its training, and the shipped weights that score samples."""

import dataclasses
import datetime
import functools
import hashlib
import json
import os
import time
from pathlib import Path

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import tqdm

from genjax import data
from genjax.errors import ConfigError, GenjaxError, WorkdirError

JUDGE_DIR = Path(__file__).parent / "judges"
NUM_CLASSES = 10


class JudgeError(GenjaxError):
  """Shipped judge weights that are missing, corrupt or do not match their metadata."""


def conv3x3(x_BxHxWxC: jnp.ndarray, kernel_3x3xCxF: jnp.ndarray) -> jnp.ndarray:
  """A VALID 3x3 convolution as one matmul over patches.

  XLA:CPU's convolution gradients run ~10x slower than a matmul; the patch order (row, column,
  channel) matches kernel.reshape(9C, F), so the weights are those of nn.Conv(padding="VALID").
  """
  _, h, w, c = x_BxHxWxC.shape
  patches = [x_BxHxWxC[:, i:i + h - 2, j:j + w - 2, :] for i in range(3) for j in range(3)]
  return jnp.concatenate(patches, axis=-1) @ kernel_3x3xCxF.reshape(9 * c, -1)


def max_pool2(x_BxHxWxC: jnp.ndarray) -> jnp.ndarray:
  """2x2 max-pool (odd edges dropped) as a reshape-max: its gradient avoids slow select-and-scatter."""
  b, h, w, c = x_BxHxWxC.shape
  x = x_BxHxWxC[:, :h // 2 * 2, :w // 2 * 2]
  return x.reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


class CNN(nn.Module):
  """Images_BxHxW in [0, 1] -> (logits_Bx10, features_BxF): [conv3x3-ReLU-pool] x2, dense F."""

  conv_features: tuple = (32, 64)
  feature_dim: int = 128
  conv_dropout: float = 0.25
  dense_dropout: float = 0.5

  @nn.compact
  def __call__(self, images_BxHxW: jnp.ndarray, train: bool):
    h = (2.0 * images_BxHxW - 1.0)[..., None]  # centred input
    for i, width in enumerate(self.conv_features):
      kernel = self.param(f"conv{i}_kernel", nn.initializers.lecun_normal(),
                          (3, 3, h.shape[-1], width))
      bias = self.param(f"conv{i}_bias", nn.initializers.zeros, (width,))
      h = max_pool2(nn.relu(conv3x3(h, kernel) + bias))
    h = nn.Dropout(self.conv_dropout, deterministic=not train)(h.reshape(h.shape[0], -1))
    features_BxF = nn.relu(nn.Dense(self.feature_dim, name="features")(h))
    h = nn.Dropout(self.dense_dropout, deterministic=not train)(features_BxF)
    return nn.Dense(NUM_CLASSES, name="logits")(h), features_BxF


def build_cnn(config) -> CNN:
  """The CNN a config (ConfigDict or its to_dict()) describes."""
  return CNN(conv_features=tuple(config["conv_features"]), feature_dim=config["feature_dim"],
             conv_dropout=config["conv_dropout"], dense_dropout=config["dense_dropout"])


def random_shift(x_BxHxW: jnp.ndarray, key: jax.Array, max_shift: int) -> jnp.ndarray:
  """Translates each image by up to max_shift pixels each way, filling with background."""
  b, h, w = x_BxHxW.shape
  s = max_shift
  padded = jnp.pad(x_BxHxW, ((0, 0), (s, s), (s, s)))
  offsets_Bx2 = jax.random.randint(key, (b, 2), 0, 2 * s + 1)
  return jax.vmap(lambda im, o: jax.lax.dynamic_slice(im, (o[0], o[1]), (h, w)))(padded, offsets_Bx2)


@dataclasses.dataclass(frozen=True)
class Trainer:
  """What never changes during training; static under jit (hashes by value)."""

  model: CNN
  tx: optax.GradientTransformation = dataclasses.field(compare=False)
  augment: bool
  max_shift: int
  label_smoothing: float
  spec: tuple  # the config values tx was built from, so equal configs reuse compiled steps


@flax.struct.dataclass
class ClassifierState:
  step: jnp.ndarray  # int32 scalar: batches done
  params: flax.core.FrozenDict
  opt_state: optax.OptState


def build_trainer(config, steps_per_epoch: int) -> Trainer:
  total = config.num_epochs * steps_per_epoch
  schedule = optax.warmup_cosine_decay_schedule(
      0.0, config.learning_rate, max(1, int(config.warmup_fraction * total)), max(1, total),
      end_value=config.learning_rate * 1e-3)
  spec = (config.learning_rate, config.warmup_fraction, config.weight_decay, total)
  return Trainer(model=build_cnn(config), tx=optax.adamw(schedule, weight_decay=config.weight_decay),
                 augment=config.augment, max_shift=config.max_shift,
                 label_smoothing=config.label_smoothing, spec=spec)


def init_state(trainer: Trainer, key: jax.Array) -> ClassifierState:
  params = trainer.model.init(key, jnp.zeros((1, 28, 28)), train=False)["params"]
  return ClassifierState(step=jnp.zeros((), jnp.int32), params=params,
                         opt_state=trainer.tx.init(params))


def train_step(trainer: Trainer, state: ClassifierState, x_BxHxW, y_B, base_key):
  """One AdamW step; its randomness is fold_in(base_key, step), so a rerun replays it."""
  shift_key, dropout_key = jax.random.split(jax.random.fold_in(base_key, state.step))
  if trainer.augment and trainer.max_shift:
    x_BxHxW = random_shift(x_BxHxW, shift_key, trainer.max_shift)
  targets_Bx10 = optax.smooth_labels(jax.nn.one_hot(y_B, NUM_CLASSES), trainer.label_smoothing)

  def loss_fn(params):
    logits_Bx10, _ = trainer.model.apply({"params": params}, x_BxHxW, train=True,
                                         rngs={"dropout": dropout_key})
    loss = optax.softmax_cross_entropy(logits_Bx10, targets_Bx10).mean()
    return loss, jnp.mean(logits_Bx10.argmax(-1) == y_B)

  (loss, acc), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  updates, opt_state = trainer.tx.update(grads, state.opt_state, state.params)
  state = state.replace(step=state.step + 1, params=optax.apply_updates(state.params, updates),
                        opt_state=opt_state)
  return state, loss, acc


@functools.partial(jax.jit, static_argnums=0, donate_argnums=1)
def train_chunk(trainer: Trainer, state, images_NxHxW, labels_N, batches_KxB, base_key, start, num):
  """Batches [start, start+num) of an epoch in one dispatch; traced bounds compile once.

  Returns the new state and the summed loss and accuracy of those batches.
  """
  def body(i, carry):
    state, loss_sum, acc_sum = carry
    idx_B = batches_KxB[i]
    x_BxHxW = images_NxHxW[idx_B].astype(jnp.float32) / 255.0
    state, loss, acc = train_step(trainer, state, x_BxHxW, labels_N[idx_B], base_key)
    return state, loss_sum + loss, acc_sum + acc

  zero = jnp.zeros((), jnp.float32)
  return jax.lax.fori_loop(start, start + num, body, (state, zero, zero))


@functools.partial(jax.jit, static_argnums=0)
def _forward(model: CNN, params, x_BxHxW):
  logits_Bx10, features_BxF = model.apply({"params": params}, x_BxHxW, train=False)
  return jax.nn.softmax(logits_Bx10), features_BxF


def predict(model: CNN, params, images, batch_size: int = 1000):
  """(probs_Nx10, features_NxF) as NumPy; the last batch is padded so one compiled shape serves all."""
  images = np.asarray(images)
  if images.ndim == 4 and images.shape[-1] == 1:
    images = images[..., 0]
  if images.ndim != 3 or images.shape[1:] != (28, 28):
    raise JudgeError(f"judge expects images of shape [N,28,28], got {list(images.shape)}")
  if np.issubdtype(images.dtype, np.integer):
    images = images.astype(np.float32) / 255.0
  elif images.size and (images.min() < -1e-3 or images.max() > 1 + 1e-3):
    raise JudgeError(f"judge expects images in [0, 1], got values in [{images.min():.3g}, "
                     f"{images.max():.3g}] (map tanh outputs with x * 0.5 + 0.5)")
  n = len(images)
  padded = np.zeros((-(-n // batch_size) * batch_size, 28, 28), np.float32)
  padded[:n] = images
  outs = [_forward(model, params, padded[i:i + batch_size]) for i in range(0, n, batch_size)]
  if not outs:
    return np.zeros((0, NUM_CLASSES), np.float32), np.zeros((0, model.feature_dim), np.float32)
  return tuple(np.concatenate([np.asarray(o[k]) for o in outs])[:n] for k in (0, 1))


def accuracy_percent(probs_Nx10: np.ndarray, labels_N) -> float:
  return float(100.0 * np.mean(probs_Nx10.argmax(-1) == np.asarray(labels_N)))


def data_sha256(images: np.ndarray, labels: np.ndarray) -> str:
  """sha256 of the uint8 image bytes followed by the int32 label bytes."""
  return hashlib.sha256(np.ascontiguousarray(images).tobytes()
                        + np.ascontiguousarray(labels, np.int32).tobytes()).hexdigest()


def validate_config(config) -> None:
  """Raises ConfigError naming the first bad field, before anything is computed or written."""
  if config.dataset not in data.DATASETS:
    raise ConfigError(f"config.dataset {config.dataset!r} is unknown; choose one of "
                      f"{', '.join(data.DATASETS)}")
  positive = lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0
  for key in ("batch_size", "num_epochs", "feature_dim", "steps_per_dispatch", "eval_batch_size"):
    if not positive(config[key]):
      raise ConfigError(f"config.{key} must be a positive integer, got {config[key]!r}")
  if not config.conv_features or not all(map(positive, config.conv_features)):
    raise ConfigError(f"config.conv_features must be positive widths, got {config.conv_features!r}")
  if not config.learning_rate > 0 or config.weight_decay < 0 or config.max_shift < 0:
    raise ConfigError("config.learning_rate must be positive and weight_decay, max_shift >= 0")
  for key in ("conv_dropout", "dense_dropout", "label_smoothing", "warmup_fraction"):
    if not 0 <= config[key] < 1:
      raise ConfigError(f"config.{key} must be in [0, 1), got {config[key]!r}")


def _write_atomic(path: Path, payload: bytes) -> None:
  tmp = path.with_name(path.name + ".tmp")
  tmp.write_bytes(payload)
  os.replace(tmp, path)  # a reader never sees half a file


def train_classifier(config: ml_collections.ConfigDict, out_dir=None) -> dict:
  """Trains the judge, tests it, and (given out_dir or config.out_dir) writes its weights + JSON."""
  validate_config(config)
  out_dir = out_dir or config.out_dir or None
  if out_dir is not None:
    out_dir = Path(out_dir)
    try:  # fail before training, not after
      out_dir.mkdir(parents=True, exist_ok=True)
      _write_atomic(out_dir / ".write_test", b"ok")
      (out_dir / ".write_test").unlink()
    except OSError as exc:
      raise WorkdirError(f"output folder {out_dir} is not writable: {exc.strerror or exc}") from None
  train_x, train_y = data.load_dataset(config.dataset, "train", config.data_dir or None)
  test_x, test_y = data.load_dataset(config.dataset, "test", config.data_dir or None)
  if config.train_limit:
    train_x, train_y = train_x[:config.train_limit], train_y[:config.train_limit]
  if config.test_limit:
    test_x, test_y = test_x[:config.test_limit], test_y[:config.test_limit]
  steps_per_epoch = len(train_x) // config.batch_size  # the remainder rotates with the permutation
  if steps_per_epoch == 0:
    raise ConfigError(f"config.batch_size {config.batch_size} exceeds the {len(train_x)} images")

  trainer = build_trainer(config, steps_per_epoch)
  init_key, perm_key, step_key = jax.random.split(jax.random.key(config.seed), 3)
  state = init_state(trainer, init_key)
  images_dev, labels_dev = jax.device_put(train_x), jax.device_put(train_y)  # once
  t0, loss, acc = time.perf_counter(), float("nan"), float("nan")
  for epoch in range(config.num_epochs):
    perm_N = jax.random.permutation(jax.random.fold_in(perm_key, epoch), len(train_x))
    batches_KxB = perm_N[:steps_per_epoch * config.batch_size].reshape(steps_per_epoch, -1)
    with tqdm.tqdm(total=steps_per_epoch, disable=not config.progress, unit="batch",
                   dynamic_ncols=True, desc=f"judge {config.dataset} {epoch + 1}/"
                   f"{config.num_epochs}") as bar:
      done, loss_sum, acc_sum = 0, 0.0, 0.0
      while done < steps_per_epoch:
        n = min(config.steps_per_dispatch, steps_per_epoch - done)
        state, chunk_loss, chunk_acc = train_chunk(trainer, state, images_dev, labels_dev,
                                                   batches_KxB, step_key, done, n)
        done, loss_sum, acc_sum = done + n, loss_sum + float(chunk_loss), acc_sum + float(chunk_acc)
        loss, acc = loss_sum / done, 100 * acc_sum / done
        bar.update(n)
        bar.set_postfix(loss=f"{loss:.4f}", acc=f"{acc:.2f}%")
    if not np.isfinite(loss):
      raise ConfigError(f"training diverged (loss {loss}) in epoch {epoch + 1}; "
                        "lower config.learning_rate")
  train_seconds = time.perf_counter() - t0
  params = jax.device_get(state.params)
  probs_Nx10, _ = predict(trainer.model, params, test_x, config.eval_batch_size)
  weights = flax.serialization.to_bytes(params)
  meta = dict(
      dataset=config.dataset, test_accuracy=round(accuracy_percent(probs_Nx10, test_y), 4),
      num_test=len(test_x), final_train_loss=round(loss, 6), final_train_accuracy=round(acc, 4),
      train_data_sha256=data_sha256(train_x, train_y), test_data_sha256=data_sha256(test_x, test_y),
      data_sha256_of="uint8 image bytes then int32 label bytes",
      weights_sha256=hashlib.sha256(weights).hexdigest(), weights_bytes=len(weights),
      param_count=int(sum(np.size(p) for p in jax.tree.leaves(params))),
      train_seconds=round(train_seconds, 1),
      device=f"{jax.default_backend()}: {jax.devices()[0].device_kind} ({os.cpu_count()} host cores)",
      jax_version=jax.__version__, flax_version=flax.__version__, optax_version=optax.__version__,
      date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
      config=config.to_dict())
  summary = {**meta, "params": params, "out_dir": None}
  if out_dir is not None:
    _write_atomic(out_dir / f"{config.dataset}.msgpack", weights)
    _write_atomic(out_dir / f"{config.dataset}.json",
                  (json.dumps(meta, indent=2, default=list) + "\n").encode())
    summary["out_dir"] = str(out_dir)
  return summary


class Judge:
  """A trained CNN with its metadata: scores images as class probabilities and features."""

  def __init__(self, dataset: str, meta: dict, model: CNN, params):
    self.dataset, self.meta, self.model = dataset, meta, model
    self.params = jax.device_put(params)  # once, not per predict call
    self.identity = {"dataset": dataset, "weights_sha256": meta["weights_sha256"],
                     "test_accuracy": meta["test_accuracy"]}

  def predict(self, images_NxHxW, batch_size: int = 1000):
    """(probs_Nx10, features_NxF) as float32 NumPy; images float in [0, 1] (or uint8)."""
    return predict(self.model, self.params, images_NxHxW, batch_size)

  def accuracy(self, images_NxHxW, labels_N) -> float:
    """Top-1 accuracy in percent."""
    return accuracy_percent(self.predict(images_NxHxW)[0], labels_N)


def load_judge(dataset: str, judge_dir=None) -> Judge:
  """The judge shipped for `dataset` (or the one in judge_dir), verified and cached."""
  if dataset not in data.DATASETS:
    raise JudgeError(f"no judge for unknown dataset {dataset!r}; choose one of "
                     f"{', '.join(data.DATASETS)}")
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
    model = build_cnn(config)
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
