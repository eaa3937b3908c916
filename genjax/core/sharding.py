"""Data parallelism with jax.sharding: a 1-D `data` mesh, batch split, state replicated."""

import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from genjax.core.errors import ConfigError

DATA_AXIS = "data"


def maybe_initialize_distributed() -> None:
  """Multi-host start when the environment asks for it (GENJAX_DISTRIBUTED=1).

  jax.distributed.initialize() then reads the coordinator address, process count and id from
  the cluster environment (Cloud TPU, SLURM, or JAX_COORDINATOR_ADDRESS/JAX_NUM_PROCESSES/
  JAX_PROCESS_ID); afterwards jax.devices() lists every host's devices.
  """
  if os.environ.get("GENJAX_DISTRIBUTED") == "1" and not jax.distributed.is_initialized():
    jax.distributed.initialize()


def make_mesh(num_devices: int = 0) -> Mesh:
  """A `data` mesh over the first num_devices devices (0: all of them)."""
  devices = jax.devices()
  if num_devices < 0 or num_devices > len(devices):
    raise ConfigError(f"config.num_devices={num_devices} but {len(devices)} device(s) are "
                      f"available ({devices[0].platform}); use 0 for all")
  return Mesh(np.array(devices[:num_devices or len(devices)]), (DATA_AXIS,))


def check_divisible(batch_size: int, mesh: Mesh, field: str = "config.batch_size") -> None:
  n = mesh.devices.size
  if batch_size % n:
    raise ConfigError(f"{field}={batch_size} is not divisible by the {n} devices of the "
                      f"'{DATA_AXIS}' mesh axis; use a multiple of {n}, or fewer devices "
                      "(config.num_devices, bench_jit.py --num_devices)")


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec())


def batch_split(mesh: Mesh) -> NamedSharding:
  """Leading (batch) axis split over `data`, the rest whole."""
  return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def constrain_batch(x: jax.Array, mesh: Mesh | None) -> jax.Array:
  """Inside jit: ask XLA to split x's batch axis over the mesh (no-op without a mesh)."""
  if mesh is None:
    return x
  return jax.lax.with_sharding_constraint(x, batch_split(mesh))


def put_replicated(tree, mesh: Mesh):
  """Every leaf on every device of the mesh; on many hosts each gives its full local copy."""
  sharding = replicated(mesh)
  if jax.process_count() == 1:
    return jax.device_put(tree, sharding)
  return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)),
                      tree)


def abstract_replicated(abstract_tree, mesh: Mesh):
  """ShapeDtypeStructs carrying the replicated sharding: Orbax restores onto any device count."""
  sharding = replicated(mesh)
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding),
                      abstract_tree)
