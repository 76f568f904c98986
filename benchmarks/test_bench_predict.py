"""Predict: 100 trees on the 25,000 test rows of the 75,000 x 20 workload, beside scikit-learn.

Our forest predicts with ``n_jobs`` 1 and 2 through the estimators, and with
:meth:`ForestArrays.predict_value` on 2 threads directly (the compiled walk over
row blocks, ``shmforest.tree.ensemble``). Also measured: the first predict after
a fit, which packs the node arrays. scikit-learn at ``n_jobs`` 1 and 2 in the same
run. For a table (``benchmarks/RESULTS.md``)::

    .venv/bin/python benchmarks/test_bench_predict.py

With ``workloads`` (and optionally names from ``test_bench_workloads.WORKLOADS``),
predict alone on the large workloads of the suite: each forest is fitted once per
library (shmforest ``thread`` 2, scikit-learn ``n_jobs=2``), the first predict after
each fit timed, then repeated predicts in turns, ROUNDS of them; ratios shmforest over
scikit-learn (the goal: at most 0.7)::

    .venv/bin/python benchmarks/test_bench_predict.py workloads [easy tall ...]
"""

from __future__ import annotations

import concurrent.futures as cf
import copy
import statistics
import sys
import time

import numpy as np
import pytest

from shmforest import RandomForestClassifier
from shmforest.tree.ensemble import ForestArrays

ROUNDS = 7


def _workload():
    from sklearn.datasets import make_classification
    from sklearn.model_selection import train_test_split

    X, y = make_classification(n_samples=100_000, n_features=20, n_informative=10, random_state=0)
    return train_test_split(X, y, test_size=0.25, random_state=0)


def _first_predict(model, X) -> np.ndarray:
    # A copy without the packed node arrays pays for packing them, as the end of a fit does.
    fresh = copy.copy(model)
    fresh.__dict__.pop("_packed", None)
    return fresh.predict_proba(X)


def runners():
    from sklearn.ensemble import RandomForestClassifier as SkForest

    Xtr, Xte, ytr, _ = _workload()
    ours = RandomForestClassifier(n_estimators=100, random_state=0, executor="shm", n_jobs=2).fit(Xtr, ytr)
    theirs = SkForest(n_estimators=100, random_state=0, n_jobs=2).fit(Xtr, ytr)
    forest = ForestArrays([e.tree_ for e in ours.estimators_])
    X = np.ascontiguousarray(Xte)
    pool = cf.ThreadPoolExecutor(2)
    return pool, {
        "shmforest n_jobs=1": lambda: ours.set_params(n_jobs=1).predict_proba(X),
        "shmforest n_jobs=2": lambda: ours.set_params(n_jobs=2).predict_proba(X),
        "shmforest n_jobs=2, first predict after fit": lambda: _first_predict(ours.set_params(n_jobs=2), X),
        "ForestArrays, 2 threads": lambda: forest.predict_value(X, n_threads=2),
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
    [
        "shmforest n_jobs=1",
        "shmforest n_jobs=2",
        "shmforest n_jobs=2, first predict after fit",
        "ForestArrays, 2 threads",
        "scikit-learn n_jobs=1",
        "scikit-learn n_jobs=2",
    ],
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
        print(f"| {name} | {min(ts):.3f} s | {statistics.median(ts):.3f} s |")
    ours, theirs = times["shmforest n_jobs=2"], times["scikit-learn n_jobs=2"]
    print(
        f"\nscikit-learn n_jobs=2 / shmforest n_jobs=2: {min(theirs) / min(ours):.2f}x best, "
        f"{statistics.median(theirs) / statistics.median(ours):.2f}x median (above 1: we are faster)"
    )


#: The suite's workloads whose predict is long enough to matter.
LARGE = ["easy", "noisy5", "regression", "friedman1", "wide", "tall"]


def compare_workloads(names: list[str]) -> None:
    """First and repeated predict of each large workload, shmforest beside scikit-learn n_jobs=2."""
    from test_bench_workloads import WORKLOADS, _forest, _split

    print("| workload | sklearn first | ours first | ratio | sklearn again | ours again | ratio (range) |")
    print("|---|---|---|---|---|---|---|")
    for name in names:
        w = WORKLOADS[name]
        X_train, X_test, y_train, _ = _split(w)
        first, again = {}, {}
        models = {}
        for label, library, executor in (("ours", "shmforest", "thread"), ("sk", "scikit-learn", None)):
            models[label] = _forest(w, library, executor, 2).fit(X_train, y_train)
            t = time.perf_counter()
            models[label].predict(X_test)
            first[label] = time.perf_counter() - t
        for _ in range(ROUNDS):  # in turns, so a busy moment hits both alike
            for label, model in models.items():
                t = time.perf_counter()
                model.predict(X_test)
                again.setdefault(label, []).append(time.perf_counter() - t)
        ratios = [a / b for a, b in zip(again["ours"], again["sk"])]
        print(
            f"| {name} | {first['sk']:.3f} s | {first['ours']:.3f} s | {first['ours'] / first['sk']:.2f} "
            f"| {statistics.median(again['sk']):.3f} s | {statistics.median(again['ours']):.3f} s "
            f"| {statistics.median(ratios):.2f} ({min(ratios):.2f}–{max(ratios):.2f}) |",
            flush=True,
        )


if __name__ == "__main__":
    if sys.argv[1:2] == ["workloads"]:
        compare_workloads(sys.argv[2:] or LARGE)
    else:
        main()
