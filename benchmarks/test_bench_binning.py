"""Binning the 75,000 x 20 workload: what a fit pays before its first tree.

* ``Binner.fit`` then ``transform`` (a sort, then an argsort, per feature)
  against ``fit_transform`` (one argsort per feature, shared by thresholds and codes);
* the binning step of a fit (``estimators.batch._bin``), run in the parent: in one
  thread for a one-worker executor, in a thread per worker for a 2-worker one (what
  a fit of this size does). Binning as tasks on worker processes, measured here
  until 2026-12-07 (RESULTS.md), is gone: it needed X placed in shared memory.

The cases run in turns, 9 rounds; medians. For a table (``benchmarks/RESULTS.md``)::

    .venv/bin/python benchmarks/test_bench_binning.py
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_bench_forest import load_workload  # noqa: E402

import shmforest.estimators.batch as fitting  # noqa: E402
from shmforest import get_executor  # noqa: E402
from shmforest.executors.serial import SerialExecutor  # noqa: E402
from shmforest.tree.binning import Binner  # noqa: E402

ROUNDS = 9


def cases(X: np.ndarray, warm: object) -> dict[str, Callable[[], object]]:
    return {
        "Binner.fit + transform": lambda: Binner().fit(X).transform(X),
        "Binner.fit_transform": lambda: Binner().fit_transform(X),
        "fit's binning, in the parent, one thread (serial)": lambda: fitting._bin(X, None, 256, SerialExecutor()),
        "fit's binning, in the parent, 2 threads (shm x2)": lambda: fitting._bin(X, None, 256, warm),
    }


def measure(rounds: int = ROUNDS) -> dict[str, float]:
    X = load_workload()[0]
    times: dict[str, list[float]] = {}
    with get_executor("shm", max_workers=2) as warm:
        runners = cases(X, warm)
        for _ in range(rounds):
            for name, run in runners.items():
                t0 = time.perf_counter()
                run()
                times.setdefault(name, []).append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def report(medians: dict[str, float]) -> str:
    lines = [f"| binning 75,000 x 20 | median of {ROUNDS} |", "|---|---|"]
    lines += [f"| {name} | {1e3 * s:.1f} ms |" for name, s in medians.items()]
    return "\n".join(lines)


def test_binning(benchmark, capsys):
    pytest.importorskip("sklearn")
    medians = benchmark.pedantic(measure, kwargs={"rounds": 5}, rounds=1, iterations=1)
    benchmark.extra_info.update({k: round(v, 4) for k, v in medians.items()})
    with capsys.disabled():
        print("\n" + report(medians))


if __name__ == "__main__":
    print(report(measure()))
