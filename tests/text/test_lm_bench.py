"""bench_jit.py's rows for the language models' PyTorch twins: the ratios it prints, and the one
line it prints where torch is not installed (these run without torch)."""

import importlib.util
import subprocess
import sys

from tests.conftest import PROJECT_ROOT

SCRIPT = PROJECT_ROOT / "experiments" / "bench_jit.py"


def bench_jit():
  spec = importlib.util.spec_from_file_location("bench_jit", SCRIPT)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_each_genjax_row_is_held_against_its_twin_of_the_same_dtype():
  rows = [("transformer", "float32", 3.0), ("transformer_adamw", "float32", 4.0),
          ("torch_transformer", "float32", 2.0), ("lstm", "bfloat16", 1.0),
          ("torch_lstm", "bfloat16", 4.0), ("lstm", "float32", 9.0)]  # no float32 twin
  records = [{"model": m, "compute_dtype": d, "iters_per_s": r} for m, d, r in rows]
  lines = bench_jit().torch_ratios(records)
  assert lines[:3] == ["transformer over torch_transformer, float32: 1.50x",
                       "transformer_adamw over torch_transformer, float32: 2.00x",
                       "lstm over torch_lstm, bfloat16: 0.25x"]
  assert all("float32" not in line for line in lines if line.startswith("lstm"))


def test_without_torch_the_twins_rows_say_so_in_one_line():
  # sys.modules["torch"] = None: the import machinery's own "not importable"
  code = ("import runpy, sys; sys.modules['torch'] = None; "
          f"sys.argv = ['bench_jit.py', '--models', 'torch_lstm', '--dtypes', 'float32,bfloat16']; "
          f"runpy.run_path({str(SCRIPT)!r}, run_name='__main__')")
  proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                        timeout=300, cwd=PROJECT_ROOT)
  assert proc.returncode == 0, proc.stderr
  notes = [line for line in proc.stdout.splitlines() if "torch_lstm" in line]
  assert notes == ["torch_lstm: not timed: PyTorch is not installed: pip install "
                   "'genjax[bench]'"]



def test_each_row_runs_on_its_recipes_cpu_devices():
  # A process split in two for the Transformer leaves the tutorial GAN and the LSTM on one
  # device each; --cpu_devices puts every row on the split; --num_devices sets the mesh.
  code = f"""
import os, runpy
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
m = runpy.run_path({str(SCRIPT)!r})
rows = ["tutorial", "transformer", "torch_lstm", "lstm"]
for argv in ([], ["--cpu_devices=2"], ["--num_devices=1"]):
  m["FLAGS"].unparse_flags()
  m["FLAGS"](["bench_jit.py", "--models=" + ",".join(rows), *argv])
  print(m["cpu_split"](), *[m["_mesh_devices"](m["_recipe"](r)) for r in rows])
"""
  proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                        timeout=300, cwd=PROJECT_ROOT)
  assert proc.returncode == 0, proc.stderr
  assert proc.stdout.splitlines() == ["2 1 2 1 1", "2 2 2 2 2", "2 1 1 1 1"]
