"""The tree builder: one interface that grows a tree on any executor.

:class:`TreeBuilder` checks its inputs, makes the root and hands the growth to
:mod:`shmforest.tree.growth`: a whole tree in one compiled call
(:mod:`shmforest.tree.kernels`), or best first when ``max_leaf_nodes`` is set (as
scikit-learn's ``BestFirstTreeBuilder``). With ``parallel=True``, independent
subtrees go to :func:`shmforest.current_executor` as tasks, recursively, under
the process budget; a fixed seed gives the same tree, bit for bit, however the
work is split and wherever it runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from shmforest.tree import kernels
from shmforest.tree.growth import (
    GrowthSetup,
    Inputs,
    OpenNode,
    bin_ranges,
    grow_tree,
    missing_features,
    read_inputs,
)
from shmforest.tree.tree import Tree

__all__ = ["CRITERIA", "TreeBuilder", "TreeParams", "check_criterion", "table_to_tree"]


@dataclass(frozen=True)
class TreeParams:
    """How a tree grows; counts already resolved by the estimator.

    Attributes
    ----------
    criterion : str
        ``"gini"``, ``"entropy"``, ``"squared_error"``, ``"friedman_mse"`` (the same
        splits as ``"squared_error"``, as in scikit-learn since 1.9) or ``"poisson"``
        (half Poisson deviance; targets must be non-negative).
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
    n_classes : int or tuple of int
        Number of classes; 0 for regression. With several outputs, each output's
        number of classes (an int: the same for every output).
    min_weight_fraction_leaf : float
        Each leaf must keep at least this fraction of the tree's total weight (in [0, 0.5]).
    monotonic_cst : tuple of int or None
        Per feature, 1 (increasing), -1 (decreasing) or 0 (free): the constraint on
        the regression value or, for a binary classifier, on the second class's
        probability. Regression and binary classification only.
    splitter : str, default "best"
        ``"best"``: the best boundary of each candidate feature; ``"random"``: one
        random cut of each (extra trees).
    n_outputs : int, default 1
        Targets per sample (multi-output y). A node's impurity is the mean of its
        outputs', a split's decrease the sum of theirs; each output's value (class
        fractions side by side, or means) is stored in the node's value row.
    """

    criterion: str
    max_depth: int | None
    min_samples_split: int
    min_samples_leaf: int
    max_features: int
    min_impurity_decrease: float
    max_leaf_nodes: int | None
    n_classes: int | tuple[int, ...]
    min_weight_fraction_leaf: float = 0.0
    monotonic_cst: tuple[int, ...] | None = None
    splitter: str = "best"
    n_outputs: int = 1

    @property
    def regression(self) -> bool:
        """Whether the trees are regression trees (``n_classes`` 0)."""
        return not isinstance(self.n_classes, tuple) and self.n_classes == 0

    @property
    def class_counts(self) -> tuple[int, ...]:
        """Each output's number of classes; () for regression."""
        if isinstance(self.n_classes, tuple):
            return tuple(int(c) for c in self.n_classes)
        return () if self.n_classes == 0 else (int(self.n_classes),) * self.n_outputs

    @property
    def n_stats(self) -> int:
        """Length of a node's stats: every output's classes, or (w, wy_1..k, wyy_1..k)."""
        return 1 + 2 * self.n_outputs if self.regression else sum(self.class_counts)

    def check_outputs(self) -> None:
        """Raise ``ValueError`` unless ``n_outputs`` and ``n_classes`` agree (what reading ``y`` needs)."""
        if self.n_outputs < 1:
            raise ValueError(f"n_outputs must be >= 1, got {self.n_outputs}")
        if isinstance(self.n_classes, tuple) and len(self.n_classes) != self.n_outputs:
            raise ValueError(
                f"n_classes must hold one count per output ({self.n_outputs}), got {len(self.n_classes)}: "
                f"{self.n_classes}"
            )

    def validate(self, n_features: int) -> None:
        """Raise ``ValueError`` naming the first parameter out of range."""
        self.check_outputs()
        for count in self.class_counts or (0,):
            check_criterion(self.criterion, count)
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
        if not 0.0 <= self.min_weight_fraction_leaf <= 0.5:
            raise ValueError(f"min_weight_fraction_leaf must be in [0, 0.5], got {self.min_weight_fraction_leaf}")
        if self.monotonic_cst is not None:
            if len(self.monotonic_cst) != n_features or not set(self.monotonic_cst) <= {-1, 0, 1}:
                raise ValueError(
                    f"monotonic_cst must hold -1, 0 or 1 for each of the {n_features} features, "
                    f"got {self.monotonic_cst}"
                )
            if self.n_outputs > 1:
                raise ValueError("Monotonicity constraints are not supported with multiple outputs.")
            if self.regression is False and self.class_counts[0] > 2:
                raise ValueError("Monotonicity constraints are not supported with multiclass classification")
        if self.max_leaf_nodes is not None and self.max_leaf_nodes < 2:
            raise ValueError(f"max_leaf_nodes must be None or >= 2, got {self.max_leaf_nodes}")
        if self.splitter not in SPLITTERS:
            raise ValueError(f"splitter must be one of {sorted(SPLITTERS)}, got {self.splitter!r}")


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
        data: Mapping[str, np.ndarray],
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
            target; shape (n_samples, n_outputs) with several outputs, each
            output's class index its own), optional ``"w"`` (float64 sample weights), ``"missing"``
            (:attr:`Binner.missing_`, where X held NaN) and ``"bin_ranges"`` (:attr:`Binner.bin_ranges_`,
            where extra trees draw their thresholds). Any mapping of
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
        params = self.params
        Xb, y, w = read_inputs(data, params, sample_counts)
        n_features = Xb.shape[1]
        params.validate(n_features)
        samples = np.flatnonzero(w > 0).astype(np.int64)
        if samples.size == 0:
            raise ValueError("no sample has a positive weight (sample_weight * sample_counts)")
        random_cuts = params.splitter == "random"
        inputs = Inputs.make(
            Xb, y, w, data["thresholds"], params.class_counts, missing_features(data), bin_ranges(data), random_cuts
        )
        regression = params.regression
        stats = kernels.node_stats(
            samples, inputs.yc, inputs.yr, inputs.w, params.n_stats, regression, params.n_outputs
        )
        root_weight = float(stats[0] if regression else stats.sum() / params.n_outputs)
        setup = GrowthSetup.make(params, n_features, int(inputs.offs[-1]), root_weight, samples.size, bool(parallel))
        root = OpenNode(samples, kernels.root_key(seed), 0, stats, None)
        ints, floats = grow_tree(data, setup, inputs, root, delegate=bool(parallel and delegate))
        return table_to_tree(ints, floats, n_features)


CRITERIA = ("gini", "entropy", "squared_error", "friedman_mse", "poisson")
#: The criteria of regression trees.
REGRESSION_CRITERIA = ("squared_error", "friedman_mse", "poisson")
SPLITTERS = ("best", "random")


def check_criterion(name: str, n_classes: int) -> None:
    """Raise ``ValueError`` for an unknown criterion, or one that does not fit ``n_classes`` (0: regression)."""
    if name not in CRITERIA:
        raise ValueError(f"criterion must be one of {sorted(CRITERIA)}, got {name!r}")
    if name not in REGRESSION_CRITERIA and n_classes < 1:
        raise ValueError(f"criterion {name!r} is for classification and needs n_classes >= 1, got {n_classes}")
    if name in REGRESSION_CRITERIA and n_classes != 0:
        raise ValueError(f"criterion {name!r} is for regression and needs n_classes == 0, got {n_classes}")


def table_to_tree(ints: np.ndarray, floats: np.ndarray, n_features: int) -> Tree:
    """The Tree of a node table (``kernels``: left, right, feature, n, missing_go_to_left | threshold, weight,
    impurity, value...)."""
    return Tree(
        ints[:, 0],
        ints[:, 1],
        ints[:, 2],
        floats[:, 0],
        floats[:, 3:],
        ints[:, 3],
        floats[:, 1],
        floats[:, 2],
        n_features,
        # The kernels write a valid preorder table: checking it again is pure cost on small trees.
        check=False,
        missing_go_to_left=ints[:, 4],
    )
