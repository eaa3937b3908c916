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
  # an empty line is skipped in its place, and said so once
  (tmp_path / "gaps.txt").write_text("dull and tedious\n\n  \nA gorgeous, witty film!\n")
  gaps = run("classify_text.py", f"--workdir={workdir}", f"--input={tmp_path / 'gaps.txt'}")
  assert gaps.returncode == 0, gaps.stderr
  rows_with_gaps = [json.loads(line) for line in gaps.stdout.splitlines()]
  assert [r.get("skipped", False) for r in rows_with_gaps] == [False, True, True, False]
  assert rows_with_gaps[1] == {"text": "", "label": None, "p_positive": None, "skipped": True}
  assert [rows_with_gaps[i] for i in (0, 3)] == rows[:2]
  notes = [line for line in gaps.stderr.splitlines() if "skipped" in line]
  assert len(notes) == 1 and "skipped 2 lines without words" in notes[0]


def test_bad_input_is_one_line_and_writes_nothing(trained_run, tmp_path, data_root):
  workdir, _ = trained_run
  (tmp_path / "in.txt").write_text("\n  \n")
  assert_one_line_error(run("classify_text.py", f"--workdir={workdir}",
                            f"--input={tmp_path / 'in.txt'}", f"--out={tmp_path / 'o.jsonl'}"),
                        "in.txt: no words to classify")
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



SIZES = ((6, "short"), (15, "medium"), (10**9, "long"))  # tokens at most, class


def write_sizes(path, sentences, label=None) -> None:
  """A TSV of sentences labelled by their length (SIZES), the label column ('size') first."""
  def size(tokens):
    return next(name for most, name in SIZES if len(tokens) <= most)
  path.write_text("size\treview\n" + "".join(
      f"{size(s) if label is None else label}\t{' '.join(s)}\n" for s in sentences))


@pytest.fixture(scope="module")
def three_class_run(tmp_path_factory, data_root):
  from genjax.data import sst2
  folder = tmp_path_factory.mktemp("sizes")
  write_sizes(folder / "train.tsv", sst2.load_split("train", data_root).sentences[:3000])
  write_sizes(folder / "dev.tsv", sst2.load_split("dev", data_root).sentences)
  args = [f"--config.train_file={folder / 'train.tsv'}", f"--config.dev_file={folder / 'dev.tsv'}",
          "--config.text_column=review", "--config.label_column=size"]
  return (*trained_experiment(tmp_path_factory, "text_classify.py", TINY, *args,
                              data_root=data_root), folder, args)


def test_sentences_of_three_classes_train_and_classify_text_names_them(three_class_run):
  workdir, _, _, _ = three_class_run
  result = json.loads((workdir / "eval.json").read_text())
  assert result["class_names"] == ["long", "medium", "short"]  # not integers: alphabetical
  assert len(result["confusion"]) == 3 and sum(map(sum, result["confusion"])) == 872
  out = run("classify_text.py", f"--workdir={workdir}", "--text=A gorgeous, witty film!")
  assert out.returncode == 0, out.stderr
  row = json.loads(out.stdout)
  probs = row["probabilities"]
  assert list(probs) == ["long", "medium", "short"] and sum(probs.values()) == pytest.approx(1)
  assert row["label_name"] == max(probs, key=probs.get)
  assert row["label"] == ["long", "medium", "short"].index(row["label_name"])


def test_bad_labelled_files_are_one_line_naming_file_and_column(three_class_run, tmp_path):
  _, _, folder, args = three_class_run
  new = tmp_path / "new"

  def fails(*extra):
    return run("text_classify.py", f"--workdir={new}", TINY, *args, *extra)

  assert_one_line_error(fails("--config.text_column=body"), "train.tsv: line 1: no column 'body'")
  (tmp_path / "gap.tsv").write_text("size\treview\nshort\ta film\n\ta dull film\n")
  assert_one_line_error(fails(f"--config.train_file={tmp_path / 'gap.tsv'}"),
                        "gap.tsv: line 3: empty label in column 'size'")
  write_sizes(tmp_path / "dev.tsv", [("a", "film")], label="huge")
  assert_one_line_error(fails(f"--config.dev_file={tmp_path / 'dev.tsv'}"),
                        "dev.tsv: line 2: label 'huge' in column 'size' is not one of the "
                        "training file's labels (long, medium, short)")
  assert_one_line_error(fails("--config.dev_file="), "config.dev_file")
  assert not new.exists()
