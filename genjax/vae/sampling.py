"""Samples of a VAE/IWAE run: decoder means of prior draws, the model rebuilt from its record."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from genjax.core import runs
from genjax.core.errors import ConfigError
from genjax.vae import data as vae_data
from genjax.vae.state import decode_mean

SAMPLE_BATCH = 1000  # bounded memory for any number of samples
# Compiled once per model (a setup hashes by its config), not per call.
_decode_mean = jax.jit(decode_mean, static_argnums=0)


def sample_labels(num_classes: int, label: int | None, key, n: int):
  """One-hot labels of n samples: all `label`, or uniform draws from key if None; None for an
  unconditional run (num_classes 0)."""
  if not num_classes:
    return None
  if label is None:
    return vae_data.one_hot(jax.random.randint(key, (n,), 0, num_classes), num_classes)
  return vae_data.one_hot(jnp.full((n,), label), num_classes)


def sample_images(workdir, num: int, seed: int = 0, label: int | None = None,
                  step: int | None = None) -> np.ndarray:
  """(num, H, W[, C]) float32 in [0, 1] of the checkpoint at `step` (None: the newest)."""
  return draw_of(runs.restore(workdir, families=("vae",), step=step))(num, seed, label)


def draw_of(run: runs.Restored):
  """draw(num, seed, label) -> (num, H, W[, C]) float32 in [0, 1]: E[x|z] (Bernoulli
  probabilities) for z ~ N(0, I), decoded by a restored VAE.

  A conditional run decodes every z with `label`, or with None with labels drawn uniformly,
  so that the samples follow the marginal p(x). A seed's z are the same whatever the label.
  """
  setup, state, config = run.static, run.state, run.config
  if config.model == "ae":
    raise ConfigError(f"{run.workdir} holds an 'ae' run: a deterministic autoencoder has no "
                      "prior to sample from; train --config.model=vae or iwae")

  def draw(num: int, seed: int, label: int | None) -> np.ndarray:
    key = jax.random.key(seed)
    labels_key = jax.random.split(key)[1]  # a stream apart from the z draws' fold_in(key, i)
    chunks = []
    for i in range(0, num, SAMPLE_BATCH):
      z = jax.random.normal(jax.random.fold_in(key, i), (SAMPLE_BATCH, config.latent_dim))
      y = sample_labels(setup.num_classes, label, jax.random.fold_in(labels_key, i),
                        SAMPLE_BATCH)
      chunks.append(np.asarray(_decode_mean(setup, state.params, z, y)))
    return np.clip(np.concatenate(chunks)[:num], 0.0, 1.0).astype(np.float32)

  return draw
