"""Timing a jitted chunk fairly, and the device's own limits measured in the same run."""

import statistics
import time

import jax
import jax.numpy as jnp

MAX_CHUNK = 1 << 15  # cap on steps per dispatch when the count is picked from a time budget
PROBE_S = 0.05  # a probe dispatch at least this long gives a usable per-step estimate


def timed(fn, *args) -> float:
  """Seconds for fn(*args) until its results are ready (dispatch is asynchronous)."""
  t0 = time.perf_counter()
  jax.block_until_ready(fn(*args))
  return time.perf_counter() - t0


def matmul_flops_per_s(n: int = 2048, repeats: int = 5) -> float:
  """Best-of-`repeats` FLOP/s of a dense float32 n x n @ n x n matmul."""
  ka, kb = jax.random.split(jax.random.key(0))
  a = jax.random.normal(ka, (n, n), jnp.float32)
  b = jax.random.normal(kb, (n, n), jnp.float32)
  matmul = jax.jit(jnp.matmul)
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
  `repeats` dispatches take about `seconds`. Otherwise one warm-up dispatch at iters.
  """
  if iters is None:
    probe = 1
    while (probe_s := dispatch(probe)) < PROBE_S and probe < max_steps:
      probe = min(4 * probe, max_steps)
    iters = max(1, min(max_steps, int(seconds / repeats / (probe_s / probe))))
  else:
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
