"""The stable logits-based losses equal sigmoid + binary cross-entropy."""

import jax.numpy as jnp
import numpy as np

from genjax import losses


def test_bce_matches_sigmoid_formula():
  logits = jnp.array([-3.0, -0.5, 0.0, 0.7, 4.0])
  p = 1 / (1 + np.exp(-np.asarray(logits, np.float64)))
  np.testing.assert_allclose(losses.sigmoid_bce_B(logits, 1.0), -np.log(p), rtol=1e-5)
  np.testing.assert_allclose(losses.sigmoid_bce_B(logits, 0.0), -np.log(1 - p), rtol=1e-5)


def test_bce_is_finite_for_saturated_logits():
  logits = jnp.array([-200.0, 200.0])
  real = losses.sigmoid_bce_B(logits, 1.0)
  assert np.isfinite(real).all()
  np.testing.assert_allclose(real, [200.0, 0.0], atol=1e-5)


def test_discriminator_loss_and_accuracy():
  logits = jnp.array([2.0, -1.0, 0.5, -3.0])
  loss, acc = losses.discriminator_loss(logits, 1.0)
  assert float(acc) == 0.5
  _, acc_fake = losses.discriminator_loss(logits, 0.0)
  assert float(acc_fake) == 0.5
  np.testing.assert_allclose(loss, losses.sigmoid_bce_B(logits, 1.0).mean())


def test_generator_loss_labels_fakes_real():
  logits = jnp.array([0.3, -0.2])
  np.testing.assert_allclose(losses.generator_loss(logits),
                             np.mean(np.log1p(np.exp(-np.asarray(logits)))), rtol=1e-6)
