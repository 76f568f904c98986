"""``to_sklearn()``: scikit-learn's own estimators holding our trees, predicting as ours."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn.ensemble
import sklearn.tree
from estimator_support import small
from sklearn.exceptions import NotFittedError
from sklearn.tree import export_text

from shmforest import (
    DecisionTreeClassifier,
    DecisionTreeRegressor,
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    RandomForestClassifier,
    RandomForestQuantileRegressor,
    RandomForestRegressor,
)
from shmforest.estimators.export import float32_thresholds

pytestmark = pytest.mark.filterwarnings("error::UserWarning")

CASES = [
    (DecisionTreeClassifier, sklearn.tree.DecisionTreeClassifier),
    (DecisionTreeRegressor, sklearn.tree.DecisionTreeRegressor),
    (RandomForestClassifier, sklearn.ensemble.RandomForestClassifier),
    (RandomForestRegressor, sklearn.ensemble.RandomForestRegressor),
    (RandomForestQuantileRegressor, sklearn.ensemble.RandomForestRegressor),
    (ExtraTreesClassifier, sklearn.ensemble.ExtraTreesClassifier),
    (ExtraTreesRegressor, sklearn.ensemble.ExtraTreesRegressor),
]


def problem(cls, n=400, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    if "Classifier" in cls.__name__:
        y = np.array(["cat", "dog", "emu"])[(X[:, 0] > 0).astype(int) + (X[:, 1] > 1)]
    else:
        y = 2 * X[:, 0] + X[:, 1] ** 2 + rng.normal(size=n)
    return X, y


def values(model, X):
    if hasattr(model, "predict_proba"):
        return model.predict_proba(X)
    if isinstance(model, RandomForestQuantileRegressor):
        return model.predict(X, quantiles="mean")
    return model.predict(X)


@pytest.fixture(scope="module", params=CASES, ids=lambda c: c[0].__name__)
def pair(request):
    ours_cls, sk_cls = request.param
    X, y = problem(ours_cls)
    model = small(ours_cls, max_features=0.6, min_samples_leaf=2).fit(X, y)
    return model, model.to_sklearn(), sk_cls


def test_it_is_scikit_learns_estimator(pair):
    model, sk, sk_cls = pair
    assert type(sk) is sk_cls
    assert sk.n_features_in_ == model.n_features_in_ and sk.n_outputs_ == 1
    if hasattr(model, "estimators_"):
        assert len(sk.estimators_) == len(model.estimators_)
        assert [e.random_state for e in sk.estimators_] == [e.random_state for e in model.estimators_]
        assert sk.get_params()["n_estimators"] == model.n_estimators
    assert sk.get_params()["min_samples_leaf"] == 2


def test_predictions_equal_ours(pair):
    model, sk, _ = pair
    X_new, _ = problem(type(model), n=2000, seed=1)
    np.testing.assert_allclose(values(sk, X_new), values(model, X_new), rtol=1e-12, atol=1e-12)
    if hasattr(model, "predict_proba"):
        np.testing.assert_array_equal(sk.predict(X_new), model.predict(X_new))
        np.testing.assert_array_equal(sk.classes_, model.classes_)
    np.testing.assert_array_equal(sk.apply(X_new), model.apply(X_new))


def test_float32_data_goes_the_same_way_at_every_node(pair):
    # Where X holds float32 values, as scikit-learn's walk sees them, no value falls
    # between a threshold and its float32 rounding: every row reaches the same leaves.
    model, sk, _ = pair
    X_new, _ = problem(type(model), n=2000, seed=2)
    X32 = X_new.astype(np.float32).astype(np.float64)
    np.testing.assert_array_equal(sk.apply(X32), model.apply(X32))


def test_feature_importances_equal_ours(pair):
    model, sk, _ = pair
    np.testing.assert_allclose(sk.feature_importances_, model.feature_importances_, rtol=1e-12, atol=1e-15)


def test_export_text_reads_our_tree():
    X, y = problem(DecisionTreeClassifier)
    model = small(DecisionTreeClassifier, max_depth=2).fit(X, y)
    text = export_text(model.to_sklearn(), feature_names=[f"x{i}" for i in range(5)])
    root = float(np.float32(model.tree_.threshold[0]))
    assert text.splitlines()[0].startswith(f"|--- x{model.tree_.feature[0]} <= ")
    assert f"{root:.2f}" in text.splitlines()[0]
    assert text.count("class:") == model.get_n_leaves()


def test_feature_names_travel():
    pd = pytest.importorskip("pandas")
    X, y = problem(RandomForestRegressor)
    frame = pd.DataFrame(X, columns=list("abcde"))
    sk = small(RandomForestRegressor).fit(frame, y).to_sklearn()
    np.testing.assert_array_equal(sk.feature_names_in_, list("abcde"))
    np.testing.assert_allclose(sk.predict(frame), small(RandomForestRegressor).fit(frame, y).predict(frame))


def test_thresholds_round_down_to_float32():
    t = np.array([0.1, 1 / 3, -2.0, 1e300, 2.0])
    leaf = np.array([False, False, True, False, False])
    out = float32_thresholds(t, leaf)
    assert out[2] == -2.0 and out[4] == 2.0
    assert np.all(out[~leaf] <= t[~leaf])
    assert np.all(out[~leaf].astype(np.float32).astype(np.float64) == out[~leaf])
    nxt = np.nextafter(out[:2].astype(np.float32), np.float32(np.inf)).astype(np.float64)
    assert np.all(nxt > t[:2])


def test_unfitted_raises():
    with pytest.raises(NotFittedError):
        RandomForestClassifier().to_sklearn()
