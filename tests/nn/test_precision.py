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
  assert out.dtype == jnp.float32
  # the exact product of the rounded inputs up to float32 sums (bfloat16 sums: ~1e-2 off)
  exact = np.asarray(xb, np.float64) @ np.asarray(wb, np.float64)
  np.testing.assert_allclose(np.asarray(out, np.float64), exact, rtol=1e-5, atol=1e-4)

  def loss(fn, x_, w_):
    return jnp.sum(jnp.sin(fn(x_, w_)))

  gx, gw = jax.grad(lambda a, b: loss(precision.matmul_f32_sum, a, b), (0, 1))(xb, wb)
  assert gx.dtype == jnp.bfloat16 and gw.dtype == jnp.bfloat16
  rx, rw = jax.grad(lambda a, b: loss(lambda p, q: p @ q, a, b), (0, 1))(
      xb.astype(jnp.float32), wb.astype(jnp.float32))
  # each gradient within a few bfloat16 ulps of the float32 one (relative to its scale)
  for got, ref in ((gx, rx), (gw, rw)):
    scale = float(jnp.max(jnp.abs(ref)))
    assert float(jnp.max(jnp.abs(got.astype(jnp.float32) - ref))) < 0.05 * scale


def test_mixed_dense_is_flax_dense_in_parameters_and_close_in_value():
  assert isinstance(precision.dense(8, jnp.float32), nn.Dense)
  x, _ = _inputs()
  layer = precision.dense(8, jnp.bfloat16, name="layer")
  params = layer.init(jax.random.key(1), x)
  reference = nn.Dense(8)
  # the same names, shapes and initial values as flax's layer under the same key
  flax_params = reference.init(jax.random.key(1), x)
  assert jax.tree.structure(params) == jax.tree.structure(flax_params)
  for got, want in zip(jax.tree.leaves(params), jax.tree.leaves(flax_params)):
    np.testing.assert_array_equal(got, want)
  params = jax.tree.map(lambda a: a + 0.1, params)  # a bias that is not zero
  out = layer.apply(params, x)
  assert out.dtype == jnp.bfloat16
  np.testing.assert_allclose(np.asarray(out, np.float32), reference.apply(params, x), atol=0.05)

  def loss(apply, p):
    return jnp.sum(jnp.sin(apply(p, x).astype(jnp.float32)))

  grads = jax.grad(lambda p: loss(layer.apply, p))(params)
  ref_grads = jax.grad(lambda p: loss(reference.apply, p))(params)
  for got, ref in zip(jax.tree.leaves(grads), jax.tree.leaves(ref_grads)):
    assert float(jnp.max(jnp.abs(got - ref))) < 0.05 * float(jnp.max(jnp.abs(ref)))


def test_auto_resolves_to_a_dtype_this_host_runs():
  resolved = precision.resolve_compute_dtype("auto")
  expected = "bfloat16" if precision.cpu_has_bfloat16_matmul() else "float32"
  assert resolved == expected  # the tests run on CPU
  assert precision.resolve_compute_dtype("float32") == "float32"
