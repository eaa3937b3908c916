"""The diffusion benchmark: the training step's roofline record and samples per second."""

import math

import pytest

from genjax.configs.diffusion_mnist import get_config
from genjax.diffusion import bench

pytestmark = pytest.mark.slow  # compiles and times a real chunk and three samplers
LIMITS = {"matmul_flops_per_s": 5e10, "bytes_per_s": 1e10}


def test_benchmark_diffusion_tiny(data_root):
  config = get_config("tiny")
  config.update(data_dir=data_root, eval_interval=5)
  record = bench.benchmark_diffusion(config, 0.05, repeats=1, iters=2, limits=LIMITS,
                                     time_dots=False, nfes=(2, 4), sample_batch=4)
  assert record["family"] == "diffusion" and record["iters"] == 2
  for key in ("steps_per_s", "compile_s", "roofline_s", "sampling_s"):
    assert math.isfinite(record[key]) and record[key] > 0, key
  assert record["bound"] in ("compute", "memory", "cache", "overhead")
  assert set(record["samples_per_s"]) == {2, 4} and min(record["samples_per_s"].values()) > 0
  assert (record["sampler"], record["guidance"]) == ("heun", 1.0)
  assert config.eval_interval == 5  # the caller's config, unchanged (the bench turns it off)
