"""Speed of the diffusion family: the training step on the roofline (genjax.core.bench), and
samples per second at several numbers of function evaluations."""

import time

import jax
import ml_collections

from genjax.core import bench
from genjax.diffusion.family import DiffusionFamily
from genjax.diffusion.sampling import settings_of
from genjax.data import image_sets
from genjax.diffusion.state import balanced_labels, build, generate, init_state

SAMPLE_NFES = (8, 32, 128)
SAMPLE_BATCH = 100  # samples per timed sampler call: one of 500 at 128 NFE takes minutes on 2 cores


def samples_per_second(config, nfe: int, batch: int, repeats: int = 2) -> float:
  """Samples per second of the config's sampler and guidance at `nfe` evaluations, a batch of
  `batch` per call (compiled first; the best of `repeats` calls: the host is shared)."""
  config = image_sets.filled(DiffusionFamily.validate(config))
  static = build(config)
  params = init_state(static, jax.random.key(0)).params
  settings = settings_of(config, nfe=nfe)
  noise = jax.random.normal(jax.random.key(1), (batch, *static.example_shape))
  labels = balanced_labels(batch, static.num_classes) if static.num_classes else None
  run = lambda: generate(static, params, noise, labels, jax.random.key(2), *settings)  # noqa: E731
  jax.block_until_ready(run())
  return batch / min(bench.timed(run) for _ in range(repeats))


def benchmark_diffusion(config: ml_collections.ConfigDict, seconds: float = 5.0,
                        repeats: int = 3, iters: int | None = None, limits: dict | None = None,
                        time_dots: bool = True, nfes=SAMPLE_NFES,
                        sample_batch: int = SAMPLE_BATCH) -> dict:
  """The training chunk's record (steps per second, XLA's cost of a step, its roofline with
  `limits`) and "samples_per_s" {nfe: samples per second} with the config's sampler and
  guidance, sample_batch at a time."""
  config = ml_collections.ConfigDict(config.to_dict())  # the caller's config stays as it was
  config.update(eval_interval=0, progress=False)
  record = bench.benchmark_family(DiffusionFamily, config, seconds, repeats, iters, limits,
                                  time_dots)
  t0 = time.perf_counter()
  record["samples_per_s"] = {nfe: samples_per_second(config, nfe, sample_batch)
                             for nfe in nfes}
  record.update(sampler=config.sampler, guidance=config.guidance,
                sampling_s=time.perf_counter() - t0)
  return record
