"""Samplers from noise at t = 1 to data at t = 0, for any prediction function.

`predict(z, t)` is the network (or, in the tests, an analytic optimum) at a scalar time t for
every row of z; `guided` builds it from a U-Net with classifier-free guidance. A sampler
spends `nfe` function evaluations on a uniform grid of times:

- ddpm: ancestral sampling (DDPM, Ho et al. 2020): each step draws from the posterior
  q(z_s | z_t, x_hat); that is DDIM with eta = 1.
- ddim: the deterministic DDIM step (Song et al. 2021, eta = 0): an Euler step of the
  probability-flow ODE in the (noise-to-signal ratio, z / a) coordinates.
- euler, heun: the flow's ODE dz/dt = v(z, t), by Euler's method (one evaluation a step) or
  Heun's (two: the trapezoid rule on an Euler predictor), integrated from t = 1 down to 0.
"""

import jax
import jax.numpy as jnp

from genjax.diffusion import paths

SAMPLERS = {"ddpm": ("ddpm", "ddim"), "flow": ("euler", "heun")}
EVALS_PER_STEP = {"ddpm": 1, "ddim": 1, "euler": 1, "heun": 2}


def num_steps(sampler: str, nfe: int) -> int:
  """Steps of the time grid that `nfe` function evaluations pay for."""
  return nfe // EVALS_PER_STEP[sampler]


def guided(apply_fn, labels_B, guidance: float, null_label: int):
  """predict(z, t) of a U-Net apply_fn(z, t_B, labels_B) with classifier-free guidance
  (Ho & Salimans 2022): u + guidance (c - u), u the null label's prediction and c the label's.

  guidance 1 is the conditional model (one evaluation), 0 the unconditional one; other values
  evaluate both in one batch. labels_B None: an unconditional network.
  """
  def predict(z_BxD, t):
    t_B = jnp.full((z_BxD.shape[0],), t, jnp.float32)
    if labels_B is None or guidance == 1:
      return apply_fn(z_BxD, t_B, labels_B)
    null_B = jnp.full_like(labels_B, null_label)
    if guidance == 0:
      return apply_fn(z_BxD, t_B, null_B)
    both = apply_fn(jnp.concatenate([z_BxD, z_BxD]), jnp.concatenate([t_B, t_B]),
                    jnp.concatenate([labels_B, null_B]))
    cond, uncond = jnp.split(both, 2)
    return uncond + guidance * (cond - uncond)
  return predict


def ddim_step(predict, z, t, s, key, eta: float, clip: bool):
  """z_t -> z_s (s < t) on the cosine schedule: x_hat and e_hat from the predicted noise, then
  z_s = a_s x_hat + sqrt(1 - a_s^2 - c^2) e_hat + c n, c = eta * the posterior's std."""
  ab_t, ab_s = paths.alpha_bar(t), paths.alpha_bar(s)
  x_hat, e_hat = paths.predictions("ddpm", predict(z, t), z, t)
  if clip:  # data lie in [-1, 1]; the noise estimate is made consistent with the clipped x
    x_hat = jnp.clip(x_hat, -1.0, 1.0)
    e_hat = (z - jnp.sqrt(ab_t) * x_hat) / jnp.sqrt(1.0 - ab_t)
  c = eta * jnp.sqrt((1.0 - ab_s) / (1.0 - ab_t) * (1.0 - ab_t / ab_s))
  direction = jnp.sqrt(jnp.maximum(1.0 - ab_s - c ** 2, 0.0))
  return jnp.sqrt(ab_s) * x_hat + direction * e_hat + c * jax.random.normal(key, z.shape)


def flow_step(predict, z, t, s, heun: bool):
  """z_t -> z_s along dz/dt = v: Euler, or Heun's trapezoid on the Euler predictor."""
  v_t = predict(z, t)
  z_euler = z + (s - t) * v_t
  if not heun:
    return z_euler
  return z + (s - t) * 0.5 * (v_t + predict(z_euler, s))


def sample(predict, noise_BxD, key, sampler: str, nfe: int, clip: bool = True,
           keep_path: bool = False):
  """Runs `sampler` from z_1 = noise_BxD down to t = 0 with `nfe` evaluations of predict.

  Returns z_0, or with keep_path (z_0, z at every grid time from 1 down to 0, stacked).
  clip: the ddpm samplers clip x_hat to the data's [-1, 1] (off for data that are not images).
  """
  if sampler not in EVALS_PER_STEP:
    raise ValueError(f"unknown sampler {sampler!r}")
  steps = num_steps(sampler, nfe)
  if steps < 1:
    raise ValueError(f"{sampler} needs at least {EVALS_PER_STEP[sampler]} evaluations, got {nfe}")

  def body(z, i):
    t = 1.0 - i.astype(jnp.float32) / steps
    s = 1.0 - (i + 1).astype(jnp.float32) / steps
    if sampler in ("ddpm", "ddim"):
      eta = 1.0 if sampler == "ddpm" else 0.0
      z = ddim_step(predict, z, t, s, jax.random.fold_in(key, i), eta, clip)
    else:
      z = flow_step(predict, z, t, s, sampler == "heun")
    return z, (z if keep_path else None)

  z0, path = jax.lax.scan(body, noise_BxD, jnp.arange(steps))
  if keep_path:
    return z0, jnp.concatenate([noise_BxD[None], path])
  return z0
