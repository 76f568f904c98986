"""The same forest on dask: bit-identical to ``serial`` for the same random_state."""

from __future__ import annotations

import os

import numpy as np
import pytest
from shmforest_dask import DOMAIN_ENV_VAR, DaskExecutor

from shmforest import (
    DecisionTreeClassifier,
    DecisionTreeRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from shmforest.tree.tree import NODE_ARRAYS

pytestmark = pytest.mark.filterwarnings("error::UserWarning")


def make_data(n: int, n_features: int = 10, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_features))
    score = X[:, 0] + 0.5 * X[:, 1] ** 2 - X[:, 2] * X[:, 3] + 0.5 * rng.normal(size=n)
    return X, (score > 0.5).astype(np.int64), score


def trees_of(model):
    return [e.tree_ for e in model.estimators_] if hasattr(model, "estimators_") else [model.tree_]


def assert_same(a, b, X):
    ta, tb = trees_of(a), trees_of(b)
    assert len(ta) == len(tb)
    for i, (x, y) in enumerate(zip(ta, tb, strict=True)):
        assert x.node_count == y.node_count, f"tree {i}"
        for name in NODE_ARRAYS:
            np.testing.assert_array_equal(getattr(x, name), getattr(y, name), err_msg=f"tree {i}: {name}")
    pa = a.predict_proba(X) if hasattr(a, "predict_proba") else a.predict(X)
    pb = b.predict_proba(X) if hasattr(b, "predict_proba") else b.predict(X)
    np.testing.assert_array_equal(pa, pb)


# 20,000 x 10 is over the forest's threshold for binning features as tasks, so the
# binning tasks (which write codes into the shared dataset) run on the workers too.
@pytest.fixture(scope="module")
def data():
    return make_data(20_000)


def test_forest_classifier_is_bit_identical_to_serial(client, data):
    X, y, _ = data
    serial = RandomForestClassifier(n_estimators=10, random_state=0, executor="serial").fit(X, y)
    with DaskExecutor(client) as ex:
        on_dask = RandomForestClassifier(n_estimators=10, random_state=0, executor=ex).fit(X, y)
        stats = ex.transfer_stats()
    assert_same(serial, on_dask, X)
    assert stats["tasks"] >= 10 and stats["shipped_bytes"] == 0


def test_forest_regressor_with_oob_is_bit_identical_to_serial(client, data):
    X, _, target = data
    params = {"n_estimators": 30, "random_state": 1, "oob_score": True, "max_depth": 5}
    serial = RandomForestRegressor(executor="serial", **params).fit(X, target)
    on_dask = RandomForestRegressor(executor=DaskExecutor(client), **params).fit(X, target)
    on_dask.executor.shutdown()
    assert_same(serial, on_dask, X)
    assert on_dask.oob_score_ == serial.oob_score_


@pytest.mark.parametrize("cls", [DecisionTreeClassifier, DecisionTreeRegressor])
def test_branch_parallel_tree_is_bit_identical_to_serial(client, data, cls):
    X, y, target = data
    t = y if cls is DecisionTreeClassifier else target
    serial = cls(random_state=0, executor="serial").fit(X, t)
    with DaskExecutor(client) as ex:
        on_dask = cls(random_state=0, executor=ex).fit(X, t)
        stats = ex.transfer_stats()
    assert stats["nested_tasks"] > 0, "the tree was not built branch-parallel"
    assert_same(serial, on_dask, X)


def test_executor_by_name(data):
    X, y, _ = data
    serial = RandomForestClassifier(n_estimators=4, random_state=3, executor="serial").fit(X, y)
    by_name = RandomForestClassifier(n_estimators=4, random_state=3, executor="dask", n_jobs=2).fit(X, y)
    assert_same(serial, by_name, X)  # and the cluster it started is gone (conftest checks)


def set_domain(domain: str | None) -> None:
    if domain is None:
        os.environ.pop(DOMAIN_ENV_VAR, None)
    else:
        os.environ[DOMAIN_ENV_VAR] = domain


@pytest.fixture
def two_machines(client):
    for i, address in enumerate(sorted(client.nthreads())):
        client.run(set_domain, f"machine-{i}", workers=[address])
    yield
    client.run(set_domain, None)


def test_across_machines_the_forest_is_still_bit_identical(client, two_machines):
    X, y, _ = make_data(4_000)  # binned in the client: under the threshold for binning tasks
    serial = RandomForestClassifier(n_estimators=6, random_state=0, executor="serial").fit(X, y)
    with DaskExecutor(client) as ex:
        on_dask = RandomForestClassifier(n_estimators=6, random_state=0, executor=ex).fit(X, y)
        stats = ex.transfer_stats()
    assert_same(serial, on_dask, X)
    assert stats["placements"] == 1 and 0 < stats["shipped_bytes"] <= 2 * X.nbytes


def test_across_machines_big_data_is_binned_in_tasks_and_still_bit_identical(client, two_machines, data):
    # Big data is binned in tasks; their codes come back with the results, so a task
    # that ran on another machine's copy of the dataset loses nothing.
    X, y, _ = data
    serial = RandomForestClassifier(n_estimators=2, random_state=0, executor="serial").fit(X, y)
    with DaskExecutor(client) as ex:
        on_dask = RandomForestClassifier(n_estimators=2, random_state=0, executor=ex).fit(X, y)
    assert_same(serial, on_dask, X)
