"""The executor conformance kit: what every shmforest executor must do.

A plugin author subclasses :class:`ExecutorConformance` in their own test suite
and provides one fixture, ``executor``, built on the kit's ``budget`` fixture::

    import pytest
    from shmforest.testing.conformance import ExecutorConformance
    from my_plugin import MyExecutor

    class TestMyExecutor(ExecutorConformance):
        @pytest.fixture
        def executor(self, budget):
            ex = MyExecutor(budget=budget)
            yield ex
            ex.shutdown()

``budget`` is a fresh :class:`~shmforest.budget.ProcessBudget` of 1 and of 2
tokens (every test runs at both). Only public shmforest API is used here, so the
kit runs the same way outside this repository.

Task functions are module-level so that any executor, including one whose tasks
cross process or machine boundaries by plain pickle, can run them.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import threading
import time
import traceback
from collections.abc import Iterator

import numpy as np
import pytest

from shmforest.budget import ProcessBudget
from shmforest.executors.base import Executor
from shmforest.executors.current import current_executor
from shmforest.testing.leaks import LeakCheck
from shmforest.testing.processes import live_workers

__all__ = ["ExecutorConformance"]

# Generous bounds: a hang fails within this, a slow shared CI machine does not.
RESULT_TIMEOUT = 60.0


# --------------------------------------------------------------------------- task functions


def add(a: int, b: int = 0) -> int:
    return a + b


def square(x: int) -> int:
    return x * x


def fail_with(message: str) -> None:
    raise ValueError(message)


def sleep_then(seconds: float, value: object) -> object:
    time.sleep(seconds)
    return value


def running_interval(seconds: float) -> tuple[float, float, int]:
    """Occupy a worker for ``seconds``; return when it ran and where."""
    start = time.monotonic()
    time.sleep(seconds)
    return start, time.monotonic(), os.getpid()


def binary_recursion(depth: int) -> int:
    """Both branches submitted to the executor running this task: 2**depth leaves."""
    if depth == 0:
        return 1
    ex = current_executor()
    left = ex.submit(binary_recursion, depth - 1)
    right = ex.submit(binary_recursion, depth - 1)
    return left.result(timeout=RESULT_TIMEOUT) + right.result(timeout=RESULT_TIMEOUT)


def executor_name_inside() -> str:
    return current_executor().name


def column_sums(a: np.ndarray, start: int, stop: int) -> np.ndarray:
    return a[:, start:stop].sum(axis=0)


def dict_arg_total(payload: dict) -> float:
    return float(payload["x"].sum() + sum(part.sum() for part in payload["parts"]))


def _max_overlap(intervals: list[tuple[float, float, int]]) -> int:
    events = sorted([(s, 1) for s, _, _ in intervals] + [(e, -1) for _, e, _ in intervals])
    live = peak = 0
    for _, delta in events:
        live += delta
        peak = max(peak, live)
    return peak


def free_workers_inside() -> int | None:
    return current_executor().free_workers()


def _workers() -> set[int]:
    return {p.pid for p in live_workers()}


# --------------------------------------------------------------------------- the kit


class ExecutorConformance:
    """Subclass and provide an ``executor`` fixture that draws on ``budget``."""

    @pytest.fixture(params=[1, 2], ids=lambda n: f"budget{n}")
    def budget(self, request) -> Iterator[ProcessBudget]:
        budget = ProcessBudget(request.param, inherit=False)
        yield budget
        budget.close()

    @pytest.fixture
    def executor(self, budget):  # pragma: no cover - the subclass provides it
        raise NotImplementedError("subclass ExecutorConformance and provide an `executor` fixture")

    # -- identity ------------------------------------------------------
    def test_is_an_executor_with_metadata(self, executor):
        assert isinstance(executor, Executor) and isinstance(executor, cf.Executor)
        assert isinstance(executor.name, str) and executor.name
        assert isinstance(executor.shares_memory, bool)
        assert isinstance(executor.uses_processes, bool)
        assert isinstance(executor.max_workers, int) and executor.max_workers >= 1

    def test_current_executor_inside_a_task_is_this_executor(self, executor):
        assert executor.submit(executor_name_inside).result(timeout=RESULT_TIMEOUT) == executor.name

    # -- results -------------------------------------------------------
    def test_submit_returns_the_result_and_takes_keywords(self, executor):
        assert executor.submit(add, 2, b=40).result(timeout=RESULT_TIMEOUT) == 42

    def test_map_keeps_order(self, executor):
        assert list(executor.map(square, range(20), timeout=RESULT_TIMEOUT)) == [x * x for x in range(20)]

    def test_map_over_several_iterables(self, executor):
        assert list(executor.map(add, [1, 2, 3], [10, 20, 30], timeout=RESULT_TIMEOUT)) == [11, 22, 33]

    def test_exception_arrives_with_its_traceback(self, executor):
        future = executor.submit(fail_with, "boom from the task")
        with pytest.raises(ValueError, match="boom from the task") as info:
            future.result(timeout=RESULT_TIMEOUT)
        text = "".join(traceback.format_exception(info.value))
        assert "fail_with" in text  # the frame where it was raised, remote or not

    def test_executor_stays_usable_after_a_task_fails(self, executor):
        with pytest.raises(ValueError):
            executor.submit(fail_with, "x").result(timeout=RESULT_TIMEOUT)
        assert executor.submit(add, 1, 1).result(timeout=RESULT_TIMEOUT) == 2

    # -- cancel and shutdown -------------------------------------------
    def test_every_future_ends_and_cancel_is_honest(self, executor):
        futures = [executor.submit(sleep_then, 0.05, i) for i in range(6)]
        for f in futures:
            if f.cancel():
                assert f.cancelled() and f.done()
        done, not_done = cf.wait(futures, timeout=RESULT_TIMEOUT)
        assert not not_done
        for i, f in enumerate(futures):
            assert f.cancelled() or f.result() == i

    def test_cancel_futures_on_shutdown_leaves_nothing_pending(self, executor):
        futures = [executor.submit(sleep_then, 0.05, i) for i in range(8)]
        executor.shutdown(wait=True, cancel_futures=True)
        for i, f in enumerate(futures):
            assert f.done()
            assert f.cancelled() or f.result() == i

    def test_shutdown_twice_is_fine_and_submit_after_raises(self, executor):
        executor.shutdown()
        executor.shutdown()
        with pytest.raises(RuntimeError):
            executor.submit(add, 1)

    def test_context_manager_shuts_down(self, executor):
        with executor as ex:
            assert ex.submit(add, 1, 2).result(timeout=RESULT_TIMEOUT) == 3
        with pytest.raises(RuntimeError):
            executor.submit(add, 1)

    # -- nesting and the budget ----------------------------------------
    def test_nested_submission_never_deadlocks(self, executor):
        assert executor.submit(binary_recursion, 5).result(timeout=RESULT_TIMEOUT) == 32

    def test_running_tasks_never_exceed_the_budget(self, executor, budget):
        sampled: list[int] = []
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                sampled.append(len(_workers()))
                time.sleep(0.01)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            intervals = list(executor.map(running_interval, [0.05] * 12, timeout=RESULT_TIMEOUT))
        finally:
            stop.set()
            sampler.join()
        assert _max_overlap(intervals) <= budget.size
        if executor.uses_processes:
            assert max(sampled, default=0) <= budget.size

    def test_free_workers_hint_stays_within_the_budget(self, executor, budget):
        outside = executor.free_workers()
        inside = executor.submit(free_workers_inside).result(timeout=RESULT_TIMEOUT)
        for hint in (outside, inside):
            assert hint is None or (isinstance(hint, int) and 0 <= hint <= budget.size)
        if inside is not None:
            assert inside <= budget.size - 1  # the task asking holds a worker itself

    def test_warm_up_hint_changes_no_result(self, executor, budget):
        executor.warm_up()
        executor.warm_up()  # twice: still a hint, never an error
        assert list(executor.map(square, range(8), timeout=RESULT_TIMEOUT)) == [x * x for x in range(8)]
        hint = executor.free_workers()
        assert hint is None or 0 <= hint <= budget.size

    # -- data ----------------------------------------------------------
    def test_large_array_arguments(self, executor):
        a = np.arange(4_000_000, dtype=np.float64).reshape(1000, 4000)  # 32 MB
        bounds = [(i * 1000, (i + 1) * 1000) for i in range(4)]
        parts = [executor.submit(column_sums, a, lo, hi) for lo, hi in bounds]
        got = np.concatenate([p.result(timeout=RESULT_TIMEOUT) for p in parts])
        np.testing.assert_array_equal(got, a.sum(axis=0))

    def test_arrays_inside_containers(self, executor):
        x = np.ones(300_000)
        payload = {"x": x, "parts": [np.full(100_000, 2.0), np.full(100_000, 3.0)]}
        assert executor.submit(dict_arg_total, payload).result(timeout=RESULT_TIMEOUT) == 800_000.0

    def test_lambdas_and_closures(self, executor):
        offset = 5
        assert executor.submit(lambda v: v + offset, 1).result(timeout=RESULT_TIMEOUT) == 6

    # -- nothing left behind ---------------------------------------------
    def test_nothing_leaks_after_shutdown(self, executor, budget):
        check = LeakCheck()
        list(executor.map(column_sums, [np.ones((10, 10))] * 4, [0] * 4, [10] * 4, timeout=RESULT_TIMEOUT))
        executor.submit(binary_recursion, 3).result(timeout=RESULT_TIMEOUT)
        executor.shutdown(wait=True)
        left = check.leftovers()
        assert not left.processes, "worker processes outlived shutdown"
        assert not left.segments, "shared-memory blocks outlived shutdown"
        assert budget.available == budget.size, "tokens were not returned"
