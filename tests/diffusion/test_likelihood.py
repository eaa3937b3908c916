"""The likelihood's parts: the divergence estimators against the full Jacobian's trace, the ODE's
change of variables against a known density, and the data scaling's bits."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from genjax.diffusion import likelihood
from genjax.diffusion.models import UNet
from tests.diffusion import gaussian


def random_unet():
  """A tiny conditional U-Net on 8x8 images, every weight random (the zero-started layers too)."""
  module = UNet(channels=(4,), blocks=1, heads=1, groups=2, num_classes=10)
  x, t, y = jnp.zeros((1, 8, 8)), jnp.full((1,), 0.3), jnp.array([3])
  params = jax.jit(module.init)(jax.random.key(0), x, t, y)["params"]
  leaves, tree = jax.tree.flatten(params)
  keys = jax.random.split(jax.random.key(1), len(leaves))
  params = tree.unflatten([p + 0.3 * jax.random.normal(k, p.shape) for p, k in zip(leaves, keys)])

  def velocity(z, t):
    return module.apply({"params": params}, z, jnp.full((z.shape[0],), t), y)

  return velocity, jax.random.normal(jax.random.key(2), x.shape)


def test_exact_divergence_is_the_jacobians_trace():
  """Per example, on a function of two examples of shape 3 x 4 (whose Jacobian is block
  diagonal over the examples, as a U-Net's is)."""
  w = jax.random.normal(jax.random.key(0), (12, 12))
  velocity = lambda z, t: jnp.tanh(z.reshape(2, 12) @ w * t).reshape(z.shape)  # noqa: E731
  z = jax.random.normal(jax.random.key(1), (2, 3, 4))
  jacobian = jax.jacfwd(lambda y: velocity(y, 0.7))(z).reshape(2, 12, 2, 12)
  traces = [jnp.trace(jacobian[b, :, b, :]) for b in range(2)]
  np.testing.assert_allclose(likelihood.exact_divergence(velocity, z, 0.7, chunk=4), traces,
                             rtol=1e-5)


@pytest.mark.slow  # the U-Net's full Jacobian and 400 probes: about a minute on 2 cores
def test_hutchinson_estimate_agrees_with_the_exact_trace_on_a_unet():
  """On a U-Net's Jacobian J (1 x 8 x 8 in and out): the draws' mean is the trace, within a
  few standard errors, and their variance that of Rademacher probes, sum over i != j of
  (J_ij^2 + J_ij J_ji) (so the test can tell a biased or noisier estimator)."""
  velocity, z = random_unet()
  probes = jax.random.rademacher(jax.random.key(3), (400, *z.shape), jnp.float32)

  @jax.jit  # one compile for both
  def both(z, probes):
    return (jax.jacfwd(lambda y: velocity(y, 0.3))(z).reshape(64, 64),
            jax.vmap(lambda p: likelihood.hutchinson_divergence(velocity, z, 0.3, p))(probes))

  jacobian, draws = (np.asarray(a, np.float64) for a in both(z, probes))
  off = jacobian - np.diag(np.diag(jacobian))
  variance = np.sum(off ** 2 + off * off.T)
  se = math.sqrt(variance / len(draws))
  assert abs(draws.mean() - np.trace(jacobian)) < 4 * se, (draws.mean(), np.trace(jacobian), se)
  np.testing.assert_allclose(draws.var(ddof=1), variance, rtol=0.3)


def test_ode_change_of_variables_gives_the_known_density():
  """The exact optimal velocity of Gaussian data carries N(mu, Sigma) to N(0, I): log p_0
  through the ODE (exact trace or Hutchinson, averaged) is the Gaussian's own log-density."""
  x = gaussian.draw(np.random.default_rng(0), 6)
  velocity = gaussian.optimal("flow")
  probes = jax.random.rademacher(jax.random.key(0), (200, *x.shape), jnp.float32)
  hutch, exact = likelihood.log_density(velocity, jnp.asarray(x), probes[0], 32, exact=True)
  want = stats.multivariate_normal(gaussian.MU, gaussian.SIGMA).logpdf(x)
  np.testing.assert_allclose(exact, want, atol=1e-3)
  many = jax.vmap(lambda p: likelihood.log_density(velocity, jnp.asarray(x), p, 32)[0])(probes)
  np.testing.assert_allclose(np.mean(many, axis=0), want, atol=0.1)
  assert hutch.shape == (6,)


def test_bits_per_dim_of_the_uniform_density_is_eight():
  """A density uniform over the model's [-1, 1]^D is 2^-D: every pixel value equally likely,
  8 bits each, once the dequantized pixels' scale (1/128 per dimension) is accounted for."""
  dims = 784
  np.testing.assert_allclose(likelihood.bits_per_dim(np.array([-dims * math.log(2.0)]), dims),
                             8.0, rtol=1e-12)
  x = likelihood.to_model_space(jnp.array([[0, 255]]), jnp.array([[0.0, 0.999]]))
  np.testing.assert_allclose(x, [[-1.0, 255.999 / 128 - 1]], rtol=1e-6)
