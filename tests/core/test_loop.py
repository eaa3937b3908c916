"""The core loop on a toy family: outputs, events, resume, NaN stop, Ctrl-C and refusals."""

import json

import jax
import numpy as np
import pytest

from genjax.core import checkpoint, loop, runner, sharding
from genjax.core.errors import CheckpointError, ConfigError, DataError, TrainingDiverged
from genjax.core.errors import WorkdirError
from tests.conftest import snapshot
from tests.core.toy import ToyFamily, get_config, train_toy


def final_state(workdir, config):
  family = ToyFamily(ToyFamily.validate(config), sharding.make_mesh(1))
  manager = checkpoint.open_manager(workdir)
  try:
    return checkpoint.restore_latest(manager, jax.eval_shape(family.init_state),
                                     checkpoint.make_record("toy", config), family.resumable)
  finally:
    manager.close()


def test_a_run_writes_its_outputs_and_learns(tmp_path):
  summary = train_toy(get_config(), tmp_path / "run")
  run = tmp_path / "run"
  rows = loop.MetricsLog.read(run / "metrics.jsonl")
  train_rows = [r for r in rows if "kind" not in r]
  assert [r["step"] for r in train_rows] == list(range(1, 13))
  assert [r["step"] for r in rows if r.get("kind") == "eval"] == [5, 10, 12]
  assert train_rows[-1]["loss"] < 0.5 * train_rows[0]["loss"]
  assert sorted(int(p.stem) for p in (run / "events").glob("*.txt")) == [0, 5, 10, 12]
  assert sorted(int(p.name) for p in (run / "checkpoints").iterdir()) == [4, 8, 12]
  assert json.loads((run / "config.json").read_text())["num_steps"] == 12
  assert summary["step"] == 12 and summary["start_step"] == 0 and summary["w"] > 0.5
  assert summary["final"]["step"] == 12


def test_chunks_stop_at_every_event_and_the_dispatch_cap():
  assert runner.next_chunk_length(0, 20, 4, (5, 7)) == 4
  assert runner.next_chunk_length(4, 20, 4, (5, 7)) == 1
  assert runner.next_chunk_length(5, 20, 4, (5, 7)) == 2
  assert runner.next_chunk_length(18, 20, 100, (0, 7)) == 2
  assert runner.next_chunk_length(14, 20, 100, (0, 7)) == 6


class StoppingToy(ToyFamily):
  """A toy whose chunks must also end at steps 3 and 7 (not periodic)."""

  def chunk_limit(self, step):
    return next(s for s in (3, 7, 10**9) if s > step) - step

  def finish(self, run, state):
    return {**super().finish(run, state), "chunk_ends": self.events_seen}


def test_a_family_may_end_chunks_where_it_needs_and_nothing_else_changes(tmp_path):
  config = get_config()
  config.sample_interval = 100
  stopped = loop.train(StoppingToy, config, tmp_path / "stopped")
  assert stopped["chunk_ends"] == [3, 4, 7, 8, 12]  # checkpoints every 4, and 3 and 7
  plain = train_toy(config, tmp_path / "plain")
  assert (stopped["w"], stopped["b"]) == (plain["w"], plain["b"])


def test_resume_is_bit_identical(tmp_path):
  whole = train_toy(get_config(), tmp_path / "whole")
  half = get_config()
  half.num_steps = 6
  train_toy(half, tmp_path / "resumed")
  resumed = train_toy(get_config(), tmp_path / "resumed")
  assert resumed["start_step"] == 6 and (resumed["w"], resumed["b"]) == (whole["w"], whole["b"])
  def losses(run):  # the half run's end added an evaluation at step 6 the whole run lacks
    return [r["loss"] for r in loop.MetricsLog.read(tmp_path / run / "metrics.jsonl")
            if "loss" in r]
  assert losses("whole") == losses("resumed") and len(losses("whole")) == 12


def test_the_done_text_counts_this_invocation_and_names_the_resume():
  fresh = {"start_step": 0, "step": 2000, "train_s": 21.5}
  assert loop.trained_text(fresh, "iterations") == "2000 iterations in 21.5 s (93 it/s)"
  resumed = {"start_step": 2000, "step": 3000, "train_s": 10.2}
  assert loop.trained_text(resumed, "iterations") == (
      "resumed from step 2000: 1000 iterations to step 3000 in 10.2 s (98 it/s)")
  assert loop.trained_text({"start_step": 0, "step": 6, "train_s": 2.1}) == \
      "6 steps in 2.1 s (2.9 it/s)"
  assert loop.trained_text({"start_step": 2000, "step": 2000, "train_s": 0.0}) == \
      "0 steps: the run was at step 2000 already"


def test_print_interval_prints_the_family_line(tmp_path, capsys):
  config = get_config()
  config.print_interval = 6
  train_toy(config, tmp_path / "run")
  out = capsys.readouterr()
  lines = [line for line in (out.out + out.err).splitlines() if line.startswith(("6 ", "12 "))]
  assert len(lines) == 2 and "loss=" in lines[0]


def test_divergence_stops_and_keeps_the_last_good_checkpoint(tmp_path):
  config = get_config()
  config.update(learning_rate=20.0, num_steps=200)
  with pytest.raises(TrainingDiverged, match="non-finite loss at step") as err:
    train_toy(config, tmp_path / "run")
  steps = sorted(int(p.name) for p in (tmp_path / "run" / "checkpoints").iterdir())
  assert steps and f"last good checkpoint is step {steps[-1]}" in str(err.value)
  state, _ = final_state(tmp_path / "run", config)
  assert np.isfinite(float(state["params"]["w"]))
  rows = [r for r in loop.MetricsLog.read(tmp_path / "run" / "metrics.jsonl") if "loss" in r]
  assert all(np.isfinite(r["loss"]) for r in rows)


def test_ctrl_c_keeps_the_last_chunk_and_a_rerun_finishes_identically(tmp_path):
  config = get_config()
  config.interrupt_at = 5  # between checkpoints 4 and 8
  with pytest.raises(KeyboardInterrupt):
    train_toy(config, tmp_path / "run")
  assert 5 in [int(p.name) for p in (tmp_path / "run" / "checkpoints").iterdir()]
  resumed = train_toy(get_config(), tmp_path / "run")
  whole = train_toy(get_config(), tmp_path / "whole")
  assert resumed["start_step"] == 5 and resumed["w"] == whole["w"]


def test_another_config_is_refused_naming_the_keys_and_nothing_is_written(tmp_path):
  train_toy(get_config(), tmp_path / "run")
  before = snapshot(tmp_path / "run")
  other = get_config()
  other.update(batch_size=4, learning_rate=0.2, num_steps=16)
  with pytest.raises(CheckpointError, match=r"batch_size=8 \(config says 4\).*learning_rate"):
    train_toy(other, tmp_path / "run")
  assert snapshot(tmp_path / "run") == before
  longer = get_config()
  longer.update(num_steps=16, checkpoint_interval=8, sample_interval=3)  # resumable keys
  assert train_toy(longer, tmp_path / "run")["start_step"] == 12


def test_another_family_or_format_is_refused(tmp_path):
  train_toy(get_config(), tmp_path / "run")
  manager = checkpoint.open_manager(tmp_path / "run")
  saved = checkpoint.read_record(manager, 12)
  manager.close()
  assert saved["format"] == checkpoint.FORMAT and saved["family"] == "toy"
  for record, needle in (({**saved, "family": "gan"}, "holds a 'gan' run"),
                         ({**saved, "format": 0}, "has format 0")):
    folder = tmp_path / needle.split()[-2].strip("'")
    manager = checkpoint.open_manager(folder)
    checkpoint.save(manager, 3, ToyFamily(get_config(), sharding.make_mesh(1)).init_state(),
                    record)
    manager.close()
    with pytest.raises(CheckpointError, match=needle):
      train_toy(get_config(), folder)


def spoil(folder):
  for path in folder.rglob("*"):
    if path.is_file():
      path.write_bytes(b"garbage")


def test_an_unreadable_newest_checkpoint_is_set_aside_and_the_run_resumes_before_it(tmp_path,
                                                                                   capfd):
  whole = train_toy(get_config(), tmp_path / "whole")
  shorter = get_config()
  shorter.num_steps = 8
  train_toy(shorter, tmp_path / "run")
  spoil(tmp_path / "run" / "checkpoints" / "8")
  resumed = train_toy(get_config(), tmp_path / "run")
  assert resumed["start_step"] == 4 and (resumed["w"], resumed["b"]) == (whole["w"], whole["b"])
  assert (tmp_path / "run" / checkpoint.UNREADABLE_DIR / "8").is_dir()
  assert "warning: checkpoint step 8 is unreadable" in capfd.readouterr().err


def test_when_every_checkpoint_is_unreadable_the_run_is_refused_and_nothing_is_written(tmp_path):
  train_toy(get_config(), tmp_path / "run")
  spoil(tmp_path / "run" / "checkpoints")
  before = snapshot(tmp_path / "run")
  with pytest.raises(CheckpointError, match="checkpoint step 12 is unreadable"):
    train_toy(get_config(), tmp_path / "run")
  assert snapshot(tmp_path / "run") == before


def test_nothing_is_created_before_the_config_and_data_are_checked(tmp_path):
  bad = get_config()
  bad.batch_size = 0
  with pytest.raises(ConfigError, match="config.batch_size must be a positive integer"):
    train_toy(bad, tmp_path / "run")
  missing = get_config()
  missing.data_dir = "missing"
  with pytest.raises(DataError, match="missing"):
    train_toy(missing, tmp_path / "run")
  assert not (tmp_path / "run").exists()


def test_an_unwritable_workdir_is_named(tmp_path):
  blocker = tmp_path / "a_file"
  blocker.write_text("not a folder")
  with pytest.raises(WorkdirError, match="a_file"):
    train_toy(get_config(), blocker / "run")


def test_a_row_cut_short_at_the_end_of_the_metrics_is_dropped_and_damage_inside_is_named(
    tmp_path):
  path = tmp_path / "metrics.jsonl"
  path.write_text('{"step": 1, "loss": 0.5}\n{"step": 2, "loss": 0.4}\n{"step": 3, "lo')
  assert [r["step"] for r in loop.MetricsLog.read(path)] == [1, 2]
  log = loop.MetricsLog(path, resume_step=2)  # a resume rewrites the file without it
  assert path.read_text() == '{"step": 1, "loss": 0.5}\n{"step": 2, "loss": 0.4}\n'
  log.append([{"step": 3, "loss": 0.3}])
  assert [r["step"] for r in loop.MetricsLog.read(path)] == [1, 2, 3]
  path.write_text('{"step": 1, "loss": 0.5}\n{"step": 2, "lo\n{"step": 3, "loss": 0.3}\n')
  with pytest.raises(WorkdirError, match="metrics.jsonl: line 2 is not JSON"):
    loop.MetricsLog.read(path)
