"""Prediction over many trees: their node arrays packed once, walked by a compiled kernel.

::

    trees ──► ForestArrays(trees)        once, at the end of fit (the estimator keeps it)
                kernels.pack_nodes: 16-byte node records, siblings side by side; each tree's root
    X ─────► predict_value(X, n_threads)
                row blocks ──► kernels.walk_forest: each block through every tree,
                               ROW_BATCH rows stepping down a tree together
                               (nogil: threads take row blocks of their own)
                per row: value rows summed tree after tree in groups of
                TREES_PER_GROUP, the group sums in order, divided by the trees

A row's sum runs in one fixed order whatever the number of threads, so
predictions are the same to the bit on every thread count.
"""

from __future__ import annotations

import concurrent.futures as cf
from collections.abc import Callable, Sequence

import numpy as np

from shmforest.tree import kernels
from shmforest.tree.tree import ROW_BATCH, Tree, as_features, may_hold_nan, row_block

__all__ = [
    "ROWS_PER_THREAD",
    "TREES_PER_GROUP",
    "ForestArrays",
    "apply_forest",
    "predict_forest",
]

#: Trees are summed in groups of this many, in order, and the group sums added in
#: order: a fixed rounding, however rows or trees are shared out.
TREES_PER_GROUP = 10
#: Fewer rows than this per thread are walked in the calling thread alone: a
#: thread's start costs about as much as walking this many rows through a forest.
ROWS_PER_THREAD = 2048


class ForestArrays:
    """The node arrays of a forest's trees, concatenated for the compiled walk.

    Parameters
    ----------
    trees : sequence of Tree
        Grown on the same features, with value rows of one width.

    Attributes
    ----------
    n_trees, n_features, n_outputs : int
    roots : ndarray of int64
        First node of each tree in the concatenated arrays.
    nodes : ndarray of int32, shape (n_nodes, 4)
        One 16-byte record a node (:func:`shmforest.tree.kernels.pack_nodes`): each
        tree renumbered so that siblings sit side by side.
    nan_left : ndarray of uint8, shape (n_nodes,)
        1 where NaN goes left (each tree's ``missing_go_to_left``), in the records' order.
    value : ndarray of float64, shape (n_nodes, n_outputs)
        The value rows, in the records' order.
    local : ndarray of int64
        Each record's node id in its tree as stored.

    Examples
    --------
    >>> forest = ForestArrays(trees)                    # doctest: +SKIP
    >>> proba = forest.predict_value(X, n_threads=2)    # doctest: +SKIP
    >>> leaves = forest.apply(X)                        # doctest: +SKIP
    """

    def __init__(self, trees: Sequence[Tree]) -> None:
        if not trees:
            raise ValueError("trees is empty")
        self.n_trees = len(trees)
        self.n_features = trees[0].n_features
        if any(t.n_features != self.n_features for t in trees):
            raise ValueError("the trees were grown on different numbers of features")
        self.n_outputs = trees[0].n_outputs
        if any(t.n_outputs != self.n_outputs for t in trees):
            raise ValueError("the trees have different value widths")
        counts = np.array([t.node_count for t in trees], dtype=np.int64)
        if counts.max() >= 2**31:
            raise ValueError(f"trees has a tree of {counts.max()} nodes; the walk takes at most 2**31 - 1")
        roots = np.zeros(self.n_trees, dtype=np.int64)
        np.cumsum(counts[:-1], out=roots[1:])
        nodes, value, local, nan_left = kernels.pack_nodes(
            np.concatenate([t.children_left for t in trees]),
            np.concatenate([t.children_right for t in trees]),
            np.concatenate([t.feature for t in trees]),
            np.concatenate([t.threshold for t in trees]),
            np.concatenate([t.missing_go_to_left for t in trees]),
            np.concatenate([t.value for t in trees]),
            roots,
        )
        self.nodes = kernels.readonly(nodes, np.int32)
        self.nan_left = kernels.readonly(nan_left, np.uint8)
        self.value = kernels.readonly(value, np.float64)
        self.local = kernels.readonly(local, np.int64)
        self.roots = kernels.readonly(roots, np.int64)

    def __len__(self) -> int:
        return self.n_trees

    def __getstate__(self) -> dict[str, object]:
        return self.__dict__.copy()

    def __setstate__(self, state: dict[str, object]) -> None:
        for name, value in state.items():
            if isinstance(value, np.ndarray):
                value = kernels.readonly(value, value.dtype)
            setattr(self, name, value)

    def _walk(self, X: np.ndarray, out: np.ndarray, leaves: np.ndarray, nan_rows: bool) -> None:
        kernels.walk_forest(
            X,
            self.nodes,
            self.nodes.view(np.float64),
            self.nan_left,
            self.value,
            self.local,
            self.roots,
            TREES_PER_GROUP,
            out,
            leaves,
            row_block(X.shape[1]),
            ROW_BATCH,
            nan_rows,
        )

    def _in_threads(self, n_rows: int, n_threads: int, work: Callable[[int, int], None]) -> None:
        """Run ``work(a, b)`` on row ranges: here alone, or one range per thread."""
        threads = max(1, min(int(n_threads), n_rows // ROWS_PER_THREAD))
        if threads == 1:
            work(0, n_rows)
            return
        bounds = np.linspace(0, n_rows, threads + 1).astype(int)
        with cf.ThreadPoolExecutor(threads - 1) as pool:
            futures: list[cf.Future[None]] = [pool.submit(work, a, b) for a, b in zip(bounds[1:-1], bounds[2:])]
            work(bounds[0], bounds[1])
            for f in futures:
                f.result()

    def predict_value(self, X: np.ndarray, n_threads: int = 1) -> np.ndarray:
        """Mean over the trees of the value rows ``X``'s rows reach: shape (n_rows, n_outputs).

        Parameters
        ----------
        X : array-like of shape (n_rows, n_features)
            Real values; NaN goes to the side each node learned for it.
        n_threads : int, default 1
            Threads walking row blocks (the kernel releases the GIL); the result
            is the same to the bit for any number.
        """
        out = self.sum_value(X, n_threads)
        out /= self.n_trees
        return out

    def sum_value(self, X: np.ndarray, n_threads: int = 1) -> np.ndarray:
        """Sum over the trees (in groups of :data:`TREES_PER_GROUP`) of the value rows reached."""
        X = kernels.readonly(as_features(X, self.n_features), np.float64)
        out = np.empty((X.shape[0], self.n_outputs))
        no_leaves = np.empty((0, 0), dtype=np.int64)
        nan_rows = may_hold_nan(X)
        self._in_threads(X.shape[0], n_threads, lambda a, b: self._walk(X[a:b], out[a:b], no_leaves, nan_rows))
        return out

    def apply(self, X: np.ndarray, n_threads: int = 1) -> np.ndarray:
        """Leaf each row reaches in each tree, as node ids of that tree: shape (n_rows, n_trees)."""
        X = kernels.readonly(as_features(X, self.n_features), np.float64)
        leaves = np.empty((X.shape[0], self.n_trees), dtype=np.int64)
        no_out = np.empty((0, self.n_outputs))
        nan_rows = may_hold_nan(X)
        self._in_threads(X.shape[0], n_threads, lambda a, b: self._walk(X[a:b], no_out, leaves[a:b], nan_rows))
        return leaves


# --------------------------------------------------------------------------- plain functions


def apply_forest(trees: Sequence[Tree], X: np.ndarray) -> np.ndarray:
    """Leaf reached by each row in each tree: shape (n_trees, n_samples), node ids per tree."""
    return ForestArrays(trees).apply(X).T.copy()


def predict_forest(trees: Sequence[Tree], X: np.ndarray, n_threads: int = 1) -> np.ndarray:
    """Mean over ``trees`` of the value rows reached by ``X``: shape (n_samples, n_outputs).

    For a classifier this is the forest's ``predict_proba`` (scikit-learn averages
    class fractions the same way). Builds a :class:`ForestArrays` per call;
    estimators keep theirs.
    """
    return ForestArrays(trees).predict_value(X, n_threads)
