"""A fitted decision tree as flat node arrays, and prediction over many trees at once.

Node ``i`` is internal when ``children_left[i] != -1``; a row goes left when
``X[row, feature[i]] <= threshold[i]``, and a NaN goes left where
``missing_go_to_left[i]`` (as in scikit-learn's trees). Leaves hold ``feature == -2``
and ``threshold == -2.0`` (scikit-learn's ``TREE_UNDEFINED``).

Nodes are numbered in preorder (a node, its left subtree, then its right), as
scikit-learn numbers them, which the builder guarantees however the tree was
grown; any numbering where a child comes after its parent is accepted. Rows walk
down in a compiled kernel (:func:`shmforest.tree.kernels.walk_forest`) over the
node records (:func:`shmforest.tree.kernels.pack_nodes`), as a forest's are.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from shmforest.tree import kernels

__all__ = [
    "NODE_ARRAYS",
    "ROW_BATCH",
    "ROW_BLOCK",
    "TREE_LEAF",
    "TREE_UNDEFINED",
    "X_BLOCK_BYTES",
    "Tree",
    "as_features",
    "may_hold_nan",
    "row_block",
]

TREE_LEAF = -1
TREE_UNDEFINED = -2
#: Rows walk in blocks of at most this many, each block through every tree: large, so
#: each tree's upper nodes, read by every row, are loaded once per block rather than
#: once per few hundred rows.
ROW_BLOCK = 16384
#: Rows stepping down a tree together: enough independent loads in flight to hide
#: a node's latency, few enough that a batch's slowest row does not hold up the rest.
ROW_BATCH = 16
#: A row block's X stays within about this many bytes, so wide rows, read again by
#: every tree, stay in a core's cache (blocks of :data:`ROW_BLOCK` rows at most).
X_BLOCK_BYTES = 2**21


#: A lone tree's walk: one root, at record 0.
_ONE_ROOT = kernels.readonly(np.zeros(1, dtype=np.int64), np.int64)


def row_block(n_features: int) -> int:
    """Rows a block of the walk takes with ``n_features`` float64 columns."""
    return max(ROW_BATCH, min(ROW_BLOCK, X_BLOCK_BYTES // (8 * max(1, n_features))))


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
    check : bool, default True
        Check that the children arrays form a tree (ids in range, one parent each,
        children after parents). Only the builder, whose kernels write a valid
        table, turns it off.
    missing_go_to_left : ndarray of uint8, optional
        1 where a NaN goes to the left child (scikit-learn's field of that name);
        ``None``: NaN goes right everywhere.

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
    missing_go_to_left: np.ndarray

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
        *,
        check: bool = True,
        missing_go_to_left: np.ndarray | None = None,
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
        if missing_go_to_left is None:
            self.missing_go_to_left = np.zeros(n, dtype=np.uint8)
        else:
            self.missing_go_to_left = (np.asarray(missing_go_to_left) != 0).astype(np.uint8)
        for name in (*NODE_ARRAYS, "missing_go_to_left"):
            if getattr(self, name).shape[0] != n:
                raise ValueError(f"{name} has {getattr(self, name).shape[0]} nodes; children_left has {n}")
        if n == 0:
            raise ValueError("a tree needs at least one node")
        if check:
            _check_structure(self.children_left, self.children_right, self.feature)
        self._depth = kernels.node_depths(self.children_left, self.children_right)
        self.max_depth = int(self._depth.max())

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
        X = kernels.readonly(as_features(X, self.n_features), np.float64)
        nodes, nan_left, value, local = self._records()
        leaves = np.empty((X.shape[0], 1), dtype=np.int64)
        no_out = np.empty((0, value.shape[1]))
        kernels.walk_forest(
            X,
            nodes,
            nodes.view(np.float64),
            nan_left,
            value,
            local,
            _ONE_ROOT,
            1,
            no_out,
            leaves,
            row_block(X.shape[1]),
            ROW_BATCH,
            may_hold_nan(X),
        )
        return leaves[:, 0]

    def _records(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """This tree's node records for the walk (:func:`kernels.pack_nodes`), built on the
        first call and kept: a grown tree's arrays are not changed, as a forest's packed trees are not."""
        records: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = self.__dict__.get("_walk_records")
        if records is None:
            nodes, value, local, nan_left = kernels.pack_nodes(
                self.children_left,
                self.children_right,
                self.feature,
                self.threshold,
                self.missing_go_to_left,
                self.value,
                _ONE_ROOT,
            )
            records = self._walk_records = (
                kernels.readonly(nodes, np.int32),
                kernels.readonly(nan_left, np.uint8),
                kernels.readonly(value, np.float64),
                kernels.readonly(local, np.int64),
            )
        return records

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
            node id (which, a child's id exceeding its parent's, is root to leaf). With scipy,
            ``scipy.sparse.csr_matrix((np.ones(len(indices)), indices, indptr),
            shape=(n_samples, node_count))`` is scikit-learn's indicator matrix.
        """
        leaves = self.apply(X)
        parent = np.full(self.node_count, -1, dtype=np.int64)
        internal = np.flatnonzero(self.children_left != TREE_LEAF)
        parent[self.children_left[internal]] = internal
        parent[self.children_right[internal]] = internal
        lengths = self._depth[leaves] + 1
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
        state["missing_go_to_left"] = self.missing_go_to_left
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)  # type: ignore[misc]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Tree):
            return NotImplemented
        return (
            self.n_features == other.n_features
            and all(np.array_equal(getattr(self, n), getattr(other, n), equal_nan=True) for n in NODE_ARRAYS)
            and np.array_equal(self.missing_go_to_left, other.missing_go_to_left)
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
    # bincount, not np.unique: the first np.unique in a process imports numpy.ma (~20 ms, one-off timing),
    # which every fresh worker would pay on its first tree.
    if kids.size and (kids.min() < 1 or kids.max() >= n or np.bincount(kids, minlength=n).max() > 1):
        raise ValueError("children must be distinct node ids in [1, node_count), each with one parent")
    parents = np.flatnonzero(internal)
    if np.any(left[internal] <= parents) or np.any(right[internal] <= parents):
        raise ValueError("a child's id must exceed its parent's")
    if np.any(feature[internal] < 0):
        raise ValueError("internal nodes need a feature >= 0")


def may_hold_nan(X: np.ndarray) -> bool:
    """False when ``X`` holds no NaN (True may also mean an infinity): whether the walk must test for NaN.

    A sum, vectorised, in which any NaN stays NaN: a pass cheaper than the test in the walk it spares.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.isnan(X.sum()))


def as_features(X: np.ndarray, n_features: int) -> np.ndarray:
    """``X`` as C-order float64 of shape (n_samples, n_features), or ``ValueError``.

    A NaN goes to the side each node learned for it (``missing_go_to_left``).
    """
    X = np.ascontiguousarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != n_features:
        raise ValueError(f"X must have shape (n_samples, {n_features}), got {X.shape}")
    return X
