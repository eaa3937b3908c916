"""The GAN on the core loop: its data, state and chunk, sample grids, the judge's figures
during training (the best checkpoint by FID kept), the tutorial's log line and its curves."""

import time

import jax
import ml_collections
import numpy as np

from genjax.core import checkpoint, feed, plotting, schedules, sharding
from genjax.core.errors import CheckpointError
from genjax.core.feed import Streamed
from genjax.core.loop import Family, Run, train
from genjax.data import image_sets
from genjax.eval import scoring
from genjax.gan import config as gan_config, steps
from genjax.gan.sampling import images_01
from genjax.gan.state import GAN, balanced_labels, build_gan, generate, init_state

# Jitted once per GAN: eager flax apply would dispatch op by op at every grid.
_generate_jit = jax.jit(generate, static_argnums=0)
EVAL_BATCH = 1000  # samples per generator call when scoring


def tutorial_log_line(row: dict) -> str:
  return (f"{row['step']} [D loss: {row['d_loss']:f}, acc.: {100 * row['d_acc']:.2f}%] "
          f"[G loss: {row['g_loss']:f}]")


MAX_GRID_ROWS = 20  # a conditional grid shows the first classes, one row each


def grid_rows_cols(gan: GAN, config) -> tuple[int, int]:
  """The tutorial's grid_size² grid; a conditional GAN's one row per class (of the first 20),
  10 columns."""
  if gan.num_classes:
    return min(gan.num_classes, MAX_GRID_ROWS), 10
  return config.grid_size, config.grid_size


def save_grid(gan: GAN, state, noise_NxZ, workdir, config, step: int) -> None:
  """Every process draws the grid (the state spans them all); process 0 saves it."""
  rows, cols = grid_rows_cols(gan, config)
  labels = np.repeat(np.arange(rows), cols) if gan.num_classes else None  # row k: class k
  images = np.asarray(_generate_jit(gan, state, noise_NxZ, labels)) * 0.5 + 0.5  # -> [0, 1]
  if not sharding.is_primary_process():
    return
  (workdir / "images").mkdir(exist_ok=True)
  name = image_sets.short_name(config.dataset)
  title = f"{name} step {step}" + (" (row k: class k)" if gan.num_classes else "")
  plotting.save_image_grid(images, workdir / "images" / f"{name}_{step}.png", rows, cols,
                           title=title)


def make_sample_scorer(gan: GAN, ref: scoring.Reference, num: int, key):
  """fn(state) -> the judge's metrics of `num` samples from a fixed noise set (comparable
  across steps); a conditional GAN's are class-balanced and scored for label accuracy too."""
  noise_NxZ = jax.random.normal(key, (num, gan.latent_dim))
  labels_N = balanced_labels(num, gan.num_classes) if gan.num_classes else None

  def score(state) -> dict:
    images = np.concatenate([
        np.asarray(images_01(gan, state, noise_NxZ[i:i + EVAL_BATCH], None if labels_N is None
                             else labels_N[i:i + EVAL_BATCH])) for i in range(0, num, EVAL_BATCH)])
    return scoring.score_images(np.clip(images, 0.0, 1.0), ref, "generator samples", labels_N)

  return score


def eval_row(step: int, scores: dict, seconds: float) -> dict:
  row = {"step": step, "kind": "eval", **{k: scores[k] for k in scoring.METRIC_KEYS},
         "class_min": min(scores["class_hist"]), "class_max": max(scores["class_hist"]),
         "eval_s": round(seconds, 3)}
  if "label_accuracy" in scores:
    row["label_accuracy"] = scores["label_accuracy"]
  return row


def save_curves(rows: list[dict], eval_rows: list[dict], workdir, dataset: str) -> None:
  """loss_curve.png (losses, D's accuracy); eval_curve.png once there are two evaluations."""
  if rows:
    plotting.save_curves(workdir / "loss_curve.png", [
        {"train": [(rows, "d_loss"), (rows, "g_loss")], "ylabel": "loss"},
        {"train": [(rows, "d_acc")], "ylabel": "accuracy", "hline": 0.5}],
        title=f"GAN on {dataset}", xlabel="iteration")
  if len(eval_rows) >= 2:  # one point is no curve
    scaled = [{**r, "score_10": r["score"] / 10} for r in eval_rows]
    plotting.save_curves(workdir / "eval_curve.png", [
        {"points": [(eval_rows, "fid", "classifier FID")], "ylabel": "FID (judge features)",
         "log": True},
        {"points": [(eval_rows, k, k) for k in ("precision", "recall", "confident")]
         + [(scaled, "score_10", "score / 10")], "ylim": (0, 1.05)}],
        title=f"GAN on {dataset}: judge's metrics", xlabel="iteration")


class GANFamily(Family):
  name = "gan"
  metric_names = steps.METRIC_NAMES
  resumable = gan_config.RESUMABLE
  readers = ("sample.py", "evaluate.py", "average_checkpoints.py", "fit_drs.py")
  make_static, make_state = staticmethod(build_gan), staticmethod(init_state)
  streams = True

  @classmethod
  def validate(cls, config):
    gan_config.validate(config)
    return image_sets.resolve_paths(config.copy_and_resolve_references())

  def __init__(self, config, mesh):
    super().__init__(config, mesh)
    sharding.check_divisible(config.batch_size, mesh)
    self.init_key, self.train_key, self.grid_key = jax.random.split(
        jax.random.key(config.seed), 3)
    self.score_key = jax.random.fold_in(self.grid_key, 1)
    self.gan = self.best = self.ref = None

  def load_data(self):
    """The training images (their shape and classes recorded in the config), then the GAN
    built for them; the judge is found here, so a missing one stops the run before a file."""
    config = self.config
    data = image_sets.training_set(config)
    gan_config.check_image_shape(config, config.image_shape)
    self.gan = build_gan(config, self.mesh)
    rows, cols = grid_rows_cols(self.gan, config)
    self.grid_noise = jax.random.normal(self.grid_key, (rows * cols, config.latent_dim))
    if config.eval_interval:
      self.ref = scoring.training_reference(config)
    self.num_examples = len(data)
    return data.with_labels(bool(self.gan.num_classes))

  def init_state(self):
    return init_state(self.gan, self.init_key)

  def chunk(self, state, data_dev, num_steps):
    images_dev, labels_dev = (data_dev, None) if isinstance(data_dev, Streamed) else data_dev
    return steps.train_chunk(self.gan, state, images_dev, self.train_key,
                             self.config.steps_per_dispatch, num_steps, labels_dev)

  def batch_indices(self, first_step, num_steps):
    with jax.default_device(feed.host_cpu()):
      return np.asarray(steps.steps_indices(self.gan, self.train_key, first_step,
                                            self.config.steps_per_dispatch,
                                            self.num_examples))[:num_steps]

  def event_intervals(self):
    return self.config.sample_interval, self.config.eval_interval

  def start(self, run: Run, state):
    save_grid(self.gan, state, self.grid_noise, run.workdir, self.config, 0)

  def events(self, run: Run, step: int, state) -> list[dict]:
    config, rows = self.config, []
    if run.due(step, config.sample_interval):
      save_grid(self.gan, state, self.grid_noise, run.workdir, config, step)
    if self.ref is not None and run.due(step, config.eval_interval):
      if self.best is None:
        self.scorer = make_sample_scorer(self.gan, self.ref, config.eval_num, self.score_key)
        self.best = checkpoint.BestKeeper(run.workdir, run.record,
                                          [r["fid"] for r in run.log.rows("eval")])
      t0 = time.perf_counter()
      scores = self.scorer(state)
      rows.append(eval_row(step, scores, time.perf_counter() - t0))
      self.best.offer(step, state, scores["fid"])
    return rows

  def check_resume(self, saved_record, step):
    """A schedule may change on resume only where the steps already taken keep their rates
    (e.g. a constant-rate run given a decaying tail)."""
    saved = gan_config.lr_window(ml_collections.ConfigDict(saved_record["config"]))
    now = gan_config.lr_window(self.config)
    if not schedules.same_rates_before(saved, now, step):
      raise CheckpointError(f"config.lr_schedule: the decay window {now} would change the "
                            f"rates of steps before {step} (the checkpoint's: {saved}); use "
                            "another --workdir")

  def format_row(self, row):
    return tutorial_log_line(row)

  def finish(self, run: Run, state) -> dict:
    rows, eval_rows = run.log.rows(), run.log.rows("eval")
    if run.writer:
      save_curves(rows, eval_rows, run.workdir, image_sets.short_name(self.config.dataset))
    return {"final_eval": eval_rows[-1] if eval_rows else None,
            "eval_s": sum(r["eval_s"] for r in eval_rows if r["step"] > run.start_step)}

  def close(self):
    if self.best is not None:
      self.best.close()


def train_gan(config, workdir) -> dict:
  """Trains (or resumes) the GAN of `config` in `workdir`; returns the run's summary."""
  return train(GANFamily, config, workdir)
