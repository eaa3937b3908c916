"""The language model's entry points, as a user runs them (subprocesses, real data)."""

import json

import pytest

from tests.conftest import PROJECT_ROOT, assert_one_line_error, trained_experiment
from tests.conftest import run_experiment as run

pytestmark = pytest.mark.slow  # end to end on tiny runs: the full suite's tier
TINY = f"--config={PROJECT_ROOT}/genjax/configs/text_lm.py:tiny"


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, data_root):
  return trained_experiment(tmp_path_factory, "text_lm.py", TINY, data_root=data_root)


def test_text_lm_trains_and_reports(trained_run):
  workdir, result = trained_run
  done = [line for line in result.stdout.splitlines() if line.startswith("done:")]
  assert len(done) == 1 and "done: 6 steps" in done[0] and "bits per character" in done[0]
  assert json.loads((workdir / "eval.json").read_text())["val_bpc"] > 0


def test_generate_and_score(trained_run, tmp_path):
  workdir, _ = trained_run
  result = run("generate_text.py", f"--workdir={workdir}", "--prompt=ROMEO:", "--num_chars=30",
               "--top_k=5")
  assert result.returncode == 0, result.stderr
  assert result.stdout.startswith("ROMEO:") and len(result.stdout.rstrip("\n")) >= 36
  out = tmp_path / "sample.txt"
  result = run("generate_text.py", f"--workdir={workdir}", "--num_chars=30", f"--out={out}")
  assert result.returncode == 0 and len(out.read_text()) == 31
  (tmp_path / "verse.txt").write_text("To be, or not to be, that is the question:\n")
  result = run("score_text.py", f"--workdir={workdir}", f"--input={tmp_path / 'verse.txt'}")
  assert result.returncode == 0, result.stderr
  assert "nats" in result.stdout and "bits per character" in result.stdout
  assert "windows: consecutive, 16 characters;" in result.stdout
  result = run("score_text.py", f"--workdir={workdir}", f"--input={tmp_path / 'verse.txt'}",
               "--stride=4")
  assert result.returncode == 0 and "windows: sliding, 16 characters, stride 4;" in result.stdout
  # a prompt past the context: all of it printed, its last 16 characters read, said once
  prompt = "To be, or not to be, that is the"  # 32 characters
  result = run("generate_text.py", f"--workdir={workdir}", f"--prompt={prompt}",
               "--num_chars=5")
  assert result.returncode == 0 and result.stdout.startswith(prompt)
  assert result.stderr.count("prompt: 32 characters, the model sees the last 16") == 1


def test_bad_input_is_one_line(trained_run, tmp_path, data_root):
  workdir, _ = trained_run
  assert_one_line_error(run("generate_text.py", f"--workdir={workdir}", "--num_chars=0"),
                        "--num_chars must be a positive integer")
  assert_one_line_error(run("generate_text.py", f"--workdir={workdir}", "--prompt=caf\u00e9"),
                        "--prompt: character 'é' at line 1, column 4")
  (tmp_path / "odd.txt").write_text("hello\nw\u00f6rld\n")
  assert_one_line_error(run("score_text.py", f"--workdir={workdir}",
                            f"--input={tmp_path / 'odd.txt'}"), "'ö' at line 2, column 2")
  for stride in ("0", "-3", "17"):
    assert_one_line_error(run("score_text.py", f"--workdir={workdir}", f"--stride={stride}",
                              f"--input={tmp_path / 'odd.txt'}"), f"--stride {stride}")
  (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
  assert_one_line_error(run("score_text.py", f"--workdir={workdir}",
                            f"--input={tmp_path / 'latin1.txt'}"), "not UTF-8")
  result = run("text_lm.py", f"--workdir={tmp_path / 'new'}", TINY, "--config.context=9000",
               data_root=data_root)
  assert_one_line_error(result, "--config.context 9000 is longer than the model's maximum")
  assert not (tmp_path / "new").exists()
