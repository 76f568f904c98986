"""``serial``: every task runs inline, in the caller, when it is submitted."""

from __future__ import annotations

import concurrent.futures as cf
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from shmforest.executors.base import Executor, completed_future, run_in_task

__all__ = ["SerialExecutor"]

T = TypeVar("T")


class SerialExecutor(Executor):
    """Runs each task inline at ``submit``; the reference every other executor must match.

    Parameters
    ----------
    **options
        Accepted and ignored (``max_workers``, ``budget``), so code can switch
        executors by name alone.
    """

    name: ClassVar[str] = "serial"
    shares_memory: ClassVar[bool] = True
    uses_processes: ClassVar[bool] = False

    def __init__(self, **options: Any) -> None:
        self._shutdown = False

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> cf.Future[T]:
        if self._shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")
        return completed_future(run_in_task, (self, fn, args, kwargs), {})

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._shutdown = True
