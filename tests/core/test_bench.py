"""The benchmark's measuring tools: kernels, cost, roofline, bandwidth, a family's chunk."""

import jax
import jax.numpy as jnp
import pytest

from genjax.core import bench
from tests.core.toy import ToyFamily, get_config


def loop_program(n_layers: int):
  def step(i, x):
    for _ in range(n_layers):
      x = jnp.tanh(x @ x) + 1.0  # a matmul and one elementwise kernel per layer
    return x
  return jax.jit(lambda x, n: jax.lax.fori_loop(0, n, step, x)).lower(
      jnp.ones((32, 32)), 3).compile()


def test_kernels_are_counted_in_the_step_not_the_program():
  one, three = (bench.compiled_cost(loop_program(n)) for n in (1, 3))
  assert three["kernels"] - one["kernels"] == 4  # two kernels per extra layer
  assert three["flops"] == pytest.approx(3 * one["flops"], rel=0.01)  # the body, once
  assert three["bytes"] > one["bytes"] > 0
  plain = jax.jit(lambda x: jnp.tanh(x @ x) + 1.0).lower(jnp.ones((32, 32))).compile()
  assert bench.compiled_cost(plain)["kernels"] == 2  # no loop: the entry computation


def test_the_roofline_names_the_bound():
  compute = bench.roofline(1e9, 1e6, 1e11, 1e10, 0.015)  # 10 ms of math, 0.1 ms of memory
  assert compute["bound"] == "compute" and compute["roofline_s"] == pytest.approx(0.01)
  assert compute["measured_over_roofline"] == pytest.approx(1.5)
  memory = bench.roofline(1e6, 1e9, 1e11, 1e10, 0.15)
  assert memory["bound"] == "memory" and memory["roofline_s"] == pytest.approx(0.1)
  cached = bench.roofline(1e6, 1e9, 1e11, 1e10, 0.05)  # twice the bandwidth: from cache
  assert cached["bound"] == "cache"
  overhead = bench.roofline(1e6, 1e6, 1e11, 1e10, 0.01)  # 100x the roofline: kernel overhead
  assert overhead["bound"] == "overhead"


def test_the_device_limits_are_positive_and_plausible():
  assert 1e8 < bench.memory_bandwidth(16, repeats=2) < 1e13
  assert 1e8 < bench.matmul_flops_per_s(256, repeats=2) < 1e16


def test_a_family_chunk_is_timed_and_placed_on_the_roofline():
  limits = {"matmul_flops_per_s": 1e11, "bytes_per_s": 1e10}
  record = bench.benchmark_family(ToyFamily, get_config(), seconds=0.2, repeats=2, iters=50,
                                  limits=limits)
  assert record["family"] == "toy" and record["iters"] == 50 and len(record["dispatch_s"]) == 2
  assert record["steps_per_s"] > 0 and record["flops"] > 0 and record["kernels"] >= 3
  assert record["bound"] in ("compute", "memory", "cache", "overhead")
  assert record["roofline_s"] == pytest.approx(max(record["flops"] / 1e11,
                                                   record["bytes"] / 1e10))
