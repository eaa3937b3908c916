"""The forward processes and the samplers against closed forms, on data from a known Gaussian."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.diffusion import paths, samplers
from tests.diffusion import gaussian

OBJECTIVE_OF = {"ddpm": "ddpm", "ddim": "ddpm", "euler": "flow", "heun": "flow"}


def test_cosine_schedule_is_its_closed_form():
  t = np.array([0.0, 0.1, 0.5, 0.9, 0.99])
  f = np.cos(0.5 * np.pi * (t + 0.008) / 1.008) ** 2 / np.cos(0.5 * np.pi * 0.008 / 1.008) ** 2
  np.testing.assert_allclose(paths.alpha_bar(t), np.maximum(f, 1e-4), rtol=1e-5, atol=1e-7)
  assert float(paths.alpha_bar(0.0)) == 1.0 and paths.alpha_bar(1.0) == np.float32(1e-4)
  a, s = paths.coefficients("ddpm", t)
  np.testing.assert_allclose(a ** 2 + s ** 2, 1.0, rtol=1e-6)  # variance preserving
  a, s = paths.coefficients("flow", t)
  np.testing.assert_allclose(a, 1 - t, atol=1e-6)
  np.testing.assert_allclose(s, t, atol=1e-6)


@pytest.mark.parametrize("objective", paths.OBJECTIVES)
@pytest.mark.parametrize("t", [0.1, 0.5, 0.9])
def test_forward_marginal_mean_and_covariance(objective, t):
  rng = np.random.default_rng(0)
  x = gaussian.draw(rng, 100_000)
  e = rng.standard_normal(x.shape).astype(np.float32)
  z, target = paths.noisy(objective, x, e, np.full(len(x), t, np.float32))
  a, s = (float(v) for v in paths.coefficients(objective, t))
  np.testing.assert_allclose(np.mean(z, 0), a * gaussian.MU, atol=0.01)
  np.testing.assert_allclose(np.cov(np.asarray(z).T), a ** 2 * gaussian.SIGMA + s ** 2 * np.eye(2),
                             atol=0.01)
  np.testing.assert_allclose(target, e if objective == "ddpm" else e - x, atol=1e-6)


@pytest.mark.parametrize("objective", paths.OBJECTIVES)
@pytest.mark.parametrize("t", [0.2, 0.6, 0.95])
def test_optimal_prediction_reaches_the_closed_form_least_loss(objective, t):
  rng = np.random.default_rng(1)
  x = gaussian.draw(rng, 200_000)
  e = rng.standard_normal(x.shape).astype(np.float32)
  z, target = paths.noisy(objective, x, e, np.full(len(x), t, np.float32))
  best = gaussian.optimal(objective)(z, t)
  loss = float(paths.loss_B(best, target).mean())
  np.testing.assert_allclose(loss, gaussian.least_loss(objective, t), rtol=0.02)
  worse = float(paths.loss_B(best * 1.1 + 0.05, target).mean())  # any other predictor loses
  assert worse > loss + 1e-3


@pytest.mark.parametrize("sampler,nfe", [("ddpm", 200), ("ddim", 50), ("euler", 100),
                                         ("heun", 20)])
def test_optimal_model_through_each_sampler_reproduces_the_data(sampler, nfe):
  noise = jax.random.normal(jax.random.key(0), (20_000, 2))
  x = samplers.sample(gaussian.optimal(OBJECTIVE_OF[sampler]), noise, jax.random.key(1), sampler,
                      nfe, clip=False)
  np.testing.assert_allclose(np.mean(x, 0), gaussian.MU, atol=0.02)
  np.testing.assert_allclose(np.cov(np.asarray(x).T), gaussian.SIGMA, atol=0.02)


def test_ddim_is_deterministic_and_ddpm_draws_fresh_noise():
  noise = jax.random.normal(jax.random.key(0), (64, 2))
  predict = gaussian.optimal("ddpm")

  def run(sampler, key):
    return samplers.sample(predict, noise, jax.random.key(key), sampler, 8)

  np.testing.assert_array_equal(run("ddim", 1), run("ddim", 2))
  assert not np.allclose(run("ddpm", 1), run("ddpm", 2))
  np.testing.assert_array_equal(run("ddpm", 1), run("ddpm", 1))


def test_the_path_is_kept_on_request_and_heun_pays_two_evaluations_a_step():
  predict = lambda z, t: -z  # noqa: E731
  z0, path = samplers.sample(predict, jnp.ones((3, 2)), jax.random.key(0), "heun", 8,
                             keep_path=True)
  assert path.shape == (5, 3, 2) and samplers.num_steps("heun", 8) == 4
  np.testing.assert_array_equal(path[-1], z0)
  # dz/dt = -z from t = 1 to 0: each Heun step of h = 1/4 multiplies z by 1 + h + h^2 / 2.
  np.testing.assert_allclose(z0, (1 + 0.25 + 0.25 ** 2 / 2) ** 4 * np.ones((3, 2)), rtol=1e-6)
  with pytest.raises(ValueError, match="at least 2"):
    samplers.sample(predict, jnp.ones((3, 2)), jax.random.key(0), "heun", 1)
  with pytest.raises(ValueError, match="at least 1"):
    samplers.sample(predict, jnp.ones((3, 2)), jax.random.key(0), "ddim", 0)
