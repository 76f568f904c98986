"""Checks of what users hand the estimators: parameters, X, y and sample weights.

Every check raises ``TypeError`` (wrong kind of value) or ``ValueError`` (right kind,
wrong value) with a message that names the argument, what it got and what it takes.
Parameters are checked in ``fit``, never in ``__init__``, as scikit-learn does, so
``set_params`` and cloning see exactly what the user passed.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "check_bool",
    "check_choice",
    "check_int",
    "check_real",
    "check_X",
    "check_y_classification",
    "check_y_regression",
    "check_sample_weight",
    "check_random_state",
    "resolve_max_features",
    "resolve_min_samples_split",
    "resolve_min_samples_leaf",
    "resolve_max_samples",
    "resolve_n_jobs",
    "feature_names_of",
]


def _got(value: Any) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


# --------------------------------------------------------------------------- parameters


def check_bool(name: str, value: Any) -> bool:
    """``value`` as a bool; plain and numpy bools only."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool (True or False); got {_got(value)}")
    return bool(value)


def check_int(
    name: str, value: Any, *, low: int | None = None, high: int | None = None, allow_none: bool = False
) -> int | None:
    """``value`` as an int in ``[low, high]``; ``None`` only when ``allow_none``."""
    takes = _int_range(low, high) + (" or None" if allow_none else "")
    if value is None and allow_none:
        return None
    if not _is_int(value):
        raise TypeError(f"{name} must be {takes}; got {_got(value)}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name} must be {takes}; got {value!r}")
    return value


def _int_range(low: int | None, high: int | None) -> str:
    if low is not None and high is not None:
        return f"an int in [{low}, {high}]"
    if low is not None:
        return f"an int >= {low}"
    return "an int"


def check_real(name: str, value: Any, *, low: float = -math.inf) -> float:
    """``value`` as a finite float ``>= low``."""
    if not _is_real(value):
        raise TypeError(f"{name} must be a float >= {low}; got {_got(value)}")
    value = float(value)
    if not math.isfinite(value) or value < low:
        raise ValueError(f"{name} must be a finite float >= {low}; got {value!r}")
    return value


def check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    """``value`` as one of the strings in ``choices``."""
    takes = " or ".join(repr(c) for c in choices)
    if not isinstance(value, str):
        raise TypeError(f"{name} must be {takes}; got {_got(value)}")
    if value not in choices:
        raise ValueError(f"{name} must be {takes}; got {value!r}")
    return value


def check_random_state(value: Any) -> np.random.RandomState:
    """A ``RandomState`` from ``None``, an int seed, or an existing generator.

    ``RandomState`` instances are used as they are (and so advanced), as in
    scikit-learn; a ``numpy.random.Generator`` seeds a fresh ``RandomState``.
    """
    if value is None:
        return np.random.RandomState()
    if _is_int(value):
        if not 0 <= value < 2**32:
            raise ValueError(f"random_state must be None, an int in [0, 2**32 - 1] or a RandomState; got {value!r}")
        return np.random.RandomState(int(value))
    if isinstance(value, np.random.RandomState):
        return value
    if isinstance(value, np.random.Generator):
        return np.random.RandomState(value.integers(2**32, dtype=np.uint64).item())
    raise TypeError(
        f"random_state must be None, an int in [0, 2**32 - 1], a numpy RandomState or Generator; got {_got(value)}"
    )


def resolve_n_jobs(value: Any) -> int | None:
    """``n_jobs`` as a worker count, or ``None`` for the budget's default (all usable cores)."""
    takes = "None, -1 (all usable cores) or an int >= 1"
    if value is None:
        return None
    if not _is_int(value):
        raise TypeError(f"n_jobs must be {takes}; got {_got(value)}")
    if value == -1:
        return None
    if value < 1:
        raise ValueError(f"n_jobs must be {takes}; got {value!r}")
    return int(value)


def resolve_max_features(value: Any, n_features: int) -> int:
    """``max_features`` as a count of features in ``[1, n_features]``."""
    takes = "'sqrt', 'log2', None, an int in [1, n_features] or a float in (0.0, 1.0]"
    if value is None:
        return n_features
    if isinstance(value, str):
        if value == "sqrt":
            return max(1, int(math.sqrt(n_features)))
        if value == "log2":
            return max(1, int(math.log2(n_features)))
        raise ValueError(f"max_features must be {takes}; got {value!r}")
    if _is_int(value):
        if not 1 <= value <= n_features:
            raise ValueError(f"max_features must be {takes} (n_features={n_features}); got {value!r}")
        return int(value)
    if _is_real(value):
        if not 0.0 < value <= 1.0:
            raise ValueError(f"max_features must be {takes}; got {value!r}")
        return max(1, int(value * n_features))
    raise TypeError(f"max_features must be {takes}; got {_got(value)}")


def resolve_min_samples_leaf(value: Any, n_samples: int) -> int:
    """``min_samples_leaf`` as a count: an int >= 1, or a fraction of the samples."""
    takes = "an int >= 1 or a float in (0.0, 1.0)"
    if _is_int(value):
        if value < 1:
            raise ValueError(f"min_samples_leaf must be {takes}; got {value!r}")
        return int(value)
    if _is_real(value):
        if not 0.0 < value < 1.0:
            raise ValueError(f"min_samples_leaf must be {takes}; got {value!r}")
        return max(1, math.ceil(value * n_samples))
    raise TypeError(f"min_samples_leaf must be {takes}; got {_got(value)}")


def resolve_min_samples_split(value: Any, n_samples: int, min_samples_leaf: int) -> int:
    """``min_samples_split`` as a count, at least ``2 * min_samples_leaf`` as in scikit-learn."""
    takes = "an int >= 2 or a float in (0.0, 1.0]"
    if _is_int(value):
        if value < 2:
            raise ValueError(f"min_samples_split must be {takes}; got {value!r}")
        count = int(value)
    elif _is_real(value):
        if not 0.0 < value <= 1.0:
            raise ValueError(f"min_samples_split must be {takes}; got {value!r}")
        count = max(2, math.ceil(value * n_samples))
    else:
        raise TypeError(f"min_samples_split must be {takes}; got {_got(value)}")
    return max(count, 2 * min_samples_leaf)


def resolve_max_samples(value: Any, n_samples: int, bootstrap: bool) -> int:
    """How many draws each bootstrap sample makes (``n_samples`` for ``None``)."""
    takes = "None, an int in [1, n_samples] or a float in (0.0, 1.0]"
    if value is None:
        return n_samples
    if not bootstrap:
        raise ValueError(f"max_samples can only be set when bootstrap=True; got max_samples={value!r}")
    if _is_int(value):
        if not 1 <= value <= n_samples:
            raise ValueError(f"max_samples must be {takes} (n_samples={n_samples}); got {value!r}")
        return int(value)
    if _is_real(value):
        if not 0.0 < value <= 1.0:
            raise ValueError(f"max_samples must be {takes}; got {value!r}")
        return max(1, round(value * n_samples))
    raise TypeError(f"max_samples must be {takes}; got {_got(value)}")


# --------------------------------------------------------------------------- data


def feature_names_of(X: Any) -> np.ndarray | None:
    """Column names of a data frame whose names are all strings, else ``None``."""
    columns = getattr(X, "columns", None)
    if columns is None:
        return None
    names = [c for c in columns]
    if names and all(isinstance(c, str) for c in names):
        return np.asarray(names, dtype=object)
    return None


def check_X(X: Any, *, name: str = "X") -> np.ndarray:
    """``X`` as a finite 2-D float64 array with at least one row and one column.

    Numeric and bool dtypes are accepted; object arrays only when every value
    converts to a number. A non-finite value is reported by its column.
    """
    if hasattr(X, "toarray") or hasattr(X, "tocsr"):
        raise TypeError(f"{name} is a sparse matrix ({type(X).__name__}); shmforest takes dense arrays")
    try:
        array = np.asarray(X)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a 2-D array-like of numbers; could not convert it: {exc}") from None
    kind = array.dtype.kind
    if kind == "O":
        try:
            array = array.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"{name} must hold numbers (bool, int, uint or float); it holds objects that are not: {exc}"
            ) from None
    elif kind not in "biuf":
        raise TypeError(f"{name} must have a numeric or bool dtype (bool, int, uint, float); got dtype {array.dtype}")
    if array.ndim != 2:
        hint = " Reshape with X.reshape(-1, 1) for one feature or X.reshape(1, -1) for one sample." if array.ndim == 1 else ""
        raise ValueError(f"{name} must be a 2-D array (n_samples, n_features); got a {array.ndim}-D array of shape {array.shape}.{hint}")
    n_samples, n_features = array.shape
    if n_samples == 0 or n_features == 0:
        raise ValueError(
            f"{name} must have at least 1 sample and 1 feature; got shape {array.shape}"
        )
    array = np.ascontiguousarray(array, dtype=np.float64)
    _check_finite(array, name)
    return array


def _check_finite(array: np.ndarray, name: str) -> None:
    # A column sum is finite for almost every finite column; only then is the
    # full element-wise check (a bool copy of X) needed.
    with np.errstate(over="ignore", invalid="ignore"):
        sums = array.sum(axis=0)
    suspect = np.flatnonzero(~np.isfinite(sums))
    for column in suspect:
        values = array[:, column]
        if np.isnan(values).any():
            raise ValueError(f"{name} contains NaN in column {column}; shmforest needs finite values (impute them first)")
        if np.isinf(values).any():
            raise ValueError(f"{name} contains infinity in column {column}; shmforest needs finite values")


def _column_y(y: Any, n_samples: int) -> np.ndarray:
    if y is None:
        raise ValueError("y must be an array-like of targets; got None")
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim == 2:
        raise ValueError(f"y must be 1-D (multi-output targets are not supported); got shape {y.shape}")
    if y.ndim != 1:
        raise ValueError(f"y must be a 1-D array of targets; got a {y.ndim}-D array of shape {y.shape}")
    if y.shape[0] != n_samples:
        raise ValueError(f"X and y must have the same number of samples; X has {n_samples}, y has {y.shape[0]}")
    return y


def check_y_classification(y: Any, n_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """Class labels of any sortable type: ``(classes, class index of each sample as int32)``."""
    y = _column_y(y, n_samples)
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise ValueError("y contains NaN or infinity; class labels must be finite")
    if y.dtype.kind == "O" and any(isinstance(v, float) and math.isnan(v) for v in y):
        raise ValueError("y contains NaN; class labels must not be missing")
    try:
        classes, encoded = np.unique(y, return_inverse=True)
    except TypeError as exc:
        raise TypeError(f"y must hold class labels of one sortable type; got mixed types: {exc}") from None
    return classes, encoded.reshape(-1).astype(np.int32)


def check_y_regression(y: Any, n_samples: int) -> np.ndarray:
    """Finite float64 regression targets."""
    y = _column_y(y, n_samples)
    if y.dtype.kind not in "biuf":
        try:
            y = y.astype(np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"y must hold numbers for regression; got dtype {y.dtype}") from None
    y = np.ascontiguousarray(y, dtype=np.float64)
    if not np.isfinite(y).all():
        raise ValueError("y contains NaN or infinity; regression targets must be finite")
    return y


def check_sample_weight(sample_weight: Any, n_samples: int) -> np.ndarray | None:
    """Non-negative finite float64 weights, one per sample, not all zero; ``None`` passes."""
    if sample_weight is None:
        return None
    if _is_real(sample_weight) or _is_int(sample_weight):
        sample_weight = np.full(n_samples, float(sample_weight))
    w = np.asarray(sample_weight)
    if w.dtype.kind not in "biuf":
        raise TypeError(f"sample_weight must hold numbers; got dtype {w.dtype}")
    if w.ndim != 1:
        raise ValueError(f"sample_weight must be 1-D; got shape {w.shape}")
    if w.shape[0] != n_samples:
        raise ValueError(f"sample_weight must have one weight per sample; X has {n_samples} samples, sample_weight has {w.shape[0]}")
    w = np.ascontiguousarray(w, dtype=np.float64)
    if not np.isfinite(w).all():
        raise ValueError("sample_weight contains NaN or infinity; weights must be finite and >= 0")
    if (w < 0).any():
        raise ValueError(f"sample_weight must be >= 0; got a negative weight {w.min()!r} at sample {int(w.argmin())}")
    if not w.sum() > 0:
        raise ValueError("sample_weight sums to zero; at least one sample needs a positive weight")
    return w
