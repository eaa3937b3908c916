"""The README's commands work as printed: every bash block of "Two commands on a fresh machine"
and "A tour" runs in a fresh copy of the project's layout (the checkout beside ../shared/data),
command after command, each on its tiny setting, and writes what the README says it writes.

A command runs as the README prints it, but for these substitutions, so the tour takes minutes
instead of hours:

- a training entry point gets its config's tiny variant: `--config=...:NAME` becomes
  `:NAME,tiny`, and a command without `--config=` gets `--config=genjax/configs/X.py:tiny`
  (which turns the judge off: a GAN run whose README comment promises the judge's FID keeps it
  on at its end);
- step counts shrink 100-fold: `--config.num_steps`, `--config.eval_interval`,
  `--config.checkpoint_interval`, `--config.print_interval`, `--steps A,B`, `--num_steps`;
- sample counts shrink 10-fold: `--num`, `--config.eval_num`, `--pool_per_class`, `--num_chars`;
- the benchmark times 0.05 s per record at batch 8, against a 256-wide matmul and an 8 MB triad.

The blocks share no `runs/` path (checked), so each block's commands run in order while two
blocks run at a time. Lines not run, each for the reason SKIPPED gives.
"""

import concurrent.futures
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DATA_ROOT, PROJECT_ROOT

SECTIONS = ("Two commands on a fresh machine", "A tour")
SKIPPED = {
    "pip install": "the test runs in the environment that install made",
    "python -m pytest": "the suite is what runs this test",
    # Its notebooks are checked to be all of notebooks/ (all of which the notebook test runs),
    # and `jupyter execute` to be installed.
    "jupyter execute": "tests/notebooks/test_notebooks.py executes the same notebooks with "
                       "GENJAX_NOTEBOOK_TINY=1 through nbclient, which `jupyter execute` runs",
}
# The training entry points (those taking --config) and their configs.
CONFIGS = {"gan_mnist.py": "gan_mnist", "vae_mnist.py": "vae_mnist", "text_lm.py": "text_lm",
           "text_classify.py": "text_classify", "train_classifier.py": "classifier",
           "diffusion_mnist.py": "diffusion_mnist"}
STEP_FLAGS = ("--config.num_steps=", "--config.eval_interval=", "--config.checkpoint_interval=",
              "--config.print_interval=", "--steps ", "--num_steps ")
COUNT_FLAGS = ("--num ", "--config.eval_num=", "--pool_per_class ", "--num_chars ")
JUDGED = "the done: line ends with the judge's FID"  # a comment that keeps the judge on
# What a command writes in its --workdir, beyond what its comment in the README names.
WRITES = {"gan_mnist.py": ("checkpoints", "metrics.jsonl", "config.json", "loss_curve.png"),
          "vae_mnist.py": ("checkpoints", "metrics.jsonl", "eval.json"),
          "text_lm.py": ("checkpoints", "metrics.jsonl", "eval.json"),
          "text_classify.py": ("checkpoints", "metrics.jsonl", "eval.json"),
          "fit_drs.py": ("drs",)}


def readme_blocks() -> list[list[tuple[str, str]]]:
  """Each bash block of SECTIONS as [(the comment lines above a command, the command)], in the
  README's order; backslash-continued lines joined."""
  text = (PROJECT_ROOT / "README.md").read_text()
  blocks = []
  for title in SECTIONS:
    section = text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]
    for block in re.findall(r"```bash\n(.*?)```", section, re.DOTALL):
      commands, comment = [], ""
      for line in block.replace("\\\n", " ").splitlines():
        line = " ".join(line.split())
        if line.startswith("#"):
          comment += line + "\n"
        elif line:
          commands.append((comment, line))
          comment = ""
      blocks.append(commands)
  return blocks


def scale(command: str, flag: str, divisor: int) -> str:
  """Every value of `flag` (`--name=` or `--name `) divided by `divisor` (at least 1; lists
  element-wise)."""
  def shrink(match):
    values = [str(max(1, int(v) // divisor)) if int(v) else "0"
              for v in match.group(2).split(",")]
    return match.group(1) + ",".join(values)
  return re.sub(rf"({re.escape(flag)})(\d+(?:,\d+)*)\b", shrink, command)


def script_of(command: str) -> str:
  found = re.search(r"experiments/(\w+\.py)", command)
  return found.group(1) if found else ""


def tiny(command: str, comment: str = "") -> str:
  """The command on its tiny setting (the substitutions of this module's docstring)."""
  script = script_of(command)
  if script in CONFIGS:
    if "--config=" in command:
      command = re.sub(r"(--config=\S+:\w+)", r"\1,tiny", command)
    else:
      command = command.replace(f"experiments/{script}", f"experiments/{script} "
                                f"--config=genjax/configs/{CONFIGS[script]}.py:tiny")
    if JUDGED in comment and "--config.eval_interval=" not in command:
      command += " --config.eval_interval=5000"  # the default's (shrunk below): judged at the end
  for flag in STEP_FLAGS:
    command = scale(command, flag, 100)
  for flag in COUNT_FLAGS:
    command = scale(command, flag, 10)
  if script == "bench_jit.py":
    command = re.sub(r"--seconds \S+", "--seconds 0.05", command)
    command = re.sub(r"--batch_sizes \S+", "--batch_sizes 8", command)
    command += " --matmul_n 256 --bandwidth_mb 8"
  return command


def workdir_of(command: str) -> str | None:
  found = re.search(r"--workdir (\S+)", command)
  return found.group(1) if found else None


def promised_paths(comment: str, command: str) -> list[str]:
  """Paths the command must leave behind: what its comment names (`runs/x/images/`, or a bare
  `metrics.jsonl` inside its --workdir), WRITES, --out, evaluate.py's report."""
  workdir, script = workdir_of(command), script_of(command)
  paths = []
  for name in re.findall(r"[\w./-]+(?:/|\.(?:png|jsonl|json|npz))(?=[\s,;:]|$)", comment):
    paths.append(name if name.startswith("runs/") or workdir is None else f"{workdir}/{name}")
  paths += [f"{workdir}/{name}" for name in WRITES.get(script, ())]
  out = re.search(r"--out (\S+)", command)
  if out:
    paths.append(out.group(1))
  if script == "evaluate.py":
    samples = re.search(r"--samples (\S+)", command)
    paths.append(str(Path(samples.group(1)).with_suffix(".eval.json")) if samples else
                 f"{workdir}/{'eval_seeds.json' if '--seeds' in command else 'eval.json'}")
  return paths


def test_the_substitutions():
  assert tiny("python experiments/gan_mnist.py --workdir runs/a --config.num_steps=3000",
              f"# {JUDGED} and score") == (
      "python experiments/gan_mnist.py --config=genjax/configs/gan_mnist.py:tiny --workdir runs/a"
      " --config.num_steps=30 --config.eval_interval=50")
  assert tiny("python experiments/text_lm.py --config=genjax/configs/text_lm.py:minute --num 2000"
              " --steps 300,600") == ("python experiments/text_lm.py "
                                      "--config=genjax/configs/text_lm.py:minute,tiny --num 200 "
                                      "--steps 3,6")
  assert scale("--num_steps 0 --num_steps 50", "--num_steps ", 100) == \
      "--num_steps 0 --num_steps 1"
  assert promised_paths("# grids in runs/g/images/, metrics.jsonl, ckpt/; the done: line",
                        "python experiments/sample.py --workdir runs/g --out runs/s.npz") == [
      "runs/g/images/", "runs/g/metrics.jsonl", "runs/g/ckpt/", "runs/s.npz"]


def test_the_blocks_are_independent_and_every_skip_is_still_there():
  blocks = readme_blocks()
  commands = [command for block in blocks for _, command in block]
  assert any("gan_mnist.py" in c for c in commands) and any("judge_text.py" in c for c in commands)
  for skipped in SKIPPED:
    assert any(skipped in c for c in commands), f"{skipped!r} is no longer in the README"
  for script in {script_of(c) for c in commands} - {""}:  # every trainer gets its tiny setting
    takes_config = "define_config" in (PROJECT_ROOT / "experiments" / script).read_text()
    assert takes_config == (script in CONFIGS), f"{script}: add it to CONFIGS, or take it out"
  owners = {}
  for number, block in enumerate(blocks):
    for path in {p for _, c in block for p in re.findall(r"\bruns/[\w.-]+", c)}:
      assert owners.setdefault(path, number) == number, f"{path} is used by two blocks"
  notebook = next(c for c in commands if "jupyter execute" in c)
  named = {p.name for pattern in re.findall(r"notebooks/\S+\.ipynb", notebook)
           for p in (PROJECT_ROOT / "notebooks").glob(pattern.removeprefix("notebooks/"))}
  assert named == {p.name for p in (PROJECT_ROOT / "notebooks").glob("*.ipynb")}


def run_block(block, exports, checkout: Path, env: dict) -> None:
  """Runs one block's commands in order in `checkout`; asserts each exits 0, writes what it
  promises, and that a training command's done: line says whether it resumed."""
  done_lines = {}
  for comment, command in block:
    if any(skipped in command for skipped in SKIPPED) or command.startswith("export "):
      continue
    run = tiny(command, comment)
    script = "\n".join(["set -e", f"cd {shlex.quote(str(checkout))}", *exports, run])
    result = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, f"{run}\n{result.stdout[-1500:]}\n{result.stderr[-3000:]}"
    for path in promised_paths(comment, run):
      assert (checkout / path).exists(), f"{run}\ndid not write {path}"
    done = [line for line in result.stdout.splitlines() if line.startswith("done:")]
    workdir = workdir_of(run)
    if done and workdir:
      resumed = workdir in done_lines  # the same workdir again: a resume
      assert ("resumed from step" in done[0]) == resumed, f"{run}\n{done[0]}"
      assert JUDGED not in comment or "FID" in done[0], f"{run}\n{done[0]}"
      done_lines[workdir] = done[0]


@pytest.mark.slow
def test_the_tour_runs_as_printed(tmp_path):
  checkout, shared = tmp_path / "genjax", tmp_path / "shared"
  checkout.mkdir()
  shared.mkdir()
  (shared / "data").symlink_to(DATA_ROOT)
  for name in ("experiments", "genjax", "notebooks", "README.md", "pyproject.toml"):
    (checkout / name).symlink_to(PROJECT_ROOT / name)
  env = {k: v for k, v in os.environ.items() if k != "GENJAX_DATA_DIR"}
  env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}",
             PYTHONPATH=str(PROJECT_ROOT))
  help_text = subprocess.run(["jupyter", "execute", "--help"], env=env, capture_output=True,
                             text=True, timeout=60)
  assert help_text.returncode == 0 and "--inplace" in help_text.stdout, help_text.stderr[-2000:]
  jobs, exports = [], []
  for block in readme_blocks():  # a block sees the exports of the blocks before it, and its own
    exports += [command for _, command in block if command.startswith("export ")]
    jobs.append((block, list(exports)))
  with concurrent.futures.ThreadPoolExecutor(2) as pool:
    futures = [pool.submit(run_block, block, env_lines, checkout, env)
               for block, env_lines in jobs]
  failures = [str(future.exception()) for future in futures if future.exception()]
  assert not failures, "\n\n".join(failures)
