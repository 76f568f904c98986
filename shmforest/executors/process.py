"""``process``: tasks run in budgeted worker processes; arguments pickled per task.

The baseline people use today (``multiprocessing.Pool``, ``ProcessPoolExecutor``):
each task's arguments are serialised (cloudpickle, so lambdas and closures work)
and sent to a worker, every time. It runs on the same :class:`~shmforest.pool.WorkerPool`
as ``shm``, so the two differ only in how data travels.

Inside a task, :func:`~shmforest.executors.current_executor` is a stand-in for
the executor, living in the worker: its ``submit`` goes back to the owning pool
(:func:`~shmforest.pool.worker_submit`), which runs the task on another worker
when a token is free, or tells the submitter to run it in place.
"""

from __future__ import annotations

import concurrent.futures as cf
from collections.abc import Callable
from functools import partial
from typing import Any, ClassVar, TypeVar

from shmforest.budget import ProcessBudget
from shmforest.executors.base import Executor, resolve_budget, run_in_task, running_executor
from shmforest.pool import WorkerPool, check_max_retries, preload_in_workers, worker_free_workers, worker_submit

__all__ = ["ProcessExecutor", "PoolExecutor"]

# Every task unpickles this module's stand-in (``_InWorker``): workers start with it loaded.
preload_in_workers(__name__)

T = TypeVar("T")


def _run_task(
    executor: PoolExecutor | _InWorker, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> T:
    """What every pool task runs: ``fn`` with ``executor`` as the current executor."""
    return run_in_task(executor, fn, executor._resolve_args(args), executor._resolve_args(kwargs))


class PoolExecutor(Executor):
    """An executor on a :class:`~shmforest.pool.WorkerPool`; subclasses choose how arguments travel."""

    shares_memory: ClassVar[bool] = False
    uses_processes: ClassVar[bool] = True

    def __init__(
        self,
        max_workers: int | None = None,
        *,
        budget: ProcessBudget | None = None,
        start_method: str | None = None,
        max_retries: int = 2,
    ) -> None:
        check_max_retries(max_retries)
        self._budget, self._close_budget = resolve_budget(max_workers, budget)
        self._pool = WorkerPool(self._budget, start_method=start_method, max_retries=max_retries)
        self._closed = False
        self._cleaned_up = False
        self._in_flight: dict[int, Any] = {}

    @property
    def budget(self) -> ProcessBudget:
        """The budget the workers hold tokens of."""
        return self._budget

    @property
    def max_workers(self) -> int:
        return self._budget.size

    @property
    def max_retries(self) -> int:
        """How many times a task whose worker died is run again before it fails."""
        return self._pool.max_retries

    @property
    def start_method(self) -> str:
        return self._pool.start_method

    def worker_pids(self) -> list[int]:
        """Process ids of the live workers."""
        return self._pool.worker_pids()

    def free_workers(self) -> int:
        """Workers a task submitted now would start on at once (a hint: see ``tree/growth.py``)."""
        return self._pool.free_workers()

    def warm_up(self) -> None:
        """Start a worker on every free token, in the background (:meth:`WorkerPool.warm_up`)."""
        if not self._closed:
            self._pool.warm_up()

    # Subclasses rewrite arguments before they travel, and back where they run.
    def _prepare_args(self, obj: Any) -> Any:
        return obj

    @staticmethod
    def _resolve_args(obj: Any) -> Any:
        return obj

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> cf.Future[T]:
        if self._closed:
            raise RuntimeError("cannot schedule new futures after shutdown")
        send = self._pool.submit_nested if running_executor() is self else self._pool.submit
        travelling = (self._prepare_args(args), self._prepare_args(kwargs))
        future = send(_run_task, self, fn, *travelling)
        if not future.done():
            # Rewritten arguments may own resources (shm's blocks) that the worker
            # has yet to attach: keep them until the task is over.
            key = id(future)
            self._in_flight[key] = travelling
            future.add_done_callback(partial(self._land, key))
        return future

    def _land(self, key: int, _future: cf.Future[Any]) -> None:
        """A task is over: what travelled with it may go."""
        self._in_flight.pop(key, None)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._closed = True
        self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)
        # Clean up at the first shutdown that waits, even after one that did not.
        if wait and not self._cleaned_up:
            self._cleaned_up = True
            self._after_shutdown()
            if self._close_budget:
                self._budget.close()

    def _after_shutdown(self) -> None:
        pass

    def __reduce__(self) -> tuple[Any, ...]:
        # What a task receives in a worker: a stand-in that submits back to this pool.
        return (_InWorker, (type(self), self.max_workers))


class _InWorker(Executor):
    """The executor as seen from inside a task running in a worker process."""

    def __init__(self, cls: type[PoolExecutor], max_workers: int) -> None:
        self._cls = cls
        self._max_workers = max_workers
        self.name = cls.name  # type: ignore[misc]
        self.shares_memory = cls.shares_memory  # type: ignore[misc]
        self.uses_processes = cls.uses_processes  # type: ignore[misc]

    @property
    def max_workers(self) -> int:
        return self._max_workers

    def _resolve_args(self, obj: Any) -> Any:
        return self._cls._resolve_args(obj)

    def free_workers(self) -> int:
        """Workers a task submitted now would start on at once (a hint)."""
        return worker_free_workers()

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> cf.Future[T]:
        return worker_submit(_run_task, self, fn, args, kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        pass  # the pool belongs to the process that created the executor

    def __reduce__(self) -> tuple[Any, ...]:
        return (_InWorker, (self._cls, self._max_workers))


class ProcessExecutor(PoolExecutor):
    """Budgeted worker processes; each task's arguments are pickled and sent.

    Parameters
    ----------
    max_workers : int, optional
        Size of a new budget for this executor; by default the process-wide
        budget, or the one this process runs under.
    budget : ProcessBudget, optional
        Draw workers from this budget.
    start_method : {"fork", "spawn", "forkserver"}, optional
        How workers start; default ``SHMFOREST_START_METHOD`` or forkserver.
    max_retries : int, default 2
        A task whose worker dies (a signal, the OOM killer) runs again on a fresh
        worker, up to this many times, with a warning each time; then it fails
        with :class:`~shmforest.errors.WorkerCrashedError`.
    """

    name: ClassVar[str] = "process"
