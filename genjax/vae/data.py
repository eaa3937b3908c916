"""VAE inputs: dynamic, static (one fixed Bernoulli draw) or no binarization of MNIST pixels."""

import jax
import jax.numpy as jnp
import numpy as np

from genjax.data.images import NUM_CLASSES, load_dataset

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


def load_pixels(config, split: str) -> tuple[np.ndarray, np.ndarray]:
  """(pixels uint8 [N,28,28], labels) as stored on device: raw, or fixed {0,1} for static."""
  images, labels = load_dataset(config.dataset, split, config.data_dir or None)
  if config.binarization == "static":
    images = fixed_binarization(images, config.binarize_seed, split)
  return images, labels


def to_inputs(pixels_BxHxW, binarization: str, key: jax.Array | None = None):
  """Float32 model inputs from stored pixels; dynamic draws fresh bits from `key` (on device)."""
  if binarization == "dynamic":
    return jax.random.bernoulli(key, pixels_BxHxW / 255.0).astype(jnp.float32)
  if binarization == "static":
    return pixels_BxHxW.astype(jnp.float32)
  return pixels_BxHxW.astype(jnp.float32) / 255.0


def one_hot(labels_B) -> jnp.ndarray | None:
  """Integer labels as a conditional model's inputs: one-hot float32 B x NUM_CLASSES (None
  stays None: an unconditional model takes no labels)."""
  return None if labels_B is None else jax.nn.one_hot(labels_B, NUM_CLASSES, dtype=jnp.float32)


def eval_inputs(config) -> tuple[np.ndarray, np.ndarray]:
  """(inputs float32 [N,28,28], labels) of the test split: binarized once with a fixed seed."""
  images, labels = load_dataset(config.dataset, "test", config.data_dir or None)
  if config.binarization == "none":
    return images.astype(np.float32) / 255.0, labels
  return fixed_binarization(images, config.binarize_seed, "test").astype(np.float32), labels
