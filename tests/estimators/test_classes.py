"""The public estimators as scikit-learn users meet them: parameters, fitted
attributes, prediction, labels, weights and importances."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
from estimator_support import (
    ESTIMATORS,
    FORESTS,
    TREES,
    assert_same_trees,
    small,
    target_for,
)
from sklearn.exceptions import NotFittedError

from shmforest import (
    DecisionTreeClassifier,
    DecisionTreeRegressor,
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)

# A warning nobody asked for is a defect here; tests that expect one use pytest.warns.
pytestmark = pytest.mark.filterwarnings("error::UserWarning")

# ----------------------------------------------------------------- conventions


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_get_params_lists_every_init_argument(cls):
    import inspect

    names = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    params = cls().get_params()
    assert sorted(params) == sorted(names)
    assert params["executor"] == "thread"
    assert params["random_state"] is None


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_set_params_round_trip(cls):
    model = cls()
    assert model.set_params(max_depth=3, random_state=7) is model
    assert model.get_params()["max_depth"] == 3 and model.random_state == 7
    copy = cls(**model.get_params())
    assert copy.get_params() == model.get_params()
    assert "max_depth=3" in repr(model) and "random_state=7" in repr(model)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_scikit_learn_clone_works(cls, data):
    from sklearn.base import clone

    model = small(cls, max_depth=4).fit(data[0], target_for(cls, data))
    copy = clone(model)
    assert copy.get_params() == model.get_params()
    with pytest.raises(NotFittedError):
        copy.predict(data[0])


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_fitted_attributes(cls, data):
    X, _, _ = data
    y = target_for(cls, data)
    model = small(cls)
    assert model.fit(X, y) is model
    assert model.n_features_in_ == X.shape[1] and model.n_outputs_ == 1
    if "Classifier" in cls.__name__:
        np.testing.assert_array_equal(model.classes_, [0, 1])
        assert model.n_classes_ == 2
    if cls in FORESTS:
        assert len(model.estimators_) == 6 == len(model)
        tree_cls = DecisionTreeClassifier if cls.__name__.endswith("Classifier") else DecisionTreeRegressor
        assert all(type(e) is tree_cls for e in model.estimators_)
        seeds = [e.random_state for e in model.estimators_]
        assert all(isinstance(s, int) for s in seeds) and len(set(seeds)) == len(seeds)
        assert type(model.estimator_) is tree_cls
        assert not hasattr(model, "oob_score_")
    else:
        assert model.get_depth() >= 1 and model.get_n_leaves() >= 2
        assert model.max_features_ == X.shape[1]


@pytest.mark.parametrize("cls", [RandomForestClassifier, DecisionTreeClassifier])
def test_predict_proba_log_proba_and_score(cls, data):
    X, y, _ = data
    model = small(cls).fit(X, y)
    proba = model.predict_proba(X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    with np.errstate(divide="ignore"):
        np.testing.assert_array_equal(model.predict_log_proba(X), np.log(proba))
    predicted = model.predict(X)
    np.testing.assert_array_equal(predicted, model.classes_[proba.argmax(axis=1)])
    assert model.score(X, y) == pytest.approx(np.mean(predicted == y))
    w = np.where(predicted == y, 0.0, 1.0) + (predicted == y).all()  # weight only the mistakes
    assert model.score(X, y, sample_weight=w) == pytest.approx(0.0 if (predicted != y).any() else 1.0)


@pytest.mark.parametrize("cls", [RandomForestRegressor, DecisionTreeRegressor])
def test_regressor_predict_and_score(cls, data):
    X, _, target = data
    model = small(cls).fit(X, target)
    predicted = model.predict(X)
    assert predicted.shape == (len(X),)
    expected = 1 - np.sum((target - predicted) ** 2) / np.sum((target - target.mean()) ** 2)
    assert model.score(X, target) == pytest.approx(expected)
    assert model.score(X, target) > 0.5


def test_forest_prediction_is_the_mean_of_its_trees(data):
    X, y, target = data
    clf = small(RandomForestClassifier).fit(X, y)
    np.testing.assert_allclose(clf.predict_proba(X), np.mean([e.predict_proba(X) for e in clf.estimators_], axis=0))
    reg = small(RandomForestRegressor).fit(X, target)
    np.testing.assert_allclose(reg.predict(X), np.mean([e.predict(X) for e in reg.estimators_], axis=0))


@pytest.mark.parametrize("cls", FORESTS)
def test_apply_gives_a_leaf_per_tree(cls, data):
    X = data[0]
    model = small(cls).fit(X, target_for(cls, data))
    leaves = model.apply(X[:17])
    assert leaves.shape == (17, 6)
    for column, est in zip(leaves.T, model.estimators_):
        assert (est.tree_.children_left[column] == -1).all()
        np.testing.assert_array_equal(column, est.apply(X[:17]))


def test_pickled_forest_predicts_the_same(data):
    X, y, _ = data
    model = small(RandomForestClassifier).fit(X, y)
    copy = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(copy.predict_proba(X), model.predict_proba(X))


# ----------------------------------------------------------------- labels and weights


@pytest.mark.parametrize(
    "labels",
    [
        pytest.param(np.array(["no", "yes", "maybe"]), id="strings"),
        pytest.param(np.array([-7, -1, 3]), id="negative-ints"),
        pytest.param(np.array([-2.0, 1.0, 3.0]), id="integral-floats"),
        pytest.param(np.array(["b", "a", "c"], dtype=object), id="objects"),
        pytest.param(np.array([True, False]), id="bools"),
    ],
)
@pytest.mark.parametrize("cls", [RandomForestClassifier, DecisionTreeClassifier])
def test_labels_of_any_type(cls, labels):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(150, 3))
    codes = np.digitize(X[:, 0], np.quantile(X[:, 0], np.linspace(0, 1, len(labels) + 1)[1:-1]))
    y = labels[codes]
    model = small(cls).fit(X, y)
    np.testing.assert_array_equal(model.classes_, np.sort(labels))
    predicted = model.predict(X)
    assert predicted.dtype == np.sort(labels).dtype
    assert set(predicted.tolist()) <= set(labels.tolist())
    assert np.mean(predicted == y) > 0.9
    # predict_proba's columns follow classes_.
    np.testing.assert_array_equal(model.classes_[model.predict_proba(X).argmax(axis=1)], predicted)


def test_feature_names_of_a_data_frame_are_kept_and_checked(data):
    pd = pytest.importorskip("pandas")
    X, y, _ = data
    names = [f"f{i}" for i in range(X.shape[1])]
    model = small(RandomForestClassifier).fit(pd.DataFrame(X, columns=names), y)
    assert model.feature_names_in_.tolist() == names
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        plain = model.predict(X)
    np.testing.assert_array_equal(model.predict(pd.DataFrame(X, columns=names)), plain)
    with pytest.raises(ValueError, match="feature names"):
        model.predict(pd.DataFrame(X, columns=names[::-1]))
    assert not hasattr(small(RandomForestClassifier).fit(X, y), "feature_names_in_")


def test_a_single_class_fits_and_predicts_it():
    X = np.arange(20.0).reshape(10, 2)
    model = small(RandomForestClassifier).fit(X, ["only"] * 10)
    assert model.predict(X).tolist() == ["only"] * 10
    np.testing.assert_array_equal(model.predict_proba(X), np.ones((10, 1)))


@pytest.mark.parametrize("cls", [DecisionTreeClassifier, RandomForestClassifier])
def test_column_vector_y_is_accepted(data, cls):
    X, y, _ = data
    from sklearn.exceptions import DataConversionWarning

    a = small(cls).fit(X, y)
    if cls is DecisionTreeClassifier:
        with warnings.catch_warnings():
            warnings.simplefilter("error", DataConversionWarning)  # scikit-learn's trees take it silently
            b = small(cls).fit(X, y.reshape(-1, 1))
    else:
        with pytest.warns(DataConversionWarning, match="column-vector y"):
            b = small(cls).fit(X, y.reshape(-1, 1))
    assert_same_trees(a, b)
    assert b.n_outputs_ == 1 and b.predict(X).shape == (len(y),)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_two_column_y_is_two_outputs(cls, data):
    X, y, target = data
    Y = np.column_stack([target_for(cls, data), target_for(cls, data)[::-1]])
    model = small(cls).fit(X, Y)
    assert model.n_outputs_ == 2
    assert model.predict(X).shape == (240, 2)


@pytest.mark.parametrize("cls", TREES)
def test_weight_two_equals_duplicated_rows(cls):
    rng = np.random.default_rng(3)
    X = rng.integers(0, 12, size=(120, 4)).astype(np.float64)  # few values: bins are exact
    # Integer targets keep every weighted sum exact, so equal gains tie the same way in both fits.
    target = X[:, 0] - X[:, 2] + rng.integers(-3, 4, size=120)
    y = (target > 0).astype(int) if cls is DecisionTreeClassifier else target.astype(np.float64)
    w = rng.integers(1, 3, size=120)
    weighted = small(cls, max_depth=6).fit(X, y, sample_weight=w.astype(np.float64))
    duplicated = small(cls, max_depth=6).fit(np.repeat(X, w, axis=0), np.repeat(y, w))
    a, b = weighted.tree_, duplicated.tree_
    assert a.node_count == b.node_count
    for name in ("children_left", "children_right", "feature", "threshold"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    for name in ("value", "weighted_n_node_samples", "impurity"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-9, atol=1e-12, err_msg=name)


def test_sample_weight_changes_the_forest(data):
    X, y, _ = data
    plain = small(RandomForestClassifier).fit(X, y)
    weighted = small(RandomForestClassifier).fit(X, y, sample_weight=np.linspace(0.1, 3.0, len(y)))
    assert not np.array_equal(plain.predict_proba(X), weighted.predict_proba(X))


# ----------------------------------------------------------------- importances


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_feature_importances_sum_to_one_and_find_the_signal(cls, data):
    X, _, _ = data
    model = small(cls).fit(X, target_for(cls, data))
    imp = model.feature_importances_
    assert imp.shape == (X.shape[1],)
    assert (imp >= 0).all()
    assert imp.sum() == pytest.approx(1.0)
    assert imp.argmax() == 0  # the target is driven by feature 0 most


def test_feature_importances_of_stumps_only_are_zero():
    X = np.arange(12.0).reshape(6, 2)
    model = small(RandomForestClassifier).fit(X, [1] * 6)
    np.testing.assert_array_equal(model.feature_importances_, [0.0, 0.0])


# ----------------------------------------------------------------- extra trees


def test_extra_trees_default_to_the_whole_training_set(data):
    X, y, _ = data
    model = small(ExtraTreesClassifier).fit(X, y)
    assert model.get_params()["bootstrap"] is False
    assert all(e.splitter == "random" for e in model.estimators_)
    assert all(e.tree_.n_node_samples[0] == len(y) for e in model.estimators_)
    assert not isinstance(model, RandomForestClassifier)


def test_random_splitter_cuts_at_random_where_best_cuts_at_the_best_boundary():
    # One feature, the classes change at 50: the best split is there every time, a random
    # cut of extra trees falls anywhere in the node's range.
    X = np.arange(100, dtype=np.float64)[:, None]
    y = (X[:, 0] >= 50).astype(int)
    best = {DecisionTreeClassifier(random_state=s, max_depth=1).fit(X, y).tree_.threshold[0] for s in range(8)}
    cuts = {
        DecisionTreeClassifier(splitter="random", random_state=s, max_depth=1).fit(X, y).tree_.threshold[0]
        for s in range(8)
    }
    assert best == {49.5}
    assert len(cuts) >= 4 and all(0 < c < 99 for c in cuts)


def test_random_splitter_grows_pure_leaves_when_unlimited(data):
    X, y, _ = data
    tree = DecisionTreeClassifier(splitter="random", random_state=0).fit(X, y)
    assert tree.score(X, y) == 1.0


def test_unknown_splitter_is_refused_in_scikit_learns_words(data):
    X, y, _ = data
    with pytest.raises(ValueError, match=r"The 'splitter' parameter of DecisionTreeClassifier must be a str among"):
        DecisionTreeClassifier(splitter="worst").fit(X, y)


def test_random_splitter_puts_thresholds_anywhere_between_the_two_sides_values():
    # Two values, 0 and 10: scikit-learn's threshold is drawn uniformly between a node's
    # smallest and largest value, so a row at 3 or 7 goes one way in some trees and the
    # other in others; a midpoint threshold would send every 3 left and every 7 right.
    X = np.repeat([0.0, 10.0], 10)[:, None]
    y = np.repeat([0.0, 1.0], 10)
    roots = np.array(
        [
            DecisionTreeRegressor(splitter="random", random_state=s, max_depth=1).fit(X, y).tree_.threshold[0]
            for s in range(40)
        ]
    )
    assert np.all((roots >= 0) & (roots < 10))
    assert len(np.unique(roots)) == 40 and roots.min() < 2 and roots.max() > 8
    forest = ExtraTreesRegressor(n_estimators=200, random_state=0).fit(X, y)
    np.testing.assert_allclose(forest.predict([[3.0], [7.0]]), [0.3, 0.7], atol=0.1)
    # Every threshold still separates the training values as the split did.
    np.testing.assert_array_equal(forest.predict(X), y)
