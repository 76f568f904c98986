"""Real LocalClusters (worker processes on 127.0.0.1) started inside the test run, and
guards: no test, and no cluster once closed, may leave a child process or a ``shmf_``
block behind."""

from __future__ import annotations

import pytest
from distributed import Client, LocalCluster
from shmforest_dask import start_local_cluster

from shmforest.shared import SEGMENT_PREFIX
from shmforest.testing.leaks import SHM_DIR, LeakCheck, settle
from shmforest.testing.processes import live_workers

#: Processes of clusters that outlive one test (module fixtures); each is checked when closed.
KEPT_PIDS: set[int] = set()


def children() -> set[int]:
    """Live child processes, multiprocessing's resource tracker and forkserver left out."""
    return {p.pid for p in live_workers()}


def _mapped_here() -> set[str]:
    """Our blocks this process maps: held by something still alive in the test (a budget)."""
    try:
        with open("/proc/self/maps") as f:
            return {line.rsplit("/", 1)[-1].strip() for line in f if f"{SHM_DIR}/{SEGMENT_PREFIX}" in line}
    except OSError:  # pragma: no cover - not Linux
        return set()


def assert_nothing_left(check: LeakCheck, what: str, *, held_ok: bool = False) -> None:
    left = check.leftovers(10.0, ignore_pids=KEPT_PIDS, ignore_segments=_mapped_here if held_ok else set)
    if left:
        pytest.fail(f"{what} leaked resources: " + left.describe(), pytrace=False)


@pytest.fixture(autouse=True)
def no_leaks():
    """Fail any test that leaves a ``shmf_`` block or a child process behind."""
    check = LeakCheck()
    yield
    assert_nothing_left(check, "test")


def start_cluster(n_workers: int = 2, threads_per_worker: int = 1) -> LocalCluster:
    """What the executor starts for itself: 127.0.0.1, no dashboard, quiet, no malloc trim."""
    return start_local_cluster(n_workers, threads_per_worker=threads_per_worker)


class KeptCluster:
    """A cluster that outlives single tests: its processes are exempt from the per-test
    check, and closing it must leave nothing behind."""

    def __init__(self, n_workers: int = 2, threads_per_worker: int = 1) -> None:
        self.check = LeakCheck()
        self.cluster = start_cluster(n_workers, threads_per_worker)
        self.client = Client(self.cluster, set_as_default=False)
        self.pids = children() - self.check.children_before
        KEPT_PIDS.update(self.pids)
        self.n_workers, self.threads_per_worker = n_workers, threads_per_worker

    def close(self) -> None:
        self.client.close()
        self.cluster.close()
        try:
            gone = not settle(lambda: self.pids & children())
        finally:
            KEPT_PIDS.difference_update(self.pids)
        assert gone, f"cluster worker processes outlived the cluster: {sorted(self.pids & children())}"
        # Closed while a test may be setting up (the next shape): blocks this process
        # still maps belong to that test (its budget), not to the cluster.
        assert_nothing_left(self.check, "closed cluster", held_ok=True)


@pytest.fixture(scope="module")
def kept_cluster():
    """One LocalCluster of 2 single-threaded worker processes for a test module."""
    kept = KeptCluster(2)
    yield kept
    kept.close()


@pytest.fixture(scope="module")
def client(kept_cluster):
    return kept_cluster.client


@pytest.fixture(scope="module")
def cluster_of():
    """``cluster_of(n_workers, threads_per_worker)``: a kept cluster of that shape.

    One at a time, so that the worker processes alive are those of the cluster in
    use; tests marked ``one_cluster_per_shape`` are ordered so that it rarely changes.
    """
    current: dict[str, KeptCluster] = {}

    def get(n_workers: int, threads_per_worker: int = 1) -> KeptCluster:
        kept = current.get("kept")
        if kept is None or (kept.n_workers, kept.threads_per_worker) != (n_workers, threads_per_worker):
            if kept is not None:
                del current["kept"]
                kept.close()
            current["kept"] = KeptCluster(n_workers, threads_per_worker)
        return current["kept"]

    yield get
    if "kept" in current:
        current.pop("kept").close()


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "one_cluster_per_shape: run the class's tests grouped by budget size (one cluster each)"
    )


def pytest_collection_modifyitems(config, items):
    """Group a marked class's tests by budget size, in place: two clusters, not one per test."""
    slots = [i for i, item in enumerate(items) if item.get_closest_marker("one_cluster_per_shape")]

    def budget_size(item) -> int:
        callspec = getattr(item, "callspec", None)
        return callspec.params.get("budget", 0) if callspec is not None else 0

    grouped = sorted((items[i] for i in slots), key=budget_size)
    for i, item in zip(slots, grouped, strict=True):
        items[i] = item
