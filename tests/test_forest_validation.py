"""Bad input to the estimators: the right exception, with a message naming what was wrong."""

from __future__ import annotations

import numpy as np
import pytest

from shmforest.errors import NotFittedError, ShmforestError
from shmforest.forest import (
    DecisionTreeClassifier,
    DecisionTreeRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)

ESTIMATORS = [RandomForestClassifier, RandomForestRegressor, DecisionTreeClassifier, DecisionTreeRegressor]
FORESTS = [RandomForestClassifier, RandomForestRegressor]


def _fast(cls, **params):
    """A small, serial version of ``cls`` so each bad-input case fails (or passes) quickly."""
    base = {"executor": "serial", "random_state": 0}
    if cls in FORESTS:
        base["n_estimators"] = 3
    base.update(params)
    return cls(**base)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 4))
    y = (X[:, 0] > 0).astype(int)
    return X, y


# ----------------------------------------------------------------- parameters

# (estimator classes, parameters, exception, fragments the message must contain)
PARAM_CASES = [
    (FORESTS, {"n_estimators": 0}, ValueError, ["n_estimators", "0", ">= 1"]),
    (FORESTS, {"n_estimators": 2.5}, TypeError, ["n_estimators", "2.5", "int"]),
    (FORESTS, {"n_estimators": "10"}, TypeError, ["n_estimators", "'10'", "int"]),
    ([RandomForestClassifier, DecisionTreeClassifier], {"criterion": "mse"}, ValueError, ["criterion", "'mse'", "'gini'", "'entropy'"]),
    ([RandomForestRegressor, DecisionTreeRegressor], {"criterion": "gini"}, ValueError, ["criterion", "'gini'", "'squared_error'"]),
    (ESTIMATORS, {"criterion": None}, TypeError, ["criterion", "None"]),
    (ESTIMATORS, {"max_depth": 0}, ValueError, ["max_depth", "0", ">= 1", "None"]),
    (ESTIMATORS, {"max_depth": 2.5}, TypeError, ["max_depth", "2.5"]),
    (ESTIMATORS, {"min_samples_split": 1}, ValueError, ["min_samples_split", "1", ">= 2", "(0.0, 1.0]"]),
    (ESTIMATORS, {"min_samples_split": 1.5}, ValueError, ["min_samples_split", "1.5"]),
    (ESTIMATORS, {"min_samples_split": "2"}, TypeError, ["min_samples_split", "'2'"]),
    (ESTIMATORS, {"min_samples_leaf": 0}, ValueError, ["min_samples_leaf", "0", ">= 1"]),
    (ESTIMATORS, {"min_samples_leaf": 1.0}, ValueError, ["min_samples_leaf", "1.0", "(0.0, 1.0)"]),
    (ESTIMATORS, {"max_features": "auto"}, ValueError, ["max_features", "'auto'", "'sqrt'", "'log2'"]),
    (ESTIMATORS, {"max_features": 0}, ValueError, ["max_features", "0"]),
    (ESTIMATORS, {"max_features": 5}, ValueError, ["max_features", "5", "n_features=4"]),
    (ESTIMATORS, {"max_features": 1.5}, ValueError, ["max_features", "1.5", "(0.0, 1.0]"]),
    (ESTIMATORS, {"max_features": [1]}, TypeError, ["max_features", "[1]"]),
    (ESTIMATORS, {"max_leaf_nodes": 1}, ValueError, ["max_leaf_nodes", "1", ">= 2"]),
    (ESTIMATORS, {"min_impurity_decrease": -0.1}, ValueError, ["min_impurity_decrease", "-0.1", ">= 0"]),
    (ESTIMATORS, {"min_impurity_decrease": "0"}, TypeError, ["min_impurity_decrease", "'0'"]),
    (ESTIMATORS, {"random_state": -1}, ValueError, ["random_state", "-1"]),
    (ESTIMATORS, {"random_state": "seed"}, TypeError, ["random_state", "'seed'"]),
    (ESTIMATORS, {"max_bins": 1}, ValueError, ["max_bins", "1", "[2, 256]"]),
    (ESTIMATORS, {"max_bins": 257}, ValueError, ["max_bins", "257", "[2, 256]"]),
    (ESTIMATORS, {"executor": 3}, TypeError, ["executor", "3", "name", "Executor"]),
    (ESTIMATORS, {"executor": "no-such-executor"}, ValueError, ["executor", "'no-such-executor'", "serial"]),
    (ESTIMATORS, {"n_jobs": 0}, ValueError, ["n_jobs", "0", "-1", ">= 1"]),
    (ESTIMATORS, {"n_jobs": -2}, ValueError, ["n_jobs", "-2"]),
    (ESTIMATORS, {"n_jobs": 1.5}, TypeError, ["n_jobs", "1.5"]),
    (FORESTS, {"bootstrap": "yes"}, TypeError, ["bootstrap", "'yes'", "bool"]),
    (FORESTS, {"warm_start": None}, TypeError, ["warm_start", "None", "bool"]),
    (FORESTS, {"oob_score": "yes"}, TypeError, ["oob_score", "'yes'", "bool", "callable"]),
    (FORESTS, {"oob_score": True, "bootstrap": False}, ValueError, ["oob_score", "bootstrap=True"]),
    (FORESTS, {"max_samples": 0}, ValueError, ["max_samples", "0", "[1, n_samples]"]),
    (FORESTS, {"max_samples": 41}, ValueError, ["max_samples", "41", "n_samples=40"]),
    (FORESTS, {"max_samples": 1.5}, ValueError, ["max_samples", "1.5", "(0.0, 1.0]"]),
    (FORESTS, {"max_samples": 0.5, "bootstrap": False}, ValueError, ["max_samples", "bootstrap=True"]),
    (FORESTS, {"max_samples": "half"}, TypeError, ["max_samples", "'half'"]),
    (FORESTS, {"verbose": -1}, ValueError, ["verbose", "-1", ">= 0"]),
]


def _param_cases():
    for classes, params, exc, fragments in PARAM_CASES:
        for cls in classes:
            label = ",".join(f"{k}={v!r}" for k, v in params.items())
            yield pytest.param(cls, params, exc, fragments, id=f"{cls.__name__}-{label}")


@pytest.mark.parametrize("cls, params, exc, fragments", list(_param_cases()))
def test_bad_parameter_is_reported_in_fit(data, cls, params, exc, fragments):
    X, y = data
    model = _fast(cls, **params)  # __init__ only stores, as in scikit-learn
    assert all(getattr(model, k) is v for k, v in params.items())
    with pytest.raises(exc) as info:
        model.fit(X, y)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} missing from {message!r}"
    assert not hasattr(model, "estimators_") and not hasattr(model, "tree_")


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_bad_parameter_fails_before_placing_data(data, cls, monkeypatch):
    import shmforest._fitting as fitting

    placed = []
    monkeypatch.setattr(fitting, "SharedDataset", lambda *a, **k: placed.append(1))
    with pytest.raises(ValueError):
        _fast(cls, max_depth=0).fit(*data)
    assert placed == []


# ----------------------------------------------------------------- data

X_OK = np.arange(40.0).reshape(10, 4)
Y_OK = np.array([0, 1] * 5)


def _with(value, row, column):
    X = X_OK.copy()
    X[row, column] = value
    return X


# (X, y, sample_weight, exception, fragments)
DATA_CASES = {
    "nan-in-column-2": (_with(np.nan, 3, 2), Y_OK, None, ValueError, ["X", "NaN", "column 2"]),
    "inf-in-column-1": (_with(np.inf, 0, 1), Y_OK, None, ValueError, ["X", "infinity", "column 1"]),
    "neg-inf-in-column-3": (_with(-np.inf, 9, 3), Y_OK, None, ValueError, ["X", "infinity", "column 3"]),
    "1d-X": (np.arange(10.0), Y_OK, None, ValueError, ["X", "2-D", "1-D", "reshape"]),
    "3d-X": (np.zeros((10, 2, 2)), Y_OK, None, ValueError, ["X", "2-D", "3-D"]),
    "empty-X": (np.zeros((0, 4)), np.zeros(0), None, ValueError, ["X", "at least 1 sample", "(0, 4)"]),
    "no-features": (np.zeros((10, 0)), Y_OK, None, ValueError, ["X", "1 feature", "(10, 0)"]),
    "string-X": (np.array([["a", "b"]] * 10), Y_OK, None, TypeError, ["X", "dtype", "<U1", "numeric"]),
    "object-X": (np.array([[1, "b"]] * 10, dtype=object), Y_OK, None, TypeError, ["X", "numbers"]),
    "complex-X": (X_OK + 1j, Y_OK, None, TypeError, ["X", "complex128"]),
    "datetime-X": (np.zeros((10, 2), dtype="datetime64[s]"), Y_OK, None, TypeError, ["X", "datetime64"]),
    "y-too-short": (X_OK, Y_OK[:9], None, ValueError, ["X has 10", "y has 9"]),
    "y-two-columns": (X_OK, np.zeros((10, 2)), None, ValueError, ["y", "multi-output", "(10, 2)"]),
    "y-3d": (X_OK, np.zeros((10, 1, 1)), None, ValueError, ["y", "3-D"]),
    "y-none": (X_OK, None, None, ValueError, ["y", "None"]),
    "weight-negative": (X_OK, Y_OK, np.r_[1.0, -2.0, np.ones(8)], ValueError, ["sample_weight", ">= 0", "-2.0", "sample 1"]),
    "weight-short": (X_OK, Y_OK, np.ones(9), ValueError, ["sample_weight", "10", "9"]),
    "weight-nan": (X_OK, Y_OK, np.r_[np.nan, np.ones(9)], ValueError, ["sample_weight", "NaN"]),
    "weight-2d": (X_OK, Y_OK, np.ones((10, 1)), ValueError, ["sample_weight", "1-D", "(10, 1)"]),
    "weight-all-zero": (X_OK, Y_OK, np.zeros(10), ValueError, ["sample_weight", "zero"]),
    "weight-strings": (X_OK, Y_OK, np.array(["1"] * 10), TypeError, ["sample_weight", "dtype"]),
}


@pytest.mark.parametrize("cls", [RandomForestClassifier, DecisionTreeRegressor])
@pytest.mark.parametrize("X, y, sample_weight, exc, fragments", list(DATA_CASES.values()), ids=list(DATA_CASES))
def test_bad_data_is_reported(cls, X, y, sample_weight, exc, fragments):
    model = _fast(cls)
    with pytest.raises(exc) as info:
        model.fit(X, y, sample_weight=sample_weight)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} missing from {message!r}"


@pytest.mark.parametrize(
    "y, exc, fragment",
    [
        (np.r_[np.nan, np.ones(9)], ValueError, "NaN"),
        (np.array([1, "a"] * 5, dtype=object), TypeError, "mixed types"),
    ],
    ids=["nan-label", "mixed-label-types"],
)
def test_bad_class_labels(y, exc, fragment):
    with pytest.raises(exc, match=fragment):
        _fast(DecisionTreeClassifier).fit(X_OK, y)


@pytest.mark.parametrize(
    "y, exc, fragment",
    [
        (np.r_[np.inf, np.ones(9)], ValueError, "infinity"),
        (np.array(["a", "b"] * 5), TypeError, "numbers"),
    ],
    ids=["inf-target", "string-target"],
)
def test_bad_regression_targets(y, exc, fragment):
    with pytest.raises(exc, match=fragment):
        _fast(RandomForestRegressor).fit(X_OK, y)


def test_large_finite_values_are_accepted():
    # Column sums overflow to inf here; the check must look at the values, not the sum.
    X = np.full((10, 2), np.finfo(np.float64).max)
    X[::2, 0] = 0.0
    model = _fast(DecisionTreeClassifier).fit(X, Y_OK)
    assert model.predict(X).shape == (10,)


@pytest.mark.parametrize(
    "X",
    [
        pytest.param(X_OK > 20, id="bool"),
        pytest.param(X_OK.astype(np.int8), id="int8"),
        pytest.param(X_OK.astype(np.uint16), id="uint16"),
        pytest.param(X_OK.astype(np.float32), id="float32"),
        pytest.param(X_OK.astype(object), id="object-numbers"),
        pytest.param(X_OK.tolist(), id="nested-lists"),
        pytest.param(np.asfortranarray(X_OK), id="fortran-order"),
    ],
)
def test_numeric_inputs_of_every_kind_fit(X):
    model = _fast(RandomForestClassifier).fit(X, Y_OK)
    assert model.predict(X).shape == (10,)


# ----------------------------------------------------------------- at predict


@pytest.fixture(scope="module")
def fitted(data):
    X, y = data
    return {cls: _fast(cls).fit(X, y) for cls in ESTIMATORS}


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("n_features", [3, 5])
def test_predict_with_another_feature_count(fitted, cls, n_features):
    with pytest.raises(ValueError, match=f"X has {n_features} features, but {cls.__name__} was fitted with 4"):
        fitted[cls].predict(np.zeros((2, n_features)))


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_predict_checks_values(fitted, cls):
    X = np.zeros((3, 4))
    X[1, 3] = np.nan
    with pytest.raises(ValueError, match="column 3"):
        fitted[cls].predict(X)
    with pytest.raises(ValueError, match="2-D"):
        fitted[cls].predict(np.zeros(4))


METHODS = ["predict", "predict_proba", "predict_log_proba", "apply", "score"]


@pytest.mark.parametrize(
    "cls, method",
    [(cls, m) for cls in ESTIMATORS for m in METHODS if hasattr(cls, m)],
)
def test_use_before_fit_raises_not_fitted(cls, method):
    model = cls()
    fn = getattr(model, method)
    args = (np.zeros((2, 4)), np.zeros(2)) if method == "score" else (np.zeros((2, 4)),)
    with pytest.raises(NotFittedError, match=f"This {cls.__name__} instance is not fitted yet") as info:
        fn(*args)
    assert isinstance(info.value, ValueError) and isinstance(info.value, AttributeError)
    assert isinstance(info.value, ShmforestError)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_fitted_attributes_absent_before_fit(cls):
    model = cls()
    with pytest.raises(NotFittedError):
        model.feature_importances_
    assert not hasattr(model, "feature_importances_")  # AttributeError, as scikit-learn users expect


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_score_checks_the_length_of_y(fitted, cls):
    with pytest.raises(ValueError, match="X has 3 samples, y has shape"):
        fitted[cls].score(np.zeros((3, 4)), np.zeros(2))
