"""Image augmentations that run inside the jitted step (on device, per example)."""

import jax
import jax.numpy as jnp


def translate_BxHxW(images_BxHxW: jnp.ndarray, key: jax.Array, max_shift: int,
                    background: float) -> jnp.ndarray:
  """Each image shifted by its own random (dy, dx) in [-max_shift, max_shift]², the uncovered
  border filled with `background` (-1 for images in [-1, 1], 0 for [0, 1]). Colour images
  (B x H x W x C) shift all their channels alike."""
  if max_shift == 0:
    return images_BxHxW
  b, height, width = images_BxHxW.shape[:3]
  channels = images_BxHxW.shape[3:]  # () or (C,)
  shifts_Bx2 = jax.random.randint(key, (b, 2), 0, 2 * max_shift + 1)
  pad = ((0, 0), (max_shift, max_shift), (max_shift, max_shift)) + ((0, 0),) * len(channels)
  padded = jnp.pad(images_BxHxW, pad, constant_values=background)
  zeros = (0,) * len(channels)
  crop = lambda img, s: jax.lax.dynamic_slice(  # noqa: E731
      img, (s[0], s[1], *zeros), (height, width, *channels))
  return jax.vmap(crop)(padded, shifts_Bx2)
