"""GAN learning-rate schedules as a function of the iteration, outside the optimizer state.

A schedule scales every Adam update of iteration `step` (G's, and all of D's in it). Keeping
it out of optax's state means a constant-rate checkpoint can go on with a decaying tail: the
trees match, and the resume is the run the new config would make uninterrupted as long as
the steps already taken keep their rates (checkpoint.check_identity enforces that).
"""

import jax.numpy as jnp
import numpy as np

from genjax.config_defaults import config_value


def lr_window(config) -> tuple[int, int] | None:
  """(begin, end): the rate decays linearly from full at `begin` to 0 at `end`; None: constant."""
  if config_value(config, "lr_schedule") != "linear":
    return None
  total = max(1, int(config.num_steps))
  decay = max(1, round(total * config_value(config, "lr_decay_fraction")))
  return total - decay, total


def lr_scale(window, step):
  """The factor on iteration `step`'s updates (jnp: traced steps and numpy arrays alike)."""
  if window is None:
    return jnp.ones_like(jnp.asarray(step), jnp.float32)
  begin, end = window
  return 1.0 - jnp.clip((jnp.asarray(step, jnp.float32) - begin) / (end - begin), 0.0, 1.0)


def same_rates_before(window_a, window_b, step: int) -> bool:
  """Whether two schedules gave iterations 0..step-1 the same rates."""
  steps = np.arange(step)
  return bool(np.array_equal(np.asarray(lr_scale(window_a, steps)),
                             np.asarray(lr_scale(window_b, steps))))
