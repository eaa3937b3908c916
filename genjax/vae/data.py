"""VAE inputs: dynamic, static (one fixed Bernoulli draw) or no binarization of the pixels."""

import jax
import jax.numpy as jnp
import numpy as np

from genjax.core.feed import ArraySource
from genjax.data import image_sets

BINARIZATIONS = ("dynamic", "static", "none")
_SPLIT_STREAM = {"train": 0, "test": 1}  # distinct fixed draws for the two splits


def fixed_binarization(images_NxHxW: np.ndarray, seed: int, split: str) -> np.ndarray:
  """One Bernoulli(pixel/255) draw per pixel from a fixed seed, as uint8 {0, 1}.

  Used for static training data and for every binarized test set, so test figures of runs
  with the same seed are computed on the very same bits.
  """
  rng = np.random.default_rng([seed, _SPLIT_STREAM[split]])
  return (rng.random(images_NxHxW.shape, np.float32) < images_NxHxW / np.float32(255.0)
          ).astype(np.uint8)


def training_pixels(config, labels: bool):
  """The training pixels as stored on the devices or streamed: raw uint8, or one fixed {0,1}
  draw for static binarization (drawn over the whole set, so held in host memory); labels
  too when asked. The data's shape and classes are recorded in config."""
  data = image_sets.training_set(config).with_labels(labels)
  if config.binarization != "static":
    return data
  images, labels_N = data.arrays()
  return ArraySource((fixed_binarization(images, config.binarize_seed, "train"), labels_N))


def to_inputs(pixels_BxHxW, binarization: str, key: jax.Array | None = None):
  """Float32 model inputs from stored pixels; dynamic draws fresh bits from `key` (on device)."""
  if binarization == "dynamic":
    return jax.random.bernoulli(key, pixels_BxHxW / 255.0).astype(jnp.float32)
  if binarization == "static":
    return pixels_BxHxW.astype(jnp.float32)
  return pixels_BxHxW.astype(jnp.float32) / 255.0


def one_hot(labels_B, num_classes: int) -> jnp.ndarray | None:
  """Integer labels as a conditional model's inputs: one-hot float32 B x num_classes (None
  stays None: an unconditional model takes no labels)."""
  return None if labels_B is None else jax.nn.one_hot(labels_B, num_classes, dtype=jnp.float32)


def eval_inputs(config) -> tuple[np.ndarray, np.ndarray | None]:
  """(inputs float32 [N, ...], labels or None) of the test split: binarized once with a fixed
  seed."""
  images, labels = image_sets.load_arrays(image_sets.DataSpec.of(config), "test")
  if config.binarization == "none":
    return images.astype(np.float32) / 255.0, labels
  return fixed_binarization(images, config.binarize_seed, "test").astype(np.float32), labels
