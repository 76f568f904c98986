"""A third-party executor plugin, written against shmforest's public API only.

``spare``: each task gets its own short-lived thread while a budget token is
spare. Without one, a nested submission (from inside one of its tasks) runs
inline; a top-level one waits for one of its threads to finish, so the caller
never becomes an extra worker beside them. The tests install it the way pip would (a
``.dist-info`` declaring the ``shmforest.executors`` entry point) and run the
conformance kit on it.
"""

from __future__ import annotations

import concurrent.futures as cf
import threading

from shmforest.budget import ProcessBudget
from shmforest.executors import Executor, completed_future, current_executor, in_task, resolve_budget, run_in_task


class SpareThreadExecutor(Executor):
    name = "spare"
    shares_memory = True
    uses_processes = False

    def __init__(self, max_workers: int | None = None, *, budget: ProcessBudget | None = None) -> None:
        self._budget, self._close_budget = resolve_budget(max_workers, budget)
        self._threads: list[threading.Thread] = []
        self._lock = threading.Condition()
        self._running = 0
        self._closed = False

    @property
    def max_workers(self) -> int:
        return self._budget.size

    def submit(self, fn, /, *args, **kwargs):
        nested = in_task() and current_executor() is self
        with self._lock:
            while True:
                if self._closed:
                    raise RuntimeError("cannot schedule new futures after shutdown")
                if self._budget.try_acquire(1):
                    break
                if nested or self._running == 0:
                    return completed_future(run_in_task, (self, fn, args, kwargs), {})
                self._lock.wait(0.1)  # top level: one of our threads will finish
            self._running += 1
            future = cf.Future()
            thread = threading.Thread(target=self._run, args=(future, fn, args, kwargs), daemon=True)
            self._threads.append(thread)
            thread.start()
        return future

    def _run(self, future, fn, args, kwargs):
        try:
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(run_in_task(self, fn, args, kwargs))
                except BaseException as exc:
                    future.set_exception(exc)
        finally:
            self._budget.release(1)
            with self._lock:
                self._running -= 1
                self._lock.notify_all()

    def shutdown(self, wait=True, *, cancel_futures=False):
        with self._lock:
            first, self._closed = not self._closed, True
        if wait:
            for thread in self._threads:
                thread.join()
            if first and self._close_budget:
                self._budget.close()
