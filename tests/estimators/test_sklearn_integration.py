"""shmforest estimators inside scikit-learn's own tools: pipelines, searches,
cross-validation, calibration, ensembles, inspection, cloning and persistence."""

from __future__ import annotations

import pickle
import subprocess
import sys

import joblib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import StackingClassifier, VotingClassifier
from sklearn.inspection import partial_dependence, permutation_importance
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV, cross_val_score, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from shmforest import DecisionTreeClassifier, DecisionTreeRegressor, RandomForestClassifier, RandomForestRegressor


@pytest.fixture(scope="module")
def classification():
    return make_classification(n_samples=300, n_features=6, n_informative=4, random_state=0)


@pytest.fixture(scope="module")
def regression():
    return make_regression(n_samples=300, n_features=6, noise=5.0, random_state=0)


def forest(**params):
    return RandomForestClassifier(n_estimators=10, random_state=0, **params)


def test_pipeline(classification):
    X, y = classification
    pipe = make_pipeline(StandardScaler(), forest()).fit(X, y)
    assert pipe.score(X, y) > 0.9
    # Trees split on order, so scaling first changes no prediction.
    np.testing.assert_array_equal(pipe.predict(X), forest().fit(X, y).predict(X))


@pytest.mark.parametrize("n_jobs", [1, 2])
@pytest.mark.parametrize("search", ["grid", "randomized"])
def test_searches_find_the_better_depth_and_leave_nothing_behind(classification, search, n_jobs):
    X, y = classification
    grid = {"max_depth": [1, 6]}
    if search == "grid":
        cv = GridSearchCV(forest(), grid, cv=3, n_jobs=n_jobs)
    else:
        cv = RandomizedSearchCV(forest(), grid, n_iter=2, cv=3, n_jobs=n_jobs, random_state=0)
    cv.fit(X, y)
    assert cv.best_params_ == {"max_depth": 6}
    assert cv.best_estimator_.predict(X).shape == (300,)
    if n_jobs > 1:
        # joblib keeps its own workers for reuse; once they are gone, the autouse
        # leak check fails the test on any block or process of ours left behind.
        from joblib.externals.loky import get_reusable_executor

        get_reusable_executor().shutdown(wait=True)


def test_cross_val_score_and_cross_validate(classification, regression):
    X, y = classification
    scores = cross_val_score(forest(), X, y, cv=3)
    assert scores.shape == (3,) and scores.mean() > 0.8
    Xr, yr = regression
    result = cross_validate(RandomForestRegressor(n_estimators=10, random_state=0), Xr, yr, cv=3, return_estimator=True)
    assert result["test_score"].mean() > 0.5
    assert all(hasattr(e, "estimators_") for e in result["estimator"])


@pytest.mark.parametrize(
    "cls", [RandomForestClassifier, RandomForestRegressor, DecisionTreeClassifier, DecisionTreeRegressor]
)
def test_clone_gives_an_unfitted_equal_estimator(cls, classification):
    model = cls(max_depth=3, random_state=1, executor="thread").fit(*classification)
    copy = clone(model)
    assert copy.get_params() == model.get_params()
    assert not hasattr(copy, "n_features_in_")


@pytest.mark.parametrize("executor", ["serial", "shm"])
def test_pickle_and_joblib_round_trips_predict_the_same_bits(classification, tmp_path, executor):
    X, y = classification
    model = forest(executor=executor).fit(X, y)
    expected = model.predict_proba(X)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(model)).predict_proba(X), expected)
    path = tmp_path / "forest.joblib"
    joblib.dump(model, path)
    np.testing.assert_array_equal(joblib.load(path).predict_proba(X), expected)
    # A fresh interpreter that never fitted anything loads it and predicts the same bits.
    np.save(tmp_path / "X.npy", X)
    code = (
        "import joblib, numpy as np, sys; m = joblib.load(sys.argv[1]); "
        "np.save(sys.argv[2], m.predict_proba(np.load(sys.argv[3])))"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(path), str(tmp_path / "p.npy"), str(tmp_path / "X.npy")],
        check=True,
        timeout=120,
    )
    np.testing.assert_array_equal(np.load(tmp_path / "p.npy"), expected)


def test_predict_leaves_the_fitted_estimator_unchanged(classification):
    X, y = classification
    model = forest().fit(X, y)
    before = pickle.dumps(model)
    keys = set(vars(model))
    model.predict(X)
    model.predict_proba(X[:5])
    model.apply(X)
    assert set(vars(model)) == keys
    assert pickle.dumps(model) == before


def test_permutation_importance_finds_the_informative_features():
    # Unshuffled and without redundant features, the two informative features come first.
    X, y = make_classification(
        n_samples=300, n_features=6, n_informative=2, n_redundant=0, shuffle=False, random_state=0
    )
    model = forest().fit(X, y)
    result = permutation_importance(model, X, y, n_repeats=3, random_state=0)
    assert result.importances_mean[:2].min() > result.importances_mean[2:].max()


def test_partial_dependence(regression):
    X, y = regression
    model = RandomForestRegressor(n_estimators=10, random_state=0).fit(X, y)
    result = partial_dependence(model, X, [0], grid_resolution=10)
    assert result["average"].shape == (1, 10)
    assert np.ptp(result["average"]) > 0


def test_calibrated_classifier(classification):
    X, y = classification
    calibrated = CalibratedClassifierCV(forest(), cv=3).fit(X, y)
    proba = calibrated.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert calibrated.score(X, y) > 0.85


@pytest.mark.parametrize("kind", ["stacking", "voting"])
def test_ensembles_with_a_shmforest_member(classification, kind):
    X, y = classification
    members = [("forest", forest()), ("tree", DecisionTreeClassifier(max_depth=4, random_state=0))]
    if kind == "stacking":
        model = StackingClassifier(members, final_estimator=LogisticRegression(), cv=3)
    else:
        model = VotingClassifier(members, voting="soft")
    model.fit(X, y)
    assert model.score(X, y) > 0.85
