"""The language models' PyTorch baseline as bench_jit.py runs it: the same model, recipe and
training text handed to genjax.text.torch_reference in a process of its own, and its record
in bench_jit's form (FLOPs counted by hand, the same for both frameworks' steps)."""

import importlib.util
import json
import os
import tempfile

import numpy as np

from genjax.core import cli
from genjax.text import lm

# What the PyTorch twin reads of a genjax config.
SPEC_KEYS = ("model", "context", "width", "num_layers", "num_heads", "embed_dim", "dropout",
             "batch_size", "learning_rate", "beta1", "beta2", "weight_decay", "grad_clip",
             "warmup_steps", "final_lr_fraction", "num_steps")


def torch_missing() -> str | None:
  """Why the PyTorch baseline cannot run here (one line), or None when torch is installed."""
  if importlib.util.find_spec("torch") is None:
    return "PyTorch is not installed: pip install 'genjax[bench]'"
  return None


def analytic_step_flops(config, vocab_size: int) -> float:
  """Matmul FLOPs of one training step (forward, and both gradients: 3x the forward), counted
  by hand: the same for genjax's model and its PyTorch twin. The Transformer's attention is
  counted over all T x T pairs (as XLA computes it; a causal kernel may skip half)."""
  tokens = config.batch_size * config.context
  d = config.width
  if config.model == "lstm":
    inputs = [config.embed_dim or d] + [d] * (config.num_layers - 1)
    per_token = sum(2 * 4 * d * (i + d) for i in inputs) + 2 * d * vocab_size
  else:
    per_layer = 2 * d * 3 * d + 2 * d * d + 2 * 2 * d * 4 * d + 2 * 2 * config.context * d
    per_token = config.num_layers * per_layer + 2 * d * vocab_size
  return 3.0 * per_token * tokens


def _run_child(spec: dict, train_N: np.ndarray, vocab_size: int, dtype: str,
               seconds: float) -> dict:
  with tempfile.TemporaryDirectory() as folder:
    tokens = os.path.join(folder, "train.npy")
    np.save(tokens, train_N)
    return cli.run_module("genjax.text.torch_reference", [
        "--spec", json.dumps(spec), "--tokens", tokens, "--vocab_size", vocab_size,
        "--dtype", dtype, "--seconds", seconds], "the PyTorch baseline")


def torch_record(config, dtype: str, seconds: float) -> dict:
  """The PyTorch twin of `config`'s model and AdamW recipe timed in a child process on the
  config's training text: bench_jit's record fields (bytes and kernels unknown: None)."""
  config = lm.LMFamily.validate(config)
  vocab, train_N, _ = lm.prepare_text(config)
  spec = {key: config[key] for key in SPEC_KEYS}
  record = _run_child(spec, train_N, len(vocab), dtype, seconds)
  record.update(flops=analytic_step_flops(config, len(vocab)), bytes=None, kernels=None,
                compile_s=record["warmup_s"], mesh_devices=1, compute_dtype=dtype,
                batch_size=config.batch_size, item="token",
                items_per_s=record["iters_per_s"] * config.batch_size * config.context)
  return record
