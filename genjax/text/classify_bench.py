"""Throughput of the sentence classifier's training and what bounds it.

Its chunk runs one compiled program per length bucket (sentences of up to 8, 16, 32, 64
tokens), chosen on the host from the step. So each bucket's program is compiled, costed by
XLA and timed on its own, and the figures are weighted by the bucket's share of an epoch's
steps: the mean step a training run sees.
"""

import time

import jax
import jax.numpy as jnp

from genjax.core import bench, sharding
from genjax.text.classify import ClassifierFamily, compiled_chunk


def _weighted(values, shares):
  """sum(share * value), or None where any value is unknown."""
  if any(v is None for v in values):
    return None
  return sum(s * v for s, v in zip(shares, values))


def _time_bucket(family, state, data_dev, b: int, seconds: float, repeats: int):
  """(state, steps per dispatch, seconds of each timed dispatch) within bucket b."""

  def dispatch(num_steps):
    nonlocal state
    # Back to the bucket's first batch, so no dispatch leaves it (a new array each time: the
    # state, step included, is donated).
    state = state.replace(step=jnp.asarray(family.offsets[b], jnp.int32))
    t0 = time.perf_counter()
    state, _ = jax.block_until_ready(family.chunk(state, data_dev, num_steps))
    return time.perf_counter() - t0

  num_batches = int(family.offsets[b + 1] - family.offsets[b])
  dispatch(1)  # the first call compiles
  iters, times = bench.time_chunks(dispatch, num_batches, None, seconds, repeats)
  return state, iters, times


def _compile(fn, state, data_dev, family, b: int):
  """(bucket b's chunk compiled as training runs it, seconds it took)."""
  state = state.replace(step=jnp.asarray(family.offsets[b], jnp.int32))
  t0 = time.perf_counter()
  compiled = fn.lower(state, data_dev[b], int(family.offsets[-1]), int(family.offsets[b]), b,
                      family.perm_key, family.step_key, 1).compile()
  return compiled, time.perf_counter() - t0


def benchmark_classifier(config, seconds: float = 5.0, repeats: int = 3,
                         limits: dict | None = None, time_dots: bool = True) -> dict:
  """Steps/s of the classifier's training on SST-2 (the mean over an epoch's buckets), XLA's
  cost of the mean step and, given the device's limits, its roofline (and with time_dots,
  its dots timed alone, bench.dots_alone). Nothing is written."""
  config = ClassifierFamily.validate(config)
  config.segment_batches = 0  # bucket after bucket: the step says which bucket runs
  mesh = sharding.make_mesh(config.num_devices)
  family = ClassifierFamily(config, mesh)
  data_dev = family.device_data(family.load_data())  # fills in the epoch's steps
  steps_N = [int(b - a) for a, b in zip(family.offsets[:-1], family.offsets[1:])]
  config.steps_per_dispatch = max(steps_N)  # a dispatch may span a whole bucket
  shares = [n / sum(steps_N) for n in steps_N]
  state = sharding.put_replicated(family.init_state(), mesh)
  fn = compiled_chunk(family.setup, config.batch_size, config.steps_per_dispatch)
  buckets, compile_s, all_times = [], 0.0, []
  for b, share in enumerate(shares):
    compiled, lower_s = _compile(fn, state, data_dev, family, b)
    compile_s += lower_s
    state, iters, times = _time_bucket(family, state, data_dev, b, max(seconds * share, 0.2),
                                       repeats)
    all_times += times
    buckets.append({"width": int(data_dev[b][0].shape[1]), "share": share, "iters": iters,
                    "steps_per_s": bench.median_rate(iters, times),
                    "dots_alone_s": bench.dots_alone(compiled) if limits and time_dots else None,
                    **bench.compiled_cost(compiled)})
  step_s = sum(s / r["steps_per_s"] for s, r in zip(shares, buckets))
  record = {"family": family.name, "iters": sum(r["iters"] for r in buckets),
            "dispatch_s": all_times, "steps_per_s": 1.0 / step_s, "compile_s": compile_s,
            "flops": _weighted([r["flops"] for r in buckets], shares),
            "bytes": _weighted([r["bytes"] for r in buckets], shares),
            "kernels": round(_weighted([r["kernels"] for r in buckets], shares)),
            "buckets": buckets, "mesh_devices": mesh.devices.size, **bench.device_info()}
  if limits and time_dots:
    record["dots_alone_s"] = _weighted([r["dots_alone_s"] for r in buckets], shares)
  if limits:
    bench.place_on_roofline(record, limits, step_s)
  return record

