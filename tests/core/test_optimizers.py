"""Adam's two forms: Keras' against its formula, optax's unchanged, one state tree for both."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from genjax.core import optimizers

LR, B1, B2, EPS = 2e-4, 0.5, 0.999, 1e-7


def keras_formula(params, grads_seq):
  """keras.optimizers.Adam written out in float64: eps added to the raw root of v."""
  p, m, v = np.float64(params), np.zeros_like(params, np.float64), np.zeros_like(params, np.float64)
  for t, g in enumerate(grads_seq, start=1):
    m += (g - m) * (1 - B1)
    v += (g * g - v) * (1 - B2)
    p -= m * (LR * np.sqrt(1 - B2 ** t) / (1 - B1 ** t)) / (np.sqrt(v) + EPS)
  return p


def run(tx, params, grads_seq):
  state = tx.init(params)
  for g in grads_seq:
    updates, state = tx.update(jnp.asarray(g, jnp.float32), state, params)
    params = optax.apply_updates(params, updates)
  return params, state


# Gradients from 1e-8 (where the forms differ most) to 1.
GRADS = [np.random.default_rng(s).normal(size=64) * np.logspace(-8, 0, 64) for s in range(5)]
PARAMS = jnp.linspace(-1.0, 1.0, 64, dtype=jnp.float32)


def test_keras_form_follows_keras_formula():
  params, _ = run(optimizers.adam(LR, B1, B2, EPS, "keras"), PARAMS, GRADS)
  # A few float32 roundings of parameters up to 1; the forms differ by up to lr a step.
  np.testing.assert_allclose(params, keras_formula(np.asarray(PARAMS), GRADS), rtol=0, atol=5e-7)


def test_optax_form_is_optax_adam_and_differs_for_small_gradients():
  ours, state = run(optimizers.adam(LR, B1, B2, EPS, "optax"), PARAMS, GRADS)
  theirs, _ = run(optax.adam(LR, b1=B1, b2=B2, eps=EPS), PARAMS, GRADS)
  np.testing.assert_array_equal(ours, theirs)
  keras = keras_formula(np.asarray(PARAMS), GRADS)
  moved_ours, moved_keras = np.abs(ours - PARAMS), np.abs(keras - PARAMS)
  # Large gradients: both move by about lr a step; tiny ones: Keras' larger eps damps the step.
  np.testing.assert_allclose(moved_ours[-8:], moved_keras[-8:], rtol=1e-3)
  assert np.all(moved_keras[:8] < 0.5 * moved_ours[:8])


def test_both_forms_share_one_state_tree():
  keras_state = optimizers.adam(LR, B1, B2, EPS, "keras").init({"w": PARAMS})
  optax_state = optimizers.adam(LR, B1, B2, EPS, "optax").init({"w": PARAMS})
  assert jax.tree.structure(keras_state) == jax.tree.structure(optax_state)
  _, state = run(optimizers.adam(LR, B1, B2, EPS, "keras"), PARAMS, GRADS)
  assert int(state[0].count) == len(GRADS)


def test_unknown_form_is_refused():
  with pytest.raises(ValueError, match="unknown Adam form 'adamw'"):
    optimizers.adam(LR, B1, B2, EPS, "adamw")
