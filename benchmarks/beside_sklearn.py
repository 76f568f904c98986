"""Forests of one family fitted beside scikit-learn's, runners in turns: what the extra-trees
and multi-output suites share (``test_bench_extra_trees.py``, ``test_bench_multi_output.py``).

In each round every runner fits once, in turns, so a slow minute of the shared
machine hits all of them; the table shows medians over rounds: shmforest ``thread``
at 2 workers against scikit-learn ``n_jobs=2``, shmforest serial against
scikit-learn ``n_jobs=1``, and the held-out score, shmforest minus scikit-learn.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn import ensemble as sk_ensemble
from sklearn.model_selection import train_test_split

import shmforest

ROUNDS = int(os.environ.get("SHMFOREST_BENCH_ROUNDS", "3"))

#: name: (load, regression, trees)
Workloads = dict[str, tuple[Callable[[], tuple[np.ndarray, np.ndarray]], bool, int]]
Score = Callable[[Any, np.ndarray, np.ndarray, bool], float]

RUNNERS = {  # label: (library, executor, n_jobs)
    "shmforest thread 2": ("shmforest", "thread", 2),
    "sklearn n_jobs=2": ("sklearn", None, 2),
    "shmforest serial": ("shmforest", "serial", 1),
    "sklearn n_jobs=1": ("sklearn", None, 1),
}


def make(family: str, library: str, executor: str | None, n_jobs: int, regression: bool, trees: int) -> Any:
    """A forest of ``family`` ("RandomForest", "ExtraTrees") from ``library``."""
    name = family + ("Regressor" if regression else "Classifier")
    if library == "sklearn":
        return getattr(sk_ensemble, name)(trees, n_jobs=n_jobs, random_state=0)
    return getattr(shmforest, name)(trees, executor=executor, n_jobs=n_jobs, random_state=0)


def held_out_score(model: Any, X: np.ndarray, y: np.ndarray, regression: bool) -> float:
    """The estimator's own ``score``: accuracy, or R²."""
    return float(model.score(X, y))


def measure(
    workload: str, workloads: Workloads, family: str, score: Score = held_out_score, rounds: int = ROUNDS
) -> dict[str, tuple[float, float]]:
    """``{runner: (median fit seconds, held-out score)}`` over ``rounds`` rounds in turns, on a 25% test split."""
    load, regression, trees = workloads[workload]
    X, y = load()
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
    make(family, "shmforest", "serial", 1, regression, 2).fit(X_train[:200], y_train[:200])  # kernels loaded
    times: dict[str, list[float]] = {label: [] for label in RUNNERS}
    scores: dict[str, float] = {}
    for _ in range(rounds):
        for label, runner in RUNNERS.items():
            model = make(family, *runner, regression, trees)
            start = time.perf_counter()
            model.fit(X_train, y_train)
            times[label].append(time.perf_counter() - start)
            scores[label] = score(model, X_test, y_test, regression)
    return {label: (statistics.median(times[label]), scores[label]) for label in RUNNERS}


def report(results: dict[str, dict[str, tuple[float, float]]], workloads: Workloads) -> str:
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


def main(names: list[str], workloads: Workloads, family: str, score: Score = held_out_score) -> None:
    """Measure ``names`` (every workload when empty) and print the table."""
    results = {}
    for name in names or list(workloads):
        results[name] = measure(name, workloads, family, score)
        print(f"{name}: done", file=sys.stderr, flush=True)
    print(report(results, workloads))
