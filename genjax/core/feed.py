"""Where a run's training examples live: on the devices whole, or streamed from the host.

A family's `load_data` returns host arrays (they go to the devices once, as the text families'
do) or a `Source`: examples on the host, readable whole or a few rows at a time. A Source of
at most config.device_data_mb goes to the devices whole, once, and every step draws its batch
there. A larger one is streamed: before each chunk of K steps the host reads the rows those
steps draw (the family's `batch_indices`, a function of the seed and the step alone, which the
steps on the devices draw the same way) into a K x batch array, split over the mesh like the
batch, while a background thread reads the next chunk's. A resumed run reads what a straight
one did, and a streamed run's steps see the very batches a run with the data on the devices
sees. Each process reads only the rows its own devices take.
"""

from concurrent.futures import ThreadPoolExecutor

import flax
import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from genjax.core import sharding
from genjax.core.errors import ConfigError

MB = 10 ** 6  # config.device_data_mb's unit, and the printed sizes'


class Source:
  """Training examples on the host: a tuple of arrays with one row per example (None for a
  part the run does not use, e.g. labels of an unconditional model)."""

  def __len__(self) -> int:
    raise NotImplementedError

  @property
  def nbytes(self) -> int:
    """Bytes of every example, decoded (what the devices would hold)."""
    raise NotImplementedError

  def arrays(self) -> tuple:
    """Every example, decoded: the tuple of full arrays."""
    raise NotImplementedError

  def take(self, idx) -> tuple:
    """The rows `idx` (an integer array of any shape): leaves idx.shape + an example's shape."""
    raise NotImplementedError


class ArraySource(Source):
  """A Source of arrays already in host memory."""

  def __init__(self, arrays: tuple):
    self._arrays = tuple(arrays)

  def __len__(self):
    return len(self._arrays[0])

  @property
  def nbytes(self):
    return sum(a.nbytes for a in self._arrays if a is not None)

  def arrays(self):
    return self._arrays

  def take(self, idx):
    return tuple(None if a is None else a[np.asarray(idx)] for a in self._arrays)


@flax.struct.dataclass
class Streamed:
  """The examples one chunk's steps read, read on the host: leaves K x (a step's rows) x ...;
  step i of the chunk takes row i. Only the first steps of a chunk shorter than K are real."""

  arrays: tuple


def host_cpu():
  """This process's first CPU device: where a streamed run draws its batches' indices (the
  same draws as the steps', on whatever device they run)."""
  return jax.local_devices(backend="cpu")[0]


def size_text(nbytes: int) -> str:
  """47 MB, 3.2 GB."""
  if nbytes >= 1000 * MB:
    return f"{nbytes / 10 ** 9:.1f} GB"
  return f"{nbytes / MB:.0f} MB" if nbytes >= 10 * MB else f"{nbytes / MB:.1f} MB"


class Resident:
  """Data on the devices once; every chunk gets the same arrays."""

  def __init__(self, data_dev):
    self.data_dev = data_dev

  def get(self, step: int, num_steps: int):
    return self.data_dev

  def prefetch(self, step: int, num_steps: int) -> None:
    pass

  def close(self) -> None:
    pass


class Streaming:
  """A Source read chunk by chunk, one chunk ahead, by a background thread.

  indices(first_step, n) -> n x (a step's rows) integers: the examples those steps read.
  """

  def __init__(self, source: Source, indices, max_steps: int, mesh):
    self.source, self.indices, self.max_steps, self.mesh = source, indices, max_steps, mesh
    self.reader = ThreadPoolExecutor(1, thread_name_prefix="genjax-feed")
    self.pending = None  # ((step, n), future) of the chunk being read ahead

  def _sharding(self, ndim_rows: int, ndim: int) -> NamedSharding:
    """K x rows x ...: the last axis of a step's rows (the batch) split over the mesh."""
    spec = [None] * ndim
    spec[ndim_rows] = sharding.DATA_AXIS
    return NamedSharding(self.mesh, PartitionSpec(*spec))

  def _read(self, step: int, n: int) -> Streamed:
    idx_NxR = np.asarray(self.indices(step, n))
    axis = idx_NxR.ndim - 1  # the batch axis of idx and of every leaf
    shape = (self.max_steps, *idx_NxR.shape[1:])
    spans = {index[axis].indices(shape[axis])[:2] for index in
             self._sharding(axis, len(shape)).addressable_devices_indices_map(shape).values()}
    low, high = min(s[0] for s in spans), max(s[1] for s in spans)
    # This process's devices take rows [low, high) of every batch: it reads only those.
    rows = self.source.take(idx_NxR[..., low:high])
    return Streamed(tuple(None if a is None else self._put(a, n, shape, axis, low)
                          for a in rows))

  def _put(self, local, n: int, shape: tuple, axis: int, low: int) -> jax.Array:
    """This process's rows of a chunk as the K x ... array on the mesh (steps past n zero)."""
    padded = local
    if n < self.max_steps:  # one shape for every chunk: one compiled chunk
      padded = np.zeros((self.max_steps, *local.shape[1:]), local.dtype)
      padded[:n] = local
    full_shape = (*shape, *local.shape[axis + 1:])

    def device_part(index):
      start, stop, _ = index[axis].indices(full_shape[axis])
      return padded[(*index[:axis], slice(start - low, stop - low), *index[axis + 1:])]

    return jax.make_array_from_callback(full_shape, self._sharding(axis, local.ndim),
                                        device_part)

  def get(self, step: int, num_steps: int) -> Streamed:
    if self.pending is not None and self.pending[0] == (step, num_steps):
      future, self.pending = self.pending[1], None
      return future.result()
    return self._read(step, num_steps)

  def prefetch(self, step: int, num_steps: int) -> None:
    self.pending = ((step, num_steps), self.reader.submit(self._read, step, num_steps))

  def close(self) -> None:
    self.reader.shutdown(wait=False, cancel_futures=True)


def on_devices(family, data):
  """What family.load_data() returned, whole on the devices (a Source decoded first)."""
  return family.device_data(data.arrays() if isinstance(data, Source) else data)


def open_feed(family, data, config, writer: bool):
  """Resident or Streaming for what `family.load_data()` returned; a Source's choice is
  printed ("data: 47 MB on the devices")."""
  if not isinstance(data, Source):
    return Resident(family.device_data(data))
  limit_mb = config.device_data_mb
  if data.nbytes <= limit_mb * MB:
    if writer:
      print(f"data: {size_text(data.nbytes)} on the devices")
    return Resident(family.device_data(data.arrays()))
  if not getattr(family, "streams", False):
    raise ConfigError(f"config.device_data_mb: the {family.name} family keeps its data on the "
                      f"devices, and its {size_text(data.nbytes)} are over {limit_mb} MB; "
                      "raise it", field="config.device_data_mb")
  if writer:
    print(f"data: {size_text(data.nbytes)} streamed from the host (over "
          f"config.device_data_mb={limit_mb:g})")
  return Streaming(data, family.batch_indices, config.steps_per_dispatch, family.mesh)
