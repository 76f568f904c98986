"""What is left of input checking once scikit-learn has done its part.

scikit-learn validates types and ranges of parameters (``_parameter_constraints``)
and the data (``validate_data``, ``check_classification_targets``,
``_check_sample_weight``), with the messages users search for. This module only
turns already-valid parameters into the counts the tree builder takes, and holds
the few checks scikit-learn has no wording for.
"""

from __future__ import annotations

import math
from concurrent.futures import Executor as FuturesExecutor
from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.utils._param_validation import Interval, RealNotInt, StrOptions

__all__ = [
    "check_poisson_targets",
    "PARAMETER_CONSTRAINTS",
    "FOREST_CONSTRAINTS",
    "encode_classes",
    "resolve_max_features",
    "resolve_max_samples",
    "resolve_monotonic_cst",
    "resolve_min_samples_leaf",
    "resolve_min_samples_split",
    "resolve_n_jobs",
]

#: Parameters every tree and forest takes, as scikit-learn constrains its own.
PARAMETER_CONSTRAINTS: dict[str, list[Any]] = {
    "max_depth": [Interval(Integral, 1, None, closed="left"), None],
    "min_samples_split": [
        Interval(Integral, 2, None, closed="left"),
        Interval(RealNotInt, 0.0, 1.0, closed="right"),
    ],
    "min_samples_leaf": [
        Interval(Integral, 1, None, closed="left"),
        Interval(RealNotInt, 0.0, 1.0, closed="neither"),
    ],
    "min_weight_fraction_leaf": [Interval(Real, 0.0, 0.5, closed="both")],
    "max_features": [
        Interval(Integral, 1, None, closed="left"),
        Interval(RealNotInt, 0.0, 1.0, closed="right"),
        StrOptions({"sqrt", "log2"}),
        None,
    ],
    "random_state": ["random_state"],
    "max_leaf_nodes": [Interval(Integral, 2, None, closed="left"), None],
    "min_impurity_decrease": [Interval(Real, 0.0, None, closed="left")],
    "ccp_alpha": [Interval(Real, 0.0, None, closed="left")],
    "monotonic_cst": ["array-like", None],
    "max_bins": [Interval(Integral, 2, 256, closed="both")],
    "executor": [str, FuturesExecutor],
    "n_jobs": [Integral, None],
}

#: What forests take beside the trees' parameters.
FOREST_CONSTRAINTS: dict[str, list[Any]] = {
    "n_estimators": [Interval(Integral, 1, None, closed="left")],
    "bootstrap": ["boolean"],
    "oob_score": ["boolean", callable],
    "verbose": ["verbose"],
    "warm_start": ["boolean"],
    "max_samples": [
        None,
        Interval(Integral, 1, None, closed="left"),
        Interval(RealNotInt, 0.0, 1.0, closed="right"),
    ],
}


def resolve_n_jobs(value: int | None) -> int | None:
    """``n_jobs`` as a worker count, or ``None`` for the budget's default (all usable cores).

    ``-1`` means every usable core, as in scikit-learn; other values below 1 are an error
    (joblib's ``n_jobs=-2`` arithmetic is not supported, since the budget is what sizes
    a pool here).
    """
    if value is None or value == -1:
        return None
    if value < 1:
        raise ValueError(f"The 'n_jobs' parameter must be None, -1 or an int >= 1. Got {value!r} instead.")
    return int(value)


def resolve_max_features(value: int | float | str | None, n_features: int) -> int:
    """``max_features`` as a count of features in ``[1, n_features]``, as scikit-learn counts it."""
    if value is None:
        return n_features
    if value == "sqrt":
        return max(1, int(math.sqrt(n_features)))
    if value == "log2":
        return max(1, int(math.log2(n_features)))
    if isinstance(value, Integral):
        if value > n_features:
            raise ValueError(f"max_features must be in (0, n_features={n_features}]; got {value!r}")
        return int(value)
    return max(1, int(float(value) * n_features))


def resolve_min_samples_leaf(value: int | float, n_samples: int) -> int:
    """``min_samples_leaf`` as a count: an int as is, a float as a fraction of the samples."""
    if isinstance(value, Integral):
        return int(value)
    return max(1, math.ceil(float(value) * n_samples))


def resolve_min_samples_split(value: int | float, n_samples: int, min_samples_leaf: int) -> int:
    """``min_samples_split`` as a count, at least ``2 * min_samples_leaf`` as in scikit-learn."""
    count = int(value) if isinstance(value, Integral) else max(2, math.ceil(float(value) * n_samples))
    return max(count, 2 * min_samples_leaf)


def resolve_max_samples(value: int | float | None, n_samples: int, bootstrap: bool) -> int:
    """How many draws each bootstrap sample makes (``n_samples`` for ``None``)."""
    if value is None:
        return n_samples
    if not bootstrap:
        raise ValueError(
            "`max_sample` cannot be set if `bootstrap=False`. Either switch to "
            "`bootstrap=True` or set `max_sample=None`."
        )
    if isinstance(value, Integral):
        if value > n_samples:
            raise ValueError(f"`max_samples` must be <= n_samples={n_samples} but got value {value}")
        return int(value)
    return max(1, round(float(value) * n_samples))


def resolve_monotonic_cst(
    value: Any, n_features: int, n_classes: int | tuple[int, ...], n_outputs: int = 1
) -> tuple[int, ...] | None:
    """``monotonic_cst`` as a tuple of -1/0/1 per feature, checked as scikit-learn checks it.

    ``n_classes``: 0 for regression. Constraints apply to regression and binary
    classification (the positive class's probability), one output.
    """
    if value is None:
        return None
    if n_outputs > 1:
        raise ValueError("Monotonicity constraints are not supported with multiple outputs.")
    cst = np.asarray(value)
    if cst.ndim != 1 or cst.shape[0] != n_features:
        raise ValueError(
            f"monotonic_cst has shape {cst.shape[0] if cst.ndim else cst.shape} but the input data "
            f"X has {n_features} features."
        )
    if not np.all(np.isin(cst, (-1, 0, 1))):
        raise ValueError(f"monotonic_cst must be None or an array-like of -1, 0 or 1, but got {np.unique(cst)}")
    if not isinstance(n_classes, tuple) and n_classes > 2:
        raise ValueError("Monotonicity constraints are not supported with multiclass classification")
    return tuple(int(c) for c in cst)


def check_poisson_targets(y: np.ndarray, forest: bool) -> None:
    """The checks scikit-learn makes of a Poisson regressor's ``y``, in its words (a forest's and a tree's)."""
    if np.any(y < 0):
        raise ValueError("Some value(s) of y are negative which is not allowed for Poisson regression.")
    if np.sum(y) <= 0:
        positive = "strictly positive" if forest else "positive"
        raise ValueError(f"Sum of y is not {positive} which is necessary for Poisson regression.")


def encode_classes(y: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """The sorted labels of each output of ``y`` and each sample's class index, as int32.

    ``y`` of shape (n_samples,): one output, codes of shape (n_samples,); of shape
    (n_samples, n_outputs): codes of that shape in C order, column ``k`` holding
    indices into output ``k``'s labels.
    """
    if y.ndim == 1:
        classes, encoded = np.unique(y, return_inverse=True)
        return [classes], encoded.reshape(-1).astype(np.int32)
    codes = np.empty(y.shape, dtype=np.int32)
    per_output = []
    for k in range(y.shape[1]):
        classes, codes[:, k] = np.unique(y[:, k], return_inverse=True)
        per_output.append(classes)
    return per_output, codes
