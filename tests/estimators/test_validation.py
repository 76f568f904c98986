"""Bad input to the estimators: scikit-learn's exception and wording, naming what was wrong."""

from __future__ import annotations

import numpy as np
import pytest
from estimator_support import ESTIMATORS, FORESTS
from estimator_support import small as _fast
from sklearn.exceptions import NotFittedError

import shmforest.estimators.batch as batch
from shmforest import DecisionTreeClassifier, DecisionTreeRegressor, RandomForestClassifier, RandomForestRegressor


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 4))
    y = (X[:, 0] > 0).astype(int)
    return X, y


# ----------------------------------------------------------------- parameters

# (estimator classes, parameters, exception, fragments the message must contain)
PARAM_CASES = [
    (FORESTS, {"n_estimators": 0}, ValueError, ["'n_estimators' parameter", "int in the range [1, inf)", "Got 0"]),
    (FORESTS, {"n_estimators": 2.5}, TypeError, ["'n_estimators' parameter", "Got 2.5"]),
    (FORESTS, {"n_estimators": "10"}, TypeError, ["'n_estimators' parameter", "Got '10'"]),
    (
        [RandomForestClassifier, DecisionTreeClassifier],
        {"criterion": "mse"},
        ValueError,
        ["'criterion' parameter", "'gini'", "Got 'mse'"],
    ),
    (
        [RandomForestRegressor, DecisionTreeRegressor],
        {"criterion": "gini"},
        ValueError,
        ["'criterion' parameter", "'squared_error'", "Got 'gini'"],
    ),
    (ESTIMATORS, {"criterion": None}, TypeError, ["'criterion' parameter", "Got None"]),
    (ESTIMATORS, {"max_depth": 0}, ValueError, ["'max_depth' parameter", "[1, inf)", "None", "Got 0"]),
    (ESTIMATORS, {"max_depth": 2.5}, TypeError, ["'max_depth' parameter", "Got 2.5"]),
    (
        ESTIMATORS,
        {"min_samples_split": 1},
        ValueError,
        ["'min_samples_split' parameter", "[2, inf)", "(0.0, 1.0]", "Got 1"],
    ),
    (ESTIMATORS, {"min_samples_split": 1.5}, ValueError, ["'min_samples_split' parameter", "Got 1.5"]),
    (ESTIMATORS, {"min_samples_split": "2"}, TypeError, ["'min_samples_split' parameter", "Got '2'"]),
    (ESTIMATORS, {"min_samples_leaf": 0}, ValueError, ["'min_samples_leaf' parameter", "[1, inf)", "Got 0"]),
    (ESTIMATORS, {"min_samples_leaf": 1.0}, ValueError, ["'min_samples_leaf' parameter", "(0.0, 1.0)", "Got 1.0"]),
    (ESTIMATORS, {"max_features": "auto"}, ValueError, ["'max_features' parameter", "'sqrt'", "'log2'", "Got 'auto'"]),
    (ESTIMATORS, {"max_features": 0}, ValueError, ["'max_features' parameter", "Got 0"]),
    (ESTIMATORS, {"max_features": 5}, ValueError, ["max_features", "5", "n_features=4"]),
    (ESTIMATORS, {"max_features": 1.5}, ValueError, ["'max_features' parameter", "(0.0, 1.0]", "Got 1.5"]),
    (ESTIMATORS, {"max_features": [1]}, TypeError, ["'max_features' parameter", "Got [1]"]),
    (ESTIMATORS, {"max_leaf_nodes": 1}, ValueError, ["'max_leaf_nodes' parameter", "[2, inf)", "Got 1"]),
    (
        ESTIMATORS,
        {"min_impurity_decrease": -0.1},
        ValueError,
        ["'min_impurity_decrease' parameter", "[0.0, inf)", "Got -0.1"],
    ),
    (ESTIMATORS, {"min_impurity_decrease": "0"}, TypeError, ["'min_impurity_decrease' parameter", "Got '0'"]),
    (ESTIMATORS, {"random_state": "seed"}, TypeError, ["'random_state' parameter", "Got 'seed'"]),
    (ESTIMATORS, {"max_bins": 1}, ValueError, ["'max_bins' parameter", "[2, 256]", "Got 1"]),
    (ESTIMATORS, {"max_bins": 257}, ValueError, ["'max_bins' parameter", "[2, 256]", "Got 257"]),
    (ESTIMATORS, {"executor": 3}, TypeError, ["'executor' parameter", "str", "Executor", "Got 3"]),
    (ESTIMATORS, {"executor": "no-such-executor"}, ValueError, ["executor", "'no-such-executor'", "serial"]),
    (ESTIMATORS, {"n_jobs": 0}, ValueError, ["'n_jobs' parameter", "-1", ">= 1", "Got 0"]),
    (ESTIMATORS, {"n_jobs": -2}, ValueError, ["'n_jobs' parameter", "Got -2"]),
    (ESTIMATORS, {"n_jobs": 1.5}, TypeError, ["'n_jobs' parameter", "Got 1.5"]),
    (FORESTS, {"bootstrap": "yes"}, TypeError, ["'bootstrap' parameter", "bool", "Got 'yes'"]),
    (FORESTS, {"warm_start": None}, TypeError, ["'warm_start' parameter", "bool", "Got None"]),
    (FORESTS, {"oob_score": "yes"}, TypeError, ["'oob_score' parameter", "bool", "callable", "Got 'yes'"]),
    (FORESTS, {"oob_score": True, "bootstrap": False}, ValueError, ["Out of bag", "bootstrap=True"]),
    (FORESTS, {"max_samples": 0}, ValueError, ["'max_samples' parameter", "Got 0"]),
    (FORESTS, {"max_samples": 41, "bootstrap": True}, ValueError, ["max_samples", "41", "n_samples=40"]),
    (FORESTS, {"max_samples": 1.5}, ValueError, ["'max_samples' parameter", "(0.0, 1.0]", "Got 1.5"]),
    (FORESTS, {"max_samples": 0.5, "bootstrap": False}, ValueError, ["max_sample", "bootstrap=True"]),
    (FORESTS, {"max_samples": "half"}, TypeError, ["'max_samples' parameter", "Got 'half'"]),
    (FORESTS, {"verbose": -1}, ValueError, ["'verbose' parameter", "Got -1"]),
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
    placed = []
    monkeypatch.setattr(batch, "SharedDataset", lambda *a, **k: placed.append(1))
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


# (X, y, sample_weight, exception, fragments): scikit-learn's own messages.
DATA_CASES = {
    # NaN is a missing value (tests/estimators/test_missing.py); infinity is refused, its column named.
    "inf-in-X": (_with(np.inf, 0, 1), Y_OK, None, ValueError, ["Input X contains infinity", "column 1"]),
    "1d-X": (np.arange(10.0), Y_OK, None, ValueError, ["Expected 2D array, got 1D array", "reshape"]),
    "3d-X": (np.zeros((10, 2, 2)), Y_OK, None, ValueError, ["Found array with dim 3"]),
    "empty-X": (np.zeros((0, 4)), np.zeros(0), None, ValueError, ["0 sample(s)", "(0, 4)", "minimum of 1 is required"]),
    "no-features": (np.zeros((10, 0)), Y_OK, None, ValueError, ["0 feature(s)", "(10, 0)", "minimum of 1 is required"]),
    "string-X": (np.array([["a", "b"]] * 10), Y_OK, None, ValueError, ["could not convert string to float"]),
    "complex-X": (X_OK + 1j, Y_OK, None, ValueError, ["Complex data not supported"]),
    "y-too-short": (X_OK, Y_OK[:9], None, ValueError, ["inconsistent numbers of samples", "[10, 9]"]),
    # A 2-D y is several outputs (tests/estimators/test_multi_output_y.py); what else it can be is refused.
    "y-three-dims": (X_OK, np.zeros((10, 2, 2)), None, ValueError, ["Found array with dim 3"]),
    "y-no-outputs": (X_OK, np.zeros((10, 0)), None, ValueError, ["0 feature(s)", "(10, 0)"]),
    "y-nan-in-an-output": (X_OK, np.c_[Y_OK, np.r_[np.nan, np.ones(9)]], None, ValueError, ["Input y contains NaN"]),
    "y-none": (X_OK, None, None, ValueError, ["requires y to be passed", "None"]),
    "weight-negative": (
        X_OK,
        Y_OK,
        np.r_[1.0, -2.0, np.ones(8)],
        ValueError,
        ["Negative values in data passed to `sample_weight`"],
    ),
    "weight-short": (X_OK, Y_OK, np.ones(9), ValueError, ["sample_weight.shape == (9,)", "(10,)"]),
    "weight-nan": (X_OK, Y_OK, np.r_[np.nan, np.ones(9)], ValueError, ["sample_weight", "NaN"]),
    "weight-2d": (X_OK, Y_OK, np.ones((10, 1)), ValueError, ["Sample weights must be 1D"]),
    "weight-all-zero": (
        X_OK,
        Y_OK,
        np.zeros(10),
        ValueError,
        ["Sample weights must contain at least one non-zero number"],
    ),
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


def test_continuous_target_for_a_classifier():
    with pytest.raises(ValueError, match="Unknown label type: continuous"):
        _fast(DecisionTreeClassifier).fit(X_OK, np.linspace(0, 1, 10))


def test_column_vector_y_warns_and_fits():
    from sklearn.exceptions import DataConversionWarning

    with pytest.warns(DataConversionWarning, match="column-vector y"):
        model = _fast(RandomForestRegressor).fit(X_OK, Y_OK.reshape(-1, 1).astype(float))
    assert model.predict(X_OK).shape == (10,)


def test_string_regression_targets():
    with pytest.raises(ValueError, match="could not convert string to float"):
        _fast(RandomForestRegressor).fit(X_OK, np.array(["a", "b"] * 5, dtype=object))


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
    with pytest.raises(ValueError, match=f"X has {n_features} features, but {cls.__name__} is expecting 4 features"):
        fitted[cls].predict(np.zeros((2, n_features)))


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_predict_checks_values(fitted, cls):
    X = np.zeros((3, 4))
    X[1, 3] = -np.inf
    with pytest.raises(ValueError, match="Input X contains infinity .* column 3"):
        fitted[cls].predict(X)
    with pytest.raises(ValueError, match="Expected 2D array"):
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
    with pytest.raises(NotFittedError, match=f"This {cls.__name__} instance is not fitted yet"):
        fn(*args)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_fitted_attributes_absent_before_fit(cls):
    model = cls()
    with pytest.raises(NotFittedError):
        _ = model.feature_importances_
    assert not hasattr(model, "feature_importances_")  # AttributeError, as scikit-learn users expect


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_score_checks_the_length_of_y(fitted, cls):
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        fitted[cls].score(np.zeros((3, 4)), np.zeros(2))


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_bad_data_starts_no_worker_and_places_nothing(cls, monkeypatch):
    made = []
    monkeypatch.setattr(batch, "SharedDataset", lambda *a, **k: made.append("placed"))
    monkeypatch.setattr(batch, "get_executor", lambda *a, **k: made.append("executor"))
    with pytest.raises(ValueError):
        _fast(cls, executor="shm").fit(_with(np.inf, 0, 0), Y_OK)
    assert made == []
