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
0.5 MB. On the 75,000 x 20 workload (100 trees, 25,000 rows) the walk on codes
takes about 0.6 of the time of the walk on floats
(``benchmarks/test_bench_predict.py``).

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

from collections.abc import Sequence

import numpy as np

from shmforest.tree.tree import TREE_LEAF, Tree, as_features
from shmforest.tree.walk import stack_walks, walk

__all__ = ["TREES_PER_GROUP", "TREES_PER_WALK", "CodedForest", "apply_forest", "predict_forest"]

#: Trees are summed in groups of this many, in order, and the group sums added in
#: order: one fixed rounding whether one thread walks every group or several share them.
TREES_PER_GROUP = 10
#: Trees walking together (:func:`~shmforest.tree.walk.stack_walks`); divides a group.
#: More pairs per numpy call release the GIL for longer, but past a few trees their
#: node arrays crowd each other out of the cache (``benchmarks/test_bench_predict.py``).
TREES_PER_WALK = 5


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
            walks = [t.walk_arrays for t in self.trees]
        else:
            self._cuts, ranks, self.dtype = ranked
            always_left = np.iinfo(self.dtype).max  # above every code: see _rank_thresholds
            walks = [t.walk_arrays_for(r, always_left) for t, r in zip(self.trees, ranks)]
        self._walks = [stack_walks(walks[i : i + TREES_PER_WALK]) for i in range(0, len(walks), TREES_PER_WALK)]

    def __len__(self) -> int:
        return len(self.trees)

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
        n = X.shape[0]
        columns = np.ascontiguousarray(X.T)  # one copy, so every column below is contiguous
        by_feature = np.empty((self.n_features, n), dtype=self.dtype)
        for f, cuts in enumerate(self._cuts):
            if not cuts.size:
                by_feature[f] = 0  # no node tests this feature: its codes are never read
                continue
            # Sorted, a column's codes only step up, at the rows where it passes a
            # threshold: one sort and a search per threshold, about twice as fast as
            # a binary search per value (``searchsorted`` of the raw column).
            column = columns[f]
            order = np.argsort(column)
            passes = np.searchsorted(column.take(order), cuts, side="right")
            by_feature[f, order] = np.cumsum(np.bincount(passes, minlength=n + 1)[:n])
        out[...] = by_feature.T
        return out

    def apply(self, codes: np.ndarray) -> np.ndarray:
        """Leaf reached by each row of ``codes`` (from :meth:`encode`): (n_trees, n_rows)."""
        return np.concatenate([walk(w, codes) for w in self._walks])

    def sum_values(self, codes: np.ndarray, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Sum over ``trees[start:stop]``, in order, of the value rows ``codes`` reach.

        ``start`` and ``stop`` fall on multiples of :data:`TREES_PER_WALK` (or the end),
        as every group of :meth:`groups` does.
        """
        stop = len(self.trees) if stop is None else stop
        if start % TREES_PER_WALK or (stop % TREES_PER_WALK and stop != len(self.trees)):
            raise ValueError(f"start and stop must be multiples of {TREES_PER_WALK}, got {start} and {stop}")
        offsets = np.arange(codes.shape[0], dtype=np.intp) * codes.shape[1]
        out = np.zeros((codes.shape[0], self.n_outputs))
        at = start
        for arrays in self._walks[start // TREES_PER_WALK : -(-stop // TREES_PER_WALK)]:
            for leaves in walk(arrays, codes, offsets):
                out += self.trees[at].value.take(leaves, axis=0)
                at += 1
        return out

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
    internal = [t.children_left != TREE_LEAF for t in trees]
    feature = np.concatenate([t.feature[m] for t, m in zip(trees, internal)])
    threshold = np.concatenate([t.threshold[m] for t, m in zip(trees, internal)])
    if np.isnan(threshold).any():
        return None
    # By feature, then threshold: a sort of the values, then a stable (radix) sort
    # of small feature numbers, several times faster than lexsort on both keys.
    order = np.argsort(threshold)
    order = order[np.argsort(feature[order].astype(np.int16 if n_features < 2**15 else np.int64), kind="stable")]
    f_sorted, t_sorted = feature[order], threshold[order]
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
    for t, m in zip(trees, internal):
        r = np.zeros(t.node_count, dtype=dtype)
        k = int(np.count_nonzero(m))
        r[m] = rank[at : at + k]
        at += k
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
