"""The benchmark's measuring tools: kernels, cost, roofline, bandwidth, a family's chunk."""

import math

import jax
import jax.numpy as jnp
import pytest

from genjax.core import bench, hlo
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


def rnn_gradient_program(time_steps: int, unroll):
  """The gradient of a scanned RNN: XLA's cost analysis sees its loop body once."""
  def loss(h, xs_TxBxH, w):
    def cell(h, x):
      h = jnp.tanh(h @ w + x)
      return h, 2.0 * h
    h, ys = jax.lax.scan(cell, h, xs_TxBxH, unroll=unroll)
    return jnp.sum(ys) + jnp.sum(h)
  grad = jax.jit(jax.grad(loss, argnums=(0, 2)))
  return grad.lower(jnp.ones((32, 128)), jnp.ones((time_steps, 32, 128)),
                    jnp.ones((128, 128))).compile()


def test_a_scan_costs_every_time_step_as_the_unrolled_program_does():
  rolled = bench.compiled_cost(rnn_gradient_program(16, 1))
  unrolled = rnn_gradient_program(16, True)
  assert rolled["flops"] == pytest.approx(unrolled.cost_analysis()["flops"], rel=0.02)
  assert rolled["flops"] > 10 * rnn_gradient_program(16, 1).cost_analysis()["flops"]
  # The byte count read from the program is XLA's, kernel by kernel, on either program.
  for program in (rnn_gradient_program(16, 1), unrolled):
    assert hlo.hlo_cost(program.as_text(), trips=False)["bytes"] == pytest.approx(
        program.cost_analysis()["bytes accessed"], rel=0.001)
  longer = bench.compiled_cost(rnn_gradient_program(64, 1))
  assert longer["flops"] == pytest.approx(4 * rolled["flops"], rel=0.05)
  assert 3 * rolled["bytes"] < longer["bytes"] < 5 * rolled["bytes"]


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


def test_the_device_limits_are_measured():
  # Rates of this machine at this moment: measured, finite and positive; whether they are
  # plausible is bench_jit's to judge (it prints them beside every record).
  for rate in (bench.memory_bandwidth(16, repeats=2), bench.matmul_flops_per_s(256, repeats=2),
               bench.matmul_flops_per_s(256, repeats=2, dtype="bfloat16")):
    assert math.isfinite(rate) and rate > 0


def test_a_bfloat16_record_is_held_against_the_bfloat16_matmul():
  limits = {"matmul_flops_per_s": 1e11, "bytes_per_s": 1e10}
  record = bench.place_on_roofline({"flops": 1e9, "bytes": 1e6}, limits, 0.02)
  assert record["peak_flops_per_s"] == 1e11 and record["of_matmul"] == pytest.approx(0.5)
  record = bench.place_on_roofline({"flops": 1e9, "bytes": 1e6},
                                   {**limits, "matmul_bf16_flops_per_s": 2e11}, 0.02)
  assert record["peak_flops_per_s"] == 2e11 and record["of_matmul"] == pytest.approx(0.25)
  assert record["compute_s"] == pytest.approx(1e9 / 2e11)


def test_a_family_chunk_is_timed_and_placed_on_the_roofline():
  limits = {"matmul_flops_per_s": 1e11, "bytes_per_s": 1e10}
  record = bench.benchmark_family(ToyFamily, get_config(), seconds=0.2, repeats=2, iters=50,
                                  limits=limits)
  assert record["family"] == "toy" and record["iters"] == 50 and len(record["dispatch_s"]) == 2
  assert record["steps_per_s"] > 0 and record["flops"] > 0 and record["kernels"] >= 3
  assert record["bound"] in ("compute", "memory", "cache", "overhead")
  assert record["roofline_s"] == pytest.approx(max(record["flops"] / 1e11,
                                                   record["bytes"] / 1e10))
  assert record["dots_alone_s"] == 0.0 and record["dot_share"] == 0.0  # w x + b: no matmul


def test_the_dots_of_a_step_are_listed_with_their_shapes_and_trips():
  dots = hlo.hlo_dots(loop_program(3).as_text())  # the loop's trips are unknown: one step
  assert dots == {("f32", (32, 32), "f32", (32, 32), "f32", ((1,), (0,), (), ())): 3}
  grad_dots = hlo.hlo_dots(rnn_gradient_program(16, 1).as_text())
  # Forward h @ w, and backward dh @ w^T and h^T @ dh, each once per time step.
  assert sum(grad_dots.values()) == 3 * 16
  assert {dims[:2] for *_, dims in grad_dots} == {((1,), (0,)), ((1,), (1,)), ((0,), (0,))}


def test_the_dots_alone_times_each_dot_of_the_census_at_its_flops():
  n = 256
  chained = jax.jit(lambda x: jax.lax.fori_loop(0, 40, lambda i, x: x @ x * 1e-3, x))
  compiled = chained.lower(jnp.ones((n, n))).compile()
  # 40 known trips of one 256 x 256 dot: counted 40 times, not once, nor the loop as one dot.
  census = hlo.hlo_dots(compiled.as_text())
  assert list(census.values()) == [40]
  (signature,) = census
  assert bench.dot_flops(signature) == 2.0 * n**3
  assert bench.dot_trips(2.0 * n**3) == 14  # 0.01 s x 5e10 FLOP/s / 33.6 MFLOP
  assert bench.dot_trips(1.0) == 500 and bench.dot_trips(1e12) == 2
  batched = ("f32", (8, 32, 16), "f32", (8, 16, 4), "f32", ((2,), (1,), (0,), (0,)))
  assert bench.dot_flops(batched) == 2.0 * 8 * 32 * 16 * 4
  seconds = bench.dots_alone(compiled, repeats=1)
  # Measured (a difference of two timings, clipped at 0): its size is bench_jit's to judge.
  assert math.isfinite(seconds) and seconds >= 0


def test_a_dots_share_outside_the_plausible_band_is_a_warning():
  low, high = bench.DOT_SHARE_PLAUSIBLE
  assert bench.implausible_dots({"dot_share": None}) is None  # not measured
  assert bench.implausible_dots({}) is None
  assert bench.implausible_dots({"dot_share": low}) is None
  assert bench.implausible_dots({"dot_share": high}) is None
  assert bench.implausible_dots({"dot_share": 0.8}) is None
  warning = bench.implausible_dots({"dot_share": 2.33})
  assert warning.startswith("the dots alone took 2.33 of the measured step, outside 0.2-2.0")
  assert "0.10 of the measured step" in bench.implausible_dots({"dot_share": 0.1})
