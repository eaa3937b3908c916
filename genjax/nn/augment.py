"""Image augmentations that run inside the jitted step (on device, per example)."""

import jax
import jax.numpy as jnp


def translate_BxHxW(images_BxHxW: jnp.ndarray, key: jax.Array, max_shift: int,
                    background: float) -> jnp.ndarray:
  """Each image shifted by its own random (dy, dx) in [-max_shift, max_shift]², the uncovered
  border filled with `background` (-1 for images in [-1, 1], 0 for [0, 1])."""
  if max_shift == 0:
    return images_BxHxW
  b, height, width = images_BxHxW.shape
  shifts_Bx2 = jax.random.randint(key, (b, 2), 0, 2 * max_shift + 1)
  pad = ((0, 0), (max_shift, max_shift), (max_shift, max_shift))
  padded = jnp.pad(images_BxHxW, pad, constant_values=background)
  crop = lambda img, s: jax.lax.dynamic_slice(img, (s[0], s[1]), (height, width))  # noqa: E731
  return jax.vmap(crop)(padded, shifts_Bx2)
