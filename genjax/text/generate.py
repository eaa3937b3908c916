"""Sampling text from a language model: temperature and top-k, one jitted loop.

The Transformer decodes with its key/value cache, one token per step, while the text fits in
its `context` positions; past that, each new token comes from a full pass over the last
`context` tokens (as nanoGPT crops). The LSTM carries its state. The i-th new token is drawn
with fold_in(key, i), so cached decoding and recomputing the whole prefix draw the same tokens.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from genjax.text.lm_models import TransformerLM


def sample_next(logits_BxV, key, temperature: float, top_k: int):
  """Token ids drawn from softmax(logits / temperature), restricted to the top_k (0: all)."""
  logits_BxV = logits_BxV.astype(jnp.float32) / temperature
  if top_k and top_k < logits_BxV.shape[-1]:
    kth_Bx1 = jax.lax.top_k(logits_BxV, top_k)[0][:, -1:]
    logits_BxV = jnp.where(logits_BxV < kth_Bx1, -jnp.inf, logits_BxV)
  return jax.random.categorical(key, logits_BxV).astype(jnp.int32)


def guided(logits_BxV, guidance):
  """Classifier-free guidance: with rows [conditioned; unconditioned] (2B of them), the B rows
  unconditioned + guidance * (conditioned - unconditioned); None leaves the logits as they are."""
  if guidance is None:
    return logits_BxV
  cond, uncond = jnp.split(logits_BxV.astype(jnp.float32), 2)
  return uncond + guidance * (cond - uncond)


def context_limit(model) -> int | None:
  """How many positions the model sees at once (None: no limit, an LSTM)."""
  return model.context if isinstance(model, TransformerLM) else None


@functools.partial(jax.jit, static_argnums=(0, 3, 5, 6, 7))
def generate_ids(model, params, prompt_BxP, num_new: int, key, temperature: float = 1.0,
                 top_k: int = 0, guidance: float | None = None):
  """num_new token ids after each prompt row: B x num_new. With `guidance`, the prompt's rows
  are B/2 conditioned prompts then B/2 unconditioned ones, and each new token, drawn from the
  guided mix of the two, continues both: B/2 x num_new."""
  variables = {"params": params}
  limit = context_limit(model)
  if limit is not None and prompt_BxP.shape[1] > limit:
    prompt_BxP = prompt_BxP[:, -limit:]  # the model sees no further back
  b, p = prompt_BxP.shape
  decode = functools.partial(model.apply, variables, method=type(model).decode)
  state = model.apply(variables, b, method=type(model).init_decode_state)

  def feed(state, pos):  # the prompt's tokens into the cache (or the LSTM's state)
    logits, state = decode(prompt_BxP[:, pos], pos, state)
    return state, logits

  state, prompt_logits = jax.lax.scan(feed, state, jnp.arange(p))
  cached = num_new if limit is None else min(num_new, limit - p)

  def draw(logits, i):  # the token every row continues with
    token = sample_next(guided(logits, guidance), jax.random.fold_in(key, i), temperature, top_k)
    return token if guidance is None else jnp.concatenate([token, token])

  def cached_step(carry, i):
    state, logits = carry
    token_B = draw(logits, i)
    logits, state = decode(token_B, p + i, state)
    return (state, logits), token_B

  (_, logits), tokens_CxB = jax.lax.scan(cached_step, (state, prompt_logits[-1]),
                                         jnp.arange(cached))
  out = b if guidance is None else b // 2
  if cached == num_new:
    return tokens_CxB.T[:out]
  # Past the context: each token from a full pass over the last `limit` tokens.
  text_BxN = jnp.concatenate([prompt_BxP, tokens_CxB.T.astype(prompt_BxP.dtype),
                              jnp.zeros((b, num_new - cached), prompt_BxP.dtype)], axis=1)

  def window_step(carry, i):
    text_BxN, logits = carry
    token_B = draw(logits, i)
    n = p + i + 1  # the text's length with the new token
    text_BxN = jax.lax.dynamic_update_slice(text_BxN, token_B[:, None], (0, n - 1))
    window_BxL = jax.lax.dynamic_slice_in_dim(text_BxN, n - limit, limit, axis=1)
    return (text_BxN, model.apply(variables, window_BxL)[:, -1]), None

  (text_BxN, _), _ = jax.lax.scan(window_step, (text_BxN, logits),
                                  jnp.arange(cached, num_new))
  return text_BxN[:out, p:]


def generate_by_recomputing(model, params, prompt_BxP, num_new: int, key,
                            temperature: float = 1.0, top_k: int = 0):
  """The same draws without a cache: every token from a full pass over the (cropped) prefix,
  the reference that tests compare generate_ids with. The prefix is right-padded to one width
  (one compile); a causal model's logits at its last token never read the padding."""
  limit = context_limit(model)
  width = limit or prompt_BxP.shape[1] + num_new
  text = np.asarray(prompt_BxP)
  last_logits = jax.jit(lambda x, n: model.apply({"params": params}, x)[:, n - 1])
  for i in range(num_new):
    window = text if limit is None else text[:, -limit:]
    padded = np.pad(window, ((0, 0), (0, width - window.shape[1])))
    token_B = sample_next(last_logits(padded, window.shape[1]), jax.random.fold_in(key, i),
                          temperature, top_k)
    text = np.concatenate([text, np.asarray(token_B)[:, None].astype(text.dtype)], axis=1)
  return text[:, prompt_BxP.shape[1]:]
