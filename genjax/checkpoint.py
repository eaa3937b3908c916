"""Orbax checkpoints of a train-state pytree, guarded against foreign and corrupt ones."""

import json
from pathlib import Path

import jax
import orbax.checkpoint as ocp

from genjax import schedules
from genjax.config_defaults import json_defaults
from genjax.errors import CheckpointError

# Config keys that define the model and its training trajectory: a checkpoint written
# under other values cannot continue this run. (num_steps, intervals, learning rate and
# the data folder may change between runs; so may the schedule, within SCHEDULE_KEY's rule.)
IDENTITY_KEYS = ("model", "dataset", "latent_dim", "g_hidden", "d_hidden", "bn_momentum",
                 "d_update", "batch_size", "seed", "arch", "g_channels", "d_channels", "loss",
                 "gp_weight", "r1_weight", "spectral_norm", "n_critic", "ema_decay",
                 "conditional", "g_refine", "mode_seeking", "consistency_weight",
                 "consistency_shift", "g_blur", "g_class_bn", "d_mbstd")
# The GAN's decay window (schedules.lr_window): a resume may change it only where the steps
# already taken keep their rates, e.g. give a constant-rate run a decaying tail.
SCHEDULE_KEY = "lr_window"


def identity_of(config, keys=None) -> dict:
  """The JSON-able values of `keys` present in `config`; by default the GAN's IDENTITY_KEYS
  and its decay window (SCHEDULE_KEY)."""
  identity = {k: json.loads(json.dumps(config[k])) for k in keys or IDENTITY_KEYS if k in config}
  if keys is None:
    window = schedules.lr_window(config)
    identity[SCHEDULE_KEY] = None if window is None else list(window)
  return identity


def checkpoint_dir(workdir, subdir: str = "checkpoints") -> Path:
  return Path(workdir) / subdir


def open_manager(workdir, max_to_keep: int | None = 3, create: bool = True,
                 subdir: str = "checkpoints") -> ocp.CheckpointManager:
  """Synchronous saves: the next dispatch donates the state buffers a background save would read."""
  options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=create,
                                         enable_async_checkpointing=False)
  return ocp.CheckpointManager(checkpoint_dir(workdir, subdir).absolute(), options=options)


def save(manager: ocp.CheckpointManager, step: int, state, identity: dict) -> None:
  manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                             identity=ocp.args.JsonSave(identity)))
  manager.wait_until_finished()


def _one_line(exc: Exception) -> str:
  text = " ".join(str(exc).split())
  return f"{type(exc).__name__}: {text[:300]}"


def check_identity(saved: dict, expected: dict, where: Path, step: int) -> None:
  """Raises naming every identity key whose value differs between checkpoint and config."""
  saved = {**json_defaults(), SCHEDULE_KEY: None, **saved}  # older checkpoints: their values
  diffs = [f"{k}={saved.get(k)!r} (config says {v!r})" for k, v in expected.items()
           if k != SCHEDULE_KEY and saved.get(k) != v]
  if SCHEDULE_KEY in expected and not schedules.same_rates_before(
      saved[SCHEDULE_KEY], expected[SCHEDULE_KEY], step):
    diffs.append(f"lr_schedule: its decay window {expected[SCHEDULE_KEY]} would change the "
                 f"rates of steps before {step} (checkpoint's {saved[SCHEDULE_KEY]})")
  if diffs:
    raise CheckpointError(f"checkpoint {where} is from a different model/config: "
                          + ", ".join(diffs) + "; use another --workdir")


def restore_latest(manager: ocp.CheckpointManager, abstract_state, expected_identity: dict):
  """(state, step) from the newest checkpoint, or (None, None) when there is none."""
  step = manager.latest_step()
  if step is None:
    return None, None
  return restore_step(manager, step, abstract_state, expected_identity), step


def restore_step(manager: ocp.CheckpointManager, step: int, abstract_state,
                 expected_identity: dict):
  """The state saved at `step`, after checking it belongs to this config."""
  where = Path(manager.directory) / str(step)
  try:
    identity = manager.restore(step, args=ocp.args.Composite(
        identity=ocp.args.JsonRestore()))["identity"]
  except Exception as exc:  # orbax raises many types for damaged files
    raise CheckpointError(f"checkpoint {where} is corrupt or unreadable ({_one_line(exc)})")
  check_identity(identity, expected_identity, where, step)
  try:
    restored = manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state)))["state"]
    jax.block_until_ready(restored)
  except Exception as exc:
    raise CheckpointError(f"checkpoint {where} is corrupt or does not fit this model "
                          f"({_one_line(exc)})")
  return restored
