"""Multi-output forests beside scikit-learn's: fit time and held-out score on several workloads.

Random forests with scikit-learn's defaults on both sides, a 25% test split
(``random_state=0``), runners in turns, medians over rounds (``beside_sklearn.py``);
score: the mean over outputs of each output's accuracy (points), or R² averaged over
outputs, shmforest minus scikit-learn.

Workloads:

* ``labels-3``: ``make_multilabel_classification(50_000, 20, n_classes=3)``: three binary outputs;
* ``mixed-2``: ``make_classification(50_000, 20, n_classes=4)``'s labels beside a
  three-class output cut from a feature: outputs of 4 and 3 classes;
* ``regression-3``: ``make_regression(50_000, 20, n_targets=3, noise=10)``;
* ``digits-2``: scikit-learn's digits, its digit and the digit's parity.

(scikit-learn's bundled multi-output set, linnerud, has 20 rows: a test split of 5
scores nothing; ``tests/estimators/test_multi_output_y.py`` compares on it leaving one out.)

Run as a script for the table (``SHMFOREST_BENCH_ROUNDS``, default 3)::

    .venv/bin/python benchmarks/test_bench_multi_output.py [workload ...]
"""

from __future__ import annotations

import sys
from typing import Any

import beside_sklearn  # the runners in turns, and their table
import numpy as np
import pytest
from sklearn import datasets
from sklearn.metrics import r2_score


def _mixed() -> tuple[np.ndarray, np.ndarray]:
    X, y = datasets.make_classification(50_000, 20, n_informative=10, n_classes=4, random_state=0)
    return X, np.column_stack([y, np.digitize(X[:, 0] + X[:, 1], [-1.0, 1.0])])


def _digits() -> tuple[np.ndarray, np.ndarray]:
    X, y = datasets.load_digits(return_X_y=True)
    return X, np.column_stack([y, y % 2])


WORKLOADS: beside_sklearn.Workloads = {
    "labels-3": (
        lambda: datasets.make_multilabel_classification(50_000, 20, n_classes=3, random_state=0),
        False,
        50,
    ),
    "mixed-2": (_mixed, False, 50),
    "regression-3": (
        lambda: datasets.make_regression(50_000, 20, n_informative=10, n_targets=3, noise=10, random_state=0),
        True,
        20,
    ),
    "digits-2": (_digits, False, 100),
}


def score(model: Any, X: np.ndarray, y: np.ndarray, regression: bool) -> float:
    """R² averaged over outputs, or the mean of the outputs' accuracies (scikit-learn's
    ``score`` refuses multi-class multi-output labels)."""
    prediction = model.predict(X)
    if regression:
        return float(r2_score(y, prediction))
    return float(np.mean(prediction == y))


@pytest.mark.parametrize("workload", ["digits-2"])
def test_multi_output_fit(benchmark, workload, capsys):
    results = benchmark.pedantic(
        lambda: {workload: beside_sklearn.measure(workload, WORKLOADS, "RandomForest", score, rounds=1)},
        rounds=1,
        iterations=1,
    )
    with capsys.disabled():
        print("\n" + beside_sklearn.report(results, WORKLOADS))


if __name__ == "__main__":
    beside_sklearn.main(sys.argv[1:], WORKLOADS, "RandomForest", score)
