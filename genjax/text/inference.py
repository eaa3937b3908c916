"""A trained language model at work: restored from its checkpoint's record, it generates text
from a prompt and scores any text in nats and bits per character."""

import math
import sys

import jax
import jax.numpy as jnp

from genjax.core import runs
from genjax.core.errors import field_error
from genjax.text import chars, corpora
from genjax.text.generate import context_limit, generate_ids
from genjax.text.lm import eval_params, mean_nats


def restore_lm(workdir):
  """(setup, params, config, step) of the newest checkpoint of a language-model run; params
  are its moving average where the run kept one."""
  run = runs.restore(workdir, families=("lm",))
  return run.static, eval_params(run.static, run.state), run.config, run.step


def generate_text(workdir, prompt: str = "\n", num_chars: int = 500, temperature: float = 0.8,
                  top_k: int = 0, seed: int = 0) -> str:
  """The prompt followed by num_chars characters the model draws (a conditional model's
  label characters left out: corpora.readable)."""
  if not isinstance(num_chars, int) or isinstance(num_chars, bool) or num_chars < 1:
    raise field_error("num_chars", f"must be a positive integer, got {num_chars!r}")
  if not temperature > 0:
    raise field_error("temperature", f"must be positive, got {temperature!r}")
  if not isinstance(top_k, int) or top_k < 0:
    raise field_error("top_k", f"must be 0 (off) or a positive integer, got {top_k!r}")
  if not prompt:
    raise field_error("prompt", "must hold at least one character (e.g. a newline)")
  setup, params, config, _ = restore_lm(workdir)
  prompt_ids = chars.encode(prompt, config.vocab, "--prompt")
  limit = context_limit(setup.model)
  if limit is not None and len(prompt_ids) > limit:  # generate_ids reads its last `limit`
    print(f"note: prompt: {len(prompt_ids)} characters, the model sees the last {limit}",
          file=sys.stderr)
  ids = generate_ids(setup.model, params, jnp.asarray(prompt_ids)[None], num_chars,
                     jax.random.key(seed), float(temperature), top_k)
  return corpora.readable(prompt + chars.decode(ids[0], config.vocab), config.dataset)


def score_text(workdir, text: str, source: str = "text", stride: int | None = None) -> dict:
  """The model's loss on `text`, every next character predicted once: in consecutive windows
  of the model's context (stride None, as the validation loss is measured), or in windows
  every `stride` characters, each character after a window's first ones predicted from at
  least context - stride + 1 before it (lm.eval_windows). `windows` in the result says which."""
  if stride is not None and (not isinstance(stride, int) or isinstance(stride, bool)
                             or stride < 1):
    raise field_error("stride", f"{stride!r} must be a positive integer (characters)")
  setup, params, config, step = restore_lm(workdir)
  if stride is not None and stride > config.context:
    raise field_error("stride", f"{stride} is longer than the model's context "
                      f"({config.context} characters)")
  if len(text) < 2:
    raise field_error("input", f"{source} has {len(text)} characters; scoring needs two or more")
  ids = chars.encode(text, config.vocab, source)
  nats = mean_nats(setup, params, ids, stride)
  stride = stride or config.context
  windows = (f"consecutive, {config.context} characters" if stride == config.context
             else f"sliding, {config.context} characters, stride {stride}")
  if config.window_starts == "lines":
    windows += ", from each line's start"
  return {"nats_per_char": nats, "bits_per_char": nats / math.log(2),
          "perplexity": math.exp(nats), "predicted_chars": len(text) - 1, "windows": windows,
          "step": step}
