"""Learning-rate schedules, all in one place.

Two ways to apply one:
- inside the optimizer (`optax_schedule`): the rate is a function of optax's own step count;
- outside it, as a factor on each step's updates (`window_scale`): the optimizer state is the
  same under every schedule, so a constant-rate checkpoint can go on with a decaying tail. The
  resumed run is the run the new config would make uninterrupted as long as the steps already
  taken keep their rates (`same_rates_before`).
"""

import jax.numpy as jnp
import numpy as np
import optax

BURDA_STAGES = 8  # Burda et al.: stage i lasts 3^i epochs at lr 1e-3 * 10^(-i/7)
OPTAX_KINDS = ("constant", "cosine", "burda", "warmup_cosine")


def optax_schedule(kind: str, learning_rate: float, num_steps: int,
                   final_fraction: float = 0.0, warmup_fraction: float = 0.0,
                   warmup_steps: int | None = None) -> optax.Schedule:
  """constant; cosine to final_fraction of the rate; Burda's 8 stages of 3^i compressed into
  num_steps; or a linear warmup over warmup_steps (or warmup_fraction of the steps) then a
  cosine to final_fraction."""
  n = max(num_steps, 1)
  if kind == "constant":
    return optax.constant_schedule(learning_rate)
  if kind == "cosine":
    return optax.cosine_decay_schedule(learning_rate, n, alpha=final_fraction)
  if kind == "warmup_cosine":
    if warmup_steps is None:
      warmup_steps = int(warmup_fraction * num_steps)
    warmup = max(1, min(warmup_steps, n - 1))  # a cosine of at least one step follows
    return optax.warmup_cosine_decay_schedule(
        0.0, learning_rate, warmup, max(n, warmup + 1), end_value=learning_rate * final_fraction)
  if kind == "burda":
    lengths = [3 ** i for i in range(BURDA_STAGES)]
    ends = [round(n * sum(lengths[:i + 1]) / sum(lengths)) for i in range(BURDA_STAGES - 1)]
    return optax.piecewise_constant_schedule(learning_rate, {end: 10 ** (-1 / 7) for end in ends})
  raise ValueError(f"unknown schedule {kind!r}; choose one of {', '.join(OPTAX_KINDS)}")


def decay_window(num_steps: int, fraction: float) -> tuple[int, int]:
  """(begin, end): a linear decay from the full rate at `begin` to 0 at num_steps, spanning
  the last `fraction` of the steps."""
  total = max(1, int(num_steps))
  decay = max(1, round(total * fraction))
  return total - decay, total


def window_scale(window, step):
  """The factor on step `step`'s updates (jnp: traced steps and numpy arrays alike); a window
  of None is the constant rate."""
  if window is None:
    return jnp.ones_like(jnp.asarray(step), jnp.float32)
  begin, end = window
  return 1.0 - jnp.clip((jnp.asarray(step, jnp.float32) - begin) / (end - begin), 0.0, 1.0)


def same_rates_before(window_a, window_b, step: int) -> bool:
  """Whether two windows gave steps 0..step-1 the same rates."""
  steps = np.arange(step)
  return bool(np.array_equal(np.asarray(window_scale(window_a, steps)),
                             np.asarray(window_scale(window_b, steps))))


def same_rates(schedule_a, schedule_b, step: int, samples: int = 64) -> bool:
  """Whether two optax schedules agree on steps 0..step-1 (checked at `samples` of them)."""
  steps = np.unique(np.linspace(0, max(step - 1, 0), samples).astype(np.int64))
  return bool(np.array_equal(np.asarray(schedule_a(steps)), np.asarray(schedule_b(steps))))
