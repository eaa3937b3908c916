"""Training the judge on the core loop: AdamW with a one-cycle schedule, random shifts, dropout;
each epoch a fresh permutation of the training set, drawn on the device (or, for streamed data,
on the host from the same key). At the end the test accuracy is measured and written beside the
checkpoints (judge.json: the run is a judge for evaluate.py --judge); for MNIST and
Fashion-MNIST the weights are also written with their metadata (the shipped judge)."""

import dataclasses
import datetime
import functools
import hashlib
import json
import os
from pathlib import Path

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from genjax.core import config as config_lib, feed, loop, runner, schedules, sharding
from genjax.core.errors import ConfigError, DataError, WorkdirError, field_error
from genjax.core.feed import Streamed
from genjax.core.files import write_atomic
from genjax.data import image_sets
from genjax.data.images import DATASETS
from genjax.data.pixels import example_shape
from genjax.judge.cnn import CNN, META_FILE, accuracy_percent, build_cnn, data_sha256, predict
from genjax.nn.augment import translate_BxHxW

METRIC_NAMES = ("loss", "accuracy")
RESUMABLE = config_lib.LOOP_RESUMABLE | {"out_dir", "eval_batch_size", "test_limit"}
# Besides the loop's, keys no compiled step reads (the data's are in the Trainer's shapes).
HOST_KEYS = ("dataset", "image_size", "test_fraction", "class_names")


@dataclasses.dataclass(frozen=True)
class Trainer:
  """What never changes during training; static under jit (hashes by value)."""

  model: CNN
  tx: optax.GradientTransformation = dataclasses.field(compare=False)
  augment: bool
  max_shift: int
  label_smoothing: float
  spec: tuple  # the config values tx was built from, so equal configs reuse compiled steps
  example_shape: tuple  # one image's array shape: (H, W), or (H, W, C) in colour


@flax.struct.dataclass
class ClassifierState:
  step: jnp.ndarray  # int32 scalar: batches done
  params: flax.core.FrozenDict
  opt_state: optax.OptState


def steps_per_epoch(config, num_examples: int) -> int:
  """Whole batches per epoch of num_examples (config.train_limit when smaller); the remainder
  rotates with each epoch's permutation."""
  return min(config.train_limit or num_examples, num_examples) // config.batch_size


def build_trainer(config) -> Trainer:
  """The Trainer of a config whose data keys and num_steps are filled in."""
  schedule = schedules.optax_schedule("warmup_cosine", config.learning_rate, config.num_steps,
                                      final_fraction=1e-3,
                                      warmup_fraction=config.warmup_fraction)
  spec = (config.learning_rate, config.warmup_fraction, config.weight_decay, config.num_steps)
  return Trainer(model=build_cnn(config, config.num_classes),
                 tx=optax.adamw(schedule, weight_decay=config.weight_decay),
                 augment=config.augment, max_shift=config.max_shift,
                 label_smoothing=config.label_smoothing, spec=spec,
                 example_shape=example_shape(config.image_shape))


def init_state(trainer: Trainer, key: jax.Array) -> ClassifierState:
  params = trainer.model.init(key, jnp.zeros((1, *trainer.example_shape)), train=False)["params"]
  return ClassifierState(step=jnp.zeros((), jnp.int32), params=params,
                         opt_state=trainer.tx.init(params))


def train_step(trainer: Trainer, state: ClassifierState, x_BxHxW, y_B, base_key):
  """One AdamW step; its randomness is fold_in(base_key, step), so a rerun replays it."""
  shift_key, dropout_key = jax.random.split(jax.random.fold_in(base_key, state.step))
  if trainer.augment and trainer.max_shift:
    x_BxHxW = translate_BxHxW(x_BxHxW, shift_key, trainer.max_shift, background=0.0)
  targets_BxK = optax.smooth_labels(jax.nn.one_hot(y_B, trainer.model.num_classes),
                                    trainer.label_smoothing)

  def loss_fn(params):
    logits_BxK, _ = trainer.model.apply({"params": params}, x_BxHxW, train=True,
                                        rngs={"dropout": dropout_key})
    loss = optax.softmax_cross_entropy(logits_BxK, targets_BxK).mean()
    return loss, jnp.mean(logits_BxK.argmax(-1) == y_B)

  (loss, acc), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  updates, opt_state = trainer.tx.update(grads, state.opt_state, state.params)
  state = state.replace(step=state.step + 1, params=optax.apply_updates(state.params, updates),
                        opt_state=opt_state)
  return state, {"loss": loss, "accuracy": acc}


def epoch_batches(perm_key, epoch, num_examples: int, batch_size: int, per_epoch: int):
  """per_epoch x B rows of the training set: the epoch's permutation, fold_in(perm_key, epoch)."""
  perm_N = jax.random.permutation(jax.random.fold_in(perm_key, epoch), num_examples)
  return perm_N[:per_epoch * batch_size].reshape(per_epoch, batch_size)


_epoch_batches = jax.jit(epoch_batches, static_argnums=(2, 3, 4))


@functools.lru_cache(maxsize=None)
def compiled_chunk(trainer: Trainer, batch_size: int, per_epoch: int, max_steps: int, mesh,
                   streamed: bool = False):
  """The jitted chunk of one epoch's batches (a chunk never crosses an epoch's end); streamed:
  data is the chunk's Streamed (images, labels), read on the host by the same permutation."""

  def chunk(state, data, perm_key, step_key, num_steps):
    if streamed:
      def step_fn(state, i):
        x_BxHxW, y_B = (a[i] for a in data.arrays)
        return train_step(trainer, state, x_BxHxW.astype(jnp.float32) / 255.0, y_B, step_key)
    else:
      images_NxHxW, labels_N = data
      # The epoch's permutation once per chunk, as fold_in(perm_key, epoch) always drew it.
      batches_KxB = epoch_batches(perm_key, state.step // per_epoch, images_NxHxW.shape[0],
                                  batch_size, per_epoch)

      def step_fn(state, i):
        idx_B = batches_KxB[state.step % per_epoch]
        x_BxHxW = images_NxHxW[idx_B].astype(jnp.float32) / 255.0
        return train_step(trainer, state, x_BxHxW, labels_N[idx_B], step_key)

    return runner.run_steps(step_fn, state, num_steps, max_steps, METRIC_NAMES, indexed=True)

  return runner.jit_chunk(chunk, mesh, streamed)


def validate(config) -> None:
  """Raises ConfigError naming the first bad field, before anything is computed or written."""
  c = config_lib
  c.check_loop_keys(config)
  image_sets.check_config(config)
  c.check_ints(config, ("batch_size", "num_epochs", "feature_dim", "eval_batch_size"))
  c.check_ints(config, ("max_shift", "train_limit", "test_limit"), low=0)
  c.check_widths(config, ("conv_features",))
  c.check_numbers(config, ("learning_rate",), strict=True)
  c.check_numbers(config, ("weight_decay",))
  c.check_range(config, ("conv_dropout", "dense_dropout", "label_smoothing", "warmup_fraction"),
                0.0, 1.0)
  c.check_bools(config, ("augment",))


def check_batches(config, num_examples: int) -> int:
  """Steps per epoch, which a batch larger than the training set would make 0."""
  per_epoch = steps_per_epoch(config, num_examples)
  if per_epoch == 0:
    raise field_error("config.batch_size", f"{config.batch_size} exceeds the "
                      f"{min(config.train_limit or num_examples, num_examples)} training images")
  return per_epoch


def check_out_dir(out_dir) -> Path | None:
  """The folder for the weights, proven writable before any training (by process 0, the one
  that writes them)."""
  if not out_dir:
    return None
  out_dir = Path(out_dir)
  if not sharding.is_primary_process():
    return out_dir
  try:
    out_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(out_dir / ".write_test", b"ok")
    (out_dir / ".write_test").unlink()
  except OSError as exc:
    raise WorkdirError(f"output folder {out_dir} is not writable: {exc.strerror or exc}") \
        from None
  return out_dir


class JudgeFamily(loop.Family):
  name = "judge"
  metric_names = METRIC_NAMES
  resumable = RESUMABLE
  readers = ("evaluate.py --judge", "the image families' config.judge")
  make_static = staticmethod(lambda config, mesh: build_trainer(config))
  make_state = staticmethod(init_state)
  streams = True

  @classmethod
  def validate(cls, config):
    validate(config)
    return image_sets.resolve_paths(config.copy_and_resolve_references())

  def __init__(self, config, mesh):
    super().__init__(config, mesh)
    self.init_key, self.perm_key, self.step_key = jax.random.split(jax.random.key(config.seed), 3)

  def load_data(self):
    """The labelled training split (its shape and classes recorded in the config, num_steps
    from num_epochs), the test split, then the trainer built for them."""
    c = self.config
    train = image_sets.training_set(c)
    if not train.num_classes:
      raise field_error("config.dataset", f"{c.dataset} has no labels; a judge learns classes "
                        "(one subfolder per class, or a labels array)", DataError)
    train = train.head(c.train_limit)
    self.test_set = image_sets.open_split(image_sets.DataSpec.of(c), "test").head(c.test_limit)
    self.per_epoch = check_batches(c, len(train))
    if not c.num_steps:
      c.num_steps = c.num_epochs * self.per_epoch
    self.trainer = build_trainer(c)
    self.out_dir = check_out_dir(c.out_dir)
    self.train_set, self.num_examples = train, len(train)
    return train

  def init_state(self):
    return init_state(self.trainer, self.init_key)

  def chunk(self, state, data_dev, num_steps):
    c, streamed = self.config, isinstance(data_dev, Streamed)
    chunk_fn = compiled_chunk(self.trainer, c.batch_size, self.per_epoch, c.steps_per_dispatch,
                              self.mesh, streamed)
    return chunk_fn(state, data_dev, self.perm_key, self.step_key, num_steps)

  def batch_indices(self, first_step, num_steps):
    """The rows of the epochs' permutations (each drawn once on the host's CPU)."""
    steps = np.arange(first_step, first_step + num_steps)
    with jax.default_device(feed.host_cpu()):
      epochs = {e: np.asarray(_epoch_batches(self.perm_key, e, self.num_examples,
                                             self.config.batch_size, self.per_epoch))
                for e in set(steps // self.per_epoch)}
    return np.stack([epochs[s // self.per_epoch][s % self.per_epoch] for s in steps])

  def event_intervals(self):
    return (self.per_epoch,)  # the next epoch's permutation starts a new chunk

  def finish(self, run: loop.Run, state) -> dict:
    """Tests the judge; writes judge.json beside the checkpoints, and <dataset>.msgpack and
    .json to config.out_dir if set (MNIST and Fashion-MNIST: the shipped judge's files)."""
    c, rows = self.config, run.log.rows()
    last_epoch = [r for r in rows if r["step"] > c.num_steps - self.per_epoch]
    loss = float(np.mean([r["loss"] for r in last_epoch])) if last_epoch else float("nan")
    acc = 100 * float(np.mean([r["accuracy"] for r in last_epoch])) if last_epoch else float("nan")
    if not np.isfinite(loss):
      raise ConfigError(f"training diverged (loss {loss}); lower config.learning_rate")
    params = jax.device_get(state.params)
    test_x, test_y = self.test_set.arrays()
    probs_NxK, _ = predict(self.trainer.model, params, test_x, c.eval_batch_size,
                           self.trainer.example_shape)
    weights = flax.serialization.to_bytes(params)
    shipped = c.dataset in DATASETS  # their data's hashes are checked against the shipped files
    hashes = dict(train_data_sha256=data_sha256(*self.train_set.arrays()),
                  test_data_sha256=data_sha256(test_x, test_y),
                  data_sha256_of="uint8 image bytes then int32 label bytes") if shipped else {}
    meta = dict(
        dataset=c.dataset, test_accuracy=round(accuracy_percent(probs_NxK, test_y), 4),
        num_test=len(test_x), final_train_loss=round(loss, 6), final_train_accuracy=round(acc, 4),
        **hashes, weights_sha256=hashlib.sha256(weights).hexdigest(), weights_bytes=len(weights),
        param_count=int(sum(np.size(p) for p in jax.tree.leaves(params))),
        train_seconds=round(rows[-1]["wall_s"], 1) if rows else 0.0,
        device=f"{jax.default_backend()}: {jax.devices()[0].device_kind} "
               f"({os.cpu_count()} host cores)",
        jax_version=jax.__version__, flax_version=flax.__version__,
        optax_version=optax.__version__,
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        config=c.to_dict())
    meta_text = (json.dumps(meta, indent=2, default=list) + "\n").encode()
    if run.writer:
      write_atomic(run.workdir / META_FILE, meta_text)
    name = image_sets.short_name(c.dataset)
    if self.out_dir is not None and run.writer:
      write_atomic(self.out_dir / f"{name}.msgpack", weights)
      write_atomic(self.out_dir / f"{name}.json", meta_text)
    return {**meta, "params": params, "name": name,
            "out_dir": None if self.out_dir is None else str(self.out_dir)}


def train_judge(config, workdir) -> dict:
  """Trains the judge of `config` in `workdir` (checkpoints, metrics); returns its summary."""
  return loop.train(JudgeFamily, config, workdir)
