"""Many training steps per dispatch, shared by every model's train_chunk."""

import jax
import jax.numpy as jnp
from jax.sharding import Mesh

from genjax import sharding


def run_steps(step_fn, state, num_steps, max_steps: int, metric_names):
  """`num_steps` (traced, <= max_steps) applications of step_fn(state) -> (state, metrics).

  A while loop with a traced trip count compiles once for every chunk length the host asks
  for (events at arbitrary intervals cost no recompiles); per-step metrics land in buffers
  of length max_steps, rows past num_steps stay NaN.
  """
  metrics_init = {name: jnp.full((max_steps,), jnp.nan, jnp.float32) for name in metric_names}

  def body(i, carry):
    state, metrics = carry
    state, step_metrics = step_fn(state)
    return state, {k: v.at[i].set(step_metrics[k]) for k, v in metrics.items()}

  return jax.lax.fori_loop(0, num_steps, body, (state, metrics_init))


def jit_chunk(fn, mesh: Mesh | None):
  """jit(fn) donating its first argument (the state); replicated in/out with a mesh."""
  if mesh is None:
    return jax.jit(fn, donate_argnums=0)
  replicated = sharding.replicated(mesh)
  return jax.jit(fn, in_shardings=replicated, out_shardings=replicated, donate_argnums=0)
