"""Orbax save -> restore round trip, records, and the guards against foreign or corrupt ones."""

import jax
import numpy as np
import pytest

from genjax.core import checkpoint
from genjax.core.errors import CheckpointError
from tests.core.toy import get_config


def state(value=1.5):
  return {"step": np.int32(3), "params": {"w": np.full((4, 3), value, np.float32)}}


def test_save_restore_round_trip_is_bit_identical(tmp_path):
  record = checkpoint.make_record("toy", get_config())
  manager = checkpoint.open_manager(tmp_path)
  saved = jax.tree.map(np.asarray, {"step": np.int32(7),
                                    "params": {"w": np.random.default_rng(0).normal(
                                        size=(4, 3)).astype(np.float32)}})
  checkpoint.save(manager, 7, saved, record)
  manager.close()
  manager = checkpoint.open_manager(tmp_path)
  restored, step = checkpoint.restore_latest(manager, jax.eval_shape(lambda: saved), record)
  assert step == 7
  jax.tree.map(np.testing.assert_array_equal, restored, saved)
  assert checkpoint.read_record(manager, 7) == record
  assert record["format"] == checkpoint.FORMAT and record["config"]["num_steps"] == 12


def test_no_checkpoint_gives_none_and_only_the_last_few_are_kept(tmp_path):
  record = checkpoint.make_record("toy", get_config())
  manager = checkpoint.open_manager(tmp_path, max_to_keep=2)
  assert checkpoint.restore_latest(manager, state(), record) == (None, None)
  for step in (1, 2, 3):
    checkpoint.save(manager, step, state(), record)
  assert sorted(manager.all_steps()) == [2, 3]


def test_differences_name_every_key_outside_the_resumable_ones():
  saved = {"a": 1, "b": [2, 3], "c": "x", "old": 0}
  now = {"a": 1, "b": [2, 4], "c": "y", "new": 1}
  diffs = checkpoint.config_differences(saved, now, resumable={"c"})
  assert diffs == ["b=[2, 3] (config says [2, 4])", "new='(absent)' (config says 1)",
                   "old=0 (config says '(absent)')"]


def spoil(folder):
  for path in folder.rglob("*"):
    if path.is_file():
      path.write_bytes(b"garbage")


def test_another_format_is_refused_in_one_line_naming_both(tmp_path):
  manager = checkpoint.open_manager(tmp_path)
  record = checkpoint.make_record("toy", get_config())
  checkpoint.save(manager, 1, state(), {**record, "format": 1})
  with pytest.raises(CheckpointError, match="has format 1; this genjax reads format 3 only"):
    checkpoint.restore_latest(manager, jax.eval_shape(state), record)


def test_an_unreadable_newest_step_is_set_aside_and_the_one_before_restored(tmp_path, capfd):
  record = checkpoint.make_record("toy", get_config())
  manager = checkpoint.open_manager(tmp_path, max_to_keep=None)
  for step in (1, 2, 3):
    checkpoint.save(manager, step, state(float(step)), record)
  spoil(tmp_path / "checkpoints" / "3")
  template = jax.eval_shape(state)
  restored, step = checkpoint.restore_latest(manager, template)  # a reader: nothing moves
  assert step == 2 and float(restored["params"]["w"][0, 0]) == 2.0
  assert sorted(manager.all_steps()) == [1, 2, 3]
  restored, step = checkpoint.restore_latest(manager, template, record, set_aside=True)
  assert step == 2 and sorted(manager.all_steps()) == [1, 2]
  aside = tmp_path / checkpoint.UNREADABLE_DIR / "3"
  assert aside.is_dir() and not (tmp_path / "checkpoints" / "3").exists()
  lines = capfd.readouterr().err.strip().splitlines()
  assert len(lines) == 2 and all(len(line.replace(str(tmp_path), "")) < 200 for line in lines)
  assert lines[-1].startswith("warning: checkpoint step 3 is unreadable")
  assert str(aside) in lines[-1]
  checkpoint.save(manager, 3, state(3.0), record)  # the run goes on past it
  assert sorted(manager.all_steps()) == [1, 2, 3]


def test_when_no_kept_step_reads_the_newest_error_is_short_and_nothing_moves(tmp_path):
  record = checkpoint.make_record("toy", get_config())
  manager = checkpoint.open_manager(tmp_path)
  for step in (1, 2):
    checkpoint.save(manager, step, state(), record)
    spoil(tmp_path / "checkpoints" / str(step))
  with pytest.raises(CheckpointError) as err:
    checkpoint.restore_latest(manager, jax.eval_shape(state), record, set_aside=True)
  message = str(err.value)
  assert message.startswith("checkpoint step 2 is unreadable (")
  assert f"move {tmp_path / 'checkpoints' / '2'} aside" in message and "\n" not in message
  assert len(message.replace(str(tmp_path), "")) < 200
  assert sorted(manager.all_steps()) == [1, 2]
  assert not (tmp_path / checkpoint.UNREADABLE_DIR).exists()


def test_a_shape_mismatch_behind_a_matching_record_is_caught(tmp_path):
  record = checkpoint.make_record("toy", get_config())
  manager = checkpoint.open_manager(tmp_path)
  checkpoint.save(manager, 1, state(), record)
  bigger = {"step": np.int32(0), "params": {"w": np.zeros((5, 3), np.float32)}}
  with pytest.raises(CheckpointError, match="does not fit this model"):
    checkpoint.restore_latest(manager, jax.eval_shape(lambda: bigger), record)


def test_the_best_keeper_keeps_the_lowest_value_only(tmp_path):
  record = checkpoint.make_record("toy", get_config())
  keeper = checkpoint.BestKeeper(tmp_path, record, past_values=[5.0])
  assert not keeper.offer(1, state(1.0), 6.0)
  assert keeper.offer(2, state(2.0), 4.0)
  assert not keeper.offer(3, state(3.0), 4.5)
  assert keeper.offer(4, state(4.0), 1.0)
  assert keeper.manager.all_steps() == [4]
  keeper.close()
