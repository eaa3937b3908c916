"""Samples of a diffusion run: any kept checkpoint, rebuilt from its record, drawn with the
sampler, evaluations and guidance its config names or with others asked for."""

from typing import Callable, NamedTuple

import jax
import numpy as np

from genjax.core import runs
from genjax.diffusion import config as diffusion_config
from genjax.diffusion.state import balanced_labels, generate, sampling_params


class Settings(NamedTuple):
  """How a run's samples are drawn."""

  sampler: str
  nfe: int
  guidance: float


def settings_of(config, sampler=None, nfe=None, guidance=None) -> Settings:
  """The config's sampler, nfe and guidance, each replaced where given; checked, an error
  naming the argument (`nfe`) where it was given and the config key where not."""
  given = (sampler, nfe, guidance)
  chosen = Settings(*(c if g is None else g for c, g in zip(
      (config.sampler, config.nfe, config.guidance), given)))
  fields = tuple(f"config.{name}" if g is None else name
                 for name, g in zip(Settings._fields, given))
  diffusion_config.check_sampling(config.objective, config.conditional, *chosen, fields)
  return chosen._replace(guidance=float(chosen.guidance))


def images_01(static, params, noise_B, labels_B, key, settings: Settings) -> np.ndarray:
  """float32 images in [0, 1], shaped like noise_B (B x H x W, or B x H x W x C)."""
  images = generate(static, params, noise_B, labels_B, key, *settings)
  return np.clip(np.asarray(images) * 0.5 + 0.5, 0.0, 1.0).astype(np.float32)


class Draws(NamedTuple):
  """A restored run's image stream: draw(num, seed, label) -> the first num images in [0, 1]
  of seed's noise stream (label None: a conditional run's balanced labels, sample i of class
  i mod num_classes)."""

  draw: Callable
  step: int
  num_classes: int
  settings: Settings


def draws_of(run: runs.Restored, sampler=None, nfe=None, guidance=None) -> Draws:
  """The image stream of a restored diffusion checkpoint, with the given sampling settings
  (None: the config's)."""
  static, config = run.static, run.config
  settings = settings_of(config, sampler, nfe, guidance)
  params = sampling_params(static, run.state)
  batch = config.eval_batch

  def chunk(seed: int, label: int | None, i: int) -> np.ndarray:
    key = jax.random.fold_in(jax.random.key(seed), i)
    noise_key, sampler_key = jax.random.split(key)
    noise = jax.random.normal(noise_key, (batch, *static.example_shape))
    labels = None
    if static.num_classes:
      labels = (balanced_labels(batch, static.num_classes, i * batch) if label is None
                else np.full(batch, label, np.int32))
    return images_01(static, params, noise, labels, sampler_key, settings)

  def draw(num: int, seed: int, label: int | None) -> np.ndarray:
    return np.concatenate([chunk(seed, label, i) for i in range(-(-num // batch))])[:num]

  return Draws(draw, run.step, static.num_classes, settings)
