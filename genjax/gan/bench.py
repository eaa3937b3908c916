"""Throughput of the GAN's jitted training chunk: iterations/s, XLA's cost of an iteration, the
matmul-count cross-check, and the roofline (genjax.core.bench); and what streaming the data
from the host costs the steps."""

import os
import tempfile
import time
from pathlib import Path

import ml_collections
import numpy as np

from genjax.core import bench, feed, loop
from genjax.core.loop import train
from genjax.data import image_sets
from genjax.gan.family import GANFamily

IMAGE_SHAPE = (28, 28)


def _mlp_macs(widths) -> tuple[int, int]:
  """Per-example multiply-adds of the dense stack `widths`, and of its first layer alone."""
  macs = [k * n for k, n in zip(widths[:-1], widths[1:])]
  return sum(macs), macs[0]


def analytic_step_flops(config: ml_collections.ConfigDict,
                        batch_size: int | None = None) -> float | None:
  """Matmul FLOPs (2*m*k*n each) of one MLP train_step (None for other architectures).

  Bias, activations and Adam are left out.

  Per example, with G = G's forward MACs, D = D's, G1/D1 their first layers:
    G inference forward for D's fakes:                            G
    D step on reals and on fakes: forward + weight grads + input grads past layer 1:  2 * (3D - D1)
    G step: G forward + weight grads + input grads past layer 1:  3G - G1
            D forward + input grads through every layer (D's weight grads are dead:
            stop_gradient):                                       2D
  Total 4G - G1 + 8D - 2D1. The joint D update (one G forward, D on both halves) counts the same.
  """
  if config.arch != "mlp":  # convolutions: XLA's count only
    return None
  b = config.batch_size if batch_size is None else batch_size
  g, g1 = _mlp_macs([config.latent_dim, *config.g_hidden, IMAGE_SHAPE[0] * IMAGE_SHAPE[1]])
  d, d1 = _mlp_macs([IMAGE_SHAPE[0] * IMAGE_SHAPE[1], *config.d_hidden, 1])
  return 2.0 * b * (4 * g - g1 + 8 * d - 2 * d1)


def benchmark_gan(config: ml_collections.ConfigDict, batch_size: int, iters: int | None = None,
                  *, seconds: float = 5.0, repeats: int = 3, limits: dict | None = None,
                  num_devices: int = 1, compute_dtype: str = "float32",
                  time_dots: bool = True) -> dict:
  """Compile time and steady-state speed of the GAN's chunk at `batch_size` on real data
  (split over num_devices devices; 0: all); iters None picks the chunk from `seconds`.

  limits: the device's {"matmul_flops_per_s", "bytes_per_s"}, measured in the same run;
  time_dots: also time the step's dots alone (genjax.core.bench.dots_alone).
  """
  config = ml_collections.ConfigDict(config.to_dict())  # don't mutate the caller's config
  config.update(batch_size=batch_size, compute_dtype=compute_dtype, num_devices=num_devices,
                eval_interval=0, progress=False)
  record = bench.benchmark_family(GANFamily, config, seconds, repeats, iters, limits,
                                  time_dots)
  analytic = analytic_step_flops(config)
  flops = record["flops"] if record["flops"] is not None else analytic
  record.update(
      batch_size=batch_size, d_update=config.d_update, arch=config.arch,
      conditional=bool(config.conditional), compute_dtype=compute_dtype,
      iters_per_s=record["steps_per_s"], items_per_s=record["steps_per_s"] * batch_size,
      item="image", flops_per_iter=flops, flops_per_iter_xla=record["flops"],
      flops_per_iter_analytic=analytic,
      flops_source="xla" if record["flops"] is not None else (
          "analytic" if analytic is not None else None))
  return record


def _steady_images_per_s(workdir, batch_size: int) -> float:
  """Images/s of a finished run from its per-step rows, the first chunk (compilation) left
  out: (steps after the first chunk's end) / (seconds since), times the batch."""
  rows = loop.MetricsLog.read(Path(workdir) / "metrics.jsonl")
  ends = sorted({r["wall_s"] for r in rows})
  first_end = max(r["step"] for r in rows if r["wall_s"] == ends[0])
  return batch_size * (rows[-1]["step"] - first_end) / (rows[-1]["wall_s"] - ends[0])


def pipeline_images_per_s(data: feed.Source, batch_size: int, steps: int, seconds: float,
                          seed: int = 0) -> float:
  """Images/s the host reads and decodes from `data` in chunks of steps x batch_size random
  rows (what a streamed run asks for before each chunk)."""
  rng, read, t0 = np.random.default_rng(seed), 0, time.perf_counter()
  while time.perf_counter() - t0 < seconds:
    data.take(rng.integers(0, len(data), (steps, batch_size)))
    read += steps * batch_size
  return read / (time.perf_counter() - t0)


def stream_speed(config: ml_collections.ConfigDict, num_steps: int, repeats: int = 2,
                 seconds: float = 10.0, log=print) -> dict:
  """The host pipeline's images/s on config's data, against the images/s of config's GAN
  steps with the data on the devices and streamed (alternating runs, `repeats` of each, the
  first chunk of each run left out): what streaming costs a step."""
  config = ml_collections.ConfigDict(config.to_dict())  # don't mutate the caller's config
  config.update(num_steps=num_steps, checkpoint_interval=num_steps, eval_interval=0,
                sample_interval=num_steps, progress=False, log_interval=1)
  spec = image_sets.DataSpec(image_sets.resolve_dataset(config.dataset), config.data_dir or None,
                             config.image_size, config.test_fraction)
  data = image_sets.open_split(spec, "train")
  record = {"dataset": spec.dataset, "num_examples": len(data), "batch_size": config.batch_size,
            "steps_per_dispatch": config.steps_per_dispatch, "runs": []}
  record["pipeline_images_per_s"] = pipeline_images_per_s(
      data, config.batch_size, config.steps_per_dispatch, seconds)
  log(f"pipeline: {record['pipeline_images_per_s']:.0f} images/s "
      f"(load {os.getloadavg()[0]:.1f})")
  with tempfile.TemporaryDirectory() as tmp:
    for i in range(repeats):
      for mode, limit in (("in_memory", 1e9), ("streamed", 0.0)):
        run_config = config.copy_and_resolve_references()
        run_config.device_data_mb = limit
        load = os.getloadavg()[0]
        train(GANFamily, run_config, Path(tmp) / f"{mode}_{i}")
        rate = _steady_images_per_s(Path(tmp) / f"{mode}_{i}", config.batch_size)
        record["runs"].append({"mode": mode, "images_per_s": rate, "load": load})
        log(f"{mode}: {rate:.0f} images/s (load {load:.1f})")
  for mode in ("in_memory", "streamed"):
    record[f"{mode}_images_per_s"] = float(np.median(
        [r["images_per_s"] for r in record["runs"] if r["mode"] == mode]))
  record["streamed_over_in_memory"] = (record["streamed_images_per_s"]
                                       / record["in_memory_images_per_s"])
  return record
