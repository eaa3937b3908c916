"""Sample-quality metrics on a judge classifier's features (N×F) and class probabilities (N×C)."""

import functools

import jax
import jax.numpy as jnp
from jax import lax
from jax.scipy.special import xlogy

# Pure float32 functions throughout; products ask for full float32 precision so GPUs and TPUs
# do not silently drop to TF32/bfloat16 passes, which would swamp FID's cancelling trace terms.
_HIGHEST = lax.Precision.HIGHEST


@jax.jit
def gaussian_stats(features_NxF: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
  """Mean and unbiased covariance of the rows."""
  features_NxF = jnp.asarray(features_NxF, jnp.float32)
  mu_F = features_NxF.mean(axis=0)
  # Centre first: the one-pass E[xxᵀ] - μμᵀ cancels catastrophically in float32.
  centred_NxF = features_NxF - mu_F
  sigma_FxF = jnp.matmul(centred_NxF.T, centred_NxF, precision=_HIGHEST)
  sigma_FxF = sigma_FxF / (features_NxF.shape[0] - 1)
  return mu_F, 0.5 * (sigma_FxF + sigma_FxF.T)


def _sqrt_factor_FxF(sigma_FxF: jnp.ndarray) -> jnp.ndarray:
  """B with B Bᵀ = sigma, from a symmetric eigendecomposition; round-off negatives clipped to 0."""
  evals_F, evecs_FxF = jnp.linalg.eigh(0.5 * (sigma_FxF + sigma_FxF.T))
  return evecs_FxF * jnp.sqrt(jnp.maximum(evals_F, 0.0))[None, :]


@jax.jit
def frechet_distance(mu1_F, sigma1_FxF, mu2_F, sigma2_FxF) -> jnp.ndarray:
  """||mu1-mu2||² + tr(S1) + tr(S2) - 2 tr((S1^½ S2 S1^½)^½): the FID between two Gaussians."""
  b1_FxF = _sqrt_factor_FxF(jnp.asarray(sigma1_FxF, jnp.float32))
  b2_FxF = _sqrt_factor_FxF(jnp.asarray(sigma2_FxF, jnp.float32))
  # With S = B Bᵀ, the singular values of B2ᵀB1 squared are the eigenvalues of B1ᵀ S2 B1, i.e.
  # of S1^½ S2 S1^½, so the trace term is a nuclear norm. An SVD gets small singular values to
  # absolute accuracy eps·||B2ᵀB1||, where eigh of the product and a sqrt would only give
  # sqrt(eps·||S1 S2||), and no non-symmetric sqrtm is needed.
  cross_FxF = jnp.matmul(b2_FxF.T, b1_FxF, precision=_HIGHEST)
  tr_covmean = jnp.linalg.svd(cross_FxF, compute_uv=False).sum()
  # tr(S) as ||B||²_F keeps the three trace terms consistent: identical inputs cancel to ~0, and
  # the sum equals min over rotations Q of ||B1 - B2 Q||²_F, so it is >= 0 up to round-off.
  trace_term = jnp.sum(b1_FxF * b1_FxF) + jnp.sum(b2_FxF * b2_FxF) - 2.0 * tr_covmean
  diff_F = jnp.asarray(mu1_F, jnp.float32) - jnp.asarray(mu2_F, jnp.float32)
  return jnp.maximum(jnp.dot(diff_F, diff_F, precision=_HIGHEST) + trace_term, 0.0)


@jax.jit
def frechet_distance_from_features(a_NxF: jnp.ndarray, b_MxF: jnp.ndarray) -> jnp.ndarray:
  """FID between the Gaussian fits of two feature sets."""
  return frechet_distance(*gaussian_stats(a_NxF), *gaussian_stats(b_MxF))


@jax.jit
def classifier_score(probs_NxC: jnp.ndarray) -> jnp.ndarray:
  """exp(E_x KL(p(y|x) || p(y))), the Inception Score on the judge: 1 (useless) to C (ideal)."""
  probs_NxC = jnp.asarray(probs_NxC, jnp.float32)
  marginal_C = probs_NxC.mean(axis=0)
  # xlogy makes 0·log 0 = 0, so one-hot predictions give finite KLs.
  kl_N = jnp.sum(xlogy(probs_NxC, probs_NxC) - xlogy(probs_NxC, marginal_C[None, :]), axis=1)
  return jnp.exp(jnp.maximum(kl_N.mean(), 0.0))


@jax.jit
def class_histogram(probs_NxC: jnp.ndarray) -> jnp.ndarray:
  """Share of samples whose argmax is each class."""
  num_classes = probs_NxC.shape[-1]
  return jax.nn.one_hot(jnp.argmax(probs_NxC, axis=1), num_classes, dtype=jnp.float32).mean(axis=0)


@jax.jit
def kl_to_uniform(hist_C: jnp.ndarray) -> jnp.ndarray:
  """KL(hist || uniform): 0 when every class is equally covered, log C when one class is."""
  hist_C = jnp.asarray(hist_C, jnp.float32)
  return jnp.maximum(jnp.sum(xlogy(hist_C, hist_C * hist_C.shape[0])), 0.0)


@jax.jit
def confident_share(probs_NxC: jnp.ndarray, threshold: float = 0.9) -> jnp.ndarray:
  """Share of samples whose top class probability is at least `threshold`."""
  return (jnp.max(probs_NxC, axis=1) >= threshold).astype(jnp.float32).mean()


def _sq_dists_BxN(a_BxF, b_NxF, b_sq_N):
  """Squared Euclidean distances by the Gram expansion, clipped at 0 against cancellation."""
  a_sq_B = jnp.sum(a_BxF * a_BxF, axis=1)
  gram_BxN = jnp.matmul(a_BxF, b_NxF.T, precision=_HIGHEST)
  return jnp.maximum(a_sq_B[:, None] + b_sq_N[None, :] - 2.0 * gram_BxN, 0.0)


def _row_blocks(x_NxF, chunk: int, fill: float = 0.0):
  """Rows zero-padded to a multiple of chunk, as (num_blocks, chunk, ...) for lax.map/scan."""
  n = x_NxF.shape[0]
  num_blocks = -(-n // chunk)
  pad = [(0, num_blocks * chunk - n)] + [(0, 0)] * (x_NxF.ndim - 1)
  return jnp.pad(x_NxF, pad, constant_values=fill).reshape(num_blocks, chunk, *x_NxF.shape[1:])


def _kth_nn_sq_radii_N(x_NxF, k: int, chunk: int) -> jnp.ndarray:
  """Squared distance from each row to its k-th nearest other row, one row block at a time."""
  n = x_NxF.shape[0]
  if n <= k:
    raise ValueError(f"need more than k={k} points for k-NN radii, got {n}")
  chunk = min(chunk, n)
  x_sq_N = jnp.sum(x_NxF * x_NxF, axis=1)
  starts = jnp.arange(-(-n // chunk)) * chunk

  def block_radii(args):
    block_BxF, start = args
    d_BxN = _sq_dists_BxN(block_BxF, x_NxF, x_sq_N)
    # A point is not its own neighbour: its distance becomes +inf rather than relying on ~0.
    rows_B = start + jnp.arange(chunk)
    d_BxN = jnp.where(rows_B[:, None] == jnp.arange(n)[None, :], jnp.inf, d_BxN)
    # Return all k values: slicing out column k-1 here makes XLA's CPU backend rewrite the
    # top_k into a full sort of every row (~40x slower at N = 10k).
    return -lax.top_k(-d_BxN, k)[0]

  nearest_BxK = lax.map(block_radii, (_row_blocks(x_NxF, chunk), starts))
  return nearest_BxK.reshape(-1, k)[:n, k - 1]


@functools.partial(jax.jit, static_argnames=("k", "chunk"))
def real_sq_radii(real_NxF, k: int = 3, chunk: int = 1024) -> jnp.ndarray:
  """Squared k-NN radii of a reference set: compute once, pass to precision_recall many times."""
  real_NxF = jnp.asarray(real_NxF, jnp.float32)
  return _kth_nn_sq_radii_N(real_NxF - real_NxF.mean(axis=0), k, chunk)


@functools.partial(jax.jit, static_argnames=("k", "chunk"))
def precision_recall(real_NxF, fake_MxF, k: int = 3, chunk: int = 1024, real_r2_N=None):
  """Improved precision and recall (Kynkäänniemi et al. 2019): shares of points in k-NN balls.

  real_r2_N: real_sq_radii(real_NxF, k, chunk) when already known (the reference set's radii
  are the costly half, and fixed during training).
  """
  # Precision: share of fakes inside some real point's ball (radius = distance to its k-th
  # nearest other real point); recall: the same with the sets swapped. Distances come in row
  # blocks of `chunk`, so memory is O(chunk·max(N, M)), not O(N·M).
  real_NxF = jnp.asarray(real_NxF, jnp.float32)
  fake_MxF = jnp.asarray(fake_MxF, jnp.float32)
  # Distances are translation invariant; centring shrinks the norms the Gram expansion cancels.
  centre_F = real_NxF.mean(axis=0)
  real_NxF, fake_MxF = real_NxF - centre_F, fake_MxF - centre_F
  if real_r2_N is None:
    real_r2_N = _kth_nn_sq_radii_N(real_NxF, k, chunk)
  fake_r2_M = _kth_nn_sq_radii_N(fake_MxF, k, chunk)

  m = fake_MxF.shape[0]
  chunk = min(chunk, m)
  real_sq_N = jnp.sum(real_NxF * real_NxF, axis=1)

  def fake_block(real_covered_N, args):
    # One fake×real distance block serves both directions, so each pair is computed once.
    block_BxF, block_r2_B = args
    d_BxN = _sq_dists_BxN(block_BxF, real_NxF, real_sq_N)
    fake_inside_B = jnp.any(d_BxN <= real_r2_N[None, :], axis=1)
    real_covered_N = real_covered_N | jnp.any(d_BxN <= block_r2_B[:, None], axis=0)
    return real_covered_N, fake_inside_B

  # Padding fakes get radius -1, so they cover no real point.
  blocks = (_row_blocks(fake_MxF, chunk), _row_blocks(fake_r2_M, chunk, fill=-1.0))
  real_covered_N, fake_inside = lax.scan(
      fake_block, jnp.zeros(real_NxF.shape[0], bool), blocks)
  precision = fake_inside.reshape(-1)[:m].astype(jnp.float32).mean()
  return precision, real_covered_N.astype(jnp.float32).mean()


def all_metrics(real_feats_NxF, real_stats, fake_feats_MxF, fake_probs_MxC, k: int = 3,
                real_r2_N=None) -> dict:
  """Every metric as python floats (class_hist as a list); real_stats = gaussian_stats(reals).

  real_r2_N: the reals' real_sq_radii(real_feats_NxF, k), if precomputed.
  """
  real_mu_F, real_sigma_FxF = real_stats
  fid = frechet_distance(real_mu_F, real_sigma_FxF, *gaussian_stats(fake_feats_MxF))
  hist_C = class_histogram(fake_probs_MxC)
  precision, recall = precision_recall(real_feats_NxF, fake_feats_MxF, k=k, real_r2_N=real_r2_N)
  return {
      "fid": float(fid),
      "score": float(classifier_score(fake_probs_MxC)),
      "kl_to_uniform": float(kl_to_uniform(hist_C)),
      "confident": float(confident_share(fake_probs_MxC)),
      "precision": float(precision),
      "recall": float(recall),
      "class_hist": [float(h) for h in hist_C],
  }
