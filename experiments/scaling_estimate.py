"""Paper estimate of the GAN's data-parallel step time on a TPU v2-8 or 8 GPUs.

  python experiments/bench_jit.py --batch_sizes 512 --json one_device.json   # on ONE device
  python experiments/scaling_estimate.py --bench_json one_device.json --interconnect h100_nvlink_8

The measured single-device step (per-device batch, e.g. 512 for a global 4096 on 8 devices)
plus a ring all-reduce of the gradients over the chosen interconnect (its assumed bandwidth
and latency are printed with their sources). Or pass --step_ms directly.
"""

import json

from absl import flags

from genjax.configs.gan_mnist import get_config
from genjax.core import cli
from genjax.core.errors import ConfigError
from genjax.gan import scaling

_BENCH_JSON = flags.DEFINE_string("bench_json", None, "bench_jit.py --json output (1 device).")
_STEP_MS = flags.DEFINE_float("step_ms", None, "Or: the measured single-device step, in ms.")
_INTERCONNECT = flags.DEFINE_enum("interconnect", "h100_nvlink_8",
                                  sorted(scaling.INTERCONNECTS), "Which machine to estimate.")
_D_UPDATE = flags.DEFINE_enum("d_update", "keras", ["keras", "joint"], "GAN D update mode.")


def estimates():
  config = get_config()
  config.d_update = _D_UPDATE.value
  link = scaling.INTERCONNECTS[_INTERCONNECT.value]
  if (_BENCH_JSON.value is None) == (_STEP_MS.value is None):
    raise ConfigError("give exactly one of --bench_json FILE or --step_ms MS")
  if _STEP_MS.value is not None:
    if _STEP_MS.value <= 0:
      raise ConfigError(f"--step_ms must be positive, got {_STEP_MS.value}")
    return [({"batch_size": None, "device": "given"}, scaling.estimate_step(
        config, _STEP_MS.value / 1e3, link))]
  try:
    records = json.loads(open(_BENCH_JSON.value).read())
    return [(r, scaling.estimate_step(config, 1 / r["iters_per_s"], link)) for r in records]
  except (OSError, ValueError, KeyError, TypeError) as exc:
    raise ConfigError(f"--bench_json {_BENCH_JSON.value}: not a bench_jit.py JSON ({exc})") \
        from None


def main(argv):
  del argv
  for record, est in cli.run(estimates):
    per_device = record["batch_size"]
    global_batch = per_device * est["devices"] if per_device else None
    print(f"{est['interconnect']}: per-device batch {per_device} (global {global_batch}), "
          f"measured on {record['device']}")
    print(f"  compute {est['compute_s'] * 1e3:.3f} ms + all-reduce {est['grad_bytes'] / 1e6:.1f} MB"
          f" -> transfer {est['transfer_s'] * 1e3:.3f} ms + latency {est['latency_s'] * 1e3:.3f} ms"
          f" = {est['step_s'] * 1e3:.3f} ms/step, {est['iters_per_s']:.0f} it/s, "
          f"scaling efficiency {est['scaling_efficiency']:.2f}")
  print(f"assumptions: {scaling.INTERCONNECTS[_INTERCONNECT.value].source}")


if __name__ == "__main__":
  cli.main(main)
