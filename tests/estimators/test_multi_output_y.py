"""Multi-output y, as scikit-learn's trees and forests take it: the fitted attributes,
the predictions' shapes and types, class weights, out-of-bag estimates, export,
executors, errors, and accuracy beside scikit-learn."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import sklearn.ensemble
import sklearn.tree
from estimator_support import ESTIMATORS, FORESTS, TREES, assert_same_trees, small, trees_of
from sklearn.datasets import load_linnerud, make_classification, make_regression
from sklearn.exceptions import DataConversionWarning
from sklearn.metrics import r2_score
from sklearn.model_selection import KFold, LeaveOneOut
from sklearn.utils.class_weight import compute_class_weight, compute_sample_weight

from shmforest import (
    DecisionTreeClassifier,
    DecisionTreeRegressor,
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    RandomForestClassifier,
    RandomForestQuantileRegressor,
    RandomForestRegressor,
    fit_many,
)
from shmforest.tree.tasks import bootstrap_counts

# A warning nobody asked for is a defect here; tests that expect one use pytest.warns.
pytestmark = pytest.mark.filterwarnings("error::UserWarning")

CLASSIFIERS = [cls for cls in ESTIMATORS if cls.__name__.endswith("Classifier")]
REGRESSORS = [cls for cls in ESTIMATORS if cls.__name__.endswith("Regressor")]
#: Each output's labels when they are strings (3, 2 and 4 classes).
NAMES = [np.array(["ant", "bee", "cat"]), np.array(["no", "yes"]), np.array(["a", "b", "c", "d"])]


def classification(n=300, seed=0, strings=False):
    """X rounded to few values (exact bins), and three outputs of 3, 2 and 4 classes."""
    X, first = make_classification(
        n_samples=n, n_features=6, n_informative=4, n_classes=3, n_clusters_per_class=1, random_state=seed
    )
    X = np.round(X, 1)
    second = (X[:, 0] + X[:, 3] > 0).astype(np.int64)
    third = np.digitize(X[:, 1] - X[:, 2], [-1.0, 0.0, 1.0])
    Y = np.column_stack([first, second, third])
    if strings:
        Y = np.column_stack([names[Y[:, k]] for k, names in enumerate(NAMES)])
    return X, Y


def regression(n=300, seed=0):
    X, Y = make_regression(n_samples=n, n_features=6, n_informative=4, n_targets=3, noise=5.0, random_state=seed)
    return np.round(X, 1), Y


def problem(cls, **kw):
    return classification(**kw) if cls in CLASSIFIERS else regression(**kw)


# ----------------------------------------------------------------- fitted attributes and predictions


@pytest.mark.parametrize("strings", [False, True], ids=["int-labels", "string-labels"])
@pytest.mark.parametrize("cls", CLASSIFIERS)
def test_classifier_attributes_and_predictions_per_output(cls, strings):
    X, Y = classification(strings=strings)
    model = small(cls).fit(X, Y)
    assert model.n_outputs_ == 3
    assert isinstance(model.classes_, list) and len(model.classes_) == 3
    for k in range(3):
        np.testing.assert_array_equal(model.classes_[k], np.unique(Y[:, k]))
    assert list(model.n_classes_) == [3, 2, 4]
    # As scikit-learn: an array of counts in a tree, a list in a forest.
    assert isinstance(model.n_classes_, list if cls in FORESTS else np.ndarray)
    proba = model.predict_proba(X)
    assert isinstance(proba, list) and [p.shape for p in proba] == [(300, 3), (300, 2), (300, 4)]
    for p in proba:
        assert p.dtype == np.float64
        np.testing.assert_allclose(p.sum(axis=1), 1.0)
    predicted = model.predict(X)
    assert predicted.shape == (300, 3) and predicted.dtype == Y.dtype
    for k in range(3):
        np.testing.assert_array_equal(predicted[:, k], model.classes_[k][np.argmax(proba[k], axis=1)])
    log_proba = model.predict_log_proba(X)
    assert isinstance(log_proba, list) and len(log_proba) == 3
    with np.errstate(divide="ignore"):
        for lp, p in zip(log_proba, proba):
            np.testing.assert_array_equal(lp, np.log(p))
    # Grown until its leaves are pure, a tree predicts every output of its training rows.
    if cls is DecisionTreeClassifier:
        np.testing.assert_array_equal(predicted, Y)
    importances = model.feature_importances_
    assert importances.shape == (6,) and importances.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("cls", REGRESSORS)
def test_regressor_predicts_every_output(cls):
    X, Y = regression()
    model = small(cls).fit(X, Y)
    assert model.n_outputs_ == 3
    predicted = model.predict(X)
    assert predicted.shape == (300, 3) and predicted.dtype == np.float64
    assert r2_score(Y, predicted, multioutput="raw_values").min() > 0.5
    if cls is DecisionTreeRegressor:
        np.testing.assert_allclose(predicted, Y)  # fully grown on distinct rows
    assert model.feature_importances_.shape == (6,)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_a_duplicated_column_grows_the_one_column_trees(cls):
    # Two equal outputs double every node's impurity decrease exactly: the same splits,
    # each output's values those of the one-output trees, impurity their mean.
    X, Y = problem(cls)
    one = small(cls).fit(X, Y[:, 0])
    two = small(cls).fit(X, np.column_stack([Y[:, 0], Y[:, 0]]))
    assert two.n_outputs_ == 2 and len(trees_of(one)) == len(trees_of(two))
    for a, b in zip(trees_of(one), trees_of(two)):
        for name in ("children_left", "children_right", "feature", "threshold", "n_node_samples"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
        np.testing.assert_array_equal(np.hstack([a.value, a.value]), b.value)
        np.testing.assert_allclose(a.impurity, b.impurity, rtol=1e-12, atol=1e-15)
    predicted = two.predict(X)
    np.testing.assert_array_equal(predicted[:, 0], one.predict(X))
    np.testing.assert_array_equal(predicted[:, 1], one.predict(X))


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_a_column_vector_is_one_output_forests_warn_as_scikit_learns_do(cls):
    X, Y = problem(cls)
    one = small(cls).fit(X, Y[:, 0])
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataConversionWarning)
        if cls in FORESTS:
            with pytest.warns(DataConversionWarning, match="column-vector y"):
                column = small(cls).fit(X, Y[:, :1])
        else:
            column = small(cls).fit(X, Y[:, :1])  # scikit-learn's trees take it silently
    assert column.n_outputs_ == 1
    assert_same_trees(one, column)
    if cls in CLASSIFIERS:
        assert isinstance(column.classes_, np.ndarray) and isinstance(column.n_classes_, int)
        assert column.predict_proba(X).shape == (300, 3)
    assert column.predict(X).shape == (300,)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_lists_and_frames_fit_as_arrays(cls):
    pd = pytest.importorskip("pandas")
    X, Y = problem(cls)
    array = small(cls).fit(X, Y)
    assert_same_trees(array, small(cls).fit(X.tolist(), Y.tolist()))
    frame = small(cls).fit(pd.DataFrame(X), pd.DataFrame(Y, columns=["p", "q", "r"]))
    assert_same_trees(array, frame)


# ----------------------------------------------------------------- executors


@pytest.mark.parametrize("executor", ["thread", "shm"])
@pytest.mark.parametrize("cls", FORESTS)
def test_forests_are_the_same_on_every_executor(cls, executor):
    X, Y = problem(cls)
    serial = small(cls, n_estimators=4, bootstrap=True).fit(X, Y)
    other = small(cls, n_estimators=4, bootstrap=True, executor=executor, n_jobs=2).fit(X, Y)
    assert_same_trees(serial, other)
    np.testing.assert_array_equal(serial.predict(X), other.predict(X))


@pytest.mark.parametrize("executor", ["thread", "shm"])
@pytest.mark.parametrize("cls", TREES)
def test_branch_parallel_trees_are_the_same_on_every_executor(cls, executor):
    # Big enough that subtrees are handed to other workers, with their outputs' targets.
    X, Y = problem(cls, n=12_000)
    serial = small(cls, max_features=3).fit(X, Y)
    other = small(cls, max_features=3, executor=executor, n_jobs=2).fit(X, Y)
    assert serial.tree_.node_count > 100
    assert_same_trees(serial, other)


# ----------------------------------------------------------------- class weights


def _class_weight_dicts(Y):
    rng = np.random.default_rng(1)
    return [{label: float(rng.uniform(0.5, 3.0)) for label in np.unique(Y[:, k])} for k in range(Y.shape[1])]


@pytest.mark.parametrize("strings", [False, True], ids=["int-labels", "string-labels"])
@pytest.mark.parametrize("preset", ["dicts", "balanced"])
def test_tree_class_weight_is_scikit_learns_per_sample_expansion(preset, strings):
    X, Y = classification(strings=strings)
    class_weight = _class_weight_dicts(Y) if preset == "dicts" else "balanced"
    sw = np.random.default_rng(2).uniform(0.5, 2.0, len(Y))
    weighted = small(DecisionTreeClassifier, class_weight=class_weight).fit(X, Y, sample_weight=sw)
    expanded = small(DecisionTreeClassifier).fit(X, Y, sample_weight=sw * compute_sample_weight(class_weight, Y))
    assert_same_trees(weighted, expanded)


@pytest.mark.parametrize("preset", ["dicts", "balanced", "balanced_subsample"])
def test_forest_class_weight_without_bootstrap_is_scikit_learns_expansion(preset):
    X, Y = classification()
    sw = np.random.default_rng(2).uniform(0.5, 2.0, len(Y))
    if preset == "dicts":
        class_weight, dicts = _class_weight_dicts(Y), _class_weight_dicts(Y)
    else:
        # scikit-learn's forests balance each output by sample_weight, then expand the dicts.
        class_weight = preset
        dicts = [
            dict(zip(np.unique(y), compute_class_weight("balanced", classes=np.unique(y), y=y, sample_weight=sw)))
            for y in Y.T
        ]
    forest = small(RandomForestClassifier, class_weight=class_weight, bootstrap=False, max_features=2)
    plain = small(RandomForestClassifier, bootstrap=False, max_features=2)
    assert_same_trees(
        forest.fit(X, Y, sample_weight=sw), plain.fit(X, Y, sample_weight=sw * compute_sample_weight(dicts, Y))
    )


def _root_fractions(Y, weights):
    """Each output's weighted class fractions, one output after the other (a root's value row)."""
    return np.concatenate(
        [np.bincount(np.unique(y, return_inverse=True)[1], weights=weights) / weights.sum() for y in Y.T]
    )


def test_forest_class_weight_with_bootstrap_draws_by_the_product_of_the_outputs_weights():
    X, Y = classification()
    dicts = _class_weight_dicts(Y)
    forest = small(RandomForestClassifier, class_weight=dicts).fit(X, Y)
    odds = compute_sample_weight(dicts, Y)
    for est in forest.estimators_:
        counts = bootstrap_counts(est.random_state, len(Y), len(Y), odds / odds.sum())
        assert est.tree_.weighted_n_node_samples[0] == pytest.approx(counts.sum())
        np.testing.assert_allclose(est.tree_.value[0], _root_fractions(Y, counts.astype(float)), rtol=1e-12)


def test_balanced_subsample_balances_each_output_on_each_bootstrap_sample():
    X, Y = classification()
    forest = small(RandomForestClassifier, class_weight="balanced_subsample").fit(X, Y)
    for est in forest.estimators_:
        counts = bootstrap_counts(est.random_state, len(Y), len(Y))
        indices = np.repeat(np.arange(len(Y)), counts)
        weights = counts * compute_sample_weight("balanced", Y, indices=indices)
        assert est.tree_.weighted_n_node_samples[0] == pytest.approx(weights.sum())
        np.testing.assert_allclose(est.tree_.value[0], _root_fractions(Y, weights), rtol=1e-9)


@pytest.mark.parametrize(
    "class_weight",
    [{0: 1.0, 1: 2.0}, [{0: 1.0, 1: 2.0}], [{0: 1.0}] * 4, [{0: 1.0}, {"x": 2.0}, {0: 1.0}]],
    ids=["dict", "one-dict", "four-dicts", "unknown-label"],
)
@pytest.mark.parametrize(
    "ours, theirs",
    [
        (DecisionTreeClassifier, sklearn.tree.DecisionTreeClassifier),
        (RandomForestClassifier, sklearn.ensemble.RandomForestClassifier),
    ],
)
def test_bad_class_weight_for_several_outputs_fails_as_in_scikit_learn(class_weight, ours, theirs):
    X, Y = classification()
    with pytest.raises(ValueError) as expected:
        theirs(class_weight=class_weight).fit(X, Y)
    with pytest.raises(ValueError) as raised:
        small(ours, class_weight=class_weight).fit(X, Y)
    assert str(raised.value) == str(expected.value)


# ----------------------------------------------------------------- out of bag


@pytest.mark.parametrize("cls", [RandomForestClassifier, ExtraTreesClassifier])
def test_oob_decision_function_per_output(cls):
    X, Y = classification(strings=True)
    model = small(cls, n_estimators=30, bootstrap=True, oob_score=True).fit(X, Y)
    n = len(Y)
    totals = [np.zeros((n, c)) for c in (3, 2, 4)]
    seen = np.zeros(n)
    for est in model.estimators_:
        oob = bootstrap_counts(est.random_state, n, n) == 0
        for total, proba in zip(totals, est.predict_proba(X[oob])):
            total[oob] += proba
        seen[oob] += 1
    assert (seen > 0).all()
    decision = model.oob_decision_function_
    assert decision.shape == (n, 4, 3)  # (n_samples, most classes of any output, n_outputs), as scikit-learn's
    for k, total in enumerate(totals):
        np.testing.assert_allclose(decision[:, : total.shape[1], k], total / seen[:, None])
        assert not decision[:, total.shape[1] :, k].any()  # padding
    right = (
        np.column_stack([model.classes_[k][decision[:, :c, k].argmax(axis=1)] for k, c in enumerate((3, 2, 4))]) == Y
    )
    assert model.oob_score_ == pytest.approx(np.mean(right.all(axis=1)))
    assert 0.3 < model.oob_score_ < 1.0


def test_oob_score_of_binary_outputs_is_scikit_learns_accuracy():
    # scikit-learn scores binary outputs (a multilabel y) by subset accuracy.
    from sklearn.metrics import accuracy_score

    X, Y = classification()
    Y = np.column_stack([Y[:, 1], (Y[:, 0] == 1).astype(int)])
    model = small(RandomForestClassifier, n_estimators=30, oob_score=True).fit(X, Y)
    assert model.oob_decision_function_.shape == (len(Y), 2, 2)
    assert model.oob_score_ == accuracy_score(Y, model.oob_decision_function_.argmax(axis=1))


def test_oob_score_callable_gets_every_outputs_labels():
    X, Y = classification(strings=True)
    calls = []

    def score(y_true, y_pred):
        calls.append((y_true, y_pred))
        return 0.25

    model = small(RandomForestClassifier, n_estimators=30, oob_score=score).fit(X, Y)
    assert model.oob_score_ == 0.25
    ((y_true, y_pred),) = calls
    np.testing.assert_array_equal(y_true, Y)
    assert y_pred.shape == Y.shape and set(np.unique(y_pred[:, 1])) <= {"no", "yes"}


@pytest.mark.parametrize("cls", [RandomForestRegressor, ExtraTreesRegressor])
def test_oob_prediction_per_output(cls):
    X, Y = regression()
    model = small(cls, n_estimators=30, oob_score=True, bootstrap=True).fit(X, Y)
    n = len(Y)
    total, seen = np.zeros((n, 3)), np.zeros(n)
    for est in model.estimators_:
        oob = bootstrap_counts(est.random_state, n, n) == 0
        total[oob] += est.predict(X[oob])
        seen[oob] += 1
    assert (seen > 0).all()
    assert model.oob_prediction_.shape == (n, 3)
    np.testing.assert_allclose(model.oob_prediction_, total / seen[:, None])
    assert model.oob_score_ == pytest.approx(r2_score(Y, model.oob_prediction_))


# ----------------------------------------------------------------- to_sklearn


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_to_sklearn_predicts_every_output_as_ours(cls):
    X, Y = problem(cls, strings=True) if cls in CLASSIFIERS else problem(cls)
    model = small(cls, max_features=0.6, min_samples_leaf=2).fit(X, Y)
    sk = model.to_sklearn()
    # float32 values, as scikit-learn's walk sees them, go the same way at every node
    # (tests/estimators/test_export.py): X here holds thresholds' own values.
    X_new = problem(cls, n=500, seed=1)[0].astype(np.float32).astype(np.float64)
    assert sk.n_outputs_ == 3
    np.testing.assert_array_equal(sk.apply(X_new), model.apply(X_new))
    if cls in CLASSIFIERS:
        theirs, ours = sk.predict_proba(X_new), model.predict_proba(X_new)
        assert len(theirs) == len(ours) == 3
        for t, o in zip(theirs, ours):
            np.testing.assert_allclose(t, o, rtol=1e-12, atol=1e-12)
        for t, o in zip(sk.classes_, model.classes_):
            np.testing.assert_array_equal(t, o)
        # Labels agree wherever the most probable class is not tied (within rounding).
        for k, proba in enumerate(ours):
            top = np.sort(proba, axis=1)
            clear = top[:, -1] - top[:, -2] > 1e-9 if proba.shape[1] > 1 else np.ones(len(proba), bool)
            assert clear.mean() > 0.8
            np.testing.assert_array_equal(sk.predict(X_new)[clear, k], model.predict(X_new)[clear, k])
    else:
        np.testing.assert_allclose(sk.predict(X_new), model.predict(X_new), rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------- warm start and fit_many


@pytest.mark.parametrize("cls", [RandomForestClassifier, RandomForestRegressor])
def test_warm_start_adds_trees_to_a_multi_output_forest(cls):
    X, Y = problem(cls)
    grown = small(cls, n_estimators=6).fit(X, Y)
    warm = small(cls, n_estimators=3, warm_start=True).fit(X, Y)
    warm.set_params(n_estimators=6).fit(X, Y)
    assert_same_trees(grown, warm)


def test_warm_start_refuses_other_outputs_or_classes():
    X, Y = classification()
    forest = small(RandomForestClassifier, n_estimators=2, warm_start=True).fit(X, Y)
    with pytest.raises(ValueError, match="warm_start: y has 2 outputs, but the forest was fitted with 3"):
        forest.set_params(n_estimators=4).fit(X, Y[:, :2])
    other = Y.copy()
    other[other[:, 2] == 3, 2] = 2
    with pytest.raises(ValueError, match=r"warm_start: y has classes \[\[0, 1, 2\], \[0, 1\], \[0, 1, 2\]\]"):
        forest.fit(X, other)


def test_fit_many_fits_multi_output_models_together():
    X, Y = classification()
    models = fit_many(
        {"tree": small(DecisionTreeClassifier), "forest": small(RandomForestClassifier)}, X, Y, executor="serial"
    )
    assert_same_trees(models["forest"], small(RandomForestClassifier).fit(X, Y))
    assert_same_trees(models["tree"], small(DecisionTreeClassifier).fit(X, Y))
    assert models["forest"].predict(X).shape == (300, 3)


# ----------------------------------------------------------------- what is refused


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_monotonic_cst_with_several_outputs_is_refused_as_in_scikit_learn(cls):
    X, Y = problem(cls)
    with pytest.raises(ValueError, match=r"^Monotonicity constraints are not supported with multiple outputs\.$"):
        small(cls, monotonic_cst=[1, 0, 0, 0, 0, 0]).fit(X, Y)


def test_the_quantile_forest_refuses_several_outputs_naming_y():
    X, Y = regression()
    with pytest.raises(ValueError, match=r"RandomForestQuantileRegressor takes one target .* shape \(300, 3\)"):
        small(RandomForestQuantileRegressor).fit(X, Y)
    with pytest.raises(ValueError, match=r"shape \(300, 3\)"):
        fit_many([small(RandomForestRegressor), small(RandomForestQuantileRegressor)], X, Y, executor="serial")


@pytest.mark.parametrize("cls", [RandomForestClassifier, DecisionTreeRegressor])
def test_sparse_y_is_refused_as_in_scikit_learn(cls):
    sparse = pytest.importorskip("scipy.sparse")
    X, Y = problem(cls)
    with pytest.raises(ValueError, match="sparse multilabel-indicator for y is not supported"):
        small(cls).fit(X, sparse.csr_matrix(Y))


def test_continuous_outputs_for_a_classifier():
    X, Y = regression()
    with pytest.raises(ValueError, match="Unknown label type: continuous-multioutput"):
        small(RandomForestClassifier).fit(X, Y)


# ----------------------------------------------------------------- beside scikit-learn

SEEDS = (0, 1, 2)


def _out_of_fold(cls, X, Y, params, seed, folds):
    """Predictions of each row by a model fitted on the other folds."""
    predicted = np.empty(Y.shape, dtype=Y.dtype if cls.__name__.endswith("Classifier") else np.float64)
    for train, test in folds(seed).split(X):
        predicted[test] = cls(random_state=seed, **params).fit(X[train], Y[train]).predict(X[test])
    return predicted


def _scores(cls, X, Y, params, folds):
    """Per output, the mean over 3 seeds of the out-of-fold accuracy or R²."""
    per_seed = []
    for seed in SEEDS:
        predicted = _out_of_fold(cls, X, Y, params, seed, folds)
        if cls.__name__.endswith("Classifier"):
            per_seed.append(np.mean(predicted == Y, axis=0))
        else:
            per_seed.append(r2_score(Y, predicted, multioutput="raw_values"))
    return np.mean(per_seed, axis=0)


def _classification_beside():
    X, first = make_classification(
        n_samples=2000, n_features=10, n_informative=6, n_classes=3, flip_y=0.05, random_state=0
    )
    second = (X[:, 0] * X[:, 1] > 0).astype(int)
    third = np.where(np.random.default_rng(0).random(2000) < 0.1, (first + 1) % 3, first) * (X[:, 2] > 0)
    return X, np.column_stack([first, second, third])


def _five_folds(seed):
    return KFold(5, shuffle=True, random_state=seed)


def _pair(family, kind):
    module = sklearn.tree if family == "DecisionTree" else sklearn.ensemble
    return {cls.__name__: cls for cls in ESTIMATORS}[family + kind], getattr(module, family + kind)


FAMILIES = ["DecisionTree", "RandomForest", "ExtraTrees"]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("kind", ["Classifier", "Regressor"])
def test_score_per_output_beside_scikit_learn(kind, family, record_property):
    """Same parameters, same 5 folds, mean of 3 seeds: each output within 1 accuracy point
    (0.02 R²) of scikit-learn's multi-output model. 2,000 samples: scikit-learn's own
    3-seed means then move by about half a point from one set of seeds to the next."""
    if kind == "Classifier":
        X, Y = _classification_beside()
    else:
        X, Y = make_regression(n_samples=2000, n_features=10, n_informative=6, n_targets=3, noise=20.0, random_state=0)
    ours_cls, theirs_cls = _pair(family, kind)
    params = {} if family == "DecisionTree" else {"n_estimators": 50, "n_jobs": 2}
    ours = _scores(ours_cls, X, Y, {**params, "executor": "thread"}, _five_folds)
    theirs = _scores(theirs_cls, X, Y, params, _five_folds)
    record_property("per_output", {"shmforest": ours.round(4).tolist(), "scikit-learn": theirs.round(4).tolist()})
    gap = 0.01 if kind == "Classifier" else 0.02
    assert np.all(ours >= theirs - gap), (ours, theirs)


@pytest.mark.parametrize("family", ["RandomForest", "ExtraTrees"])
def test_linnerud_beside_scikit_learn(family, record_property):
    """scikit-learn's bundled multi-output dataset (20 samples, 3 targets): leave-one-out
    (5 folds of 4 samples give an R² of noise), forests of 200 trees, mean of 3 seeds;
    the mean R² over the outputs (``score``'s) within 0.02 of scikit-learn's. (A single
    tree's R² there moves by 0.1 from one seed to the next, scikit-learn's as ours:
    trees are compared node by node below.)"""
    X, Y = load_linnerud(return_X_y=True)
    ours_cls, theirs_cls = _pair(family, "Regressor")
    params = {"n_estimators": 200}
    ours = _scores(ours_cls, X, Y, {**params, "executor": "serial"}, lambda seed: LeaveOneOut())
    theirs = _scores(theirs_cls, X, Y, params, lambda seed: LeaveOneOut())
    record_property("per_output", {"shmforest": ours.round(4).tolist(), "scikit-learn": theirs.round(4).tolist()})
    assert ours.mean() >= theirs.mean() - 0.02, (ours, theirs)


@pytest.mark.parametrize("name", ["classification", "regression", "linnerud"])
def test_a_shallow_tree_is_scikit_learns_node_for_node(name):
    # Three levels, where no two splits tie: the same splits (each output's impurity
    # averaged, their decreases summed), the same samples, impurities and values per output.
    if name == "linnerud":
        X, Y = load_linnerud(return_X_y=True)
    else:
        X, Y = classification(strings=True) if name == "classification" else regression()
    ours_cls, theirs_cls = _pair("DecisionTree", "Classifier" if name == "classification" else "Regressor")
    ours = small(ours_cls, max_depth=3).fit(X, Y).tree_
    theirs = theirs_cls(max_depth=3, random_state=0).fit(X, Y).tree_
    assert ours.node_count == theirs.node_count >= 9
    for field in ("children_left", "children_right", "feature", "n_node_samples"):
        np.testing.assert_array_equal(getattr(ours, field), getattr(theirs, field), err_msg=field)
    # scikit-learn keeps its thresholds as float32 values.
    np.testing.assert_allclose(ours.threshold, theirs.threshold, rtol=1e-6)
    np.testing.assert_allclose(ours.impurity, theirs.impurity, rtol=1e-10, atol=1e-12)
    counts = theirs.n_classes
    per_output = np.concatenate([theirs.value[:, k, :c] for k, c in enumerate(counts)], axis=1)
    np.testing.assert_allclose(ours.value, per_output, rtol=1e-10, atol=1e-12)
