"""Minor page faults: what glibc's malloc settings and reused buffers save.

* One fully grown tree on the 75,000 x 20 workload, fitted serially in a fresh
  interpreter under three malloc settings: glibc's defaults, ``MALLOC_TOP_PAD_``
  alone (what workers set before; it freezes the mmap threshold at 128 KiB), and
  the mmap and trim thresholds workers set now (``shmforest/_worker.py``).
* A 100-tree predict of the 25,000 test rows, warm, in this process.

Faults and seconds per fit are the medians of 4 fits after a first one. For a table
(``benchmarks/RESULTS.md``)::

    .venv/bin/python benchmarks/test_bench_faults.py
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

SETTINGS = {
    "glibc defaults": {},
    "MALLOC_TOP_PAD_ alone": {"MALLOC_TOP_PAD_": str(64 << 20)},
    "mmap 32 MiB, trim 256 MiB (workers now)": {
        "MALLOC_MMAP_THRESHOLD_": str(32 << 20),
        "MALLOC_TRIM_THRESHOLD_": str(256 << 20),
        "MALLOC_TOP_PAD_": str(64 << 20),
    },
}

_FIT_SCRIPT = """
import resource, statistics, sys, time
sys.path.insert(0, {here!r})
from test_bench_forest import load_workload
from shmforest import DecisionTreeClassifier
X, _, y, _ = load_workload()
faults, seconds = [], []
for _ in range(5):
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
    DecisionTreeClassifier(executor="serial", random_state=0).fit(X, y)
    seconds.append(time.perf_counter() - t0)
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0)
print(statistics.median(faults[1:]), statistics.median(seconds[1:]))
"""


def run_fresh(script: str, env: dict[str, str]) -> str:
    """The output of ``script`` in a fresh interpreter, with ``env``'s malloc settings only."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    out = subprocess.run(
        [sys.executable, "-c", script], env={**clean, **env}, capture_output=True, text=True, check=True
    )
    return out.stdout


def fit_faults(env: dict[str, str]) -> tuple[float, float]:
    """(minor faults, seconds) per deep-tree fit in a fresh interpreter with ``env`` added."""
    faults, seconds = run_fresh(_FIT_SCRIPT.format(here=str(Path(__file__).parent)), env).split()
    return float(faults), float(seconds)


def predict_faults(rounds: int = 5) -> tuple[float, float]:
    """(minor faults, seconds) per warm 100-tree predict of the test rows, n_jobs=2."""
    from test_bench_forest import load_workload

    from shmforest import RandomForestClassifier

    X_train, X_test, y_train, _ = load_workload()
    model = RandomForestClassifier(100, random_state=0, n_jobs=2).fit(X_train, y_train)
    model.predict(X_test)
    faults, seconds = [], []
    for _ in range(rounds):
        r0, t0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
        model.predict(X_test)
        seconds.append(time.perf_counter() - t0)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0)
    return statistics.median(faults), statistics.median(seconds)


@pytest.mark.parametrize("setting", list(SETTINGS))
def test_deep_tree_fit_faults(benchmark, setting):
    pytest.importorskip("sklearn")
    faults, seconds = benchmark.pedantic(fit_faults, args=(SETTINGS[setting],), rounds=1, iterations=1)
    benchmark.extra_info.update(minor_faults=faults, fit_s=seconds)


def test_predict_faults(benchmark):
    pytest.importorskip("sklearn")
    faults, seconds = benchmark.pedantic(predict_faults, rounds=1, iterations=1)
    benchmark.extra_info.update(minor_faults=faults, predict_s=seconds)


def main() -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    print("| one deep tree, serial, fresh interpreter | minor faults per fit | seconds per fit |")
    print("|---|---|---|")
    for name, env in SETTINGS.items():
        faults, seconds = fit_faults(env)
        print(f"| {name} | {faults:,.0f} | {seconds:.2f} s |")
    faults, seconds = predict_faults()
    print(
        f"\n100-tree predict of 25,000 rows, n_jobs=2, warm: {faults:,.0f} minor faults, {seconds:.3f} s (median of 5)"
    )


if __name__ == "__main__":
    main()
