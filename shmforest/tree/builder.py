"""The tree builder: one interface that grows a tree on any executor.

:class:`TreeBuilder` checks its inputs, makes the root and hands the growth to
:mod:`shmforest.tree.growth`: level-wise (all nodes of a depth evaluated together
in a few numpy calls), or best first when ``max_leaf_nodes`` is set (as
scikit-learn's ``BestFirstTreeBuilder``). With ``parallel=True``, independent
subtrees go to :func:`shmforest.current_executor` as tasks, recursively, under
the process budget; a fixed seed gives the same tree, bit for bit, however the
work is split and wherever it runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shmforest.shared import SharedDataset
from shmforest.tree.criterion import get_criterion
from shmforest.tree.growth import GrowthSetup, Level, LevelGrower, bins_per_feature, read_inputs
from shmforest.tree.records import records_to_tree
from shmforest.tree.seeding import root_key
from shmforest.tree.tree import Tree

__all__ = ["TreeParams", "TreeBuilder"]


@dataclass(frozen=True)
class TreeParams:
    """How a tree grows; counts already resolved by the estimator.

    Attributes
    ----------
    criterion : str
        ``"gini"``, ``"entropy"`` or ``"squared_error"``.
    max_depth : int or None
    min_samples_split : int
        Distinct samples a node needs to be split (at least 2).
    min_samples_leaf : int
        Distinct samples each child must keep (at least 1).
    max_features : int
        Features evaluated per node, in [1, n_features]; constant features do
        not count, as in scikit-learn.
    min_impurity_decrease : float
        A split must decrease the weighted impurity by at least this much.
    max_leaf_nodes : int or None
        Grow best first up to this many leaves.
    n_classes : int
        Number of classes; 0 for regression.
    """

    criterion: str
    max_depth: int | None
    min_samples_split: int
    min_samples_leaf: int
    max_features: int
    min_impurity_decrease: float
    max_leaf_nodes: int | None
    n_classes: int

    def validate(self, n_features: int) -> None:
        """Raise ``ValueError`` naming the first parameter out of range."""
        get_criterion(self.criterion, self.n_classes)
        if self.max_depth is not None and self.max_depth < 0:
            raise ValueError(f"max_depth must be None or >= 0, got {self.max_depth}")
        if self.min_samples_split < 2:
            raise ValueError(f"min_samples_split must be >= 2, got {self.min_samples_split}")
        if self.min_samples_leaf < 1:
            raise ValueError(f"min_samples_leaf must be >= 1, got {self.min_samples_leaf}")
        if not 1 <= self.max_features <= n_features:
            raise ValueError(f"max_features must be in [1, {n_features}] (n_features), got {self.max_features}")
        if not self.min_impurity_decrease >= 0:
            raise ValueError(f"min_impurity_decrease must be >= 0, got {self.min_impurity_decrease}")
        if self.max_leaf_nodes is not None and self.max_leaf_nodes < 2:
            raise ValueError(f"max_leaf_nodes must be None or >= 2, got {self.max_leaf_nodes}")


# --------------------------------------------------------------------------- builder


class TreeBuilder:
    """Grows one tree from a :class:`~shmforest.SharedDataset` of binned data.

    Parameters
    ----------
    params : TreeParams

    Examples
    --------
    >>> import numpy as np
    >>> from shmforest import SharedDataset
    >>> from shmforest.tree import Binner
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]]); y = np.array([0, 0, 1, 1], dtype=np.int32)
    >>> b = Binner().fit(X)
    >>> p = TreeParams("gini", None, 2, 1, 1, 0.0, None, 2)
    >>> with SharedDataset(Xb=b.transform(X), thresholds=b.thresholds_, y=y) as ds:
    ...     tree = TreeBuilder(p).build(ds, seed=0)
    >>> tree.node_count, float(tree.threshold[0])
    (3, 1.5)
    """

    def __init__(self, params: TreeParams) -> None:
        self.params = params

    def build(
        self,
        data: SharedDataset,
        seed: int,
        sample_counts: np.ndarray | None = None,
        parallel: bool = False,
        delegate: bool = False,
    ) -> Tree:
        """Grow a tree.

        Parameters
        ----------
        data : SharedDataset
            ``"Xb"`` (uint8 codes, :meth:`Binner.transform`), ``"thresholds"``
            (:attr:`Binner.thresholds_`), ``"y"`` (int class index, or float
            target), optional ``"w"`` (float64 sample weights). Any mapping of
            arrays works; a SharedDataset is what lets subtree tasks run elsewhere.
        seed : int
            Every random draw derives from ``seed`` and the node's position.
        sample_counts : ndarray of int, optional
            Bootstrap count of each sample; the effective weight is
            ``w * sample_counts``. Samples of weight 0 take no part.
        parallel : bool, default False
            Hand independent subtrees to :func:`shmforest.current_executor` as tasks.
        delegate : bool, default False
            With ``parallel``: the caller is not one of the executor's workers
            but waits for them (the process that called ``fit``). It grows the
            first levels, then hands every subtree to the executor and keeps none,
            so the pool's workers start together and the budget is never exceeded.

        Returns
        -------
        Tree
        """
        Xb, y, w = read_inputs(data, self.params, sample_counts)
        n_features = Xb.shape[1]
        self.params.validate(n_features)
        criterion = get_criterion(self.params.criterion, self.params.n_classes)
        samples = np.flatnonzero(w > 0)
        if samples.size == 0:
            raise ValueError("no sample has a positive weight (sample_weight * sample_counts)")
        stats = criterion.node_stats(np.zeros(samples.size, dtype=np.intp), 1, y[samples], w[samples])
        n_bins = bins_per_feature(data["thresholds"], n_features)
        root_weight = float(criterion.weight(stats)[0])
        # Integer weights (bootstrap counts) make every class sum an exact integer:
        # cheaper validity tests, and sums that cannot depend on their order.
        # (The sparse path runs one sum over all k candidate features' copies of a
        # level's samples, hence the bound with n_features.)
        exact = (criterion.is_classification and root_weight * n_features < 2**53
                 and bool(np.all(w == np.floor(w))))
        setup = GrowthSetup(self.params, n_features, n_bins, root_weight, samples.size, exact, bool(parallel))
        root = Level(
            samples, np.array([samples.size]), stats, root_key(seed),
            np.zeros(1, dtype=np.int64), np.array([-1]), np.zeros(1, dtype=np.int8),
        )
        grower = LevelGrower(data, setup, Xb, y, w)
        if self.params.max_leaf_nodes is None:
            records = grower.grow(root, delegate=bool(parallel and delegate))
        else:
            records = grower.grow_best_first(root)
        return records_to_tree(records, n_features)


