"""Which training samples reached each leaf of a forest, and weighted quantiles over them.

A quantile regression forest (Meinshausen, 2006) predicts the distribution of
``y`` at ``x`` as the training targets of the leaves ``x`` reaches, each sample
weighted by its share of its leaf's weight, averaged over the trees. What it keeps:

::

    per tree t, its in-bag samples sorted by leaf:    ids     [ 7 2 | 5 | 9 1 4 | ... ]
                                                      weights [ 1 2 | 1 | 1 1 3 | ... ]  (count x weight)
    per node of every tree (trees concatenated):      offsets: the node's slice of ids
    rows of X ──► leaves (ForestArrays.apply) ──► kernel: gather each row's leaves' samples,
                                                  weight w / leaf weight / n_trees, sort by y,
                                                  read the quantiles off the weighted CDF

The ids take ``n_in_bag`` int32 per tree (at most ``n_samples``), the weights as
many float64, the offsets one int64 per node: the forest's own size, no more.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import njit

from shmforest.tree.ensemble import ForestArrays
from shmforest.tree.tree import Tree

__all__ = ["LeafSamples", "TREES_PER_APPLY"]

#: Training rows are sent down this many trees at a time, so the leaf table of one
#: group (n_samples x TREES_PER_APPLY int64) bounds the memory the build takes.
TREES_PER_APPLY = 16


class LeafSamples:
    """The training samples of every leaf of a forest, with their weights.

    Parameters
    ----------
    trees : sequence of Tree
    X : ndarray of shape (n_samples, n_features)
        The training data (real values) the trees were grown on.
    weights : sequence of ndarray of shape (n_samples,)
        Each tree's weight of each sample (bootstrap count times sample weight; 0 out of bag).

    Attributes
    ----------
    node_start : ndarray of int64, shape (n_trees,)
        First node of each tree in ``offsets``.
    offsets : ndarray of int64, shape (n_nodes_total + 1,)
        Node ``node_start[t] + i`` holds entries ``offsets[k]:offsets[k + 1]`` of ``ids`` and ``weights``.
    ids : ndarray of int32
    weights : ndarray of float64
    leaf_weight : ndarray of float64, shape (n_nodes_total,)
        Total weight of each node's entries.
    """

    def __init__(self, trees: Sequence[Tree], X: np.ndarray, weights: Sequence[np.ndarray]) -> None:
        counts = np.array([t.node_count for t in trees], dtype=np.int64)
        self.node_start = np.zeros(len(trees), dtype=np.int64)
        np.cumsum(counts[:-1], out=self.node_start[1:])
        ids, entry_weights, offsets = [], [], [np.zeros(1, dtype=np.int64)]
        base = 0
        for first in range(0, len(trees), TREES_PER_APPLY):
            group = trees[first : first + TREES_PER_APPLY]
            leaves = ForestArrays(group).apply(X)
            for j, tree in enumerate(group):
                w = weights[first + j]
                in_bag = np.flatnonzero(w > 0)
                leaf = leaves[in_bag, j]
                order = np.argsort(leaf, kind="stable")
                ids.append(in_bag[order].astype(np.int32))
                entry_weights.append(w[in_bag][order].astype(np.float64))
                per_node = np.bincount(leaf, minlength=tree.node_count)
                offsets.append(base + np.cumsum(per_node))
                base += in_bag.size
        self.ids = np.concatenate(ids)
        self.weights = np.concatenate(entry_weights)
        self.offsets = np.concatenate(offsets)
        self.leaf_weight = np.add.reduceat(np.append(self.weights, 0.0), self.offsets[:-1]) * (
            np.diff(self.offsets) > 0
        )

    @property
    def n_trees(self) -> int:
        return int(self.node_start.shape[0])

    def quantiles(self, leaves: np.ndarray, y: np.ndarray, quantiles: np.ndarray) -> np.ndarray:
        """Weighted quantiles of ``y`` over the samples of the leaves each row reaches.

        Parameters
        ----------
        leaves : ndarray of int64, shape (n_rows, n_trees)
            Node ids per tree (:meth:`ForestArrays.apply`).
        y : ndarray of float64, shape (n_samples,)
            The training targets.
        quantiles : ndarray of float64 in [0, 1]

        Returns
        -------
        ndarray of shape (n_rows, n_quantiles)
        """
        out = np.empty((leaves.shape[0], quantiles.shape[0]))
        _weighted_quantiles(
            np.ascontiguousarray(leaves, dtype=np.int64),
            self.node_start,
            self.offsets,
            self.ids,
            self.weights,
            self.leaf_weight,
            np.ascontiguousarray(y, dtype=np.float64),
            np.ascontiguousarray(quantiles, dtype=np.float64),
            out,
        )
        return out


@njit(nogil=True, cache=True)
def _weighted_quantiles(leaves, node_start, offsets, ids, weights, leaf_weight, y, quantiles, out):
    """Each row's quantiles: its samples' distinct targets sorted, each at the midpoint of its
    weight in the cumulative distribution, linear between them (the weighted form of Hazen's
    rule; with equal weights it is numpy's ``method="hazen"``)."""
    n_rows, n_trees = leaves.shape
    for r in range(n_rows):
        size = 0
        for t in range(n_trees):
            node = node_start[t] + leaves[r, t]
            size += offsets[node + 1] - offsets[node]
        values = np.empty(size)
        shares = np.empty(size)
        k = 0
        for t in range(n_trees):
            node = node_start[t] + leaves[r, t]
            for e in range(offsets[node], offsets[node + 1]):
                values[k] = y[ids[e]]
                shares[k] = weights[e] / leaf_weight[node]
                k += 1
        order = np.argsort(values, kind="mergesort")
        # One atom per distinct value (a sample met in several trees, or equal targets):
        # the weighted distribution of y, as Meinshausen's weights define it.
        atoms = np.empty(size)
        masses = np.empty(size)
        n_atoms = 0
        for i in range(size):
            j = order[i]
            if n_atoms and values[j] == atoms[n_atoms - 1]:
                masses[n_atoms - 1] += shares[j]
            else:
                atoms[n_atoms] = values[j]
                masses[n_atoms] = shares[j]
                n_atoms += 1
        total = masses[:n_atoms].sum()
        for q in range(quantiles.shape[0]):
            target = quantiles[q] * total
            below = 0.0
            prev_pos = -1.0
            result = atoms[n_atoms - 1]
            for i in range(n_atoms):
                pos = below + 0.5 * masses[i]
                below += masses[i]
                if pos >= target:
                    if prev_pos < 0.0:
                        result = atoms[i]
                    else:
                        frac = (target - prev_pos) / (pos - prev_pos)
                        result = atoms[i - 1] + frac * (atoms[i] - atoms[i - 1])
                    break
                prev_pos = pos
            out[r, q] = result
