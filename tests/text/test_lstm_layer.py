"""The LSTM layer with its input projection hoisted out of the loop and its hand-written
backward pass is flax's nn.RNN(nn.OptimizedLSTMCell): same parameters, values and gradients."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from genjax.text.lstm_layer import LSTMLayer

T, B, E, H = 7, 3, 5, 4


def test_the_layer_is_flaxs_lstm_in_values_and_gradients():
  key_x, key_c, key_h, key_p, key_g = jax.random.split(jax.random.key(0), 5)
  x_TxBxE = jax.random.normal(key_x, (T, B, E))
  carry = (jax.random.normal(key_c, (B, H)), jax.random.normal(key_h, (B, H)))
  layer = LSTMLayer(H)
  params = layer.init(key_p, x_TxBxE)["params"]
  flax_rnn = nn.RNN(nn.OptimizedLSTMCell(H), time_major=True, return_carry=True)
  # the same parameter tree: checkpoints and initial weights carry over
  assert jax.tree.structure(flax_rnn.init(key_p, x_TxBxE)["params"]) == jax.tree.structure(params)
  weights_TxBxH = jax.random.normal(key_g, (T, B, H))

  def loss(apply, p, x, c):
    (c_last, h_last), h_TxBxH = apply(p, x, c)
    # every output feeds the loss: the outputs, and both halves of the final carry
    return jnp.sum(jnp.sin(h_TxBxH) * weights_TxBxH) + jnp.sum(c_last ** 2) + jnp.sum(h_last)

  ours = lambda p, x, c: layer.apply({"params": p}, x, c)  # noqa: E731
  theirs = lambda p, x, c: flax_rnn.apply({"params": p}, x, initial_carry=c)  # noqa: E731
  (c1, h1), out1 = ours(params, x_TxBxE, carry)
  (c2, h2), out2 = theirs(params, x_TxBxE, carry)
  for got, want in ((out1, out2), (c1, c2), (h1, h2)):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
  grads1 = jax.grad(lambda *a: loss(ours, *a), argnums=(0, 1, 2))(params, x_TxBxE, carry)
  grads2 = jax.grad(lambda *a: loss(theirs, *a), argnums=(0, 1, 2))(params, x_TxBxE, carry)
  flat1, flat2 = jax.tree.leaves(grads1), jax.tree.leaves(grads2)
  assert len(flat1) == len(flat2) == 12 + 1 + 2  # 8 kernels, 4 biases; inputs; carry
  for got, want in zip(flat1, flat2):
    assert float(jnp.max(jnp.abs(want))) > 0  # a gradient that could differ
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_without_a_carry_the_layer_starts_from_zeros():
  x_TxBxE = jax.random.normal(jax.random.key(1), (T, B, E))
  layer = LSTMLayer(H)
  params = layer.init(jax.random.key(2), x_TxBxE)
  zeros = (jnp.zeros((B, H)), jnp.zeros((B, H)))
  (c1, _), out1 = layer.apply(params, x_TxBxE)
  (c2, _), out2 = layer.apply(params, x_TxBxE, zeros)
  np.testing.assert_array_equal(out1, out2)
  np.testing.assert_array_equal(c1, c2)


def test_in_bfloat16_the_layer_follows_float32_with_bfloat16_matmuls():
  key_x, key_p, key_g = jax.random.split(jax.random.key(3), 3)
  x_TxBxE = jax.random.normal(key_x, (T, B, E))
  weights_TxBxH = jax.random.normal(key_g, (T, B, H))
  params = LSTMLayer(H).init(key_p, x_TxBxE)["params"]

  def loss(dtype, p, x):
    (c_last, _), h_TxBxH = LSTMLayer(H, dtype).apply({"params": p}, x)
    return jnp.sum(jnp.sin(h_TxBxH) * weights_TxBxH) + jnp.sum(c_last ** 2)

  value16, grads16 = jax.value_and_grad(lambda *a: loss(jnp.bfloat16, *a), (0, 1))(
      params, x_TxBxE)
  value32, grads32 = jax.value_and_grad(lambda *a: loss(jnp.float32, *a), (0, 1))(
      params, x_TxBxE)
  assert value16.dtype == jnp.float32 and float(value16) != float(value32)
  assert abs(float(value16) - float(value32)) < 0.02 * abs(float(value32))
  for got, want in zip(jax.tree.leaves(grads16), jax.tree.leaves(grads32)):
    assert got.dtype == want.dtype == jnp.float32  # the gradients' sums stay float32
    scale = float(jnp.max(jnp.abs(want)))
    assert float(jnp.max(jnp.abs(got - want))) < 0.05 * scale
  hlo = jax.jit(jax.grad(lambda p: loss(jnp.bfloat16, p, x_TxBxE))).lower(params).as_text()
  assert "bf16" in hlo  # the matmuls really take bfloat16 operands


def test_the_language_model_projects_its_embedding_table_as_it_would_the_tokens():
  # Without dropout, the first layer looks up the table's projection (V rows); with it, it
  # projects each dropped-out embedding. The same model either way, in values and gradients.
  from genjax.text.lm_models import LSTMLM

  V, batch, steps = 7, 3, 4  # 12 tokens > 7 characters: the table's path
  tokens_BxT = jax.random.randint(jax.random.key(4), (batch, steps), 0, V)
  by_table, by_tokens = (LSTMLM(V, width=H, num_layers=2, embed_dim=E, dropout=rate)
                         for rate in (0.0, 1e-9))  # a rate this small drops nothing here
  params = by_table.init(jax.random.key(5), tokens_BxT, train=True)["params"]

  def loss(model, p):
    logits = model.apply({"params": p}, tokens_BxT, train=True,
                         rngs={"dropout": jax.random.key(6)})
    return jnp.sum(jnp.sin(logits)), logits

  (_, logits1), grads1 = jax.value_and_grad(lambda p: loss(by_table, p), has_aux=True)(params)
  (_, logits2), grads2 = jax.value_and_grad(lambda p: loss(by_tokens, p), has_aux=True)(params)
  np.testing.assert_allclose(logits1, logits2, rtol=1e-5, atol=1e-6)
  for got, want in zip(jax.tree.leaves(grads1), jax.tree.leaves(grads2)):
    assert float(jnp.max(jnp.abs(want))) > 0
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
  jaxpr = str(jax.make_jaxpr(lambda p: loss(by_table, p))(params))
  assert f"f32[{V},{4 * H}]" in jaxpr  # the table's projection
  assert f"f32[{steps},{batch},{E}]" not in jaxpr  # no embedded tokens
