"""Extra trees beside scikit-learn's: fit time and held-out score on several workloads.

Same parameters on both sides (scikit-learn's defaults: fully grown, no bootstrap,
``max_features`` "sqrt" for classification and 1.0 for regression), a 25% test
split (``random_state=0``). In each round every runner fits once, in turns, so a slow
minute of the shared machine hits all of them; the table shows medians over rounds:

* fit: shmforest ``thread`` at 2 workers against scikit-learn ``n_jobs=2``, and
  shmforest serial against scikit-learn ``n_jobs=1``;
* score: accuracy (points) or R², shmforest minus scikit-learn.

Run as a script for the table (``SHMFOREST_BENCH_ROUNDS``, default 3)::

    .venv/bin/python benchmarks/test_bench_extra_trees.py [workload ...]
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from sklearn import datasets
from sklearn import ensemble as sk_ensemble
from sklearn.model_selection import train_test_split

import shmforest

ROUNDS = int(os.environ.get("SHMFOREST_BENCH_ROUNDS", "3"))

# name: (load, regression, trees)
WORKLOADS: dict[str, tuple[Callable[[], tuple[np.ndarray, np.ndarray]], bool, int]] = {
    "easy": (lambda: datasets.make_classification(100_000, 20, n_informative=10, random_state=0), False, 50),
    "regression": (lambda: datasets.make_regression(100_000, 20, noise=10, random_state=0), True, 20),
    "wide": (lambda: datasets.make_classification(20_000, 200, n_informative=20, random_state=0), False, 50),
    "digits": (lambda: datasets.load_digits(return_X_y=True), False, 100),
    "diabetes": (lambda: datasets.load_diabetes(return_X_y=True), True, 100),
}

RUNNERS = {  # label: (library, executor, n_jobs)
    "shmforest thread 2": ("shmforest", "thread", 2),
    "sklearn n_jobs=2": ("sklearn", None, 2),
    "shmforest serial": ("shmforest", "serial", 1),
    "sklearn n_jobs=1": ("sklearn", None, 1),
}


def make(library: str, executor: str | None, n_jobs: int, regression: bool, trees: int) -> Any:
    name = "ExtraTreesRegressor" if regression else "ExtraTreesClassifier"
    if library == "sklearn":
        return getattr(sk_ensemble, name)(trees, n_jobs=n_jobs, random_state=0)
    return getattr(shmforest, name)(trees, executor=executor, n_jobs=n_jobs, random_state=0)


Workloads = dict[str, tuple[Callable[[], tuple[np.ndarray, np.ndarray]], bool, int]]
Make = Callable[[str, "str | None", int, bool, int], Any]


def held_out_score(model: Any, X: np.ndarray, y: np.ndarray, regression: bool) -> float:
    """The estimator's own ``score``: accuracy, or R²."""
    return float(model.score(X, y))


def measure(
    workload: str,
    rounds: int = ROUNDS,
    workloads: Workloads = WORKLOADS,
    make: Make = make,
    score: Callable[[Any, np.ndarray, np.ndarray, bool], float] = held_out_score,
) -> dict[str, tuple[float, float]]:
    """``{runner: (median fit seconds, held-out score)}`` over ``rounds`` rounds in turns.

    ``workloads``, ``make`` and ``score``: what other comparisons with scikit-learn
    (``test_bench_multi_output``) fit and how they score it.
    """
    load, regression, trees = workloads[workload]
    X, y = load()
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
    make("shmforest", "serial", 1, regression, 2).fit(X_train[:200], y_train[:200])  # compiled kernels loaded
    times: dict[str, list[float]] = {label: [] for label in RUNNERS}
    scores: dict[str, float] = {}
    for _ in range(rounds):
        for label, runner in RUNNERS.items():
            model = make(*runner, regression, trees)
            start = time.perf_counter()
            model.fit(X_train, y_train)
            times[label].append(time.perf_counter() - start)
            scores[label] = score(model, X_test, y_test, regression)
    return {label: (statistics.median(times[label]), scores[label]) for label in RUNNERS}


def report(results: dict[str, dict[str, tuple[float, float]]], workloads: Workloads = WORKLOADS) -> str:
    lines = [
        "| workload | thread 2 / sk n_jobs=2 | serial / sk n_jobs=1 | score, ours − sklearn | sk n_jobs=2 seconds |",
        "|---|---|---|---|---|",
    ]
    for name, r in results.items():
        regression = workloads[name][1]
        gap = r["shmforest thread 2"][1] - r["sklearn n_jobs=2"][1]
        gap_text = f"{gap:+.4f} R²" if regression else f"{100 * gap:+.2f} pt"
        lines.append(
            f"| {name} | {r['shmforest thread 2'][0] / r['sklearn n_jobs=2'][0]:.2f} "
            f"| {r['shmforest serial'][0] / r['sklearn n_jobs=1'][0]:.2f} | {gap_text} "
            f"| {r['sklearn n_jobs=2'][0]:.2f} |"
        )
    return "\n".join(lines)


@pytest.mark.parametrize("workload", ["digits", "diabetes"])
def test_extra_trees_fit(benchmark, workload, capsys):
    results = benchmark.pedantic(lambda: {workload: measure(workload, rounds=1)}, rounds=1, iterations=1)
    with capsys.disabled():
        print("\n" + report(results))


def main(
    names: list[str],
    measure: Callable[[str], dict[str, tuple[float, float]]] = measure,
    report: Callable[[dict[str, dict[str, tuple[float, float]]]], str] = report,
    workloads: Workloads = WORKLOADS,
) -> None:
    """Measure ``names`` (every workload when empty) and print the table."""
    results = {}
    for name in names or list(workloads):
        results[name] = measure(name)
        print(f"{name}: done", file=sys.stderr, flush=True)
    print(report(results))


if __name__ == "__main__":
    main(sys.argv[1:])
