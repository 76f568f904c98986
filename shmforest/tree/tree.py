"""A fitted decision tree as flat node arrays, and prediction over many trees at once.

Node ``i`` is internal when ``children_left[i] != -1``; a row goes left when
``X[row, feature[i]] <= threshold[i]``. Leaves hold ``feature == -2`` and
``threshold == -2.0`` (scikit-learn's ``TREE_UNDEFINED``). Nodes are numbered
breadth first, left before right, which the builder guarantees however the tree
was grown.

Traversal is vectorized over rows, one depth per step: every row still inside the
tree takes one step down at once, and rows that reached a leaf drop out.
:func:`predict_forest` walks the trees of a forest this way and averages their
leaf values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "NODE_ARRAYS",
    "TREES_PER_GROUP",
    "TREE_LEAF",
    "TREE_UNDEFINED",
    "Tree",
    "apply_forest",
    "predict_forest",
    "sum_tree_values",
    "tree_groups",
]

TREE_LEAF = -1
TREE_UNDEFINED = -2

#: The flat per-node arrays a Tree is made of (what it pickles as, what tests compare).
NODE_ARRAYS = (
    "children_left",
    "children_right",
    "feature",
    "threshold",
    "value",
    "n_node_samples",
    "weighted_n_node_samples",
    "impurity",
)


class Tree:
    """A binary decision tree stored as flat arrays (scikit-learn's ``tree_`` layout).

    Parameters
    ----------
    children_left, children_right : ndarray of int64, shape (node_count,)
        Child node ids, ``-1`` at leaves.
    feature : ndarray of int64
        Feature tested at each node, ``-2`` at leaves.
    threshold : ndarray of float64
        Rows with ``x[feature] <= threshold`` go left; ``-2.0`` at leaves.
    value : ndarray of float64, shape (node_count, n_outputs)
        Class weight fractions (classification) or the weighted mean (regression).
    n_node_samples : ndarray of int64
        Distinct training samples reaching each node.
    weighted_n_node_samples : ndarray of float64
        Their total weight (bootstrap counts times sample weights).
    impurity : ndarray of float64
    n_features : int
        Features of the data the tree was grown on.

    Notes
    -----
    A tree pickles as its arrays only, so trees grown in workers travel back cheaply.
    """

    children_left: np.ndarray
    children_right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    value: np.ndarray
    n_node_samples: np.ndarray
    weighted_n_node_samples: np.ndarray
    impurity: np.ndarray

    def __init__(
        self,
        children_left: np.ndarray,
        children_right: np.ndarray,
        feature: np.ndarray,
        threshold: np.ndarray,
        value: np.ndarray,
        n_node_samples: np.ndarray,
        weighted_n_node_samples: np.ndarray,
        impurity: np.ndarray,
        n_features: int,
    ) -> None:
        self.children_left = np.asarray(children_left, dtype=np.int64)
        self.children_right = np.asarray(children_right, dtype=np.int64)
        self.feature = np.asarray(feature, dtype=np.int64)
        self.threshold = np.asarray(threshold, dtype=np.float64)
        self.value = np.asarray(value, dtype=np.float64).reshape(self.children_left.shape[0], -1)
        self.n_node_samples = np.asarray(n_node_samples, dtype=np.int64)
        self.weighted_n_node_samples = np.asarray(weighted_n_node_samples, dtype=np.float64)
        self.impurity = np.asarray(impurity, dtype=np.float64)
        self.n_features = int(n_features)
        n = self.children_left.shape[0]
        for name in NODE_ARRAYS:
            if getattr(self, name).shape[0] != n:
                raise ValueError(f"{name} has {getattr(self, name).shape[0]} nodes; children_left has {n}")
        if n == 0:
            raise ValueError("a tree needs at least one node")
        _check_structure(self.children_left, self.children_right, self.feature)
        self.max_depth = _max_depth(self.children_left, self.children_right)

    # -- shape ---------------------------------------------------------
    @property
    def node_count(self) -> int:
        """Number of nodes."""
        return int(self.children_left.shape[0])

    @property
    def n_leaves(self) -> int:
        """Number of leaves."""
        return int(np.count_nonzero(self.children_left == TREE_LEAF))

    @property
    def n_outputs(self) -> int:
        """Width of a value row (classes, or 1 for regression)."""
        return int(self.value.shape[1])

    # -- prediction ----------------------------------------------------
    def apply(self, X: np.ndarray) -> np.ndarray:
        """Leaf reached by each row of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Real (unbinned) feature values.

        Returns
        -------
        ndarray of int64, shape (n_samples,)
        """
        return apply_forest([self], X)[0]

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Value row of the leaf each row of ``X`` reaches: shape (n_samples, n_outputs)."""
        return self.value[self.apply(X)]

    def decision_path(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Nodes each row of ``X`` passes through, root to leaf, in CSR form.

        Returns
        -------
        indptr : ndarray of int64, shape (n_samples + 1,)
        indices : ndarray of int64
            Row ``i`` visits ``indices[indptr[i]:indptr[i + 1]]``, in increasing
            node id (which, ids being breadth first, is root to leaf). With scipy,
            ``scipy.sparse.csr_matrix((np.ones(len(indices)), indices, indptr),
            shape=(n_samples, node_count))`` is scikit-learn's indicator matrix.
        """
        leaves = self.apply(X)
        parent = np.full(self.node_count, -1, dtype=np.int64)
        internal = np.flatnonzero(self.children_left != TREE_LEAF)
        parent[self.children_left[internal]] = internal
        parent[self.children_right[internal]] = internal
        depth = _depths(self.children_left, self.children_right)
        lengths = depth[leaves] + 1
        indptr = np.zeros(leaves.shape[0] + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        indices = np.empty(int(indptr[-1]), dtype=np.int64)
        # Fill from the leaf upwards: the node at depth d of row i sits at indptr[i] + d.
        node = leaves.copy()
        rows = np.arange(leaves.shape[0])
        d = lengths - 1
        while rows.size:
            indices[indptr[rows] + d] = node
            node = parent[node]
            d = d - 1
            keep = node >= 0
            rows, node, d = rows[keep], node[keep], d[keep]
        return indptr, indices

    def compute_feature_importances(self, normalize: bool = True) -> np.ndarray:
        """Total weighted impurity decrease brought by each feature.

        Each split adds ``w_node * impurity_node - w_left * impurity_left -
        w_right * impurity_right`` to its feature, divided by the root's weight, as
        scikit-learn does.

        Parameters
        ----------
        normalize : bool, default True
            Scale the result to sum to 1 (left at zeros for a single-leaf tree).
        """
        internal = np.flatnonzero(self.children_left != TREE_LEAF)
        wi = self.weighted_n_node_samples * self.impurity
        left, right = self.children_left[internal], self.children_right[internal]
        decrease = wi[internal] - wi[left] - wi[right]
        out = np.bincount(self.feature[internal], weights=decrease, minlength=self.n_features).astype(np.float64)
        out /= self.weighted_n_node_samples[0]
        if normalize:
            total = out.sum()
            if total > 0:
                out /= total
        return out

    # -- pickling ------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = {name: getattr(self, name) for name in NODE_ARRAYS}
        state["n_features"] = self.n_features
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)  # type: ignore[misc]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Tree):
            return NotImplemented
        return self.n_features == other.n_features and all(
            np.array_equal(getattr(self, n), getattr(other, n), equal_nan=True) for n in NODE_ARRAYS
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Tree(node_count={self.node_count}, max_depth={self.max_depth}, n_outputs={self.n_outputs})"


def _check_structure(left: np.ndarray, right: np.ndarray, feature: np.ndarray) -> None:
    n = left.shape[0]
    internal = left != TREE_LEAF
    if np.any(internal != (right != TREE_LEAF)):
        raise ValueError("children_left and children_right disagree on which nodes are leaves")
    kids = np.concatenate([left[internal], right[internal]])
    if kids.size and (kids.min() < 1 or kids.max() >= n or np.unique(kids).size != kids.size):
        raise ValueError("children must be distinct node ids in [1, node_count), each with one parent")
    if np.any(feature[internal] < 0):
        raise ValueError("internal nodes need a feature >= 0")


def _depths(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Depth of every node (ids breadth first: a parent's id precedes its children's)."""
    depth = np.zeros(left.shape[0], dtype=np.int64)
    frontier = np.array([0], dtype=np.int64)
    d = 0
    while frontier.size:
        depth[frontier] = d
        internal = frontier[left[frontier] != TREE_LEAF]
        frontier = np.concatenate([left[internal], right[internal]])
        d += 1
    return depth


def _max_depth(left: np.ndarray, right: np.ndarray) -> int:
    return int(_depths(left, right).max())


def _as_features(X: np.ndarray, n_features: int) -> np.ndarray:
    X = np.ascontiguousarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != n_features:
        raise ValueError(f"X must have shape (n_samples, {n_features}), got {X.shape}")
    return X


def _walk_arrays(tree: Tree) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, bool]:
    """Arrays that let a row step down without testing for leaves (cached per tree).

    A leaf's test always goes left (threshold +inf) and its children are itself, so
    rows that reached a leaf can stay in the arrays between compactions. When every
    right child is its left sibling + 1 (breadth-first ids, as the builder makes
    them) the next node is ``left[node] + went_right``: one gather fewer.
    """
    cached = tree.__dict__.get("_walk")
    if cached is not None:
        return cached
    leaf = tree.children_left == TREE_LEAF
    ids = np.arange(tree.node_count, dtype=np.intp)
    left = np.where(leaf, ids, tree.children_left).astype(np.intp)
    right = np.where(leaf, ids, tree.children_right).astype(np.intp)
    feature = np.where(leaf, 0, tree.feature).astype(np.intp)
    threshold = np.where(leaf, np.inf, tree.threshold)
    siblings = bool(np.all(right[~leaf] == left[~leaf] + 1))
    if siblings:
        children = left
    else:
        children = np.empty(2 * tree.node_count, dtype=np.intp)
        children[0::2], children[1::2] = left, right
    tree.__dict__["_walk"] = out = (feature, threshold, children, leaf, siblings)
    return out


def _apply_one(tree: Tree, flat: np.ndarray, row_offset: np.ndarray) -> np.ndarray:
    """Leaf of each row for one tree; ``flat`` is C-order X raveled, ``row_offset = row * n_features``."""
    feature, threshold, children, leaf, siblings = _walk_arrays(tree)
    n = row_offset.shape[0]
    out = np.empty(n, dtype=np.intp)
    node = np.zeros(n, dtype=np.intp)
    offset = row_offset
    pos = np.arange(n)
    step = 0
    # mode="clip" skips the bounds checks: every index here is valid by construction.
    while node.size:
        f = feature.take(node, mode="clip")
        f += offset
        right = flat.take(f, mode="clip") > threshold.take(node, mode="clip")
        if siblings:
            node = children.take(node, mode="clip")
            node += right
        else:
            node *= 2
            node += right
            node = children.take(node, mode="clip")
        step += 1
        if step % _COMPACT_EVERY == 0:
            done = leaf.take(node, mode="clip")
            if done.any():
                out[pos[done]] = node[done]
                keep = np.flatnonzero(~done)
                node, offset, pos = node[keep], offset[keep], pos[keep]
    return out


# Steps between dropping rows that reached a leaf: compaction costs about as much
# as a step, and rows reach their leaves at widely different depths.
_COMPACT_EVERY = 8


def _check_forest(trees: Sequence[Tree], X: np.ndarray) -> np.ndarray:
    if not trees:
        raise ValueError("trees is empty")
    n_features = trees[0].n_features
    if any(t.n_features != n_features for t in trees):
        raise ValueError("the trees were grown on different numbers of features")
    return _as_features(X, n_features)


def apply_forest(trees: Sequence[Tree], X: np.ndarray) -> np.ndarray:
    """Leaf reached by each row in each tree: shape (n_trees, n_samples), node ids per tree."""
    X = _check_forest(trees, X)
    flat = X.reshape(-1)
    row_offset = np.arange(X.shape[0], dtype=np.intp) * X.shape[1]
    out = np.empty((len(trees), X.shape[0]), dtype=np.int64)
    for i, tree in enumerate(trees):
        out[i] = _apply_one(tree, flat, row_offset)
    return out


#: Trees are summed in groups of this many, in order, and the group sums added in
#: order: one fixed rounding whether one thread walks every group or several share them.
TREES_PER_GROUP = 10


def tree_groups(trees: Sequence[Tree]) -> list[Sequence[Tree]]:
    """``trees`` cut into the fixed groups :func:`predict_forest` sums separately."""
    return [trees[i : i + TREES_PER_GROUP] for i in range(0, len(trees), TREES_PER_GROUP)]


def sum_tree_values(trees: Sequence[Tree], X: np.ndarray) -> np.ndarray:
    """Sum over ``trees``, in order, of the value rows reached by ``X``: (n_samples, n_outputs)."""
    X = _check_forest(trees, X)
    n_outputs = trees[0].n_outputs
    if any(t.n_outputs != n_outputs for t in trees):
        raise ValueError("the trees have different value widths")
    flat = X.reshape(-1)
    row_offset = np.arange(X.shape[0], dtype=np.intp) * X.shape[1]
    out = np.zeros((X.shape[0], n_outputs))
    for tree in trees:
        out += tree.value.take(_apply_one(tree, flat, row_offset), axis=0)
    return out


def predict_forest(trees: Sequence[Tree], X: np.ndarray) -> np.ndarray:
    """Mean over ``trees`` of the value rows reached by ``X``: shape (n_samples, n_outputs).

    For a classifier this is the forest's ``predict_proba`` (scikit-learn averages
    class fractions the same way). Rows walk each tree together, a depth per
    step; a tree at a time, because one tree's arrays stay in cache while all
    trees' would not (measured faster than walking all trees at once). Trees are
    summed in fixed groups (:data:`TREES_PER_GROUP`) so that threads sharing the
    groups out give the same bits.
    """
    X = _check_forest(trees, X)
    out: np.ndarray | None = None
    for group in tree_groups(trees):
        part = sum_tree_values(group, X)
        out = part if out is None else out + part
    assert out is not None
    out /= len(trees)
    return out
