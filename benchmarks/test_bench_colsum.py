"""Column sums of a 1 GiB float64 array, in 4 chunks over 2 workers, executor by executor.

Peers in the same run: numpy's single-threaded ``A.sum(axis=0)`` (the floor to
approach) and joblib's default backend (loky, which memory-maps large arrays).
The first call (workers started, data placed) and a repeated call on the same
array are reported apart.

``make bench`` runs it with the other suites; for its table (``benchmarks/RESULTS.md``)::

    .venv/bin/python benchmarks/test_bench_colsum.py
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np
import pytest

from shmforest.budget import ProcessBudget
from shmforest.executors import get_executor
from shmforest.testing import ProcessTreeMonitor

MiB = 1 << 20
ROWS, COLS = 8192, 16384  # 1 GiB of float64
CHUNKS, WORKERS = 4, 2
EXECUTORS = ["serial", "thread", "process", "shm"]


def block_sums(a: np.ndarray, lo: int, hi: int) -> np.ndarray:
    return a[:, lo:hi].sum(axis=0)


def _bounds() -> list[tuple[int, int]]:
    step = COLS // CHUNKS
    return [(i * step, (i + 1) * step) for i in range(CHUNKS)]


def make_array() -> np.ndarray:
    return np.random.default_rng(0).random((ROWS, COLS))


def sums_with(executor, a: np.ndarray) -> np.ndarray:
    parts = [executor.submit(block_sums, a, lo, hi) for lo, hi in _bounds()]
    return np.concatenate([p.result() for p in parts])


def sums_with_joblib(parallel, a: np.ndarray) -> np.ndarray:
    from joblib import delayed

    return np.concatenate(parallel(delayed(block_sums)(a, lo, hi) for lo, hi in _bounds()))


def measure(name: str, a: np.ndarray, repeats: int = 3) -> dict[str, float]:
    """First call (start-up and placement included) and the median of repeated calls."""
    expected = a.sum(axis=0)
    with ProcessTreeMonitor(interval=0.01) as mon:
        t0 = time.perf_counter()
        if name == "numpy":
            run = lambda: a.sum(axis=0)  # noqa: E731
            ctx = None
        elif name == "joblib":
            from joblib import Parallel

            ctx = Parallel(n_jobs=WORKERS)
            ctx.__enter__()
            run = lambda: sums_with_joblib(ctx, a)  # noqa: E731
        else:
            budget = ProcessBudget(WORKERS, inherit=False)
            ex = get_executor(name, budget=budget)
            ctx = (ex, budget)
            run = lambda: sums_with(ex, a)  # noqa: E731
        try:
            got = run()
            first = time.perf_counter() - t0
            np.testing.assert_allclose(got, expected, rtol=1e-9)
            again = []
            for _ in range(repeats if name != "process" else 1):
                t = time.perf_counter()
                run()
                again.append(time.perf_counter() - t)
        finally:
            if name == "joblib":
                ctx.__exit__(None, None, None)
            elif ctx is not None:
                ctx[0].shutdown()
                ctx[1].close()
    return {
        "first_s": first,
        "repeat_s": statistics.median(again),
        "peak_added_pss_mib": mon.added_pss / MiB,
        "peak_system_drop_mib": mon.peak_system_drop / MiB,
        "peak_processes": mon.peak_processes,
    }


@pytest.fixture(scope="module")
def big_array():
    return make_array()


@pytest.mark.parametrize("name", ["numpy", *EXECUTORS, "joblib"])
def test_column_sums(benchmark, big_array, name):
    if name == "joblib":
        pytest.importorskip("joblib")
    result = benchmark.pedantic(measure, args=(name, big_array), rounds=1, iterations=1)
    benchmark.extra_info.update(result)


def main() -> None:
    a = make_array()
    names = ["numpy", *EXECUTORS]
    try:
        import joblib  # noqa: F401

        names.append("joblib")
    except ImportError:
        print("joblib not installed: pip install '.[bench]' to compare against it", file=sys.stderr)
    rows = {name: measure(name, a) for name in names}
    floor = rows["numpy"]["repeat_s"]
    print(
        "| runner | first call | repeated call | repeated / numpy | peak tree PSS added | peak MemAvailable drop | peak workers |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        print(
            f"| {name} | {r['first_s']:.2f} s | {r['repeat_s']:.3f} s | {r['repeat_s'] / floor:.1f}x "
            f"| {r['peak_added_pss_mib']:,.0f} MiB | {r['peak_system_drop_mib']:,.0f} MiB | {r['peak_processes']} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
