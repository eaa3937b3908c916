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


def test_a_run_saved_before_a_key_existed_resumes_at_the_keys_old_value(tmp_path):
  old_config = get_config()
  manager = checkpoint.open_manager(tmp_path)
  checkpoint.save(manager, 1, state(), checkpoint.make_record("toy", old_config))
  new_config = get_config()
  new_config.knob, new_config.sizes = 0.0, (2, 3)  # keys added after the run was saved
  expected = checkpoint.make_record("toy", new_config)
  template = jax.eval_shape(state)
  with pytest.raises(CheckpointError, match=r"knob='\(absent\)' \(config says 0.0\)"):
    checkpoint.restore_latest(manager, template, expected)
  added = {"knob": 0.0, "sizes": (2, 3)}
  restored, step = checkpoint.restore_latest(manager, template, expected, added_keys=added)
  assert step == 1 and float(restored["params"]["w"][0, 0]) == 1.5
  assert checkpoint.read_record(manager, 1, added)["config"]["sizes"] == [2, 3]
  new_config.knob = 0.5  # the old run had 0.0 in effect: a different trajectory
  with pytest.raises(CheckpointError, match=r"knob=0.0 \(config says 0.5\)"):
    checkpoint.restore_latest(manager, template, checkpoint.make_record("toy", new_config),
                              added_keys=added)


def test_a_shape_mismatch_behind_a_matching_record_is_caught(tmp_path):
  record = checkpoint.make_record("toy", get_config())
  manager = checkpoint.open_manager(tmp_path)
  checkpoint.save(manager, 1, state(), record)
  bigger = {"step": np.int32(0), "params": {"w": np.zeros((5, 3), np.float32)}}
  with pytest.raises(CheckpointError, match="does not fit this model|corrupt"):
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
