"""A generator averaged over a run's checkpoints, written as a new run for sampling and scoring.

Averaging G's weights over a long window (Polyak averaging across checkpoints, on top of the
in-training EMA) helps where the EMA's window is short (docs/results.md, Fashion-MNIST). An
average of weights does not come with matching BatchNorm statistics, so they can be
re-estimated ("standing statistics", Brock et al. 2019): the mean over many batches of the
statistics G's BatchNorms see in training mode.
"""

import json

import jax
import jax.numpy as jnp

from genjax.core import checkpoint
from genjax.core.ema import mean_tree
from genjax.core.errors import field_error
from genjax.core.files import check_out_dir, write_atomic
from genjax.gan.sampling import restore_generators
from genjax.gan.state import GAN, balanced_labels, sampling_variables


def standing_batch_stats(gan: GAN, variables: dict, key, num_batches: int, batch_size: int):
  """G's BatchNorm mean and variance averaged over `num_batches` training-mode batches.

  Each call starts from zeroed running statistics, so the momentum update leaves
  (1 - momentum) times the batch's own statistics, which are scaled back.
  """
  zeros = jax.tree.map(jnp.zeros_like, variables["batch_stats"])
  keep = 1.0 - gan.generator.bn_momentum

  def batch_stats(key_i):
    z_BxZ = jax.random.normal(key_i, (batch_size, gan.latent_dim))
    labels_B = balanced_labels(batch_size, gan.num_classes) if gan.num_classes else None
    _, new = gan.generator.apply({"params": variables["params"], "batch_stats": zeros}, z_BxZ,
                                 train=True, labels_B=labels_B, mutable=["batch_stats"])
    return jax.tree.map(lambda s: s / keep, new["batch_stats"])

  keys = jax.random.split(key, num_batches)
  return jax.tree.map(lambda s: s.mean(axis=0), jax.lax.map(batch_stats, keys))


def with_generator(gan: GAN, state, variables: dict):
  """`state` sampling from `variables`: they replace the EMA, or G's own weights without one."""
  if gan.recipe.ema_decay:
    return state.replace(g_ema=variables)
  return state.replace(g_params=variables["params"], g_batch_stats=variables["batch_stats"])


def average_checkpoints(workdir, steps, out, standing_batches: int = 200, seed: int = 0) -> dict:
  """Writes to `out` a run whose G is the mean of G's sampling weights at `steps`.

  standing_batches > 0 re-estimates its BatchNorm statistics over that many batches of the
  run's batch size; 0 averages the stored statistics. Returns what was done (also in
  `out/averaged_from.json`).
  """
  steps = sorted(set(steps))
  if not steps or any(not isinstance(s, int) or s < 0 for s in steps):
    raise field_error("steps", f"must name checkpoint steps (non-negative integers), got {steps}")
  if not isinstance(standing_batches, int) or standing_batches < 0:
    raise field_error("standing_batches", f"must be 0 or more, got {standing_batches!r}")
  gan, config, restored = restore_generators(workdir, steps)  # errors before out
  last_state = restored[-1][0]
  variables = mean_tree([sampling_variables(gan, state) for state, _ in restored])
  if standing_batches:
    stats = jax.jit(standing_batch_stats, static_argnums=(0, 3, 4))(
        gan, variables, jax.random.key(seed), standing_batches, config.batch_size)
    variables = {**variables, "batch_stats": stats}
  out = check_out_dir(out, workdir)
  write_atomic(out / "config.json", config.to_json_best_effort(indent=2, sort_keys=True))
  manager = checkpoint.open_manager(out, max_to_keep=None)
  try:
    checkpoint.save(manager, steps[-1], with_generator(gan, last_state, variables),
                    checkpoint.make_record("gan", config))
  finally:
    manager.close()
  record = {"workdir": str(workdir), "steps": steps, "standing_batches": standing_batches,
            "batch_size": config.batch_size, "seed": seed}
  write_atomic(out / "averaged_from.json", json.dumps(record, indent=2))
  return record
