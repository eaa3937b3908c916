"""AE/VAE/IWAE on the core loop: prior-sample grids and test figures during training; at the end
eval.json (neg ELBO, IWAE bound, importance-sampled NLL, in nats) and every picture."""

import json
from pathlib import Path

import jax
import numpy as np

from genjax.core import feed, loop, plotting, sharding
from genjax.core.feed import Streamed
from genjax.core.files import write_atomic
from genjax.data import image_sets
from genjax.vae import config as vae_config, data as vae_data, eval as vae_eval
from genjax.vae import plots as vae_plots, steps as vae_steps
from genjax.vae.state import VAESetup, build_setup, init_state


def grid_inputs(config, key, x_test, labels_test):
  """(z or x, labels or None) of the training grids: prior draws z, test images x for an AE.

  A conditional model's row k gets label k % num_classes (an AE's: its images' labels).
  """
  n = config.grid_size ** 2
  if config.model == "ae":
    return x_test[:n], labels_test[:n] if config.conditional else None
  z = jax.random.normal(key, (n, config.latent_dim))
  rows = (np.arange(n) // config.grid_size) % max(config.num_classes, 1)
  return z, rows if config.conditional else None


def save_prior_grid(setup: VAESetup, state, grid_in, workdir: Path, config, step: int) -> None:
  """The GAN's images/<dataset>_<step>.png: decoded prior draws z, or an AE's reconstructions
  of test images x (it has no prior to sample); grid_in is (z or x, labels or None). Every
  process decodes (the state spans them all); process 0 saves."""
  inputs, labels = grid_in
  y = None if labels is None else vae_data.one_hot(labels, setup.num_classes)
  if setup.recipe.model == "ae":
    inputs = vae_eval.encode_all(setup, state.params, inputs, labels_N=labels)
  images = vae_plots.decode_images(setup, state.params, inputs, y)
  if not sharding.is_primary_process():
    return
  (workdir / "images").mkdir(exist_ok=True)
  name = image_sets.short_name(config.dataset)
  plotting.save_image_grid(images, workdir / "images" / f"{name}_{step}.png",
                           config.grid_size, config.grid_size,
                           title=f"{config.model} {name} step {step}")


def quick_eval(setup: VAESetup, state, test, key, config) -> dict:
  """Test neg ELBO and IWAE bound on a subset, during training; test is (x, labels or None)."""
  x_test, labels_test = test
  n = config.eval_interval_num
  return vae_eval.evaluate(setup, state.params, x_test[:n], key, iwae_k=config.eval_iwae_k,
                           nll_k=0, batch=config.eval_batch, k_chunk=config.eval_k_chunk,
                           labels_N=None if labels_test is None else labels_test[:n])


class VAEFamily(loop.Family):
  name = "vae"
  resumable = vae_config.RESUMABLE
  readers = ("sample.py", "evaluate.py")
  make_static, make_state = staticmethod(build_setup), staticmethod(init_state)

  @classmethod
  def validate(cls, config):
    return vae_config.resolve(config)

  streams = True

  def __init__(self, config, mesh):
    super().__init__(config, mesh)
    sharding.check_divisible(config.batch_size, mesh)
    self.metric_names = vae_steps.METRIC_NAMES[config.model]
    (self.init_key, self.train_key, self.grid_key, self.eval_key,
     self.picture_key) = jax.random.split(jax.random.key(config.seed), 5)

  def load_data(self):
    """The training pixels (their shape and classes recorded in the config, num_steps from
    num_epochs), the test inputs, then the setup built for them."""
    config = self.config
    data = vae_data.training_pixels(config, labels=config.conditional)
    vae_config.check_image_shape(config, config.image_shape)
    vae_config.fill_num_steps(config, len(data))
    self.setup = build_setup(config, self.mesh)
    self.x_test, self.labels_test = vae_data.eval_inputs(config)
    # What the model is given: labels for a conditional one, nothing otherwise.
    self.model_test = (self.x_test, self.labels_test if config.conditional else None)
    self.grid_in = grid_inputs(config, self.grid_key, self.x_test, self.labels_test)
    self.num_examples = len(data)
    return data

  def init_state(self):
    return init_state(self.setup, self.init_key)

  def chunk(self, state, data_dev, num_steps):
    pixels_dev, labels_dev = (data_dev, None) if isinstance(data_dev, Streamed) else data_dev
    return vae_steps.train_chunk(self.setup, state, pixels_dev, self.train_key,
                                 self.config.steps_per_dispatch, num_steps, labels_dev)

  def batch_indices(self, first_step, num_steps):
    with jax.default_device(feed.host_cpu()):
      return np.asarray(vae_steps.steps_indices(self.setup, self.train_key, first_step,
                                                self.config.steps_per_dispatch,
                                                self.num_examples))[:num_steps]

  def event_intervals(self):
    return self.config.sample_interval, self.config.eval_interval

  def check_resume(self, saved_record, step):
    vae_config.check_resume(saved_record["config"], self.config, step)

  def start(self, run, state):
    save_prior_grid(self.setup, state, self.grid_in, run.workdir, self.config, 0)

  def events(self, run, step, state):
    config, rows = self.config, []
    if run.due(step, config.sample_interval):
      save_prior_grid(self.setup, state, self.grid_in, run.workdir, config, step)
    if run.due(step, config.eval_interval):
      result = quick_eval(self.setup, state, self.model_test, self.eval_key, config)
      rows.append({"step": step, "kind": "eval", **result})
      figures = {k: v for k, v in result.items() if k in ("neg_elbo", "neg_iwae_bound", "recon")}
      run.write(f"step {step}: test ({result['num_examples']} examples, nats) "
                + ", ".join(f"{k} {v:.2f}" for k, v in figures.items()))
    return rows

  def finish(self, run, state):
    return finish(self.setup, state, self.config, run, self.x_test, self.labels_test,
                  (self.eval_key, self.picture_key))


def train_vae(config, workdir) -> dict:
  """Trains (or resumes) the model of `config` in `workdir`, then writes eval.json and the
  pictures; returns the run's summary."""
  return loop.train(VAEFamily, config, workdir)


def finish(setup: VAESetup, state, config, run: loop.Run, x_test, labels_test, keys) -> dict:
  """Loss curve, the final test figures (eval.json) and the pictures; the summary's extras.

  Every process evaluates (the state spans them all); process 0 writes the files.
  """
  workdir, rows = run.workdir, run.log.rows()
  name = image_sets.short_name(config.dataset)
  if rows and run.writer:
    vae_plots.save_training_curves(rows, workdir / "loss_curve.png",
                                   title=f"{config.model} on {name}",
                                   eval_rows=run.log.rows("eval"))
  x_eval, (eval_key, picture_key) = x_test[:config.eval_num], keys
  # A conditional model is scored given the true labels: bounds on log p(x|y).
  labels_eval = labels_test[:config.eval_num] if config.conditional else None
  result = vae_eval.evaluate(setup, state.params, x_eval, eval_key, iwae_k=config.eval_iwae_k,
                             nll_k=config.eval_nll_k, batch=config.eval_batch,
                             k_chunk=config.eval_k_chunk,
                             progress=config.progress and run.writer, labels_N=labels_eval)
  codes = vae_eval.encode_all(setup, state.params, x_eval, labels_N=labels_eval)
  result = {"step": config.num_steps, "model": config.model, "dataset": config.dataset,
            "binarization": config.binarization, "conditional": config.conditional, **result,
            "active_units": vae_eval.active_units(codes)}
  if not run.writer:
    return {"eval": result, "pictures": []}
  write_atomic(workdir / "eval.json", json.dumps(result, indent=2) + "\n")
  # Process 0 alone draws the pictures, from its own copy of the parameters.
  pictures = vae_plots.save_pictures(setup, sharding.local_copy(state.params), x_test,
                                     labels_test, workdir, picture_key, config.grid_size,
                                     f"{config.model} {name}")
  return {"eval": result, "pictures": pictures}
