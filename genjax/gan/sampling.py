"""Samples of a GAN run: G in inference mode at any kept checkpoint, rebuilt from its record."""

import functools
from typing import Callable, NamedTuple

import jax
import ml_collections
import numpy as np

from genjax.core import checkpoint, sharding
from genjax.core.errors import CheckpointError
from genjax.data.images import NUM_CLASSES
from genjax.gan.config import ADDED_KEYS, RESUMABLE
from genjax.gan.state import build_gan, generate, init_state

SAMPLE_BATCH = 1000  # bounded memory for any number of samples


@functools.partial(jax.jit, static_argnums=0)
def images_01(gan, state, z_BxZ, labels_B):
  """G's images in [0, 1]; compiled once per GAN (it hashes by its config), not per call."""
  return generate(gan, state, z_BxZ, labels_B) * 0.5 + 0.5


def restore_generators(workdir, steps):
  """(gan, config, [(state, step), ...]) for each of `steps` (None: the newest), one model.

  The model is built from the checkpoint's own record, replicated onto this process's first
  device whatever device count wrote it.
  """
  manager = checkpoint.open_manager(workdir, max_to_keep=None, create=False)
  try:
    kept = sorted(manager.all_steps())
    if not kept:
      raise CheckpointError(f"no checkpoint in {checkpoint.checkpoint_dir(workdir)}")
    for step in steps:
      if step is not None and step not in kept:
        raise CheckpointError(f"no checkpoint of step {step} in "
                              f"{checkpoint.checkpoint_dir(workdir)} (it has {kept})")
    steps = [kept[-1] if step is None else step for step in steps]
    record = checkpoint.read_record(manager, steps[-1], ADDED_KEYS)
    if record["family"] != "gan":
      raise CheckpointError(f"{workdir} holds a {record['family']!r} run, not a GAN's")
    config = ml_collections.ConfigDict(record["config"])
    gan = build_gan(config)
    abstract = sharding.abstract_replicated(
        jax.eval_shape(lambda: init_state(gan, jax.random.key(0))), sharding.make_mesh(1))
    restored = [(checkpoint.restore_step(manager, step, abstract, record, RESUMABLE,
                                         added_keys=ADDED_KEYS), step)
                for step in steps]
  finally:
    manager.close()
  return gan, config, restored


def restore_generator(workdir, step: int | None = None):
  """(gan, state, config, step) of the checkpoint at `step` in workdir (None: the newest)."""
  gan, config, [(state, step)] = restore_generators(workdir, [step])
  return gan, state, config, step


class Draws(NamedTuple):
  """A restored G's image streams.

  draw(num, seed, label): the first num images in [0, 1] of seed's noise stream;
  chunk(seed, label, i): its i-th block of SAMPLE_BATCH images. label None: a conditional G's
  balanced labels (i mod 10).
  """

  draw: Callable
  chunk: Callable
  step: int
  num_classes: int
  config: ml_collections.ConfigDict


def gan_draws(workdir, step: int | None = None) -> Draws:
  """The image streams of a GAN checkpoint (None: the newest), restored once."""
  gan, state, config, step = restore_generator(workdir, step)

  def chunk(seed: int, label: int | None, i: int) -> np.ndarray:
    z = jax.random.normal(jax.random.fold_in(jax.random.key(seed), i * SAMPLE_BATCH),
                          (SAMPLE_BATCH, config.latent_dim))
    # label None: generate's balanced labels (SAMPLE_BATCH is a multiple of the classes).
    labels = None if label is None else np.full(SAMPLE_BATCH, label)
    return np.clip(np.asarray(images_01(gan, state, z, labels)), 0.0, 1.0).astype(np.float32)

  def draw(num: int, seed: int, label: int | None) -> np.ndarray:
    return np.concatenate([chunk(seed, label, i) for i in range(-(-num // SAMPLE_BATCH))])[:num]

  return Draws(draw, chunk, step, gan.num_classes, config)


def class_seed(seed: int, label: int) -> int:
  """The noise seed of class `label`'s samples at evaluation seed `seed`.

  Distinct for every (seed, label): two evaluation seeds never reuse a noise vector, so their
  spread is that of independent sample sets. Seed 0 keeps its classes' seeds 0..9.
  """
  return seed * NUM_CLASSES + label
