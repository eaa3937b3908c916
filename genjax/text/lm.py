"""The character language model on the core loop: random windows of the training text drawn on
the device, per-character cross-entropy, the validation loss over the whole validation split,
samples from a fixed prompt and key, and eval.json at the end."""

import dataclasses
import functools
import json
import math

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from genjax.core import config as config_lib, loop, plotting, runner, schedules, sharding
from genjax.core.config import Static, recipe_of
from genjax.core.ema import ema_copy, ema_decay_at, ema_update
from genjax.core.errors import CheckpointError, DataError, field_error
from genjax.core.optimizers import decay_mask
from genjax.nn.precision import resolve_compute_dtype
from genjax.text import chars, corpora
from genjax.text.generate import generate_ids
from genjax.text.lm_models import build_lm
from genjax.text.windows import (eval_windows, first_line_mask, random_windows,
                                  withhold_labels)

MODELS = ("transformer", "lstm")
METRIC_NAMES = ("loss",)  # and label_loss where config.label_loss_weight > 0
EVAL_WINDOWS = 64  # validation windows per dispatch
MAX_CONTEXT = 8192  # positions a Transformer may be given (memory grows with their square)
HOST_KEYS = ("dataset", "text_file", "data_dir", "seed", "validation_fraction", "log_interval",
             "print_interval", "eval_interval", "sample_interval", "sample_chars",
             "sample_prompt", "checkpoint_interval", "keep_checkpoints", "steps_per_dispatch",
             "progress", "num_devices", "cpu_devices")
RESUMABLE = config_lib.LOOP_RESUMABLE | {"eval_interval", "sample_interval", "sample_chars",
                                         "sample_prompt", "vocab", "cpu_devices"}


@dataclasses.dataclass(frozen=True, eq=False)
class LMSetup(Static):
  """What never changes during training: the network, the optimizer, the recipe."""

  model: flax.linen.Module
  tx: optax.GradientTransformation
  tx_schedule: optax.Schedule  # the learning rate of each step
  recipe: ml_collections.FrozenConfigDict
  mesh: object = None


@flax.struct.dataclass
class LMState:
  step: jnp.ndarray  # int32 scalar: steps done
  params: flax.core.FrozenDict
  opt_state: optax.OptState
  ema_params: dict  # the parameters' moving average (config.ema_decay), or {} without one


def eval_params(setup: LMSetup, state: LMState):
  """The weights a run is evaluated, sampled and scored with: the average where it keeps one."""
  return state.ema_params if setup.recipe.ema_decay else state.params


def metric_names(config) -> tuple:
  return METRIC_NAMES + (("label_loss",) if config.label_loss_weight else ())


def muon(config, schedule) -> optax.GradientTransformation:
  """Muon (momentum orthogonalized by Newton-Schulz) on the blocks' dense kernels, its updates
  scaled to AdamW's RMS (so one learning rate serves both); AdamW, with optax.contrib.muon's
  Nesterov momentum, on the embedding, positions, LayerNorms and biases. Weight decay reaches
  the parameters of optimizers.decay_mask under both halves, as under optimizer=adamw. For the
  Transformer only (validate refuses it with model=lstm, whose output layer is a dense kernel
  Muon would orthogonalize)."""
  def halves(params):
    return jax.tree_util.tree_map_with_path(
        lambda path, p: "muon" if p.ndim == 2 and path[-1].key == "kernel" else "adam", params)

  # optax.contrib.muon's own Adam half would decay every parameter it holds (biases too) or
  # none: it takes a decay factor without a mask. So each half is built here, on its labels.
  return optax.partition({
      "muon": optax.contrib.muon(schedule, weight_decay=config.weight_decay,
                                 weight_decay_mask=decay_mask, consistent_rms=0.2),
      "adam": optax.adamw(schedule, b1=config.beta1, b2=config.beta2,
                          weight_decay=config.weight_decay, mask=decay_mask, nesterov=True)},
      halves)


def build_setup(config, mesh=None) -> LMSetup:
  """The static definition for a resolved config (its vocabulary filled in)."""
  schedule = schedules.optax_schedule(
      "warmup_cosine", config.learning_rate, config.num_steps,
      final_fraction=config.final_lr_fraction, warmup_steps=config.warmup_steps)
  if config.optimizer == "muon":
    step_rule = muon(config, schedule)
  else:
    step_rule = optax.adamw(schedule, b1=config.beta1, b2=config.beta2,
                            weight_decay=config.weight_decay, mask=decay_mask)
  tx = optax.chain(optax.clip_by_global_norm(config.grad_clip), step_rule)
  # num_steps shapes the schedule and the vocabulary the model: both are in the recipe.
  return LMSetup(model=build_lm(config, len(config.vocab)), tx=tx, tx_schedule=schedule,
                 recipe=recipe_of(config, HOST_KEYS), mesh=mesh)


@functools.partial(jax.jit, static_argnums=0)
def init_state(setup: LMSetup, key) -> LMState:
  tokens = jnp.zeros((1, setup.recipe.context), jnp.int32)
  params = setup.model.init(key, tokens)["params"]
  return LMState(step=jnp.zeros((), jnp.int32), params=params, opt_state=setup.tx.init(params),
                 ema_params=ema_copy(params) if setup.recipe.ema_decay else {})


def loss_BxT(setup: LMSetup, params, inputs_BxT, targets_BxT, train: bool = False, rng=None):
  """Cross-entropy of every next character, in nats."""
  logits = setup.model.apply({"params": params}, inputs_BxT, train=train,
                             rngs=None if rng is None else {"dropout": rng})
  return optax.softmax_cross_entropy_with_integer_labels(logits, targets_BxT)


def label_nll_B(nats_BxT, flipped_nats_BxT, line_BxT):
  """-log p(label | line) by Bayes' rule from the model's own likelihoods of the window's first
  line under its label and under the other one (equal priors): softplus(nll_true - nll_other)."""
  nll_true_B = jnp.sum(jnp.where(line_BxT, nats_BxT, 0.0), axis=1)
  nll_other_B = jnp.sum(jnp.where(line_BxT, flipped_nats_BxT, 0.0), axis=1)
  return jax.nn.softplus(nll_true_B - nll_other_B)


def generative_discriminative_loss(setup, params, inputs_BxT, targets_BxT, rng):
  """(mean next-character nats, mean label nats): one pass over the windows as they are and
  with each window's label swapped for the other, so the model is also trained to make its
  label matter (the generative-discriminative loss of GeDi, Krause et al. 2020). Windows whose
  label was withheld count in the first term only."""
  label_ids = [setup.recipe.vocab.index(c) for c in corpora.LABEL_CHARS]
  label_B = inputs_BxT[:, 1]
  labelled_B = (label_B == label_ids[0]) | (label_B == label_ids[1])
  flipped_BxT = inputs_BxT.at[:, 1].set(jnp.where(label_B == label_ids[0], label_ids[1],
                                                  label_ids[0]))
  both_nats = loss_BxT(setup, params, jnp.concatenate([inputs_BxT, flipped_BxT]),
                       jnp.concatenate([targets_BxT, targets_BxT]), True, rng)
  nats_BxT, flipped_nats_BxT = jnp.split(both_nats, 2)
  line_BxT = first_line_mask(targets_BxT, setup.recipe.vocab.index("\n"))
  label_nats_B = label_nll_B(nats_BxT, flipped_nats_BxT, line_BxT)
  label_nats = jnp.sum(jnp.where(labelled_B, label_nats_B, 0.0)) / jnp.maximum(
      labelled_B.sum(), 1)
  return nats_BxT.mean(), label_nats


def train_step(setup: LMSetup, state: LMState, data, base_key):
  """One step of config.optimizer; its randomness is fold_in(base_key, step), so a resume
  replays it. data: {"tokens": the training text's ids, "starts": allowed window offsets or
  None}."""
  window_key, dropout_key = jax.random.split(jax.random.fold_in(base_key, state.step))
  recipe = setup.recipe
  inputs, targets = random_windows(data, window_key, recipe.batch_size, recipe.context)
  if recipe.label_dropout:
    inputs = withhold_labels(inputs, jax.random.fold_in(window_key, 1), recipe.label_dropout,
                             recipe.vocab.index(corpora.NULL_LABEL))
  # Each device takes a slice of the same global batch; XLA all-reduces the gradients.
  inputs, targets = (sharding.constrain_batch(a, setup.mesh) for a in (inputs, targets))
  if recipe.label_loss_weight:
    def loss_fn(params):
      nats, label_nats = generative_discriminative_loss(setup, params, inputs, targets,
                                                        dropout_key)
      return nats + recipe.label_loss_weight * label_nats, {"loss": nats,
                                                            "label_loss": label_nats}
  else:
    def loss_fn(params):
      nats = loss_BxT(setup, params, inputs, targets, True, dropout_key).mean()
      return nats, {"loss": nats}
  (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  updates, opt_state = setup.tx.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  if recipe.ema_decay:
    state = state.replace(ema_params=ema_update(
        state.ema_params, params, ema_decay_at(recipe.ema_decay, state.step)))
  return state.replace(step=state.step + 1, params=params, opt_state=opt_state), metrics


@functools.lru_cache(maxsize=None)
def compiled_chunk(setup: LMSetup, max_steps: int):
  def chunk(state, data, base_key, num_steps):
    step_fn = lambda s: train_step(setup, s, data, base_key)  # noqa: E731
    return runner.run_steps(step_fn, state, num_steps, max_steps, metric_names(setup.recipe))
  return runner.jit_chunk(chunk, setup.mesh)


@functools.partial(jax.jit, static_argnums=0)
def _masked_nats(setup, params, inputs_WxT, targets_WxT, mask_WxT):
  return jnp.sum(jnp.where(mask_WxT, loss_BxT(setup, params, inputs_WxT, targets_WxT), 0.0))


def mean_nats(setup: LMSetup, params, tokens_M, stride: int | None = None) -> float:
  """Mean cross-entropy per predicted character over the whole text (deterministic), in
  eval_windows' windows: consecutive ones, or a window every `stride` characters."""
  recipe = setup.recipe
  by_lines = recipe.window_starts == "lines"
  windows = eval_windows(np.asarray(tokens_M), recipe.context,
                         recipe.vocab.find("\n") if by_lines else None, stride)
  count = windows[0].shape[0]
  pad = -count % EVAL_WINDOWS  # whole batches: one compiled shape
  windows = [np.concatenate([w, np.zeros((pad, *w.shape[1:]), w.dtype)]) for w in windows]
  total = sum(float(_masked_nats(setup, params, *(w[i:i + EVAL_WINDOWS] for w in windows)))
              for i in range(0, count + pad, EVAL_WINDOWS))
  return total / max(1, int(windows[2].sum()))


def validate(config) -> None:
  """Raises ConfigError naming the first bad field, before anything is computed or written."""
  c = config_lib
  c.check_loop_keys(config)
  c.check_choice(config, "model", MODELS)
  c.check_choice(config, "dataset", corpora.DATASETS)
  c.check_choice(config, "compute_dtype", ("auto", "float32", "bfloat16"))
  c.check_choice(config, "window_starts", ("any", "lines"))
  c.check_choice(config, "optimizer", ("adamw", "muon"))
  c.check_ints(config, ("batch_size", "context", "width", "num_layers", "num_heads",
                        "sample_chars", "sample_interval", "cpu_devices"))
  c.check_ints(config, ("eval_interval", "warmup_steps", "embed_dim"), low=0)
  c.check_numbers(config, ("learning_rate", "grad_clip"), strict=True)
  c.check_numbers(config, ("weight_decay", "final_lr_fraction"))
  c.check_range(config, ("dropout", "beta1", "beta2", "ema_decay"), 0.0, 1.0)
  c.check_range(config, ("validation_fraction",), 0.0, 0.5)
  c.check_range(config, ("label_dropout",), 0.0, 1.0)
  c.check_numbers(config, ("label_loss_weight",))
  # Both read a window's label as its second character: labelled lines, windows from a newline.
  for key in ("label_dropout", "label_loss_weight"):
    if config[key] and (config.dataset != "sst2_conditional" or config.window_starts != "lines"):
      raise field_error(f"config.{key}", "works on sst2_conditional's labelled lines: needs "
                        "that dataset and config.window_starts='lines'")
  if config.context > MAX_CONTEXT:
    raise field_error("config.context", f"{config.context} is longer than the model's maximum "
                      f"({MAX_CONTEXT} positions)")
  if config.model == "lstm" and config.optimizer == "muon":
    raise field_error("config.optimizer", "'muon' is for the Transformer: it would "
                      "orthogonalize the LSTM's output layer; use 'adamw' with model=lstm")
  if config.model == "transformer" and config.width % config.num_heads:
    raise field_error("config.width", f"{config.width} does not split into config.num_heads="
                      f"{config.num_heads} heads")


def prepare_text(config) -> tuple[str, np.ndarray, np.ndarray]:
  """(vocabulary, train ids, validation ids) of the corpus; checks what the config asks of it."""
  train_text, val_text, source = corpora.train_and_validation(config)
  # SST-2's dev sentences hold a few letters (accents) its training sentences never use.
  alphabet = train_text + (val_text + corpora.NULL_LABEL
                            if config.dataset == "sst2_conditional" else "")
  vocab = config.vocab or chars.build_vocab(alphabet)
  if len(train_text) <= config.context:
    raise field_error("config.context", f"{config.context} needs a training text longer than "
                      f"that; {source} gives {len(train_text)} characters")
  if len(val_text) < 2:
    raise DataError(f"{source}: {len(val_text)} validation characters; use a longer text or a "
                    "larger config.validation_fraction", field="config.validation_fraction")
  return (vocab, chars.encode(train_text, vocab, f"{source} (training split)"),
          chars.encode(val_text, vocab, f"{source} (validation split)"))


class LMFamily(loop.Family):
  name = "lm"
  readers = ("generate_text.py", "score_text.py", "judge_text.py")
  make_static, make_state = staticmethod(build_setup), staticmethod(init_state)
  metric_names = METRIC_NAMES
  resumable = RESUMABLE
  check = staticmethod(validate)

  def __init__(self, config, mesh):
    super().__init__(config, mesh)
    self.metric_names = metric_names(config)
    sharding.check_divisible(config.batch_size, mesh)
    self.init_key, self.train_key, self.sample_key = jax.random.split(
        jax.random.key(config.seed), 3)

  def load_data(self):
    vocab, train_N, self.val_M = prepare_text(self.config)
    self.config.vocab = vocab  # the run's config (and so its checkpoints) carry the vocabulary
    self.setup = build_setup(self.config, self.mesh)
    self.prompt = chars.encode(self.config.sample_prompt, vocab, "config.sample_prompt")
    starts = None
    if self.config.window_starts == "lines":
      starts = corpora.line_starts(train_N, vocab.find("\n"), self.config.context)
      if not len(starts):
        raise DataError("config.window_starts='lines' needs newlines in the training text, at "
                        "least one a window's length before its end", field="config.window_starts")
    return {"tokens": train_N, "starts": starts}

  def init_state(self):
    return init_state(self.setup, self.init_key)

  def chunk(self, state, tokens_dev, num_steps):
    return compiled_chunk(self.setup, self.config.steps_per_dispatch)(
        state, tokens_dev, self.train_key, num_steps)

  def event_intervals(self):
    return self.config.sample_interval, self.config.eval_interval

  def check_resume(self, saved_record, step):
    saved = ml_collections.ConfigDict(saved_record["config"])
    if saved.vocab != self.config.vocab:
      raise CheckpointError(f"the checkpoint's vocabulary ({len(saved.vocab)} characters) is "
                            f"not the data's ({len(self.config.vocab)}): another corpus? use "
                            "another --workdir")
    if not schedules.same_rates(build_setup(saved).tx_schedule, self.setup.tx_schedule, step):
      raise field_error("config.num_steps", f"{self.config.num_steps} would change the learning "
                        f"rates of the {step} steps already taken ({saved.num_steps} when they "
                        "were); keep it or use another --workdir")

  def events(self, run, step, state):
    config, rows = self.config, []
    if run.due(step, config.sample_interval):
      text = self.sample(eval_params(self.setup, state))
      if run.writer:
        (run.workdir / "samples").mkdir(exist_ok=True)
        (run.workdir / "samples" / f"{step}.txt").write_text(text)
    if run.due(step, config.eval_interval):
      val_loss = mean_nats(self.setup, eval_params(self.setup, state), self.val_M)
      rows.append({"step": step, "kind": "eval", "val_loss": val_loss,
                   "val_bpc": val_loss / math.log(2)})
      run.write(f"step {step}: validation loss {val_loss:.4f} nats "
                f"({val_loss / math.log(2):.4f} bits) per character")
    return rows

  def sample(self, params) -> str:
    ids = generate_ids(self.setup.model, params, jnp.asarray(self.prompt)[None],
                       self.config.sample_chars, self.sample_key, 0.8, 0)
    return corpora.readable(self.config.sample_prompt + chars.decode(ids[0], self.config.vocab),
                            self.config.dataset)

  def finish(self, run, state):
    rows, evals = run.log.rows(), run.log.rows("eval")
    if evals and evals[-1]["step"] == self.config.num_steps:
      val_loss = evals[-1]["val_loss"]
    else:
      val_loss = mean_nats(self.setup, eval_params(self.setup, state), self.val_M)
    tail = [r["loss"] for r in rows[-10:]]  # the last ten logged steps
    result = {"val_loss": val_loss, "val_bpc": val_loss / math.log(2),
              "train_loss": float(np.mean(tail)) if tail else None,
              "params": int(sum(np.size(p) for p in jax.tree.leaves(state.params))),
              "tokens_seen": self.config.num_steps * self.config.batch_size
              * self.config.context,
              "train_seconds": rows[-1]["wall_s"] if rows else 0.0,
              "step": self.config.num_steps, "model": self.config.model,
              "compute_dtype": resolve_compute_dtype(self.config.compute_dtype),
              "devices": int(self.setup.mesh.devices.size) if self.setup.mesh else 1}
    if self.config.ema_decay:  # what the average gains: the trained weights' own loss
      result["val_loss_without_ema"] = mean_nats(self.setup, state.params, self.val_M)
    if run.writer:
      (run.workdir / "eval.json").write_text(json.dumps(result, indent=2) + "\n")
      if rows:
        plotting.save_curves(run.workdir / "loss_curve.png", [{
            "train": [(rows, "loss")], "ylabel": "nats per character",
            "points": [(evals, "val_loss", "validation (the weights' average)"
                        if self.config.ema_decay else "validation")] if evals else []}],
            title=f"{self.config.model} on {self.config.text_file or self.config.dataset}")
    return {"eval": result}


def train_lm(config, workdir) -> dict:
  """Trains (or resumes) the language model of `config` in `workdir`; returns its summary."""
  return loop.train(LMFamily, config, workdir)
