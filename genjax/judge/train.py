"""Training the judge on the core loop: AdamW with a one-cycle schedule, random shifts, dropout;
each epoch a fresh permutation of the training set, drawn on the device. At the end the test
accuracy is measured and the weights are written with their metadata (the shipped judge)."""

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

from genjax.core import config as config_lib, loop, runner, schedules, sharding
from genjax.core.errors import ConfigError, WorkdirError, field_error
from genjax.core.files import write_atomic
from genjax.data.images import DATASETS, NUM_CLASSES, SPLIT_SIZES, load_dataset
from genjax.judge.cnn import CNN, accuracy_percent, build_cnn, data_sha256, predict
from genjax.nn.augment import translate_BxHxW

METRIC_NAMES = ("loss", "accuracy")
RESUMABLE = config_lib.LOOP_RESUMABLE | {"out_dir", "eval_batch_size", "test_limit"}


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


def steps_per_epoch(config) -> int:
  """Whole batches per epoch; the remainder rotates with each epoch's permutation."""
  return (config.train_limit or SPLIT_SIZES["train"]) // config.batch_size


def build_trainer(config) -> Trainer:
  schedule = schedules.optax_schedule("warmup_cosine", config.learning_rate, config.num_steps,
                                      final_fraction=1e-3,
                                      warmup_fraction=config.warmup_fraction)
  spec = (config.learning_rate, config.warmup_fraction, config.weight_decay, config.num_steps)
  return Trainer(model=build_cnn(config),
                 tx=optax.adamw(schedule, weight_decay=config.weight_decay),
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
    x_BxHxW = translate_BxHxW(x_BxHxW, shift_key, trainer.max_shift, background=0.0)
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
  return state, {"loss": loss, "accuracy": acc}


@functools.lru_cache(maxsize=None)
def compiled_chunk(trainer: Trainer, batch_size: int, per_epoch: int, max_steps: int, mesh):
  """The jitted chunk of one epoch's batches (a chunk never crosses an epoch's end)."""

  def chunk(state, images_NxHxW, labels_N, perm_key, step_key, num_steps):
    # The epoch's permutation once per chunk, as fold_in(perm_key, epoch) always drew it.
    epoch = state.step // per_epoch
    perm_N = jax.random.permutation(jax.random.fold_in(perm_key, epoch), images_NxHxW.shape[0])
    batches_KxB = perm_N[:per_epoch * batch_size].reshape(per_epoch, batch_size)

    def step_fn(state):
      idx_B = batches_KxB[state.step % per_epoch]
      x_BxHxW = images_NxHxW[idx_B].astype(jnp.float32) / 255.0
      return train_step(trainer, state, x_BxHxW, labels_N[idx_B], step_key)

    return runner.run_steps(step_fn, state, num_steps, max_steps, METRIC_NAMES)

  return runner.jit_chunk(chunk, mesh)


def validate(config) -> None:
  """Raises ConfigError naming the first bad field, before anything is computed or written."""
  c = config_lib
  c.check_loop_keys(config)
  c.check_choice(config, "dataset", DATASETS)
  c.check_ints(config, ("batch_size", "num_epochs", "feature_dim", "eval_batch_size"))
  c.check_ints(config, ("max_shift", "train_limit", "test_limit"), low=0)
  c.check_widths(config, ("conv_features",))
  c.check_numbers(config, ("learning_rate",), strict=True)
  c.check_numbers(config, ("weight_decay",))
  c.check_range(config, ("conv_dropout", "dense_dropout", "label_smoothing", "warmup_fraction"),
                0.0, 1.0)
  c.check_bools(config, ("augment",))
  if steps_per_epoch(config) == 0:
    raise field_error("config.batch_size", f"{config.batch_size} exceeds the "
                      f"{config.train_limit or SPLIT_SIZES['train']} training images")


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
  make_static = staticmethod(lambda config, mesh: build_trainer(config))
  make_state = staticmethod(init_state)

  @classmethod
  def validate(cls, config):
    validate(config)
    config = config.copy_and_resolve_references()
    if not config.num_steps:
      config.num_steps = config.num_epochs * steps_per_epoch(config)
    return config

  def __init__(self, config, mesh):
    super().__init__(config, mesh)
    self.trainer = build_trainer(config)
    self.per_epoch = steps_per_epoch(config)
    self.init_key, self.perm_key, self.step_key = jax.random.split(jax.random.key(config.seed), 3)
    self.chunk_fn = compiled_chunk(self.trainer, config.batch_size, self.per_epoch,
                                   config.steps_per_dispatch, mesh)

  def load_data(self):
    c = self.config
    train_x, train_y = load_dataset(c.dataset, "train", c.data_dir or None)
    test_x, test_y = load_dataset(c.dataset, "test", c.data_dir or None)
    if c.train_limit:
      train_x, train_y = train_x[:c.train_limit], train_y[:c.train_limit]
    if c.test_limit:
      test_x, test_y = test_x[:c.test_limit], test_y[:c.test_limit]
    self.train_set, self.test_set = (train_x, train_y), (test_x, test_y)
    self.out_dir = check_out_dir(c.out_dir)
    return train_x, train_y

  def init_state(self):
    return init_state(self.trainer, self.init_key)

  def chunk(self, state, data_dev, num_steps):
    images_dev, labels_dev = data_dev
    return self.chunk_fn(state, images_dev, labels_dev, self.perm_key, self.step_key, num_steps)

  def event_intervals(self):
    return (self.per_epoch,)  # the next epoch's permutation starts a new chunk

  def finish(self, run: loop.Run, state) -> dict:
    """Tests the judge; writes <dataset>.msgpack and .json to config.out_dir if set."""
    c, rows = self.config, run.log.rows()
    last_epoch = [r for r in rows if r["step"] > c.num_steps - self.per_epoch]
    loss = float(np.mean([r["loss"] for r in last_epoch])) if last_epoch else float("nan")
    acc = 100 * float(np.mean([r["accuracy"] for r in last_epoch])) if last_epoch else float("nan")
    if not np.isfinite(loss):
      raise ConfigError(f"training diverged (loss {loss}); lower config.learning_rate")
    params = jax.device_get(state.params)
    test_x, test_y = self.test_set
    probs_Nx10, _ = predict(self.trainer.model, params, test_x, c.eval_batch_size)
    weights = flax.serialization.to_bytes(params)
    meta = dict(
        dataset=c.dataset, test_accuracy=round(accuracy_percent(probs_Nx10, test_y), 4),
        num_test=len(test_x), final_train_loss=round(loss, 6), final_train_accuracy=round(acc, 4),
        train_data_sha256=data_sha256(*self.train_set),
        test_data_sha256=data_sha256(test_x, test_y),
        data_sha256_of="uint8 image bytes then int32 label bytes",
        weights_sha256=hashlib.sha256(weights).hexdigest(), weights_bytes=len(weights),
        param_count=int(sum(np.size(p) for p in jax.tree.leaves(params))),
        train_seconds=round(rows[-1]["wall_s"], 1) if rows else 0.0,
        device=f"{jax.default_backend()}: {jax.devices()[0].device_kind} "
               f"({os.cpu_count()} host cores)",
        jax_version=jax.__version__, flax_version=flax.__version__,
        optax_version=optax.__version__,
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        config=c.to_dict())
    if self.out_dir is not None and run.writer:
      write_atomic(self.out_dir / f"{c.dataset}.msgpack", weights)
      write_atomic(self.out_dir / f"{c.dataset}.json",
                   (json.dumps(meta, indent=2, default=list) + "\n").encode())
    return {**meta, "params": params, "out_dir": None if self.out_dir is None
            else str(self.out_dir)}


def train_judge(config, workdir) -> dict:
  """Trains the judge of `config` in `workdir` (checkpoints, metrics); returns its summary."""
  return loop.train(JudgeFamily, config, workdir)
