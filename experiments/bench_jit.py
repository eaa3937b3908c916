"""Speed of every family's jitted training chunk, and what bounds it.

Run:  python experiments/bench_jit.py                                # the tutorial GAN, batch 32-4096
      python experiments/bench_jit.py --models all --batch_sizes 32  # every family and recipe
      python experiments/bench_jit.py --models tutorial,keras --batch_sizes 32     # against Keras
      python experiments/bench_jit.py --models diffusion --seconds 10  # + samples/s at 8-128 NFE
      python experiments/bench_jit.py --models tutorial,cgan,vae,judge,transformer,lstm,bilstm \
          [--batch_sizes 32,256] [--dtypes float32,bfloat16] [--seconds 5] [--json runs/b.json]

`--models tutorial,keras` also times the tutorial's own Keras code (genjax.gan.keras_reference)
and prints genjax's speedup over it, both measured in the same run. Likewise `--models
transformer,transformer_adamw,torch_transformer,lstm,torch_lstm --dtypes float32,bfloat16`
times the language models' PyTorch eager twins (genjax.text.torch_reference, AdamW; bfloat16
through torch.autocast) and prints genjax's ratio over them per dtype: `transformer_adamw` is
the default Transformer with the twin's recipe (AdamW, no weight average), `transformer` the
default's own (Muon, weight average), its cost beside it. The twins need the `bench` extra
(torch); without it their rows say so in one line.

On a CPU each row runs on its recipe's CPU devices (config.cpu_devices, the text Transformer's
2: the CPU split into devices sharing its cores, the batch split over them; 1 where a recipe
has none); --cpu_devices splits it for every row, and --num_devices sets the mesh. Each
record compiles once, then times about --seconds of steps (3 dispatches of at least
genjax.core.bench.MIN_TIMED_STEPS steps, median), on the real data (GENJAX_DATA_DIR).
Right after it, the device's dense float32 matmul FLOP/s (and, for a bfloat16 record, the
bfloat16 matmul's, products summed in float32) and its memory bandwidth (a STREAM-like triad)
are measured, and the step is placed on the roofline: XLA's FLOPs and bytes of one step, the
kernels it launches, the roofline time max(FLOPs / matmul FLOP/s, bytes / bandwidth), the
measured time, their ratio, the bound that binds (compute, memory, or neither: per-kernel
overhead), and the step's FLOP/s over the matmul's ("of mm"). "dots ms" is the step's own
matmuls, each timed alone at its shapes on this device (genjax.core.bench.dots_alone), one
after another: what they cost however lean the rest of the step, and "dots/meas" their share of
the measured step; a share outside 0.2-2 is reported as a warning (the machine was busy while
one of the two was timed). Figures: docs/results.md.
"""

import json
import os
import sys

try:
  import genjax  # noqa: F401  (installed, or run from the project root)
except ImportError:  # a checkout run as `python experiments/bench_jit.py` from anywhere
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags

from genjax.configs import (classifier, diffusion_mnist, gan_mnist, text_classify, text_lm,
                            vae_mnist)

PROG = "bench_jit.py"
# GAN models take --batch_sizes and --d_update. Others: name -> (a Family, timed by the core's
# benchmark_family, or a benchmark function of the same arguments; its config; what a step's
# batch holds).
GAN_MODELS = {"tutorial": "mlp", **{r: r for r in gan_mnist.RECIPES if r != "mlp"}}
OTHER_MODELS = {
    "vae": ("genjax.vae.family:VAEFamily", lambda: vae_mnist.get_config(), "image"),
    "judge": ("genjax.judge.train:JudgeFamily", lambda: classifier.get_config("mnist"), "image"),
    "transformer": ("genjax.text.lm:LMFamily", lambda: text_lm.get_config(), "token"),
    "transformer_adamw": ("genjax.text.lm:LMFamily", lambda: _adamw(text_lm.get_config()),
                          "token"),
    "lstm": ("genjax.text.lm:LMFamily", lambda: text_lm.get_config("lstm"), "token"),
    # One program per sentence-length bucket: timed bucket by bucket, weighted by its steps.
    "bilstm": ("genjax.text.classify_bench:benchmark_classifier",
               lambda: text_classify.get_config(), "sentence"),
    # The default recipe's training step, then samples/s at 8, 32 and 128 evaluations.
    "diffusion": ("genjax.diffusion.bench:benchmark_diffusion",
                  lambda: diffusion_mnist.get_config(), "image"),
}
# The tutorial's own Keras code (TensorFlow), timed in a process of its own: the baseline.
BASELINES = ("keras",)
# The language models' PyTorch eager twins, each in a process of its own: name -> genjax's.
TORCH_TWINS = {"torch_transformer": "transformer", "torch_lstm": "lstm"}
# genjax's rows held against each twin (same model and FLOPs).
TWIN_OF = {"transformer": "torch_transformer", "transformer_adamw": "torch_transformer",
           "lstm": "torch_lstm"}
ALL = [*GAN_MODELS, *OTHER_MODELS, *BASELINES, *TORCH_TWINS]
NOTES = []  # one line per model a run could not time, printed after the table

flags.DEFINE_list("models", ["tutorial"], f"Models to time, or 'all': {', '.join(ALL)}.")
flags.DEFINE_list("batch_sizes", ["32", "256", "4096"], "Batch sizes of the GAN models.")
flags.DEFINE_enum("d_update", "keras", ["keras", "joint"],
                  "The tutorial's D update: its two, or one joint (recipes keep their own).")
flags.DEFINE_list("dtypes", ["float32"], "Compute dtypes to time: float32, bfloat16 or both.")
flags.DEFINE_integer("num_devices", 0, "Devices on the data mesh (0: all).")
flags.DEFINE_integer("cpu_devices", 0,
                     "Split the CPU into this many devices before JAX starts, each row on all "
                     "of them (0: the most config.cpu_devices among the rows' recipes, each row "
                     "on its own recipe's count, 1 where it has none).")
flags.DEFINE_float("seconds", 5.0, "Timed seconds per record (after compile).")
flags.DEFINE_string("json", None, "Write the records here as a JSON list.")
flags.DEFINE_integer("matmul_n", 2048, "Size of the reference square matmul.")
flags.DEFINE_bool("dots_alone", True,
                  "Also time each step's dots alone (the 'dots ms' column).")
flags.DEFINE_integer("bandwidth_mb", 256, "Size of each array of the bandwidth triad, in MB.")
FLAGS = flags.FLAGS


def _positive_ints(values) -> bool:
  for text in values or []:
    if not text.isdigit() or int(text) == 0:
      raise flags.ValidationError(f"--batch_sizes: {text!r} is not a positive integer")
  return bool(values)


flags.register_validator("batch_sizes", _positive_ints, message="--batch_sizes needs a size")
flags.register_validator("models", lambda ms: bool(ms) and set(ms) <= {*ALL, "all"},
                         message=f"--models takes 'all' or names among {', '.join(ALL)}")
flags.register_validator("dtypes", lambda ds: bool(ds) and set(ds) <= {"float32", "bfloat16"},
                         message="--dtypes takes float32 and/or bfloat16")
flags.register_validator("num_devices", lambda n: n >= 0, message="--num_devices must be >= 0")
flags.register_validator("cpu_devices", lambda n: n >= 0, message="--cpu_devices must be >= 0")
flags.register_validator("seconds", lambda s: s > 0, message="--seconds must be positive")
flags.register_validator("matmul_n", lambda n: n > 0, message="--matmul_n must be positive")
flags.register_validator("bandwidth_mb", lambda n: n > 0,
                         message="--bandwidth_mb must be positive")
flags.register_validator(
    "json", lambda p: p is None or (not os.path.isdir(p) and os.access(
        os.path.dirname(os.path.abspath(p)), os.W_OK)),
    message="--json path is not writable")  # fail before minutes of benchmarking, not after


def _adamw(config):
  """The PyTorch twin's recipe: AdamW on every parameter, no moving average of the weights."""
  config.update(optimizer="adamw", ema_decay=0.0)
  return config


def _parse_flags(argv):
  """absl's parse error spans two lines; a bad flag here is one line on stderr and exit 2."""
  try:
    return FLAGS(argv)
  except flags.Error as e:
    print(f"{PROG}: error: {e}", file=sys.stderr)
    sys.exit(2)


def _limits(bench, dtype: str) -> dict:
  """The device's limits, measured now: on a shared host the speed available drifts, so each
  record is compared with figures taken beside it. A bfloat16 record gets bfloat16's matmul
  too (about 2x float32's on CPUs with AVX512_BF16), and its roofline is held against it."""
  limits = {"matmul_flops_per_s": bench.matmul_flops_per_s(FLAGS.matmul_n),
            "bytes_per_s": bench.memory_bandwidth(FLAGS.bandwidth_mb)}
  if dtype == "bfloat16":
    limits["matmul_bf16_flops_per_s"] = bench.matmul_flops_per_s(FLAGS.matmul_n,
                                                                 dtype="bfloat16")
  return limits


def _records(bench):
  """Every record the flags ask for, one at a time."""
  import importlib

  from genjax.gan.bench import benchmark_gan

  models = ALL if "all" in FLAGS.models else FLAGS.models
  for dtype in FLAGS.dtypes:
    for name in models:
      if name in BASELINES:
        if dtype == "float32":
          yield from _keras_records(bench)
        continue
      if name in TORCH_TWINS:
        yield from _torch_records(bench, name, dtype)
        continue
      if name in GAN_MODELS:
        config = gan_mnist.get_config(GAN_MODELS[name])
        if name == "tutorial":
          config.d_update = FLAGS.d_update
        for batch in FLAGS.batch_sizes:
          record = benchmark_gan(config, int(batch), seconds=FLAGS.seconds,
                                 num_devices=_mesh_devices(config), compute_dtype=dtype,
                                 limits=_limits(bench, dtype), time_dots=FLAGS.dots_alone)
          yield {"model": name, **record}
        continue
      path, make_config, item = OTHER_MODELS[name]
      module, cls = path.split(":")
      config = make_config()
      config.update(num_devices=_mesh_devices(config), progress=False)
      if "compute_dtype" in config:
        config.compute_dtype = dtype
      elif dtype != "float32":
        continue  # a float32-only model
      target = getattr(importlib.import_module(module), cls)
      if isinstance(target, type):  # a Family
        record = bench.benchmark_family(target, config, FLAGS.seconds,
                                        limits=_limits(bench, dtype), time_dots=FLAGS.dots_alone)
      else:
        record = target(config, FLAGS.seconds, limits=_limits(bench, dtype),
                        time_dots=FLAGS.dots_alone)
      batch = config.batch_size
      per_step = batch * config.context if item == "token" else batch
      yield {"model": name, "batch_size": batch, "compute_dtype": dtype, "item": item,
             "iters_per_s": record["steps_per_s"], "items_per_s": record["steps_per_s"]
             * per_step, "flops_per_iter": record["flops"], **record}


def _recipe(name: str):
  """The config a row of --models times (a PyTorch twin: its genjax model's), or None."""
  if name in GAN_MODELS:
    return gan_mnist.get_config(GAN_MODELS[name])
  name = TORCH_TWINS.get(name, name)
  return OTHER_MODELS[name][1]() if name in OTHER_MODELS else None


def cpu_split() -> int:
  """The CPU devices this run splits into: --cpu_devices, else the most any row's recipe asks
  for (config.cpu_devices; 1 where a recipe has none)."""
  models = ALL if "all" in FLAGS.models else FLAGS.models
  configs = [c for c in map(_recipe, models) if c is not None]
  return FLAGS.cpu_devices or max([c.get("cpu_devices", 1) for c in configs], default=1)


def _mesh_devices(config) -> int:
  """A row's devices: --num_devices; else on a CPU --cpu_devices, else its recipe's
  config.cpu_devices (1 where it has none), so a split made for one row leaves the others as
  their recipes run; elsewhere all devices (0)."""
  import jax

  if FLAGS.num_devices or jax.default_backend() != "cpu":
    return FLAGS.num_devices
  return min(FLAGS.cpu_devices or config.get("cpu_devices", 1), jax.device_count())


def _keras_records(bench):
  """The tutorial's Keras loop at each batch size, its FLOPs counted as genjax's MLP step."""
  from genjax.gan.bench import analytic_step_flops
  from genjax.gan.keras_reference import benchmark_in_subprocess

  for batch in map(int, FLAGS.batch_sizes):
    record = benchmark_in_subprocess(batch, FLAGS.seconds)
    record.update(flops=analytic_step_flops(gan_mnist.get_config(), batch), bytes=None,
                  kernels=None, compile_s=record["warmup_s"], mesh_devices=1,
                  compute_dtype="float32")
    yield bench.place_on_roofline(record, _limits(bench, "float32"), 1 / record["iters_per_s"])


def _torch_records(bench, name: str, dtype: str):
  """A PyTorch twin at the genjax model's config (its AdamW recipe), or a note without torch."""
  from genjax.text import lm_bench

  missing = lm_bench.torch_missing()
  if missing:
    note = f"{name}: not timed: {missing}"
    NOTES.extend([] if note in NOTES else [note])
    return
  from genjax.core.errors import GenjaxError

  config = OTHER_MODELS[TORCH_TWINS[name]][1]()
  try:
    record = lm_bench.torch_record(config, dtype, FLAGS.seconds)
  except GenjaxError as e:  # PyTorch cannot run this model here (its error's last line)
    NOTES.append(f"{name} {dtype}: not timed: {e}")
    return
  yield {"model": name, **bench.place_on_roofline(record, _limits(bench, dtype),
                                                  1 / record["iters_per_s"])}


def torch_ratios(records) -> list[str]:
  """genjax's language models over their PyTorch twins, dtype by dtype, both from this run."""
  twins = {(r["model"], r["compute_dtype"]): r["iters_per_s"] for r in records
           if r["model"] in TORCH_TWINS}
  lines = [f"{r['model']} over {TWIN_OF[r['model']]}, {r['compute_dtype']}: "
           f"{r['iters_per_s'] / twins[TWIN_OF[r['model']], r['compute_dtype']]:.2f}x"
           for r in records if (TWIN_OF.get(r["model"]), r["compute_dtype"]) in twins]
  if lines and any(r["compute_dtype"] == "bfloat16" for r in records) and not _native_bf16():
    lines.append("bfloat16: this CPU has no AVX512_BF16 or AMX; both frameworks emulate it")
  return lines


def _native_bf16() -> bool:
  """Whether the CPU multiplies bfloat16 natively (Linux's flags; elsewhere assumed so)."""
  try:
    with open("/proc/cpuinfo") as f:
      flags_text = f.read()
  except OSError:
    return True
  return "avx512_bf16" in flags_text or "amx_bf16" in flags_text


def speedups(records) -> list[str]:
  """genjax's tutorial step over the Keras loop, batch by batch, both measured in this run."""
  keras = {r["batch_size"]: r["iters_per_s"] for r in records if r["model"] == "keras"}
  return [f"tutorial over keras, batch {r['batch_size']}: "
          f"{r['iters_per_s'] / keras[r['batch_size']]:.1f}x"
          for r in records if r["model"] == "tutorial" and r["compute_dtype"] == "float32"
          and r["batch_size"] in keras]


def sampling_rates(records) -> list[str]:
  """A diffusion record's samples per second at each number of function evaluations."""
  return [f"{r['model']} samples/s ({r['sampler']}, guidance {r['guidance']:g}): " + ", ".join(
      f"{rate:.1f} at {nfe} NFE" for nfe, rate in r["samples_per_s"].items())
      for r in records if "samples_per_s" in r]


def _num(value, scale: float, width: int, digits: int) -> str:
  """`value / scale` right-aligned, or '-' where it was not measured (None)."""
  return f"{'-':>{width}}" if value is None else f"{value / scale:>{width}.{digits}f}"


def table(records) -> str:
  header = (f"{'model':>17} {'dtype':>8} {'dev':>3} {'batch':>5} {'it/s':>8} {'items/s':>10} "
            f"{'compile s':>9} {'GFLOP/it':>8} {'MB/it':>7} {'kernels':>7} {'roof ms':>7} "
            f"{'meas ms':>7} {'x roof':>6} {'bound':>8} {'GFLOP/s mm':>10} {'of mm':>5} "
            f"{'GB/s':>6} {'dots ms':>7} {'dots/meas':>9}")
  rows = [f"{r['model']:>17} {r['compute_dtype']:>8} {r['mesh_devices']:>3} {r['batch_size']:>5} "
          f"{r['iters_per_s']:>8.1f} {r['items_per_s']:>10.0f} {r['compile_s']:>9.1f} "
          f"{_num(r['flops'], 1e9, 8, 3)} {_num(r['bytes'], 1e6, 7, 1)} "
          f"{_num(r['kernels'], 1, 7, 0)} "
          f"{r['roofline_s'] * 1e3:>7.3f} {1e3 / r['iters_per_s']:>7.3f} "
          f"{_num(r['measured_over_roofline'], 1, 6, 2)} {r['bound']:>8} "
          f"{r['peak_flops_per_s'] / 1e9:>10.1f} {_num(r['of_matmul'], 1, 5, 2)} "
          f"{r['bytes_per_s'] / 1e9:>6.1f} {_num(r.get('dots_alone_s'), 1e-3, 7, 3)} "
          f"{_num(r.get('dot_share'), 1, 9, 2)}"
          for r in records]
  return "\n".join([header, *rows])


def main(argv):
  if len(argv) > 1:
    print(f"{PROG}: error: unexpected arguments {argv[1:]}", file=sys.stderr)
    return 2
  from genjax.core import bench  # imports jax: after flag checks, so a bad flag fails at once
  from genjax.core.errors import GenjaxError
  from genjax.core import sharding

  sharding.split_cpu(cpu_split())  # before JAX starts

  print(bench.device_info(), flush=True)
  records = []
  try:
    for record in _records(bench):
      records.append(record)
      name = f"{record['model']} {record['compute_dtype']} batch {record['batch_size']}"
      print(f"{name}: {record['iters_per_s']:.3g} it/s", file=sys.stderr, flush=True)
      warning = bench.implausible_dots(record)
      if warning:
        print(f"warning: {name}: {warning}", file=sys.stderr, flush=True)
  except GenjaxError as e:  # a batch the mesh cannot split, missing data, no Keras
    print(f"{PROG}: error: {e}", file=sys.stderr)
    return 2
  print(table(records))
  print("\n".join(speedups(records) + torch_ratios(records) + sampling_rates(records)
                  + NOTES))
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
