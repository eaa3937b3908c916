"""Pixels as the models take them: uint8, 1 or 3 channels, optionally resized to S x S.

An image array is N x H x W for one channel and N x H x W x 3 for colour (MNIST's layout stays
as it was). `image_size` S resizes the shorter side to S (Pillow's bicubic filter, which
averages over the pixels a smaller image leaves out) and then keeps the centre S x S.
"""

import numpy as np
from PIL import Image

from genjax.core.errors import DataError

GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")


def channels_of_mode(mode: str) -> int:
  """1 for Pillow's grey modes, 3 for the rest (RGB, RGBA, P, CMYK, YCbCr, ...)."""
  return 1 if mode in GREY_MODES else 3


def target_size(size_wh: tuple[int, int], image_size: int) -> tuple[int, int]:
  """(width, height) after resizing the shorter side of size_wh to image_size."""
  width, height = size_wh
  if width <= height:
    return image_size, max(image_size, round(height * image_size / width))
  return max(image_size, round(width * image_size / height)), image_size


def fit(image: Image.Image, image_size: int) -> Image.Image:
  """The shorter side resized to image_size, then the centre image_size x image_size (0: as is)."""
  if not image_size or image.size == (image_size, image_size):
    return image
  width, height = target_size(image.size, image_size)
  if (width, height) != image.size:
    image = image.resize((width, height), Image.Resampling.BICUBIC)
  left, top = (width - image_size) // 2, (height - image_size) // 2
  return image.crop((left, top, left + image_size, top + image_size))


def to_mode(image: Image.Image, channels: int) -> Image.Image:
  """L for one channel, RGB for three; transparency goes over black, 16-bit grey to 8 bits."""
  if image.mode in ("I;16", "I;16B", "I;16L", "I"):
    array = np.asarray(image, np.float64)
    image = Image.fromarray((array / max(array.max(), 1) * 255).round().astype(np.uint8), "L")
  if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
    image = image.convert("RGBA")
    background = Image.new("RGBA", image.size, (0, 0, 0, 255))
    image = Image.alpha_composite(background, image)
  return image.convert("L" if channels == 1 else "RGB")


def image_array(image: Image.Image, channels: int, image_size: int) -> np.ndarray:
  """H x W (one channel) or H x W x 3 uint8 pixels of a Pillow image."""
  return np.asarray(fit(to_mode(image, channels), image_size), np.uint8)


def resize_arrays(images, image_size: int) -> np.ndarray:
  """N x H x W(x C) uint8 images each resized to image_size (0, or their size already: as is)."""
  images = np.asarray(images)
  if not image_size or images.shape[1:3] == (image_size, image_size):
    return images
  out = np.empty((len(images), image_size, image_size, *images.shape[3:]), np.uint8)
  for i, pixels in enumerate(images):
    out[i] = np.asarray(fit(Image.fromarray(pixels), image_size), np.uint8)
  return out


def check_array_images(images, where: str) -> np.ndarray:
  """uint8 N x H x W or N x H x W x C with C 1 or 3 (one channel returned as N x H x W)."""
  images = np.asarray(images)
  if images.dtype != np.uint8:
    raise DataError(f"{where}: images must be uint8, got {images.dtype}")
  if images.ndim == 4 and images.shape[-1] == 1:
    images = images[..., 0]
  if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] != 3):
    raise DataError(f"{where}: images must be N x H x W or N x H x W x C with C 1 or 3, got "
                    f"shape {images.shape}")
  if not len(images):
    raise DataError(f"{where}: no images")
  return images


def example_shape(image_shape) -> tuple:
  """An array's per-image shape for an (H, W, C) image shape: (H, W) for one channel."""
  height, width, channels = image_shape
  return (height, width) if channels == 1 else (height, width, channels)
