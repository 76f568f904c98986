"""What forests add to trees: out-of-bag scores and warm start."""

from __future__ import annotations

import numpy as np
import pytest
from estimator_support import (
    FORESTS,
    assert_same_trees,
    make_data,
    small,
    target_for,
)

from shmforest import (
    RandomForestClassifier,
)
from shmforest.tree.tasks import bootstrap_counts

# A warning nobody asked for is a defect here; tests that expect one use pytest.warns.
pytestmark = pytest.mark.filterwarnings("error::UserWarning")

# ----------------------------------------------------------------- out of bag


def test_oob_predictions_match_a_recomputation_from_the_seeds(data):
    X, y, _ = data
    model = small(RandomForestClassifier, n_estimators=25, oob_score=True).fit(X, y)
    total, count = np.zeros((len(X), 2)), np.zeros(len(X))
    for est in model.estimators_:
        oob = bootstrap_counts(est.random_state, len(X), len(X)) == 0
        total[oob] += est.predict_proba(X[oob])
        count[oob] += 1
    assert (count > 0).all()
    np.testing.assert_allclose(model.oob_decision_function_, total / count[:, None])
    expected = np.mean(model.classes_[model.oob_decision_function_.argmax(axis=1)] == y)
    assert model.oob_score_ == pytest.approx(expected)


def _cv_score(make, X, y, folds=5):
    order = np.random.default_rng(0).permutation(len(y))
    scores = []
    for part in np.array_split(order, folds):
        train = np.setdiff1d(order, part)
        scores.append(make().fit(X[train], y[train]).score(X[part], y[part]))
    return float(np.mean(scores))


@pytest.mark.parametrize("cls", FORESTS)
def test_oob_score_is_near_the_cross_validated_score(cls):
    X, y, target = make_data(n=500, seed=5, noise=0.7)
    y = y if cls.__name__.endswith("Classifier") else target
    # Out-of-bag samples need bootstrap samples (extra trees default to none).
    model = small(cls, n_estimators=40, oob_score=True, bootstrap=True).fit(X, y)
    cv = _cv_score(lambda: small(cls, n_estimators=40, bootstrap=True), X, y)
    assert abs(model.oob_score_ - cv) < 0.05, (model.oob_score_, cv)
    if cls.__name__.endswith("Regressor"):
        assert model.oob_prediction_.shape == (len(y),)
    else:
        assert model.oob_decision_function_.shape == (len(y), 2)


def test_oob_score_accepts_a_scoring_callable(data):
    X, y, _ = data
    calls = []

    def errors(y_true, y_pred):
        calls.append((y_true, y_pred))
        return float(np.sum(y_true != y_pred))

    model = small(RandomForestClassifier, n_estimators=30, oob_score=errors).fit(X, y)
    y_true, y_pred = calls[0]
    np.testing.assert_array_equal(y_true, y)
    assert model.oob_score_ == np.sum(y != y_pred)


def test_too_few_trees_for_oob_warns(data):
    X, y, _ = data
    with pytest.warns(UserWarning, match="no out-of-bag prediction"):
        small(RandomForestClassifier, n_estimators=1, oob_score=True).fit(X, y)


# ----------------------------------------------------------------- warm start


@pytest.mark.parametrize("oob", [False, True])
@pytest.mark.parametrize("cls", FORESTS)
def test_warm_start_adds_trees_as_a_fresh_fit_would(cls, data, oob):
    X, y = data[0], target_for(cls, data)
    model = small(cls, n_estimators=20, warm_start=True, oob_score=oob, bootstrap=True).fit(X, y)
    first = list(model.estimators_)
    model.set_params(n_estimators=27).fit(X, y)
    assert len(model.estimators_) == 27
    assert all(a is b for a, b in zip(model.estimators_, first))
    fresh = small(cls, n_estimators=27, oob_score=oob, bootstrap=True).fit(X, y)
    assert_same_trees(model, fresh)
    if oob:
        assert model.oob_score_ == fresh.oob_score_


def test_warm_start_off_rebuilds_every_tree(data):
    X, y, _ = data
    model = small(RandomForestClassifier, n_estimators=4).fit(X, y)
    first = list(model.estimators_)
    model.set_params(n_estimators=5).fit(X, y)
    assert len(model.estimators_) == 5 and not any(e in first for e in model.estimators_)


def test_warm_start_with_fewer_or_as_many_trees(data):
    X, y, _ = data
    model = small(RandomForestClassifier, n_estimators=4, warm_start=True).fit(X, y)
    with pytest.warns(UserWarning, match="fits no new trees"):
        model.fit(X, y)
    assert len(model.estimators_) == 4
    with pytest.raises(ValueError, match=r"n_estimators=3 must be >= len\(estimators_\)=4"):
        model.set_params(n_estimators=3).fit(X, y)
    with pytest.raises(ValueError, match="warm_start: X has 3 features, but the forest was fitted with 6"):
        model.set_params(n_estimators=6).fit(X[:, :3], y)
    with pytest.raises(ValueError, match="warm_start: y has classes"):
        model.fit(X, y + 1)
    assert len(model.estimators_) == 4


def test_the_forest_is_packed_for_prediction_once_per_fit(data):
    import pickle

    X, y, _ = data
    model = small(RandomForestClassifier, warm_start=True).fit(X, y)
    packed = model._predictor()
    first = model.predict_proba(X)
    assert model._predictor() is packed  # predict keeps it and adds nothing
    back = pickle.loads(pickle.dumps(model))
    assert back._predictor() is not packed and len(back._predictor()) == len(model.estimators_)  # rebuilt on load
    assert back._predictor() is back._predictor()
    np.testing.assert_array_equal(back.predict_proba(X), first)
    model.set_params(n_estimators=9).fit(X, y)  # warm start: three more trees, packed again
    assert model._predictor() is not packed and len(model._predictor()) == 9
    np.testing.assert_array_equal(model.apply(X), np.stack([e.tree_.apply(X) for e in model.estimators_], axis=1))


def test_trees_changed_by_hand_are_predicted_without_changing_the_model(data):
    X, y, _ = data
    model = small(RandomForestClassifier).fit(X, y)
    packed = model._packed
    model.estimators_ = model.estimators_[:2]
    expected = np.mean([e.predict_proba(X) for e in model.estimators_], axis=0)
    np.testing.assert_allclose(model.predict_proba(X), expected)
    assert model._packed is packed
