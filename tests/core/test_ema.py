"""The moving average of weights every family shares."""

import jax.numpy as jnp
import numpy as np

from genjax.core.ema import ema_copy, ema_decay_at, ema_update


def test_ema_update_arithmetic():
  ema = {"a": jnp.array([1.0, 2.0]), "b": {"c": jnp.array(10.0)}}
  new = {"a": jnp.array([3.0, 0.0]), "b": {"c": jnp.array(0.0)}}
  out = ema_update(ema, new, 0.75)
  np.testing.assert_allclose(out["a"], [0.75 * 1 + 0.25 * 3, 0.75 * 2])
  np.testing.assert_allclose(out["b"]["c"], 7.5)


def test_ema_decay_warms_up_then_holds():
  np.testing.assert_allclose(ema_decay_at(0.999, 0), 0.1)  # (1 + 0) / (10 + 0)
  np.testing.assert_allclose(ema_decay_at(0.999, 90), 91 / 100)
  np.testing.assert_allclose(ema_decay_at(0.999, 10 ** 6), 0.999)


def test_ema_copy_is_a_separate_buffer_with_equal_values():
  tree = {"w": jnp.arange(3.0)}
  copy = ema_copy(tree)
  np.testing.assert_array_equal(copy["w"], tree["w"])
  assert copy["w"].unsafe_buffer_pointer() != tree["w"].unsafe_buffer_pointer()
