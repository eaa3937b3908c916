"""The language models' PyTorch baseline: genjax's sizes, a loss that starts at ln(vocab), a
timed loop that trains."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")  # the `bench` extra; CI installs only `dev`

from genjax.configs.text_lm import get_config  # noqa: E402
from genjax.text import lm_bench, lm_models, torch_reference  # noqa: E402

VOCAB = 65  # Tiny Shakespeare's characters


def spec_of(config) -> dict:
  return {key: config[key] for key in lm_bench.SPEC_KEYS}


@pytest.mark.parametrize("variant", ["", "lstm"])
def test_the_pytorch_twin_has_genjaxs_parameters_and_starts_at_uniform_loss(variant):
  config = get_config(variant)
  params = lm_models.build_lm(config, VOCAB).init(
      jax.random.key(0), jnp.zeros((1, config.context), jnp.int32))["params"]
  torch.manual_seed(0)  # the twin's initial weights too: a loss that is the same every run
  model = torch_reference.build_model(spec_of(config), VOCAB)
  # nn.LSTM keeps two bias vectors per layer (b_ih and b_hh, always summed), flax's cell one
  second_bias = 4 * config.width * config.num_layers if config.model == "lstm" else 0
  assert sum(p.numel() for p in model.parameters()) - second_bias == \
      sum(np.size(p) for p in jax.tree.leaves(params))
  x, y = torch.randint(0, VOCAB, (2, 4, config.context))
  with torch.no_grad():
    loss = torch_reference.loss_of(model.eval(), x, y, "float32")
  assert abs(float(loss) - math.log(VOCAB)) < 0.05


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_the_timed_loop_trains_and_reports(dtype):
  config = get_config("tiny")
  text_N = np.tile(np.arange(VOCAB), 40)  # a repeating text: easy to learn
  record = torch_reference.benchmark_torch(spec_of(config), text_N, VOCAB, dtype, seconds=0.3)
  assert record["iters_per_s"] > 0 and record["cpu_s_per_iter"] > 0
  assert record["loss"] < math.log(VOCAB)  # it learned something
  assert record["framework"].startswith("pytorch")


def test_a_bfloat16_lstm_runs_where_onednn_refuses_it_and_the_record_says_which_kernels():
  config = get_config("lstm,tiny")
  text_N = np.tile(np.arange(VOCAB), 40)
  record = torch_reference.benchmark_torch(spec_of(config), text_N, VOCAB, "bfloat16",
                                           seconds=0.3)
  assert record["loss"] < math.log(VOCAB)
  try:  # what oneDNN says of this CPU, asked directly
    with torch.autocast("cpu", dtype=torch.bfloat16):
      torch.nn.LSTM(8, 8)(torch.zeros(2, 1, 8))
    refused = False
  except RuntimeError:
    refused = True
  assert ("PyTorch's own kernels" in record["framework"]) == refused


def test_the_hand_count_of_flops_is_the_step_of_the_models():
  config = get_config()  # 4 x 192, context 128, batch 32: 48.6 GFLOP as counted for XLA
  assert lm_bench.analytic_step_flops(config, VOCAB) == pytest.approx(48.6e9, rel=0.01)
  lstm = get_config("lstm")  # the figure XLA's loop-aware count gives (docs/results.md)
  assert lm_bench.analytic_step_flops(lstm, VOCAB) == pytest.approx(81.4e9, rel=0.01)
