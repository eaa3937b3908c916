"""A toy family: y = w x + b fitted by SGD, the smallest thing the core loop trains.

It exercises every hook of genjax.core.loop.Family in milliseconds of compute, so the loop's
own behaviour (resume, events, NaN stop, Ctrl-C, refusals) is tested apart from any model.
"""

import functools
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from genjax.core import config as config_lib, loop, runner, sharding
from genjax.core.errors import DataError


def get_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.model = "toy"
  c.data_dir = ""  # "missing": load_data fails, as a missing data folder would
  c.seed = 0
  c.num_steps = 12
  c.batch_size = 8
  c.learning_rate = 0.1
  c.log_interval = 1
  c.print_interval = 0
  c.sample_interval = 5  # an event: a file events/<step>.txt and an "eval" row
  c.checkpoint_interval = 4
  c.keep_checkpoints = 10
  c.steps_per_dispatch = 100
  c.num_devices = 1
  c.progress = False
  c.interrupt_at = 0  # >0: Ctrl-C arrives right after this step's chunk
  c.event_sleep_s = 0.0  # >0: every event waits this long (a slow run, to stop one midway)
  return c


def loss_B(params, x_B, y_B):
  return (params["w"] * x_B + params["b"] - y_B) ** 2


@functools.lru_cache(maxsize=None)
def compiled_chunk(batch_size: int, learning_rate: float, max_steps: int, mesh):
  def chunk(state, data, key, num_steps):
    x_N, y_N = data

    def step_fn(state):
      idx_B = jax.random.randint(jax.random.fold_in(key, state["step"]), (batch_size,), 0,
                                 x_N.shape[0])
      # Each device (each process, over many) takes its slice of the global batch.
      x_B, y_B = (sharding.constrain_batch(a[idx_B], mesh) for a in (x_N, y_N))
      loss, grads = jax.value_and_grad(lambda p: loss_B(p, x_B, y_B).mean())(state["params"])
      params = jax.tree.map(lambda p, g: p - learning_rate * g, state["params"], grads)
      return {"step": state["step"] + 1, "params": params}, {"loss": loss}

    return runner.run_steps(step_fn, state, num_steps, max_steps, ("loss",))

  return runner.jit_chunk(chunk, mesh)


class ToyFamily(loop.Family):
  name = "toy"
  metric_names = ("loss",)
  resumable = config_lib.LOOP_RESUMABLE | {"interrupt_at", "sample_interval", "event_sleep_s"}

  @classmethod
  def validate(cls, config):
    config_lib.check_loop_keys(config)
    config_lib.check_ints(config, ("batch_size", "sample_interval"))
    config_lib.check_numbers(config, ("learning_rate",), strict=True)
    return config.copy_and_resolve_references()

  def __init__(self, config, mesh):
    super().__init__(config, mesh)
    self.key = jax.random.key(config.seed)
    self.chunk_fn = compiled_chunk(config.batch_size, config.learning_rate,
                                   config.steps_per_dispatch, mesh)
    self.events_seen = []

  def load_data(self):
    if self.config.data_dir == "missing":
      raise DataError("data folder 'missing' (from config.data_dir) does not exist",
                      field="config.data_dir")
    x_N = np.linspace(-1.0, 1.0, 64, dtype=np.float32)
    return x_N, (3.0 * x_N + 0.5).astype(np.float32)

  def init_state(self):
    return {"step": jnp.zeros((), jnp.int32),
            "params": {"w": jnp.zeros((), jnp.float32), "b": jnp.zeros((), jnp.float32)}}

  def chunk(self, state, data_dev, num_steps):
    return self.chunk_fn(state, data_dev, self.key, num_steps)

  def event_intervals(self):
    return (self.config.sample_interval,)

  def start(self, run, state):
    if run.writer:
      (run.workdir / "events").mkdir(exist_ok=True)
      (run.workdir / "events" / "0.txt").write_text("start")

  def events(self, run, step, state):
    self.events_seen.append(step)
    time.sleep(self.config.event_sleep_s)
    rows = []
    if run.due(step, self.config.sample_interval):
      if run.writer:
        (run.workdir / "events").mkdir(exist_ok=True)
        (run.workdir / "events" / f"{step}.txt").write_text(str(float(state["params"]["w"])))
      rows.append({"step": step, "kind": "eval", "w": float(state["params"]["w"])})
    if step == self.config.interrupt_at:
      raise KeyboardInterrupt
    return rows

  def finish(self, run, state):
    return {"w": float(state["params"]["w"]), "b": float(state["params"]["b"])}


def train_toy(config, workdir) -> dict:
  return loop.train(ToyFamily, config, workdir)
