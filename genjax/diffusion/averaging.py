"""A diffusion run's sampling weights averaged over its checkpoints, written as a new run that
sample.py, evaluate.py and the likelihood read like any other."""

import json

import jax

from genjax.core import checkpoint, runs
from genjax.core.ema import mean_tree
from genjax.core.errors import field_error
from genjax.core.files import check_out_dir, write_atomic


def average_checkpoints(workdir, steps, out) -> dict:
  """Writes to `out` the run at the last of `steps` with its sampling weights (the moving
  average when the run keeps one, else the weights) replaced by their mean over `steps`.
  Returns what was done (also in out/averaged_from.json)."""
  steps = sorted(set(steps))
  if not steps or any(not isinstance(s, int) or s < 0 for s in steps):
    raise field_error("steps", f"must name checkpoint steps (non-negative integers), got {steps}")
  with runs.RunFolder(workdir, families=("diffusion",)) as folder:  # errors before out
    restored = [folder.restore(step) for step in steps]
  last, config = restored[-1], restored[-1].config
  key = "ema_params" if config.ema_decay else "params"
  mean = mean_tree([getattr(r.state, key) for r in restored])
  state = last.state.replace(**{key: jax.tree.map(lambda m, p: m.astype(p.dtype), mean,
                                                  getattr(last.state, key))})
  out = check_out_dir(out, workdir)
  write_atomic(out / "config.json", config.to_json_best_effort(indent=2, sort_keys=True))
  manager = checkpoint.open_manager(out, max_to_keep=None)
  try:
    checkpoint.save(manager, steps[-1], state, checkpoint.make_record("diffusion", config))
  finally:
    manager.close()
  record = {"workdir": str(workdir), "steps": steps, "averaged": key}
  write_atomic(out / "averaged_from.json", json.dumps(record, indent=2))
  return record
