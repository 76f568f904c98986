"""Endurance: a thousand fits in a row, and what each leaves behind.

* 1,000 consecutive small forest fits on the ``shm`` executor created by name each
  time (``executor="shm"``: a new pool, new workers, a new budget per fit);
* 200 fits on one kept ``shm`` executor.

After every fit this process's open file descriptors, threads, live descendant
processes (workers and multiprocessing's helpers), ``shmf_`` entries in
``/dev/shm`` and in the temporary folders, and resident memory are read. The
figures of the first and the last hundred fits are printed side by side (min,
median, max): a leak shows as a last hundred above the first. Not a timed test:
seconds per fit are printed for scale only. ``/dev/shm`` is machine-wide, so run
it where no one else places blocks (a private mount namespace, as below)::

    unshare -m sh -c 'mount -t tmpfs -o size=1g tmpfs /dev/shm && .venv/bin/python benchmarks/test_bench_endurance.py'
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

import numpy as np
import psutil

from shmforest import RandomForestClassifier, get_executor
from shmforest.testing.leaks import our_segments, our_temp_files

FRESH_FITS = 1000
KEPT_FITS = 200
WINDOW = 100

METRICS = ("fds", "threads", "processes", "shm entries", "temp entries", "RSS MiB", "seconds")


def small_data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(2000, 10))
    return X, (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.int64)


def reading(seconds: float) -> dict[str, float]:
    me = psutil.Process()
    return {
        "fds": len(os.listdir("/proc/self/fd")),
        "threads": me.num_threads(),
        "processes": sum(1 for p in me.children(recursive=True) if p.status() != psutil.STATUS_ZOMBIE),
        "shm entries": len(our_segments()),
        "temp entries": len(our_temp_files()),
        "RSS MiB": me.memory_info().rss / 2**20,
        "seconds": seconds,
    }


def run(fits: int, fit: Callable[[], object]) -> list[dict[str, float]]:
    """``fits`` calls of ``fit``, a reading after each."""
    readings = []
    for _ in range(fits):
        t0 = time.perf_counter()
        fit()
        readings.append(reading(time.perf_counter() - t0))
    return readings


def fresh_executor_fits(fits: int = FRESH_FITS) -> list[dict[str, float]]:
    X, y = small_data()
    return run(fits, lambda: RandomForestClassifier(8, executor="shm", n_jobs=2, random_state=0).fit(X, y))


def kept_executor_fits(fits: int = KEPT_FITS) -> list[dict[str, float]]:
    X, y = small_data()
    with get_executor("shm", max_workers=2) as ex:
        return run(fits, lambda: RandomForestClassifier(8, executor=ex, random_state=0).fit(X, y))


def summary(values: list[float]) -> str:
    fmt = "{:.0f}" if all(float(v).is_integer() for v in values) or max(values) >= 100 else "{:.3f}"
    return " / ".join(fmt.format(v) for v in (min(values), statistics.median(values), max(values)))


def report(title: str, readings: list[dict[str, float]], window: int = WINDOW) -> str:
    first, last = readings[:window], readings[-window:]
    lines = [
        f"{title}: {len(readings)} fits",
        "",
        f"| after each fit | first {window} (min / median / max) | last {window} (min / median / max) |",
        "|---|---|---|",
    ]
    for metric in METRICS:
        a, b = [r[metric] for r in first], [r[metric] for r in last]
        lines.append(f"| {metric} | {summary(a)} | {summary(b)} |")
    return "\n".join(lines)


def test_fresh_executor_fits(benchmark, capsys):
    readings = benchmark.pedantic(fresh_executor_fits, rounds=1, iterations=1)
    with capsys.disabled():
        print("\n" + report('executor="shm", created by name each fit', readings))


def test_kept_executor_fits(benchmark, capsys):
    readings = benchmark.pedantic(kept_executor_fits, rounds=1, iterations=1)
    with capsys.disabled():
        print("\n" + report("one kept shm executor", readings))


def main() -> None:
    print(report('executor="shm", created by name each fit', fresh_executor_fits()))
    print()
    print(report("one kept shm executor", kept_executor_fits()))


if __name__ == "__main__":
    main()
