"""Sample-quality metrics against closed forms, float64 references and constructed point sets."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from genjax.eval import metrics


def random_spd(rng, f: int, scale: float = 1.0) -> np.ndarray:
  """A well-conditioned random SPD matrix (Wishart-like plus a ridge)."""
  a_FxF = rng.normal(size=(f, f))
  return scale * (a_FxF @ a_FxF.T / f + 0.1 * np.eye(f))


def reference_fid(mu1, sigma1, mu2, sigma2) -> float:
  """The classic float64 formula with scipy's general sqrtm."""
  covmean = scipy.linalg.sqrtm(sigma1 @ sigma2).real
  diff = mu1 - mu2
  return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def brute_precision_recall(real, fake, k):
  """Float64 numpy reference of improved precision and recall, all pairs at once."""
  real, fake = real.astype(np.float64), fake.astype(np.float64)
  d_rr = ((real[:, None] - real[None]) ** 2).sum(-1)
  d_ff = ((fake[:, None] - fake[None]) ** 2).sum(-1)
  d_fr = ((fake[:, None] - real[None]) ** 2).sum(-1)
  np.fill_diagonal(d_rr, np.inf)
  np.fill_diagonal(d_ff, np.inf)
  r_real = np.sort(d_rr, axis=1)[:, k - 1]
  r_fake = np.sort(d_ff, axis=1)[:, k - 1]
  precision = (d_fr <= r_real[None]).any(axis=1).mean()
  recall = (d_fr <= r_fake[:, None]).any(axis=0).mean()
  return precision, recall


def test_gaussian_stats_match_numpy():
  x = np.random.default_rng(0).normal(3.0, 2.0, size=(500, 8)).astype(np.float32)
  mu, sigma = metrics.gaussian_stats(x)
  np.testing.assert_allclose(mu, x.astype(np.float64).mean(0), rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(sigma, np.cov(x.astype(np.float64), rowvar=False), rtol=1e-4, atol=1e-5)


def test_identical_features_give_zero_fid():
  x = np.random.default_rng(1).normal(size=(2000, 128)).astype(np.float32) * 5.0
  mu, sigma = metrics.gaussian_stats(x)
  scale = float(np.trace(sigma))
  assert abs(float(metrics.frechet_distance_from_features(x, x))) < 1e-3 * scale
  assert abs(float(metrics.frechet_distance(mu, sigma, mu, sigma))) < 1e-3 * scale


def test_mean_shift_with_same_covariance():
  rng = np.random.default_rng(2)
  sigma = random_spd(rng, 32)
  mu = rng.normal(size=32)
  shift = rng.normal(size=32)
  fid = metrics.frechet_distance(mu, sigma, mu + shift, sigma)
  np.testing.assert_allclose(float(fid), shift @ shift, rtol=1e-3)


@pytest.mark.parametrize("f", [16, 128])
def test_matches_scipy_sqrtm_reference(f):
  rng = np.random.default_rng(f)
  mu1, mu2 = rng.normal(size=f), rng.normal(size=f)
  sigma1, sigma2 = random_spd(rng, f), random_spd(rng, f, scale=2.0)
  fid = metrics.frechet_distance(mu1, sigma1, mu2, sigma2)
  np.testing.assert_allclose(float(fid), reference_fid(mu1, sigma1, mu2, sigma2), rtol=1e-3)


def test_close_rank_deficient_covariances_stay_accurate():
  # Fewer samples than features and nearly equal sets: FID is ~1e-4 of the traces.
  rng = np.random.default_rng(3)
  a = (rng.normal(size=(100, 128)) @ rng.normal(size=(128, 128)) * 0.3).astype(np.float32)
  b = a + 0.05 * rng.normal(size=a.shape).astype(np.float32)
  s1, s2 = metrics.gaussian_stats(a), metrics.gaussian_stats(b)
  ref = reference_fid(*(np.asarray(t, np.float64) for t in (*s1, *s2)))
  np.testing.assert_allclose(float(metrics.frechet_distance(*s1, *s2)), ref, rtol=1e-2)


def test_diagonal_gaussians_closed_form():
  rng = np.random.default_rng(4)
  a, b = rng.uniform(0.1, 3.0, size=64), rng.uniform(0.1, 3.0, size=64)
  fid = metrics.frechet_distance(np.zeros(64), np.diag(a), np.zeros(64), np.diag(b))
  np.testing.assert_allclose(float(fid), np.sum((np.sqrt(a) - np.sqrt(b)) ** 2), rtol=1e-4)


def test_fid_non_negative_and_symmetric():
  rng = np.random.default_rng(5)
  for _ in range(3):
    mu1, mu2 = rng.normal(size=24), rng.normal(size=24) * 0.01
    sigma1, sigma2 = random_spd(rng, 24), random_spd(rng, 24)
    forward = float(metrics.frechet_distance(mu1, sigma1, mu2, sigma2))
    backward = float(metrics.frechet_distance(mu2, sigma2, mu1, sigma1))
    assert forward >= 0.0 and backward >= 0.0
    np.testing.assert_allclose(forward, backward, rtol=1e-4)


def test_classifier_score_extremes():
  one_hot_spread = np.eye(10, dtype=np.float32)[np.arange(200) % 10]
  np.testing.assert_allclose(float(metrics.classifier_score(one_hot_spread)), 10.0, rtol=1e-5)
  uniform = np.full((200, 10), 0.1, np.float32)
  np.testing.assert_allclose(float(metrics.classifier_score(uniform)), 1.0, rtol=1e-5)
  single_class = np.eye(10, dtype=np.float32)[np.full(200, 3)]
  np.testing.assert_allclose(float(metrics.classifier_score(single_class)), 1.0, rtol=1e-5)


def test_classifier_score_is_within_bounds():
  logits = np.random.default_rng(6).normal(size=(300, 10)) * 3
  probs = (np.exp(logits) / np.exp(logits).sum(1, keepdims=True)).astype(np.float32)
  score = float(metrics.classifier_score(probs))
  assert 1.0 <= score <= 10.0


def test_class_histogram_and_kl_to_uniform():
  balanced = np.eye(10, dtype=np.float32)[np.arange(100) % 10] * 0.8 + 0.02
  hist = metrics.class_histogram(balanced)
  np.testing.assert_allclose(hist, np.full(10, 0.1), atol=1e-6)
  assert abs(float(metrics.kl_to_uniform(hist))) < 1e-6
  single = metrics.class_histogram(np.eye(10, dtype=np.float32)[np.full(50, 7)])
  np.testing.assert_allclose(single, np.eye(10)[7])
  np.testing.assert_allclose(float(metrics.kl_to_uniform(single)), math.log(10), rtol=1e-5)
  two_modes = metrics.class_histogram(np.eye(10, dtype=np.float32)[np.arange(40) % 2])
  np.testing.assert_allclose(float(metrics.kl_to_uniform(two_modes)), math.log(5), rtol=1e-5)


def test_confident_share():
  probs = np.array([[0.95, 0.05], [0.9, 0.1], [0.6, 0.4], [0.2, 0.8]], np.float32)
  np.testing.assert_allclose(float(metrics.confident_share(probs)), 0.5)
  np.testing.assert_allclose(float(metrics.confident_share(probs, threshold=0.75)), 0.75)


def clusters(rng, centres, per_cluster, spread=0.1):
  points = np.repeat(centres, per_cluster, axis=0)
  return (points + spread * rng.normal(size=points.shape)).astype(np.float32)


def test_precision_recall_identical_and_far():
  rng = np.random.default_rng(7)
  real = rng.normal(size=(300, 16)).astype(np.float32)
  assert tuple(map(float, metrics.precision_recall(real, real, chunk=64))) == (1.0, 1.0)
  far = real + 100.0
  assert tuple(map(float, metrics.precision_recall(real, far, chunk=64))) == (0.0, 0.0)


def test_precision_recall_half_the_modes():
  rng = np.random.default_rng(8)
  centres = rng.normal(size=(10, 2)) * 10.0
  real = clusters(rng, centres, 200)
  fake = clusters(rng, centres[:5], 200)
  precision, recall = map(float, metrics.precision_recall(real, fake, k=3, chunk=128))
  assert precision > 0.95
  assert 0.45 < recall <= 0.5  # the five unvisited clusters can never be recalled


@pytest.mark.parametrize("k,chunk", [(1, 37), (3, 64), (5, 1000)])
def test_precision_recall_matches_brute_force(k, chunk):
  rng = np.random.default_rng(9)
  real = rng.normal(size=(203, 12)).astype(np.float32)
  fake = (rng.normal(size=(150, 12)) * 1.3 + 0.3).astype(np.float32)
  precision, recall = metrics.precision_recall(real, fake, k=k, chunk=chunk)
  want_precision, want_recall = brute_precision_recall(real, fake, k)
  assert float(precision) == pytest.approx(want_precision, abs=1e-6)
  assert float(recall) == pytest.approx(want_recall, abs=1e-6)


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="checks XLA CPU's lowering")
def test_knn_radii_keep_top_k_off_the_full_sort_path():
  # Slicing one top_k column inside the block loop made XLA sort every row: 40x slower at 10k.
  x = jnp.zeros((300, 12))
  hlo = jax.jit(lambda x: metrics._kth_nn_sq_radii_N(x, 3, 64)).lower(x).compile().as_text()
  assert " sort(" not in hlo  # the HLO op, not metadata that happens to say "sort"


def test_all_metrics_returns_python_floats():
  rng = np.random.default_rng(10)
  real = rng.normal(size=(120, 16)).astype(np.float32)
  fake = rng.normal(size=(90, 16)).astype(np.float32)
  probs = np.eye(10, dtype=np.float32)[np.arange(90) % 10]
  result = metrics.all_metrics(real, metrics.gaussian_stats(real), fake, probs)
  assert set(result) == {"fid", "score", "kl_to_uniform", "confident", "precision", "recall",
                         "class_hist"}
  assert all(type(result[key]) is float for key in result if key != "class_hist")
  assert len(result["class_hist"]) == 10 and all(type(h) is float for h in result["class_hist"])
  np.testing.assert_allclose(result["score"], 10.0, rtol=1e-5)
  assert result["confident"] == 1.0 and abs(result["kl_to_uniform"]) < 1e-6
  np.testing.assert_allclose(
      result["fid"], float(metrics.frechet_distance_from_features(real, fake)), rtol=1e-5)


def test_precomputed_real_radii_give_the_same_answer():
  rng = np.random.default_rng(7)
  real = rng.normal(size=(300, 8)).astype(np.float32)
  fake = (rng.normal(size=(200, 8)) + 0.3).astype(np.float32)
  direct = metrics.precision_recall(real, fake, k=3, chunk=64)
  cached = metrics.precision_recall(real, fake, k=3, chunk=64,
                                    real_r2_N=metrics.real_sq_radii(real, k=3, chunk=64))
  np.testing.assert_allclose(np.array(direct), np.array(cached), atol=1e-6)
