"""VAE mathematics: KL, bounds and their ordering, reparameterized gradients, the IWAE with k=1,
and the conditional model's use of its labels."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util
from scipy import stats

from genjax.vae import data as vae_data, eval as vae_eval, losses as vae_losses
from genjax.vae import steps as vae_steps
from genjax.configs.vae_mnist import get_config
from genjax.data.image_sets import filled
from genjax.vae.state import build_setup, decode, decoder_log_prob, encode, init_state


def tiny_setup(**overrides):
  config = get_config("tiny")
  config.update(overrides)
  setup = build_setup(filled(config))
  return setup, init_state(setup, jax.random.key(0)).params


def binary_images(n=4, seed=0):
  return jax.random.bernoulli(jax.random.key(seed), 0.3, (n, 28, 28)).astype(jnp.float32)


def test_kl_matches_monte_carlo():
  mean = jnp.array([[0.5, -1.0, 0.0], [2.0, 0.3, -0.2]])
  logvar = jnp.array([[0.0, -1.5, 0.7], [-0.3, 1.0, -2.0]])
  z_KxBxZ = vae_losses.reparameterize(jax.random.key(1), mean, logvar, 200_000)
  log_ratio = (vae_losses.diag_normal_log_prob(z_KxBxZ, mean, logvar)
               - vae_losses.std_normal_log_prob(z_KxBxZ))
  stderr = log_ratio.std(axis=0) / math.sqrt(log_ratio.shape[0])
  kl = vae_losses.gaussian_kl_B(mean, logvar)
  np.testing.assert_array_less(jnp.abs(log_ratio.mean(axis=0) - kl), 4 * stderr)
  assert float(vae_losses.gaussian_kl_B(jnp.zeros((1, 5)), jnp.zeros((1, 5)))[0]) == 0.0


def test_log_probs_match_scipy():
  x = np.array([[[0.0, 1.0], [1.0, 0.0]]])
  logits = np.array([[[-2.0, 0.5], [30.0, 1.5]]])
  p = 1 / (1 + np.exp(-logits))
  np.testing.assert_allclose(vae_losses.bernoulli_log_prob(jnp.array(logits), jnp.array(x)),
                             stats.bernoulli.logpmf(x, p).sum(axis=(1, 2)), rtol=1e-5)
  mean, log_std = np.array([[[0.2, 0.9], [0.4, 0.1]]]), -1.3
  expected = stats.norm.logpdf(x, mean, np.exp(log_std)).sum(axis=(1, 2))
  np.testing.assert_allclose(vae_losses.gaussian_log_prob(jnp.array(mean), log_std, jnp.array(x)),
                             expected, rtol=1e-5)
  z, m, lv = np.array([0.3, -1.0]), np.array([0.1, 0.5]), np.array([0.2, -0.4])
  np.testing.assert_allclose(vae_losses.diag_normal_log_prob(z, m, lv),
                             stats.norm.logpdf(z, m, np.exp(lv / 2)).sum(), rtol=1e-5)


def test_reparameterized_gradient_matches_finite_difference_of_the_expectation():
  # E[z^2 + sin z] under N(mu, sigma^2) is mu^2 + sigma^2 + sin(mu) exp(-sigma^2 / 2).
  def exact(mean, logvar):
    var = jnp.exp(logvar)
    return jnp.sum(mean ** 2 + var + jnp.sin(mean) * jnp.exp(-var / 2))

  def reparameterized(mean, logvar):
    z = vae_losses.reparameterize(jax.random.key(2), mean[None], logvar[None], 400_000)
    return jnp.sum(jnp.mean(z ** 2 + jnp.sin(z), axis=0))

  with jax.enable_x64(True):
    mean, logvar, h = jnp.array([0.4, -1.2]), jnp.array([-0.5, 0.3]), 1e-5
    grads = jax.grad(reparameterized, argnums=(0, 1))(mean, logvar)
    for arg, grad in enumerate(grads):
      for i in range(2):
        step = jnp.zeros(2).at[i].set(h)
        args_plus, args_minus = [mean, logvar], [mean, logvar]
        args_plus[arg], args_minus[arg] = args_plus[arg] + step, args_minus[arg] - step
        fd = (exact(*args_plus) - exact(*args_minus)) / (2 * h)
        np.testing.assert_allclose(grad[i], fd, rtol=0.02, atol=0.01)


def test_model_gradient_matches_finite_difference():
  """The full objective with fixed noise: autodiff equals a directional finite difference."""
  setup, params = tiny_setup()
  x, key = binary_images(), jax.random.key(3)
  with jax.enable_x64(True):
    params64 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
    x = x.astype(jnp.float64)
    loss = jax.jit(lambda p: vae_steps.vae_objective(setup, p, x, key)[0])
    direction = jax.tree.map(lambda a: jax.random.normal(jax.random.key(4), a.shape, a.dtype),
                             params64)
    grad = jax.jit(jax.grad(loss))(params64)
    along = sum(jnp.vdot(g, d) for g, d in zip(jax.tree.leaves(grad), jax.tree.leaves(direction)))
    h = 1e-6
    shifted = lambda s: jax.tree.map(lambda p, d: p + s * d, params64, direction)  # noqa: E731
    fd = (loss(shifted(h)) - loss(shifted(-h))) / (2 * h)
  np.testing.assert_allclose(along, fd, rtol=1e-5)


def test_iwae_with_one_sample_is_the_single_sample_elbo():
  setup, params = tiny_setup(model="iwae", iwae_k=1)
  x, key = binary_images(), jax.random.key(5)
  loss, _ = vae_steps.iwae_objective(setup, params, x, key)
  mean, logvar = encode(setup, params, x)
  z = vae_losses.reparameterize(key, mean, logvar)  # the same draw: (1, B, Z) bits == (B, Z)
  log_px = decoder_log_prob(setup, params, decode(setup, params, z), x)
  mc_kl = vae_losses.diag_normal_log_prob(z, mean, logvar) - vae_losses.std_normal_log_prob(z)
  np.testing.assert_allclose(loss, -(log_px - mc_kl).mean(), rtol=1e-6)
  # ... and its mean over draws is the analytic-KL ELBO that the vae objective estimates.
  keys = jax.random.split(key, 1000)
  over_keys = lambda f: jax.jit(jax.vmap(lambda k: f(setup, params, x, k)[0]))(keys)  # noqa: E731
  iwae1, vae = over_keys(vae_steps.iwae_objective), over_keys(vae_steps.vae_objective)
  stderr = math.sqrt((float(iwae1.var()) + float(vae.var())) / len(keys))
  assert abs(float(iwae1.mean() - vae.mean())) < 4 * stderr


def sharpened(params, scale=3.0):
  """Decoder weights scaled up, so that p(x|z) depends strongly on z (the encoder stays near
  the prior: a proposal that covers the posterior)."""
  return {**params, "decoder": jax.tree.map(lambda p: p * scale, params["decoder"])}


def exact_log_likelihood_B(setup, params, x_BxHxW, labels_B=None):
  """log p(x), or log p(x|y) given labels, by quadrature over a 1-D latent."""
  z_grid = jnp.linspace(-9.0, 9.0, 6001)[:, None]
  if labels_B is None:
    out_GxBxHxW = decode(setup, params, z_grid)[:, None]
  else:
    out_GxBxHxW = jnp.stack([decode(setup, params, z_grid, vae_data.one_hot(jnp.full(6001, k), 10))
                             for k in labels_B], axis=1)
  log_joint_GxB = (decoder_log_prob(setup, params, out_GxBxHxW, x_BxHxW[None])
                   + vae_losses.std_normal_log_prob(z_grid)[:, None])
  return jax.nn.logsumexp(log_joint_GxB, axis=0) + jnp.log(z_grid[1, 0] - z_grid[0, 0])


def test_elbo_below_iwae_below_exact_log_likelihood():
  setup, params = tiny_setup(latent_dim=1, hidden=(8,))
  params, x = sharpened(params), binary_images(3, seed=7)
  exact_B = exact_log_likelihood_B(setup, params, x)
  bounds = vae_eval.batch_bounds(setup, params, x, jax.random.key(8), 5000, 1000, 50)
  elbo, iwae50, log_p = -bounds["neg_elbo"], -bounds["neg_iwae_bound"], -bounds["nll"]
  assert (np.asarray(exact_B - elbo) > 0.5).all(), exact_B - elbo  # a gap worth ordering
  np.testing.assert_array_less(elbo, iwae50)
  np.testing.assert_array_less(iwae50, log_p)
  np.testing.assert_array_less(log_p, exact_B + 0.02)  # a bound, up to Monte-Carlo noise
  np.testing.assert_array_less(exact_B - log_p, 0.2 * (exact_B - elbo))  # and a tight one


def test_conditional_bounds_are_below_exact_log_p_x_given_y():
  setup, params = tiny_setup(latent_dim=1, hidden=(8,), conditional=True)
  params, x, labels = sharpened(params), binary_images(3, seed=7), jnp.array([1, 7, 4])
  exact_B = exact_log_likelihood_B(setup, params, x, labels)
  # The label matters, so bounds computed with the wrong one would miss by nats.
  assert (np.abs(exact_B - exact_log_likelihood_B(setup, params, x, jnp.roll(labels, 1))) > 1).all()
  bounds = [vae_eval.batch_bounds(setup, params, x, jax.random.key(k), 5000, 1000, 50, labels)
            for k in range(8)]
  elbo, iwae50, log_p = (-np.array([b[name] for b in bounds])
                         for name in ("neg_elbo", "neg_iwae_bound", "nll"))
  assert (np.asarray(exact_B - elbo) > 0.5).all(), exact_B - elbo
  np.testing.assert_array_less(elbo.mean(0), iwae50.mean(0))
  np.testing.assert_array_less(iwae50.mean(0), log_p.mean(0))
  # A bound up to Monte-Carlo noise (one k=5000 estimate varies by ~0.05 nats here).
  np.testing.assert_array_less(log_p.mean(0), exact_B + 4 * log_p.std(0) / np.sqrt(8) + 0.01)
  np.testing.assert_array_less(exact_B - log_p.mean(0), 0.2 * (exact_B - elbo.mean(0)))


def test_grouped_bound_is_the_mean_of_group_bounds():
  log_w = jax.random.normal(jax.random.key(0), (12, 3)) * 3
  groups = [vae_losses.iwae_bound_B(log_w[i::4]) for i in range(4)]  # rows i, i+4, i+8
  np.testing.assert_allclose(vae_losses.grouped_iwae_bound_B(log_w, 3), np.mean(groups, axis=0),
                             rtol=1e-6)
  np.testing.assert_allclose(vae_losses.iwae_bound_B(jnp.full((7, 2), -3.0)), [-3.0, -3.0],
                             rtol=1e-6)


@pytest.mark.parametrize("overrides", [
    {"model": "ae"}, {"model": "iwae"}, {"decoder": "gaussian", "learn_decoder_std": True},
    {"arch": "conv", "conv_channels": (4, 8)}, {"conditional": True, "model": "iwae"}])
def test_every_model_has_finite_loss_and_gradients(overrides):
  setup, params = tiny_setup(**overrides)
  x = binary_images() * 0.8 + 0.1  # grey levels suit both decoders
  y = vae_data.one_hot(jnp.arange(4), 10) if setup.conditional else None
  objective = vae_steps.OBJECTIVES[setup.recipe.model]
  (loss, metrics), grads = jax.jit(jax.value_and_grad(objective, argnums=1, has_aux=True),
                                   static_argnums=0)(setup, params, x, jax.random.key(0), y)
  assert set(metrics) | {"loss"} == set(vae_steps.METRIC_NAMES[setup.recipe.model])
  assert np.isfinite(loss) and all(np.isfinite(g).all() for g in jax.tree.leaves(grads))
  y2 = None if y is None else y[:2]
  assert decode(setup, params, jnp.zeros((2, setup.recipe.latent_dim)), y2).shape == (2, 28, 28)
  if overrides.get("learn_decoder_std"):
    assert float(jnp.abs(grads["decoder_log_std"])) > 0


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_conditional_model_uses_the_label(arch):
  setup, params = tiny_setup(conditional=True, arch=arch, conv_channels=(4, 8))
  x, z = binary_images(), jax.random.normal(jax.random.key(1), (4, setup.recipe.latent_dim))
  y3, y5 = (vae_data.one_hot(jnp.full(4, label), 10) for label in (3, 5))
  assert not np.allclose(decode(setup, params, z, y3), decode(setup, params, z, y5))
  (mean3, logvar3), (mean5, logvar5) = encode(setup, params, x, y3), encode(setup, params, x, y5)
  assert not np.allclose(mean3, mean5) and not np.allclose(logvar3, logvar5)
  # The label only widens the first dense layer of each network by 10 input rows, so an
  # unconditional model keeps its parameters (and old checkpoints) as they were.
  _, plain = tiny_setup(arch=arch, conv_channels=(4, 8))
  cond, uncond = (traverse_util.flatten_dict(p, sep="/") for p in (params, plain))
  assert cond.keys() == uncond.keys()
  grown = {name: np.subtract(cond[name].shape, uncond[name].shape).tolist() for name in uncond
           if cond[name].shape != uncond[name].shape}
  assert grown == {"encoder/Dense_0/kernel": [10, 0], "decoder/Dense_0/kernel": [10, 0]}
  with pytest.raises(ValueError, match="num_classes=10"):
    decode(setup, params, z)  # a conditional model refuses to run without labels
