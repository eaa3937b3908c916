"""The sentence classifier on the core loop: SST-2 grouped by length, per-example sigmoid
cross-entropy, AdamW on a warmup+cosine schedule, the dev set evaluated as it trains, and
`predict` for raw text.

Sentences are grouped into length buckets (e.g. up to 8, 16, 32, 64 tokens), each bucket one
padded array on the device. An epoch walks the buckets in order, each bucket's batches in a
permutation drawn on the device from fold_in(fold_in(key, epoch), bucket); a bucket's last
batch wraps around to its first sentences, so every sentence is seen once or twice an epoch.
A chunk of steps never leaves its bucket (`chunk_limit`), so each bucket's shape compiles once.
"""

import dataclasses
import functools
import json
import os
from pathlib import Path

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from genjax.core import checkpoint, config as config_lib, loop, plotting, runner, schedules
from genjax.core import sharding
from genjax.core.config import Static, recipe_of
from genjax.core.ema import ema_copy, ema_update
from genjax.core.errors import CheckpointError, DataError, WorkdirError, field_error
from genjax.data import sst2
from genjax.text import words
from genjax.text.classifier_models import ENCODERS, POOLINGS, build_classifier
from genjax.text.sentences import (Bucket, Encoded, encode_sentences, make_buckets,
                                    pad_rows, padded_width, rows_of)

NAME = "text_classify"
METRIC_NAMES = ("loss", "accuracy")
VOCAB_FILE = "vocab.json"
HOST_KEYS = ("model", "dataset", "data_dir", "seed", "num_steps", "vocab_sha256",
             "eval_interval", "eval_batch_size", "log_interval", "print_interval",
             "checkpoint_interval", "keep_checkpoints", "steps_per_dispatch", "progress",
             "num_devices")
# The vocabulary is checked by check_resume, with its own message.
RESUMABLE = config_lib.LOOP_RESUMABLE | {"eval_interval", "eval_batch_size", "vocab_size",
                                         "vocab_sha256"}
# Keys newer than some saved runs, at the value those runs trained with.
ADDED_KEYS = {"adversarial_eps": 0.0, "segment_batches": 0, "subword_buckets": 0,
              "subword_width": 32}


@dataclasses.dataclass(frozen=True, eq=False)
class ClassifierSetup(Static):
  """What never changes during training: the network, the optimizer, the recipe."""

  model: flax.linen.Module
  tx: optax.GradientTransformation
  recipe: ml_collections.FrozenConfigDict
  mesh: object = None


@flax.struct.dataclass
class ClassifierState:
  step: jnp.ndarray  # int32 scalar: batches done
  params: flax.core.FrozenDict
  opt_state: optax.OptState
  ema_params: flax.core.FrozenDict  # the parameters' moving average (config.ema_decay)


def decay_mask(params):
  """Weight decay on matrices (embeddings included), not on biases."""
  return jax.tree.map(lambda p: p.ndim >= 2, params)


def build_setup(config, mesh=None) -> ClassifierSetup:
  """The static definition of a config whose vocabulary and epoch are filled in."""
  schedule = schedules.optax_schedule(
      "warmup_cosine", config.learning_rate, config.num_epochs * config.steps_per_epoch,
      final_fraction=config.final_lr_fraction, warmup_fraction=config.warmup_fraction)
  tx = optax.chain(optax.clip_by_global_norm(config.grad_clip),
                   optax.adamw(schedule, weight_decay=config.weight_decay, mask=decay_mask))
  return ClassifierSetup(model=build_classifier(config, config.vocab_size), tx=tx,
                         recipe=recipe_of(config, HOST_KEYS), mesh=mesh)


@functools.partial(jax.jit, static_argnums=0)
def init_state(setup: ClassifierSetup, key) -> ClassifierState:
  width = setup.recipe.subword_width if setup.recipe.subword_buckets else 0
  params = setup.model.init(key, jnp.zeros((1, 1), jnp.int32), jnp.ones((1,), jnp.int32),
                            subwords_BxTxG=jnp.zeros((1, 1, width), jnp.int32))
  return ClassifierState(step=jnp.zeros((), jnp.int32), params=params["params"],
                         opt_state=setup.tx.init(params["params"]),
                         ema_params=ema_copy(params["params"]))


def adversarial_delta(grad_BxTxE, eps: float):
  """The gradient scaled to length eps per sentence (padding's gradient is zero)."""
  norm_Bx1x1 = jnp.sqrt(jnp.sum(grad_BxTxE**2, axis=(1, 2), keepdims=True)) + 1e-12
  return jax.lax.stop_gradient(eps * grad_BxTxE / norm_Bx1x1)


def train_step(setup: ClassifierSetup, state, batch, base_key):
  """One AdamW step on a batch (a Bucket of B sentences); its randomness is
  fold_in(base_key, step), so a resume replays it."""
  key = jax.random.fold_in(base_key, state.step)
  tokens_BxT, lengths_B, labels_B, subwords_BxTxG = (sharding.constrain_batch(a, setup.mesh)
                                                     for a in batch)

  def loss_fn(params, delta_BxTxE):
    logits_B = setup.model.apply({"params": params}, tokens_BxT, lengths_B, train=True,
                                 embed_delta_BxTxE=delta_BxTxE, subwords_BxTxG=subwords_BxTxG,
                                 rngs={"dropout": key})
    loss_B = optax.sigmoid_binary_cross_entropy(logits_B, labels_B.astype(jnp.float32))
    return loss_B.mean(), jnp.mean((logits_B > 0) == (labels_B == 1))

  eps = setup.recipe.adversarial_eps
  zeros_BxTxE = jnp.zeros(tokens_BxT.shape + (setup.model.embed_dim,)) if eps else None
  grad_fn = jax.value_and_grad(loss_fn, argnums=(0, 1) if eps else 0, has_aux=True)
  (loss, accuracy), grads = grad_fn(state.params, zeros_BxTxE)
  if eps:
    # Adversarial training on the word vectors: the clean loss's gradient with respect to
    # them, scaled to length eps per sentence, is the perturbation that hurts most to first
    # order; the loss there is added to the clean one.
    grads, g_BxTxE = grads
    delta_BxTxE = adversarial_delta(g_BxTxE, eps)
    adv_grads = jax.grad(lambda p: loss_fn(p, delta_BxTxE)[0])(state.params)
    grads = jax.tree.map(jnp.add, grads, adv_grads)
  updates, opt_state = setup.tx.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  decay = setup.recipe.ema_decay
  ema = ema_update(state.ema_params, params, decay)
  return state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                       ema_params=ema), {"loss": loss, "accuracy": accuracy}


@functools.lru_cache(maxsize=None)
def compiled_chunk(setup: ClassifierSetup, batch_size: int, max_steps: int):
  """Steps within one bucket; compiled once per bucket shape (the offsets are traced)."""

  def chunk(state, bucket, epoch_steps, offset, bucket_index, perm_key, step_key, num_steps):
    n = bucket.tokens_NxT.shape[0]
    num_batches = -(-n // batch_size)
    # The bucket's permutation once per chunk: a chunk never leaves its bucket or epoch.
    epoch = state.step // epoch_steps
    perm_N = jax.random.permutation(
        jax.random.fold_in(jax.random.fold_in(perm_key, epoch), bucket_index), n)
    batches_KxB = perm_N[jnp.arange(num_batches * batch_size) % n].reshape(-1, batch_size)

    def step_fn(state):
      idx_B = batches_KxB[state.step % epoch_steps - offset]
      return train_step(setup, state, Bucket(*(a[idx_B] for a in bucket)), step_key)

    return runner.run_steps(step_fn, state, num_steps, max_steps, METRIC_NAMES)

  return runner.jit_chunk(chunk, setup.mesh)


@functools.partial(jax.jit, static_argnums=0)
def logits_of(model, params, tokens_BxT, lengths_B, subwords_BxTxG):
  return model.apply({"params": params}, tokens_BxT, lengths_B, subwords_BxTxG=subwords_BxTxG)


def logits_of_ids(model, params, encoded: Encoded, boundaries, batch_size: int) -> np.ndarray:
  """Every sentence's logit, in order: batches of one bucket, padded to batch_size rows (one
  compiled shape per bucket, whatever the number of sentences)."""
  widths_N = np.array([padded_width(len(ids), boundaries) for ids in encoded.ids])
  logits_N = np.zeros(len(encoded.ids), np.float32)
  for width in sorted(set(widths_N.tolist())):
    rows = np.flatnonzero(widths_N == width)
    for start in range(0, rows.size, batch_size):
      part = rows[start:start + batch_size]
      batch = pad_rows(rows_of(encoded, part), width, batch_size)
      logits_N[part] = np.asarray(logits_of(model, params, *batch))[:part.size]
  return logits_N


def evaluate(model, params, encoded: Encoded, labels_N, boundaries, batch_size: int) -> dict:
  """Loss (nats), accuracy (%), the confusion matrix and accuracy by length bucket."""
  ids_list = encoded.ids
  logits_N = logits_of_ids(model, params, encoded, boundaries, batch_size)
  signs_N = np.where(labels_N == 1, 1.0, -1.0)
  predicted_N = (logits_N > 0).astype(np.int32)
  right_N = predicted_N == labels_N
  lengths_N = np.array([len(ids) for ids in ids_list])
  by_length, low = [], 0
  for bound in boundaries:
    inside = (lengths_N > low) & (lengths_N <= bound)
    by_length.append({"tokens": f"{low + 1}-{bound}", "count": int(inside.sum()),
                      "accuracy": round(100 * float(right_N[inside].mean()), 2)
                      if inside.any() else None})
    low = bound
  confusion = [[int(np.sum((labels_N == t) & (predicted_N == p))) for p in (0, 1)]
               for t in (0, 1)]
  nats_N = np.logaddexp(0.0, -signs_N * logits_N.astype(np.float64))
  return {"dev_loss": float(nats_N.mean()),
          "dev_accuracy": round(100 * float(right_N.mean()), 2), "num_dev": len(ids_list),
          "confusion": confusion, "confusion_layout": "rows: true 0/1, columns: predicted 0/1",
          "accuracy_by_length": by_length}


def validate(config) -> None:
  """Raises ConfigError naming the first bad field, before anything is computed or written."""
  c = config_lib
  c.check_loop_keys(config)
  c.check_choice(config, "dataset", ("sst2",))
  c.check_choice(config, "encoder", ENCODERS)
  c.check_choice(config, "pooling", POOLINGS)
  c.check_ints(config, ("embed_dim", "hidden_dim", "batch_size", "num_epochs", "min_count",
                        "eval_batch_size"))
  c.check_ints(config, ("head_dim", "train_limit", "eval_interval", "segment_batches",
                        "subword_buckets"), low=0)
  c.check_ints(config, ("subword_width",))
  if config.subword_buckets == 1:
    raise field_error("config.subword_buckets", "must be 0 (none) or at least 2")
  c.check_widths(config, ("buckets",))
  if list(config.buckets) != sorted(set(config.buckets)):
    raise field_error("config.buckets", f"must be increasing lengths, got {config.buckets!r}")
  c.check_numbers(config, ("learning_rate", "grad_clip"), strict=True)
  c.check_numbers(config, ("weight_decay", "final_lr_fraction", "adversarial_eps"))
  c.check_range(config, ("embed_dropout", "word_dropout", "feature_dropout",
                         "warmup_fraction"), 0.0, 1.0)
  c.check_range(config, ("ema_decay",), 0.0, 1.0)


def training_split(config) -> tuple[tuple, np.ndarray, str]:
  """(sentences, labels_N, file) of the training split, limited by config.train_limit."""
  train = sst2.load_split("train", config.data_dir or None)
  limit = config.train_limit or len(train.sentences)
  sentences, labels_N = train.sentences[:limit], train.labels_N[:limit]
  longest = max(len(s) for s in sentences)
  if longest > config.buckets[-1]:
    raise field_error("config.buckets", f"end at {config.buckets[-1]} tokens, but {train.path} "
                      f"has a sentence of {longest}; add a longer bucket")
  return sentences, labels_N, train.path


def write_atomic(path: Path, text: str) -> None:
  tmp = path.with_name(path.name + ".tmp")
  tmp.write_text(text)
  os.replace(tmp, path)  # a reader never sees half a file


class ClassifierFamily(loop.Family):
  name = NAME
  metric_names = METRIC_NAMES
  resumable = RESUMABLE
  added_keys = ADDED_KEYS

  @classmethod
  def validate(cls, config):
    validate(config)
    return config.copy_and_resolve_references()

  def __init__(self, config, mesh):
    super().__init__(config, mesh)
    sharding.check_divisible(config.batch_size, mesh)
    self.init_key, self.perm_key, self.step_key = jax.random.split(
        jax.random.key(config.seed), 3)

  def load_data(self):
    c = self.config
    sentences, labels_N, self.train_path = training_split(c)
    self.vocab = words.build_vocab(sentences, c.min_count)
    index = words.lookup(self.vocab)
    buckets = make_buckets(encode_sentences(sentences, index, c), labels_N, c.buckets)
    # Batches per bucket; an epoch is all of them, bucket after bucket (offsets: where each
    # bucket's run begins), or in shuffled segments of one bucket (segments_of_epoch).
    self.offsets = np.cumsum([0] + [-(-b.labels_N.size // c.batch_size) for b in buckets])
    self._segments = {}
    # The run's config (and so its checkpoints) records what the data gave.
    c.vocab_size, c.vocab_sha256 = len(self.vocab), words.vocab_sha256(self.vocab)
    c.steps_per_epoch = int(self.offsets[-1])
    if not c.num_steps:
      c.num_steps = c.num_epochs * c.steps_per_epoch
    self.setup = build_setup(c, self.mesh)
    dev = sst2.load_split("dev", c.data_dir or None)
    self.dev = (encode_sentences(dev.sentences, index, c), dev.labels_N)
    return tuple(buckets)

  def init_state(self):
    return init_state(self.setup, self.init_key)

  def segments_of_epoch(self, epoch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(starts, buckets, first batches) of an epoch's segments, each a run of batches of one
    bucket, and the end of the last: bucket after bucket (config.segment_batches=0), or in
    pieces of segment_batches batches in an order drawn from (seed, epoch)."""
    if epoch not in self._segments:
      size, sizes_B = self.config.segment_batches, np.diff(self.offsets)
      pieces = [(b, first, min(size or n, n - first)) for b, n in enumerate(sizes_B)
                for first in range(0, n, size or n)]
      if size:
        order = np.random.default_rng([self.config.seed, epoch]).permutation(len(pieces))
        pieces = [pieces[i] for i in order]
      buckets, firsts, lengths = (np.array(column) for column in zip(*pieces))
      self._segments = {epoch: (np.cumsum([0, *lengths]), buckets, firsts)}  # the newest only
    return self._segments[epoch]

  def segment_at(self, step: int) -> tuple[int, int, int]:
    """(bucket, its first batch's step minus its first batch, steps left in it) at `step`."""
    epoch, within = divmod(step, int(self.offsets[-1]))
    starts, buckets, firsts = self.segments_of_epoch(epoch)
    j = int(np.searchsorted(starts, within, side="right")) - 1
    return int(buckets[j]), int(starts[j] - firsts[j]), int(starts[j + 1] - within)

  def chunk_limit(self, step):
    return self.segment_at(step)[2]

  def chunk(self, state, data_dev, num_steps):
    # The step is on the host already (the loop waited for the last chunk); one local copy.
    b, offset, _ = self.segment_at(int(state.step.addressable_data(0)))
    fn = compiled_chunk(self.setup, self.config.batch_size, self.config.steps_per_dispatch)
    return fn(state, data_dev[b], int(self.offsets[-1]), offset, b, self.perm_key,
              self.step_key, num_steps)

  def event_intervals(self):
    return (self.config.eval_interval,)

  def check_resume(self, saved_record, step):
    saved = saved_record["config"]
    if saved.get("vocab_sha256") != self.config.vocab_sha256:
      raise CheckpointError(
          f"the checkpoint's vocabulary ({saved.get('vocab_size')} words) is not the one "
          f"{self.train_path} gives ({self.config.vocab_size} words, min_count "
          f"{self.config.min_count}): other training data? use another --workdir")

  def evaluate(self, params) -> dict:
    return evaluate(self.setup.model, sharding.local_copy(params), *self.dev,
                    self.config.buckets, self.config.eval_batch_size)

  def start(self, run, state):
    if run.writer:
      write_atomic(run.workdir / VOCAB_FILE, words.vocab_json(self.vocab))

  def events(self, run, step, state):
    if not run.due(step, self.config.eval_interval):
      return []
    result = self.evaluate(state.ema_params)
    run.write(f"step {step}: dev accuracy {result['dev_accuracy']:.2f}%, loss "
              f"{result['dev_loss']:.4f}")
    return [{"step": step, "kind": "eval", "dev_loss": result["dev_loss"],
             "dev_accuracy": result["dev_accuracy"]}]

  def finish(self, run, state):
    rows, evals = run.log.rows(), run.log.rows("eval")
    result = {"step": self.config.num_steps, "encoder": self.config.encoder,
              **self.evaluate(state.ema_params),
              "params": int(sum(np.size(p) for p in jax.tree.leaves(state.params))),
              "vocab_size": len(self.vocab),
              "train_seconds": rows[-1]["wall_s"] if rows else 0.0}
    if run.writer:
      write_atomic(run.workdir / VOCAB_FILE, words.vocab_json(self.vocab))
      write_atomic(run.workdir / "eval.json", json.dumps(result, indent=2) + "\n")
      if rows:
        percent = [{**r, "accuracy": 100 * r["accuracy"]} for r in rows]
        plotting.save_curves(run.workdir / "loss_curve.png", [
            {"train": [(rows, "loss")], "points": [(evals, "dev_loss", "dev")],
             "ylabel": "cross-entropy (nats)"},
            {"train": [(percent, "accuracy")], "points": [(evals, "dev_accuracy", "dev")],
             "ylabel": "accuracy (%)"}],
            title=f"{self.config.encoder} on SST-2")
    return {"eval": result}


def train_classifier(config, workdir) -> dict:
  """Trains (or resumes) the classifier of `config` in `workdir`; returns its summary."""
  return loop.train(ClassifierFamily, config, workdir)


def read_vocab(workdir, config) -> tuple:
  """The run's vocabulary (vocab.json), checked against its checkpoint's record."""
  path = Path(workdir) / VOCAB_FILE
  try:
    vocab = tuple(json.loads(path.read_text())["words"])
  except FileNotFoundError:
    raise CheckpointError(f"{path}: not found; the checkpoints need their vocabulary") from None
  except (OSError, ValueError, KeyError, TypeError) as err:
    raise CheckpointError(f"{path}: unreadable ({type(err).__name__})") from None
  if words.vocab_sha256(vocab) != config.vocab_sha256:
    raise CheckpointError(f"{path} is not the vocabulary the checkpoint was trained with")
  return vocab


def restore_classifier(workdir):
  """(model, params, config, vocab, step) of the newest checkpoint of a classifier run."""
  if not Path(workdir).is_dir():
    raise WorkdirError(f"workdir {workdir} does not exist", field="workdir")
  folder = checkpoint.checkpoint_dir(workdir)
  manager = checkpoint.open_manager(workdir, max_to_keep=None, create=False) \
      if folder.is_dir() else None
  try:
    step = None if manager is None else manager.latest_step()
    if step is None:
      raise CheckpointError(f"no checkpoint in {folder}")
    record = checkpoint.read_record(manager, step, ADDED_KEYS)
    if record["family"] != NAME:
      raise CheckpointError(f"{workdir} holds a {record['family']!r} run, not a classifier's")
    config = ml_collections.ConfigDict(record["config"])
    vocab = read_vocab(workdir, config)
    setup = build_setup(config)
    abstract = jax.eval_shape(lambda: init_state(setup, jax.random.key(0)))
    state = checkpoint.restore_step(manager, step, abstract, record, RESUMABLE,
                                    added_keys=ADDED_KEYS)
  finally:
    if manager is not None:
      manager.close()
  return setup.model, state.ema_params, config, vocab, step


def predict(classifier, sentences, source: str = "input") -> tuple[np.ndarray, np.ndarray]:
  """(labels_N, p_positive_N) of raw sentences, in order: each tokenized as the training data
  were, the newest checkpoint of `classifier` deciding (label 1: positive, p_positive > 0.5).

  classifier: a run's workdir, or what restore_classifier returned (to restore it once).
  """
  token_lists = [words.tokenize(s) for s in sentences]
  if not token_lists:
    raise DataError(f"{source}: no sentences to classify")
  empty = next((i for i, t in enumerate(token_lists) if not t), None)
  if empty is not None:
    raise DataError(f"{source}: line {empty + 1} is empty")
  restored = classifier if isinstance(classifier, tuple) else restore_classifier(classifier)
  model, params, config, vocab, _ = restored
  index = words.lookup(vocab)
  logits_N = logits_of_ids(model, params, encode_sentences(token_lists, index, config),
                           config.buckets, config.eval_batch_size)
  p_positive_N = 1.0 / (1.0 + np.exp(-logits_N.astype(np.float64)))
  return (logits_N > 0).astype(np.int32), p_positive_N.astype(np.float32)
