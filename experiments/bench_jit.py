"""Speed of the jitted GAN loop (train_chunk) per batch size, against a dense matmul's FLOP/s.

Run:  python experiments/bench_jit.py [--batch_sizes 32,256,4096]
                                      [--recipe mlp|dcgan|...|cgan] [--d_update keras|joint]
                                      [--seconds 5] [--json runs/bench.json]
Each batch size compiles once, then times about --seconds of iterations (3 dispatches, median).
Unchanged on CPU and GPU; the device is recorded, so compare figures only on one device.

Measured with the defaults on this project's 2-core AMD EPYC CPU (Zen 5; jax 0.10.2, keras mode,
XLA's FLOP count; whole run ~30 s), host quiet; ratio = GAN FLOP/s over a 2048^3 float32 matmul
timed right after each batch size (~470 GFLOP/s quiet):
  batch    it/s    img/s  compile s  GFLOP/iter  GFLOP/s  ratio
     32     293     9363        1.5       0.640      187   0.40
    256    68.7    17595        1.6       4.862      334   0.69
   4096     4.8    19477        1.4      77.240      367   0.78
--d_update joint: 299 / 71.1 / 4.4 it/s, ratios 0.41 / 0.73 / 0.69. The host is shared: with a
busy neighbour the same run gave 145 / 34.9 / 2.0 it/s (ratios 0.40 / 0.74 / 0.47).
"""

import json
import os
import sys

try:
  import genjax  # noqa: F401  (installed, or run from the project root)
except ImportError:  # a checkout run as `python experiments/bench_jit.py` from anywhere
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags

from genjax.configs.gan_mnist import RECIPES, get_config

PROG = "bench_jit.py"

flags.DEFINE_list("batch_sizes", ["32", "256", "4096"], "Comma-separated positive batch sizes.")
flags.DEFINE_enum("recipe", "mlp", list(RECIPES),
                  "Config recipe to time (genjax/configs/gan_mnist.py): mlp is the tutorial.")
flags.DEFINE_enum("d_update", "keras", ["keras", "joint"],
                  "D update: the tutorial's two, or one joint (default: the recipe's own).")
flags.DEFINE_list("dtypes", ["float32"], "Compute dtypes to time: float32, bfloat16 or both.")
flags.DEFINE_integer("num_devices", 0, "Devices on the data mesh (0: all).")
flags.DEFINE_float("seconds", 5.0, "Timed seconds per batch size (after compile).")
flags.DEFINE_string("json", None, "Write the records here as a JSON list.")
flags.DEFINE_integer("matmul_n", 2048, "Size of the reference square matmul.")
FLAGS = flags.FLAGS


def _batch_size(text: str) -> int:
  try:
    value = int(text)
  except ValueError:
    raise flags.ValidationError(f"batch size {text!r} is not an integer") from None
  if value <= 0:
    raise flags.ValidationError(f"batch size {value} is not positive")
  return value


@flags.validator("batch_sizes", message="needs at least one batch size")
def _check_batch_sizes(values):
  for text in values or []:
    _batch_size(text)  # a ValidationError carries its own, more precise message
  return bool(values)


flags.register_validator("dtypes", lambda ds: bool(ds) and set(ds) <= {"float32", "bfloat16"},
                         message="--dtypes takes float32 and/or bfloat16")
flags.register_validator("num_devices", lambda n: n >= 0, message="--num_devices must be >= 0")
flags.register_validator("seconds", lambda s: s > 0, message="--seconds must be positive")
flags.register_validator("matmul_n", lambda n: n > 0, message="--matmul_n must be positive")


@flags.validator("json", message="--json path is not writable")
def _check_json(path):
  # Fail before minutes of benchmarking, not after.
  if path is None:
    return True
  parent = os.path.dirname(os.path.abspath(path))
  return not os.path.isdir(path) and os.path.isdir(parent) and os.access(parent, os.W_OK)


def _parse_flags(argv):
  """absl's parse error spans two lines; a bad flag here is one line on stderr and exit 2."""
  try:
    return FLAGS(argv)
  except flags.Error as e:
    print(f"{PROG}: error: {e}", file=sys.stderr)
    sys.exit(2)


def _num(value, scale: float, width: int, digits: int) -> str:
  """`value / scale` right-aligned, or '-' where it was not measured (None)."""
  return f"{'-':>{width}}" if value is None else f"{value / scale:>{width}.{digits}f}"


def _table(records) -> str:
  header = (f"{'dtype':>8} {'dev':>3} {'batch':>6} {'it/s':>9} {'img/s':>10} {'img/s/dev':>10} "
            f"{'compile s':>9} {'GFLOP/iter':>10} {'GFLOP/s':>8} {'matmul GFLOP/s':>14} "
            f"{'ratio':>6}")
  rows = [f"{r['compute_dtype']:>8} {r['mesh_devices']:>3} {r['batch_size']:>6} "
          f"{r['iters_per_s']:>9.1f} {r['images_per_s']:>10.0f} "
          f"{r['images_per_s_per_device']:>10.0f} "
          f"{r['compile_s']:>9.2f} {_num(r['flops_per_iter'], 1e9, 10, 3)} "
          f"{_num(r['flops_per_s'], 1e9, 8, 1)} {r['matmul_flops_per_s'] / 1e9:>14.1f} "
          f"{_num(r['flops_ratio'], 1, 6, 3)}" for r in records]
  return "\n".join([header, *rows])


def main(argv):
  if len(argv) > 1:
    print(f"{PROG}: error: unexpected arguments {argv[1:]}", file=sys.stderr)
    return 2
  from genjax.core import bench  # imports jax: after flag checks, so a bad flag fails at once
  from genjax.core.errors import GenjaxError
  from genjax.gan.bench import benchmark_gan, random_images

  config = get_config(FLAGS.recipe)
  if FLAGS.recipe == "mlp" or FLAGS["d_update"].present:
    config.d_update = FLAGS.d_update
  print(bench.device_info(), flush=True)
  images = random_images()  # on device once, shared by every batch size
  records = []
  for dtype in FLAGS.dtypes:
    for text in FLAGS.batch_sizes:
      try:
        records.append(benchmark_gan(
            config, _batch_size(text), None, images, seconds=FLAGS.seconds,
            matmul_n=FLAGS.matmul_n, num_devices=FLAGS.num_devices, compute_dtype=dtype))
      except GenjaxError as e:  # e.g. a batch the mesh cannot split
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
      print(f"{dtype} batch {text}: {records[-1]['iters_per_s']:.1f} it/s", file=sys.stderr,
            flush=True)
  print(_table(records))
  if FLAGS.json:
    try:
      with open(FLAGS.json, "w") as f:
        json.dump(records, f, indent=1)
    except OSError as e:
      print(f"{PROG}: error: cannot write {FLAGS.json}: {e}", file=sys.stderr)
      return 1
  return 0


if __name__ == "__main__":
  app.run(main, flags_parser=_parse_flags)
