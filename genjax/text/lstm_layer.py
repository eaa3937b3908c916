"""An LSTM layer computed the way cuDNN and oneDNN compute one: the input's projection for all
time steps in one matmul before the loop, one matmul per step for the recurrence, and a
hand-written backward pass whose loop only carries the state's gradients back; the weights'
gradients are then one matmul each over all time steps.

JAX's own gradient of a scan over flax's OptimizedLSTMCell runs the input projection and its
transpose at every step (32-row matmuls), and adds each step's outer product into the
recurrent kernels' gradient: a 4 MB accumulator read and written 128 times per layer. The
parameters keep OptimizedLSTMCell's names, shapes and initializers (`cell/ii/kernel`, ...,
`cell/ho/bias`), so checkpoints and initial weights are the same as nn.RNN's.

Below float32 (`dtype` bfloat16) every matmul takes `dtype` operands and sums in float32, as
genjax.nn.precision's layers do; the state, the gates and the gradients' sums stay float32.
"""

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax.linen.recurrent import DenseParams

GATES = ("i", "f", "g", "o")  # input, forget, candidate, output: OptimizedLSTMCell's order


def _gates(z_Bx4H):
  """The gates' activations from their pre-activations: sigmoid, sigmoid, tanh, sigmoid."""
  i, f, g, o = jnp.split(z_Bx4H, 4, axis=-1)
  return jax.nn.sigmoid(i), jax.nn.sigmoid(f), jnp.tanh(g), jax.nn.sigmoid(o)


def _mm(spec: str, a, b, dtype):
  """einsum of `dtype` operands, its products summed (and returned) in float32."""
  return jnp.einsum(spec, a.astype(dtype), b.astype(dtype), preferred_element_type=jnp.float32)


def _forward(xz_TxBx4H, c0_BxH, h0_BxH, wh_Hx4H, b_4H, dtype):
  """The recurrence over precomputed input projections: (h_TxBxH, c_TxBxH, gate
  activations_TxBx4H). The bias joins each step's sum (the kernel that adds the recurrence),
  rather than a pass of its own over all T x B x 4H projections."""
  wh_Hx4H = wh_Hx4H.astype(dtype)  # once, outside the loop

  def step(carry, xz_Bx4H):
    c, h = carry
    i, f, g, o = _gates(xz_Bx4H + b_4H + _mm("bh,hg->bg", h, wh_Hx4H, dtype))
    c = f * c + i * g
    h = o * jnp.tanh(c)
    return (c, h), (h, c, jnp.concatenate([i, f, g, o], -1))

  _, (h_TxBxH, c_TxBxH, acts_TxBx4H) = jax.lax.scan(step, (c0_BxH, h0_BxH), xz_TxBx4H)
  return h_TxBxH, c_TxBxH, acts_TxBx4H


@functools.partial(jax.custom_vjp, nondiff_argnums=(6,))
def lstm_scan(x_TxBxE, c0_BxH, h0_BxH, wi_Ex4H, wh_Hx4H, b_4H, dtype=jnp.float32):
  """(outputs h_TxBxH, (c, h) after the last step) of an LSTM over time-major inputs, its
  matmuls in `dtype` (summed in float32)."""
  xz_TxBx4H = _mm("tbe,eg->tbg", x_TxBxE, wi_Ex4H, dtype)
  h_TxBxH, c_TxBxH, _ = _forward(xz_TxBx4H, c0_BxH, h0_BxH, wh_Hx4H, b_4H, dtype)
  return h_TxBxH, (c_TxBxH[-1], h_TxBxH[-1])


def _lstm_fwd(x_TxBxE, c0_BxH, h0_BxH, wi_Ex4H, wh_Hx4H, b_4H, dtype):
  xz_TxBx4H = _mm("tbe,eg->tbg", x_TxBxE, wi_Ex4H, dtype)
  h_TxBxH, c_TxBxH, acts_TxBx4H = _forward(xz_TxBx4H, c0_BxH, h0_BxH, wh_Hx4H, b_4H, dtype)
  residuals = (x_TxBxE, c0_BxH, h0_BxH, wi_Ex4H, wh_Hx4H, h_TxBxH, c_TxBxH, acts_TxBx4H)
  return (h_TxBxH, (c_TxBxH[-1], h_TxBxH[-1])), residuals


def _lstm_bwd(dtype, residuals, cotangents):
  x_TxBxE, c0_BxH, h0_BxH, wi_Ex4H, wh_Hx4H, h_TxBxH, c_TxBxH, acts_TxBx4H = residuals
  dh_TxBxH, (dc_last_BxH, dh_last_BxH) = cotangents
  c_prev_TxBxH = jnp.concatenate([c0_BxH[None], c_TxBxH[:-1]])
  h_prev_TxBxH = jnp.concatenate([h0_BxH[None], h_TxBxH[:-1]])
  wh_Hx4H_low = wh_Hx4H.astype(dtype)  # once, outside the loop

  def step(carry, inputs):
    """One step back: the pre-activations' gradient dz, and the state's before the step."""
    dh_BxH, dc_BxH = carry
    dy_BxH, c_prev_BxH, c_BxH, acts_Bx4H = inputs
    i, f, g, o = jnp.split(acts_Bx4H, 4, axis=-1)
    dh_BxH = dh_BxH + dy_BxH
    tanh_c = jnp.tanh(c_BxH)
    dc_BxH = dc_BxH + dh_BxH * o * (1 - tanh_c * tanh_c)
    dz_Bx4H = jnp.concatenate([dc_BxH * g * i * (1 - i), dc_BxH * c_prev_BxH * f * (1 - f),
                               dc_BxH * i * (1 - g * g), dh_BxH * tanh_c * o * (1 - o)], -1)
    return (_mm("bg,hg->bh", dz_Bx4H, wh_Hx4H_low, dtype), dc_BxH * f), dz_Bx4H

  (dh0_BxH, dc0_BxH), dz_TxBx4H = jax.lax.scan(
      step, (dh_last_BxH, dc_last_BxH), (dh_TxBxH, c_prev_TxBxH, c_TxBxH, acts_TxBx4H),
      reverse=True)
  # The weights' gradients: one matmul each over all T x B rows.
  dwh_Hx4H = _mm("tbh,tbg->hg", h_prev_TxBxH, dz_TxBx4H, dtype)
  dwi_Ex4H = _mm("tbe,tbg->eg", x_TxBxE, dz_TxBx4H, dtype)
  dx_TxBxE = _mm("tbg,eg->tbe", dz_TxBx4H, wi_Ex4H, dtype).astype(x_TxBxE.dtype)
  return (dx_TxBxE, dc0_BxH, dh0_BxH, dwi_Ex4H, dwh_Hx4H, dz_TxBx4H.sum((0, 1)))


lstm_scan.defvjp(_lstm_fwd, _lstm_bwd)


class _CellParams(nn.Module):
  """OptimizedLSTMCell's parameters, concatenated in gate order: (wi_Ex4H, wh_Hx4H, b_4H)."""

  features: int

  @nn.compact
  def __call__(self, input_dim: int):
    x, h = jnp.zeros((1, input_dim)), jnp.zeros((1, self.features))
    inputs = [DenseParams(self.features, use_bias=False, kernel_init=nn.initializers.lecun_normal(),
                          name=f"i{gate}")(x)[0] for gate in GATES]
    hidden = [DenseParams(self.features, kernel_init=nn.initializers.orthogonal(),
                          name=f"h{gate}")(h) for gate in GATES]
    return (jnp.concatenate(inputs, -1), jnp.concatenate([k for k, _ in hidden], -1),
            jnp.concatenate([b for _, b in hidden], -1))


class LSTMLayer(nn.Module):
  """An LSTM over time-major inputs: (x_TxBxE, carry (c_BxH, h_BxH) or None for zeros) ->
  ((c, h) after the last step, outputs h_TxBxH); nn.RNN(nn.OptimizedLSTMCell)'s function."""

  features: int
  dtype: Any = jnp.float32  # the matmuls' operands; the state and the gates stay float32

  @nn.compact
  def __call__(self, x_TxBxE, carry=None):
    wi_Ex4H, wh_Hx4H, b_4H = _CellParams(self.features, name="cell")(x_TxBxE.shape[-1])
    if carry is None:
      zeros_BxH = jnp.zeros((x_TxBxE.shape[1], self.features), jnp.float32)
      carry = (zeros_BxH, zeros_BxH)
    h_TxBxH, last = lstm_scan(x_TxBxE, *carry, wi_Ex4H, wh_Hx4H, b_4H, jnp.dtype(self.dtype))
    return last, h_TxBxH
