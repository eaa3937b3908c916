"""Orbax checkpoints of a train-state pytree, each with a record of what wrote it.

The record is JSON beside the state: the format version, the family, and the full resolved
config. A restore compares it with the config asking: any key outside the family's resumable
set that differs is refused, one line naming every such key. Readers (samplers, averaging) can
rebuild the model from the record alone.

A key added to a family's config after runs were saved is absent from their records; the
family's `added_keys` maps it to the value that reproduces what those runs did, and every read
of a record fills it in, so old runs resume, sample and score as they were trained.
"""

import json
from pathlib import Path

import jax
import orbax.checkpoint as ocp

from genjax.core import sharding
from genjax.core.errors import CheckpointError

FORMAT = 1  # bump when a state or record layout changes; older checkpoints are refused


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


def _one_line(exc: Exception) -> str:
  text = " ".join(str(exc).split())
  return f"{type(exc).__name__}: {text[:300]}"


def read_record(manager: ocp.CheckpointManager, step: int, added_keys=None) -> dict:
  """The record saved at `step`, checked for this genjax's format; config keys it predates
  filled in from `added_keys` ({key: the value older runs had in effect})."""
  where = Path(manager.directory) / str(step)
  try:
    record = manager.restore(step, args=ocp.args.Composite(
        record=ocp.args.JsonRestore()))["record"]
  except Exception as exc:  # orbax raises many types for damaged or foreign files
    raise CheckpointError(f"checkpoint {where} is corrupt, unreadable or from another program "
                          f"({_one_line(exc)})") from None
  if not isinstance(record, dict) or record.get("format") != FORMAT:
    found = record.get("format") if isinstance(record, dict) else None
    raise CheckpointError(f"checkpoint {where} has format {found}; this genjax reads format "
                          f"{FORMAT}: train a new run in another --workdir")
  older = json.loads(json.dumps(dict(added_keys or {}), default=list))  # as JSON holds them
  record["config"] = {**older, **record["config"]}
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


def restore_latest(manager, abstract_state, expected: dict, resumable=frozenset(),
                   check=None, added_keys=None):
  """(state, step) from the newest checkpoint, or (None, None) when there is none.

  check(saved_record, step): a family's own rule on top of the key comparison.
  """
  step = manager.latest_step()
  if step is None:
    return None, None
  return restore_step(manager, step, abstract_state, expected, resumable, check,
                      added_keys), step


def restore_step(manager, step: int, abstract_state, expected: dict | None = None,
                 resumable=frozenset(), check=None, added_keys=None):
  """The state saved at `step`, after checking its record against `expected` (when given)."""
  where = Path(manager.directory) / str(step)
  saved = read_record(manager, step, added_keys)
  if expected is not None:
    check_record(saved, expected, where, resumable)
  if check is not None:
    check(saved, step)
  try:
    restored = manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state)))["state"]
    jax.block_until_ready(restored)
    # Orbax restores the saved shapes whatever the template says: compare them here.
    shape = lambda x: (tuple(x.shape), str(x.dtype))  # noqa: E731
    if jax.tree.map(shape, restored) != jax.tree.map(shape, abstract_state):
      raise ValueError("saved shapes or dtypes differ from the model's")
  except Exception as exc:
    raise CheckpointError(f"checkpoint {where} is corrupt or does not fit this model "
                          f"({_one_line(exc)})") from None
  return restored


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
