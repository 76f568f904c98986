"""The public face of the pool: :class:`WorkerPool`, and what code inside its tasks calls."""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from shmforest.budget import ProcessBudget, check_nesting_depth, default_budget
from shmforest.pool import worker as w_
from shmforest.pool.launch import check_start_method, default_start_method
from shmforest.pool.owner import INLINE_POOL, PoolState

__all__ = ["WorkerPool", "check_max_retries", "in_worker", "worker_free_workers", "worker_submit"]

T = TypeVar("T")


def in_worker() -> bool:
    """Whether this process is a :class:`WorkerPool` worker."""
    return w_.current_worker() is not None


def check_max_retries(max_retries: Any) -> int:
    """``max_retries`` if it is a non-negative int, else a ``TypeError`` or ``ValueError`` naming it."""
    if isinstance(max_retries, bool) or not isinstance(max_retries, int):
        raise TypeError(f"max_retries must be a non-negative int, got {max_retries!r} ({type(max_retries).__name__})")
    if max_retries < 0:
        raise ValueError(f"max_retries must be a non-negative int, got {max_retries}")
    return max_retries


def _running_pool(caller: str) -> Any:
    """What runs the current task: its pool (inline in the owner) or this worker's link to it."""
    pool = INLINE_POOL.get()
    if pool is not None:
        return pool
    worker = w_.current_worker()
    if worker is None:
        raise RuntimeError(f"{caller}() is for code running inside a WorkerPool task; this code is not running in one")
    return worker


def worker_submit(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> cf.Future[T]:
    """Submit a task, from inside a task, to the pool running it.

    The task runs on an idle worker, or on a new one if a budget token is free,
    and otherwise inline, here, before this returns. It never waits for a token.

    Raises
    ------
    RuntimeError
        Called outside any task of a :class:`WorkerPool`.
    """
    runner = _running_pool("worker_submit")
    if isinstance(runner, WorkerPool):
        return runner.submit_nested(fn, *args, **kwargs)
    return runner.submit(fn, args, kwargs)


def worker_free_workers() -> int:
    """From inside a task: how many workers a :func:`worker_submit` could get right now.

    The pool's idle workers plus the budget's free tokens; a moment later it may
    differ, so it is a hint (a submission that finds no one runs inline).

    Raises
    ------
    RuntimeError
        Called outside any task of a :class:`WorkerPool`.
    """
    return _running_pool("worker_free_workers").free_workers()


class WorkerPool:
    """A pool of non-daemonic worker processes that never outgrows its budget.

    Parameters
    ----------
    budget : ProcessBudget, optional
        Tokens to draw on, one per live worker. Default: :func:`default_budget`
        (the budget of the process tree this process runs in, if any).
    start_method : {"forkserver", "spawn", "fork"}, optional
        How workers are started. Default: :func:`default_start_method`.
    max_retries : int, default 0
        How many times a task whose worker died (a signal, the OOM killer, an
        exit) is run again, each time on a fresh worker, before it fails with
        :class:`~shmforest.errors.WorkerCrashedError`. Each retry warns
        (:class:`~shmforest.errors.TaskRetryWarning`) naming the worker and its
        signal. For tasks that may safely run twice; the ``process`` and ``shm``
        executors ask for 2.

    Notes
    -----
    Tasks and results travel by cloudpickle, so lambdas, closures and local
    classes work; a task that runs inline is not pickled at all. A task may submit
    tasks to the pool running it with :func:`worker_submit`; they run in parallel
    when a worker or token is free and inline otherwise, so recursion never
    deadlocks, at any budget. A worker killed mid-task fails its task with
    :class:`~shmforest.errors.WorkerCrashedError`, after ``max_retries`` reruns;
    the pool starts another worker when needed. Workers exit when the owner dies; Ctrl-C in the owner, inside a
    ``with`` block or uncaught, terminates every worker.

    Examples
    --------
    >>> with WorkerPool(ProcessBudget(2)) as pool:      # doctest: +SKIP
    ...     pool.submit(lambda x: x * x, 7).result()
    49
    """

    def __init__(
        self, budget: ProcessBudget | None = None, *, start_method: str | None = None, max_retries: int = 0
    ) -> None:
        if budget is not None and not isinstance(budget, ProcessBudget):
            raise TypeError(f"budget must be a ProcessBudget, got {type(budget).__name__}")
        check_max_retries(max_retries)
        self._depth = check_nesting_depth()
        method = default_start_method() if start_method is None else check_start_method(start_method, "start_method")
        self._budget = budget if budget is not None else default_budget()
        self._state = PoolState(self._budget, mp.get_context(method), self._depth + 1, max_retries)
        weakref.finalize(self, self._state.shutdown, False, False)

    @property
    def budget(self) -> ProcessBudget:
        """The budget this pool's workers hold tokens of."""
        return self._budget

    @property
    def start_method(self) -> str:
        return self._state.ctx.get_start_method()

    @property
    def max_retries(self) -> int:
        """How many times a task whose worker died is run again before it fails."""
        return self._state.max_retries

    @property
    def max_workers(self) -> int:
        """The most workers the pool may ever run: its budget's size."""
        return self._budget.size

    def worker_pids(self) -> list[int]:
        """Process ids of the pool's live workers."""
        with self._state.lock:
            return [w.pid for w in self._state.workers if w.pid and not w.dead]

    def free_workers(self) -> int:
        """Workers a task submitted now could start on at once: idle ones, or new ones on free tokens."""
        return self._state.free_workers()

    def warm_up(self) -> None:
        """Start a worker on every free token now, in the background, and return at once.

        Workers otherwise start with the tasks that need them. Call this before
        some work of your own that ends in submitting tasks: the workers start
        meanwhile (a forkserver start is a few milliseconds each) and sit idle
        until those tasks come. They hold their tokens until :meth:`shutdown`,
        as workers that have run a task do.
        """
        self._state.warm_up()

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> cf.Future[T]:
        """Schedule ``fn(*args, **kwargs)``; return its Future.

        It goes to an idle worker, else to a new worker if a token is free, else it
        waits for one of the pool's workers; a pool that has no worker and gets no
        token runs it inline, here, so nothing ever waits on tokens that will not come.

        Raises
        ------
        RuntimeError
            The pool was shut down.
        """
        return self._state.submit(self, fn, args, kwargs, nested=False)

    def submit_nested(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> cf.Future[T]:
        """Like :meth:`submit` but never waits: an idle worker, a new worker, or inline now."""
        return self._state.submit(self, fn, args, kwargs, nested=True)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Finish, then stop the workers and give their tokens back.

        Parameters
        ----------
        wait : bool, default True
            Return only once every task is done and every worker has exited.
        cancel_futures : bool, default False
            Cancel tasks that have not started.
        """
        self._state.shutdown(wait, cancel_futures)

    def terminate(self) -> None:
        """Stop now: cancel what has not started, kill the workers, fail what they ran."""
        self._state.terminate()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        if exc_type is not None and not issubclass(exc_type, Exception):
            self.terminate()  # Ctrl-C: do not wait for tasks the user gave up on
        else:
            self.shutdown(wait=True)

    def __reduce__(self) -> Any:
        raise TypeError("a WorkerPool cannot be sent to another process; inside a task use worker_submit()")

    def __repr__(self) -> str:
        s = self._state
        state = "shut down" if s.closing else f"{len(s.workers)} workers"
        return f"<WorkerPool {state}, budget={self._budget.name} size={self._budget.size}, {self.start_method}>"
