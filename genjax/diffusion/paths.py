"""The two forward processes from data x (t = 0) to Gaussian noise e (t = 1), their training
targets and per-example losses. Both are z_t = a(t) x + s(t) e:

- ddpm: the cosine schedule of Nichol & Dhariwal (2021) in continuous time,
  a(t)^2 = alpha_bar(t) = f(t) / f(0) with f(t) = cos^2(pi/2 (t + 0.008) / 1.008), and
  s(t)^2 = 1 - a(t)^2 (variance preserving); the network predicts the noise e.
- flow: the straight (rectified) path z_t = (1 - t) x + t e (Liu et al. 2023, Lipman et al.
  2023, in the t = 1-is-noise direction of Esser et al. 2024); the network predicts the
  velocity dz/dt = e - x.
"""

import math

import jax
import jax.numpy as jnp

OBJECTIVES = ("ddpm", "flow")
COSINE_OFFSET = 0.008  # s of the cosine schedule: keeps the first steps' noise above 0
# alpha_bar at t = 1 would be exactly 0 (no signal, x unrecoverable from e's prediction); the
# floor keeps a(1) = 0.01, as the clipped betas of discrete cosine schedules do.
MIN_ALPHA_BAR = 1e-4


def alpha_bar(t):
  """The cosine schedule's a(t)^2 in [MIN_ALPHA_BAR, 1], t in [0, 1]."""
  def f(u):
    return jnp.cos(0.5 * math.pi * (u + COSINE_OFFSET) / (1 + COSINE_OFFSET)) ** 2
  return jnp.clip(f(jnp.asarray(t, jnp.float32)) / f(0.0), MIN_ALPHA_BAR, 1.0)


def coefficients(objective: str, t):
  """(a(t), s(t)): z_t = a x + s e."""
  t = jnp.asarray(t, jnp.float32)
  if objective == "ddpm":
    ab = alpha_bar(t)
    return jnp.sqrt(ab), jnp.sqrt(1.0 - ab)
  return 1.0 - t, t


def _per_example(c_B, x):
  """A per-example coefficient broadcast over x's other axes."""
  return jnp.reshape(c_B, c_B.shape + (1,) * (x.ndim - c_B.ndim))


def noisy(objective: str, x_BxD, e_BxD, t_B):
  """(z_t, the network's target): the noised data and the noise (ddpm) or velocity (flow)."""
  a, s = coefficients(objective, t_B)
  z = _per_example(a, x_BxD) * x_BxD + _per_example(s, x_BxD) * e_BxD
  return z, (e_BxD if objective == "ddpm" else e_BxD - x_BxD)


def loss_B(pred_BxD, target_BxD):
  """The squared error per example, averaged over its dimensions."""
  axes = tuple(range(1, pred_BxD.ndim))
  return jnp.mean(jnp.square(pred_BxD - target_BxD), axis=axes)


T_SAMPLINGS = ("uniform", "logit_normal")


def sample_times(key, batch: int, t_sampling: str):
  """Training times in (0, 1]: uniform, or logit-normal (Esser et al. 2024: the sigmoid of a
  standard normal, more weight on the middle of the path, where the target is hardest)."""
  if t_sampling == "logit_normal":
    return jax.nn.sigmoid(jax.random.normal(key, (batch,)))
  return jax.random.uniform(key, (batch,), minval=1e-5, maxval=1.0)


def predictions(objective: str, pred, z, t):
  """(x_hat, e_hat): the network's prediction read as estimates of the data and the noise."""
  a, s = coefficients(objective, t)
  a, s = _per_example(a, z), _per_example(s, z)
  if objective == "ddpm":  # pred is e
    return (z - s * pred) / a, pred
  # pred is the velocity e - x; with z = (1 - t) x + t e: x = z - t v, e = z + (1 - t) v.
  return z - s * pred, z + a * pred
