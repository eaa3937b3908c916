"""Data from a known Gaussian N(mu, Sigma) and the exact optimal predictions for it.

With z = a x + s e, C = a^2 Sigma + s^2 I: E[e | z] = s C^-1 (z - a mu) and
E[x | z] = mu + a Sigma C^-1 (z - a mu); the optimal noise prediction is the first, the
optimal velocity their difference. Per dimension (in Sigma's eigenbasis, eigenvalue l) the
least mean squared errors are a^2 l / (a^2 l + s^2) for the noise and l (a + s)^2 /
(a^2 l + s^2) for the velocity.
"""

import jax.numpy as jnp
import numpy as np

from genjax.diffusion import paths

MU = np.array([0.5, -0.3], np.float32)
SIGMA = np.array([[0.30, 0.10], [0.10, 0.20]], np.float32)


def draw(rng, n: int) -> np.ndarray:
  return rng.multivariate_normal(MU, SIGMA, size=n).astype(np.float32)


def _posterior(objective, z_BxD, t):
  a, s = paths.coefficients(objective, t)
  c = a ** 2 * jnp.asarray(SIGMA) + s ** 2 * jnp.eye(2)
  w_BxD = jnp.linalg.solve(c, (z_BxD - a * jnp.asarray(MU)).T).T  # C^-1 (z - a mu)
  return s * w_BxD, jnp.asarray(MU) + a * w_BxD @ jnp.asarray(SIGMA).T  # E[e|z], E[x|z]


def optimal(objective: str):
  """predict(z_BxD, t): the exact E[e | z_t] (ddpm) or E[e - x | z_t] (flow)."""
  def predict(z_BxD, t):
    e_hat, x_hat = _posterior(objective, z_BxD, t)
    return e_hat if objective == "ddpm" else e_hat - x_hat
  return predict


def least_loss(objective: str, t: float) -> float:
  """The optimal predictor's expected loss at time t, averaged over the dimensions."""
  a, s = (float(v) for v in paths.coefficients(objective, t))
  lam = np.linalg.eigvalsh(SIGMA.astype(np.float64))
  if objective == "ddpm":
    per_dim = a ** 2 * lam / (a ** 2 * lam + s ** 2)
  else:
    per_dim = lam * (a + s) ** 2 / (a ** 2 * lam + s ** 2)
  return float(per_dim.mean())
