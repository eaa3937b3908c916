"""Test-set figures in nats: negative ELBO, IWAE bound and the importance-sampled NLL.

One set of K draws z_k ~ q(z|x) per test image gives all three: the ELBO's reconstruction
term is their mean (with the analytic KL), the k-sample bound is averaged over the K/k
disjoint groups, and log p(x) ~ log (1/K) sum_k w_k over all of them (K = 5000, Burda et al.).
Draws are decoded k_chunk at a time and only the K x B log-weights are kept, so memory stays
bounded for any K. A conditional model is evaluated given each image's true label: its
figures bound log p(x|y), not log p(x).
"""

import functools
import time

import jax
import numpy as np
import tqdm

from genjax.vae import data as vae_data, losses as vae_losses
from genjax.vae.state import VAESetup, decode, decoder_log_prob, encode, log_weights_KxB


@functools.partial(jax.jit, static_argnums=(0, 4, 5, 6))
def batch_bounds(setup: VAESetup, params, x_BxHxW, key, num_samples: int, k_chunk: int,
                 iwae_k: int, labels_B=None) -> dict:
  """Per-example neg ELBO, KL, neg k-sample bound and neg log p(x[|y]) estimate from K draws."""
  y_BxC = vae_data.one_hot(labels_B, setup.num_classes)
  mean_BxZ, logvar_BxZ = encode(setup, params, x_BxHxW, y_BxC)
  chunks = -(-num_samples // k_chunk)

  def one_chunk(key):
    return log_weights_KxB(setup, params, x_BxHxW, mean_BxZ, logvar_BxZ, key, k_chunk, y_BxC)

  log_px_CxKxB, log_w_CxKxB = jax.lax.map(one_chunk, jax.random.split(key, chunks))
  b = x_BxHxW.shape[0]
  log_px_KxB = log_px_CxKxB.reshape(chunks * k_chunk, b)[:num_samples]
  log_w_KxB = log_w_CxKxB.reshape(chunks * k_chunk, b)[:num_samples]
  kl_B = vae_losses.gaussian_kl_B(mean_BxZ, logvar_BxZ)
  return {"neg_elbo": -log_px_KxB.mean(axis=0) + kl_B, "kl": kl_B,
          "neg_iwae_bound": -vae_losses.grouped_iwae_bound_B(log_w_KxB, iwae_k),
          "nll": -vae_losses.iwae_bound_B(log_w_KxB)}


@functools.partial(jax.jit, static_argnums=0)
def batch_reconstruction(setup: VAESetup, params, x_BxHxW, labels_B=None) -> dict:
  """Per-example -log p(x | code[, y]) of the autoencoder."""
  y_BxC = vae_data.one_hot(labels_B, setup.num_classes)
  code_BxZ, _ = encode(setup, params, x_BxHxW, y_BxC)
  return {"recon": -decoder_log_prob(setup, params, decode(setup, params, code_BxZ, y_BxC),
                                     x_BxHxW)}


def _padded_batches(x_NxHxW: np.ndarray, batch: int, labels_N: np.ndarray | None = None):
  """(start, x batch, labels batch or None) over x, the last batch padded by repeating
  images: one compile only."""
  n = len(x_NxHxW)

  def padded(a_N):
    return np.concatenate([a_N, a_N[:(-n) % batch]]) if n % batch else a_N

  x, labels = padded(x_NxHxW), None if labels_N is None else padded(np.asarray(labels_N))
  for start in range(0, n, batch):
    yield start, x[start:start + batch], None if labels is None else labels[start:start + batch]


def evaluate(setup: VAESetup, params, x_NxHxW: np.ndarray, key: jax.Array, *, iwae_k: int,
             nll_k: int, batch: int, k_chunk: int, progress: bool = False,
             labels_N: np.ndarray | None = None) -> dict:
  """Means over x of the test figures (nats); nll_k=0 skips the log p(x) estimate.

  A conditional setup needs the true labels_N of x: the figures are then about log p(x|y).
  """
  n, t0 = len(x_NxHxW), time.perf_counter()
  num_samples = max(nll_k, iwae_k)
  per_example: dict[str, list] = {}
  bar = tqdm.tqdm(total=n, disable=not progress, unit="img", desc="eval", leave=False)
  for start, x_BxHxW, labels_B in _padded_batches(x_NxHxW, batch, labels_N):
    if setup.recipe.model == "ae":
      out = batch_reconstruction(setup, params, x_BxHxW, labels_B)
    else:
      out = batch_bounds(setup, params, x_BxHxW, jax.random.fold_in(key, start), num_samples,
                         min(k_chunk, num_samples), iwae_k, labels_B)
    for name, values_B in out.items():
      per_example.setdefault(name, []).append(np.asarray(values_B, np.float64))
    bar.update(min(batch, n - start))
  bar.close()
  result = {name: float(np.concatenate(v)[:n].mean()) for name, v in per_example.items()}
  if setup.recipe.model != "ae":
    result["iwae_k"] = iwae_k
    if nll_k:
      result["nll_k"] = nll_k
    else:
      del result["nll"]
  return {"num_examples": n, **result, "eval_s": round(time.perf_counter() - t0, 2)}


@functools.partial(jax.jit, static_argnums=0)
def _encode_means(setup: VAESetup, params, x_BxHxW, labels_B=None):
  return encode(setup, params, x_BxHxW, vae_data.one_hot(labels_B, setup.num_classes))[0]


def encode_all(setup: VAESetup, params, x_NxHxW: np.ndarray, batch: int = 1000,
               labels_N: np.ndarray | None = None) -> np.ndarray:
  """Posterior means (VAE) or codes (AE) of every image (given its label if conditional), N x Z."""
  codes = [np.asarray(_encode_means(setup, params, x, labels))
           for _, x, labels in _padded_batches(x_NxHxW, batch, labels_N)]
  return np.concatenate(codes)[:len(x_NxHxW)]


def active_units(codes_NxZ: np.ndarray, threshold: float = 1e-2) -> int:
  """Burda et al.'s count of latent dimensions whose posterior mean varies with x."""
  return int(np.sum(codes_NxZ.var(axis=0) > threshold))
