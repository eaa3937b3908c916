"""The character language models as PyTorch users write them, timed on the same data and CPU as
genjax's: the baseline behind bench_jit.py's text ratios.

The Transformer is nanoGPT's (pre-LayerNorm blocks, causal attention through
F.scaled_dot_product_attention, a GELU MLP, learned positions, the output layer tied to the
embedding) at genjax's sizes and with genjax's choices where nanoGPT offers one: no bias in the
attention's projections, the tanh GELU, dropout on the embeddings and on each residual branch
(none on the attention weights, which genjax does not drop). The LSTM is nn.Embedding, nn.LSTM
and nn.Linear. Both train in eager mode with torch.optim.AdamW (weight decay on matrices only,
nanoGPT's groups), gradients clipped to norm 1, the learning rate warmed up and cosine-decayed
as genjax's; bfloat16 is torch.autocast around the forward pass and the loss. Where oneDNN
cannot build a bfloat16 LSTM (CPUs without bfloat16 instructions), the step runs as a user's
would after that error: with oneDNN off (`torch.backends.mkldnn.flags(enabled=False)`), on
PyTorch's own LSTM kernels, and the record says so.

torch comes with the `bench` extra and is imported only here; bench_jit.py runs this module in
a process of its own (`python -m genjax.text.torch_reference`, see genjax.text.lm_bench), so
PyTorch's thread pool and XLA's never share one.
"""

import argparse
import contextlib
import json
import math
import statistics
import sys
import time

import torch
from torch import nn
from torch.nn import functional as F


class CausalSelfAttention(nn.Module):
  def __init__(self, width: int, num_heads: int, dropout: float):
    super().__init__()
    self.num_heads = num_heads
    self.c_attn = nn.Linear(width, 3 * width, bias=False)
    self.c_proj = nn.Linear(width, width, bias=False)
    self.resid_dropout = nn.Dropout(dropout)

  def forward(self, x):
    b, t, c = x.size()
    q, k, v = self.c_attn(x).split(c, dim=2)
    q, k, v = (z.view(b, t, self.num_heads, c // self.num_heads).transpose(1, 2)
               for z in (q, k, v))
    y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    y = y.transpose(1, 2).contiguous().view(b, t, c)
    return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
  def __init__(self, width: int, dropout: float):
    super().__init__()
    self.c_fc = nn.Linear(width, 4 * width)
    self.gelu = nn.GELU(approximate="tanh")
    self.c_proj = nn.Linear(4 * width, width)
    self.dropout = nn.Dropout(dropout)

  def forward(self, x):
    return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
  def __init__(self, width: int, num_heads: int, dropout: float):
    super().__init__()
    self.ln_1 = nn.LayerNorm(width)
    self.attn = CausalSelfAttention(width, num_heads, dropout)
    self.ln_2 = nn.LayerNorm(width)
    self.mlp = MLP(width, dropout)

  def forward(self, x):
    x = x + self.attn(self.ln_1(x))
    return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
  def __init__(self, vocab_size: int, context: int, width: int, num_layers: int,
               num_heads: int, dropout: float):
    super().__init__()
    self.wte = nn.Embedding(vocab_size, width)
    self.wpe = nn.Embedding(context, width)
    self.drop = nn.Dropout(dropout)
    self.h = nn.ModuleList([Block(width, num_heads, dropout) for _ in range(num_layers)])
    self.ln_f = nn.LayerNorm(width)
    self.apply(self._init_weights)

  def _init_weights(self, module):  # nanoGPT's: N(0, 0.02), zero biases
    if isinstance(module, (nn.Linear, nn.Embedding)):
      nn.init.normal_(module.weight, 0.0, 0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
      nn.init.zeros_(module.bias)

  def forward(self, idx):
    pos = torch.arange(idx.size(1), device=idx.device)
    x = self.drop(self.wte(idx) + self.wpe(pos))
    for block in self.h:
      x = block(x)
    return F.linear(self.ln_f(x), self.wte.weight)  # tied output layer


class CharLSTM(nn.Module):
  def __init__(self, vocab_size: int, width: int, num_layers: int, embed_dim: int,
               dropout: float):
    super().__init__()
    self.embed = nn.Embedding(vocab_size, embed_dim or width)
    self.lstm = nn.LSTM(embed_dim or width, width, num_layers, batch_first=True,
                        dropout=dropout)
    self.head = nn.Linear(width, vocab_size)

  def forward(self, idx):
    return self.head(self.lstm(self.embed(idx))[0])


def build_model(spec: dict, vocab_size: int) -> nn.Module:
  """The model of a spec (lm_bench.torch_spec: genjax's config as plain values)."""
  if spec["model"] == "lstm":
    return CharLSTM(vocab_size, spec["width"], spec["num_layers"], spec["embed_dim"],
                    spec["dropout"])
  return GPT(vocab_size, spec["context"], spec["width"], spec["num_layers"],
             spec["num_heads"], spec["dropout"])


def make_optimizer(model: nn.Module, spec: dict) -> torch.optim.Optimizer:
  """AdamW with weight decay on matrices (dim >= 2) only, as nanoGPT's configure_optimizers."""
  params = [p for p in model.parameters() if p.requires_grad]
  groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": spec["weight_decay"]},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
  return torch.optim.AdamW(groups, lr=spec["learning_rate"], betas=(spec["beta1"], spec["beta2"]))


def learning_rate(spec: dict, step: int) -> float:
  """Linear warmup, then a cosine to final_lr_fraction of the peak over num_steps."""
  peak, warmup = spec["learning_rate"], spec["warmup_steps"]
  if step < warmup:
    return peak * (step + 1) / warmup
  progress = min(1.0, (step - warmup) / max(1, spec["num_steps"] - warmup))
  final = spec["final_lr_fraction"]
  return peak * (final + (1 - final) * 0.5 * (1 + math.cos(math.pi * progress)))


def get_batch(data_N: torch.Tensor, batch: int, context: int):
  """nanoGPT's: `batch` windows at uniform offsets, inputs and next-character targets."""
  ix = torch.randint(len(data_N) - context, (batch,))
  x = torch.stack([data_N[i:i + context] for i in ix])
  y = torch.stack([data_N[i + 1:i + 1 + context] for i in ix])
  return x, y


def loss_of(model: nn.Module, x, y, dtype: str) -> torch.Tensor:
  with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bfloat16"):
    logits = model(x)
    return F.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1))


def train_steps(model, optimizer, spec: dict, data_N, dtype: str, first: int, count: int):
  """`count` training steps from step `first`; the last loss."""
  for step in range(first, first + count):
    for group in optimizer.param_groups:
      group["lr"] = learning_rate(spec, step)
    x, y = get_batch(data_N, spec["batch_size"], spec["context"])
    loss = loss_of(model, x, y, dtype)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), spec["grad_clip"])
    optimizer.step()
  return float(loss)


def _first_step(model, optimizer, spec: dict, data_N, dtype: str):
  """Step 0 (the first calls' allocations); the kernels' context the loop keeps, and a note
  when oneDNN refused the model (only a bfloat16 LSTM falls back, as its users would)."""
  try:
    train_steps(model, optimizer, spec, data_N, dtype, 0, 1)
    return contextlib.nullcontext, ""
  except RuntimeError:
    if not (dtype == "bfloat16" and isinstance(model, CharLSTM)):
      raise
  kernels = lambda: torch.backends.mkldnn.flags(enabled=False)
  with kernels():
    train_steps(model, optimizer, spec, data_N, dtype, 0, 1)
  return kernels, "; oneDNN refused the bfloat16 LSTM: PyTorch's own kernels"


def benchmark_torch(spec: dict, data_N, vocab_size: int, dtype: str = "float32",
                    seconds: float = 5.0, repeats: int = 3, seed: int = 0) -> dict:
  """Steps/s of the eager PyTorch loop: first calls, a probe sizes the rounds, a warm-up round,
  then the median of `repeats` rounds of about seconds / repeats each (as genjax's chunks are
  timed). A step slower than `seconds` is timed once after the probe."""
  torch.manual_seed(seed)
  model = build_model(spec, vocab_size)
  model.train()
  optimizer = make_optimizer(model, spec)
  data_N = torch.as_tensor(data_N, dtype=torch.long)
  start = time.perf_counter()
  kernels, note = _first_step(model, optimizer, spec, data_N, dtype)
  step = 1
  with kernels():
    if time.perf_counter() - start < seconds:
      train_steps(model, optimizer, spec, data_N, dtype, step, 2)  # the rest of the first calls
      step += 2
    warmup_s = time.perf_counter() - start
    start = time.perf_counter()
    probe = 2 if warmup_s < seconds else 1
    train_steps(model, optimizer, spec, data_N, dtype, step, probe)
    step += probe
    per_step = (time.perf_counter() - start) / probe
    iters = max(1, int(seconds / repeats / per_step))
    if per_step > seconds:
      repeats = 1
    else:
      train_steps(model, optimizer, spec, data_N, dtype, step, iters)  # at the timed length
      step += iters
    times, cpu = [], []
    for _ in range(repeats):
      start, cpu_start = time.perf_counter(), time.process_time()
      loss = train_steps(model, optimizer, spec, data_N, dtype, step, iters)
      times.append(time.perf_counter() - start)
      cpu.append(time.process_time() - cpu_start)
      step += iters
  rate = iters / statistics.median(times)
  return {"framework": f"pytorch {torch.__version__} (eager, {torch.get_num_threads()} threads, "
          f"{torch.backends.cpu.get_cpu_capability()}{note})", "iters": iters,
          "dispatch_s": times, "iters_per_s": rate,
          "cpu_s_per_iter": statistics.median(cpu) / iters, "warmup_s": warmup_s, "loss": loss,
          "params": sum(p.numel() for p in model.parameters())}


class _OneLineParser(argparse.ArgumentParser):
  def error(self, message):  # argparse's own: a usage block, then the error
    self.exit(2, f"{self.prog}: error: {message}\n")


def main(argv=None) -> int:
  parser = _OneLineParser(prog="python -m genjax.text.torch_reference",
                          description="Time the PyTorch twin of a genjax language model.")
  parser.add_argument("--spec", required=True, help="the model and recipe, as JSON")
  parser.add_argument("--tokens", required=True, help="an .npy file of training token ids")
  parser.add_argument("--vocab_size", type=int, required=True)
  parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
  parser.add_argument("--seconds", type=float, default=5.0)
  args = parser.parse_args(argv)
  import numpy as np

  if args.seconds <= 0:
    parser.error(f"--seconds must be positive, got {args.seconds}")
  record = benchmark_torch(json.loads(args.spec), np.load(args.tokens), args.vocab_size,
                           args.dtype, args.seconds)
  print(json.dumps(record))
  return 0


if __name__ == "__main__":
  sys.exit(main())
