"""Sampling text from a language model: temperature and top-k, one jitted loop.

The prompt fills the Transformer's key/value cache in one pass (the LSTM's state likewise);
then it decodes one token per step from the cache while the text fits in its `context`
positions; past that, each new token comes from a full pass over the last `context` tokens (as
nanoGPT crops). A prompt longer than the context is read from its last `context` tokens. The
i-th new token is drawn with fold_in(key, i), so cached decoding and recomputing the whole
prefix draw the same tokens.
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


def crop_prompt(model, prompt_BxP):
  """The prompt as the model reads it: its last `context` tokens where it has a limit."""
  limit = context_limit(model)
  return prompt_BxP if limit is None else prompt_BxP[:, -limit:]


def generate_ids(model, params, prompt_BxP, num_new: int, key, temperature: float = 1.0,
                 top_k: int = 0, guidance: float | None = None):
  """num_new token ids after each prompt row: B x num_new. With `guidance`, the prompt's rows
  are B/2 conditioned prompts then B/2 unconditioned ones, and each new token, drawn from the
  guided mix of the two, continues both: B/2 x num_new. A prompt longer than the model's
  context is read from its last `context` tokens."""
  return generate_steps(model, params, prompt_BxP, num_new, key, temperature, top_k,
                        guidance)[0]


@functools.partial(jax.jit, static_argnums=(0, 3, 5, 6, 7))
def generate_steps(model, params, prompt_BxP, num_new: int, key, temperature: float = 1.0,
                   top_k: int = 0, guidance: float | None = None):
  """(tokens_BxN, logits_BxNxV): generate_ids' tokens and the (guided) logits each was drawn
  from, before temperature and top_k."""
  variables = {"params": params}
  limit = context_limit(model)
  prompt_BxP = crop_prompt(model, prompt_BxP)  # the model sees no further back
  b, p = prompt_BxP.shape
  decode = functools.partial(model.apply, variables, method=type(model).decode)
  state = model.apply(variables, b, method=type(model).init_decode_state)
  # The whole prompt in one pass: the Transformer's cache filled, the LSTM's state carried.
  logits, state = model.apply(variables, prompt_BxP, state, method=type(model).prefill)
  cached = num_new if limit is None else min(num_new, limit - p)

  def draw(logits, i):  # the token every row continues with, and the logits it came from
    mixed = guided(logits, guidance)
    token = sample_next(mixed, jax.random.fold_in(key, i), temperature, top_k)
    return (token if guidance is None else jnp.concatenate([token, token])), mixed

  def cached_step(carry, i):
    state, logits = carry
    token_B, mixed = draw(logits, i)
    logits, state = decode(token_B, p + i, state)
    return (state, logits), (token_B, mixed)

  (_, logits), (tokens_CxB, logits_CxBxV) = jax.lax.scan(cached_step, (state, logits),
                                                         jnp.arange(cached))
  out = b if guidance is None else b // 2
  if cached == num_new:
    return tokens_CxB.T[:out], logits_CxBxV.swapaxes(0, 1)
  # Past the context: each token from a full pass over the last `limit` tokens.
  text_BxN = jnp.concatenate([prompt_BxP, tokens_CxB.T.astype(prompt_BxP.dtype),
                              jnp.zeros((b, num_new - cached), prompt_BxP.dtype)], axis=1)

  def window_step(carry, i):
    text_BxN, logits = carry
    token_B, mixed = draw(logits, i)
    n = p + i + 1  # the text's length with the new token
    text_BxN = jax.lax.dynamic_update_slice(text_BxN, token_B[:, None], (0, n - 1))
    window_BxL = jax.lax.dynamic_slice_in_dim(text_BxN, n - limit, limit, axis=1)
    return (text_BxN, model.apply(variables, window_BxL)[:, -1]), mixed

  (text_BxN, _), window_logits_WxBxV = jax.lax.scan(window_step, (text_BxN, logits),
                                                    jnp.arange(cached, num_new))
  logits_NxBxV = jnp.concatenate([logits_CxBxV, window_logits_WxBxV])
  return text_BxN[:out, p:], logits_NxBxV.swapaxes(0, 1)


def generate_by_recomputing(model, params, prompt_BxP, num_new: int, key,
                            temperature: float = 1.0, top_k: int = 0):
  """(tokens_BxN, logits_BxNxV): the same draws without a cache or a prefill, every token from
  a full pass over the (cropped) prefix: the reference that tests compare generate_steps with.
  The prefix is right-padded to one width (one compile); a causal model's logits at its last
  token never read the padding."""
  limit = context_limit(model)
  width = limit or prompt_BxP.shape[1] + num_new
  text = np.asarray(prompt_BxP)
  last_logits = jax.jit(lambda x, n: model.apply({"params": params}, x)[:, n - 1])
  logits = []
  for i in range(num_new):
    window = text if limit is None else text[:, -limit:]
    padded = np.pad(window, ((0, 0), (0, width - window.shape[1])))
    logits.append(last_logits(padded, window.shape[1]))
    token_B = sample_next(logits[-1], jax.random.fold_in(key, i), temperature, top_k)
    text = np.concatenate([text, np.asarray(token_B)[:, None].astype(text.dtype)], axis=1)
  return text[:, prompt_BxP.shape[1]:], np.stack(logits, axis=1)
