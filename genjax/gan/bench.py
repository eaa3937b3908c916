"""Throughput of the GAN's jitted training chunk: iterations/s, XLA's cost of an iteration, the
matmul-count cross-check, and the roofline (genjax.core.bench)."""

import ml_collections

from genjax.core import bench
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
