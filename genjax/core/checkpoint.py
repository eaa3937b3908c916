"""Orbax checkpoints of a train-state pytree, each with a record of what wrote it.

The record is JSON beside the state: the format version, the family, and the full resolved
config. A restore compares it with the config asking: any key outside the family's resumable
set that differs is refused, one line naming every such key. Readers (samplers, averaging) can
rebuild the model from the record alone (genjax.core.runs).

A checkpoint of another format is refused: genjax keeps no code for older layouts. A kept step
that cannot be read (a damaged disk, a copy cut short) is set aside by a resuming run, which
goes on from the newest step that reads.
"""

import json
import shutil
import sys
from pathlib import Path

import jax
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils

from genjax.core import sharding
from genjax.core.errors import CheckpointError

FORMAT = 3  # bump when a state or record layout changes; other formats are refused
UNREADABLE_DIR = "checkpoints_unreadable"  # where a resuming run sets unreadable steps aside


class UnreadableCheckpoint(CheckpointError):
  """A kept step whose files cannot be read (as opposed to one from another config)."""


def make_record(family: str, config) -> dict:
  """{"format", "family", "config"}: config as JSON (tuples become lists)."""
  config_dict = config.to_dict() if hasattr(config, "to_dict") else dict(config)
  return {"format": FORMAT, "family": family,
          "config": json.loads(json.dumps(config_dict, default=list))}


def checkpoint_dir(workdir, subdir: str = "checkpoints") -> Path:
  return Path(workdir) / subdir


def open_manager(workdir, max_to_keep: int | None = 3, create: bool = True,
                 subdir: str = "checkpoints") -> ocp.CheckpointManager:
  """Synchronous saves: the next dispatch donates the state buffers a background save would read."""
  options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=create,
                                         enable_async_checkpointing=False)
  return ocp.CheckpointManager(checkpoint_dir(workdir, subdir).absolute(), options=options)


def save(manager: ocp.CheckpointManager, step: int, state, record: dict) -> None:
  manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                             record=ocp.args.JsonSave(record)))
  manager.wait_until_finished()


def _reason(exc: Exception) -> str:
  """The first words of a storage library's error (TensorStore's run to hundreds of characters)."""
  text = " ".join(str(exc).split())
  return f"{type(exc).__name__}: {text[:80]}{'...' if len(text) > 80 else ''}"


def unreadable(manager, step: int, exc: Exception) -> UnreadableCheckpoint:
  where = Path(manager.directory) / str(step)
  err = UnreadableCheckpoint(
      f"checkpoint step {step} is unreadable ({_reason(exc)}); move {where} aside to use the "
      "step before it, or train in another --workdir")
  err.reason = _reason(exc)
  return err


def read_record(manager: ocp.CheckpointManager, step: int) -> dict:
  """The record saved at `step`, checked for this genjax's format."""
  where = Path(manager.directory) / str(step)
  try:
    record = manager.restore(step, args=ocp.args.Composite(
        record=ocp.args.JsonRestore()))["record"]
  except Exception as exc:  # orbax raises many types for damaged or foreign files
    raise unreadable(manager, step, exc) from None
  found = record.get("format") if isinstance(record, dict) else None
  if found != FORMAT or not isinstance(record.get("config"), dict):
    raise CheckpointError(f"checkpoint {where} has format {found}; this genjax reads format "
                          f"{FORMAT} only: train a new run in another --workdir")
  return record


def config_differences(saved: dict, expected: dict, resumable=frozenset()) -> list[str]:
  """'key=saved (config says expected)' for every non-resumable key that differs."""
  absent = "(absent)"
  keys = sorted((set(saved) | set(expected)) - set(resumable))
  return [f"{k}={saved.get(k, absent)!r} (config says {expected.get(k, absent)!r})"
          for k in keys if saved.get(k, absent) != expected.get(k, absent)]


def check_record(saved: dict, expected: dict, where, resumable=frozenset()) -> None:
  """Raises naming the family or every config key that differs (outside `resumable`)."""
  if saved.get("family") != expected["family"]:
    raise CheckpointError(f"checkpoint {where} holds a {saved.get('family')!r} run, not "
                          f"{expected['family']!r}; use another --workdir")
  diffs = config_differences(saved["config"], expected["config"], resumable)
  if diffs:
    raise CheckpointError(f"checkpoint {where} is from a different config: "
                          + ", ".join(diffs) + "; use another --workdir")


def restore_step(manager, step: int, abstract_state, expected: dict | None = None,
                 resumable=frozenset(), check=None):
  """The state saved at `step`, after checking its record against `expected` (when given).

  check(saved_record, step): a family's own rule on top of the key comparison.
  """
  where = Path(manager.directory) / str(step)
  saved = read_record(manager, step)
  if expected is not None:
    check_record(saved, expected, where, resumable)
  if check is not None:
    check(saved, step)
  try:
    restored = manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state)))["state"]
    jax.block_until_ready(restored)
  except Exception as exc:
    raise unreadable(manager, step, exc) from None
  # Orbax restores the saved shapes whatever the template says: compare them here.
  shape = lambda x: (tuple(x.shape), str(x.dtype))  # noqa: E731
  if jax.tree.map(shape, restored) != jax.tree.map(shape, abstract_state):
    raise CheckpointError(f"checkpoint {where} does not fit this model (its saved shapes or "
                          "dtypes differ); use another --workdir")
  return restored


def restore_newest(manager, restore_one, set_aside: bool = False):
  """(restore_one(step), step) for the newest kept step that reads, or (None, None) when none
  is kept. restore_one(step) raises UnreadableCheckpoint for a step whose files cannot be read.

  Newer steps that cannot be read are reported in one line each on stderr and, with set_aside
  (a resuming run), moved to UNREADABLE_DIR beside the checkpoints, never deleted. When no kept
  step reads, the newest one's error is raised and nothing is moved. Any other error (a step
  from another config or model: a wrong workdir, not damage) is raised at once.
  """
  skipped = []
  for step in sorted(manager.all_steps(), reverse=True):
    try:
      restored = restore_one(step)
    except UnreadableCheckpoint as exc:
      skipped.append((step, exc))
      continue
    if skipped and set_aside:
      _sync("checkpoints read")  # no process still reads a step process 0 moves
    for bad_step, exc in skipped:
      _report_unreadable(manager, bad_step, exc.reason, step, set_aside)
    if skipped and set_aside:
      _sync("checkpoints set aside")
      manager.reload()  # the manager's list of kept steps, without those set aside
    return restored, step
  if skipped:
    raise skipped[0][1]
  return None, None


def restore_latest(manager, abstract_state, expected: dict | None = None,
                   resumable=frozenset(), check=None, set_aside: bool = False):
  """(state, step): `restore_newest` of `restore_step` with one template and check."""
  return restore_newest(manager, lambda step: restore_step(
      manager, step, abstract_state, expected, resumable, check), set_aside)


def _sync(name: str) -> None:
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices(name)


def _report_unreadable(manager, step: int, reason: str, used: int, set_aside: bool) -> None:
  """One line on stderr (process 0); with set_aside, the step's folder moved out of the way."""
  where = Path(manager.directory) / str(step)
  aside = where.parent.parent / UNREADABLE_DIR / str(step)
  note = f"using step {used}"
  if set_aside:
    if sharding.is_primary_process():
      aside.parent.mkdir(exist_ok=True)
      if aside.exists():  # set aside before, at the same step: keep both
        aside = aside.with_name(f"{step}.{len(list(aside.parent.iterdir()))}")
      shutil.move(str(where), str(aside))
    note += f"; moved it to {aside}"
  if sharding.is_primary_process():
    print(f"warning: checkpoint step {step} is unreadable ({reason}); {note}", file=sys.stderr)


class BestKeeper:
  """Keeps the checkpoint with the lowest value of a metric in workdir/<subdir> (one only).

  Over many processes every one offers and saves together; process 0 decides.
  """

  def __init__(self, workdir, record: dict, past_values=(), subdir: str = "checkpoints_best"):
    self.record = record
    self.manager = open_manager(workdir, max_to_keep=1, subdir=subdir)
    self.best = min(past_values, default=float("inf"))

  def offer(self, step: int, state, value: float) -> bool:
    """Saves `state` when `value` is the lowest yet; whether it did."""
    # A resumed run replays the same steps bit-identically: a best already saved stays.
    better = value < self.best and step not in self.manager.all_steps()
    # Each process computed `value` itself: a save that not all of them join would hang.
    better = sharding.value_of_process_0(better)
    if better:
      save(self.manager, step, state, self.record)
    self.best = min(self.best, value)
    return better

  def close(self) -> None:
    self.manager.close()
