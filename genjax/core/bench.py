"""Timing a jitted chunk fairly, and the device's own limits measured in the same run."""

import functools
import math
import statistics
import time

import jax
import jax.numpy as jnp

from genjax.core import feed, sharding
from genjax.core.hlo import hlo_cost, hlo_dots

MAX_CHUNK = 1 << 15  # cap on steps per dispatch when the count is picked from a time budget
# Fewest steps in a timed dispatch: each dispatch maps its temporaries' memory afresh (page
# faults: docs/results.md), which a run pays once per steps_per_dispatch, not once a step.
MIN_TIMED_STEPS = 10
PROBE_S = 0.05  # a probe dispatch at least this long gives a usable per-step estimate
# The share of a step its dots alone may plausibly take: at most the whole step, with room for
# XLA overlapping kernels on a multi-core CPU; far less is a dot timed while the machine ran
# something else, far more a step timed so.
DOT_SHARE_PLAUSIBLE = (0.2, 2.0)


def timed(fn, *args) -> float:
  """Seconds for fn(*args) until its results are ready (dispatch is asynchronous)."""
  t0 = time.perf_counter()
  jax.block_until_ready(fn(*args))
  return time.perf_counter() - t0


def matmul_flops_per_s(n: int = 2048, repeats: int = 5, dtype: str = "float32") -> float:
  """Best-of-`repeats` FLOP/s of a dense n x n @ n x n matmul: float32, or bfloat16 operands
  with their products summed in float32 (as the models' mixed precision runs them)."""
  ka, kb = jax.random.split(jax.random.key(0))
  a = jax.random.normal(ka, (n, n), jnp.float32).astype(dtype)
  b = jax.random.normal(kb, (n, n), jnp.float32).astype(dtype)
  matmul = jax.jit(functools.partial(jnp.matmul, preferred_element_type=jnp.float32))
  timed(matmul, a, b)  # compile and warm up
  single = timed(matmul, a, b)
  # On a GPU one matmul can be shorter than the dispatch overhead, so queue several
  # back-to-back (async dispatch) and block on the last: each measurement lasts >= ~20 ms.
  inner = max(1, min(1000, int(0.02 / max(single, 1e-6))))

  def run_inner():
    out = None
    for _ in range(inner):
      out = matmul(a, b)
    return out

  best = min(timed(run_inner) for _ in range(repeats))
  return 2.0 * n**3 * inner / best


def time_chunks(dispatch, max_steps: int, iters: int | None, seconds: float,
                repeats: int) -> tuple[int, list[float]]:
  """(steps per dispatch, seconds of each timed dispatch) of dispatch(num_steps).

  iters None: a probe grows until dispatch overhead is negligible, then the chunk is sized so
  `repeats` dispatches take about `seconds` (and hold at least MIN_TIMED_STEPS steps). Either
  way one warm-up dispatch at that length.
  """
  if iters is None:
    probe = 1
    while (probe_s := dispatch(probe)) < PROBE_S and probe < max_steps:
      probe = min(4 * probe, max_steps)
    iters = min(max_steps, max(MIN_TIMED_STEPS, int(seconds / repeats / (probe_s / probe))))
  dispatch(iters)  # warm-up at the timed length (caches, allocator, clocks)
  return iters, [dispatch(iters) for _ in range(repeats)]


def median_rate(iters: int, times: list[float]) -> float:
  """Steps per second of the median dispatch: the host is shared, and one lucky dispatch
  should not set the figure."""
  return iters / statistics.median(times)


def compiled_flops(compiled) -> float | None:
  """FLOPs of a compiled program from XLA's cost analysis; None if unavailable."""
  analysis = compiled.cost_analysis()
  if isinstance(analysis, (list, tuple)):  # older jax: one dict per computation
    analysis = analysis[0] if analysis else None
  flops = (analysis or {}).get("flops")
  return float(flops) if flops is not None and flops > 0 else None


def device_info() -> dict:
  """Which accelerator produced the numbers: compare timings only between equal devices."""
  dev = jax.devices()[0]
  return {"device": f"{dev} ({dev.platform}, {dev.device_kind})",
          "num_devices": jax.device_count(), "jax_version": jax.__version__}


def memory_bandwidth(megabytes: int = 256, repeats: int = 5) -> float:
  """Best-of-`repeats` bytes/s of a STREAM-like triad a = b + 3 c on the device (arrays of
  `megabytes` each; two read, one written)."""
  n = megabytes * (1 << 20) // 4
  b = jnp.ones((n,), jnp.float32)
  c = jnp.full((n,), 2.0, jnp.float32)
  triad = jax.jit(lambda b, c: b + 3.0 * c)
  timed(triad, b, c)  # compile and warm up
  best = min(timed(triad, b, c) for _ in range(repeats))
  return 3 * n * 4 / best


_HLO_DTYPES = {"f32": jnp.float32, "bf16": jnp.bfloat16, "f16": jnp.float16, "f64": jnp.float64,
               "s32": jnp.int32, "s8": jnp.int8, "u8": jnp.uint8, "s64": jnp.int64}


def dot_flops(signature) -> float:
  """FLOPs of one dot of an HLO signature (hlo.hlo_dots' keys): 2 x the product of the batch,
  free and contracting sizes."""
  _, lhs_dims, _, rhs_dims, _, dims = signature
  return 2.0 * math.prod(lhs_dims) * math.prod(rhs_dims) / max(1, math.prod(
      rhs_dims[d] for d in (*dims[1], *dims[3])))


def dot_trips(flops: float) -> int:
  """Trips of the device loop that times a dot alone: about 10 ms at 50 GFLOP/s, 2 to 500."""
  return int(min(500, max(2, 0.01 * 5e10 / flops)))


def _dot_seconds(signature, repeats: int) -> float:
  """Seconds of one run of a dot, timed alone in a device loop (the loop's own cost taken
  out): its operands stay in cache, as a step's weights at best do."""
  lhs_dtype, lhs_dims, rhs_dtype, rhs_dims, out_dtype, dims = signature
  lhs_dtype, rhs_dtype, out_dtype = (_HLO_DTYPES[t] for t in (lhs_dtype, rhs_dtype, out_dtype))
  key_l, key_r = jax.random.split(jax.random.key(0))
  # Arguments, not constants: XLA would fold constant operands into the dot's fusion.
  lhs = jax.random.normal(key_l, lhs_dims).astype(lhs_dtype)
  rhs = jax.random.normal(key_r, rhs_dims).astype(rhs_dtype)
  numbers = ((dims[0], dims[1]), (dims[2], dims[3]))

  def loop(trips, with_dot):
    def run(lhs, rhs):
      def body(_, carry):
        x = lhs + carry.astype(lhs.dtype)  # the carry keeps the dot inside the loop
        out = jax.lax.dot_general(x, rhs, numbers, preferred_element_type=out_dtype) \
            if with_dot else x
        return carry + out.ravel()[0].astype(jnp.float32) * 0
      return jax.lax.fori_loop(0, trips, body, jnp.zeros((), jnp.float32))
    return jax.jit(run)

  trips = dot_trips(dot_flops(signature))
  with_dot, without = loop(trips, True), loop(trips, False)
  timed(with_dot, lhs, rhs), timed(without, lhs, rhs)
  best = (min(timed(with_dot, lhs, rhs) for _ in range(repeats))
          - min(timed(without, lhs, rhs) for _ in range(repeats)))
  return max(best, 0.0) / trips


def dots_alone(compiled, repeats: int = 3) -> float:
  """Seconds per step of a compiled chunk's dots run one after another, each timed alone at
  its own shapes and dtypes on this device: what its matmuls cost however lean the rest of the
  step (small, skinny matmuls run far below a large square one's FLOP/s). Not a strict floor:
  XLA may overlap independent kernels on a multi-core CPU."""
  return sum(count * _dot_seconds(signature, repeats)
             for signature, count in hlo_dots(compiled.as_text()).items())


def implausible_dots(record: dict) -> str | None:
  """A warning when a record's dots alone take a share of its measured step outside
  DOT_SHARE_PLAUSIBLE (the two were timed at different moments of a shared machine); None when
  the share is plausible or was not measured."""
  share = record.get("dot_share")
  low, high = DOT_SHARE_PLAUSIBLE
  if share is None or low <= share <= high:
    return None
  return (f"the dots alone took {share:.2f} of the measured step, outside {low}-{high}: "
          "something else probably ran on the machine while one of them was timed; rerun")


def compiled_cost(compiled) -> dict:
  """FLOPs and bytes accessed of one step of a compiled chunk, and the kernels it launches.

  XLA's cost analysis counts a while loop's body once. That is right for the chunk's own loop
  over steps (its trip count is unknown: the figures are one step's), but a loop of known trip
  count inside a step (an RNN's scan over time steps, a random-bits loop) runs that many
  times: its extra trips are added from the compiled program (their dots' FLOPs and their
  kernels' operand and result bytes), so an LSTM's cost is its time steps', not one's.
  """
  analysis = compiled.cost_analysis()
  if isinstance(analysis, (list, tuple)):  # older jax: one dict per computation
    analysis = analysis[0] if analysis else None
  analysis = analysis or {}
  positive = lambda v: float(v) if v is not None and v > 0 else None  # noqa: E731
  flops, bytes_accessed = positive(analysis.get("flops")), positive(analysis.get("bytes accessed"))
  hlo_text = compiled.as_text()
  once, every_trip = hlo_cost(hlo_text, trips=False), hlo_cost(hlo_text, trips=True)
  if flops is not None:
    flops += every_trip["flops"] - once["flops"]
  if bytes_accessed is not None:
    bytes_accessed += every_trip["bytes"] - once["bytes"]
  return {"flops": flops, "bytes": bytes_accessed, "kernels": every_trip["kernels"]}


def roofline(flops, bytes_accessed, matmul_flops_per_s: float, bytes_per_s: float,
             seconds: float) -> dict:
  """The roofline time max(flops / matmul FLOP/s, bytes / bandwidth), the measured time over
  it, and which bound binds: compute, memory, cache (faster than the memory bound: the bytes
  are operands that stay in cache) or neither (per-kernel overhead: measured more than twice
  the roofline)."""
  compute_s = (flops or 0.0) / matmul_flops_per_s
  memory_s = (bytes_accessed or 0.0) / bytes_per_s
  bound_s = max(compute_s, memory_s)
  ratio = seconds / bound_s if bound_s else None
  if ratio is None or ratio > 2.0:
    binds = "overhead"
  elif compute_s >= memory_s:
    binds = "compute"
  else:  # faster than main memory allows: XLA's bytes are operands, most of them in cache
    binds = "memory" if ratio >= 1.0 else "cache"
  return {"roofline_s": bound_s, "compute_s": compute_s, "memory_s": memory_s,
          "measured_over_roofline": ratio, "bound": binds}


def place_on_roofline(record: dict, limits: dict, seconds: float) -> dict:
  """`record` (XLA's "flops" and "bytes" of one step, measured `seconds` per step) with the
  device's limits, its roofline and its FLOP/s over the matmul it is held against: bfloat16's
  where that was measured (the record computes in bfloat16), else float32's; and, where the
  record has its dots timed alone, their share of the step ("dot_share")."""
  peak = limits.get("matmul_bf16_flops_per_s") or limits["matmul_flops_per_s"]
  flops = record["flops"]
  record.update(limits, peak_flops_per_s=peak,
                of_matmul=None if flops is None else flops / seconds / peak)
  record.update(roofline(flops, record["bytes"], peak, limits["bytes_per_s"], seconds))
  dots_s = record.get("dots_alone_s")  # the step's own matmuls, one after another (dots_alone)
  record["dot_share"] = None if dots_s is None else dots_s / seconds
  return record


def benchmark_family(family_cls, config, seconds: float = 5.0, repeats: int = 3,
                     iters: int | None = None, limits: dict | None = None,
                     time_dots: bool = True) -> dict:
  """Steady-state speed of a family's jitted chunk on its real data, with XLA's cost of one
  step and, given the device's limits ({"matmul_flops_per_s", "bytes_per_s"}), its roofline
  and (time_dots) its dots timed alone (dots_alone), both measured now.

  Built as the core loop builds a run (validated config, mesh, data on the device), without
  a workdir: nothing is written.
  """
  config = family_cls.validate(config)
  config.steps_per_dispatch = iters or MAX_CHUNK
  mesh = sharding.make_mesh(config.num_devices)
  family = family_cls(config, mesh)
  data_dev = feed.on_devices(family, family.load_data())
  state = sharding.put_replicated(family.init_state(), mesh)
  t0 = time.perf_counter()
  compiled = jax.jit(family.chunk, static_argnums=2).lower(state, data_dev, 1).compile()
  compile_s = time.perf_counter() - t0
  state, _ = jax.block_until_ready(family.chunk(state, data_dev, 1))  # first call, warm

  def dispatch(num_steps):
    nonlocal state
    t0 = time.perf_counter()
    state, _ = jax.block_until_ready(family.chunk(state, data_dev, num_steps))  # donated
    return time.perf_counter() - t0

  iters, times = time_chunks(dispatch, config.steps_per_dispatch, iters, seconds, repeats)
  steps_per_s = median_rate(iters, times)
  record = {"family": family.name, "iters": iters, "dispatch_s": times,
            "steps_per_s": steps_per_s, "compile_s": compile_s, **compiled_cost(compiled),
            "mesh_devices": mesh.devices.size, **device_info()}
  if limits and time_dots:
    record["dots_alone_s"] = dots_alone(compiled)
  if limits:
    place_on_roofline(record, limits, 1.0 / steps_per_s)
  return record
