"""ensemble: ForestArrays walks every tree in one compiled kernel, as each tree's own walk does."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from shmforest import RandomForestClassifier, RandomForestRegressor
from shmforest.tree import (
    ForestArrays,
    Tree,
    apply_forest,
    ensemble,
    predict_forest,
)


@pytest.fixture(scope="module")
def forest_data():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(1500, 6))
    X[:, 5] = rng.integers(0, 4, size=1500)  # few distinct values: exact bins
    y = (X[:, 0] + X[:, 1] * X[:, 2] + 0.3 * rng.normal(size=1500) > 0).astype(int)
    return X, y


@pytest.fixture(scope="module")
def trees(forest_data):
    X, y = forest_data
    model = RandomForestClassifier(n_estimators=12, random_state=0, executor="serial").fit(X, y)
    return [e.tree_ for e in model.estimators_]


def hard_rows(trees, X):
    """Rows sitting exactly on thresholds, next to them, beyond every threshold, and non-finite."""
    t = trees[0]
    internal = np.flatnonzero(t.children_left != -1)[:40]
    rows = np.repeat(X[:1], 3 * internal.size, axis=0)
    for i, node in enumerate(internal):
        value = t.threshold[node]
        for j, v in enumerate((value, np.nextafter(value, -np.inf), np.nextafter(value, np.inf))):
            rows[3 * i + j, t.feature[node]] = v
    extremes = np.vstack([np.full(X.shape[1], v) for v in (-1e300, 1e300, np.inf, -np.inf, np.nan)])
    return np.vstack([X, rows, extremes])


def one_row_walk(tree, x):
    """The textbook walk, one row at a time: what every compiled walk must agree with."""
    node = 0
    while tree.children_left[node] != -1:
        node = tree.children_left[node] if x[tree.feature[node]] <= tree.threshold[node] else tree.children_right[node]
    return node


def test_leaves_are_those_of_the_textbook_walk(trees, forest_data):
    X = hard_rows(trees, forest_data[0])
    expected = np.array([[one_row_walk(t, x) for t in trees] for x in X[::7]])
    np.testing.assert_array_equal(ForestArrays(trees).apply(X[::7]), expected)
    np.testing.assert_array_equal(apply_forest(trees, X[::7]), expected.T)
    np.testing.assert_array_equal(trees[3].apply(X[::7]), expected[:, 3])


def test_predictions_are_the_group_sums_of_tree_values(trees, forest_data):
    X = forest_data[0]
    expected = np.zeros((X.shape[0], trees[0].n_outputs))
    for start in range(0, len(trees), ensemble.TREES_PER_GROUP):  # fixed groups, summed in order
        part = np.zeros_like(expected)
        for t in trees[start : start + ensemble.TREES_PER_GROUP]:
            part += t.predict(X)
        expected += part
    expected /= len(trees)
    np.testing.assert_array_equal(ForestArrays(trees).predict_value(X), expected)
    np.testing.assert_array_equal(predict_forest(trees, X), expected)


@pytest.mark.parametrize("n_threads", [2, 3, 7])
def test_threads_give_the_same_bits(trees, forest_data, monkeypatch, n_threads):
    X = np.vstack([forest_data[0]] * 3)
    forest = ForestArrays(trees)
    one, leaves = forest.predict_value(X), forest.apply(X)
    monkeypatch.setattr(ensemble, "ROWS_PER_THREAD", 100)  # every call threaded
    np.testing.assert_array_equal(forest.predict_value(X, n_threads=n_threads), one)
    np.testing.assert_array_equal(forest.apply(X, n_threads=n_threads), leaves)


def test_regression_forest_and_pickling(forest_data):
    X, y = forest_data
    model = RandomForestRegressor(n_estimators=5, random_state=0, executor="serial").fit(X, X[:, 0] + y)
    forest = ForestArrays([e.tree_ for e in model.estimators_])
    back = pickle.loads(pickle.dumps(forest))
    np.testing.assert_array_equal(back.predict_value(X), forest.predict_value(X))
    assert forest.predict_value(X).shape == (X.shape[0], 1)


def test_bad_inputs_are_named(trees):
    forest = ForestArrays(trees)
    with pytest.raises(ValueError, match=r"X must have shape \(n_samples, 6\)"):
        forest.predict_value(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="empty"):
        ForestArrays([])
    regression = Tree([-1], [-1], [-2], [-2.0], [[1.0]], [1], [1.0], [0.0], n_features=6)
    with pytest.raises(ValueError, match="different value widths"):
        ForestArrays([trees[0], regression])
