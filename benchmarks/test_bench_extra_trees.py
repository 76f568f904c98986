"""Extra trees beside scikit-learn's: fit time and held-out score on several workloads.

Same parameters on both sides (scikit-learn's defaults: fully grown, no bootstrap,
``max_features`` "sqrt" for classification and 1.0 for regression), a 25% test
split (``random_state=0``), runners in turns, medians over rounds (``beside_sklearn.py``);
score: accuracy (points) or R², shmforest minus scikit-learn.

Run as a script for the table (``SHMFOREST_BENCH_ROUNDS``, default 3)::

    .venv/bin/python benchmarks/test_bench_extra_trees.py [workload ...]
"""

from __future__ import annotations

import sys

import beside_sklearn  # the runners in turns, and their table
import pytest
from sklearn import datasets

WORKLOADS: beside_sklearn.Workloads = {
    "easy": (lambda: datasets.make_classification(100_000, 20, n_informative=10, random_state=0), False, 50),
    "regression": (lambda: datasets.make_regression(100_000, 20, noise=10, random_state=0), True, 20),
    "wide": (lambda: datasets.make_classification(20_000, 200, n_informative=20, random_state=0), False, 50),
    "digits": (lambda: datasets.load_digits(return_X_y=True), False, 100),
    "diabetes": (lambda: datasets.load_diabetes(return_X_y=True), True, 100),
}


@pytest.mark.parametrize("workload", ["digits", "diabetes"])
def test_extra_trees_fit(benchmark, workload, capsys):
    results = benchmark.pedantic(
        lambda: {workload: beside_sklearn.measure(workload, WORKLOADS, "ExtraTrees", rounds=1)},
        rounds=1,
        iterations=1,
    )
    with capsys.disabled():
        print("\n" + beside_sklearn.report(results, WORKLOADS))


if __name__ == "__main__":
    beside_sklearn.main(sys.argv[1:], WORKLOADS, "ExtraTrees")
