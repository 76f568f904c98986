"""Trees of several outputs (multi-output y): the same splits, impurities and values as scikit-learn's."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from test_builder import grow

import shmforest.tree.growth as growth_module
from shmforest.tree import Tree, TreeParams

N = 3000
CLASSES = (3, 2, 4)


def params(**kw) -> TreeParams:
    """Three outputs, every feature a candidate (the scikit-learn trees compared with draw them all)."""
    return replace(TreeParams("gini", None, 2, 1, 6, 0.0, None, CLASSES, n_outputs=3), **kw)


@pytest.fixture(scope="module")
def data():
    """Integer features (so that bins are exact) and three outputs of each kind."""
    rng = np.random.default_rng(1)
    X = rng.integers(0, 40, size=(N, 6)).astype(float)
    Y = np.column_stack(
        [X[:, 0] + 2 * X[:, 1] + 3 * rng.normal(size=N), 10 * np.sin(X[:, 2]) + X[:, 3], X[:, 4] * X[:, 0] / 20]
    )
    C = np.column_stack(
        [(X[:, 0] > 20).astype(int) + (X[:, 1] > 30), (X[:, 2] + X[:, 3] > 40).astype(int), X[:, 5] // 10]
    ).astype(np.int32)
    return X, Y, C


def sklearn_values(est, classes=CLASSES) -> np.ndarray:
    """scikit-learn's (nodes, outputs, max classes) values as our rows: each output's classes side by side."""
    v = est.tree_.value
    if v.shape[2] == 1:
        return v[:, :, 0]
    return np.concatenate([v[:, k, :c] for k, c in enumerate(classes)], axis=1)


def assert_same_tree(ours: Tree, est, values: np.ndarray) -> None:
    theirs = est.tree_
    assert ours.node_count == theirs.node_count > 7
    np.testing.assert_array_equal(ours.children_left, theirs.children_left)
    np.testing.assert_array_equal(ours.feature, theirs.feature)
    np.testing.assert_allclose(ours.threshold, theirs.threshold)
    np.testing.assert_allclose(ours.impurity, theirs.impurity, atol=1e-12)
    np.testing.assert_allclose(ours.weighted_n_node_samples, theirs.weighted_n_node_samples)
    np.testing.assert_allclose(ours.value, values, atol=1e-12)


@pytest.mark.parametrize("criterion", ["squared_error", "poisson"])
def test_regression_tree_equals_scikit_learns(data, criterion):
    X, Y, _ = data
    Y = np.abs(Y) if criterion == "poisson" else Y
    ours = grow(X, Y, params(criterion=criterion, n_classes=0, max_depth=4))
    theirs = DecisionTreeRegressor(criterion=criterion, max_depth=4).fit(X, Y)
    assert ours.value.shape == (ours.node_count, 3)
    assert_same_tree(ours, theirs, sklearn_values(theirs))


@pytest.mark.parametrize("criterion", ["gini", "entropy"])
def test_classification_tree_equals_scikit_learns(data, criterion):
    X, _, C = data
    ours = grow(X, C, params(criterion=criterion, max_depth=4))
    theirs = DecisionTreeClassifier(criterion=criterion, max_depth=4).fit(X, C)
    assert ours.value.shape == (ours.node_count, sum(CLASSES))
    assert_same_tree(ours, theirs, sklearn_values(theirs))


def test_weighted_trees_equal_scikit_learns(data):
    X, Y, C = data
    w = np.random.default_rng(2).uniform(0.5, 2.0, N)
    ours = grow(X, C, params(max_depth=4), w=w)
    theirs = DecisionTreeClassifier(max_depth=4).fit(X, C, sample_weight=w)
    assert_same_tree(ours, theirs, sklearn_values(theirs))
    ours = grow(X, Y, params(criterion="squared_error", n_classes=0, max_depth=4), w=w)
    theirs = DecisionTreeRegressor(max_depth=4).fit(X, Y, sample_weight=w)
    assert_same_tree(ours, theirs, sklearn_values(theirs))


def test_best_first_tree_equals_scikit_learns(data):
    X, Y, _ = data
    ours = grow(X, Y, params(criterion="squared_error", n_classes=0, max_leaf_nodes=12))
    theirs = DecisionTreeRegressor(max_leaf_nodes=12).fit(X, Y).tree_
    # scikit-learn numbers a best-first tree's nodes as they are made: compare the splits as a set.
    assert ours.n_leaves == theirs.n_leaves == 12

    def splits(t, values):
        internal = np.flatnonzero(t.children_left != -1)
        return sorted(zip(t.feature[internal], t.threshold[internal], t.impurity[internal], values[internal, 0]))

    np.testing.assert_allclose(splits(ours, ours.value), splits(theirs, theirs.value[:, :, 0]))


def test_fully_grown_trees_fit_every_output(data):
    X, Y, C = data
    assert np.unique(X, axis=0).shape[0] == N  # distinct rows, exact bins: every row can end in a leaf of its own
    fractions = grow(X, C, params()).predict(X)
    offsets = np.cumsum((0,) + CLASSES)
    for k in range(len(CLASSES)):
        block = fractions[:, offsets[k] : offsets[k + 1]]
        np.testing.assert_allclose(block.sum(axis=1), 1.0)
        np.testing.assert_array_equal(np.argmax(block, axis=1), C[:, k])
    np.testing.assert_allclose(grow(X, Y, params(criterion="squared_error", n_classes=0)).predict(X), Y)


@pytest.mark.parametrize("kind", ["classification", "regression"])
def test_one_output_in_a_column_is_the_one_output_tree(data, kind):
    X, Y, C = data
    if kind == "classification":
        p = params(n_classes=3, n_outputs=1)
        y = C[:, 0]
    else:
        p = params(criterion="squared_error", n_classes=0, n_outputs=1)
        y = Y[:, 0]
    assert grow(X, y[:, None], p) == grow(X, y, p)


def test_sorted_and_histogram_paths_agree_on_exact_sums(data, monkeypatch):
    X, _, C = data
    counts = np.bincount(np.random.default_rng(5).integers(0, N, N), minlength=N).astype(np.int32)
    p = params(max_features=3)
    reference = grow(X, C, p, counts=counts)
    monkeypatch.setattr(growth_module, "SMALL_NODE", 2)
    assert grow(X, C, p, counts=counts) == reference


@pytest.mark.parametrize("splitter", ["best", "random"])
def test_missing_values_and_random_cuts(data, splitter):
    X, Y, C = data
    Xn = X.copy()
    Xn[np.random.default_rng(3).random(X.shape) < 0.2] = np.nan
    for p, y in (
        (params(splitter=splitter, max_depth=8), C),
        (params(criterion="squared_error", n_classes=0, splitter=splitter, max_depth=8), Y),
    ):
        tree = grow(Xn, y, p, seed=4)
        assert tree.node_count > 31 and tree.value.shape[1] == (9 if y is C else 3)
        assert np.any(tree.missing_go_to_left == 1)
        assert tree == grow(Xn, y, p, seed=4)
        assert tree != grow(Xn, y, p, seed=5)
        # The values are each output's class fractions, or means, of the node's samples.
        prediction = tree.predict(Xn)
        if y is C:
            np.testing.assert_allclose(prediction.reshape(N, -1)[:, :3].sum(axis=1), 1.0)
        else:
            leaves = tree.apply(Xn)
            for leaf in np.unique(leaves):
                np.testing.assert_allclose(tree.value[leaf], Y[leaves == leaf].mean(axis=0))


def test_bad_multi_output_parameters_and_data(data):
    X, Y, C = data
    with pytest.raises(ValueError, match="not supported with multiple outputs"):
        grow(X, Y, params(criterion="squared_error", n_classes=0, monotonic_cst=(1, 0, 0, 0, 0, 0)))
    with pytest.raises(ValueError, match="one count per output"):
        grow(X, C, params(n_classes=(3, 2)))
    with pytest.raises(ValueError, match=r"expected \(3000, 3\)"):
        grow(X, C[:, :2], params())
    bad = C.copy()
    bad[0, 1] = 2  # output 1 has 2 classes
    with pytest.raises(ValueError, match="class indices"):
        grow(X, bad, params())
