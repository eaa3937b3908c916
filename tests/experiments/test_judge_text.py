"""The two halves together: a tiny label-conditioned language model judged by a tiny classifier,
as a user runs them (subprocesses, real SST-2)."""

import json

import pytest

from genjax.data import sst2
from genjax.text.corpora import LABEL_CHARS, NULL_LABEL, labelled_lines, readable
from tests.conftest import PROJECT_ROOT, assert_one_line_error, snapshot, trained_experiment
from tests.conftest import run_experiment as run

pytestmark = pytest.mark.slow  # end to end on tiny runs: the full suite's tier
CONFIGS = PROJECT_ROOT / "genjax" / "configs"


def test_a_labelled_line_is_the_label_then_the_sentence():
  split = sst2.Split(sentences=(("a", "fine", "film"), ("dull",)), labels_N=[1, 0], path="-")
  assert labelled_lines(split) == f"{LABEL_CHARS[1]}a fine film\n{LABEL_CHARS[0]}dull\n"


def test_a_reader_sees_no_label_characters_and_other_text_keeps_them():
  text = f"\n{LABEL_CHARS[1]}a fine film\n{NULL_LABEL}dull{LABEL_CHARS[0]}\n"
  assert readable(text, "sst2_conditional") == "\na fine film\ndull\n"
  assert readable(text, "tiny_shakespeare") == text  # a text file's own characters stay


@pytest.fixture(scope="module")
def runs(tmp_path_factory, data_root):
  lm, _ = trained_experiment(tmp_path_factory, "text_lm.py",
                             f"--config={CONFIGS / 'text_lm.py'}:sst2_conditional,tiny",
                             data_root=data_root)
  classifier, _ = trained_experiment(tmp_path_factory, "text_classify.py",
                                     f"--config={CONFIGS / 'text_classify.py'}:tiny",
                                     data_root=data_root)
  return lm, classifier


def test_judging_reports_the_share_labelled_as_asked(runs, tmp_path, data_root):
  lm, classifier = runs
  out = tmp_path / "judged.json"
  result = run("judge_text.py", f"--lm_workdir={lm}", f"--classifier_workdir={classifier}",
               "--num=3", "--guidance=2", f"--out={out}", data_root=data_root)
  assert result.returncode == 0, result.stderr
  report = json.loads(out.read_text())
  assert json.loads(result.stdout) == report
  assert set(report["labels"]) == {"0", "1"} and report["num_per_label"] == 3
  assert report["guidance"] == 2.0 and 0.0 <= report["lm_bayes_accuracy"] <= 1.0
  assert 0.0 <= report["as_asked"] <= 1.0 and 0.0 <= report["dev_as_labelled"] <= 1.0
  examples = "".join(e for label in report["labels"].values() for e in label["examples"])
  assert not set(examples) & set(LABEL_CHARS + (NULL_LABEL,))


def test_samples_a_reader_sees_hold_no_label_characters(runs):
  lm, _ = runs
  labels = set(LABEL_CHARS + (NULL_LABEL,))
  samples = [p.read_text() for p in (lm / "samples").iterdir()]
  assert samples and all(len(s) > 1 and not set(s) & labels for s in samples)
  # a prompt asking for a label: the label steers the model, the reader sees the sentence
  result = run("generate_text.py", f"--workdir={lm}", f"--prompt=\n{LABEL_CHARS[1]}a fine",
               "--num_chars=40")
  assert result.returncode == 0, result.stderr
  assert result.stdout.startswith("\na fine") and not set(result.stdout) & labels


def test_a_model_of_another_text_is_one_line(runs, tmp_path, data_root):
  _, classifier = runs
  before = snapshot(tmp_path)
  assert_one_line_error(run("judge_text.py", f"--lm_workdir={classifier}",
                            f"--classifier_workdir={classifier}", "--num=2",
                            data_root=data_root), "--lm_workdir", "holds a 'classifier' run")
  assert_one_line_error(run("judge_text.py", f"--lm_workdir={tmp_path / 'none'}",
                            f"--classifier_workdir={classifier}", data_root=data_root),
                        "--lm_workdir", "is not a folder")
  assert snapshot(tmp_path) == before
