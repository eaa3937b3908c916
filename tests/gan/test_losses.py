"""The stable logits-based losses equal sigmoid + binary cross-entropy."""

import jax.numpy as jnp
import numpy as np

from genjax.gan import losses


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


# --- the other loss families and the penalties --------------------------------------------

import jax  # noqa: E402
import pytest  # noqa: E402

REAL = jnp.array([2.0, 0.5, -1.5])
FAKE = jnp.array([-2.0, 0.3, 1.0])


@pytest.mark.parametrize("loss, d_real, d_fake, g", [
    # hinge: relu(1 - r), relu(1 + f), -f
    ("hinge", [0.0, 0.5, 2.5], [0.0, 1.3, 2.0], [2.0, -0.3, -1.0]),
    # wgan: -r, f, -f
    ("wgan", [-2.0, -0.5, 1.5], [-2.0, 0.3, 1.0], [2.0, -0.3, -1.0]),
    # lsgan: (r-1)²/2, f²/2, (f-1)²/2
    ("lsgan", [0.5, 0.125, 3.125], [2.0, 0.045, 0.5], [4.5, 0.245, 0.0]),
])
def test_loss_families_on_hand_computed_values(loss, d_real, d_fake, g):
  np.testing.assert_allclose(losses.d_real_term_B(loss, REAL), d_real, rtol=1e-6)
  np.testing.assert_allclose(losses.d_fake_term_B(loss, FAKE), d_fake, rtol=1e-6)
  np.testing.assert_allclose(losses.g_term_B(loss, FAKE), g, rtol=1e-6)
  assert float(losses.generator_loss(FAKE, loss)) == pytest.approx(np.mean(g), rel=1e-6)


def test_hinge_accuracy_threshold_and_lsgan_midpoint():
  np.testing.assert_array_equal(losses.accuracy_B("hinge", REAL, 1.0), [1, 1, 0])
  np.testing.assert_array_equal(losses.accuracy_B("lsgan", jnp.array([0.6, 0.4]), 1.0), [1, 0])


def tiny_critic(x_BxHxW):
  """A smooth nonlinear D with known parameters, so finite differences are well conditioned."""
  w = jnp.sin(jnp.arange(12.0)).reshape(3, 4)
  h = jnp.tanh(x_BxHxW.reshape(x_BxHxW.shape[0], -1) @ w)
  return jnp.sum(h * jnp.array([1.0, -2.0, 0.5, 3.0]), axis=-1)


def finite_difference_grad_norms(fn, x_BxD, eps=1e-3):
  x = np.asarray(x_BxD, np.float64)
  grads = np.zeros_like(x)
  for i in range(x.shape[1]):
    step = np.zeros_like(x)
    step[:, i] = eps
    up = np.asarray(fn(jnp.asarray(x + step, jnp.float32)), np.float64)
    down = np.asarray(fn(jnp.asarray(x - step, jnp.float32)), np.float64)
    grads[:, i] = (up - down) / (2 * eps)
  return np.linalg.norm(grads, axis=1)


def test_gradient_penalty_matches_finite_differences():
  key = jax.random.key(0)
  real = jax.random.normal(jax.random.key(1), (5, 1, 3))
  fake = jax.random.normal(jax.random.key(2), (5, 1, 3))
  gp = losses.gradient_penalty_B(tiny_critic, real, fake, key)
  # The same interpolates the penalty drew: eps ~ U(0, 1) per example from `key`.
  eps = jax.random.uniform(key, (5, 1, 1))
  x_hat = np.asarray(eps * real + (1 - eps) * fake).reshape(5, 3)
  norms = finite_difference_grad_norms(lambda x: tiny_critic(x.reshape(5, 1, 3)), x_hat)
  np.testing.assert_allclose(gp, (norms - 1.0) ** 2, rtol=1e-3, atol=1e-4)
  assert float(gp.max()) > 0.1  # a non-trivial check: the gradients are far from norm 1


def test_r1_penalty_matches_finite_differences():
  real = jax.random.normal(jax.random.key(1), (4, 1, 3))
  r1 = losses.r1_penalty_B(tiny_critic, real)
  norms = finite_difference_grad_norms(lambda x: tiny_critic(x.reshape(4, 1, 3)),
                                       np.asarray(real).reshape(4, 3))
  np.testing.assert_allclose(r1, norms ** 2, rtol=1e-3, atol=1e-4)


def test_mode_seeking_on_hand_computed_values():
  # Pairs (row 0, row 2) and (row 1, row 3): image distances 0.5 and 0.1 (mean |dx| over 2
  # pixels), noise distances 1.0 and 2.0 (mean |dz| over 2 entries).
  fakes = jnp.array([[[0.0, 0.0]], [[0.2, 0.2]], [[0.5, 0.5]], [[0.1, 0.3]]])
  z = jnp.array([[0.0, 0.0], [1.0, 1.0], [1.0, -1.0], [3.0, -1.0]])
  term = losses.mode_seeking_P(fakes, z)
  np.testing.assert_allclose(term, [1 / (0.5 / 1.0 + 1e-5), 1 / (0.1 / 2.0 + 1e-5)], rtol=1e-5)
  # Identical images for different noise (collapse) cost the most.
  collapsed = losses.mode_seeking_P(jnp.zeros_like(fakes), z)
  assert float(collapsed.min()) > float(term.max())


def test_consistency_on_hand_computed_values():
  term = losses.consistency_B(jnp.array([1.0, -2.0, 0.5]), jnp.array([0.0, 1.0, 0.5]))
  np.testing.assert_allclose(term, [1.0, 9.0, 0.0])
