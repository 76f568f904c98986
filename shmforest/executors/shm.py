"""``shm``: the budgeted worker pool, with array arguments placed once in shared memory.

::

    submit(fn, X, {"y": y}, [a, b])
      walk args (tuples, lists, dicts): each numpy array of 64 KiB or more
        seen before (same object)? ──► reuse its block
        else ──► SharedArray.copy_of(array), remembered by identity
      the task carries _Placed(handle) instead of the array (~100 bytes)
    in the worker: _Placed unpickles as a read-only view of the block (no copy)
    inline in the caller: _Placed resolves to the same read-only view

One array passed to 1,000 tasks is copied once. Arrays are treated as inputs:
a block is a snapshot taken at first use, so an array changed in place after it
was submitted is not re-sent. Blocks are released when the source array is
garbage collected and every task using it is done, and at shutdown.
"""

from __future__ import annotations

import threading
import weakref
from functools import partial
from typing import Any, ClassVar

import numpy as np

from shmforest.budget import ProcessBudget
from shmforest.executors.process import PoolExecutor
from shmforest.pool import preload_in_workers
from shmforest.shared import ArrayHandle, SharedArray, map_arguments, place_arguments

__all__ = ["ShmExecutor"]

# Tasks of this executor unpickle its ``_attach``: workers start with it loaded.
preload_in_workers(__name__)


class _Placed:
    """An array argument, travelling as its shared-memory handle."""

    __slots__ = ("handle", "block")

    def __init__(self, block: SharedArray) -> None:
        self.block = block  # keeps the block alive while the task holds this
        self.handle = block.handle

    def __reduce__(self) -> tuple[Any, ...]:
        return (_attach, (self.handle,))


def _attach(handle: ArrayHandle) -> np.ndarray:
    return handle.attach(writable=False)


class ShmExecutor(PoolExecutor):
    """Budgeted non-daemonic worker processes; arrays in arguments placed once, sent as handles.

    Parameters
    ----------
    max_workers : int, optional
        Size of a new budget for this executor; by default the process-wide
        budget, or the one this process runs under.
    budget : ProcessBudget, optional
        Draw workers from this budget.
    start_method : {"fork", "spawn", "forkserver"}, optional
        How workers start; default ``SHMFOREST_START_METHOD`` or forkserver.
    min_bytes : int, default 65536
        Arrays smaller than this are pickled with the task (a block costs more).
    max_retries : int, default 2
        A task whose worker dies (a signal, the OOM killer) runs again on a fresh
        worker, up to this many times, with a warning each time; then it fails
        with :class:`~shmforest.errors.WorkerCrashedError`.
    """

    name: ClassVar[str] = "shm"
    shares_memory: ClassVar[bool] = True

    def __init__(
        self,
        max_workers: int | None = None,
        *,
        budget: ProcessBudget | None = None,
        start_method: str | None = None,
        min_bytes: int = 1 << 16,
        max_retries: int = 2,
    ) -> None:
        if isinstance(min_bytes, bool) or not isinstance(min_bytes, int) or min_bytes < 0:
            raise ValueError(f"min_bytes must be a non-negative int, got {min_bytes!r}")
        super().__init__(max_workers, budget=budget, start_method=start_method, max_retries=max_retries)
        self._min_bytes = min_bytes
        self._placed: dict[int, tuple[weakref.ref[np.ndarray], SharedArray]] = {}
        self._placed_lock = threading.Lock()

    @property
    def placed_bytes(self) -> int:
        """Bytes this executor currently holds in shared memory for its tasks' arguments."""
        with self._placed_lock:
            return sum(block.nbytes for _, block in self._placed.values())

    def _place(self, array: np.ndarray) -> _Placed:
        key = id(array)
        with self._placed_lock:
            entry = self._placed.get(key)
            if entry is not None and entry[0]() is array:
                return _Placed(entry[1])
            block = SharedArray.copy_of(array)
            # Forget the block when the source array goes; in-flight tasks keep it alive.
            ref = weakref.ref(array, partial(self._forget_gone, key))
            self._placed[key] = (ref, block)
            return _Placed(block)

    def _forget_gone(self, key: int, _ref: weakref.ref[np.ndarray]) -> None:
        self._forget(key)

    def _forget(self, key: int) -> None:
        with self._placed_lock:
            self._placed.pop(key, None)

    def _prepare_args(self, obj: Any) -> Any:
        return place_arguments(obj, self._place, min_bytes=self._min_bytes)

    @staticmethod
    def _resolve_args(obj: Any) -> Any:
        # Only an inline run sees _Placed objects; in a worker they arrived as views.
        return map_arguments(obj, lambda v: v.handle.attach(writable=False) if isinstance(v, _Placed) else v)

    def _after_shutdown(self) -> None:
        with self._placed_lock:
            entries, self._placed = list(self._placed.values()), {}
        for _, block in entries:
            block.close()
