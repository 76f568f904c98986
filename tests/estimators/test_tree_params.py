"""scikit-learn's remaining tree parameters with its semantics: ``min_weight_fraction_leaf``,
the regression criteria ``"friedman_mse"`` and ``"poisson"``, and ``monotonic_cst``."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import sklearn.ensemble
import sklearn.tree
from estimator_support import (
    ALL_ESTIMATORS,
    ESTIMATORS,
    FORESTS,
    REGRESSORS,
    TREES,
    assert_same_trees,
    small,
    target_for,
    trees_of,
)
from sklearn.datasets import load_diabetes, make_classification
from sklearn.model_selection import KFold, cross_val_score
from sklearn.utils._param_validation import InvalidParameterError

from shmforest import (
    DecisionTreeClassifier,
    DecisionTreeRegressor,
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    RandomForestClassifier,
    RandomForestQuantileRegressor,
    RandomForestRegressor,
)

pytestmark = pytest.mark.filterwarnings("error::UserWarning")


def is_regressor(cls):
    return "Regressor" in cls.__name__


def leaves(tree):
    return tree.children_left == -1


def cv_score(model, X, y, scoring=None):
    return cross_val_score(model, X, y, cv=KFold(5, shuffle=True, random_state=0), scoring=scoring).mean()


# --------------------------------------------------------------------------- min_weight_fraction_leaf


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("fraction", [0.02, 0.2])
def test_every_leaf_keeps_the_weight_fraction(data, cls, fraction):
    X, y = data[0], target_for(cls, data)
    sw = np.random.default_rng(1).uniform(0.2, 3.0, len(y))
    model = small(cls, min_weight_fraction_leaf=fraction).fit(X, y, sample_weight=sw)
    plain = small(cls).fit(X, y, sample_weight=sw)
    for tree, free in zip(trees_of(model), trees_of(plain)):
        # The root's weight is the tree's total: sample weights times bootstrap counts.
        root = tree.weighted_n_node_samples[0]
        assert tree.weighted_n_node_samples[leaves(tree)].min() >= fraction * root * (1 - 1e-12)
        assert free.weighted_n_node_samples[leaves(free)].min() < fraction * root
        assert tree.node_count < free.node_count
    # Extra trees' random cuts may all leave too little weight on a side (scikit-learn's
    # leave about half of their trees a lone root at 0.2 here): many trees still split.
    assert np.mean([t.node_count > 1 for t in trees_of(model)]) >= 0.3


def test_nodes_lighter_than_twice_the_minimum_are_leaves(data):
    X, y = data[0], data[1]
    model = small(DecisionTreeClassifier, min_weight_fraction_leaf=0.1).fit(X, y)
    tree = model.tree_
    split = ~leaves(tree)
    assert np.all(tree.weighted_n_node_samples[split] >= 2 * 0.1 * len(y))


def test_min_weight_fraction_leaf_grows_the_trees_scikit_learn_grows():
    # Few distinct values: exact bins, so both search the same thresholds.
    X, y = load_diabetes(return_X_y=True)
    X = np.round(X, 2)
    for fraction in (0.01, 0.05, 0.2):
        ours = DecisionTreeRegressor(min_weight_fraction_leaf=fraction, executor="serial").fit(X, y)
        theirs = sklearn.tree.DecisionTreeRegressor(min_weight_fraction_leaf=fraction, random_state=0).fit(X, y)
        assert ours.tree_.node_count == theirs.tree_.node_count
        np.testing.assert_allclose(
            np.sort(ours.tree_.weighted_n_node_samples), np.sort(theirs.tree_.weighted_n_node_samples)
        )


@pytest.mark.parametrize("cls", FORESTS)
def test_min_weight_fraction_leaf_scores_as_scikit_learn(cls):
    X, y = make_classification(600, n_features=10, n_informative=5, flip_y=0.05, random_state=2)
    if is_regressor(cls):
        X, y = load_diabetes(return_X_y=True)
    # The mean of 5 seeds (forest and folds): one seed's gap spreads by about a point.
    gaps = []
    for seed in range(5):
        kw = dict(n_estimators=20, min_weight_fraction_leaf=0.01, random_state=seed)
        cv = KFold(5, shuffle=True, random_state=seed)
        ours = cross_val_score(cls(executor="serial", **kw), X, y, cv=cv).mean()
        gaps.append(ours - cross_val_score(getattr(sklearn.ensemble, cls.__name__)(**kw), X, y, cv=cv).mean())
    assert np.mean(gaps) >= -(0.02 if is_regressor(cls) else 0.01), gaps


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_min_weight_fraction_leaf_is_the_same_on_every_executor(data, executor):
    X, y = data[0], data[2]
    serial = small(RandomForestRegressor, min_weight_fraction_leaf=0.03).fit(X, y)
    other = small(RandomForestRegressor, min_weight_fraction_leaf=0.03, executor=executor, n_jobs=2).fit(X, y)
    assert_same_trees(serial, other)


@pytest.mark.parametrize("value", [-0.1, 0.6])
def test_min_weight_fraction_leaf_out_of_range_is_rejected(data, value):
    with pytest.raises(InvalidParameterError, match=r"'min_weight_fraction_leaf' parameter .* range \[0.0, 0.5\]"):
        small(RandomForestClassifier, min_weight_fraction_leaf=value).fit(data[0], data[1])


# --------------------------------------------------------------------------- friedman_mse


@pytest.mark.parametrize("cls", REGRESSORS)
def test_friedman_mse_grows_the_squared_error_trees(data, cls):
    # scikit-learn 1.9 maps "friedman_mse" to "squared_error": both order splits alike.
    X, y = data[0], data[2]
    friedman = small(cls, criterion="friedman_mse", max_features=0.5, min_impurity_decrease=0.01).fit(X, y)
    squared = small(cls, criterion="squared_error", max_features=0.5, min_impurity_decrease=0.01).fit(X, y)
    assert_same_trees(friedman, squared)
    assert friedman.get_params()["criterion"] == "friedman_mse"


def test_friedman_mse_scores_as_scikit_learn():
    X, y = load_diabetes(return_X_y=True)
    ours = cv_score(RandomForestRegressor(30, criterion="friedman_mse", executor="serial", random_state=0), X, y)
    with pytest.warns(FutureWarning, match="friedman_mse"):
        sk = sklearn.ensemble.RandomForestRegressor(30, criterion="friedman_mse", random_state=0)
    assert ours >= cv_score(sk, X, y) - 0.02


def test_friedman_mse_exports_as_squared_error(data):
    X, y = data[0], data[2]
    model = small(RandomForestRegressor, criterion="friedman_mse").fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sk = model.to_sklearn()
    assert sk.criterion == "squared_error"
    np.testing.assert_allclose(sk.predict(X), model.predict(X), rtol=1e-12)


@pytest.mark.parametrize("cls", REGRESSORS)
def test_absolute_error_is_rejected_by_name(data, cls):
    with pytest.raises(InvalidParameterError, match=r"'criterion' parameter .* Got 'absolute_error'"):
        small(cls, criterion="absolute_error").fit(data[0], data[2])


# --------------------------------------------------------------------------- poisson


def poisson_problem(n=1500, seed=0, integer=False):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 20, size=(n, 4)).astype(float) if integer else rng.normal(size=(n, 5))
    rate = np.exp(0.1 * X[:, 0] - 0.05 * X[:, 1]) if integer else np.exp(0.6 * X[:, 0] - 0.4 * X[:, 1])
    return X, rng.poisson(rate).astype(float)


def test_poisson_grows_the_tree_scikit_learn_grows():
    # Integer features: exact bins, the same candidate thresholds as scikit-learn's.
    X, y = poisson_problem(integer=True)
    ours = DecisionTreeRegressor(criterion="poisson", max_depth=4, executor="serial").fit(X, y).tree_
    theirs = sklearn.tree.DecisionTreeRegressor(criterion="poisson", max_depth=4, random_state=0).fit(X, y).tree_
    np.testing.assert_array_equal(ours.feature, theirs.feature)
    np.testing.assert_allclose(ours.threshold, theirs.threshold)
    np.testing.assert_allclose(ours.impurity, theirs.impurity, rtol=1e-10)
    np.testing.assert_allclose(ours.value[:, 0], theirs.value[:, 0, 0], rtol=1e-12)
    # Not the squared-error tree.
    squared = DecisionTreeRegressor(max_depth=4, executor="serial").fit(X, y).tree_
    assert not np.allclose(squared.impurity, ours.impurity)


def test_poisson_leaves_predict_positive_means():
    X, y = poisson_problem(n=600)
    tree = DecisionTreeRegressor(criterion="poisson", executor="serial").fit(X, y).tree_
    assert np.all(tree.value[leaves(tree), 0] > 0)
    assert np.all(np.isfinite(tree.impurity)) and np.all(tree.impurity >= 0)


@pytest.mark.parametrize("cls", [DecisionTreeRegressor, RandomForestRegressor, ExtraTreesRegressor])
def test_poisson_deviance_near_scikit_learns(cls):
    from sklearn.metrics import mean_poisson_deviance

    X, y = poisson_problem()
    X_test, y_test = poisson_problem(seed=1)
    kw = dict(criterion="poisson", min_samples_leaf=10, random_state=0)
    if cls is not DecisionTreeRegressor:
        kw["n_estimators"] = 30
    ours = mean_poisson_deviance(y_test, cls(executor="serial", **kw).fit(X, y).predict(X_test))
    theirs = mean_poisson_deviance(
        y_test,
        getattr(sklearn.tree if cls is DecisionTreeRegressor else sklearn.ensemble, cls.__name__)(**kw)
        .fit(X, y)
        .predict(X_test),
    )
    assert ours <= theirs * 1.03


@pytest.mark.parametrize("executor", ["thread", "process"])
@pytest.mark.parametrize("cls", [RandomForestRegressor, ExtraTreesRegressor])
def test_poisson_is_the_same_on_every_executor(cls, executor):
    X, y = poisson_problem(n=600)
    serial = small(cls, criterion="poisson").fit(X, y)
    other = small(cls, criterion="poisson", executor=executor, n_jobs=2).fit(X, y)
    assert_same_trees(serial, other)


@pytest.mark.parametrize("cls", REGRESSORS)
def test_poisson_rejects_negative_targets_and_a_zero_sum(cls):
    X, y = poisson_problem(n=100)
    with pytest.raises(ValueError, match="Some value\\(s\\) of y are negative which is not allowed for Poisson"):
        small(cls, criterion="poisson").fit(X, y - 1)
    positive = "not positive" if cls in TREES else "not strictly positive"
    with pytest.raises(ValueError, match=f"Sum of y is {positive} which is necessary for Poisson regression"):
        small(cls, criterion="poisson").fit(X, np.zeros_like(y))
    small(cls).fit(X, y - 1)  # other criteria take any target


# --------------------------------------------------------------------------- monotonic_cst


def monotonic_problem(n=1000, seed=0, integer=False):
    """A target that rises with feature 0 but wiggles (so a free tree is not monotonic), falls with feature 1."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 30, size=(n, 3)) / 10 if integer else rng.normal(size=(n, 3))
    score = X[:, 0] + np.sin(4 * X[:, 0]) - 0.5 * X[:, 1] + 0.3 * rng.normal(size=n)
    return X, score, (score > np.median(score)).astype(int)


def grid_values(model, feature, n_rows=15, n_steps=60):
    """Predictions along ``feature`` (other features held at random values): rows of steps."""
    rng = np.random.default_rng(5)
    grid = np.repeat(rng.normal(size=(n_rows, 3)), n_steps, axis=0)
    grid[:, feature] = np.tile(np.linspace(-3, 3, n_steps), n_rows)
    if hasattr(model, "predict_proba"):
        out = model.predict_proba(grid)[:, 1]
    elif isinstance(model, RandomForestQuantileRegressor):
        out = model.predict(grid, quantiles="mean")
    else:
        out = model.predict(grid)
    return out.reshape(n_rows, n_steps)


@pytest.mark.parametrize("cls", ALL_ESTIMATORS)
@pytest.mark.parametrize("max_leaf_nodes", [None, 16])
def test_predictions_are_monotonic_along_constrained_features(cls, max_leaf_nodes):
    X, score, labels = monotonic_problem()
    y = labels if "Classifier" in cls.__name__ else score
    model = small(cls, monotonic_cst=[1, -1, 0], max_leaf_nodes=max_leaf_nodes).fit(X, y)
    assert np.all(np.diff(grid_values(model, 0), axis=1) >= 0)
    assert np.all(np.diff(grid_values(model, 1), axis=1) <= 0)
    flipped = small(cls, monotonic_cst=[-1, 1, 0], max_leaf_nodes=max_leaf_nodes).fit(X, y)
    assert np.all(np.diff(grid_values(flipped, 0), axis=1) <= 0)
    assert np.all(np.diff(grid_values(flipped, 1), axis=1) >= 0)
    # Without constraints the wiggle shows: the checks above can fail.
    free = small(cls, max_leaf_nodes=max_leaf_nodes).fit(X, y)
    assert np.any(np.diff(grid_values(free, 0), axis=1) < 0)


@pytest.mark.parametrize("cls", [DecisionTreeRegressor, DecisionTreeClassifier])
@pytest.mark.parametrize("cst", [[1, -1, 0], [-1, 1, 0]])
def test_monotonic_trees_are_scikit_learns(cls, cst):
    # Few distinct values: exact bins, the thresholds scikit-learn searches. Deeper
    # down, splits tie on a few samples and the two break ties by rounding.
    X, score, labels = monotonic_problem(integer=True)
    y = labels if cls is DecisionTreeClassifier else score
    ours = cls(monotonic_cst=cst, max_depth=4, executor="serial").fit(X, y).tree_
    theirs = getattr(sklearn.tree, cls.__name__)(monotonic_cst=cst, max_depth=4, random_state=0).fit(X, y).tree_
    np.testing.assert_array_equal(ours.feature, theirs.feature)
    np.testing.assert_allclose(ours.threshold, theirs.threshold)
    np.testing.assert_allclose(ours.value, theirs.value.reshape(ours.value.shape), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cls", FORESTS)
def test_monotonic_forests_score_as_scikit_learn(cls):
    X, score, labels = monotonic_problem(n=800, seed=3)
    y = score if is_regressor(cls) else labels
    kw = dict(n_estimators=20, monotonic_cst=[1, -1, 0], random_state=0)
    ours = cv_score(cls(executor="serial", **kw), X, y)
    theirs = cv_score(getattr(sklearn.ensemble, cls.__name__)(**kw), X, y)
    assert ours >= theirs - (0.02 if is_regressor(cls) else 0.01)


@pytest.mark.parametrize("executor", ["thread", "process"])
@pytest.mark.parametrize("cls", FORESTS)
def test_monotonic_forests_are_the_same_on_every_executor(cls, executor):
    X, score, labels = monotonic_problem(n=600)
    y = score if is_regressor(cls) else labels
    serial = small(cls, monotonic_cst=[1, 0, -1], max_features=None).fit(X, y)
    other = small(cls, monotonic_cst=[1, 0, -1], max_features=None, executor=executor, n_jobs=2).fit(X, y)
    assert_same_trees(serial, other)


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize(
    "cst, message",
    [
        ([1, 0], r"monotonic_cst has shape 2 but the input data X has 6 features"),
        ([1, 0, 0, 0, 0, 2], r"monotonic_cst must be None or an array-like of -1, 0 or 1, but got \[0 1 2\]"),
        ("increasing", r"'monotonic_cst' parameter .* must be an array-like or None"),
    ],
)
def test_bad_monotonic_cst_is_rejected(data, cls, cst, message):
    with pytest.raises(ValueError, match=message):
        small(cls, monotonic_cst=cst).fit(data[0], target_for(cls, data))


@pytest.mark.parametrize("cls", [DecisionTreeClassifier, RandomForestClassifier, ExtraTreesClassifier])
def test_monotonic_cst_on_a_multiclass_problem_is_rejected(data, cls):
    X, y = data[0], np.digitize(data[2], [-0.5, 0.5])
    with pytest.raises(ValueError, match="Monotonicity constraints are not supported with multiclass classification"):
        small(cls, monotonic_cst=[1, 0, 0, 0, 0, 0]).fit(X, y)
    small(cls, monotonic_cst=[1, 0, 0, 0, 0, 0]).fit(X, y > 0)  # binary is fine


# --------------------------------------------------------------------------- export


@pytest.mark.parametrize("cls", ESTIMATORS + [RandomForestQuantileRegressor])
def test_to_sklearn_carries_the_new_parameters(data, cls):
    X, y = data[0], target_for(cls, data)
    kw = dict(min_weight_fraction_leaf=0.01, monotonic_cst=[1, -1, 0, 0, 0, 0])
    if "Classifier" not in cls.__name__:
        kw["criterion"] = "poisson"
        y = np.exp(y)
    model = small(cls, **kw).fit(X, y)
    sk = model.to_sklearn()
    for name, value in kw.items():
        assert sk.get_params()[name] == value
    theirs = sk.predict_proba(X) if hasattr(sk, "predict_proba") else sk.predict(X)
    ours = (
        model.predict_proba(X)
        if hasattr(model, "predict_proba")
        else model.predict(X, **({"quantiles": "mean"} if cls is RandomForestQuantileRegressor else {}))
    )
    np.testing.assert_allclose(theirs, ours, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("executor", ["process", "shm"])
def test_branch_parallel_trees_with_every_option_are_the_same_on_every_executor(executor):
    # Big enough that subtrees go to other processes: bounds, weights and Poisson's
    # targets travel with the nodes handed on.
    X, y = poisson_problem(n=12_000)
    kw = dict(criterion="poisson", min_weight_fraction_leaf=0.0005, monotonic_cst=[1, -1, 0, 0, 0], random_state=0)
    serial = DecisionTreeRegressor(executor="serial", **kw).fit(X, y)
    other = DecisionTreeRegressor(executor=executor, n_jobs=2, **kw).fit(X, y)
    assert serial.tree_.node_count > 100
    assert_same_trees(serial, other)
