"""The one training loop every family runs on: the host wakes only to log, draw and checkpoint.

A family (a subclass of `Family`) supplies what is its own: config checks, its data, its initial
state, its jitted chunk of steps, its pictures and evaluations. `train` owns the rest, in this
order: validated config -> data -> workdir -> restore-or-init (the checkpoint's record checked)
-> chunks of steps per dispatch, with the progress bar, printed log lines, metrics.jsonl, a stop
on NaN/inf that keeps the last good checkpoint, the checkpoint cadence and Ctrl-C.

Over many processes every process runs every step, evaluation and checkpoint save or restore
(Orbax coordinates them); process 0 alone writes files and prints (`Run.writer`).
"""

import json
import time
from pathlib import Path

import jax
import ml_collections
import numpy as np
import tqdm

from genjax.core import checkpoint, config as config_lib, feed as feed_lib, sharding
from genjax.core.errors import GenjaxError, TrainingDiverged, WorkdirError
from genjax.core.files import write_atomic
from genjax.core.runner import all_finite, next_chunk_length


class Family:
  """What a model family supplies to `train`. Subclass it, set the class attributes and
  override the hooks; one instance serves one run (built after the config is validated).

  Hooks with a default may be left alone. `self.config` and `self.mesh` are set for them.
  """

  name = ""  # stored in every checkpoint's record; genjax.core.runs.FAMILIES maps it back
  readers: tuple = ()  # the commands that read its runs (named when another command is given one)
  # fn(config, mesh): the static definition (model, optimizer, recipe) of a resolved config;
  # fn(static, key): a fresh train state. Wrapped in staticmethod; `from_record` uses both.
  make_static = None
  make_state = None
  metric_names: tuple = ()  # per-step metrics the chunk returns
  resumable = config_lib.LOOP_RESUMABLE  # config keys a resume may change
  streams = False  # whether its chunks also take streamed batches (then: batch_indices)
  check = None  # fn(config): the family's own checks, raising ConfigError naming config.KEY

  @classmethod
  def validate(cls, config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """A checked (ConfigError naming config.KEY), resolved copy of `config`."""
    config_lib.check_loop_keys(config)
    if cls.check is not None:
      cls.check(config)
    return config.copy_and_resolve_references()

  def __init__(self, config: ml_collections.ConfigDict, mesh):
    self.config, self.mesh = config, mesh

  def load_data(self):
    """Host arrays the run trains on, or a genjax.core.feed.Source (kept on the devices below
    config.device_data_mb, else streamed); a DataError here comes before any file is written."""
    raise NotImplementedError

  def device_data(self, data):
    """`data` on the mesh, once: every batch is then drawn on the device."""
    return sharding.put_replicated(data, self.mesh)

  def batch_indices(self, first_step: int, num_steps: int) -> np.ndarray:
    """A streaming family's: num_steps x (a step's rows) indices of the examples the steps
    first_step, first_step + 1, ... read; the same draws its steps make from data on the
    devices (a function of the seed and the step, so a resumed run reads the same)."""
    raise NotImplementedError

  def init_state(self):
    """The initial train state (also traced under eval_shape for a restore's template)."""
    raise NotImplementedError

  @classmethod
  def from_record(cls, config: ml_collections.ConfigDict, mesh) -> tuple:
    """(static definition, abstract train state) of a saved run's config (its checkpoint's
    record), without its data: what genjax.core.runs needs to restore any of its steps."""
    static = cls.make_static(config, mesh)
    return static, jax.eval_shape(lambda: cls.make_state(static, jax.random.key(0)))

  def chunk(self, state, data_dev, num_steps: int):
    """(state, {name: per-step values}) after `num_steps` steps in one dispatch; donates state.
    data_dev: the data on the devices, or a streaming family's feed.Streamed batches."""
    raise NotImplementedError

  def event_intervals(self) -> tuple:
    """Intervals (besides checkpoints) a chunk must stop at, for `events`."""
    return ()

  def chunk_limit(self, step: int) -> int | None:
    """The most steps (>= 1) the chunk starting at `step` may run, for stops that are not
    periodic (e.g. where a run of same-shaped batches ends); None: no limit of its own."""
    return None

  def start(self, run: "Run", state) -> None:
    """Once, before the first step of a fresh run (e.g. the step-0 sample grid)."""

  def events(self, run: "Run", step: int, state) -> list[dict]:
    """After each chunk: pictures and evaluations due at `step`; returns rows to log."""
    return []

  def check_resume(self, saved_record: dict, step: int) -> None:
    """A family's own rule for resuming `saved_record`'s run at `step` (on top of the keys)."""

  def format_row(self, row: dict) -> str:
    """The line printed every config.print_interval steps."""
    return f"{row['step']} " + " ".join(f"{k}={row[k]:.4f}" for k in self.metric_names)

  def finish(self, run: "Run", state) -> dict:
    """After the last step: curves, final evaluation, files; returns the summary's extras."""
    return {}

  def close(self) -> None:
    """Releases what the family opened (e.g. a second checkpoint manager)."""


class MetricsLog:
  """metrics.jsonl: one JSON row per logged step; rows past a resumed step are dropped.

  Every process keeps the rows, as the file would give them back (hooks read them); only the
  writer writes the file.
  """

  def __init__(self, path: Path, resume_step: int, writer: bool = True):
    self.path, self.writer = path, writer
    self.kept = [r for r in self.read(path) if r["step"] <= resume_step]
    if writer:  # atomic: the other processes may be reading the old file
      write_atomic(path, "".join(json.dumps(r) + "\n" for r in self.kept))

  @staticmethod
  def read(path: Path) -> list[dict]:
    """The file's rows; a last line cut short (a process killed while appending) is dropped."""
    if not path.exists():
      return []
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    rows = []
    for i, line in enumerate(lines):
      try:
        rows.append(json.loads(line))
      except json.JSONDecodeError:
        if i < len(lines) - 1:  # damage inside the file, not a cut-short append
          raise WorkdirError(f"{path}: line {i + 1} is not JSON; move the file aside to "
                             "resume without its history") from None
    return rows

  def append(self, rows: list[dict]) -> None:
    lines = [json.dumps(r) + "\n" for r in rows]
    self.kept += [json.loads(line) for line in lines]
    if self.writer:
      with self.path.open("a") as f:
        f.writelines(lines)

  def rows(self, kind: str | None = None) -> list[dict]:
    """Training rows (kind None) or the rows of one kind ("eval")."""
    return [dict(r) for r in self.kept if r.get("kind") == kind]


class Run:
  """What the hooks see of a run in progress: where it writes and how it reports."""

  def __init__(self, workdir: Path, config, log: MetricsLog, start_step: int,
               record: dict, bar=None):
    self.workdir, self.config, self.log = workdir, config, log
    self.start_step, self.record, self.bar = start_step, record, bar
    # One process writes files (pictures, metrics, JSON); every process computes.
    self.writer = jax.process_index() == 0

  def due(self, step: int, interval: int) -> bool:
    """Whether an event of `interval` (0: never) falls at `step`; the last step always does."""
    return bool(interval) and (step % interval == 0 or step == self.config.num_steps)

  def write(self, line: str) -> None:
    """Prints above the progress bar (the writer only)."""
    if self.writer:
      (self.bar.write if self.bar is not None else print)(line)


def prepare_workdir(workdir) -> Path:
  """Creates the workdir and proves it writable, after every check that can fail early."""
  path = Path(workdir)
  try:
    path.mkdir(parents=True, exist_ok=True)
    index = jax.process_index()  # every process proves it, each with its own file
    probe = path / (".write_test" + (f"_{index}" if index else ""))
    probe.write_text("ok")
    probe.unlink()
  except OSError as exc:
    raise WorkdirError(f"workdir {path} is not writable: {exc.strerror or exc}") from None
  return path


def chunk_rows(metrics: dict, first_step: int, n: int, wall_s: float) -> list[dict]:
  """Per-step rows of a finished chunk (wall time is the chunk's end, all the host knows)."""
  host = {k: np.asarray(v[:n], np.float64) for k, v in metrics.items()}
  return [{"step": first_step + i + 1, **{k: float(v[i]) for k, v in host.items()},
           "wall_s": round(wall_s, 3)} for i in range(n)]


def log_finished_chunk(log: MetricsLog, metrics: dict, first_step: int, n: int, t0: float,
                       log_interval: int, last_saved: int, checkpoints: Path) -> list[dict]:
  """Waits for the chunk, logs its rows; a non-finite metric stops the run (rows before it kept)."""
  metrics = jax.device_get(metrics)  # waits for the chunk: wall time is then its end
  rows = chunk_rows(metrics, first_step, n, time.perf_counter() - t0)
  bad = next((r for r in rows if not all(np.isfinite(r[k]) for k in metrics)), None)
  log.append([r for r in rows if r["step"] % log_interval == 0 and
              (bad is None or r["step"] < bad["step"])])
  if bad is not None:
    values = ", ".join(f"{k}={bad[k]}" for k in metrics)
    raise TrainingDiverged(f"non-finite loss at step {bad['step']} ({values}); stopped, last "
                           f"good checkpoint is step {last_saved} in {checkpoints}")
  return rows


def save_if_finite(manager, step: int, state, record: dict, last_saved: int) -> int:
  """Saves unless a parameter went non-finite (the loss of the next step would show it)."""
  if not bool(all_finite(state)):
    raise TrainingDiverged(f"non-finite parameters at step {step}; stopped, last good "
                           f"checkpoint is step {last_saved}")
  checkpoint.save(manager, step, state, record)
  return step


def restore_or_init(family: Family, manager, record: dict):
  """(state on the mesh, start step): the newest readable checkpoint, checked (newer unreadable
  ones set aside), or a fresh state."""
  abstract = sharding.abstract_replicated(jax.eval_shape(family.init_state), family.mesh)
  state, start_step = checkpoint.restore_latest(manager, abstract, record, family.resumable,
                                                family.check_resume, set_aside=True)
  if state is None:
    state, start_step = family.init_state(), 0
  return sharding.put_replicated(state, family.mesh), start_step


def train(family_cls: type[Family], config: ml_collections.ConfigDict, workdir) -> dict:
  """Trains (or resumes) a run of `family_cls` in `workdir`; returns its summary."""
  config = family_cls.validate(config)
  mesh = sharding.make_mesh(config.num_devices)
  family = family_cls(config, mesh)
  feed = None
  try:
    data = family.load_data()
    feed = feed_lib.open_feed(family, data, config, sharding.is_primary_process())
    del data  # a streamed Source lives on in the feed; arrays on the devices need no host copy
    workdir = prepare_workdir(workdir)
    record = checkpoint.make_record(family.name, config)
    manager = checkpoint.open_manager(workdir, config.keep_checkpoints)
    try:
      # Restore (and so reject foreign or corrupt checkpoints) before writing anything.
      state, start_step = restore_or_init(family, manager, record)
      writer = sharding.is_primary_process()
      if writer:
        write_atomic(workdir / "config.json", config.to_json_best_effort(indent=2,
                                                                         sort_keys=True))
      log = MetricsLog(workdir / "metrics.jsonl", start_step, writer)
      run = Run(workdir, config, log, start_step, record)
      state, step, train_s = _loop(family, run, manager, state, feed)
    finally:
      manager.close()
    rows = log.rows()
    return {"workdir": str(workdir), "start_step": start_step, "step": step,
            "train_s": train_s, "iters_per_s": (step - start_step) / max(train_s, 1e-9),
            "final": rows[-1] if rows else None, **family.finish(run, state)}
  except GenjaxError:
    raise
  except Exception as exc:
    lost = sharding.shared_computation_error(exc)
    if lost is None:
      raise
    raise lost from None
  finally:
    if feed is not None:
      feed.close()
    family.close()


def trained_text(summary: dict, unit: str = "steps") -> str:
  """What one invocation of `train` did, for an entry point's done: line: its own steps, time
  and rate, and where it resumed from ("2000 iterations in 21.5 s (93 it/s)", "resumed from
  step 2000: 1000 iterations to step 3000 in 10.2 s (98 it/s)")."""
  start, end, seconds = summary["start_step"], summary["step"], summary["train_s"]
  if start and end == start:
    return f"0 {unit}: the run was at step {end} already"
  rate = (end - start) / max(seconds, 1e-9)
  rate_text = f"{rate:.0f}" if rate >= 10 else f"{rate:.2g}"
  done = (f"{end - start} {unit}" + (f" to step {end}" if start else "")
          + f" in {seconds:.1f} s ({rate_text} it/s)")
  return f"resumed from step {start}: {done}" if start else done


def _chunk_length(family: Family, config, step: int, intervals) -> int:
  """Steps of the chunk starting at `step`: to the next event, the end, or a limit."""
  n = next_chunk_length(step, config.num_steps, config.steps_per_dispatch, intervals)
  limit = family.chunk_limit(step)
  return n if limit is None else min(n, limit)


def _loop(family: Family, run: Run, manager, state, feed):
  """Chunks of steps until config.num_steps; returns (state, step, seconds)."""
  config = run.config
  step = last_saved = run.start_step
  t0 = time.perf_counter()
  run.bar = tqdm.tqdm(total=config.num_steps, initial=step,
                      disable=not (config.progress and run.writer), unit="it",
                      dynamic_ncols=True,
                      desc=f"{family.name} {config.get('dataset', '')}".rstrip())
  intervals = (config.checkpoint_interval, *family.event_intervals())
  print_interval = config.get("print_interval", 0)
  if step == 0:
    family.start(run, state)
  try:
    while step < config.num_steps:
      n = _chunk_length(family, config, step, intervals)
      state, metrics = family.chunk(state, feed.get(step, n), n)
      if step + n < config.num_steps:  # read ahead while the devices run this chunk
        feed.prefetch(step + n, _chunk_length(family, config, step + n, intervals))
      rows = log_finished_chunk(run.log, metrics, step, n, t0, config.log_interval, last_saved,
                                checkpoint.checkpoint_dir(run.workdir))
      step += n
      run.bar.update(n)
      run.bar.set_postfix({k: f"{rows[-1][k]:.3f}" for k in family.metric_names})
      for row in rows:
        if print_interval and row["step"] % print_interval == 0:
          run.write(family.format_row(row))
      run.log.append(family.events(run, step, state))
      if run.due(step, config.checkpoint_interval):
        last_saved = save_if_finite(manager, step, state, run.record, last_saved)
  except KeyboardInterrupt:
    # A chunk is all-or-nothing: keep the last completed one so a rerun resumes from there.
    # Over many processes each may be stopped at another step: a save would wait forever.
    if step > last_saved and jax.process_count() == 1 and bool(all_finite(state)):
      checkpoint.save(manager, step, state, run.record)
    raise
  finally:
    run.bar.close()
  return state, step, time.perf_counter() - t0
