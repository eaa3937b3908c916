"""GAN training loop: the host wakes only to log, draw grids and checkpoint."""

import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import tqdm

from genjax import checkpoint, data, evaluation, losses, plotting, sharding, steps
from genjax.config_defaults import config_value
from genjax.errors import ConfigError, TrainingDiverged, WorkdirError
from genjax.train_state import GAN, build_gan, generate, init_state

POSITIVE_INT_KEYS = ("batch_size", "latent_dim", "sample_interval", "log_interval",
                     "checkpoint_interval", "keep_checkpoints", "steps_per_dispatch", "grid_size",
                     "eval_num")
NON_NEGATIVE_INT_KEYS = ("num_steps", "print_interval", "num_devices", "eval_interval")
COMPUTE_DTYPES = ("float32", "bfloat16")
D_UPDATE_MODES = tuple(steps.D_UPDATES)
ARCHS = ("mlp", "dcgan")


def _is_int(value) -> bool:
  return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def validate_config(config: ml_collections.ConfigDict) -> None:
  """Raises ConfigError naming the first bad field, before anything is computed or written."""
  for key in POSITIVE_INT_KEYS:
    if not _is_int(config[key]) or config[key] <= 0:
      raise ConfigError(f"config.{key} must be a positive integer, got {config[key]!r}")
  for key in NON_NEGATIVE_INT_KEYS:
    if not _is_int(config[key]) or config[key] < 0:
      raise ConfigError(f"config.{key} must be a non-negative integer, got {config[key]!r}")
  if config.dataset not in data.DATASETS:
    raise ConfigError(f"config.dataset {config.dataset!r} is unknown; choose one of "
                      f"{', '.join(data.DATASETS)}")
  if config.d_update not in D_UPDATE_MODES:
    raise ConfigError(f"config.d_update {config.d_update!r} is unknown; choose one of "
                      f"{', '.join(D_UPDATE_MODES)}")
  if config.compute_dtype not in COMPUTE_DTYPES:
    raise ConfigError(f"config.compute_dtype {config.compute_dtype!r} is unknown; choose one of "
                      f"{', '.join(COMPUTE_DTYPES)}")
  for key in ("g_hidden", "d_hidden"):
    if not config[key] or not all(_is_int(w) and w > 0 for w in config[key]):
      raise ConfigError(f"config.{key} must be a non-empty list of positive widths, "
                        f"got {config[key]!r}")
  for key in ("learning_rate", "adam_eps"):
    if not config[key] > 0:
      raise ConfigError(f"config.{key} must be positive, got {config[key]!r}")
  for key in ("beta1", "beta2", "bn_momentum"):
    if not 0 <= config[key] < 1:
      raise ConfigError(f"config.{key} must be in [0, 1), got {config[key]!r}")
  validate_recipe(config)


def _choice(config, key: str, choices) -> None:
  if config_value(config, key) not in choices:
    raise ConfigError(f"config.{key} {config_value(config, key)!r} is unknown; choose one of "
                      f"{', '.join(map(str, choices))}")


def validate_recipe(config: ml_collections.ConfigDict) -> None:
  """The keys beyond the tutorial's: architecture, loss, penalties, EMA, conditioning."""
  _choice(config, "arch", ARCHS)
  _choice(config, "loss", tuple(losses.LOSSES))
  _choice(config, "lr_schedule", ("constant", "linear"))
  for key in ("spectral_norm", "conditional", "g_blur", "g_class_bn"):
    if not isinstance(config_value(config, key), bool):
      raise ConfigError(f"config.{key} must be True or False, got {config_value(config, key)!r}")
  for key in ("gp_weight", "r1_weight", "d_learning_rate", "mode_seeking", "consistency_weight"):
    value = config_value(config, key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
      raise ConfigError(f"config.{key} must be a number >= 0, got {value!r}")
  fraction = config_value(config, "lr_decay_fraction")
  if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
    raise ConfigError(f"config.lr_decay_fraction must be in (0, 1], got {fraction!r}")
  n_critic = config_value(config, "n_critic")
  if not _is_int(n_critic) or n_critic <= 0:
    raise ConfigError(f"config.n_critic must be a positive integer, got {n_critic!r}")
  if not 0 <= config_value(config, "ema_decay") < 1:
    raise ConfigError(f"config.ema_decay must be in [0, 1) (0: off), "
                      f"got {config_value(config, 'ema_decay')!r}")
  for key in ("g_channels", "d_channels"):
    value = config_value(config, key)
    if not value or not all(_is_int(w) and w > 0 for w in value):
      raise ConfigError(f"config.{key} must be a non-empty list of positive widths, got {value!r}")
  if config_value(config, "arch") == "dcgan" and 28 % 2 ** len(config_value(config, "g_channels")):
    raise ConfigError(f"config.g_channels: {len(config_value(config, 'g_channels'))} upsamplings "
                      "do not divide 28; use 1 or 2 entries")
  if config_value(config, "mode_seeking") and config.batch_size % 2:
    raise ConfigError(f"config.mode_seeking pairs the batch's halves: config.batch_size must be "
                      f"even, got {config.batch_size}")
  refine = config_value(config, "g_refine")
  if not _is_int(refine) or refine < 0:
    raise ConfigError(f"config.g_refine must be an integer >= 0 (0: off), got {refine!r}")
  if config_value(config, "g_class_bn") and not config_value(config, "conditional"):
    raise ConfigError("config.g_class_bn looks up each class's BatchNorm scale and offset: "
                      "set config.conditional=True")
  for key in ("g_refine", "g_blur", "g_class_bn", "d_mbstd"):
    if config_value(config, key) and config_value(config, "arch") != "dcgan":
      raise ConfigError(f"config.{key} is part of the dcgan networks; set config.arch='dcgan'")
  group = config_value(config, "d_mbstd")
  if not _is_int(group) or group < 0 or group == 1 or (group and config.batch_size % group):
    raise ConfigError(f"config.d_mbstd must be 0 (off) or a group size >= 2 that divides "
                      f"config.batch_size ({config.batch_size}), got {group!r}")
  shift = config_value(config, "consistency_shift")
  if not _is_int(shift) or not 0 <= shift < 14:
    raise ConfigError(f"config.consistency_shift must be an integer in [0, 14) pixels, "
                      f"got {shift!r}")
  penalties = [k for k in ("gp_weight", "r1_weight", "consistency_weight")
               if config_value(config, k)]
  if penalties and config.d_update != "joint":
    raise ConfigError(f"config.{penalties[0]} needs config.d_update='joint' (the penalties are "
                      "part of one D objective on both halves)")


def prepare_workdir(workdir) -> Path:
  """Creates the workdir (and images/) and proves it writable before any training."""
  path = Path(workdir)
  try:
    (path / "images").mkdir(parents=True, exist_ok=True)
    probe = path / ".write_test"
    probe.write_text("ok")
    probe.unlink()
  except OSError as exc:
    raise WorkdirError(f"workdir {path} is not writable: {exc.strerror or exc}") from None
  return path


def next_chunk_length(step: int, config) -> int:
  """Iterations until the next grid/checkpoint event, the end, or the dispatch cap."""
  n = min(config.steps_per_dispatch, config.num_steps - step)
  for interval in (config.sample_interval, config.checkpoint_interval, config.eval_interval):
    if interval:
      n = min(n, interval - step % interval)
  return n


@jax.jit
def all_finite(tree) -> jnp.ndarray:
  leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]
  return jnp.all(jnp.stack(leaves))


class MetricsLog:
  """metrics.jsonl: one JSON row per logged iteration; rows past a resumed step are dropped."""

  def __init__(self, path: Path, resume_step: int):
    self.path = path
    kept = [r for r in self.read(path) if r["step"] <= resume_step]
    path.write_text("".join(json.dumps(r) + "\n" for r in kept))

  @staticmethod
  def read(path: Path) -> list[dict]:
    if not path.exists():
      return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

  def append(self, rows: list[dict]) -> None:
    with self.path.open("a") as f:
      f.writelines(json.dumps(r) + "\n" for r in rows)


def tutorial_log_line(row: dict) -> str:
  return (f"{row['step']} [D loss: {row['d_loss']:f}, acc.: {100 * row['d_acc']:.2f}%] "
          f"[G loss: {row['g_loss']:f}]")


# Jitted once per GAN: eager flax apply would dispatch op by op at every grid.
_generate_jit = jax.jit(generate, static_argnums=0)


def grid_rows_cols(gan: GAN, config) -> tuple[int, int]:
  """The tutorial's grid_size² grid; a conditional GAN's 10x10, one row per class."""
  if gan.num_classes:
    return gan.num_classes, 10
  return config.grid_size, config.grid_size


def save_grid(gan: GAN, state, noise_NxZ, workdir: Path, config, step: int) -> None:
  rows, cols = grid_rows_cols(gan, config)
  labels = np.repeat(np.arange(rows), cols) if gan.num_classes else None  # row k: class k
  images = np.asarray(_generate_jit(gan, state, noise_NxZ, labels)) * 0.5 + 0.5  # -> [0, 1]
  title = f"{config.dataset} step {step}" + (" (row k: class k)" if gan.num_classes else "")
  plotting.save_image_grid(images, workdir / "images" / f"{config.dataset}_{step}.png",
                           rows, cols, title=title)


def chunk_rows(metrics: dict, first_step: int, n: int, wall_s: float) -> list[dict]:
  """Per-iteration rows of a finished chunk (wall time is the chunk's end, all the host knows)."""
  host = {k: np.asarray(v[:n], np.float64) for k, v in metrics.items()}
  return [{"step": first_step + i + 1, **{k: float(v[i]) for k, v in host.items()},
           "wall_s": round(wall_s, 3)} for i in range(n)]


def log_finished_chunk(log: MetricsLog, metrics: dict, first_step: int, n: int, t0: float,
                       log_interval: int, last_saved: int, checkpoints: Path) -> list[dict]:
  """Waits for the chunk, logs its rows; a non-finite metric stops the run (rows before it kept)."""
  metrics = jax.device_get(metrics)  # waits for the chunk: wall time is then its end
  rows = chunk_rows(metrics, first_step, n, time.perf_counter() - t0)
  bad = next((r for r in rows if not all(np.isfinite(r[k]) for k in metrics)), None)
  log.append([r for r in rows if r["step"] % log_interval == 0 and
              (bad is None or r["step"] < bad["step"])])
  if bad is not None:
    values = ", ".join(f"{k}={bad[k]}" for k in metrics)
    raise TrainingDiverged(f"non-finite loss at step {bad['step']} ({values}); stopped, last "
                           f"good checkpoint is step {last_saved} in {checkpoints}")
  return rows


def train_and_evaluate(config: ml_collections.ConfigDict, workdir) -> dict:
  """Trains (or resumes) the GAN in `workdir`; returns a summary of the run."""
  validate_config(config)
  mesh = sharding.make_mesh(config.num_devices)
  sharding.check_divisible(config.batch_size, mesh)
  workdir = prepare_workdir(workdir)
  images_NxHxW, labels_N = data.load_dataset(config.dataset, "train", config.data_dir or None)
  if config.eval_interval:  # a missing judge fails here, before anything is written
    evaluation.reference(config.dataset, config.data_dir or None)
  gan = build_gan(config, mesh)
  init_key, train_key, grid_key = jax.random.split(jax.random.key(config.seed), 3)
  manager = checkpoint.open_manager(workdir, config.keep_checkpoints)
  abstract_state = sharding.abstract_replicated(
      jax.eval_shape(lambda: init_state(gan, init_key, images_NxHxW.shape[1:])), mesh)
  identity = checkpoint.identity_of(config)
  # Restore (and so reject foreign or corrupt checkpoints) before writing anything.
  state, start_step = checkpoint.restore_latest(manager, abstract_state, identity)
  if state is None:
    state, start_step = init_state(gan, init_key, images_NxHxW.shape[1:]), 0
  state = sharding.put_replicated(state, mesh)
  (workdir / "config.json").write_text(config.to_json_best_effort(indent=2, sort_keys=True))
  log = MetricsLog(workdir / "metrics.jsonl", start_step)
  images_dev = sharding.put_replicated(images_NxHxW, mesh)  # once: batches gathered on device
  labels_dev = sharding.put_replicated(labels_N, mesh) if gan.num_classes else None
  grid_rows, grid_cols = grid_rows_cols(gan, config)
  grid_noise = jax.random.normal(grid_key, (grid_rows * grid_cols, config.latent_dim))
  if start_step == 0:
    save_grid(gan, state, grid_noise, workdir, config, 0)
  evaluator = None
  if config.eval_interval:
    scorer = evaluation.make_sample_scorer(
        lambda s, z, y: generate(gan, s, z, y), config.latent_dim, config.dataset,
        config.data_dir or None, config.eval_num, jax.random.fold_in(grid_key, 1),
        gan.num_classes)
    evaluator = evaluation.PeriodicEvaluator(scorer, workdir, identity,
                                             MetricsLog.read(log.path))

  step, last_saved, t0 = start_step, start_step, time.perf_counter()
  bar = tqdm.tqdm(total=config.num_steps, initial=start_step, disable=not config.progress,
                  unit="it", dynamic_ncols=True, desc=f"gan {config.dataset}")
  try:
    while step < config.num_steps:
      n = next_chunk_length(step, config)
      state, metrics = steps.train_chunk(gan, state, images_dev, train_key,
                                         config.steps_per_dispatch, n, labels_dev)
      rows = log_finished_chunk(log, metrics, step, n, t0, config.log_interval, last_saved,
                                checkpoint.checkpoint_dir(workdir))
      step += n
      bar.update(n)
      bar.set_postfix(d_loss=f"{rows[-1]['d_loss']:.3f}", d_acc=f"{rows[-1]['d_acc']:.2f}",
                      g_loss=f"{rows[-1]['g_loss']:.3f}")
      if config.print_interval:
        for r in rows:
          if r["step"] % config.print_interval == 0:
            bar.write(tutorial_log_line(r))
      if step % config.sample_interval == 0 or step == config.num_steps:
        save_grid(gan, state, grid_noise, workdir, config, step)
      if step % config.checkpoint_interval == 0 or step == config.num_steps:
        last_saved = _save_if_finite(manager, step, state, identity, last_saved)
      if evaluator and (step % config.eval_interval == 0 or step == config.num_steps):
        log.append([evaluator(step, state)])
  except KeyboardInterrupt:
    # A chunk is all-or-nothing: keep the last completed one so a rerun resumes from there.
    if step > last_saved and bool(all_finite(state)):
      checkpoint.save(manager, step, state, identity)
    raise
  finally:
    bar.close()
    manager.close()
    if evaluator:
      evaluator.close()
  train_s = time.perf_counter() - t0
  all_rows = MetricsLog.read(workdir / "metrics.jsonl")
  rows = [r for r in all_rows if r.get("kind") != "eval"]
  eval_rows = [r for r in all_rows if r.get("kind") == "eval"]
  if rows:
    plotting.save_loss_curves(rows, workdir / "loss_curve.png", title=f"GAN on {config.dataset}")
  if eval_rows:
    plotting.save_eval_curves(eval_rows, workdir / "eval_curve.png",
                              title=f"GAN on {config.dataset}: judge's metrics")
  return {"workdir": str(workdir), "start_step": start_step, "step": step,
          "train_s": train_s, "iters_per_s": (step - start_step) / max(train_s, 1e-9),
          "final": rows[-1] if rows else None, "final_eval": eval_rows[-1] if eval_rows else None,
          "eval_s": sum(r["eval_s"] for r in eval_rows if r["step"] > start_step)}


def _save_if_finite(manager, step: int, state, identity: dict, last_saved: int) -> int:
  """Saves unless a parameter went non-finite (the loss of the next step would show it)."""
  if not bool(all_finite(state)):
    raise TrainingDiverged(f"non-finite parameters at step {step}; stopped, last good "
                           f"checkpoint is step {last_saved}")
  checkpoint.save(manager, step, state, identity)
  return step
