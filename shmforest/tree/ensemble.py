"""Prediction over many trees at once, walking small integer codes instead of floats.

::

    trees ──► CodedForest(trees)          once per fitted forest (the estimator keeps it)
                per feature: every threshold any tree tests it against, sorted, distinct
                per tree and node: the rank of its threshold there
    X ─────► encode(X)                    once per predict
                code = how many of the feature's thresholds lie below x (uint8/uint16)
    codes ─► each tree: all rows walk down together, a depth per step ──► leaf ids
          ─► value rows summed over the trees, in fixed groups, in order

Why codes: a step gathers one value per row. A float64 row of 20 features is 160
bytes, so each gather touches a cache line of its own, and X for 25,000 rows (4 MB)
does not stay in a core's cache; the same rows as uint16 codes take 1 MB, as uint8
0.5 MB. On the 75,000 x 20 workload (100 trees, 25,000 rows, 2 threads)
predict took 0.188 s against 0.384 s for the same groups walking float X
(``benchmarks/test_bench_predict.py``, best of 7, one run).

Why it is exact: with ``T`` a feature's sorted distinct thresholds and
``code(x) = #{t in T : t < x}`` (``searchsorted``, ``side="left"``), for
``t = T[k]``: ``x <= t`` exactly when no ``T[j]`` with ``j >= k`` lies below ``x``,
that is when ``code(x) <= k``. So every row reaches the leaf the float walk
reaches, in every tree, and predictions are bit-identical. A NaN value goes right
both ways (it is never ``<=`` a threshold). A NaN *threshold* (which no builder
here makes) has no rank, and such forests, or ones with more than 65,535
thresholds on one feature, walk the floats.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np

from shmforest.tree.binning import count_below_by_column
from shmforest.tree.tree import TREE_LEAF, Tree, as_features
from shmforest.tree.walk import WalkArrays, Workspace, stack_walks, walk

__all__ = ["PAIRS_PER_WALK", "TREES_PER_GROUP", "TREES_PER_WALK", "CodedForest", "apply_forest", "predict_forest"]

#: Trees are summed in groups of this many, in order, and the group sums added in
#: order: one fixed rounding whether one thread walks every group or several share them.
TREES_PER_GROUP = 10
#: Trees walking together (:func:`~shmforest.tree.walk.stack_walks`); divides a group.
#: More pairs per numpy call release the GIL for longer, but past a few trees their
#: node arrays crowd each other out of the cache: 1, 2, 5 and 10 trees took 0.273,
#: 0.253, 0.238 and 0.291 s for the 100-tree predict above on 2 threads (best of 7,
#: one run of a throwaway script, before workspaces; kept for the ordering).
TREES_PER_WALK = 5
#: Rows walk in blocks of this many (tree, row) pairs: long numpy calls, and a
#: workspace of about 10 MB per thread whatever the number of rows.
PAIRS_PER_WALK = 1 << 17


class CodedForest:
    """Trees whose thresholds are replaced by their ranks among the forest's thresholds.

    Parameters
    ----------
    trees : sequence of Tree
        Grown on the same features, with value rows of one width.

    Attributes
    ----------
    trees : list of Tree
    n_features : int
    n_outputs : int
    dtype : numpy dtype
        Of the codes: ``uint8`` when no feature has more than 255 thresholds,
        ``uint16`` up to 65,535, else ``float64`` (the walk then reads ``X`` itself).

    Examples
    --------
    >>> forest = CodedForest(trees)                 # doctest: +SKIP
    >>> codes = forest.encode(X)                    # doctest: +SKIP
    >>> proba = forest.predict(codes)               # doctest: +SKIP
    """

    def __init__(self, trees: Sequence[Tree]) -> None:
        if not trees:
            raise ValueError("trees is empty")
        self.trees = list(trees)
        self.n_features = self.trees[0].n_features
        if any(t.n_features != self.n_features for t in self.trees):
            raise ValueError("the trees were grown on different numbers of features")
        self.n_outputs = self.trees[0].n_outputs
        if any(t.n_outputs != self.n_outputs for t in self.trees):
            raise ValueError("the trees have different value widths")
        ranked = _rank_thresholds(self.trees, self.n_features)
        if ranked is None:
            self.dtype = np.dtype(np.float64)
            self._cuts: list[np.ndarray] | None = None
            self._ranks: list[np.ndarray] | None = None
        else:
            self._cuts, self._ranks, self.dtype = ranked
        self._per_walk = TREES_PER_WALK
        self._spares: list[Workspace] = []  # list.pop and append are atomic: threads share it
        # Stacked walk arrays, built by the first walk of each (in the threads that walk).
        self._walks: list[WalkArrays | None] = [None] * -(-len(self.trees) // self._per_walk)

    def __len__(self) -> int:
        return len(self.trees)

    def _stack(self, index: int) -> WalkArrays:
        """The walk arrays of the ``index``-th run of :data:`TREES_PER_WALK` trees."""
        arrays = self._walks[index]
        if arrays is None:  # two threads may both build it: the same arrays, no harm
            trees = range(index * self._per_walk, min((index + 1) * self._per_walk, len(self.trees)))
            if self._ranks is None:
                walks = [self.trees[i].walk_arrays for i in trees]
            else:
                always_left = np.iinfo(self.dtype).max  # above every code: see _rank_thresholds
                walks = [self.trees[i].walk_arrays_for(self._ranks[i], always_left) for i in trees]
            arrays = self._walks[index] = stack_walks(walks)
        return arrays

    def encode(self, X: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``X`` as codes of :attr:`dtype`, shape (n_rows, n_features), C order.

        Parameters
        ----------
        X : array-like of shape (n_rows, n_features)
        out : ndarray, optional
            C-order array of :attr:`dtype` and ``X``'s shape to write the codes into
            (threads encode row blocks of one array this way).

        Raises
        ------
        ValueError
            When ``X`` does not have ``n_features`` columns, or ``out`` does not fit.
        """
        X = as_features(X, self.n_features)
        if out is None:
            if self._cuts is None:
                return X
            out = np.empty(X.shape, dtype=self.dtype)
        elif out.shape != X.shape or out.dtype != self.dtype or not out.flags.c_contiguous:
            raise ValueError(
                f"out must be a C-order {self.dtype} array of shape {X.shape}, got {out.dtype} {out.shape}"
            )
        if self._cuts is None:
            out[...] = X
            return out
        # An untested feature has no cuts: its codes are all 0, and no node reads them.
        return count_below_by_column(X, self._cuts, out)

    def apply(self, codes: np.ndarray) -> np.ndarray:
        """Leaf reached by each row of ``codes`` (from :meth:`encode`): (n_trees, n_rows)."""
        out = np.empty((len(self.trees), codes.shape[0]), dtype=np.intp)
        with self._workspace() as ws:
            for i in range(len(self._walks)):
                for a, b in self._row_blocks(codes.shape[0]):
                    out[i * self._per_walk : (i + 1) * self._per_walk, a:b] = walk(self._stack(i), codes[a:b], workspace=ws)
        return out

    def sum_values(self, codes: np.ndarray, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Sum over ``trees[start:stop]``, in order, of the value rows ``codes`` reach.

        ``start`` and ``stop`` fall on multiples of :data:`TREES_PER_WALK` (or the end),
        as every group of :meth:`groups` does. Rows are walked in blocks of
        :data:`PAIRS_PER_WALK` pairs, which bounds the workspace whatever ``codes``' size.
        """
        stop = len(self.trees) if stop is None else stop
        per = self._per_walk
        if start % per or (stop % per and stop != len(self.trees)):
            raise ValueError(f"start and stop must be multiples of {per}, got {start} and {stop}")
        out = np.zeros((codes.shape[0], self.n_outputs))
        with self._workspace() as ws:
            for a, b in self._row_blocks(codes.shape[0]):
                block, part = codes[a:b], out[a:b]
                offsets = np.arange(b - a, dtype=np.intp) * codes.shape[1]
                picked = ws.get("values", (b - a) * self.n_outputs, np.float64).reshape(b - a, self.n_outputs)
                at = start
                for index in range(start // per, -(-stop // per)):
                    for leaves in walk(self._stack(index), block, offsets, ws):
                        self.trees[at].value.take(leaves, axis=0, mode="clip", out=picked)
                        part += picked
                        at += 1
        return out

    def _row_blocks(self, n_rows: int) -> list[tuple[int, int]]:
        rows = max(1, PAIRS_PER_WALK // self._per_walk)
        return [(a, min(a + rows, n_rows)) for a in range(0, n_rows, rows)] or [(0, 0)]

    @contextmanager
    def _workspace(self) -> Iterator[Workspace]:
        """A workspace no other thread is using: taken from the forest's spares, given back after."""
        try:
            ws = self._spares.pop()
        except IndexError:
            ws = Workspace()
        try:
            yield ws
        finally:
            self._spares.append(ws)

    def groups(self) -> list[tuple[int, int]]:
        """``(start, stop)`` of the fixed groups whose sums :meth:`predict` adds in order."""
        n = len(self.trees)
        return [(i, min(i + TREES_PER_GROUP, n)) for i in range(0, n, TREES_PER_GROUP)]

    def predict(self, codes: np.ndarray) -> np.ndarray:
        """Mean over the trees of the value rows ``codes`` reach: (n_rows, n_outputs)."""
        out: np.ndarray | None = None
        for start, stop in self.groups():
            part = self.sum_values(codes, start, stop)
            out = part if out is None else out + part
        assert out is not None
        out /= len(self.trees)
        return out


def _rank_thresholds(
    trees: Sequence[Tree], n_features: int
) -> tuple[list[np.ndarray], list[np.ndarray], np.dtype] | None:
    """Each feature's sorted distinct thresholds, and each tree's node thresholds as ranks.

    None when some threshold is NaN or a feature has more than 65,535 thresholds.
    A code counts thresholds below a value, so it is at most the feature's number
    of thresholds, never above the dtype's maximum: that maximum, a leaf's
    "always left", is never exceeded.
    """
    internal = [np.flatnonzero(t.children_left != TREE_LEAF) for t in trees]
    feature = np.concatenate([t.feature.take(i) for t, i in zip(trees, internal)])
    threshold = np.concatenate([t.threshold.take(i) for t, i in zip(trees, internal)])
    if np.isnan(threshold).any():
        return None
    # By feature, then threshold: a sort of the values, then a stable (radix) sort
    # of small feature numbers, several times faster than lexsort on both keys.
    by_threshold = np.argsort(threshold)
    f_by_threshold = feature.take(by_threshold).astype(np.int16 if n_features < 2**15 else np.int64)
    regroup = np.argsort(f_by_threshold, kind="stable")
    order = by_threshold.take(regroup)
    f_sorted, t_sorted = f_by_threshold.take(regroup), threshold.take(order)
    new = np.ones(order.size, dtype=bool)
    new[1:] = (f_sorted[1:] != f_sorted[:-1]) | (t_sorted[1:] != t_sorted[:-1])
    distinct_f, distinct_t = f_sorted[new], t_sorted[new]
    bounds = np.searchsorted(distinct_f, np.arange(n_features + 1))
    most = int(np.diff(bounds).max(initial=0))
    if most > np.iinfo(np.uint16).max:
        return None
    dtype = np.dtype(np.uint8 if most <= np.iinfo(np.uint8).max else np.uint16)
    # Rank within the feature: rank among all distinct pairs less the feature's first.
    rank = np.empty(order.size, dtype=dtype)
    rank[order] = np.cumsum(new) - 1 - bounds[f_sorted]
    cuts = [distinct_t[bounds[f] : bounds[f + 1]] for f in range(n_features)]
    ranks, at = [], 0
    for t, nodes in zip(trees, internal):
        r = np.zeros(t.node_count, dtype=dtype)
        r[nodes] = rank[at : at + nodes.size]
        at += nodes.size
        ranks.append(r)
    return cuts, ranks, dtype


# --------------------------------------------------------------------------- plain functions


def apply_forest(trees: Sequence[Tree], X: np.ndarray) -> np.ndarray:
    """Leaf reached by each row in each tree: shape (n_trees, n_samples), node ids per tree."""
    forest = CodedForest(trees)
    return forest.apply(forest.encode(X)).astype(np.int64, copy=False)


def predict_forest(trees: Sequence[Tree], X: np.ndarray) -> np.ndarray:
    """Mean over ``trees`` of the value rows reached by ``X``: shape (n_samples, n_outputs).

    For a classifier this is the forest's ``predict_proba`` (scikit-learn averages
    class fractions the same way). Trees are summed in fixed groups
    (:data:`TREES_PER_GROUP`) so that threads sharing the groups out give the same
    bits. This builds a :class:`CodedForest` per call; estimators keep theirs.
    """
    forest = CodedForest(trees)
    return forest.predict(forest.encode(X))
