"""AE/VAE/IWAE training and evaluation: the GAN loop's conventions, a VAE's figures and pictures."""

import json
import math
import time
from pathlib import Path

import jax
import ml_collections
import numpy as np
import tqdm

from genjax import (checkpoint, data, plotting, sharding, vae_data, vae_eval, vae_plots,
                    vae_steps)
from genjax.configs.vae_mnist import TRAIN_SIZE
from genjax.errors import ConfigError
from genjax.train import (MetricsLog, _is_int, _save_if_finite, all_finite, log_finished_chunk,
                          next_chunk_length, prepare_workdir)
from genjax.vae_models import NUM_CLASSES
from genjax.vae_state import IDENTITY_KEYS, VAESetup, build_setup, init_state, restore_identity

MODELS = tuple(vae_steps.OBJECTIVES)
CHOICES = {"model": MODELS, "dataset": data.DATASETS, "binarization": vae_data.BINARIZATIONS,
           "decoder": ("bernoulli", "gaussian"), "arch": ("mlp", "conv"),
           "activation": ("tanh", "softplus", "relu"),
           "lr_schedule": ("constant", "cosine", "burda")}
POSITIVE_INT_KEYS = ("batch_size", "latent_dim", "iwae_k", "sample_interval", "log_interval",
                     "checkpoint_interval", "keep_checkpoints", "steps_per_dispatch", "grid_size",
                     "eval_num", "eval_iwae_k", "eval_batch", "eval_k_chunk", "eval_interval_num")
NON_NEGATIVE_INT_KEYS = ("num_steps", "eval_nll_k", "eval_interval", "binarize_seed",
                         "num_devices")
POSITIVE_KEYS = ("learning_rate", "adam_eps", "decoder_std", "num_epochs")


def validate_config(config: ml_collections.ConfigDict) -> None:
  """Raises ConfigError naming the first bad field, before anything is computed or written."""
  if not isinstance(config.conditional, bool):
    raise ConfigError(f"config.conditional must be True or False, got {config.conditional!r}")
  for key, choices in CHOICES.items():
    if config[key] not in choices:
      raise ConfigError(f"config.{key} {config[key]!r} is unknown; choose one of "
                        f"{', '.join(choices)}")
  for key in POSITIVE_INT_KEYS + NON_NEGATIVE_INT_KEYS:
    low = 1 if key in POSITIVE_INT_KEYS else 0
    if not _is_int(config[key]) or config[key] < low:
      kind = "positive" if low else "non-negative"
      raise ConfigError(f"config.{key} must be a {kind} integer, got {config[key]!r}")
  for key in POSITIVE_KEYS:
    if not config[key] > 0:
      raise ConfigError(f"config.{key} must be positive, got {config[key]!r}")
  for key in ("beta1", "beta2"):
    if not 0 <= config[key] < 1:
      raise ConfigError(f"config.{key} must be in [0, 1), got {config[key]!r}")
  for key in ("beta", "final_lr_fraction"):
    if not config[key] >= 0:
      raise ConfigError(f"config.{key} must be non-negative, got {config[key]!r}")
  for key in ("hidden", "conv_channels"):
    if not all(_is_int(w) and w > 0 for w in config[key]):
      raise ConfigError(f"config.{key} must be a list of positive widths, got {config[key]!r}")
  if config.arch == "conv" and not 1 <= len(config.conv_channels) <= 2:
    raise ConfigError("config.conv_channels must have 1 or 2 layers (28 -> 14 -> 7), "
                      f"got {config.conv_channels!r}")
  if config.eval_nll_k and config.eval_nll_k % config.eval_iwae_k:
    raise ConfigError(f"config.eval_nll_k={config.eval_nll_k} must be 0 or a multiple of "
                      f"config.eval_iwae_k={config.eval_iwae_k} (both come from the same draws)")


def resolve_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A validated copy with num_steps filled in from num_epochs when it is 0."""
  validate_config(config)
  config = config.copy_and_resolve_references()
  if not config.num_steps:
    config.num_steps = math.ceil(config.num_epochs * TRAIN_SIZE / config.batch_size)
  return config


def restore_or_init(setup: VAESetup, manager, init_key, config):
  """(state, start_step): restored (and so checked against this config) or fresh, replicated."""
  mesh = setup.mesh or sharding.make_mesh(1)
  abstract_state = sharding.abstract_replicated(
      jax.eval_shape(lambda: init_state(setup, init_key)), mesh)
  state, start_step = checkpoint.restore_latest(manager, abstract_state, restore_identity(config))
  if state is None:
    state, start_step = init_state(setup, init_key), 0
  return sharding.put_replicated(state, mesh), start_step


def grid_inputs(config, key, x_test, labels_test):
  """(z or x, labels or None) of the training grids: prior draws z, test images x for an AE.

  A conditional model's row k gets label k % NUM_CLASSES (an AE's: its images' labels).
  """
  n = config.grid_size ** 2
  if config.model == "ae":
    return x_test[:n], labels_test[:n] if config.conditional else None
  z = jax.random.normal(key, (n, config.latent_dim))
  return z, (np.arange(n) // config.grid_size) % NUM_CLASSES if config.conditional else None


def save_prior_grid(setup: VAESetup, state, grid_in, workdir: Path, config, step: int) -> None:
  """The GAN's images/<dataset>_<step>.png: decoded prior draws z, or an AE's reconstructions
  of test images x (it has no prior to sample); grid_in is (z or x, labels or None)."""
  inputs, labels = grid_in
  y = None if labels is None else vae_data.one_hot(labels)
  if setup.model == "ae":
    inputs = vae_eval.encode_all(setup, state.params, inputs, labels_N=labels)
  images = vae_plots.decode_images(setup, state.params, inputs, y)
  plotting.save_image_grid(images, workdir / "images" / f"{config.dataset}_{step}.png",
                           config.grid_size, config.grid_size,
                           title=f"{config.model} {config.dataset} step {step}")


def quick_eval(setup: VAESetup, state, test, key, config) -> dict:
  """Test neg ELBO and IWAE bound on a subset, during training; test is (x, labels or None)."""
  x_test, labels_test = test
  n = config.eval_interval_num
  return vae_eval.evaluate(setup, state.params, x_test[:n], key, iwae_k=config.eval_iwae_k,
                           nll_k=0, batch=config.eval_batch, k_chunk=config.eval_k_chunk,
                           labels_N=None if labels_test is None else labels_test[:n])


def train_and_evaluate(config: ml_collections.ConfigDict, workdir) -> dict:
  """Trains (or resumes) the model in `workdir`, then writes eval.json and the pictures."""
  config = resolve_config(config)
  mesh = sharding.make_mesh(config.num_devices)
  sharding.check_divisible(config.batch_size, mesh)
  workdir = prepare_workdir(workdir)
  pixels_NxHxW, labels_N = vae_data.load_pixels(config, "train")
  x_test, labels_test = vae_data.eval_inputs(config)
  # What the model is given: labels for a conditional one, nothing otherwise.
  model_test = (x_test, labels_test if config.conditional else None)
  setup = build_setup(config, mesh)
  init_key, train_key, grid_key, eval_key, picture_key = jax.random.split(
      jax.random.key(config.seed), 5)
  manager = checkpoint.open_manager(workdir, config.keep_checkpoints)
  # Restore (and so reject foreign or corrupt checkpoints) before writing anything.
  try:
    state, start_step = restore_or_init(setup, manager, init_key, config)
  except BaseException:
    manager.close()
    raise
  (workdir / "config.json").write_text(config.to_json_best_effort(indent=2, sort_keys=True))
  grid_in = grid_inputs(config, grid_key, x_test, labels_test)
  if start_step == 0:
    save_prior_grid(setup, state, grid_in, workdir, config, 0)
  run = TrainingRun(setup, config, workdir, manager, model_test, eval_key, grid_in)
  train_data = (pixels_NxHxW, labels_N if config.conditional else None)
  t0 = time.perf_counter()
  state, step = run.train(state, start_step, sharding.put_replicated(train_data, mesh),
                           train_key)
  train_s = time.perf_counter() - t0
  return finish(setup, state, config, workdir, start_step, step, train_s,
                x_test, labels_test, (eval_key, picture_key))


class TrainingRun:
  """The host loop: chunks of steps on device, then logs, grids, evals and checkpoints."""

  def __init__(self, setup, config, workdir, manager, test, eval_key, grid_in):
    self.setup, self.config, self.workdir, self.manager = setup, config, workdir, manager
    self.test, self.eval_key, self.grid_in = test, eval_key, grid_in
    self.names = vae_steps.METRIC_NAMES[config.model]

  def train(self, state, start_step: int, train_data_dev, train_key):
    """train_data_dev: (pixels, labels or None) on device; returns (state, step)."""
    pixels_dev, labels_dev = train_data_dev
    config, names = self.config, self.names
    log = MetricsLog(self.workdir / "metrics.jsonl", start_step)
    eval_log = MetricsLog(self.workdir / "eval_metrics.jsonl", start_step)
    step, last_saved, t0 = start_step, start_step, time.perf_counter()
    bar = tqdm.tqdm(total=config.num_steps, initial=start_step, disable=not config.progress,
                    unit="it", dynamic_ncols=True, desc=f"{config.model} {config.dataset}")
    try:
      while step < config.num_steps:
        n = next_chunk_length(step, config)  # stops at grids, evals and checkpoints
        state, metrics = vae_steps.train_chunk(self.setup, state, pixels_dev, train_key,
                                               config.steps_per_dispatch, n, labels_dev)
        rows = log_finished_chunk(log, metrics, step, n, t0, config.log_interval, last_saved,
                                  checkpoint.checkpoint_dir(self.workdir))
        step += n
        bar.update(n)
        bar.set_postfix({k: f"{rows[-1][k]:.2f}" for k in names})
        last_saved = self.events(state, step, eval_log, bar, last_saved)
    except KeyboardInterrupt:
      # A chunk is all-or-nothing: keep the last completed one so a rerun resumes from there.
      if step > last_saved and bool(all_finite(state)):
        checkpoint.save(self.manager, step, state, self.identity)
      raise
    finally:
      bar.close()
      self.manager.close()
    return state, step

  @property
  def identity(self) -> dict:
    return checkpoint.identity_of(self.config, IDENTITY_KEYS)

  def events(self, state, step: int, eval_log: MetricsLog, bar, last_saved: int) -> int:
    """Grids, quick evals and checkpoints due at `step`; returns the last saved step."""
    config, end = self.config, step == self.config.num_steps
    if step % config.sample_interval == 0 or end:
      save_prior_grid(self.setup, state, self.grid_in, self.workdir, config, step)
    if config.eval_interval and (step % config.eval_interval == 0 or end):
      result = quick_eval(self.setup, state, self.test, self.eval_key, config)
      eval_log.append([{"step": step, **result}])
      figures = {k: v for k, v in result.items() if k in ("neg_elbo", "neg_iwae_bound", "recon")}
      bar.write(f"step {step}: test ({result['num_examples']} examples, nats) "
                + ", ".join(f"{k} {v:.2f}" for k, v in figures.items()))
    if step % config.checkpoint_interval == 0 or end:
      last_saved = _save_if_finite(self.manager, step, state, self.identity, last_saved)
    return last_saved


def finish(setup, state, config, workdir: Path, start_step: int, step: int, train_s: float,
           x_test, labels_test, keys) -> dict:
  """Loss curve, the final test figures (eval.json) and the pictures; the run's summary."""
  rows = MetricsLog.read(workdir / "metrics.jsonl")
  if rows:
    vae_plots.save_training_curves(rows, workdir / "loss_curve.png",
                                   title=f"{config.model} on {config.dataset}",
                                   eval_rows=MetricsLog.read(workdir / "eval_metrics.jsonl"))
  x_eval, (eval_key, picture_key) = x_test[:config.eval_num], keys
  # A conditional model is scored given the true labels: bounds on log p(x|y).
  labels_eval = labels_test[:config.eval_num] if config.conditional else None
  result = vae_eval.evaluate(setup, state.params, x_eval, eval_key, iwae_k=config.eval_iwae_k,
                             nll_k=config.eval_nll_k, batch=config.eval_batch,
                             k_chunk=config.eval_k_chunk, progress=config.progress,
                             labels_N=labels_eval)
  codes = vae_eval.encode_all(setup, state.params, x_eval, labels_N=labels_eval)
  result = {"step": step, "model": config.model, "dataset": config.dataset,
            "binarization": config.binarization, "conditional": config.conditional, **result,
            "active_units": vae_eval.active_units(codes)}
  (workdir / "eval.json").write_text(json.dumps(result, indent=2) + "\n")
  pictures = vae_plots.save_pictures(setup, state.params, x_test, labels_test, workdir,
                                     picture_key, config.grid_size,
                                     f"{config.model} {config.dataset}")
  return {"workdir": str(workdir), "start_step": start_step, "step": step, "train_s": train_s,
          "iters_per_s": (step - start_step) / max(train_s, 1e-9),
          "final": rows[-1] if rows else None, "eval": result, "pictures": pictures}
