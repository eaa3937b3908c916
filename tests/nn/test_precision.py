import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.nn import precision


def _inputs():
  kx, kw = jax.random.split(jax.random.key(0))
  return (jax.random.normal(kx, (2, 5, 64), jnp.float32),
          jax.random.normal(kw, (64, 24), jnp.float32))


def test_matmul_and_its_gradients_follow_float32_to_bfloat16_rounding():
  x, w = _inputs()
  xb, wb = x.astype(jnp.bfloat16), w.astype(jnp.bfloat16)
  out = precision.matmul_f32_sum(xb, wb)
  assert out.dtype == jnp.bfloat16
  # the exact product of the rounded inputs, rounded once: float32 sums, not bfloat16 ones
  exact = np.asarray(xb, np.float64) @ np.asarray(wb, np.float64)
  np.testing.assert_allclose(np.asarray(out, np.float64), exact, rtol=1e-2, atol=1e-2)

  def loss(fn, x_, w_):
    return jnp.sum(jnp.sin(fn(x_, w_).astype(jnp.float32)))

  gx, gw = jax.grad(lambda a, b: loss(precision.matmul_f32_sum, a, b), (0, 1))(xb, wb)
  assert gx.dtype == jnp.bfloat16 and gw.dtype == jnp.bfloat16
  rx, rw = jax.grad(lambda a, b: loss(lambda p, q: p @ q, a, b), (0, 1))(
      xb.astype(jnp.float32), wb.astype(jnp.float32))
  # each gradient within a few bfloat16 ulps of the float32 one (relative to its scale)
  for got, ref in ((gx, rx), (gw, rw)):
    scale = float(jnp.max(jnp.abs(ref)))
    assert float(jnp.max(jnp.abs(got.astype(jnp.float32) - ref))) < 0.05 * scale


def test_dense_takes_the_mixed_dot_only_below_float32():
  assert precision.dense_dot_general(jnp.float32) is None
  x, _ = _inputs()
  layer = nn.Dense(8, dtype=jnp.bfloat16, dot_general=precision.dense_dot_general("bfloat16"))
  params = layer.init(jax.random.key(1), x)
  out = layer.apply(params, x)
  ref = nn.Dense(8).apply(params, x)
  assert out.dtype == jnp.bfloat16
  np.testing.assert_allclose(np.asarray(out, np.float32), ref, atol=0.05)
  with pytest.raises(ValueError, match="dimension numbers"):
    precision.dense_dot_general("bfloat16")(x, x, (((0,), (0,)), ((), ())))


def test_auto_resolves_to_a_dtype_this_host_runs():
  resolved = precision.resolve_compute_dtype("auto")
  expected = "bfloat16" if precision.cpu_has_bfloat16_matmul() else "float32"
  assert resolved == expected  # the tests run on CPU
  assert precision.resolve_compute_dtype("float32") == "float32"
