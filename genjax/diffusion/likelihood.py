"""Bits per dimension of a flow run's model, through its probability-flow ODE.

The velocity field v(z, t) carries data (t = 0) to N(0, I) (t = 1), and along its path
d log p_t(z_t) / dt = -div v(z_t, t), so

  log p_0(x) = log N(z_1; 0, I) + integral_0^1 div v(z_t, t) dt,

integrated with fixed-step RK4 (FFJORD, Grathwohl et al. 2019; Song et al. 2021). The
divergence is Hutchinson's estimate e^T (dv/dz) e with one Rademacher probe e per image, kept
for the whole path (unbiased), or the exact trace from one Jacobian-vector product per
dimension (for a handful of images, to check the estimator).

Data scaling: a test image's pixels k in {0..255} are dequantized uniformly, k + u with
u ~ U[0, 1), and mapped to the model's space as x = (k + u) / 128 - 1 in [-1, 1); the density
of k + u is then p_0(x) / 128^D, so bits/dim = (-log p_0(x) / D + log 128) / log 2, an upper
bound on the discrete model's bits/dim (Theis et al. 2016).
"""

import functools
import math
import time

import jax
import jax.numpy as jnp
import numpy as np

from genjax.core import runs
from genjax.core.errors import ConfigError, field_error
from genjax.data import image_sets
from genjax.diffusion.state import apply_fn, sampling_params

EXACT_CHUNK = 98  # basis vectors per Jacobian-vector batch of the exact trace (784 = 8 x 98)
LOG_128 = math.log(128.0)


def to_model_space(pixels_NxHxW, u_NxHxW):
  """Dequantized pixels (k + u) / 128 - 1 in [-1, 1)."""
  return (pixels_NxHxW.astype(jnp.float32) + u_NxHxW) / 128.0 - 1.0


def bits_per_dim(log_px_N, dims: int):
  """Bits/dim of the dequantized pixels k + u from the model-space log-density log p_0(x)."""
  return (-log_px_N / dims + LOG_128) / math.log(2.0)


def hutchinson_divergence(velocity, z, t, probe):
  """probe^T (dv/dz) probe per example: an unbiased estimate of div v for a Rademacher probe.

  velocity must act on each example alone (the U-Net's GroupNorm and attention do)."""
  _, jv = jax.jvp(lambda y: velocity(y, t), (z,), (probe,))
  return jnp.sum((probe * jv).reshape(z.shape[0], -1), axis=1)


def exact_divergence(velocity, z, t, chunk: int = EXACT_CHUNK):
  """The trace of dv/dz per example: one Jacobian-vector product per dimension, `chunk` at
  a time (each batch of basis vectors serves every example, the Jacobian being block
  diagonal over examples)."""
  b, dims = z.shape[0], math.prod(z.shape[1:])
  chunk = math.gcd(chunk, dims)

  def diagonal(start):
    basis_CxD = jax.nn.one_hot(start + jnp.arange(chunk), dims, dtype=z.dtype)
    tangents = jnp.broadcast_to(basis_CxD[:, None], (chunk, b, dims)).reshape(chunk, *z.shape)
    jv = jax.vmap(lambda e: jax.jvp(lambda y: velocity(y, t), (z,), (e,))[1])(tangents)
    return jnp.einsum("cbd,cd->b", jv.reshape(chunk, b, dims), basis_CxD)

  return jax.lax.map(diagonal, jnp.arange(0, dims, chunk)).sum(axis=0)


def log_density(velocity, x, probe, steps: int, exact: bool = False):
  """(log p_0(x) with Hutchinson's divergence, the same with the exact one or None): RK4 over
  `steps` steps of the ODE from t = 0 to 1, both integrals along one path.

  The steps are uniform in u = sqrt(t) (t = u^2, dt = 2u du): a quarter of them below
  t = 1/16, where the density sharpens onto the data and the field changes fastest.
  """
  dims = math.prod(x.shape[1:])

  def rates(state, u):
    z, t = state[0], u * u
    div = [hutchinson_divergence(velocity, z, t, probe)]
    if exact:
      div.append(exact_divergence(velocity, z, t))
    return tuple(2.0 * u * r for r in (velocity(z, t), *div))

  def rk4(state, i):
    u, h = i.astype(jnp.float32) / steps, 1.0 / steps
    add = lambda s, k, c: tuple(a + c * b for a, b in zip(s, k))  # noqa: E731
    k1 = rates(state, u)
    k2 = rates(add(state, k1, h / 2), u + h / 2)
    k3 = rates(add(state, k2, h / 2), u + h / 2)
    k4 = rates(add(state, k3, h), u + h)
    return tuple(s + h / 6 * (a + 2 * b + 2 * c + d)
                 for s, a, b, c, d in zip(state, k1, k2, k3, k4)), None

  zeros = jnp.zeros((x.shape[0],), jnp.float32)
  start = (x, zeros, zeros) if exact else (x, zeros)
  end, _ = jax.lax.scan(rk4, start, jnp.arange(steps))
  z1 = end[0].reshape(x.shape[0], -1)
  log_prior = -0.5 * jnp.sum(z1 ** 2, axis=1) - 0.5 * dims * math.log(2 * math.pi)
  return log_prior + end[1], (log_prior + end[2]) if exact else None


@functools.partial(jax.jit, static_argnums=(0, 5, 6))
def _batch_log_density(static, params, x, labels, probe, steps: int, exact: bool):
  apply = apply_fn(static, params)
  velocity = lambda z, t: apply(z, jnp.full((z.shape[0],), t), labels)  # noqa: E731
  return log_density(velocity, x, probe, steps, exact)


def standard_error(values_N: np.ndarray) -> float | None:
  """The standard error of the mean over the images (None for one image)."""
  return float(values_N.std(ddof=1) / math.sqrt(len(values_N))) if len(values_N) > 1 else None


def check_args(num, steps, batch) -> None:
  for name, value in (("num", num), ("steps", steps), ("batch", batch)):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
      raise field_error(name, f"must be a positive integer, got {value!r}")


def evaluate_bits_per_dim(workdir, num: int = 100, steps: int = 32, exact: bool = False,
                          given_label: bool = False, seed: int = 0, batch: int = 50,
                          step: int | None = None) -> dict:
  """Bits/dim of the first `num` test images under a flow run's model (its sampling
  weights), with the standard error over images; with `exact`, also the exact trace's figure
  on the same paths, image by image. given_label: log p(x | y) with the true labels (a
  conditional run); else a conditional run's null label, the unconditional model p(x)."""
  check_args(num, steps, batch)
  run = runs.restore(workdir, families=("diffusion",), step=step)
  config = run.config
  if config.objective != "flow":
    raise ConfigError(f"workdir {workdir} holds a {config.objective} run; the likelihood "
                      "integrates a flow run's velocity (train --config.objective=flow)",
                      field="workdir")
  if given_label and not config.conditional:
    raise field_error("given_label", f"needs a conditional run; {workdir} is unconditional")
  pixels, labels = image_sets.load_arrays(image_sets.DataSpec.of(config), "test")
  if num > len(pixels):
    raise field_error("num", f"must be at most {len(pixels)} (the test split), got {num}")
  pixels = pixels[:num]
  labels = None if labels is None else np.asarray(labels[:num], np.int32)
  key_u, key_probe = jax.random.split(jax.random.key(seed))
  params, t0, rows = sampling_params(run.static, run.state), time.perf_counter(), []
  for i in range(0, num, batch):
    x = to_model_space(jnp.asarray(pixels[i:i + batch]),
                       jax.random.uniform(jax.random.fold_in(key_u, i), pixels[i:i + batch].shape))
    probe = jax.random.rademacher(jax.random.fold_in(key_probe, i), x.shape, jnp.float32)
    y = None
    if config.conditional:
      y = jnp.asarray(labels[i:i + batch]) if given_label else jnp.full(
          (x.shape[0],), run.static.num_classes)  # the null label
    rows.append(jax.device_get(_batch_log_density(run.static, params, x, y, probe, steps,
                                                  exact)))
  dims = math.prod(pixels.shape[1:])
  bpd = np.asarray(bits_per_dim(np.concatenate([r[0] for r in rows]), dims), np.float64)
  out = {"workdir": str(workdir), "step": run.step, "num": num, "steps": steps,
         "nfe_per_image": 4 * steps, "given_label": given_label, "seed": seed,
         "bits_per_dim": float(bpd.mean()), "standard_error": standard_error(bpd),
         "seconds": round(time.perf_counter() - t0, 1)}
  if exact:
    exact_bpd = np.asarray(bits_per_dim(np.concatenate([r[1] for r in rows]), dims), np.float64)
    diff = bpd - exact_bpd
    out["exact"] = {"bits_per_dim": float(exact_bpd.mean()),
                    "per_image_hutchinson": bpd.tolist(), "per_image_exact": exact_bpd.tolist(),
                    "mean_difference": float(diff.mean()), "difference_se": standard_error(diff)}
  return out
