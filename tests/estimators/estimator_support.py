"""Data, small models and tree comparisons shared by the estimator tests."""

from __future__ import annotations

import numpy as np

from shmforest import (
    DecisionTreeClassifier,
    DecisionTreeRegressor,
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    RandomForestClassifier,
    RandomForestQuantileRegressor,
    RandomForestRegressor,
)
from shmforest.tree.tree import NODE_ARRAYS

FORESTS = [RandomForestClassifier, RandomForestRegressor, ExtraTreesClassifier, ExtraTreesRegressor]
TREES = [DecisionTreeClassifier, DecisionTreeRegressor]
ESTIMATORS = FORESTS + TREES
#: ESTIMATORS and the quantile forest, which is no scikit-learn estimator's namesake.
ALL_ESTIMATORS = ESTIMATORS + [RandomForestQuantileRegressor]
REGRESSORS = [cls for cls in ALL_ESTIMATORS if cls.__name__.endswith("Regressor")]


def make_data(n=240, n_features=6, seed=0, noise=0.5):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_features))
    score = X[:, 0] + 0.5 * X[:, 1] + noise * rng.normal(size=n)
    return X, (score > 0).astype(np.int64), score


def target_for(cls, data):
    X, y, target = data
    return y if cls.__name__.endswith("Classifier") else target


def small(cls, **params):
    base = {"executor": "serial", "random_state": 0}
    if cls in FORESTS:
        base["n_estimators"] = 6
    base.update(params)
    return cls(**base)


def trees_of(model):
    return [e.tree_ for e in model.estimators_] if hasattr(model, "estimators_") else [model.tree_]


def assert_same_trees(a, b):
    ta, tb = trees_of(a), trees_of(b)
    assert len(ta) == len(tb)
    for i, (x, y) in enumerate(zip(ta, tb)):
        assert x.node_count == y.node_count, f"tree {i}"
        for name in NODE_ARRAYS:
            np.testing.assert_array_equal(getattr(x, name), getattr(y, name), err_msg=f"tree {i}: {name}")


def prediction(model, X):
    return model.predict_proba(X) if hasattr(model, "predict_proba") else model.predict(X)
