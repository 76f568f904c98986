"""ensemble: CodedForest walks threshold ranks and must reach the float walk's leaves, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from shmforest import RandomForestClassifier, RandomForestRegressor
from shmforest.tree import CodedForest, Tree, apply_forest, predict_forest
from shmforest.tree.ensemble import TREES_PER_WALK


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


def float_leaves(trees, X):
    return np.stack([t.apply(X) for t in trees])


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


def test_codes_reach_the_leaves_of_the_float_walk(trees, forest_data):
    X = hard_rows(trees, forest_data[0])
    forest = CodedForest(trees)
    assert forest.dtype == np.uint16  # midpoint thresholds: more than 255 on some feature
    np.testing.assert_array_equal(forest.apply(forest.encode(X)), float_leaves(trees, X))
    np.testing.assert_array_equal(apply_forest(trees, X), float_leaves(trees, X))


def test_predictions_are_the_group_sums_of_tree_values(trees, forest_data):
    X = forest_data[0]
    expected = None
    for start in range(0, len(trees), 10):  # fixed groups of ten, summed in order
        part = np.zeros((X.shape[0], trees[0].n_outputs))
        for t in trees[start : start + 10]:
            part += t.predict(X)
        expected = part if expected is None else expected + part
    np.testing.assert_array_equal(predict_forest(trees, X), expected / len(trees))


def test_few_thresholds_give_one_byte_codes(forest_data):
    X, y = forest_data
    Xs = np.round(X[:, :3] * 2) / 2  # a few dozen distinct values per feature
    model = RandomForestRegressor(n_estimators=TREES_PER_WALK + 2, random_state=1, executor="serial").fit(Xs, y)
    trees = [e.tree_ for e in model.estimators_]
    forest = CodedForest(trees)
    assert forest.dtype == np.uint8
    np.testing.assert_array_equal(forest.apply(forest.encode(Xs)), float_leaves(trees, Xs))


def complete_tree(depth: int, thresholds: np.ndarray, feature: int, n_features: int) -> Tree:
    """A complete tree, ids breadth first, testing ``feature`` against ``thresholds`` (one per internal node)."""
    n_internal = 2**depth - 1
    n = 2 * n_internal + 1
    ids = np.arange(n)
    left = np.where(ids < n_internal, 2 * ids + 1, -1)
    right = np.where(ids < n_internal, 2 * ids + 2, -1)
    feat = np.where(ids < n_internal, feature, -2)
    thr = np.full(n, -2.0)
    thr[:n_internal] = np.sort(thresholds)[np.argsort(np.argsort(ids[:n_internal]))]
    value = (ids % 7).astype(float)[:, None]
    return Tree(left, right, feat, thr, value, np.ones(n, int), np.ones(n), np.zeros(n), n_features)


def test_too_many_thresholds_fall_back_to_the_float_walk():
    rng = np.random.default_rng(0)
    # 260 trees of 255 distinct thresholds each on feature 0: more than 65,535 in all.
    trees = [complete_tree(8, rng.normal(size=255), 0, 2) for _ in range(260)]
    forest = CodedForest(trees)
    assert forest.dtype == np.float64
    X = rng.normal(size=(50, 2))
    assert forest.encode(X) is not None
    np.testing.assert_array_equal(forest.apply(forest.encode(X)), float_leaves(trees, X))


def test_a_nan_threshold_falls_back_to_the_float_walk():
    rng = np.random.default_rng(1)
    thresholds = rng.normal(size=7)
    thresholds[3] = np.nan  # x <= nan is false: always right, which no rank expresses
    trees = [complete_tree(3, thresholds, 1, 2), complete_tree(3, rng.normal(size=7), 0, 2)]
    forest = CodedForest(trees)
    assert forest.dtype == np.float64
    X = rng.normal(size=(200, 2))
    np.testing.assert_array_equal(forest.apply(forest.encode(X)), float_leaves(trees, X))


def test_encode_writes_row_blocks_into_one_array(trees, forest_data):
    X = forest_data[0]
    forest = CodedForest(trees)
    whole = forest.encode(X)
    out = np.empty(X.shape, dtype=forest.dtype)
    forest.encode(X[:700], out=out[:700])
    forest.encode(X[700:], out=out[700:])
    np.testing.assert_array_equal(out, whole)


@pytest.mark.parametrize("bad", [np.empty((5, 6), np.float32), np.empty((4, 6), np.uint16), np.empty((6, 5), np.uint16)])
def test_encode_rejects_an_out_that_does_not_fit(trees, forest_data, bad):
    with pytest.raises(ValueError, match="out must be a C-order uint16 array of shape"):
        CodedForest(trees).encode(forest_data[0][:5], out=bad)


def test_bad_inputs_are_named(trees, forest_data):
    forest = CodedForest(trees)
    with pytest.raises(ValueError, match=r"X must have shape \(n_samples, 6\)"):
        forest.encode(np.zeros((3, 4)))
    with pytest.raises(ValueError, match=f"multiples of {TREES_PER_WALK}"):
        forest.sum_values(forest.encode(forest_data[0][:4]), 1, 10)
    with pytest.raises(ValueError, match="empty"):
        CodedForest([])
    regression = Tree([-1], [-1], [-2], [-2.0], [[1.0]], [1], [1.0], [0.0], n_features=6)
    with pytest.raises(ValueError, match="different value widths"):
        CodedForest([trees[0], regression])


def test_rows_walk_in_blocks_with_reused_buffers(trees, forest_data, monkeypatch):
    import shmforest.tree.ensemble as ensemble

    X = forest_data[0]
    whole = CodedForest(trees)
    codes = whole.encode(X)
    expected_sum, expected_leaves = whole.sum_values(codes), whole.apply(codes)
    monkeypatch.setattr(ensemble, "PAIRS_PER_WALK", 7 * TREES_PER_WALK * 11)  # 77 rows a block
    blocked = CodedForest(trees)
    for _ in range(2):  # the second time on the buffers the first left behind
        np.testing.assert_array_equal(blocked.sum_values(codes), expected_sum)
        np.testing.assert_array_equal(blocked.apply(codes), expected_leaves)
    (workspace,) = blocked._spares  # one caller at a time: one workspace, given back
    assert workspace.nbytes < 200 * 77 * TREES_PER_WALK  # sized by the block, not by X
