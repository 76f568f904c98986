"""Missing values (NaN) in the binner, the compiled builder and every walk of a tree."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.datasets import make_classification
from test_builder import assert_branch_parallel_is_serial, bootstrap, dataset, grow, params
from test_ensemble import one_row_walk

from shmforest.tree import Binner, Tree
from shmforest.tree import growth as growth_module
from shmforest.tree.ensemble import ForestArrays
from shmforest.tree.pruning import prune_tree


@pytest.fixture(scope="module")
def nan_data():
    X, y = make_classification(n_samples=3000, n_features=8, n_informative=5, random_state=0)
    rng = np.random.default_rng(0)
    X[rng.random(X.shape) < 0.2] = np.nan
    X[(y == 1) & (rng.random(y.size) < 0.3), 0] = np.nan  # missingness that tells the class
    return X, y.astype(np.int32)


# --------------------------------------------------------------------------- binning


def test_nan_gets_the_code_after_the_value_bins():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 3))
    X[::7, 1] = np.nan
    X[:, 2] = rng.integers(0, 5, 2000)
    X[::3, 2] = np.nan
    b = Binner()
    codes = b.fit_transform(X)
    assert b.missing_.tolist() == [False, True, True]
    # A feature with NaN keeps max_bins - 1 value bins, so its NaN code is 255 and fits uint8.
    assert b.n_bins_.tolist() == [256, 256, 6]
    assert np.all(codes[::7, 1] == 255) and np.all(codes[~np.isnan(X[:, 1]), 1] < 255)
    assert np.all(codes[::3, 2] == 5) and np.all(codes[~np.isnan(X[:, 2]), 2] < 5)
    np.testing.assert_array_equal(b.transform(X), codes)
    # The features without NaN, and the values of those with, bin as they would alone.
    alone = Binner().fit(X[:, :1])
    np.testing.assert_array_equal(b.thresholds_[0], alone.thresholds_[0])
    values = ~np.isnan(X[:, 2])
    np.testing.assert_array_equal(codes[values, 2], Binner().fit_transform(X[values][:, 2:])[:, 0])


@pytest.mark.parametrize("max_bins", [2, 4, 256])
def test_codes_agree_with_thresholds_with_nan(max_bins):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(5000, 2))
    X[rng.random(X.shape) < 0.1] = np.nan
    X[:, 1] = np.nan  # all missing: one empty value bin, then NaN
    b = Binner(max_bins)
    codes = b.fit_transform(X, rng.uniform(0.5, 2, 5000))
    assert b.n_bins_.max() <= max_bins and b.n_bins_[1] == 2 and np.all(codes[:, 1] == 1)
    values = ~np.isnan(X[:, 0])
    for c in range(b.n_bins_[0] - 2):
        np.testing.assert_array_equal(codes[values, 0] <= c, X[values, 0] <= b.thresholds_[0, c])
    assert np.all(codes[~values, 0] == b.n_bins_[0] - 1)


# --------------------------------------------------------------------------- the side NaN goes to


@pytest.mark.parametrize("n", [30, 3000])  # a small node's sorted scan, a big one's histogram
@pytest.mark.parametrize("nan_class", [0, 1])
@pytest.mark.parametrize("checked", [False, True])  # the scans that check a minimum weight too
def test_nan_goes_to_the_side_that_scores_best(n, nan_class, checked):
    x = (np.arange(n) % 20) / 19.0  # few distinct values: exact bins
    y = (x > 0.5).astype(np.int32)
    x[::5] = np.nan
    y[::5] = nan_class
    tree = grow(x[:, None], y, params(max_depth=1, min_weight_fraction_leaf=0.01 if checked else 0.0))
    assert tree.feature[0] == 0 and 0.4 < tree.threshold[0] < 0.6
    # Class 1 lies right of the cut, class 0 left: NaN joins the side of its class.
    assert tree.missing_go_to_left[0] == (nan_class == 0)
    assert tree.impurity[1] == tree.impurity[2] == 0.0
    assert np.all(tree.predict(np.array([[np.nan]]))[:, nan_class] == 1.0)


@pytest.mark.parametrize("n", [30, 3000])
def test_a_split_on_missingness_alone(n):
    X = np.ones((n, 2))
    X[:, 1] = np.arange(n) % 3  # a feature that tells nothing
    X[: n // 3, 0] = np.nan
    y = np.isnan(X[:, 0]).astype(np.int32)
    tree = grow(X, y, params(max_features=2, max_depth=1))
    assert tree.feature[0] == 0 and tree.threshold[0] == np.inf and not tree.missing_go_to_left[0]
    np.testing.assert_array_equal(tree.predict(X)[:, 1], y)


@pytest.mark.parametrize("regression", [False, True])
def test_a_node_without_nan_sends_nan_to_its_larger_child(regression):
    X, y = make_classification(n_samples=3000, n_features=5, weights=[0.8], random_state=2)
    p = params(max_features=5, max_depth=8)
    if regression:
        p, y = params(criterion="squared_error", n_classes=0, max_features=5, max_depth=8), X[:, 0] + y
    tree = grow(X, y.astype(np.int32) if not regression else y, p)
    internal = np.flatnonzero(tree.children_left != -1)
    n_left = tree.n_node_samples[tree.children_left[internal]]
    n_right = tree.n_node_samples[tree.children_right[internal]]
    np.testing.assert_array_equal(tree.missing_go_to_left[internal], n_left > n_right)
    assert 0 < tree.missing_go_to_left.sum() < internal.size
    # A row of NaN follows the larger child at every node.
    node = 0
    while tree.children_left[node] != -1:
        a, b = tree.children_left[node], tree.children_right[node]
        node = a if tree.n_node_samples[a] > tree.n_node_samples[b] else b
    assert tree.apply(np.full((1, 5), np.nan))[0] == node


def test_every_walk_honours_the_learned_side(nan_data):
    X, y = nan_data
    trees = [grow(X, y, params(max_features=3), seed=s, counts=bootstrap(y.size, s)) for s in range(4)]
    assert all(t.missing_go_to_left.any() and not t.missing_go_to_left.all() for t in trees)
    expected = np.array([[one_row_walk(t, x) for t in trees] for x in X[::3]])
    np.testing.assert_array_equal(ForestArrays(trees).apply(X[::3]), expected)
    for j, t in enumerate(trees):
        np.testing.assert_array_equal(t.apply(X[::3]), expected[:, j])
    # Flags only matter for NaN rows: the same trees without them differ on those rows alone.
    plain = Tree(
        *(getattr(trees[0], a) for a in ("children_left", "children_right", "feature", "threshold")),
        trees[0].value,
        trees[0].n_node_samples,
        trees[0].weighted_n_node_samples,
        trees[0].impurity,
        8,
    )
    differ = plain.apply(X) != trees[0].apply(X)
    assert differ.any() and np.isnan(X[differ]).any(axis=1).all()


def test_nan_rows_fit_their_leaves(nan_data):
    # Full trees on distinct rows: each training row, NaN and all, reaches a pure leaf of its class.
    X, y = nan_data
    tree = grow(X, y, params(max_features=8))
    np.testing.assert_array_equal(np.argmax(tree.predict(X), axis=1), y)


# --------------------------------------------------------------------------- same bits everywhere


@pytest.mark.parametrize("kind", ["gini", "float_weights", "regression", "subtracted"])
def test_branch_parallel_build_with_nan_is_bit_identical(nan_data, monkeypatch, kind):
    X, y = nan_data
    counts = bootstrap(y.size, 11)
    w = np.random.default_rng(3).uniform(0.2, 2.0, y.size) if kind == "float_weights" else None
    p, target = params(max_features=3), y
    if kind == "regression":
        p, target = params(criterion="squared_error", n_classes=0, max_features=3), np.nan_to_num(X[:, 1]) * 3 + y
    elif kind == "subtracted":
        p = params(max_features=X.shape[1])  # histograms by subtraction, the NaN bin too
    with dataset(X, target, w) as ds:
        serial = assert_branch_parallel_is_serial(ds, p, counts, monkeypatch)
    assert serial.missing_go_to_left.any()


@pytest.mark.parametrize("max_features", [3, 8])
def test_random_cuts_send_nan_to_a_drawn_side(nan_data, monkeypatch, max_features):
    # Extra trees: one random cut per feature, NaN to a side drawn with it; read from
    # the node's histogram or from its samples, the same tree.
    X, y = nan_data
    p = params(max_features=max_features, splitter="random")
    tree = grow(X, y, p, seed=3)
    internal = tree.children_left != -1
    assert 0.2 < tree.missing_go_to_left[internal].mean() < 0.8
    np.testing.assert_array_equal(tree.apply(X[::5]), [one_row_walk(tree, x) for x in X[::5]])
    monkeypatch.setattr(growth_module, "SMALL_NODE", 10**9)  # every node read from its samples
    assert grow(X, y, p, seed=3) == tree


@pytest.mark.parametrize("small", [2, 200])
def test_sorted_and_histogram_paths_agree_with_nan(nan_data, monkeypatch, small):
    X, y = nan_data
    counts = bootstrap(y.size, 7)
    p = params(max_features=3)
    reference = grow(X, y, p, counts=counts)
    monkeypatch.setattr(growth_module, "SMALL_NODE", small)
    assert grow(X, y, p, counts=counts) == reference


def test_best_first_keeps_the_learned_side(nan_data):
    X, y = nan_data
    tree = grow(X, y, params(max_features=8, max_leaf_nodes=40))
    full = grow(X, y, params(max_features=8))
    assert tree.n_leaves == 40
    # The root's split is the same either way, NaN's side with it.
    assert (tree.feature[0], tree.threshold[0], tree.missing_go_to_left[0]) == (
        full.feature[0],
        full.threshold[0],
        full.missing_go_to_left[0],
    )
    expected = [one_row_walk(tree, x) for x in X[::5]]
    np.testing.assert_array_equal(tree.apply(X[::5]), expected)


# --------------------------------------------------------------------------- keeping the flags


def test_pickling_and_pruning_keep_the_flags(nan_data):
    X, y = nan_data
    tree = grow(X, y, params(max_features=3))
    back = pickle.loads(pickle.dumps(tree))
    assert back == tree
    np.testing.assert_array_equal(back.missing_go_to_left, tree.missing_go_to_left)
    np.testing.assert_array_equal(back.apply(X), tree.apply(X))
    pruned = prune_tree(tree, 0.002)
    assert 1 < pruned.node_count < tree.node_count
    kept = pruned.children_left != -1
    assert pruned.missing_go_to_left[kept].any() and not pruned.missing_go_to_left[~kept].any()
    expected = [one_row_walk(pruned, x) for x in X[::5]]
    np.testing.assert_array_equal(pruned.apply(X[::5]), expected)
    # An old pickle, without the flags: NaN goes right everywhere.
    state = tree.__getstate__()
    del state["missing_go_to_left"]
    old = Tree.__new__(Tree)
    old.__setstate__(state)
    assert not old.missing_go_to_left.any() and old != tree
