"""``thread``: tasks run on threads, each live thread holding one budget token.

::

    submit ──► an idle thread? ─── yes ─► hand the task to it
                  │ no
                  ▼
               a token free? ──── yes ─► start a thread (it keeps the token) with the task
                  │ no
                  ▼
               top-level call and threads exist? ── yes ─► queue (threads drain it)
                  │ no (a nested call, or no thread at all)
                  ▼
               run inline, in the caller

Threads share the caller's memory, so nothing is copied; numpy releases the GIL
in most array work, which is where threads pay.
"""

from __future__ import annotations

import concurrent.futures as cf
import queue
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from shmforest.budget import ProcessBudget
from shmforest.executors.base import Executor, completed_future, resolve_budget, run_in_task, running_executor

__all__ = ["ThreadExecutor"]

T = TypeVar("T")

_STOP = object()


class _Item:
    __slots__ = ("future", "fn", "args", "kwargs")

    def __init__(self, future: cf.Future, fn: Callable[..., Any], args: tuple, kwargs: dict) -> None:
        self.future, self.fn, self.args, self.kwargs = future, fn, args, kwargs


class ThreadExecutor(Executor):
    """Threads bounded by the process budget; nested submissions never wait.

    Parameters
    ----------
    max_workers : int, optional
        Size of a new budget for this executor; by default the process-wide (or
        inherited) budget.
    budget : ProcessBudget, optional
        Draw on this budget instead.
    """

    name: ClassVar[str] = "thread"
    shares_memory: ClassVar[bool] = True
    uses_processes: ClassVar[bool] = False

    def __init__(self, max_workers: int | None = None, *, budget: ProcessBudget | None = None) -> None:
        self._budget, self._close_budget = resolve_budget(max_workers, budget)
        self._lock = threading.Lock()
        self._idle: list[queue.SimpleQueue] = []  # one hand-off slot per idle thread
        self._pending: deque[_Item] = deque()  # top-level work waiting for a thread
        self._threads: list[threading.Thread] = []
        self._shutdown = False

    @property
    def budget(self) -> ProcessBudget:
        """The budget this executor's threads hold tokens of."""
        return self._budget

    @property
    def max_workers(self) -> int:
        return self._budget.size

    def free_workers(self) -> int:
        """Threads a task submitted now would start on at once: idle ones, or new ones on free tokens."""
        with self._lock:
            return len(self._idle) + (0 if self._shutdown else self._budget.peek_available())

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> cf.Future[T]:
        nested = running_executor() is self
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            future: cf.Future[T] = cf.Future()
            item = _Item(future, fn, args, kwargs)
            if self._idle:
                self._idle.pop().put(item)
                return future
            if self._budget.try_acquire(1):
                thread = threading.Thread(
                    target=self._work, args=(item,), name=f"shmforest-thread-{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
                return future
            if not nested and self._threads:
                self._pending.append(item)
                return future
        # No thread can take it now: run it here rather than wait (never deadlocks).
        return completed_future(run_in_task, (self, fn, args, kwargs), {})

    def _run(self, item: _Item) -> None:
        if not item.future.set_running_or_notify_cancel():
            return
        try:
            result = run_in_task(self, item.fn, item.args, item.kwargs)
        except BaseException as exc:  # noqa: BLE001 - delivered through the future
            item.future.set_exception(exc)
        else:
            item.future.set_result(result)
        del item  # drop references to arguments and results promptly

    def _work(self, item: _Item | object) -> None:
        slot: queue.SimpleQueue = queue.SimpleQueue()
        try:
            while item is not _STOP:
                self._run(item)  # type: ignore[arg-type]
                with self._lock:
                    if self._pending:
                        item = self._pending.popleft()
                        continue
                    if self._shutdown:
                        break
                    self._idle.append(slot)
                item = slot.get()
        finally:
            self._budget.release(1)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._shutdown = True
            if cancel_futures:
                while self._pending:
                    self._pending.popleft().future.cancel()
            idle, self._idle = self._idle, []
        for slot in idle:
            slot.put(_STOP)
        if wait:
            for thread in list(self._threads):
                if thread is not threading.current_thread():
                    thread.join()
            # The first shutdown that waits closes the budget, even after one that did not.
            with self._lock:
                close, self._close_budget = self._close_budget, False
            if close:
                self._budget.close()
