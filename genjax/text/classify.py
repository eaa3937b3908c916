"""The sentence classifier on the core loop: SST-2 (or one's own labelled files, any number
of classes) grouped by length, per-example cross-entropy (sigmoid for two classes, softmax for
more), AdamW on a warmup+cosine schedule, the dev set evaluated as it trains, and
`predict_classes` for raw text.

Sentences are grouped into length buckets (e.g. up to 8, 16, 32, 64 tokens), each bucket one
padded array on the device. An epoch walks the buckets in order, each bucket's batches in a
permutation drawn on the device from fold_in(fold_in(key, epoch), bucket); a bucket's last
batch wraps around to its first sentences, so every sentence is seen once or twice an epoch.
A chunk of steps never leaves its bucket (`chunk_limit`), so each bucket's shape compiles once.
"""

import dataclasses
import functools
import json
from pathlib import Path

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from genjax.core import config as config_lib, loop, plotting, runner, runs, schedules
from genjax.core import sharding
from genjax.core.config import Static, recipe_of
from genjax.core.ema import ema_copy, ema_update
from genjax.core.errors import CheckpointError, ConfigError, DataError, field_error
from genjax.core.files import write_atomic
from genjax.core.optimizers import decay_mask
from genjax.data import sst2
from genjax.text import labelled, words
from genjax.text.classifier_models import ENCODERS, POOLINGS, build_classifier, num_classes
from genjax.text.classify_eval import (evaluate, logits_of, logits_of_ids,  # noqa: F401
                                       probabilities)
from genjax.text.sentences import Bucket, encode_sentences, make_buckets

NAME = "classifier"
METRIC_NAMES = ("loss", "accuracy")
VOCAB_FILE = "vocab.json"
SST2_CLASSES = ("negative", "positive")  # SST-2's labels 0 and 1
HOST_KEYS = ("model", "dataset", "data_dir", "train_file", "dev_file", "text_column",
             "label_column", "seed", "num_steps", "vocab_sha256",
             "eval_interval", "eval_batch_size", "log_interval", "print_interval",
             "checkpoint_interval", "keep_checkpoints", "steps_per_dispatch", "progress",
             "num_devices")
# The vocabulary is checked by check_resume, with its own message.
RESUMABLE = config_lib.LOOP_RESUMABLE | {"eval_interval", "eval_batch_size", "vocab_size",
                                         "vocab_sha256"}


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
    if logits_B.ndim == 1:  # two classes: one logit, the log-odds of class 1
      loss_B = optax.sigmoid_binary_cross_entropy(logits_B, labels_B.astype(jnp.float32))
      return loss_B.mean(), jnp.mean((logits_B > 0) == (labels_B == 1))
    loss_B = optax.softmax_cross_entropy_with_integer_labels(logits_B, labels_B)
    return loss_B.mean(), jnp.mean(jnp.argmax(logits_B, -1) == labels_B)

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
  for key in ("text_column", "label_column"):
    if not isinstance(config[key], str) or not config[key]:
      raise field_error(f"config.{key}", f"must name a column of the files, got {config[key]!r}")
  if bool(config.train_file) != bool(config.dev_file):
    given, missing = ("train_file", "dev_file") if config.train_file else ("dev_file", "train_file")
    raise field_error(f"config.{missing}", f"is needed with config.{given}: the classes come "
                      "from the training file, and the development file measures them")


def labelled_splits(config) -> tuple[tuple, tuple, tuple]:
  """((train sentences, labels_N, file), (dev sentences, labels_N), class names): SST-2's
  splits, or the rows of config.train_file and config.dev_file; the training split limited by
  config.train_limit."""
  if config.train_file:
    column = config.label_column
    train = labelled.read_labelled(config.train_file, config.text_column, column)
    dev = labelled.read_labelled(config.dev_file, config.text_column, column)
    names = labelled.class_names(train, column)
    train = (train.sentences, labelled.label_ids(train, names, column), train.path)
    dev = (dev.sentences, labelled.label_ids(dev, names, column))
  else:
    train, dev = (sst2.load_split(split, config.data_dir or None) for split in ("train", "dev"))
    train, dev, names = (train.sentences, train.labels_N, train.path), dev[:2], SST2_CLASSES
  sentences, labels_N, path = train
  limit = config.train_limit or len(sentences)
  sentences, labels_N = sentences[:limit], labels_N[:limit]
  longest = max(len(s) for s in sentences)
  if longest > config.buckets[-1]:
    raise field_error("config.buckets", f"end at {config.buckets[-1]} tokens, but {path} "
                      f"has a sentence of {longest}; add a longer bucket")
  return (sentences, labels_N, path), dev, names


class ClassifierFamily(loop.Family):
  name = NAME
  readers = ("classify_text.py", "judge_text.py")
  make_static, make_state = staticmethod(build_setup), staticmethod(init_state)
  metric_names = METRIC_NAMES
  resumable = RESUMABLE
  check = staticmethod(validate)

  def __init__(self, config, mesh):
    super().__init__(config, mesh)
    sharding.check_divisible(config.batch_size, mesh)
    self.init_key, self.perm_key, self.step_key = jax.random.split(
        jax.random.key(config.seed), 3)

  def load_data(self):
    c = self.config
    (sentences, labels_N, self.train_path), dev, names = labelled_splits(c)
    self.vocab = words.build_vocab(sentences, c.min_count)
    index = words.lookup(self.vocab)
    buckets = make_buckets(encode_sentences(sentences, index, c), labels_N, c.buckets)
    # Batches per bucket; an epoch is all of them, bucket after bucket (offsets: where each
    # bucket's run begins), or in shuffled segments of one bucket (segments_of_epoch).
    self.offsets = np.cumsum([0] + [-(-b.labels_N.size // c.batch_size) for b in buckets])
    self._segments = {}
    # The run's config (and so its checkpoints) records what the data gave.
    c.vocab_size, c.vocab_sha256 = len(self.vocab), words.vocab_sha256(self.vocab)
    c.class_names = names
    c.steps_per_epoch = int(self.offsets[-1])
    if not c.num_steps:
      c.num_steps = c.num_epochs * c.steps_per_epoch
    self.setup = build_setup(c, self.mesh)
    self.dev = (encode_sentences(dev[0], index, c), dev[1])
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
                    self.config.buckets, self.config.eval_batch_size, num_classes(self.config))

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
              "vocab_size": len(self.vocab), "class_names": list(self.config.class_names),
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
            title=f"{self.config.encoder} on {self.config.train_file or 'SST-2'}")
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
  """(model, params, config, vocab, step) of the newest checkpoint of a classifier run; params
  are the weights' moving average."""
  run = runs.restore(workdir, families=(NAME,))
  vocab = read_vocab(workdir, run.config)
  return run.static.model, run.state.ema_params, run.config, vocab, run.step


def class_names_of(config) -> tuple:
  """A run's class names in index order, as its data gave them when it started."""
  return tuple(config.class_names)


def predict_classes(classifier, sentences, source: str = "input"):
  """(labels_N, probs_NxK, class names) of raw sentences, in order: each tokenized as the
  training data were, the newest checkpoint of `classifier` deciding (the likeliest class). A
  sentence without words (an empty line) is skipped: label -1, probabilities NaN, so the rows
  stay aligned with the sentences; none with words is an error.

  classifier: a run's workdir, or what restore_classifier returned (to restore it once).
  """
  token_lists = [words.tokenize(s) for s in sentences]
  kept = [i for i, tokens in enumerate(token_lists) if tokens]
  if not kept:
    raise DataError(f"{source}: no words to classify")
  restored = classifier if isinstance(classifier, tuple) else restore_classifier(classifier)
  model, params, config, vocab, _ = restored
  names = class_names_of(config)
  encoded = encode_sentences([token_lists[i] for i in kept], words.lookup(vocab), config)
  logits = logits_of_ids(model, params, encoded, config.buckets, config.eval_batch_size)
  labels_N = np.full(len(sentences), -1, np.int32)
  probs_NxK = np.full((len(sentences), len(names)), np.nan)
  labels_N[kept] = logits > 0 if logits.ndim == 1 else logits.argmax(1)
  probs_NxK[kept] = probabilities(logits)
  return labels_N, probs_NxK, names


def predict(classifier, sentences, source: str = "input") -> tuple[np.ndarray, np.ndarray]:
  """(labels_N, p_positive_N) of a binary classifier (label 1: positive, p_positive > 0.5);
  predict_classes' rules for skipped sentences (p_positive NaN)."""
  labels_N, probs_NxK, names = predict_classes(classifier, sentences, source)
  if len(names) != 2:
    raise ConfigError(f"the classifier has {len(names)} classes ({', '.join(names)}); this "
                      "reads a binary one (positive or not)")
  return labels_N, probs_NxK[:, 1].astype(np.float32)
