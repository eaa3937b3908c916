"""experiments/device_checks.sh: the GPU script refuses an unknown part before touching anything.

Its parts run end to end on the CPU with TINY=1 (about 5 minutes on 2 cores, so not in the
suite): `TINY=1 PYTHON=.venv/bin/python bash experiments/device_checks.sh all`.
"""
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "experiments" / "device_checks.sh"


def test_unknown_part_is_one_line_error(tmp_path):
  out = tmp_path / "out"
  proc = subprocess.run(["bash", str(SCRIPT), "bench,warp"], capture_output=True, text=True,
                        env={"OUT": str(out), "WORK": str(tmp_path / "work"), "PATH": "/usr/bin:/bin"},
                        timeout=60)
  assert proc.returncode == 2
  assert proc.stderr.strip() == ("device_checks.sh: unknown part 'warp' "
                                 "(bench, mnist, fashion, vae, all)")
  assert not out.exists()  # nothing written, nothing benchmarked


def test_script_parses():
  assert subprocess.run(["bash", "-n", str(SCRIPT)], timeout=30).returncode == 0
