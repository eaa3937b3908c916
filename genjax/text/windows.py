"""The windows a character model reads: random ones to train on (anywhere, or from a line's
start), its label withheld or its first line marked for a conditional model, and the windows
that cover a whole text once to evaluate or score it."""

import jax
import jax.numpy as jnp
import numpy as np


def random_windows(data, key, batch: int, context: int):
  """(inputs_BxT, targets_BxT): `batch` windows of context + 1 tokens at uniform offsets, or,
  where data["starts"] lists allowed offsets (a line's start), at offsets drawn from those."""
  tokens_N, starts_S = data["tokens"], data.get("starts")
  if starts_S is None:
    starts_B = jax.random.randint(key, (batch,), 0, tokens_N.shape[0] - context)
  else:
    starts_B = starts_S[jax.random.randint(key, (batch,), 0, starts_S.shape[0])]
  windows = jax.vmap(lambda s: jax.lax.dynamic_slice_in_dim(tokens_N, s, context + 1))(starts_B)
  return windows[:, :-1], windows[:, 1:]


def withhold_labels(inputs_BxT, key, rate: float, null_id: int):
  """Each window's label (its second token, after the line's newline) replaced by the null
  token with probability `rate`: one model then writes both with and without a label, which
  classifier-free guidance mixes when sampling."""
  withheld_B = jax.random.bernoulli(key, rate, inputs_BxT.shape[:1])
  return inputs_BxT.at[:, 1].set(jnp.where(withheld_B, null_id, inputs_BxT[:, 1]))


def first_line_mask(targets_BxT, newline_id: int):
  """mask_BxT: the targets of each window's first line after its label (through its newline)."""
  newline_BxT = targets_BxT == newline_id
  after_newline = jnp.cumsum(newline_BxT, axis=1) - newline_BxT > 0
  return (jnp.arange(targets_BxT.shape[1]) >= 1)[None] & ~after_newline


def eval_windows(tokens_M, context: int, newline_id: int | None = None,
                 stride: int | None = None):
  """(inputs_WxT, targets_WxT, mask_WxT): windows covering every next-character prediction of
  the text once, the mask marking the predictions each window scores (padding, and with a
  stride the predictions an earlier window scored, masked out). With newline_id (a model
  trained on windows that begin at a line's start), each line is read from its newline on, as
  the model was trained; otherwise the text is one line.

  stride None (or context): consecutive windows, each scoring all it predicts (the average
  character sees half a window before it). stride S < context: a window every S characters,
  scoring the predictions after its predecessor's: every character but a line's first
  context ones is predicted from at least context - S + 1 characters."""
  stride = stride or context
  tokens_M = np.asarray(tokens_M)
  last = len(tokens_M) - 1  # the last prediction's target
  cuts = [0] if newline_id is None else np.flatnonzero(tokens_M[:-1] == newline_id).tolist()
  cuts = sorted(set([0] + cuts)) + [last]
  spans = []  # (a, f, e): the window from token a scores the targets f .. e
  for line, end in zip(cuts[:-1], cuts[1:]):
    a, done = line, line  # targets through `done` are scored
    while done < end:
      e = min(a + context, end)
      spans.append((a, done + 1, e))
      a, done = a + stride, e
  inputs = np.zeros((max(1, len(spans)), context), np.int32)
  targets, mask = np.zeros_like(inputs), np.zeros(inputs.shape, bool)
  for w, (a, f, e) in enumerate(spans):
    inputs[w, :e - a], targets[w, :e - a] = tokens_M[a:e], tokens_M[a + 1:e + 1]
    mask[w, f - a - 1:e - a] = True
  return inputs, targets, mask
