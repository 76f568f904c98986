"""DaskExecutor beyond the kit: finding the cluster, the budget and the cap, the
registry entry point, nesting, errors, and what travels per task."""

from __future__ import annotations

import os
import sys
import threading
import time

import dask
import numpy as np
import pytest
from distributed import Client
from shmforest_dask import ADDRESS_ENV_VAR, DaskExecutor, WorkerLostError

from shmforest.budget import ProcessBudget
from shmforest.errors import BudgetError, TaskPicklingError
from shmforest.executors import available_executors, current_executor, executor_class, get_executor
from shmforest.testing.conformance import _max_overlap, binary_recursion, running_interval

# ---------------------------------------------------------------- task functions


def budget_seen_by_task() -> tuple[str | None, int]:
    budget = ProcessBudget.from_environment()
    return os.environ.get("SHMFOREST_BUDGET"), budget.try_acquire(1) if budget is not None else -1


def die() -> None:
    os._exit(3)


def column_mean(a: np.ndarray, column: int) -> float:
    return float(a[:, column].mean())


def page_faults_of_a_tree_fit(X: np.ndarray, y: np.ndarray) -> int:
    import resource

    from shmforest import DecisionTreeClassifier

    DecisionTreeClassifier(random_state=0, executor="serial").fit(X, y)  # imports, first touches
    before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
    DecisionTreeClassifier(random_state=0, executor="serial").fit(X, y)
    return resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before


def nested_sleepers(n: int, seconds: float) -> list[tuple[float, float, int]]:
    ex = current_executor()
    futures = [ex.submit(running_interval, seconds) for _ in range(n)]
    return [f.result(timeout=60) for f in futures]


# ---------------------------------------------------------------- registry


def test_registered_by_entry_point_with_an_install_hint():
    assert available_executors()["dask"].startswith("plugin shmforest-dask")
    cls = executor_class("dask")
    assert cls is DaskExecutor
    assert cls.name == "dask" and cls.uses_processes and "pip install shmforest-dask" in cls.install_hint


def test_by_name_starts_a_cluster_sized_by_max_workers_and_stops_it():
    with get_executor("dask", max_workers=2) as ex:
        assert ex.cluster is not None and ex.max_workers == 2
        assert ex.client.nthreads() and sorted(ex.client.nthreads().values()) == [1, 1]
        assert ex.submit(pow, 2, 5).result(timeout=60) == 32
    assert ex.cluster.status.name == "closed"


# ---------------------------------------------------------------- which cluster


def test_given_client_is_used_and_left_open(client):
    ex = DaskExecutor(client)
    assert ex.client is client and ex.cluster is None
    assert ex.max_workers == sum(client.nthreads().values()) == 2
    assert ex.submit(pow, 3, 2).result(timeout=60) == 9
    ex.shutdown()
    assert client.status == "running"
    assert client.submit(pow, 2, 2).result() == 4


def test_address_connects_and_shutdown_closes_only_its_connection(kept_cluster):
    address = kept_cluster.cluster.scheduler_address
    ex = DaskExecutor(address=address)
    assert ex.cluster is None and ex.client.scheduler.address == address
    assert ex.submit(pow, 2, 3).result(timeout=60) == 8
    ex.shutdown()
    assert ex.client.status == "closed"
    assert kept_cluster.client.submit(pow, 2, 2).result() == 4  # the cluster lives on


def test_address_from_the_environment(kept_cluster, monkeypatch):
    monkeypatch.setenv(ADDRESS_ENV_VAR, kept_cluster.cluster.scheduler_address)
    with get_executor("dask") as ex:
        assert ex.cluster is None
        assert ex.client.scheduler.address == kept_cluster.cluster.scheduler_address
        assert ex.submit(pow, 5, 2).result(timeout=60) == 25


def test_default_client_is_used_and_left_open(kept_cluster):
    with Client(kept_cluster.cluster.scheduler_address, set_as_default=True) as default:
        with DaskExecutor() as ex:
            assert ex.client is default and ex.cluster is None
            assert ex.submit(pow, 2, 4).result(timeout=60) == 16
        assert default.status == "running"


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"client": "tcp://x:1"}, TypeError, "client must be a distributed.Client"),
        ({"address": 8786}, TypeError, "address must be a str"),
        ({"min_bytes": -1}, ValueError, "min_bytes"),
        ({"max_workers": 0}, ValueError, "max_workers"),
        ({"cluster_options": {"n_workers": 4}}, ValueError, "n_workers"),
        ({"cluster_options": [("a", 1)]}, TypeError, "cluster_options must be a dict"),
    ],
)
def test_bad_arguments_say_what_they_take(kwargs, error, match):
    with pytest.raises(error, match=match):
        DaskExecutor(**kwargs)


def test_client_and_address_together_is_an_error(client):
    with pytest.raises(TypeError, match="not both"):
        DaskExecutor(client, "tcp://127.0.0.1:1")
    with pytest.raises(TypeError, match="cluster_options applies only"):
        DaskExecutor(client, cluster_options={"silence_logs": 10})
    with pytest.raises(TypeError, match="max_workers must be a positive int"):
        DaskExecutor(client, max_workers=1.5)


# ---------------------------------------------------------------- budget and cap


def test_own_cluster_holds_one_token_per_worker_and_workers_join_the_budget():
    with ProcessBudget(2, inherit=False) as budget:
        ex = DaskExecutor(budget=budget)
        try:
            assert budget.available == 0 and ex.budget is budget
            name, extra = ex.submit(budget_seen_by_task).result(timeout=60)
            assert name == budget.name  # nested shmforest code finds the budget...
            assert extra == 0  # ...with every token taken by the workers: it runs inline
        finally:
            ex.shutdown()
        assert budget.available == 2


def test_no_free_token_is_an_error_not_an_unbounded_worker():
    with ProcessBudget(1, inherit=False) as budget, budget.tokens(1):
        with pytest.raises(BudgetError, match="no free token"):
            DaskExecutor(budget=budget)


def test_cap_bounds_tasks_in_flight_on_a_bigger_cluster(client):
    with DaskExecutor(client, max_workers=1) as ex:
        assert ex.max_workers == 1
        intervals = list(ex.map(running_interval, [0.05] * 6, timeout=60))
    assert _max_overlap(intervals) == 1
    with DaskExecutor(client) as ex:  # no cap: the cluster's two threads
        intervals = list(ex.map(running_interval, [0.2] * 4, timeout=60))
    assert _max_overlap(intervals) == 2


def test_queued_tasks_can_be_cancelled(client):
    with DaskExecutor(client, max_workers=1) as ex:
        first = ex.submit(time.sleep, 0.3)
        queued = [ex.submit(pow, 2, i) for i in range(4)]
        assert all(f.cancel() for f in queued)
        assert first.result(timeout=60) is None
        assert all(f.cancelled() for f in queued)
        assert ex.submit(pow, 2, 10).result(timeout=60) == 1024


# ---------------------------------------------------------------- nesting


def test_a_waiting_parent_gives_its_thread_to_its_children(client):
    # Two threads in all: the parent waits on two children. Were it holding its thread
    # while waiting, the children would run one after the other on the other thread.
    with DaskExecutor(client) as ex:
        intervals = ex.submit(nested_sleepers, 2, 0.6).result(timeout=60)
    assert _max_overlap(intervals) == 2


def test_deep_recursion_on_a_single_thread():
    with ProcessBudget(1, inherit=False) as budget, DaskExecutor(budget=budget) as ex:
        assert ex.submit(binary_recursion, 6).result(timeout=60) == 64
        stats = ex.transfer_stats()
    assert stats["tasks"] == 1 and stats["nested_tasks"] == 2**7 - 2


# ---------------------------------------------------------------- errors


def test_an_unpicklable_task_fails_at_submit(client):
    with DaskExecutor(client) as ex:
        lock = threading.Lock()
        with pytest.raises(TaskPicklingError, match="cannot be pickled") as info:
            ex.submit(lambda: lock)
        assert isinstance(info.value, TypeError)


def test_a_task_that_keeps_killing_its_worker_is_a_broken_executor_error():
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        with DaskExecutor(max_workers=1) as ex:
            with pytest.raises(WorkerLostError, match="gave up on task") as info:
                ex.submit(die).result(timeout=60)
            assert ex.submit(pow, 2, 2).result(timeout=60) == 4  # the nanny replaced it
    from concurrent.futures import BrokenExecutor

    assert isinstance(info.value, BrokenExecutor)


# ---------------------------------------------------------------- what travels


def test_an_array_is_placed_once_and_tasks_carry_a_handle(client):
    a = np.arange(2_000_000, dtype=np.float64).reshape(1000, 2000)  # 16 MB
    with DaskExecutor(client) as ex:
        means = [ex.submit(column_mean, a, c) for c in range(20)]
        assert [m.result(timeout=60) for m in means] == [float(a[:, c].mean()) for c in range(20)]
        stats = ex.transfer_stats()
    assert stats["placements"] == 1 and stats["local_bytes"] == a.nbytes
    assert stats["shipped_bytes"] == 0  # one machine: the workers attach this process's block
    assert stats["payload_bytes"] < 20 * 2_000  # each task: the function, a handle, an int


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc heap behaviour, RUSAGE_THREAD")
def test_a_fresh_worker_does_not_fault_its_heap_in_again_every_tree():
    # Unprimed, glibc trimmed the heap of a fresh dask worker after every tree level:
    # about 8,000 page faults for this tree (20,000 for a 50,000 x 20 one), 1.5x the time.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20_000, 10))
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    with DaskExecutor(max_workers=1) as ex:
        assert ex.submit(page_faults_of_a_tree_fit, X, y).result(timeout=60) < 1_000


def test_shutdown_without_waiting_still_releases_everything():
    with ProcessBudget(1, inherit=False) as budget:
        ex = DaskExecutor(budget=budget)
        future = ex.submit(time.sleep, 0.2)
        ex.shutdown(wait=False)
        with pytest.raises(RuntimeError, match="after shutdown"):
            ex.submit(pow, 1, 1)
        assert future.result(timeout=60) is None
        ex.shutdown(wait=True)  # waits for the background shutdown
        assert budget.available == 1
