"""Errors of the dask plugin; each pairs shmforest's base with the matching stdlib kind."""

from __future__ import annotations

from concurrent.futures import BrokenExecutor

from shmforest.errors import ShmforestError

__all__ = ["PlacementError", "HostCopyReadOnlyError", "WorkerLostError"]


class PlacementError(ShmforestError, RuntimeError):
    """A task reached a worker whose machine holds no copy of the data it needs.

    Data is placed on the machines the cluster had when a dataset was first
    submitted; a worker of a machine that joined later cannot attach it.
    """


class HostCopyReadOnlyError(ShmforestError, ValueError):
    """A task asked to write into a per-machine copy of a dataset.

    Writes there would never reach the dataset's owner, on the client's machine,
    so they are refused instead of being lost.
    """


class WorkerLostError(ShmforestError, BrokenExecutor):
    """Dask gave up on a task because the workers running it kept dying (``KilledWorker``)."""
