"""Samples of a VAE/IWAE run for experiments/sample.py: decoder means of prior draws."""

import functools

import jax
import numpy as np

from genjax import checkpoint
from genjax.errors import CheckpointError, ConfigError
from genjax.vae_state import IDENTITY_KEYS, build_setup, decode_mean, init_state

SAMPLE_BATCH = 1000  # bounded memory for any --num


def restore_vae(workdir, config):
  """(setup, state, step) of the newest checkpoint in workdir."""
  setup = build_setup(config)
  abstract = jax.eval_shape(lambda: init_state(setup, jax.random.key(0)))
  manager = checkpoint.open_manager(workdir, max_to_keep=None, create=False)
  try:
    state, step = checkpoint.restore_latest(manager, abstract,
                                            checkpoint.identity_of(config, IDENTITY_KEYS))
  finally:
    manager.close()
  if state is None:
    raise CheckpointError(f"no checkpoint in {checkpoint.checkpoint_dir(workdir)}")
  return setup, state, step


def sample_images(workdir, config, num: int, seed: int = 0) -> np.ndarray:
  """(num, 28, 28) float32 in [0, 1]: E[x|z] (Bernoulli probabilities) for z ~ N(0, I)."""
  if config.model == "ae":
    raise ConfigError(f"{workdir} holds an 'ae' run: a deterministic autoencoder has no prior "
                      "to sample from; train --config.model=vae or iwae")
  setup, state, _ = restore_vae(workdir, config)
  gen = jax.jit(functools.partial(decode_mean, setup))
  key = jax.random.key(seed)
  chunks = []
  for i in range(0, num, SAMPLE_BATCH):
    z = jax.random.normal(jax.random.fold_in(key, i), (SAMPLE_BATCH, config.latent_dim))
    chunks.append(np.asarray(gen(state.params, z)))
  return np.clip(np.concatenate(chunks)[:num], 0.0, 1.0).astype(np.float32)
