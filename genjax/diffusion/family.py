"""Diffusion and flow matching on the core loop: sample grids, the judge's figures during
training and at the end (the best checkpoint by FID kept), the loss and FID curves."""

import time

import jax
import numpy as np

from genjax.core import checkpoint, feed, plotting, sharding
from genjax.core.feed import Streamed
from genjax.core.loop import Family, Run, train
from genjax.data import image_sets
from genjax.diffusion import config as diffusion_config, steps
from genjax.diffusion.sampling import Settings, images_01, settings_of
from genjax.diffusion.state import Diffusion, balanced_labels, build, init_state, sampling_params
from genjax.eval import scoring

GRID = 10  # the grid is 10x10; a conditional run's row k is class k


def grid_labels(static: Diffusion):
  return np.repeat(np.arange(GRID), GRID).astype(np.int32) if static.num_classes else None


def save_grid(static: Diffusion, state, noise, key, settings: Settings, workdir, step: int,
              name: str) -> None:
  """images/<step>.png from a fixed noise set; every process samples, process 0 saves."""
  images = images_01(static, sampling_params(static, state), noise, grid_labels(static), key,
                     settings)
  if not sharding.is_primary_process():
    return
  (workdir / "images").mkdir(exist_ok=True)
  rows = " (row k: class k)" if static.num_classes else ""
  title = f"{name} step {step}, {settings.sampler} {settings.nfe} NFE{rows}"
  plotting.save_image_grid(images, workdir / "images" / f"{step}.png", GRID, GRID, title=title)


def make_scorer(static: Diffusion, ref: scoring.Reference, config, settings: Settings, key):
  """fn(state) -> the judge's metrics (against ref) of config.eval_num samples from a fixed
  noise set (the curve compares steps, not noise draws), class-balanced if conditional."""
  num, batch = config.eval_num, config.eval_batch
  noise_key, sampler_key = jax.random.split(key)
  labels_N = balanced_labels(num, static.num_classes) if static.num_classes else None
  shape = static.example_shape

  def score(state) -> dict:
    params = sampling_params(static, state)
    images = np.concatenate([images_01(
        static, params, jax.random.normal(jax.random.fold_in(noise_key, i), (batch, *shape)),
        None if labels_N is None else balanced_labels(batch, static.num_classes, i * batch),
        jax.random.fold_in(sampler_key, i), settings) for i in range(-(-num // batch))])[:num]
    return scoring.score_images(images, ref, "diffusion samples", labels_N)

  return score


def eval_row(step: int, scores: dict, eval_s: float, train_s: float) -> dict:
  row = {"step": step, "kind": "eval", **{k: scores[k] for k in scoring.METRIC_KEYS},
         "class_min": min(scores["class_hist"]), "class_max": max(scores["class_hist"]),
         "eval_s": round(eval_s, 3), "train_s": round(train_s, 1)}
  if "label_accuracy" in scores:
    row["label_accuracy"] = scores["label_accuracy"]
  return row


def save_curves(rows: list[dict], eval_rows: list[dict], workdir, title: str) -> None:
  """loss_curve.png; eval_curve.png (FID against training minutes) from two evaluations on."""
  if rows:
    plotting.save_curves(workdir / "loss_curve.png", [
        {"train": [(rows, "loss")], "ylabel": "loss", "log": True},
        {"train": [(rows, "grad_norm")], "ylabel": "gradient norm", "log": True}],
        title=title, xlabel="step")
  if len(eval_rows) >= 2:
    minutes = [{**r, "step": r["train_s"] / 60} for r in eval_rows]
    plotting.save_curves(workdir / "eval_curve.png", [
        {"points": [(minutes, "fid", "judge's FID")], "ylabel": "FID (judge features)",
         "log": True},
        {"points": [(minutes, k, k) for k in ("precision", "recall", "confident")],
         "ylim": (0, 1.05)}], title=f"{title}: the judge's metrics",
        xlabel="training minutes (evaluations excluded)")


class DiffusionFamily(Family):
  name = "diffusion"
  metric_names = steps.METRIC_NAMES
  resumable = diffusion_config.RESUMABLE
  readers = ("sample.py", "evaluate.py", "average_checkpoints.py", "diffusion_likelihood.py",
             "diffusion_nfe.py")
  make_static, make_state = staticmethod(build), staticmethod(init_state)
  streams = True

  @classmethod
  def validate(cls, config):
    return diffusion_config.resolve(config)

  def __init__(self, config, mesh):
    super().__init__(config, mesh)
    sharding.check_divisible(config.batch_size, mesh)
    self.settings = settings_of(config)
    self.init_key, self.train_key, self.noise_key, self.score_key = jax.random.split(
        jax.random.key(config.seed), 4)
    self.grid_key = jax.random.fold_in(self.noise_key, 1)
    self.static = self.best = self.scorer = self.ref = None
    self.clock = None  # (perf_counter at this invocation's first chunk, seconds trained before)
    self.host_s = 0.0  # seconds of pictures and evaluations since then

  def load_data(self):
    """The training images (their shape and classes recorded in the config), then the U-Net
    built for them; the judge is found here, so a missing one stops the run before a file."""
    config = self.config
    data = image_sets.training_set(config)
    diffusion_config.check_image_shape(config, config.image_shape)
    self.static = build(config, self.mesh)
    self.grid_noise = jax.random.normal(self.noise_key,
                                        (GRID * GRID, *self.static.example_shape))
    if config.eval_interval:
      self.ref = scoring.training_reference(config)
    self.num_examples = len(data)
    return data.with_labels(bool(self.static.num_classes))

  def init_state(self):
    return init_state(self.static, self.init_key)

  def chunk(self, state, data_dev, num_steps):
    if self.clock is None:
      self.clock = (time.perf_counter(), 0.0)
    images_dev, labels_dev = (data_dev, None) if isinstance(data_dev, Streamed) else data_dev
    return steps.train_chunk(self.static, state, images_dev, self.train_key,
                             self.config.steps_per_dispatch, num_steps, labels_dev)

  def batch_indices(self, first_step, num_steps):
    with jax.default_device(feed.host_cpu()):
      return np.asarray(steps.steps_indices(self.static, self.train_key, first_step,
                                            self.config.steps_per_dispatch,
                                            self.num_examples))[:num_steps]

  def event_intervals(self):
    return self.config.sample_interval, self.config.eval_interval

  def check_resume(self, saved_record, step):
    diffusion_config.check_resume(saved_record["config"], self.config, step)

  def _grid(self, run: Run, step: int, state) -> None:
    save_grid(self.static, state, self.grid_noise, self.grid_key, self.settings, run.workdir,
              step, image_sets.short_name(self.config.dataset))

  def start(self, run: Run, state):
    self._grid(run, 0, state)

  def train_seconds(self, run: Run) -> float:
    """Training seconds to now, pictures and evaluations left out (a resumed run goes on from
    its last evaluation's figure)."""
    if self.clock[1] == 0.0 and run.start_step:
      past = [r.get("train_s", 0.0) for r in run.log.rows("eval") if r["step"] <= run.start_step]
      self.clock = (self.clock[0], past[-1] if past else 0.0)
    return self.clock[1] + time.perf_counter() - self.clock[0] - self.host_s

  def events(self, run: Run, step: int, state) -> list[dict]:
    config, rows, t0 = self.config, [], time.perf_counter()
    if run.due(step, config.sample_interval):
      self._grid(run, step, state)
    if self.ref is not None and run.due(step, config.eval_interval):
      train_s = self.train_seconds(run) - (time.perf_counter() - t0)
      if self.best is None:
        self.scorer = make_scorer(self.static, self.ref, config, self.settings, self.score_key)
        self.best = checkpoint.BestKeeper(run.workdir, run.record,
                                          [r["fid"] for r in run.log.rows("eval")])
      t1 = time.perf_counter()
      scores = self.scorer(state)
      rows.append(eval_row(step, scores, time.perf_counter() - t1, train_s))
      self.best.offer(step, state, scores["fid"])
      run.write(f"step {step}: judge's FID {scores['fid']:.2f}, score {scores['score']:.2f}"
                f" ({config.eval_num} samples, {self.settings.sampler} {self.settings.nfe} NFE"
                f", guidance {self.settings.guidance:g})")
    self.host_s += time.perf_counter() - t0
    return rows

  def finish(self, run: Run, state) -> dict:
    rows, eval_rows = run.log.rows(), run.log.rows("eval")
    if run.writer:
      save_curves(rows, eval_rows, run.workdir,
                  f"{self.config.objective} on {image_sets.short_name(self.config.dataset)}")
    return {"final_eval": eval_rows[-1] if eval_rows else None,
            "eval_s": sum(r["eval_s"] for r in eval_rows if r["step"] > run.start_step)}

  def close(self):
    if self.best is not None:
      self.best.close()


def train_diffusion(config, workdir) -> dict:
  """Trains (or resumes) the diffusion model of `config` in `workdir`; returns the summary."""
  return train(DiffusionFamily, config, workdir)
