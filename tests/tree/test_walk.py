"""walk: rows stepping down flat node arrays together, stacked trees, compaction schedules."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.tree import DecisionTreeClassifier

from shmforest.tree import Tree
from shmforest.tree.walk import compaction_steps, stack_walks, walk




def reference_leaves(tree: Tree, X: np.ndarray) -> np.ndarray:
    """One row at a time, the obvious way: the walk must agree with it everywhere."""
    out = np.empty(X.shape[0], dtype=np.int64)
    for i, row in enumerate(X):
        node = 0
        while tree.children_left[node] != -1:
            go_left = row[tree.feature[node]] <= tree.threshold[node]
            node = tree.children_left[node] if go_left else tree.children_right[node]
        out[i] = node
    return out


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=800, n_features=5, n_informative=3, random_state=1)
    return X.astype(np.float32).astype(np.float64), y


@pytest.fixture(scope="module")
def depth_first_trees(data, from_sklearn):
    """scikit-learn numbers nodes depth first, so these walk renumbered."""
    X, y = data
    return [from_sklearn(DecisionTreeClassifier(max_depth=d, random_state=d).fit(X, y)) for d in (1, 4, None)]


@pytest.fixture(scope="module")
def breadth_first_trees(data):
    from shmforest import DecisionTreeClassifier as Ours

    X, y = data
    return [Ours(max_depth=d, random_state=d, executor="serial").fit(X, y).tree_ for d in (2, 7, None)]


def lone_root(n_features: int = 5) -> Tree:
    return Tree([-1], [-1], [-2], [-2.0], [[1.0, 0.0]], [3], [3.0], [0.0], n_features=n_features)


@pytest.mark.parametrize("kind", ["depth_first_trees", "breadth_first_trees"])
def test_walk_agrees_with_one_row_at_a_time(request, kind, data):
    X, _ = data
    X = np.vstack([X, [[np.nan, 0, np.inf, -np.inf, 1e300]]])  # NaN is never <= a threshold: right
    for tree in request.getfixturevalue(kind):
        np.testing.assert_array_equal(tree.apply(X), reference_leaves(tree, X))


def test_depth_first_trees_are_renumbered_and_mapped_back(depth_first_trees, breadth_first_trees):
    assert all(t.walk_arrays.old_id is not None for t in depth_first_trees if t.max_depth > 1)  # depth 1: same ids
    assert all(t.walk_arrays.old_id is None for t in breadth_first_trees)


def test_stacked_trees_walk_as_each_alone(data, depth_first_trees, breadth_first_trees):
    X, _ = data
    trees = [breadth_first_trees[1], lone_root(), depth_first_trees[2], breadth_first_trees[2], depth_first_trees[0]]
    leaves = walk(stack_walks([t.walk_arrays for t in trees]), X)
    assert leaves.shape == (len(trees), X.shape[0])
    for tree, got in zip(trees, leaves):
        np.testing.assert_array_equal(got, reference_leaves(tree, X))


def test_a_lone_root_takes_every_row_even_on_no_features():
    tree = lone_root(n_features=0)
    assert walk(tree.walk_arrays, np.zeros((4, 0))).tolist() == [[0, 0, 0, 0]]


@pytest.mark.parametrize("schedule", [{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, {3, 9}, set()])
def test_the_compaction_schedule_never_changes_a_leaf(data, breadth_first_trees, schedule):
    X, _ = data
    tree = breadth_first_trees[2]
    arrays = stack_walks([tree.walk_arrays, breadth_first_trees[1].walk_arrays])
    expected = walk(arrays, X)
    top = arrays.depth_share.shape[0] - 1
    arrays.schedules[(2 * X.shape[0]).bit_length()] = frozenset(schedule | {top})
    np.testing.assert_array_equal(walk(arrays, X), expected)


def test_compaction_schedules_end_at_the_deepest_leaf_and_follow_the_cost():
    share = np.zeros(31)
    share[10:31] = 1.0
    few, many = compaction_steps(share, 50), compaction_steps(share, 10_000_000)
    assert max(few) == max(many) == 30
    # With few pairs a compaction's fixed cost outweighs what it saves; with many it pays.
    assert len(few) < len(many)
    assert compaction_steps(np.array([1.0]), 100) == frozenset({1})


def test_walk_arrays_are_cached_and_schedules_filled_as_walked(data, breadth_first_trees):
    X, _ = data
    tree = breadth_first_trees[1]
    assert tree.walk_arrays is tree.walk_arrays
    walk(tree.walk_arrays, X[:100])
    assert (100).bit_length() in tree.walk_arrays.schedules
