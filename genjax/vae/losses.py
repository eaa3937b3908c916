"""VAE mathematics as pure per-example functions, in nats; callers choose the reduction.

Images are summed over their pixel axes (the last two, or three in colour: `axes`) and latents
over their last axis, so every function also takes a leading sample axis K (K x B x ...) for
importance sampling.
"""

import math

import jax
import jax.numpy as jnp

LOG_2PI = math.log(2.0 * math.pi)
PIXEL_AXES = (-2, -1)


def reparameterize(key: jax.Array, mean_BxZ, logvar_BxZ, num_samples: int | None = None):
  """z = mu + sigma * eps with eps ~ N(0, I) from `key`: B x Z, or K x B x Z with num_samples."""
  shape = mean_BxZ.shape if num_samples is None else (num_samples, *mean_BxZ.shape)
  eps = jax.random.normal(key, shape, mean_BxZ.dtype)
  return mean_BxZ + jnp.exp(0.5 * logvar_BxZ) * eps


def gaussian_kl_B(mean_BxZ, logvar_BxZ):
  """KL(N(mu, diag sigma^2) || N(0, I)) in closed form, per example."""
  return 0.5 * jnp.sum(jnp.exp(logvar_BxZ) + mean_BxZ ** 2 - 1.0 - logvar_BxZ, axis=-1)


def std_normal_log_prob(z_xZ):
  """log N(z; 0, I) summed over the latent axis."""
  return -0.5 * jnp.sum(z_xZ ** 2 + LOG_2PI, axis=-1)


def diag_normal_log_prob(z_xZ, mean_xZ, logvar_xZ):
  """log N(z; mu, diag exp(logvar)) summed over the latent axis."""
  return -0.5 * jnp.sum((z_xZ - mean_xZ) ** 2 * jnp.exp(-logvar_xZ) + logvar_xZ + LOG_2PI,
                        axis=-1)


def bernoulli_log_prob(logits_xHxW, x_xHxW, axes=PIXEL_AXES):
  """log Bernoulli(x; sigmoid(logits)) summed over pixels; x may be grey (the usual BCE)."""
  # x*l - softplus(l) is log sigmoid(l) for x=1 and log(1 - sigmoid(l)) for x=0, never saturating.
  return jnp.sum(x_xHxW * logits_xHxW - jax.nn.softplus(logits_xHxW), axis=axes)


def gaussian_log_prob(mean_xHxW, log_std, x_xHxW, axes=PIXEL_AXES):
  """log N(x; mean, exp(log_std)^2 I) summed over pixels; log_std is a scalar or per pixel."""
  z = (x_xHxW - mean_xHxW) * jnp.exp(-log_std)
  return jnp.sum(-0.5 * z ** 2 - log_std - 0.5 * LOG_2PI, axis=axes)


def neg_elbo_B(recon_log_prob_B, kl_B, beta: float = 1.0):
  """-ELBO = -E_q log p(x|z) + beta KL(q || p); beta != 1 is the beta-VAE objective."""
  return -recon_log_prob_B + beta * kl_B


def log_importance_weights_KxB(recon_log_prob_KxB, z_KxBxZ, mean_BxZ, logvar_BxZ):
  """log w_k = log p(x|z_k) + log p(z_k) - log q(z_k|x) for z_k ~ q(z|x)."""
  return (recon_log_prob_KxB + std_normal_log_prob(z_KxBxZ)
          - diag_normal_log_prob(z_KxBxZ, mean_BxZ, logvar_BxZ))


def iwae_bound_B(log_w_KxB):
  """log (1/K) sum_k w_k, the K-sample importance-weighted bound (Burda et al. 2016)."""
  return jax.nn.logsumexp(log_w_KxB, axis=0) - math.log(log_w_KxB.shape[0])


def grouped_iwae_bound_B(log_w_KxB, k: int):
  """The k-sample bound averaged over the K/k disjoint groups of K samples (lower variance)."""
  groups = log_w_KxB.shape[0] // k
  return iwae_bound_B(log_w_KxB[:groups * k].reshape(k, groups, -1)).mean(axis=0)
