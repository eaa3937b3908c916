"""Config checks shared by every family: each raises ConfigError naming `config.KEY`.

A family's validator calls these on its own keys; `check_loop_keys` covers the keys the core
loop reads (steps, intervals, checkpoints, devices), which every training config carries.
"""

import ml_collections
import numpy as np

from genjax.core.errors import field_error

# Read by genjax.core.loop: every training config has them.
LOOP_POSITIVE_INTS = ("log_interval", "checkpoint_interval", "keep_checkpoints",
                      "steps_per_dispatch")
LOOP_NON_NEGATIVE_INTS = ("num_steps", "num_devices", "seed")
# Keys only the host loop reads, never a compiled function: no family's recipe holds them.
LOOP_HOST_KEYS = frozenset({
    "data_dir", "device_data_mb", "seed", "log_interval", "print_interval", "checkpoint_interval",
    "keep_checkpoints", "steps_per_dispatch", "progress", "num_devices"})
# Keys a resumed run may change: they steer the host loop, not the trajectory (a streamed run
# reads the batches a run with its data on the devices draws).
LOOP_RESUMABLE = frozenset({
    "num_steps", "data_dir", "device_data_mb", "log_interval", "print_interval", "checkpoint_interval",
    "keep_checkpoints", "steps_per_dispatch", "progress", "num_devices"})


def is_int(value) -> bool:
  return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def is_number(value) -> bool:
  return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def check_ints(config, keys, low: int = 1) -> None:
  """Each key an integer >= low (1: positive, 0: non-negative)."""
  kind = "a positive integer" if low == 1 else (
      "a non-negative integer" if low == 0 else f"an integer >= {low}")
  for key in keys:
    if not is_int(config[key]) or config[key] < low:
      raise field_error(f"config.{key}", f"must be {kind}, got {config[key]!r}")


def check_numbers(config, keys, low: float = 0.0, strict: bool = False) -> None:
  """Each key a number > low (strict) or >= low."""
  for key in keys:
    value = config[key]
    if not is_number(value) or not (value > low if strict else value >= low):
      bound = "positive" if (strict and low == 0) else (
          f"{'>' if strict else '>='} {low:g}")
      raise field_error(f"config.{key}", f"must be a number {bound}, got {value!r}")


def check_range(config, keys, low: float, high: float, high_inclusive: bool = False) -> None:
  """Each key in [low, high) (or [low, high])."""
  for key in keys:
    value = config[key]
    inside = is_number(value) and low <= value and (value <= high if high_inclusive
                                                    else value < high)
    if not inside:
      closing = "]" if high_inclusive else ")"
      raise field_error(f"config.{key}", f"must be in [{low:g}, {high:g}{closing}, "
                                         f"got {value!r}")


def check_choice(config, key: str, choices) -> None:
  if config[key] not in choices:
    raise field_error(f"config.{key}", f"{config[key]!r} is unknown; choose one of "
                                       f"{', '.join(map(str, choices))}")


def check_bools(config, keys) -> None:
  for key in keys:
    if not isinstance(config[key], bool):
      raise field_error(f"config.{key}", f"must be True or False, got {config[key]!r}")


def check_widths(config, keys, allow_empty: bool = False) -> None:
  """Each key a list of positive integers (layer widths), non-empty unless allowed."""
  for key in keys:
    value = config[key]
    if (not value and not allow_empty) or not all(is_int(w) and w > 0 for w in value):
      what = "a list" if allow_empty else "a non-empty list"
      raise field_error(f"config.{key}", f"must be {what} of positive widths, got {value!r}")


def check_loop_keys(config) -> None:
  """The keys the core loop reads."""
  check_ints(config, LOOP_POSITIVE_INTS)
  check_ints(config, LOOP_NON_NEGATIVE_INTS, low=0)
  check_bools(config, ("progress",))
  if "print_interval" in config:
    check_ints(config, ("print_interval",), low=0)


def as_tuple(value):
  """Lists as tuples (hashable, as a static spec needs); anything else unchanged."""
  return tuple(value) if isinstance(value, (list, tuple)) else value


def recipe_of(config, host_keys=()) -> ml_collections.FrozenConfigDict:
  """The config without the keys only the host reads (LOOP_HOST_KEYS and a family's own
  `host_keys`): what compiled functions depend on.

  Frozen and hashable, so a static definition holding it can key jit's caches."""
  left_out = LOOP_HOST_KEYS | set(host_keys)
  return ml_collections.FrozenConfigDict(
      {k: v for k, v in config.to_dict().items() if k not in left_out})


class Static:
  """Base of a model's static definition (its modules, optimizers and `recipe`, a frozen
  config): equal, and hashing equal, when built from equal recipes on the same mesh, so a
  rebuilt definition reuses jit's compiled functions instead of compiling again."""

  def _key(self) -> tuple:
    return (self.recipe, self.mesh)

  def __hash__(self):
    return hash(self._key())

  def __eq__(self, other):
    return type(self) is type(other) and self._key() == other._key()


def apply_variant(config: ml_collections.ConfigDict, variant: str, variants: dict,
                  tiny: dict) -> ml_collections.ConfigDict:
  """A config's named variant: "", NAME, "tiny" or "NAME,tiny" (NAME's changes, then the tiny
  setting's); an unknown NAME is a ValueError listing the known ones."""
  names = [v for v in variant.split(",") if v]
  for name in names:
    if name == "tiny":
      continue
    if name not in variants:
      raise ValueError(f"unknown config variant {name!r}: use 'tiny' or one of "
                       f"{', '.join(variants)}")
    config.update(variants[name])
  if "tiny" in names:
    config.update(tiny)
  return config
