"""The sentence classifier's entry points, as a user runs them (subprocesses, real SST-2)."""

import json

import pytest

from tests.conftest import PROJECT_ROOT, assert_one_line_error, trained_experiment
from tests.conftest import run_experiment as run

pytestmark = pytest.mark.slow  # end to end on tiny runs: the full suite's tier
TINY = f"--config={PROJECT_ROOT}/genjax/configs/text_classify.py:tiny"


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, data_root):
  return trained_experiment(tmp_path_factory, "text_classify.py", TINY, data_root=data_root)


def test_train_then_classify_text_and_files(trained_run, tmp_path):
  workdir, result = trained_run
  assert "dev accuracy" in result.stdout and (workdir / "eval.json").exists()
  one = run("classify_text.py", f"--workdir={workdir}", "--text=A gorgeous, witty film!")
  assert one.returncode == 0, one.stderr
  row = json.loads(one.stdout)
  assert row["text"] == "A gorgeous, witty film!" and row["label"] in (0, 1)
  assert (row["p_positive"] > 0.5) == (row["label"] == 1)
  (tmp_path / "in.txt").write_text("dull and tedious\nA gorgeous, witty film!\nfine\n")
  out = tmp_path / "labels.jsonl"
  many = run("classify_text.py", f"--workdir={workdir}", f"--input={tmp_path / 'in.txt'}",
             f"--out={out}")
  assert many.returncode == 0, many.stderr
  rows = [json.loads(line) for line in out.read_text().splitlines()]
  assert [r["text"] for r in rows] == ["dull and tedious", "A gorgeous, witty film!", "fine"]
  assert rows[1] == row  # the same sentence, alone or among others


def test_bad_input_is_one_line_and_writes_nothing(trained_run, tmp_path, data_root):
  workdir, _ = trained_run
  (tmp_path / "in.txt").write_text("fine\n\nbad\n")
  assert_one_line_error(run("classify_text.py", f"--workdir={workdir}",
                            f"--input={tmp_path / 'in.txt'}", f"--out={tmp_path / 'o.jsonl'}"),
                        "line 2 is empty")
  assert_one_line_error(run("classify_text.py", f"--workdir={workdir}"),
                        "exactly one of --text and --input")
  assert_one_line_error(run("classify_text.py", f"--workdir={tmp_path / 'none'}", "--text=hi"),
                        "does not exist")
  (tmp_path / "data" / "sst2").mkdir(parents=True)
  (tmp_path / "data" / "sst2" / "train.tsv").write_text("text\tlabel\nfine\t1\n")
  result = run("text_classify.py", f"--workdir={tmp_path / 'new'}", TINY,
               f"--config.data_dir={tmp_path / 'data'}")
  assert_one_line_error(result, "has no 'sentence' column")
  assert not (tmp_path / "new").exists() and not (tmp_path / "o.jsonl").exists()

