"""Character language models as flax.linen modules: a decoder-only Transformer (pre-LayerNorm
blocks of causal multi-head self-attention and an MLP, learned positions) with a key/value
cache for decoding, and a stacked LSTM that decodes by carrying its state.

Both map tokens_BxT to next-token logits_BxTxV; both read a prompt in one pass into a decoding
state (`init_decode_state`, then `prefill(prompt_BxP, state)`) and then decode one token at a
time from it (`decode(token_B, pos, state)`), so generation is one jitted loop.
"""

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from genjax.nn.dropout import Dropout
from genjax.nn.precision import dense, resolve_compute_dtype
from genjax.text.lstm_layer import LSTMLayer

NEG_INF = -1e9  # masked attention logits (finite: no NaN when a row is fully masked)


def causal_attention(q_BxTxHxK, k_BxLxHxK, v_BxLxHxK, allowed_TxL) -> jnp.ndarray:
  """softmax(q kᵀ / sqrt(K)) v over the allowed (query, key) pairs: B x T x H x K. The logits,
  softmax and sums are float32; below float32 the four matmuls take `dtype` operands."""
  if q_BxTxHxK.dtype != jnp.float32:
    return mixed_attention(q_BxTxHxK, k_BxLxHxK, v_BxLxHxK, allowed_TxL)
  return _attention_fwd(q_BxTxHxK, k_BxLxHxK, v_BxLxHxK, allowed_TxL)[0]


def _attention_fwd(q_BxTxHxK, k_BxLxHxK, v_BxLxHxK, allowed_TxL):
  dtype = q_BxTxHxK.dtype
  scale = 1.0 / math.sqrt(q_BxTxHxK.shape[-1])
  logits_BxHxTxL = jnp.einsum("bthk,blhk->bhtl", q_BxTxHxK, k_BxLxHxK,
                              preferred_element_type=jnp.float32) * scale
  weights_BxHxTxL = jax.nn.softmax(jnp.where(allowed_TxL, logits_BxHxTxL, NEG_INF), axis=-1)
  out = jnp.einsum("bhtl,blhk->bthk", weights_BxHxTxL.astype(dtype), v_BxLxHxK,
                   preferred_element_type=jnp.float32).astype(dtype)
  return out, (q_BxTxHxK, k_BxLxHxK, v_BxLxHxK, weights_BxHxTxL)


def _attention_bwd(residuals, g_BxTxHxK):
  """The four backward matmuls with `dtype` operands summed in float32 (JAX's own transpose
  would run them in float32); the softmax's gradient in float32."""
  q_BxTxHxK, k_BxLxHxK, v_BxLxHxK, weights_BxHxTxL = residuals
  dtype = q_BxTxHxK.dtype
  scale = 1.0 / math.sqrt(q_BxTxHxK.shape[-1])

  def mm(spec, a, b):
    return jnp.einsum(spec, a, b, preferred_element_type=jnp.float32)

  g_BxTxHxK = g_BxTxHxK.astype(dtype)
  dv = mm("bhtl,bthk->blhk", weights_BxHxTxL.astype(dtype), g_BxTxHxK)
  dweights_BxHxTxL = mm("bthk,blhk->bhtl", g_BxTxHxK, v_BxLxHxK)
  dlogits_BxHxTxL = weights_BxHxTxL * (
      dweights_BxHxTxL - jnp.sum(dweights_BxHxTxL * weights_BxHxTxL, -1, keepdims=True))
  dlogits_BxHxTxL = (dlogits_BxHxTxL * scale).astype(dtype)  # masked pairs: weight 0, so 0
  dq = mm("bhtl,blhk->bthk", dlogits_BxHxTxL, k_BxLxHxK)
  dk = mm("bhtl,bthk->blhk", dlogits_BxHxTxL, q_BxTxHxK)
  return dq.astype(dtype), dk.astype(dtype), dv.astype(dtype), None


mixed_attention = jax.custom_vjp(lambda q, k, v, allowed: _attention_fwd(q, k, v, allowed)[0])
mixed_attention.defvjp(_attention_fwd, _attention_bwd)


def windowed_attention(q_BxTxHxK, k_BxTxHxK, v_BxTxHxK, num_blocks: int = 2) -> jnp.ndarray:
  """causal_attention over a whole window, its queries in `num_blocks` blocks of rows: block i
  attends to the keys up to its own last position only, so the pairs no query may see past
  the blocks' diagonal are never computed. Two blocks run the 4 x 192 model's attention
  (forward and backward) 2.6x faster on a 2-core CPU than one: a quarter fewer pairs, and each
  block's B x H x T/2 x L arrays stay nearer the cache (docs/results.md)."""
  t = q_BxTxHxK.shape[1]
  if t % num_blocks:
    num_blocks = 1
  rows = t // num_blocks
  allowed_TxT = jnp.tril(jnp.ones((t, t), bool))
  outs = []
  for i in range(num_blocks):
    end = (i + 1) * rows  # block i's queries see keys 0..end-1
    outs.append(causal_attention(q_BxTxHxK[:, i * rows:end], k_BxTxHxK[:, :end],
                                 v_BxTxHxK[:, :end], allowed_TxT[i * rows:end, :end]))
  return jnp.concatenate(outs, axis=1)


class SelfAttention(nn.Module):
  """Causal multi-head self-attention; with a cache, one new position against the cached ones."""

  num_heads: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x_BxTxD, cache=None, pos=None):
    b, t, d = x_BxTxD.shape
    heads, head_dim = self.num_heads, d // self.num_heads
    qkv = dense(3 * d, self.dtype, use_bias=False, name="qkv")(x_BxTxD)
    q, k, v = jnp.split(qkv.reshape(b, t, 3 * heads, head_dim), 3, axis=2)
    if cache is None:  # a whole window: position i sees 0..i
      out = windowed_attention(q, k, v)
    else:  # decoding: the new keys and values go in at pos..pos+t-1; pos + i sees 0..pos + i
      cache = {"k": jax.lax.dynamic_update_slice(cache["k"], k.astype(cache["k"].dtype),
                                                 (0, pos, 0, 0)),
               "v": jax.lax.dynamic_update_slice(cache["v"], v.astype(cache["v"].dtype),
                                                 (0, pos, 0, 0))}
      allowed = jnp.arange(cache["k"].shape[1])[None, :] <= (pos + jnp.arange(t))[:, None]
      out = causal_attention(q, cache["k"], cache["v"], allowed)
    out = dense(d, self.dtype, use_bias=False, name="out")(out.reshape(b, t, d))
    return out, cache


class Block(nn.Module):
  """x + attention(LayerNorm(x)), then x + MLP(LayerNorm(x)) (pre-LayerNorm, GPT-2 style)."""

  num_heads: int
  mlp_ratio: int = 4
  dropout: float = 0.0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x_BxTxD, train: bool, cache=None, pos=None):
    drop = Dropout(self.dropout, deterministic=not train)
    h, cache = SelfAttention(self.num_heads, self.dtype, name="attention")(
        nn.LayerNorm(dtype=self.dtype, name="ln_1")(x_BxTxD), cache, pos)
    x_BxTxD = x_BxTxD + drop(h)
    h = nn.LayerNorm(dtype=self.dtype, name="ln_2")(x_BxTxD)
    h = nn.gelu(dense(self.mlp_ratio * x_BxTxD.shape[-1], self.dtype, name="mlp_in")(h))
    h = dense(x_BxTxD.shape[-1], self.dtype, name="mlp_out")(h)
    return x_BxTxD + drop(h), cache


class TransformerLM(nn.Module):
  """Decoder-only Transformer over `context` positions; the output layer is the embedding's
  transpose (tied weights)."""

  vocab_size: int
  context: int
  width: int
  num_layers: int
  num_heads: int
  dropout: float = 0.0
  dtype: Any = jnp.float32  # compute dtype; parameters stay float32

  def setup(self):
    self.embed = nn.Embed(self.vocab_size, self.width,
                          embedding_init=nn.initializers.normal(0.02))
    self.positions = self.param("positions", nn.initializers.normal(0.02),
                                (self.context, self.width))
    self.blocks = [Block(self.num_heads, dropout=self.dropout, dtype=self.dtype)
                   for _ in range(self.num_layers)]
    self.ln_f = nn.LayerNorm()  # float32: the logits keep their precision
    self.drop = Dropout(self.dropout)

  def logits(self, h_BxTxD) -> jnp.ndarray:
    return self.embed.attend(self.ln_f(h_BxTxD).astype(jnp.float32))

  def __call__(self, tokens_BxT, train: bool = False) -> jnp.ndarray:
    """Next-token logits at every position of windows of at most `context` tokens."""
    t = tokens_BxT.shape[1]
    h = self.embed(tokens_BxT) + self.positions[:t]
    h = self.drop(h, deterministic=not train)  # the residual stream stays float32
    for block in self.blocks:
      h, _ = block(h, train)
    return self.logits(h)

  def init_decode_state(self, batch: int) -> list:
    """Empty key/value caches, one per layer: B x context x heads x head width."""
    shape = (batch, self.context, self.num_heads, self.width // self.num_heads)
    return [{"k": jnp.zeros(shape, self.dtype), "v": jnp.zeros(shape, self.dtype)}
            for _ in range(self.num_layers)]

  def extend(self, tokens_BxT, pos, caches):
    """(logits_BxV of the token after the last of tokens_BxT, the caches with their keys and
    values at positions pos..pos+T-1): one pass over the T tokens, each seeing the cached
    positions before it."""
    t = tokens_BxT.shape[1]
    h = self.embed(tokens_BxT) + jax.lax.dynamic_slice_in_dim(self.positions, pos, t)[None]
    new_caches = []
    for block, cache in zip(self.blocks, caches):
      h, cache = block(h, False, cache, pos)
      new_caches.append(cache)
    return self.logits(h[:, -1:])[:, 0], new_caches

  def prefill(self, prompt_BxP, caches):
    """(logits_BxV of the token after the prompt, the caches filled with its P positions)."""
    return self.extend(prompt_BxP, 0, caches)

  def decode(self, token_B, pos, caches):
    """(logits_BxV of the token after `token_B` at position `pos`, the updated caches)."""
    return self.extend(token_B[:, None], pos, caches)


class LSTMLM(nn.Module):
  """Embedding, a stack of LSTM layers (lstm_layer.LSTMLayer: nn.RNN over
  nn.OptimizedLSTMCell's parameters and function, its input projection hoisted out of the
  loop; dropout between them), and a dense layer to the next-token logits."""

  vocab_size: int
  width: int
  num_layers: int
  embed_dim: int = 0  # 0: the LSTM's width
  dropout: float = 0.0
  context: int = 0  # training windows' length (an LSTM itself has no limit)
  dtype: Any = jnp.float32  # the LSTM layers' matmuls; the state, gates and logits are float32

  def setup(self):
    self.embed = nn.Embed(self.vocab_size, self.embed_dim or self.width)
    self.layers = [LSTMLayer(self.width, self.dtype) for _ in range(self.num_layers)]
    self.drop = Dropout(self.dropout)
    self.head = nn.Dense(self.vocab_size)

  def run(self, tokens_BxT, train: bool, carries=None):
    """(logits_BxTxV, the last carries): carries None starts from zero states."""
    # Time-major between the layers: each one's loop steps through its leading axis.
    tokens_TxB = tokens_BxT.T
    # Without dropout on the embedding, the first layer projects the embedding table (V rows)
    # and looks its rows up, rather than projecting T x B embedded tokens.
    by_table = (not train or self.dropout == 0) and tokens_BxT.size > self.vocab_size
    h = (self.embed.embedding if by_table
         else self.drop(self.embed(tokens_TxB), deterministic=not train))
    new_carries = []
    for i, layer in enumerate(self.layers):
      carry, h = layer(h, None if carries is None else carries[i],
                       tokens_TxB if by_table and i == 0 else None)
      new_carries.append(carry)
      h = self.drop(h, deterministic=not train)
    return jnp.swapaxes(self.head(h), 0, 1), new_carries

  def __call__(self, tokens_BxT, train: bool = False) -> jnp.ndarray:
    return self.run(tokens_BxT, train)[0]

  def init_decode_state(self, batch: int) -> list:
    zeros = jnp.zeros((batch, self.width), jnp.float32)
    return [(zeros, zeros) for _ in range(self.num_layers)]

  def prefill(self, prompt_BxP, carries):
    """(logits_BxV of the token after the prompt, the carries after it)."""
    logits_BxPxV, carries = self.run(prompt_BxP, False, carries)
    return logits_BxPxV[:, -1], carries

  def decode(self, token_B, pos, carries):
    """(logits_BxV of the next token, the carries after `token_B`); pos is unused."""
    del pos
    return self.prefill(token_B[:, None], carries)


def build_lm(config, vocab_size: int) -> nn.Module:
  """The language model of config.model ("transformer" or "lstm")."""
  dtype = jnp.dtype(resolve_compute_dtype(config.compute_dtype))
  if config.model == "lstm":
    return LSTMLM(vocab_size=vocab_size, width=config.width, num_layers=config.num_layers,
                  embed_dim=config.embed_dim, dropout=config.dropout, context=config.context,
                  dtype=dtype)
  return TransformerLM(vocab_size=vocab_size, context=config.context, width=config.width,
                       num_layers=config.num_layers, num_heads=config.num_heads,
                       dropout=config.dropout, dtype=dtype)
