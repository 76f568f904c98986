"""Errors raised by shmforest.

Every error derives from :class:`ShmforestError` and also from the standard
library exception a caller would naturally catch, so ``except FileNotFoundError``
or ``except concurrent.futures.BrokenExecutor`` keeps working without knowing
about this package.
"""

from __future__ import annotations

from concurrent.futures import BrokenExecutor
from typing import Any

__all__ = [
    "ShmforestError",
    "SegmentNotFoundError",
    "SegmentMismatchError",
    "SharedMemoryFullError",
    "SharedArrayClosedError",
    "BudgetError",
    "NestingDepthError",
    "WorkerCrashedError",
    "TaskPicklingError",
    "ExecutorNotFoundError",
    "PluginImportError",
    "BudgetWarning",
    "PoolTerminatedError",
    "TaskRetryWarning",
]


class ShmforestError(Exception):
    """Base class of every error raised by shmforest."""


class SegmentNotFoundError(ShmforestError, FileNotFoundError):
    """A shared-memory segment named by a handle no longer exists."""


class SegmentMismatchError(ShmforestError, ValueError):
    """A handle's dtype, shape or offset does not fit the block it names."""


class SharedMemoryFullError(ShmforestError, MemoryError):
    """Neither shared memory nor any temporary folder has room for a requested block."""


class SharedArrayClosedError(ShmforestError, ValueError):
    """A shared array or dataset was used after ``close()``.

    A ``ValueError``, as for operations on a closed file.
    """


class BudgetError(ShmforestError, RuntimeError):
    """The process budget is unusable (closed, corrupt or inconsistent)."""


class NestingDepthError(ShmforestError, RecursionError):
    """Worker pools were nested deeper than the configured guard allows."""


class WorkerCrashedError(ShmforestError, BrokenExecutor):
    """A worker process died while it held tasks.

    Attributes
    ----------
    pid : int
        Process id of the worker that died.
    exitcode : int or None
        Its exit code; negative values are the signal that killed it.
    """

    def __init__(self, message: str, *, pid: int, exitcode: int | None) -> None:
        super().__init__(message)
        self.pid = pid
        self.exitcode = exitcode

    def __reduce__(self) -> tuple[Any, ...]:  # keep pid/exitcode across pickling
        return (_rebuild_crash, (str(self), self.pid, self.exitcode))


def _rebuild_crash(message: str, pid: int, exitcode: int | None) -> WorkerCrashedError:
    return WorkerCrashedError(message, pid=pid, exitcode=exitcode)


class TaskPicklingError(ShmforestError, TypeError):
    """A task or its result could not be serialised to cross a process boundary."""


class ExecutorNotFoundError(ShmforestError, LookupError):
    """No executor is registered under the requested name."""


class PluginImportError(ShmforestError, ImportError):
    """A registered executor plugin failed to import."""


class BudgetWarning(ShmforestError, RuntimeWarning):
    """A process budget's tokens did not add up when it was closed.

    A ``RuntimeWarning``, so it is shown by default (a ``ResourceWarning`` is not).
    """


class TaskRetryWarning(ShmforestError, RuntimeWarning):
    """A worker died while it ran a task, and the task runs again on a fresh worker.

    A ``RuntimeWarning``, so it is shown by default.
    """


class PoolTerminatedError(ShmforestError, BrokenExecutor):
    """A worker pool was torn down (Ctrl-C, or exit after an error) while it held the task."""
