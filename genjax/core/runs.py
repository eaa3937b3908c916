"""Every family by the name its checkpoints record, and the one way to open any run's workdir.

A checkpoint's record names the family that wrote it and holds its whole config, so a workdir
alone rebuilds the model: `restore(workdir)` checks the folder, reads the newest readable step's
record, picks the family from FAMILIES, builds its static definition and state template from
the record (`Family.from_record`) and restores the state, replicated over the devices asked
for. The commands that read runs (sample, evaluate, generate, score, classify, average) call it
with the families they serve; a run of another family is one line naming both.

A new family adds one line to FAMILIES. The core imports a family only when a run of it is
opened, so families stay independent of each other.
"""

import importlib
import json
from pathlib import Path
from typing import NamedTuple

import ml_collections

from genjax.core import checkpoint, sharding
from genjax.core.errors import CheckpointError, ConfigError, WorkdirError

# The name a family's checkpoints record -> the module and Family subclass that read them.
FAMILIES = {
    "gan": "genjax.gan.family:GANFamily",
    "vae": "genjax.vae.family:VAEFamily",
    "judge": "genjax.judge.train:JudgeFamily",
    "lm": "genjax.text.lm:LMFamily",
    "classifier": "genjax.text.classify:ClassifierFamily",
    "diffusion": "genjax.diffusion.family:DiffusionFamily",
}


def family_class(name: str):
  """The Family subclass registered as `name` (imported on first use)."""
  if name not in FAMILIES:
    raise CheckpointError(f"no genjax family is called {name!r}; the families are "
                          f"{', '.join(FAMILIES)}")
  module, attr = FAMILIES[name].split(":")
  return getattr(importlib.import_module(module), attr)


class Restored(NamedTuple):
  """One restored checkpoint of a run."""

  family: str  # the name its record gives (a key of FAMILIES)
  config: ml_collections.ConfigDict  # the run's resolved config, from the record
  static: object  # the family's static definition (model, optimizer, recipe)
  state: object  # the train state, replicated over the mesh asked for
  step: int
  workdir: Path


def _served(name: str, families, workdir) -> None:
  """A one-line ConfigError (on --workdir) when a command cannot serve a run's family."""
  if families is None or name in families:
    return
  readers = getattr(family_class(name), "readers", ()) if name in FAMILIES else ()
  hint = f" ({', '.join(readers)} read {name!r} runs)" if readers else ""
  wanted = " or ".join(repr(f) for f in families)
  raise ConfigError(f"workdir {workdir} holds a {name!r} run; this command reads {wanted} "
                    f"runs{hint}", field="workdir")


class RunFolder:
  """An opened workdir: its kept steps, the family and static definition its record gives, and
  `restore(step)` for any kept step (one template for all of them)."""

  def __init__(self, workdir, families=None, mesh=None):
    self.workdir = Path(workdir)
    if not self.workdir.is_dir():
      raise WorkdirError(f"workdir {workdir} does not exist", field="workdir")
    folder = checkpoint.checkpoint_dir(workdir)
    if not folder.is_dir():
      raise CheckpointError(f"no checkpoint in {folder}: is {workdir} a genjax run?")
    self.mesh = mesh  # None: this process's first device, and a model built without a mesh
    self.families = families
    self.manager = checkpoint.open_manager(workdir, max_to_keep=None, create=False)
    self.steps = sorted(self.manager.all_steps())
    if not self.steps:
      self.close()
      raise CheckpointError(f"no checkpoint in {folder}")
    self._built = {}  # the record's family and config -> (config, static, template)

  def restore(self, step: int | None = None) -> Restored:
    """The checkpoint at `step`, or the newest one that reads (None)."""
    if step is None:
      restored, _ = checkpoint.restore_newest(self.manager, self._restore_step)
      return restored
    if step not in self.steps:
      raise CheckpointError(f"no checkpoint of step {step} in {self.manager.directory} "
                            f"(it has {self.steps})")
    return self._restore_step(step)

  def _restore_step(self, step: int) -> Restored:
    record = checkpoint.read_record(self.manager, step)
    key = json.dumps([record["family"], record["config"]], sort_keys=True)
    if key not in self._built:  # one template for every step of the run
      _served(record["family"], self.families, self.workdir)
      config = ml_collections.ConfigDict(record["config"])
      static, abstract = family_class(record["family"]).from_record(config, self.mesh)
      mesh = self.mesh if self.mesh is not None else sharding.make_mesh(1)
      self._built[key] = (config, static, sharding.abstract_replicated(abstract, mesh))
    config, static, abstract = self._built[key]
    state = checkpoint.restore_step(self.manager, step, abstract)
    return Restored(record["family"], config, static, state, step, self.workdir)

  def close(self) -> None:
    self.manager.close()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()


def restore(workdir, families=None, step: int | None = None, mesh=None) -> Restored:
  """The run in `workdir` at `step` (None: its newest readable step), restored replicated over
  `mesh` (None: this process's first device). families: the names the caller can serve (None:
  any); a run of another family is a ConfigError naming both."""
  with RunFolder(workdir, families, mesh) as folder:
    return folder.restore(step)
