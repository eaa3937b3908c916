"""Samples of a GAN run: G in inference mode at any kept checkpoint, rebuilt from its record."""

import functools
from typing import Callable, NamedTuple

import jax
import ml_collections
import numpy as np

from genjax.core import runs
from genjax.data.images import NUM_CLASSES
from genjax.gan.state import generate

SAMPLE_BATCH = 1000  # bounded memory for any number of samples


@functools.partial(jax.jit, static_argnums=0)
def images_01(gan, state, z_BxZ, labels_B):
  """G's images in [0, 1]; compiled once per GAN (it hashes by its config), not per call."""
  return generate(gan, state, z_BxZ, labels_B) * 0.5 + 0.5


def restore_generators(workdir, steps):
  """(gan, config, [(state, step), ...]) for each of `steps` (None: the newest readable), the
  model built once from the run's record, replicated onto this process's first device whatever
  device count wrote it."""
  with runs.RunFolder(workdir, families=("gan",)) as folder:
    restored = [folder.restore(step) for step in steps]
  return restored[-1].static, restored[-1].config, [(r.state, r.step) for r in restored]


def restore_generator(workdir, step: int | None = None):
  """(gan, state, config, step) of the checkpoint at `step` in workdir (None: the newest)."""
  gan, config, [(state, step)] = restore_generators(workdir, [step])
  return gan, state, config, step


class Draws(NamedTuple):
  """A restored G's image streams.

  draw(num, seed, label): the first num images in [0, 1] of seed's noise stream;
  chunk(seed, label, i): its i-th block of SAMPLE_BATCH images. label None: a conditional G's
  balanced labels (i mod K).
  """

  draw: Callable
  chunk: Callable
  step: int
  num_classes: int
  config: ml_collections.ConfigDict


def gan_draws(workdir, step: int | None = None) -> Draws:
  """The image streams of a GAN checkpoint (None: the newest), restored once."""
  return draws_of(runs.restore(workdir, families=("gan",), step=step))


def draws_of(run: runs.Restored) -> Draws:
  """The image streams of a restored GAN checkpoint."""
  gan, state, config, step = run.static, run.state, run.config, run.step

  def chunk(seed: int, label: int | None, i: int) -> np.ndarray:
    z = jax.random.normal(jax.random.fold_in(jax.random.key(seed), i * SAMPLE_BATCH),
                          (SAMPLE_BATCH, config.latent_dim))
    # label None: generate's balanced labels (i mod K over each block).
    labels = None if label is None else np.full(SAMPLE_BATCH, label)
    return np.clip(np.asarray(images_01(gan, state, z, labels)), 0.0, 1.0).astype(np.float32)

  def draw(num: int, seed: int, label: int | None) -> np.ndarray:
    return np.concatenate([chunk(seed, label, i) for i in range(-(-num // SAMPLE_BATCH))])[:num]

  return Draws(draw, chunk, step, gan.num_classes, config)


def class_seed(seed: int, label: int, num_classes: int = NUM_CLASSES) -> int:
  """The noise seed of class `label`'s samples at evaluation seed `seed` (of num_classes).

  Distinct for every (seed, label): two evaluation seeds never reuse a noise vector, so their
  spread is that of independent sample sets. Seed 0 keeps its classes' seeds 0..K-1.
  """
  return seed * num_classes + label
