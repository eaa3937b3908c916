"""Random shifts inside the step: each output is its input moved, background filled."""

import jax
import jax.numpy as jnp
import numpy as np

from genjax.nn.augment import translate_BxHxW


def test_each_image_is_its_input_shifted_within_range():
  images = jax.random.uniform(jax.random.key(0), (64, 9, 9), minval=-1.0, maxval=1.0)
  shifted = np.asarray(translate_BxHxW(images, jax.random.key(1), 2, -1.0))
  padded = np.pad(np.asarray(images), ((0, 0), (2, 2), (2, 2)), constant_values=-1.0)
  seen = set()
  for i in range(64):
    matches = [(dy, dx) for dy in range(5) for dx in range(5)
               if np.array_equal(padded[i, dy:dy + 9, dx:dx + 9], shifted[i])]
    assert len(matches) == 1, f"image {i} is no shift of its input"
    seen.add(matches[0])
  assert len(seen) > 15, "64 images should draw most of the 25 shifts"


def test_no_shift_is_the_identity_and_content_survives_a_small_shift():
  images = jnp.full((4, 28, 28), -1.0).at[:, 10:18, 10:18].set(1.0)  # a centred square
  np.testing.assert_array_equal(translate_BxHxW(images, jax.random.key(0), 0, -1.0), images)
  shifted = translate_BxHxW(images, jax.random.key(0), 3, -1.0)
  np.testing.assert_array_equal(jnp.sum(shifted > 0, axis=(1, 2)), 64)


def test_the_background_is_the_one_asked_for():
  images = jnp.ones((16, 6, 6))
  shifted = np.asarray(translate_BxHxW(images, jax.random.key(2), 2, 0.0))
  assert set(np.unique(shifted)) <= {0.0, 1.0} and (shifted == 0.0).any()
