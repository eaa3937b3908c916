"""Samples of a VAE/IWAE run for experiments/sample.py: decoder means of prior draws."""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from genjax import checkpoint, vae_data
from genjax.config_defaults import config_value
from genjax.errors import CheckpointError, ConfigError
from genjax.sampling import check_label
from genjax.vae_models import NUM_CLASSES
from genjax.vae_state import build_setup, decode_mean, init_state, restore_identity

SAMPLE_BATCH = 1000  # bounded memory for any --num


def restore_vae(workdir, config):
  """(setup, state, step) of the newest checkpoint in workdir."""
  setup = build_setup(config)
  abstract = jax.eval_shape(lambda: init_state(setup, jax.random.key(0)))
  manager = checkpoint.open_manager(workdir, max_to_keep=None, create=False)
  try:
    state, step = checkpoint.restore_latest(manager, abstract, restore_identity(config))
  finally:
    manager.close()
  if state is None:
    raise CheckpointError(f"no checkpoint in {checkpoint.checkpoint_dir(workdir)}")
  return setup, state, step


def sample_labels(config, label: int | None, key, n: int):
  """One-hot labels of n samples: all `label`, or uniform draws from key if None; None for an
  unconditional run."""
  if not config_value(config, "conditional"):
    return None
  if label is None:
    return vae_data.one_hot(jax.random.randint(key, (n,), 0, NUM_CLASSES))
  return vae_data.one_hot(jnp.full((n,), label))


def sample_images(workdir, config, num: int, seed: int = 0, label: int | None = None
                  ) -> np.ndarray:
  """(num, 28, 28) float32 in [0, 1]: E[x|z] (Bernoulli probabilities) for z ~ N(0, I).

  A conditional run decodes every z with `label`, or with None with labels drawn uniformly,
  so that the samples follow the marginal p(x). A seed's z are the same whatever the label.
  """
  if config.model == "ae":
    raise ConfigError(f"{workdir} holds an 'ae' run: a deterministic autoencoder has no prior "
                      "to sample from; train --config.model=vae or iwae")
  check_label(label, config, workdir)
  setup, state, _ = restore_vae(workdir, config)
  gen = jax.jit(functools.partial(decode_mean, setup))
  key = jax.random.key(seed)
  labels_key = jax.random.split(key)[1]  # a stream apart from the z draws' fold_in(key, i)
  chunks = []
  for i in range(0, num, SAMPLE_BATCH):
    z = jax.random.normal(jax.random.fold_in(key, i), (SAMPLE_BATCH, config.latent_dim))
    y = sample_labels(config, label, jax.random.fold_in(labels_key, i), SAMPLE_BATCH)
    chunks.append(np.asarray(gen(state.params, z, y)))
  return np.clip(np.concatenate(chunks)[:num], 0.0, 1.0).astype(np.float32)
