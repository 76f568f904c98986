"""Tree: flat arrays, traversal, decision paths, importances and forest prediction.

Most checks load a scikit-learn tree into a :class:`Tree` and compare the two:
scikit-learn numbers its nodes depth first, so the general (non-sibling) walk
is exercised here, and the builder's trees exercise the breadth-first one.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import RandomForestClassifier
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from shmforest.tree import Tree, apply_forest, predict_forest


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=600, n_features=6, n_informative=4, random_state=0)
    # float32-exact values: scikit-learn compares in float32, we in float64.
    return X.astype(np.float32).astype(np.float64), y


@pytest.fixture(scope="module")
def sk_tree(data):
    X, y = data
    return DecisionTreeClassifier(max_depth=8, random_state=0).fit(X, y)


def test_apply_and_predict_match_sklearn(data, sk_tree, from_sklearn):
    X, _ = data
    tree = from_sklearn(sk_tree)
    assert np.array_equal(tree.apply(X), sk_tree.apply(X))
    assert np.allclose(tree.predict(X), sk_tree.predict_proba(X))
    assert tree.node_count == sk_tree.tree_.node_count
    assert tree.max_depth == sk_tree.tree_.max_depth
    assert tree.n_leaves == sk_tree.tree_.n_leaves


def test_regression_predict_matches_sklearn(from_sklearn):
    X, y = make_regression(n_samples=300, n_features=4, random_state=0)
    X = X.astype(np.float32).astype(np.float64)
    est = DecisionTreeRegressor(max_depth=6, random_state=0).fit(X, y)
    tree = from_sklearn(est)
    assert tree.n_outputs == 1
    assert np.allclose(tree.predict(X)[:, 0], est.predict(X))


def test_decision_path_matches_sklearn(data, sk_tree, from_sklearn):
    X, _ = data
    indptr, indices = from_sklearn(sk_tree).decision_path(X[:50])
    expected = sk_tree.decision_path(X[:50])
    assert np.array_equal(indptr, expected.indptr)
    for i in range(50):
        row = indices[indptr[i] : indptr[i + 1]]
        assert np.array_equal(np.sort(row), np.sort(expected.indices[expected.indptr[i] : expected.indptr[i + 1]]))
        assert row[0] == 0  # root first, leaf last
        assert row[-1] == sk_tree.apply(X[i : i + 1])[0]


def test_feature_importances_match_sklearn(data, sk_tree, from_sklearn):
    tree = from_sklearn(sk_tree)
    assert np.allclose(tree.compute_feature_importances(), sk_tree.feature_importances_)
    raw = tree.compute_feature_importances(normalize=False)
    assert np.allclose(raw / raw.sum(), sk_tree.feature_importances_)


def test_single_leaf_tree():
    tree = Tree([-1], [-1], [-2], [-2.0], [[0.25, 0.75]], [4], [4.0], [0.375], n_features=3)
    X = np.zeros((5, 3))
    assert tree.apply(X).tolist() == [0] * 5
    assert tree.predict(X).tolist() == [[0.25, 0.75]] * 5
    assert tree.compute_feature_importances().tolist() == [0.0, 0.0, 0.0]
    indptr, indices = tree.decision_path(X)
    assert indptr.tolist() == [0, 1, 2, 3, 4, 5] and indices.tolist() == [0] * 5
    assert tree.max_depth == 0


def test_threshold_ties_go_left():
    # x <= threshold goes left, exactly at the threshold too.
    tree = Tree(
        [1, -1, -1],
        [2, -1, -1],
        [0, -2, -2],
        [0.5, -2, -2],
        [[0.0], [1.0], [2.0]],
        [2, 1, 1],
        [2.0, 1.0, 1.0],
        [0.25, 0, 0],
        1,
    )
    assert tree.apply(np.array([[0.5], [np.nextafter(0.5, 1)], [-7.0]])).tolist() == [1, 2, 1]


def test_predict_forest_is_the_mean_of_tree_predictions(data, from_sklearn):
    X, y = data
    rf = RandomForestClassifier(n_estimators=7, max_depth=10, random_state=0).fit(X, y)
    trees = [from_sklearn(e) for e in rf.estimators_]
    expected = np.mean([t.predict(X) for t in trees], axis=0)
    assert np.allclose(predict_forest(trees, X), expected)
    assert np.allclose(predict_forest(trees, X), rf.predict_proba(X))
    leaves = apply_forest(trees, X)
    assert leaves.shape == (7, X.shape[0])
    assert np.array_equal(leaves, rf.apply(X).T)


def test_tree_pickles_as_its_arrays(sk_tree, data, from_sklearn):
    X, _ = data
    tree = from_sklearn(sk_tree)
    tree.apply(X)  # fills the traversal cache, which must not travel
    blob = pickle.dumps(tree)
    arrays = sum(
        getattr(tree, n).nbytes
        for n in (
            "children_left",
            "children_right",
            "feature",
            "threshold",
            "value",
            "n_node_samples",
            "weighted_n_node_samples",
            "impurity",
        )
    )
    assert len(blob) < arrays + 2048
    back = pickle.loads(blob)
    assert back == tree
    assert np.array_equal(back.apply(X), tree.apply(X))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"children_right": [2, -1, 1]}, "disagree"),
        ({"children_left": [5, -1, -1]}, "distinct node ids"),
        ({"children_left": [1, -1, -1], "children_right": [1, -1, -1]}, "distinct node ids"),
        ({"feature": [-2, -2, -2]}, "feature >= 0"),
        ({"impurity": [0.0]}, "impurity has 1 nodes"),
    ],
)
def test_malformed_trees_are_rejected(kwargs, match):
    base = dict(
        children_left=[1, -1, -1],
        children_right=[2, -1, -1],
        feature=[0, -2, -2],
        threshold=[0.0, -2, -2],
        value=[[1.0], [1.0], [1.0]],
        n_node_samples=[2, 1, 1],
        weighted_n_node_samples=[2.0, 1.0, 1.0],
        impurity=[0.0, 0.0, 0.0],
        n_features=1,
    )
    base.update(kwargs)
    with pytest.raises(ValueError, match=match):
        Tree(**base)


def test_prediction_input_checks(sk_tree, from_sklearn):
    tree = from_sklearn(sk_tree)
    with pytest.raises(ValueError, match="shape"):
        tree.predict(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="empty"):
        predict_forest([], np.zeros((3, 6)))
    other = Tree([-1], [-1], [-2], [-2.0], [[1.0, 0.0]], [1], [1.0], [0.0], n_features=2)
    with pytest.raises(ValueError, match="different numbers of features"):
        predict_forest([tree, other], np.zeros((3, 6)))
