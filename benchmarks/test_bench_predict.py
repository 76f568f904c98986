"""Predict: 100 trees on the 25,000 test rows of the 75,000 x 20 workload, beside scikit-learn.

Our forest predicts with ``n_jobs`` 1 and 2 (threads sharing out fixed groups of
trees); the row-block split it replaced is measured too, as the baseline for that
choice. scikit-learn at ``n_jobs`` 1 and 2 in the same run. For the README::

    .venv/bin/python benchmarks/test_bench_predict.py
"""

from __future__ import annotations

import concurrent.futures as cf
import time

import numpy as np
import pytest

from shmforest import RandomForestClassifier
from shmforest.tree.tree import predict_forest

ROUNDS = 7


def _workload():
    from sklearn.datasets import make_classification
    from sklearn.model_selection import train_test_split

    X, y = make_classification(n_samples=100_000, n_features=20, n_informative=10, random_state=0)
    return train_test_split(X, y, test_size=0.25, random_state=0)


def _row_blocks(trees, X, pool) -> np.ndarray:
    """The split replaced: one block of rows per thread, every tree each."""
    half = X.shape[0] // 2
    parts = [pool.submit(predict_forest, trees, X[:half]), pool.submit(predict_forest, trees, X[half:])]
    return np.concatenate([p.result() for p in parts])


def runners():
    from sklearn.ensemble import RandomForestClassifier as SkForest

    Xtr, Xte, ytr, _ = _workload()
    ours = RandomForestClassifier(n_estimators=100, random_state=0, executor="shm", n_jobs=2).fit(Xtr, ytr)
    theirs = SkForest(n_estimators=100, random_state=0, n_jobs=2).fit(Xtr, ytr)
    trees = [e.tree_ for e in ours.estimators_]
    X = np.ascontiguousarray(Xte)
    pool = cf.ThreadPoolExecutor(2)
    return pool, {
        "shmforest n_jobs=1": lambda: ours.set_params(n_jobs=1).predict_proba(X),
        "shmforest n_jobs=2 (tree groups)": lambda: ours.set_params(n_jobs=2).predict_proba(X),
        "shmforest 2 threads, row blocks (before)": lambda: _row_blocks(trees, X, pool),
        "scikit-learn n_jobs=1": lambda: theirs.set_params(n_jobs=1).predict_proba(X),
        "scikit-learn n_jobs=2": lambda: theirs.set_params(n_jobs=2).predict_proba(X),
    }


@pytest.fixture(scope="module")
def predictors():
    pytest.importorskip("sklearn")
    pool, found = runners()
    yield found
    pool.shutdown()


@pytest.mark.parametrize(
    "runner",
    ["shmforest n_jobs=1", "shmforest n_jobs=2 (tree groups)", "shmforest 2 threads, row blocks (before)",
     "scikit-learn n_jobs=1", "scikit-learn n_jobs=2"],
)
def test_predict(benchmark, predictors, runner):
    benchmark.pedantic(predictors[runner], rounds=ROUNDS, warmup_rounds=1)


def main() -> None:
    pool, found = runners()
    times = {}
    for _ in range(ROUNDS):  # in turns, so a busy moment hits every runner alike
        for name, run in found.items():
            t = time.perf_counter()
            run()
            times.setdefault(name, []).append(time.perf_counter() - t)
    pool.shutdown()
    print("| runner | best | median |")
    print("|---|---|---|")
    for name, ts in times.items():
        print(f"| {name} | {min(ts):.3f} s | {sorted(ts)[len(ts) // 2]:.3f} s |")


if __name__ == "__main__":
    main()
