"""Split criteria, vectorized over whole histograms.

A criterion sees a node, or one side of a candidate split, only through its
*stats*: a few weighted sums from which the value, the impurity and the split
score all follow. Statistics lead their arrays (shape ``(n_stats, ...)``), so every
formula below runs on whole contiguous planes of a histogram at once.

=================  ============================  ==================================
criterion          node stats                    split-search stats
=================  ============================  ==================================
gini, entropy      weight of each class          the same
squared_error      sum w, sum w*y, sum w*y**2    sum w, sum w*y
=================  ============================  ==================================

Split search maximises a *proxy* that orders candidates exactly as the impurity
decrease does, but is cheaper (scikit-learn's ``proxy_impurity_improvement``).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

__all__ = ["Criterion", "Gini", "Entropy", "SquaredError", "get_criterion", "CRITERIA"]


class Criterion:
    """What a criterion computes from weighted sums; subclasses fill in the formulas.

    Parameters
    ----------
    n_classes : int
        Number of classes (classification); 0 for regression.
    """

    name: ClassVar[str] = ""
    is_classification: ClassVar[bool] = True

    def __init__(self, n_classes: int) -> None:
        self.n_classes = n_classes

    @property
    def n_node_stats(self) -> int:
        """Stats per node (rows of :meth:`node_stats`)."""
        return self.n_classes

    @property
    def n_split_stats(self) -> int:
        """Stats per histogram cell (rows of :meth:`histogram`)."""
        return self.n_classes

    @property
    def n_outputs(self) -> int:
        """Width of a node's value row."""
        return self.n_classes

    # -- sums ------------------------------------------------------------
    def node_stats(self, group: np.ndarray, n_groups: int, y: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Stats of each group of samples: shape (n_node_stats, n_groups).

        ``group[i]``, ``y[i]`` and ``w[i]`` belong to one sample. Each sum runs in
        the order the samples are given, so a node's stats depend on its samples
        alone, not on which other nodes are summed in the same call.
        """
        return self.histogram(group, n_groups, y, w)

    def histogram(self, cell: np.ndarray, n_cells: int, y: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Split-search stats summed per cell: shape (n_split_stats, n_cells)."""
        offset = self.stat_offset(y, n_cells)
        index = cell if offset is None else cell + offset
        return self.sum_cells(index, n_cells, self.stat_weights(y, w))

    # The histogram in two halves, so the splitter can fold the per-sample part
    # into its own index arithmetic instead of paying a pass per candidate feature.
    def stat_offset(self, y: np.ndarray, n_cells: int) -> np.ndarray | None:
        """Index offset per sample that sends it to its stat's plane (classes: ``y * n_cells``)."""
        return y * n_cells

    def stat_weights(self, y: np.ndarray, w: np.ndarray) -> list[np.ndarray]:
        """Weights to sum, one array per ``np.bincount`` (classes: just ``w``)."""
        return [w]

    def sum_cells(self, index: np.ndarray, n_cells: int, weights: list[np.ndarray]) -> np.ndarray:
        """Sum ``weights`` at ``index`` (offsets included): shape (n_split_stats, n_cells)."""
        if len(weights) == 1:
            # One bincount fills every stat's plane: reshaped, not stacked (a copy of
            # every cell, ~3% of a deep tree's fit).
            return np.bincount(index, weights=weights[0], minlength=self.n_split_stats * n_cells).reshape(
                self.n_split_stats, n_cells
            )
        return np.stack([np.bincount(index, weights=wi, minlength=n_cells) for wi in weights])

    def entry_stats(self, y: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Split-search stats of single samples: shape (n_split_stats, n)."""
        out = np.zeros((self.n_classes, y.shape[0]))
        out[y, np.arange(y.shape[0])] = w
        return out

    # -- from stats ------------------------------------------------------
    def weight(self, stats: np.ndarray) -> np.ndarray:
        """Total weight from node stats."""
        return stats.sum(axis=0)

    def value(self, stats: np.ndarray) -> np.ndarray:
        """Value rows from node stats: shape (n, n_outputs); class fractions here."""
        total = self.weight(stats)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (stats / total).T

    def impurity(self, stats: np.ndarray) -> np.ndarray:
        """Impurity from node stats."""
        raise NotImplementedError

    def proxy(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """Score of candidate splits from the split-search stats of their two sides.

        Higher is better. Only compared between candidates of one node, so any
        function increasing in the impurity decrease will do. A side whose stats
        are all exactly 0 (empty) makes the score nan, so with exact sums the
        caller needs no mask for empty sides.
        """
        raise NotImplementedError


class Gini(Criterion):
    """Gini impurity, ``1 - sum_k p_k**2``."""

    name: ClassVar[str] = "gini"

    def impurity(self, stats: np.ndarray) -> np.ndarray:
        total = self.weight(stats)
        with np.errstate(invalid="ignore", divide="ignore"):
            return 1.0 - np.einsum("k...,k...->...", stats, stats) / (total * total)

    def proxy(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        if left.shape[0] == 2:
            # Two classes: sum_k l_k**2 / w_l = w_l - 2 l_0 l_1 / w_l, so scikit-learn's
            # proxy below is W - 2 (l_0 l_1 / w_l + r_0 r_1 / w_r), in 9 operations.
            l0, l1, r0, r1 = left[0], left[1], right[0], right[1]
            s = l0 * l1
            s /= l0 + l1
            t = r0 * r1
            t /= r0 + r1
            s += t
            return np.negative(s, out=s)
        # sum_k l_k**2 / w_l + sum_k r_k**2 / w_r (scikit-learn's Gini proxy).
        wl, wr = left.sum(axis=0), right.sum(axis=0)
        sl = np.einsum("k...,k...->...", left, left)
        sr = np.einsum("k...,k...->...", right, right)
        return sl / wl + sr / wr


class Entropy(Criterion):
    """Shannon entropy in bits, ``-sum_k p_k log2 p_k``."""

    name: ClassVar[str] = "entropy"

    def impurity(self, stats: np.ndarray) -> np.ndarray:
        total = self.weight(stats)
        with np.errstate(invalid="ignore", divide="ignore"):
            p = stats / total
            plogp = np.where(p > 0, p * np.log2(np.where(p > 0, p, 1.0)), 0.0)
        return -plogp.sum(axis=0)

    def proxy(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        # -(w_l H_l + w_r H_r) in nats: sum_k l_k log l_k - w_l log w_l + (same on the right).
        # w log w is left as nan at w == 0, which is what marks an empty side.
        wl, wr = left.sum(axis=0), right.sum(axis=0)
        return _xlogx(left).sum(axis=0) - wl * np.log(wl) + _xlogx(right).sum(axis=0) - wr * np.log(wr)


class SquaredError(Criterion):
    """Weighted variance of the target; value is the weighted mean."""

    name: ClassVar[str] = "squared_error"
    is_classification: ClassVar[bool] = False

    @property
    def n_node_stats(self) -> int:
        return 3

    @property
    def n_split_stats(self) -> int:
        return 2

    @property
    def n_outputs(self) -> int:
        return 1

    def node_stats(self, group: np.ndarray, n_groups: int, y: np.ndarray, w: np.ndarray) -> np.ndarray:
        wy = w * y
        out = np.empty((3, n_groups))
        out[0] = np.bincount(group, weights=w, minlength=n_groups)
        out[1] = np.bincount(group, weights=wy, minlength=n_groups)
        out[2] = np.bincount(group, weights=wy * y, minlength=n_groups)
        return out

    def stat_offset(self, y: np.ndarray, n_cells: int) -> np.ndarray | None:
        return None

    def stat_weights(self, y: np.ndarray, w: np.ndarray) -> list[np.ndarray]:
        return [w, w * y]

    def entry_stats(self, y: np.ndarray, w: np.ndarray) -> np.ndarray:
        return np.stack([w, w * y])

    def weight(self, stats: np.ndarray) -> np.ndarray:
        return stats[0]

    def value(self, stats: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return (stats[1] / stats[0])[:, None]

    def impurity(self, stats: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = stats[1] / stats[0]
            # E[y^2] - E[y]^2 can round below zero; a variance cannot be.
            return np.maximum(stats[2] / stats[0] - mean * mean, 0.0)

    def proxy(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        # sum_l**2 / w_l + sum_r**2 / w_r (scikit-learn's MSE proxy).
        return left[1] * left[1] / left[0] + right[1] * right[1] / right[0]


def _xlogx(a: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(a > 0, a * np.log(np.where(a > 0, a, 1.0)), 0.0)


#: Criteria by name.
CRITERIA: dict[str, type[Criterion]] = {c.name: c for c in (Gini, Entropy, SquaredError)}


def get_criterion(name: str, n_classes: int) -> Criterion:
    """The criterion called ``name`` for ``n_classes`` classes (0: regression).

    Raises
    ------
    ValueError
        Unknown name, or a classification criterion without classes (or the reverse).
    """
    try:
        cls = CRITERIA[name]
    except KeyError:
        raise ValueError(f"criterion must be one of {sorted(CRITERIA)}, got {name!r}") from None
    if cls.is_classification and n_classes < 1:
        raise ValueError(f"criterion {name!r} is for classification and needs n_classes >= 1, got {n_classes}")
    if not cls.is_classification and n_classes != 0:
        raise ValueError(f"criterion {name!r} is for regression and needs n_classes == 0, got {n_classes}")
    return cls(n_classes)
