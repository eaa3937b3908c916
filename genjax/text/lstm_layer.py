"""An LSTM layer computed the way cuDNN and oneDNN compute one: the input's projection for all
time steps in one matmul before the loop, one matmul per step for the recurrence, and a
hand-written backward pass whose loop only carries the state's gradients back; the weights'
gradients are then one matmul each over all time steps.

JAX's own gradient of a scan over flax's OptimizedLSTMCell runs the input projection and its
transpose at every step (32-row matmuls), and adds each step's outer product into the
recurrent kernels' gradient: a 4 MB accumulator read and written 128 times per layer. The
parameters keep OptimizedLSTMCell's names, shapes and initializers (`cell/ii/kernel`, ...,
`cell/ho/bias`), so checkpoints and initial weights are the same as nn.RNN's.

`lstm_recurrence` (the custom VJP) starts from the projections, so their gradient is its
output: the projection itself is a plain matmul differentiated by JAX, or, for a layer fed by
an embedding, the embedding table's projection looked up per token (`LSTMLayer`'s tokens_TxB).

Inside the loops the state is feature-major (H x B, gates 4H x B): each step's recurrent
matmul is then W_h^T (4H x H) times h (H x B), which XLA:CPU's YNNPACK runs faster than the
batch-major h (B x H) times W_h, forward and backward (docs/results.md has the timings). The inputs
are transposed once before the loop and the outputs once after it.

Below float32 (`dtype` bfloat16) every matmul takes `dtype` operands and sums in float32, as
genjax.nn.precision's layers do; the state, the gates and the gradients' sums stay float32."""

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax.linen.recurrent import DenseParams

from genjax.nn.precision import matmul_f32_sum

GATES = ("i", "f", "g", "o")  # input, forget, candidate, output: OptimizedLSTMCell's order


def _tanh_scale(hidden: int) -> jnp.ndarray:
  """Each gate's activation as s tanh(s z) + 1 - s: s 1/2 for a sigmoid (sigmoid(z) =
  tanh(z/2)/2 + 1/2), 1 for the candidate's tanh. All four gates are then one tanh over the
  step's 4H pre-activations, in one kernel, where four activations took four and a copy joined
  them (docs/results.md has the timings)."""
  return jnp.repeat(jnp.array([0.5, 0.5, 1.0, 0.5], jnp.float32), hidden)  # GATES' order


def _mm(spec: str, a, b, dtype):
  """einsum of `dtype` operands, its products summed (and returned) in float32."""
  return jnp.einsum(spec, a.astype(dtype), b.astype(dtype), preferred_element_type=jnp.float32)


def _forward(xz_TxBx4H, c0_BxH, h0_BxH, wh_Hx4H, b_4H, dtype):
  """The recurrence over precomputed input projections, feature-major: (h_TxHxB, c_TxHxB,
  gate activations_Tx4HxB). The bias joins each step's sum (the kernel that adds the
  recurrence), rather than a pass of its own over all T x B x 4H projections."""
  whT_4HxH = wh_Hx4H.T.astype(dtype)  # once, outside the loop
  s_4Hx1 = _tanh_scale(c0_BxH.shape[-1])[:, None]
  b_4Hx1 = b_4H[:, None]

  def step(carry, xz_4HxB):
    c_HxB, h_HxB = carry
    z_4HxB = xz_4HxB + b_4Hx1 + _mm("gh,hb->gb", whT_4HxH, h_HxB, dtype)
    acts_4HxB = s_4Hx1 * jnp.tanh(s_4Hx1 * z_4HxB) + (1 - s_4Hx1)
    i, f, g, o = jnp.split(acts_4HxB, 4, axis=0)
    c_HxB = f * c_HxB + i * g
    h_HxB = o * jnp.tanh(c_HxB)
    return (c_HxB, h_HxB), (h_HxB, c_HxB, acts_4HxB)

  _, (h_TxHxB, c_TxHxB, acts_Tx4HxB) = jax.lax.scan(
      step, (c0_BxH.T, h0_BxH.T), jnp.transpose(xz_TxBx4H, (0, 2, 1)))
  return h_TxHxB, c_TxHxB, acts_Tx4HxB


@functools.partial(jax.custom_vjp, nondiff_argnums=(5,))
def lstm_recurrence(xz_TxBx4H, c0_BxH, h0_BxH, wh_Hx4H, b_4H, dtype=jnp.float32):
  """(outputs h_TxBxH, (c, h) after the last step) of an LSTM over its inputs' projections
  (x_t W_i for every step t, float32), its recurrent matmuls in `dtype` (summed in float32)."""
  return _recurrence_fwd(xz_TxBx4H, c0_BxH, h0_BxH, wh_Hx4H, b_4H, dtype)[0]


def _recurrence_fwd(xz_TxBx4H, c0_BxH, h0_BxH, wh_Hx4H, b_4H, dtype):
  h_TxHxB, c_TxHxB, acts_Tx4HxB = _forward(xz_TxBx4H, c0_BxH, h0_BxH, wh_Hx4H, b_4H, dtype)
  h_TxBxH = jnp.transpose(h_TxHxB, (0, 2, 1))
  residuals = (c0_BxH, h0_BxH, wh_Hx4H, h_TxBxH, c_TxHxB, acts_Tx4HxB)
  return (h_TxBxH, (c_TxHxB[-1].T, h_TxBxH[-1])), residuals


def _recurrence_bwd(dtype, residuals, cotangents):
  c0_BxH, h0_BxH, wh_Hx4H, h_TxBxH, c_TxHxB, acts_Tx4HxB = residuals
  dh_TxBxH, (dc_last_BxH, dh_last_BxH) = cotangents
  c_prev_TxHxB = jnp.concatenate([c0_BxH.T[None], c_TxHxB[:-1]])
  wh_Hx4H_low = wh_Hx4H.astype(dtype)  # once, outside the loop
  is_tanh_4Hx1 = (_tanh_scale(c0_BxH.shape[-1]) == 1)[:, None]

  def step(carry, inputs):
    """One step back: the pre-activations' gradient dz, and the state's before the step."""
    dh_HxB, dc_HxB = carry
    dy_HxB, c_prev_HxB, c_HxB, acts_4HxB = inputs
    i, f, g, o = jnp.split(acts_4HxB, 4, axis=0)
    dh_HxB = dh_HxB + dy_HxB
    tanh_c = jnp.tanh(c_HxB)
    dc_HxB = dc_HxB + dh_HxB * o * (1 - tanh_c * tanh_c)
    # each gate's upstream gradient times its partner, then the activation's derivative over
    # all 4H at once (a sigmoid's a(1 - a), the candidate's 1 - a^2)
    partner_4HxB = jnp.concatenate(
        [dc_HxB * g, dc_HxB * c_prev_HxB, dc_HxB * i, dh_HxB * tanh_c], 0)
    dz_4HxB = partner_4HxB * jnp.where(is_tanh_4Hx1, 1 - acts_4HxB * acts_4HxB,
                                       acts_4HxB * (1 - acts_4HxB))
    return (_mm("hg,gb->hb", wh_Hx4H_low, dz_4HxB, dtype), dc_HxB * f), dz_4HxB

  (dh0_HxB, dc0_HxB), dz_Tx4HxB = jax.lax.scan(
      step, (dh_last_BxH.T, dc_last_BxH.T),
      (jnp.transpose(dh_TxBxH, (0, 2, 1)), c_prev_TxHxB, c_TxHxB, acts_Tx4HxB), reverse=True)
  # dz is the projections' gradient: the input weights' (and the inputs') follow from it, one
  # matmul each. The recurrent weights' gradient is one matmul over all T x B rows, h_prev
  # laid out H x (T B) in one copy that the barrier keeps: XLA:CPU otherwise folds the
  # transpose into the dot and contracted (t, b) in (b, t) order, transposing both operands
  # (32 MB of dz per layer) to get there.
  dz_TxBx4H = jnp.transpose(dz_Tx4HxB, (0, 2, 1))
  h_prev_TxBxH = jnp.concatenate([h0_BxH[None], h_TxBxH[:-1]])
  h_prev_HxN = jax.lax.optimization_barrier(
      jnp.transpose(h_prev_TxBxH, (2, 0, 1)).reshape(h_prev_TxBxH.shape[-1], -1))
  dwh_Hx4H = _mm("hn,ng->hg", h_prev_HxN, dz_TxBx4H.reshape(-1, dz_TxBx4H.shape[-1]), dtype)
  return (dz_TxBx4H, dc0_HxB.T, dh0_HxB.T, dwh_Hx4H, dz_Tx4HxB.sum((0, 2)))


lstm_recurrence.defvjp(_recurrence_fwd, _recurrence_bwd)


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
  def __call__(self, x_TxBxE, carry=None, tokens_TxB=None):
    """With tokens_TxB, x is an embedding table (V x E) and the inputs are its rows at the
    tokens: the table's projection (V rows) is then looked up, where the inputs' would take
    T x B rows (a character model's table has far fewer)."""
    wi_Ex4H, wh_Hx4H, b_4H = _CellParams(self.features, name="cell")(x_TxBxE.shape[-1])
    dtype = jnp.dtype(self.dtype)
    # N: the inputs' T x B, or the table's V rows. JAX differentiates the projection and the
    # lookup itself: the projection's transpose is a matmul, the lookup's a scatter-add.
    xz_Nx4H = matmul_f32_sum(x_TxBxE.astype(dtype), wi_Ex4H.astype(dtype))
    xz_TxBx4H = xz_Nx4H if tokens_TxB is None else jnp.take(xz_Nx4H, tokens_TxB, axis=0)
    if carry is None:
      zeros_BxH = jnp.zeros((xz_TxBx4H.shape[1], self.features), jnp.float32)
      carry = (zeros_BxH, zeros_BxH)
    h_TxBxH, last = lstm_recurrence(xz_TxBx4H, *carry, wh_Hx4H, b_4H, dtype)
    return last, h_TxBxH
