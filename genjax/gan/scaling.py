"""Paper estimate of data-parallel step time: measured compute plus ring all-reduce of gradients.

Per iteration, data parallelism all-reduces every gradient the step applies (the Keras-faithful
GAN: D's twice, G's once) and G's BatchNorm batch statistics. A ring all-reduce of S bytes over
n devices moves 2(n-1)/n * S bytes through each device's link and pays 2(n-1) latency hops.
"""

import dataclasses

import jax
import ml_collections

from genjax.data.image_sets import filled
from genjax.gan.state import build_gan, init_state


@dataclasses.dataclass(frozen=True)
class Interconnect:
  name: str
  devices: int
  bytes_per_s: float  # achievable per-device all-reduce (bus) bandwidth
  hop_latency_s: float
  source: str


# Assumptions, not measurements: each figure's source is stated with it.
INTERCONNECTS = {
    "tpu_v2_8": Interconnect(
        "TPU v2-8 (4 chips x 2 cores, 2-D ICI)", 8, 4 * 496e9 / 8 / 2, 5e-6,
        "Jouppi et al. 2020 (CACM, 'A domain-specific supercomputer for training DNNs'): 4 ICI "
        "links of 496 Gbit/s per TPUv2 chip; assumed half usable by a ring, 5 us per hop"),
    "h100_nvlink_8": Interconnect(
        "8x H100 SXM, NVLink 4 + NVSwitch", 8, 350e9, 8e-6,
        "NVIDIA: 900 GB/s NVLink per H100 (450 GB/s each way); assumed ~350 GB/s NCCL bus "
        "bandwidth for an 8-GPU all-reduce and 8 us per hop"),
}


def gradient_floats_per_iter(config: ml_collections.ConfigDict) -> dict:
  """Floats all-reduced per iteration: parameters counted from the real model (built for its
  data's images)."""
  gan = build_gan(filled(config))
  shapes = jax.eval_shape(lambda: init_state(gan, jax.random.key(0)))
  count = lambda tree: sum(x.size for x in jax.tree.leaves(tree))  # noqa: E731
  d_updates = 2 if config.d_update == "keras" else 1
  bn_stats = 2 * sum(config.g_hidden)  # batch mean and variance of each hidden unit
  return {"g_params": count(shapes.g_params), "d_params": count(shapes.d_params),
          "d_updates": d_updates, "bn_stats": bn_stats,
          "total": count(shapes.g_params) + d_updates * count(shapes.d_params) + bn_stats,
          "collectives": 1 + d_updates + len(config.g_hidden)}


def estimate_step(config: ml_collections.ConfigDict, single_device_step_s: float,
                  link: Interconnect, bytes_per_float: int = 4) -> dict:
  """Step time on link.devices devices, each running the per-device batch in single_device_step_s.

  Gradients stay float32 under bfloat16 compute (parameters are float32), so 4 bytes a float.
  No overlap of communication with compute is assumed: an upper bound on the step time.
  """
  volume = gradient_floats_per_iter(config)
  n = link.devices
  grad_bytes = volume["total"] * bytes_per_float
  transfer_s = 2 * (n - 1) / n * grad_bytes / link.bytes_per_s
  latency_s = volume["collectives"] * 2 * (n - 1) * link.hop_latency_s
  step_s = single_device_step_s + transfer_s + latency_s
  return {"interconnect": link.name, "devices": n, "grad_bytes": grad_bytes,
          "transfer_s": transfer_s, "latency_s": latency_s, "compute_s": single_device_step_s,
          "step_s": step_s, "iters_per_s": 1 / step_s,
          "scaling_efficiency": single_device_step_s / step_s, "assumptions": link.source}
