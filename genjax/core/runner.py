"""Many training steps per dispatch: the one runner every family's jitted chunk is built on."""

import jax
import jax.numpy as jnp
from jax.sharding import Mesh

from genjax.core import sharding


def run_steps(step_fn, state, num_steps, max_steps: int, metric_names, indexed: bool = False):
  """`num_steps` (traced, <= max_steps) applications of step_fn(state) -> (state, metrics), or
  of step_fn(state, i) with indexed: i is the step's place in the chunk (a streamed chunk's
  step i takes row i of its batches, genjax.core.feed).

  A while loop with a traced trip count compiles once for every chunk length the host asks
  for (events at arbitrary intervals cost no recompiles); per-step metrics land in buffers
  of length max_steps, rows past num_steps stay NaN.
  """
  metrics_init = {name: jnp.full((max_steps,), jnp.nan, jnp.float32) for name in metric_names}

  def body(i, carry):
    state, metrics = carry
    state, step_metrics = step_fn(state, i) if indexed else step_fn(state)
    return state, {k: v.at[i].set(step_metrics[k]) for k, v in metrics.items()}

  return jax.lax.fori_loop(0, num_steps, body, (state, metrics_init))


def jit_chunk(fn, mesh: Mesh | None, streamed: bool = False):
  """jit(fn) donating its first argument (the state); replicated in/out with a mesh. streamed:
  the inputs keep their own shardings (a streamed chunk's batches arrive split over the mesh)."""
  if mesh is None:
    return jax.jit(fn, donate_argnums=0)
  replicated = sharding.replicated(mesh)
  if streamed:
    return jax.jit(fn, out_shardings=replicated, donate_argnums=0)
  return jax.jit(fn, in_shardings=replicated, out_shardings=replicated, donate_argnums=0)


@jax.jit
def all_finite(tree) -> jnp.ndarray:
  """Whether every leaf of `tree` is free of NaN and inf (one device-side reduction)."""
  leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]
  return jnp.all(jnp.stack(leaves))


def next_chunk_length(step: int, num_steps: int, max_steps: int, intervals) -> int:
  """Steps until the next event of `intervals` (0: none), the end, or the dispatch cap."""
  n = min(max_steps, num_steps - step)
  for interval in intervals:
    if interval:
      n = min(n, interval - step % interval)
  return n
