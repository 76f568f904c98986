"""Dispatch overhead: a no-op task's round trip, and a fresh pool's first task.

Round trip: ``submit(noop).result()`` on a warm pool of 2 workers, against
``concurrent.futures.ProcessPoolExecutor`` and joblib's loky executor; ``noop``
is a module-level function, which every one of them sends by reference. First task:
how long a new pool takes to start a worker and run one task, per start method
(what the default start method was chosen on). Run with::

    pytest benchmarks/test_bench_dispatch.py --benchmark-enable
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp

import pytest

from shmforest.budget import ProcessBudget
from shmforest.executors.registry import get_executor
from shmforest.pool import WorkerPool


def noop() -> None:
    return None


def _roundtrip(submit):
    return lambda: submit(noop).result()


@pytest.fixture(scope="module", params=["forkserver", "fork"])
def method(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def shmforest_pool(method):
    with ProcessBudget(2) as budget, WorkerPool(budget, start_method=method) as pool:
        for f in [pool.submit(noop) for _ in range(20)]:
            f.result()
        yield pool


@pytest.fixture(scope="module")
def process_pool(method):
    with cf.ProcessPoolExecutor(2, mp_context=mp.get_context(method)) as ex:
        for f in [ex.submit(noop) for _ in range(20)]:
            f.result()
        yield ex


def test_roundtrip_shmforest(benchmark, shmforest_pool, method):
    benchmark.extra_info["start_method"] = method
    benchmark(_roundtrip(shmforest_pool.submit))


def test_roundtrip_process_pool_executor(benchmark, process_pool, method):
    benchmark.extra_info["start_method"] = method
    benchmark(_roundtrip(process_pool.submit))


def test_roundtrip_loky(benchmark):
    loky = pytest.importorskip("joblib.externals.loky")
    ex = loky.get_reusable_executor(max_workers=2)
    for f in [ex.submit(noop) for _ in range(20)]:
        f.result()
    benchmark(_roundtrip(ex.submit))
    ex.shutdown(wait=True, kill_workers=True)


@pytest.mark.parametrize("start_method", ["forkserver", "fork", "spawn"])
def test_first_task_on_a_fresh_pool(benchmark, start_method):
    with ProcessBudget(1) as budget, WorkerPool(budget, start_method=start_method) as warm:
        warm.submit(noop).result()  # a forkserver starts once per program

    def first_task() -> None:
        with ProcessBudget(1) as budget, WorkerPool(budget, start_method=start_method) as pool:
            pool.submit(int).result()  # a builtin: no module of ours to import in the worker

    benchmark.extra_info["start_method"] = start_method
    benchmark.pedantic(first_task, rounds=5, iterations=1)


def test_first_task_on_a_fresh_shm_executor(benchmark):
    """Through an executor: every task unpickles its stand-in, whose modules the forkserver preloads."""
    with get_executor("shm", max_workers=1) as warm:
        warm.submit(noop).result()

    def first_task() -> None:
        with get_executor("shm", max_workers=1) as ex:
            ex.submit(int).result()

    benchmark.pedantic(first_task, rounds=5, iterations=1)
