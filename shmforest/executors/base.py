"""The executor interface every strategy implements, and the task context.

An :class:`Executor` is a :class:`concurrent.futures.Executor` with a ``name``,
capability flags and *nested submission*: a task may submit tasks to the executor
running it. Such a submission runs in parallel when a budget token is free and
inline, in the caller, otherwise; it never waits for a token, so recursion cannot
deadlock at any budget.

Inside a task, :func:`current_executor` returns the executor running it (outside
any task, a serial one), so recursive code needs no executor argument::

    def total(node):
        ex = shmforest.current_executor()
        futures = [ex.submit(total, child) for child in node.children]
        return node.value + sum(f.result() for f in futures)
"""

from __future__ import annotations

import concurrent.futures as cf
import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar, TypeVar

from shmforest.budget import ProcessBudget, default_budget

__all__ = ["Executor", "completed_future", "in_task", "resolve_budget", "run_in_task", "running_executor"]

T = TypeVar("T")

# The executor running the current task, or None outside any task. A ContextVar so
# threads and inline runs each see their own.
_CURRENT: contextvars.ContextVar[Executor | None] = contextvars.ContextVar("shmforest_executor", default=None)


class Executor(cf.Executor):
    """Base class of shmforest executors; subclasses implement :meth:`submit`.

    Class attributes describe the plugin:

    ``name``
        The registry name (``"shm"``).
    ``shares_memory``
        Tasks see the caller's arrays without a copy (threads, shared memory).
    ``uses_processes``
        Tasks run in other processes, so they and their results must pickle.
    ``install_hint``
        What to install when the plugin's import fails.

    Subclasses keep the stdlib signatures exactly: ``submit(fn, /, *args, **kwargs)``,
    ``map(fn, *iterables, timeout=None, chunksize=1)``,
    ``shutdown(wait=True, *, cancel_futures=False)``.
    """

    name: ClassVar[str] = "executor"
    shares_memory: ClassVar[bool] = False
    uses_processes: ClassVar[bool] = False
    install_hint: ClassVar[str] = ""

    @property
    def max_workers(self) -> int:
        """The most tasks this executor runs at once (its budget's size)."""
        return 1

    def free_workers(self) -> int | None:
        """How many workers a task submitted now would start on at once; None if unknown.

        A hint for code that splits work only when someone can take it (the tree
        builder hands half a level to a worker that is idle, and only then). It
        may be stale a moment later: a submission that finds no one free still
        runs inline, which is correct, only not parallel. Inside a task, ask
        :func:`current_executor`. The default knows nothing.
        """
        return None

    def warm_up(self) -> None:
        """Hint: tasks for every worker are coming soon; start the workers now if they start on demand.

        For a caller with work of its own to do first (the top levels of a tree
        before its subtrees are handed on): starting the workers then overlaps
        that work. It must return at once and never change what a task computes.
        The default does nothing.
        """

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} max_workers={self.max_workers}>"

    def __copy__(self) -> Executor:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Executor:
        # An executor is a handle on running workers: copying an estimator that
        # holds one (sklearn.base.clone deep-copies parameters) must share it.
        return self


def running_executor() -> Executor | None:
    """The executor running the current task, or None outside any task.

    :func:`shmforest.current_executor` is what task code calls; this is for
    executors telling their own nested submissions from outside ones.
    """
    return _CURRENT.get()


def in_task() -> bool:
    """Whether the caller is running inside a task of some shmforest executor."""
    return _CURRENT.get() is not None


@contextmanager
def _running_under(executor: Executor) -> Iterator[None]:
    token = _CURRENT.set(executor)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def run_in_task(executor: Executor, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
    """Call ``fn(*args, **kwargs)`` with ``executor`` as :func:`current_executor`."""
    with _running_under(executor):
        return fn(*args, **kwargs)


def completed_future(fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> cf.Future[T]:
    """Run ``fn`` now and return a finished future holding its result or exception."""
    future: cf.Future[T] = cf.Future()
    future.set_running_or_notify_cancel()
    try:
        result = fn(*args, **kwargs)
    except BaseException as exc:  # noqa: BLE001 - a future carries whatever the task raised
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        future.set_exception(exc)
    else:
        future.set_result(result)
    return future


def resolve_budget(max_workers: int | None, budget: ProcessBudget | None) -> tuple[ProcessBudget, bool]:
    """The budget an executor draws on, and whether the executor must close it.

    In order: the ``budget`` given; the budget this process runs under (inside a
    worker, ``max_workers`` cannot widen the tree's budget, as a sub-make's ``-j``
    cannot); a new budget of ``max_workers`` tokens; the process-wide default.
    """
    if max_workers is not None:
        if isinstance(max_workers, bool) or not isinstance(max_workers, int):
            raise TypeError(f"max_workers must be a positive int or None, got {type(max_workers).__name__}")
        if max_workers < 1:
            raise ValueError(f"max_workers must be a positive int or None, got {max_workers}")
    if budget is not None:
        if not isinstance(budget, ProcessBudget):
            raise TypeError(f"budget must be a ProcessBudget or None, got {type(budget).__name__}")
        return budget, False
    inherited = ProcessBudget.from_environment()
    if inherited is not None:
        return inherited, True
    if max_workers is not None:
        return ProcessBudget(max_workers, inherit=False), True
    return default_budget(), False
