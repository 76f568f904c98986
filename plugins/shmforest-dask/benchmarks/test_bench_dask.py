"""A forest on a dask LocalCluster against the ``shm`` executor on the same machine.

Workload: ``make_classification(n_samples=50_000, n_features=20, n_informative=10,
random_state=0)``, 50 trees, ``random_state=0``. Both executors have 2 single-threaded
worker processes, started before the fits are timed (start-up is reported apart).

Reported, never asserted (shared machines are noisy):

* fit wall time, median of ``ROUNDS``, and the overhead ratio dask / shm;
* what was sent to the workers against the dataset's size: the executor's own count
  of pickled task payloads and of data shipped to other machines, and the bytes
  that crossed the loopback interface during the fit (every message between
  client, scheduler and workers, results included);
* the same fit with the two workers posing as two machines (each its own
  shared-memory domain), so the dataset is shipped once per machine;
* for scale, what per-task pickling (``process``) and ``scatter(broadcast=True)``
  would send: the dataset once per task, and once per worker process.

For the README table::

    .venv/bin/python plugins/shmforest-dask/benchmarks/test_bench_dask.py

and under pytest-benchmark::

    .venv/bin/pytest plugins/shmforest-dask/benchmarks --benchmark-enable -p no:cacheprovider
"""

from __future__ import annotations

import os
import pickle
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import psutil
import pytest
from shmforest_dask import DOMAIN_ENV_VAR, DaskExecutor, start_local_cluster

from shmforest import RandomForestClassifier, SharedDataset
from shmforest.executors import get_executor

N_SAMPLES, N_FEATURES, N_TREES, WORKERS, ROUNDS = 50_000, 20, 50, 2, 5


def load_workload() -> tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn.datasets import make_classification
    except ImportError:  # pragma: no cover - scikit-learn is in the test extra
        rng = np.random.default_rng(0)
        X = rng.normal(size=(N_SAMPLES, N_FEATURES))
        return X, (X[:, :10].sum(axis=1) > 0).astype(np.int64)
    return make_classification(n_samples=N_SAMPLES, n_features=N_FEATURES, n_informative=10, random_state=0)


def start_cluster() -> Any:
    """The cluster a DaskExecutor starts for itself (start_local_cluster), and a client."""
    from distributed import Client

    cluster = start_local_cluster(WORKERS)
    return cluster, Client(cluster, set_as_default=False, direct_to_workers=True)


def fit(X: np.ndarray, y: np.ndarray, executor: Any) -> RandomForestClassifier:
    return RandomForestClassifier(n_estimators=N_TREES, random_state=0, executor=executor).fit(X, y)


def loopback_bytes() -> int:
    lo = psutil.net_io_counters(pernic=True).get("lo")
    return lo.bytes_sent if lo is not None else 0


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def dataset_bytes(X: np.ndarray, y: np.ndarray) -> int:
    """What the forest places for its trees: binned X (uint8), thresholds, class codes."""
    n_samples, n_features = X.shape
    return n_samples * n_features + n_features * 255 * 8 + n_samples * 4


def pickled_dataset_bytes(X: np.ndarray, y: np.ndarray) -> int:
    """The same dataset as one task's pickled argument (what ``process`` sends per task)."""
    with SharedDataset(
        Xb=np.zeros(X.shape, np.uint8), thresholds=np.zeros((X.shape[1], 255)), y=y.astype(np.int32)
    ) as ds:
        return len(pickle.dumps({k: np.array(ds[k]) for k in ds}, protocol=5))


def set_domain(domain: str | None) -> None:
    if domain is None:
        os.environ.pop(DOMAIN_ENV_VAR, None)
    else:
        os.environ[DOMAIN_ENV_VAR] = domain


def dask_fit_with_bytes(X: np.ndarray, y: np.ndarray, client: Any) -> dict[str, float]:
    """One fit on a fresh DaskExecutor over ``client``: time, payload, result and wire bytes."""
    ex = DaskExecutor(client)
    try:
        wire = loopback_bytes()
        seconds, model = timed(lambda: fit(X, y, ex))
        wire = loopback_bytes() - wire
        stats = ex.transfer_stats()
    finally:
        ex.shutdown()
    results = sum(len(pickle.dumps(e.tree_, protocol=5)) for e in model.estimators_)
    return {"seconds": seconds, "wire_bytes": wire, "result_bytes": results, **stats}


# ---------------------------------------------------------------- pytest-benchmark


@pytest.fixture(scope="module")
def workload():
    return load_workload()


@pytest.fixture(scope="module")
def dask_client():
    cluster, client = start_cluster()
    yield client
    client.close()
    cluster.close()


def test_fit_shm(benchmark, workload):
    X, y = workload
    with get_executor("shm", max_workers=WORKERS) as ex:
        fit(X[:2000], y[:2000], ex)  # workers started before timing
        benchmark.pedantic(fit, args=(X, y, ex), rounds=ROUNDS, iterations=1)


def test_fit_dask(benchmark, workload, dask_client):
    X, y = workload
    with DaskExecutor(dask_client) as ex:
        fit(X[:2000], y[:2000], ex)  # workers have imported shmforest before timing
        benchmark.pedantic(fit, args=(X, y, ex), rounds=ROUNDS, iterations=1)
    sent = dask_fit_with_bytes(X, y, dask_client)
    benchmark.extra_info.update({k: v for k, v in sent.items() if k != "seconds"})
    benchmark.extra_info["dataset_bytes"] = dataset_bytes(X, y)


def test_bytes_across_two_machines(benchmark, workload, dask_client):
    X, y = workload
    Xs, ys = X[:4_000, :], y[:4_000]  # binned in the client: under the binning-task threshold
    for i, address in enumerate(sorted(dask_client.nthreads())):
        dask_client.run(set_domain, f"machine-{i}", workers=[address])
    try:
        sent = benchmark.pedantic(dask_fit_with_bytes, args=(Xs, ys, dask_client), rounds=1, iterations=1)
    finally:
        dask_client.run(set_domain, None)
    benchmark.extra_info.update({k: v for k, v in sent.items() if k != "seconds"})
    benchmark.extra_info["dataset_bytes"] = dataset_bytes(Xs, ys)


# ---------------------------------------------------------------- the README table


def _mib(n: float) -> str:
    return f"{n / 2**20:,.2f} MiB"


def main() -> None:
    X, y = load_workload()
    rows: dict[str, list[float]] = {}

    # Start-up: the executor and a first small fit (workers started, shmforest imported there).
    start = time.perf_counter()
    shm = get_executor("shm", max_workers=WORKERS)
    fit(X[:2000], y[:2000], shm)
    rows["shm start"] = [time.perf_counter() - start]
    start = time.perf_counter()
    cluster, client = start_cluster()
    try:
        with shm, DaskExecutor(client) as ex:
            fit(X[:2000], y[:2000], ex)
            rows["dask start"] = [time.perf_counter() - start]
            rows["shm"], rows["dask"] = [], []
            for _ in range(ROUNDS):  # interleaved, so drift on a shared machine hits both
                rows["shm"].append(timed(lambda: fit(X, y, shm))[0])
                rows["dask"].append(timed(lambda: fit(X, y, ex))[0])
        one = dask_fit_with_bytes(X, y, client)
        Xs, ys = X[:4_000], y[:4_000]
        local_small = dask_fit_with_bytes(Xs, ys, client)
        for i, address in enumerate(sorted(client.nthreads())):
            client.run(set_domain, f"machine-{i}", workers=[address])
        try:
            two = dask_fit_with_bytes(Xs, ys, client)
        finally:
            client.run(set_domain, None)
    finally:
        client.close()
        cluster.close()

    shm_s, dask_s = statistics.median(rows["shm"]), statistics.median(rows["dask"])
    print(
        f"\n{N_TREES} trees, {N_SAMPLES:,} x {N_FEATURES}, {WORKERS} single-threaded workers each, "
        f"median of {ROUNDS} fits, the two executors taking turns (workers started before timing)\n"
    )
    shm_best = min(rows["shm"])
    print("| executor | fit, median | vs shm | fit, best | vs shm | all fits, s | start-up + a 2,000-row fit |")
    print("|---|---|---|---|---|---|---|")
    for name, median in (("shm", shm_s), ("dask (LocalCluster)", dask_s)):
        key = name.split()[0]
        runs = ", ".join(f"{s:.2f}" for s in rows[key])
        best = min(rows[key])
        print(
            f"| {name} | {median:.2f} s | {median / shm_s:.2f}x | {best:.2f} s | {best / shm_best:.2f}x | {runs} "
            f"| {rows[key + ' start'][0]:.2f} s |"
        )

    print("\nWhat reached the workers, against the data\n")
    print(
        "| fit | X (float64) | placed (datasets, arrays) | task payloads | nested payloads "
        "| shipped to other machines | results back (trees) | loopback wire, all messages |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for label, r, Xr in (
        (f"{N_SAMPLES:,} x {N_FEATURES}, one machine", one, X),
        ("4,000 x 20, one machine", local_small, Xs),
        ("4,000 x 20, two machines (simulated)", two, Xs),
    ):
        print(
            f"| {label}: {r['tasks']} tasks | {_mib(Xr.nbytes)} | {_mib(r['placed_bytes'])} in {r['placements']} "
            f"| {_mib(r['payload_bytes'])} | {_mib(r['nested_payload_bytes'])} | {_mib(r['shipped_bytes'])} "
            f"| {_mib(r['result_bytes'])} | {_mib(r['wire_bytes'])} |"
        )
    per_task = pickled_dataset_bytes(X, y)
    print(
        f"\nFor scale, {N_SAMPLES:,} x {N_FEATURES}: the dataset pickled per task (`process`) would send "
        f"{_mib(per_task * one['tasks'])} ({one['tasks']} x {_mib(per_task)}); "
        f"`scatter(broadcast=True)` {_mib(per_task * WORKERS)} (once per worker process)."
    )


if __name__ == "__main__":
    main()
