"""Quantile regression forests (Meinshausen, 2006), with the interface of the
``quantile-forest`` package so that its users can switch.

The forest grows as :class:`~shmforest.RandomForestRegressor` does. At the end of
fit, every tree's in-bag training rows are sent down that tree once and kept by
leaf (:class:`~shmforest.tree.leaf_samples.LeafSamples`, with their bootstrap counts
times sample weights as weights); a prediction weighs each training target by its
share of the leaves the row reaches, and reads quantiles off that distribution.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor
from numbers import Real
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike
from sklearn.utils._param_validation import Interval, StrOptions

from shmforest.estimators.base import predict_threads
from shmforest.estimators.batch import DEFAULT_EXECUTOR, Targets, TreePlan, TreeResults
from shmforest.estimators.classes import RandomForestRegressor
from shmforest.tree.leaf_samples import LeafSamples
from shmforest.tree.tasks import bootstrap_counts

__all__ = ["RandomForestQuantileRegressor"]


class RandomForestQuantileRegressor(RandomForestRegressor):
    """A random forest that predicts quantiles of ``y`` given ``X`` (a quantile regression forest).

    Parameters
    ----------
    n_estimators : int, default 100
    default_quantiles : float, list of float, "mean" or None, default 0.5
        What :meth:`predict` returns when it is given no ``quantiles``; ``None`` is "mean".
    criterion, max_depth, min_samples_split, min_samples_leaf, min_weight_fraction_leaf, max_features, max_leaf_nodes
    min_impurity_decrease, bootstrap, oob_score, n_jobs, random_state, verbose, warm_start
    ccp_alpha, max_samples, monotonic_cst, max_bins, executor
        As in :class:`~shmforest.RandomForestRegressor`.

    Attributes
    ----------
    leaf_samples_ : LeafSamples
        The in-bag training samples of every leaf, with their weights.
    y_train_ : ndarray of float64
        The training targets.

    Notes
    -----
    Each leaf keeps all of its in-bag samples, weighted (Meinshausen's estimator;
    ``quantile-forest`` with ``max_samples_leaf=None`` and ``weighted_leaves=True``).
    ``quantile-forest``'s default keeps one sample per leaf instead. Quantiles are
    read off the weighted distribution with linear interpolation between the
    midpoints of the samples' weights (:mod:`shmforest.tree.leaf_samples`).
    ``monotonic_cst`` constrains the trees, so the ``"mean"`` prediction; quantiles read
    off the leaves' samples need not follow it. ``y`` is one output: a 2-D ``y`` of
    several columns is refused (fit one forest per output).

    Examples
    --------
    >>> qrf = RandomForestQuantileRegressor(random_state=0).fit(X, y)   # doctest: +SKIP
    >>> low, high = qrf.predict(X_new, quantiles=[0.05, 0.95]).T         # doctest: +SKIP
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **RandomForestRegressor._parameter_constraints,
        "default_quantiles": [Interval(Real, 0, 1, closed="both"), "array-like", StrOptions({"mean"}), None],
    }

    def __init__(
        self,
        n_estimators: int = 100,
        *,
        default_quantiles: float | list[float] | str | None = 0.5,
        criterion: str = "squared_error",
        max_depth: int | None = None,
        min_samples_split: int | float = 2,
        min_samples_leaf: int | float = 1,
        min_weight_fraction_leaf: float = 0.0,
        max_features: int | float | str | None = 1.0,
        max_leaf_nodes: int | None = None,
        min_impurity_decrease: float = 0.0,
        bootstrap: bool = True,
        oob_score: bool | Callable[[Any, Any], float] = False,
        n_jobs: int | None = None,
        random_state: int | np.random.RandomState | None = None,
        verbose: int = 0,
        warm_start: bool = False,
        ccp_alpha: float = 0.0,
        monotonic_cst: ArrayLike | None = None,
        max_samples: int | float | None = None,
        max_bins: int = 256,
        executor: str | Executor = DEFAULT_EXECUTOR,
    ) -> None:
        super().__init__(
            n_estimators,
            criterion=criterion,
            max_depth=max_depth,
            min_samples_split=min_samples_split,
            min_samples_leaf=min_samples_leaf,
            min_weight_fraction_leaf=min_weight_fraction_leaf,
            max_features=max_features,
            max_leaf_nodes=max_leaf_nodes,
            min_impurity_decrease=min_impurity_decrease,
            bootstrap=bootstrap,
            oob_score=oob_score,
            n_jobs=n_jobs,
            random_state=random_state,
            verbose=verbose,
            warm_start=warm_start,
            ccp_alpha=ccp_alpha,
            monotonic_cst=monotonic_cst,
            max_samples=max_samples,
            max_bins=max_bins,
            executor=executor,
        )
        self.default_quantiles = default_quantiles

    def _plan(self, targets: Targets) -> TreePlan:
        if targets.n_outputs > 1:
            raise ValueError(
                f"{type(self).__name__} takes one target per sample, y of shape (n_samples,); got y of "
                f"shape {targets.y.shape} ({targets.n_outputs} outputs). Fit one forest per output."
            )
        return super()._plan(targets)

    def _assemble(self, plan: TreePlan, results: TreeResults, targets: Targets) -> None:
        super()._assemble(plan, results, targets)
        assert targets.X is not None and targets.values is not None
        n = targets.n_samples
        weights = []
        for est in self.estimators_:
            w = bootstrap_counts(est.random_state, n, plan.n_draws).astype(np.float64) if plan.bootstrap else np.ones(n)
            weights.append(w if targets.sample_weight is None else w * targets.sample_weight)
        self.leaf_samples_ = LeafSamples(self._trees, targets.X, weights)
        self.y_train_ = targets.values.copy()

    def predict(self, X: ArrayLike, quantiles: float | list[float] | str | None = None) -> np.ndarray:
        """Quantiles of ``y`` given each row of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        quantiles : float, list of float, "mean" or None
            Each in [0, 1]; "mean" gives the forest's mean prediction; ``None`` uses
            ``default_quantiles``.

        Returns
        -------
        ndarray of shape (n_samples,) for one quantile or "mean", else (n_samples, n_quantiles)
        """
        if quantiles is None:
            quantiles = "mean" if self.default_quantiles is None else self.default_quantiles
        if isinstance(quantiles, str) and quantiles == "mean":
            return super().predict(X)
        q = _check_quantiles(quantiles)
        Xa = self._check_X_predict(X)
        leaves = self._predictor().apply(Xa, predict_threads(self.n_jobs))
        out = self.leaf_samples_.quantiles(leaves, self.y_train_, q)
        return out[:, 0] if out.shape[1] == 1 else out

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = False  # quantiles of one target
        return tags


def _check_quantiles(quantiles: Any) -> np.ndarray:
    """``quantiles`` as a 1-d float array in [0, 1], or a ``ValueError`` naming the parameter."""
    try:
        q = np.asarray(quantiles, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ValueError(
            f"The 'quantiles' parameter must be a float in [0, 1], a list of them, 'mean' or None; got {quantiles!r}"
        ) from None
    bad = q[~((q >= 0) & (q <= 1))]
    if q.size == 0 or bad.size:
        raise ValueError(f"The 'quantiles' parameter must be floats in the range [0, 1]; got {quantiles!r}")
    return q
