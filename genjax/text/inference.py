"""A trained language model at work: restored from its checkpoint's record, it generates text
from a prompt and scores any text in nats and bits per character."""

import math
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections

from genjax.core import checkpoint
from genjax.core.errors import CheckpointError, WorkdirError, field_error
from genjax.text import chars
from genjax.text.generate import generate_ids
from genjax.text.lm import ADDED_KEYS, RESUMABLE, build_setup, eval_params, init_state, mean_nats


def restore_lm(workdir):
  """(setup, params, config, step) of the newest checkpoint of a language-model run; params
  are its moving average where the run kept one."""
  if not Path(workdir).is_dir():
    raise WorkdirError(f"workdir {workdir} does not exist", field="workdir")
  if not checkpoint.checkpoint_dir(workdir).is_dir():
    raise CheckpointError(f"no checkpoint in {checkpoint.checkpoint_dir(workdir)}")
  manager = checkpoint.open_manager(workdir, max_to_keep=None, create=False)
  try:
    step = manager.latest_step()
    if step is None:
      raise CheckpointError(f"no checkpoint in {checkpoint.checkpoint_dir(workdir)}")
    record = checkpoint.read_record(manager, step, ADDED_KEYS)
    if record["family"] != "text_lm":
      raise CheckpointError(f"{workdir} holds a {record['family']!r} run, not a language "
                            "model's")
    config = ml_collections.ConfigDict(record["config"])
    setup = build_setup(config)
    abstract = jax.eval_shape(lambda: init_state(setup, jax.random.key(0)))
    state = checkpoint.restore_step(manager, step, abstract, record, RESUMABLE,
                                    added_keys=ADDED_KEYS)
  finally:
    manager.close()
  return setup, eval_params(setup, state), config, step


def generate_text(workdir, prompt: str = "\n", num_chars: int = 500, temperature: float = 0.8,
                  top_k: int = 0, seed: int = 0) -> str:
  """The prompt followed by num_chars characters the model draws."""
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
  ids = generate_ids(setup.model, params, jnp.asarray(prompt_ids)[None], num_chars,
                     jax.random.key(seed), float(temperature), top_k)
  return prompt + chars.decode(ids[0], config.vocab)


def score_text(workdir, text: str, source: str = "text") -> dict:
  """The model's loss on `text`: every next character predicted once, in consecutive windows
  of the model's context (as the validation loss is measured)."""
  setup, params, config, step = restore_lm(workdir)
  if len(text) < 2:
    raise field_error("input", f"{source} has {len(text)} characters; scoring needs two or more")
  ids = chars.encode(text, config.vocab, source)
  nats = mean_nats(setup, params, ids)
  return {"nats_per_char": nats, "bits_per_char": nats / math.log(2),
          "perplexity": math.exp(nats), "predicted_chars": len(text) - 1, "step": step}
