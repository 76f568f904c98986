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
from shmforest.tree import tree as tree_module
from shmforest.tree.tree import NODE_ARRAYS


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
        v = x[tree.feature[node]]
        left = v <= tree.threshold[node] or (np.isnan(v) and tree.missing_go_to_left[node])
        node = tree.children_left[node] if left else tree.children_right[node]
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


def caterpillar(depth, n_features, n_outputs):
    """A tree of ``depth`` splits on feature 0, each with a leaf on the left: rows stop at every depth."""
    n = 2 * depth + 1
    left, right = np.full(n, -1), np.full(n, -1)
    feature, threshold = np.full(n, -2), np.full(n, -2.0)
    for d in range(depth):
        node = 2 * d
        left[node], right[node] = node + 1, node + 2
        feature[node], threshold[node] = 0, -3.0 + 6.0 * d / depth
    value = np.arange(n * n_outputs, dtype=np.float64).reshape(n, n_outputs) / 7.0
    return Tree(left, right, feature, threshold, value, np.ones(n), np.ones(n), np.zeros(n), n_features)


def breadth_first(tree):
    """The same tree with its nodes numbered level by level (a child still after its parent)."""
    order, head = [0], 0
    while head < len(order):
        node = order[head]
        head += 1
        if tree.children_left[node] != -1:
            order += [tree.children_left[node], tree.children_right[node]]
    new = np.empty(tree.node_count, dtype=np.int64)
    new[order] = np.arange(tree.node_count)
    kids = [np.where(c[order] == -1, -1, new[c[order]]) for c in (tree.children_left, tree.children_right)]
    return Tree(*kids, *(getattr(tree, a)[order] for a in NODE_ARRAYS[2:]), n_features=tree.n_features)


@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_mixed_trees_walk_as_the_textbook_in_ragged_blocks(trees, forest_data, monkeypatch, n_threads):
    """Deep, lone-leaf and breadth-first-numbered trees beside grown ones; rows in blocks and
    batches that do not divide them, NaN and infinite rows: the leaves and the sums of the
    one-row walk, to the bit."""
    n_out = trees[0].n_outputs
    lone = Tree([-1], [-1], [-2], [-2.0], [[0.25] * n_out], [1], [1.0], [0.0], n_features=6)
    mixed = [trees[0], caterpillar(45, 6, n_out), lone, breadth_first(trees[1]), *trees[2:9], caterpillar(3, 6, n_out)]
    rng = np.random.default_rng(5)
    X = hard_rows(trees, forest_data[0][:997])
    X[rng.random(X.shape) < 0.05] = np.nan
    X[::11, 0] = np.linspace(-4.0, 4.0, X[::11].shape[0])  # every depth of the caterpillars
    monkeypatch.setattr(ensemble, "ROWS_PER_THREAD", 100)
    monkeypatch.setattr(tree_module, "X_BLOCK_BYTES", 8 * 6 * 333)  # blocks of 333 rows
    expected_leaves = np.array([[one_row_walk(t, x) for t in mixed] for x in X])
    expected = np.zeros((X.shape[0], n_out))
    for start in range(0, len(mixed), ensemble.TREES_PER_GROUP):
        part = np.zeros_like(expected)
        for j in range(start, min(start + ensemble.TREES_PER_GROUP, len(mixed))):
            part += mixed[j].value[expected_leaves[:, j]]
        expected += part
    expected /= len(mixed)
    forest = ForestArrays(mixed)
    assert tree_module.row_block(X.shape[1]) == 333 and X.shape[0] % 333 and X.shape[0] % tree_module.ROW_BATCH
    np.testing.assert_array_equal(forest.apply(X, n_threads=n_threads), expected_leaves)
    np.testing.assert_array_equal(forest.predict_value(X, n_threads=n_threads), expected)
    for j, t in enumerate(mixed):
        np.testing.assert_array_equal(t.apply(X), expected_leaves[:, j])


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
