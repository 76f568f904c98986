"""Minimal cost-complexity pruning against scikit-learn: the same tree gives the same
path and the same pruned tree, and against a plain reading of the formula."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.tree import DecisionTreeClassifier as SkDecisionTreeClassifier
from sklearn.tree import DecisionTreeRegressor as SkDecisionTreeRegressor
from sklearn.tree._tree import ccp_pruning_path

from shmforest.tree.pruning import prune_tree, pruning_path
from shmforest.tree.tree import NODE_ARRAYS, Tree


@pytest.fixture(scope="module", params=["classification", "regression"])
def grown(request):
    X, y = make_classification(400, n_features=8, flip_y=0.1, random_state=0)
    if request.param == "regression":
        y = X[:, 0] + np.random.default_rng(0).normal(size=len(y))
        return SkDecisionTreeRegressor, X, y
    return SkDecisionTreeClassifier, X, y


def test_path_is_scikit_learns_to_the_bit(grown, from_sklearn):
    cls, X, y = grown
    sk = cls(random_state=0).fit(X, y)
    ours, theirs = pruning_path(from_sklearn(sk)), ccp_pruning_path(sk.tree_)
    np.testing.assert_array_equal(ours["ccp_alphas"], theirs["ccp_alphas"])
    np.testing.assert_array_equal(ours["impurities"], theirs["impurities"])


def test_pruned_tree_is_scikit_learns(grown, from_sklearn):
    cls, X, y = grown
    whole = cls(random_state=0).fit(X, y)
    alphas = ccp_pruning_path(whole.tree_)["ccp_alphas"]
    for alpha in list(alphas[1 :: max(1, len(alphas) // 6)]) + [alphas[-1] * 2]:
        pruned = prune_tree(from_sklearn(whole), alpha)
        expected = from_sklearn(cls(random_state=0, ccp_alpha=alpha).fit(X, y))
        for name in NODE_ARRAYS:
            np.testing.assert_array_equal(getattr(pruned, name), getattr(expected, name), err_msg=f"{alpha}: {name}")


def reference_prune(tree, alpha):
    """Weakest-link pruning read off the formula, in plain Python: the kept node ids."""
    left, right = list(tree.children_left), list(tree.children_right)
    r = tree.weighted_n_node_samples * tree.impurity / tree.weighted_n_node_samples[0]
    kept_leaves = {i for i in range(tree.node_count) if left[i] == -1}

    def leaves_under(i):
        return [i] if i in kept_leaves or left[i] == -1 else leaves_under(left[i]) + leaves_under(right[i])

    def nodes_under(i):
        return [i] if i in kept_leaves else [i] + nodes_under(left[i]) + nodes_under(right[i])

    while 0 not in kept_leaves:
        internal = [i for i in nodes_under(0) if i not in kept_leaves]
        cost = {i: (r[i] - sum(r[j] for j in leaves_under(i))) / (len(leaves_under(i)) - 1) for i in internal}
        weakest = min(internal, key=lambda i: (cost[i], i))
        if cost[weakest] > alpha:
            break
        kept_leaves -= set(nodes_under(weakest))
        kept_leaves.add(weakest)
    return sorted(nodes_under(0))


def test_pruning_follows_the_formula(grown, from_sklearn):
    cls, X, y = grown
    tree = from_sklearn(cls(random_state=0, max_depth=5).fit(X, y))
    for alpha in pruning_path(tree)["ccp_alphas"][1:]:
        nudged = alpha * (1 + 1e-9)  # past rounding: the reference sums in another order
        assert prune_tree(tree, nudged).node_count == len(reference_prune(tree, nudged))


def test_alpha_zero_and_a_lone_root_change_nothing(grown, from_sklearn):
    cls, X, y = grown
    tree = from_sklearn(cls(random_state=0).fit(X, y))
    assert prune_tree(tree, 0.0) is tree
    root = prune_tree(tree, 1e9)
    assert root.node_count == 1 and root.children_left[0] == -1 and root.feature[0] == -2
    np.testing.assert_array_equal(root.value[0], tree.value[0])
    assert prune_tree(root, 1.0) is root


def test_bigger_alpha_prunes_more(grown, from_sklearn):
    cls, X, y = grown
    tree = from_sklearn(cls(random_state=0).fit(X, y))
    counts = [prune_tree(tree, a).node_count for a in np.linspace(0, 0.05, 11)]
    assert counts == sorted(counts, reverse=True) and counts[0] > counts[-1]


def test_negative_alpha_raises():
    tree = Tree([-1], [-1], [-2], [-2.0], [[1.0]], [1], [1.0], [0.0], 1)
    with pytest.raises(ValueError, match="ccp_alpha"):
        prune_tree(tree, -0.1)
