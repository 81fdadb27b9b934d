"""Data parallelism with ``jax.sharding``: one mesh axis ``"data"`` over the devices.

Parameters and optimiser state are replicated on every device; each batch is split along its
leading axis, one equal slice per device. ``jax.jit`` with these shardings runs the step as one
SPMD program, and XLA inserts the gradient all-reduce, so the update equals the single-device
update up to floating-point summation order.

Multi-host: call ``jax.distributed.initialize()`` first in every process; the mesh then spans
``jax.devices()`` of all hosts, each process's data source yields its own ``B / process_count``
rows, and :func:`shard_batch` assembles the global batch with
``jax.make_array_from_process_local_data`` (the same call is used with one process).
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = ["DATA_AXIS", "data_mesh", "replicated", "batch_sharding", "replicate", "shard_batch"]

DATA_AXIS = "data"


def data_mesh(devices: Optional[Sequence[jax.Device]] = None) -> Mesh:
    """1-D mesh with axis ``"data"`` over ``devices`` (default: all devices of all processes)."""
    devices = jax.devices() if devices is None else list(devices)
    return Mesh(np.asarray(devices), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
    """Sharding that keeps a full copy of an array on every device of ``mesh``."""
    return NamedSharding(mesh, PartitionSpec())


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Sharding that splits an array's leading (batch) axis over the ``"data"`` axis."""
    return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Place every leaf of ``tree`` on all devices of ``mesh``."""
    return jax.device_put(tree, replicated(mesh))


def shard_batch(batch: Mapping[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
    """Global ``jax.Array`` batch from this process's rows, split over the ``"data"`` axis.

    Args:
      batch: ``{name: array[B_local, ...]}``, this process's rows (all rows with one process).
      mesh: a :func:`data_mesh`.

    Returns:
      ``{name: jax.Array[B_local * process_count, ...]}`` sharded on the leading axis.

    Raises:
      ValueError: if the arrays' leading sizes differ or ``B_local`` does not divide over this
        process's devices of the mesh.
    """
    local_devices = mesh.local_devices
    sizes = {k: (np.shape(v)[0] if np.ndim(v) else None) for k, v in batch.items()}
    if not sizes or None in sizes.values() or len(set(sizes.values())) != 1:
        raise ValueError(f"batch arrays must share a leading batch axis, got leading sizes {sizes}")
    size = next(iter(sizes.values()))
    if size % len(local_devices):
        raise ValueError(
            f"batch size {size} (per process) is not divisible by the {len(local_devices)} local devices "
            f"of the data mesh; choose a batch size that is a multiple of {len(local_devices)}"
        )
    sharding = batch_sharding(mesh)
    return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v)) for k, v in batch.items()}
