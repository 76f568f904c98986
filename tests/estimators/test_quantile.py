"""The quantile regression forest: intervals that cover, the quantile-forest interface,
and quantiles that are the weighted ones of the leaves' training samples."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from estimator_support import assert_same_trees

from shmforest import RandomForestQuantileRegressor, RandomForestRegressor
from shmforest.tree.tasks import bootstrap_counts

pytestmark = pytest.mark.filterwarnings("error::UserWarning")


def heteroscedastic(n, seed):
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 10, size=(n, 4))
    y = X[:, 0] + np.sin(X[:, 1]) + rng.normal(size=n) * (0.2 + 0.3 * X[:, 0])
    return X, y


@pytest.fixture(scope="module")
def fitted():
    X, y = heteroscedastic(300, 0)
    return X, y, RandomForestQuantileRegressor(20, random_state=0, min_samples_leaf=3, executor="serial").fit(X, y)


def test_held_out_interval_covers_about_90_percent():
    X, y = heteroscedastic(4000, 0)
    X_new, y_new = heteroscedastic(2000, 1)
    qrf = RandomForestQuantileRegressor(60, random_state=0, min_samples_leaf=10).fit(X, y)
    low, high = qrf.predict(X_new, quantiles=[0.05, 0.95]).T
    coverage = np.mean((y_new >= low) & (y_new <= high))
    assert 0.86 <= coverage <= 0.94, coverage
    # Heteroscedastic: the interval widens where the noise does.
    width = high - low
    assert width[X_new[:, 0] > 7].mean() > 2 * width[X_new[:, 0] < 3].mean()


def test_shapes_follow_quantile_forest(fitted):
    X, _, qrf = fitted
    assert qrf.predict(X[:7]).shape == (7,)
    assert qrf.predict(X[:7], quantiles=0.3).shape == (7,)
    assert qrf.predict(X[:7], quantiles=[0.3]).shape == (7,)
    assert qrf.predict(X[:7], quantiles=[0.1, 0.5, 0.9]).shape == (7, 3)
    assert qrf.predict(X[:7], quantiles=np.array([0.1, 0.9])).shape == (7, 2)


def test_default_quantiles(fitted):
    X, y, qrf = fitted
    np.testing.assert_array_equal(qrf.predict(X[:5]), qrf.predict(X[:5], quantiles=0.5))
    several = RandomForestQuantileRegressor(5, default_quantiles=[0.2, 0.8], random_state=0).fit(X, y)
    assert several.predict(X[:5]).shape == (5, 2)
    mean = RandomForestQuantileRegressor(5, default_quantiles=None, random_state=0).fit(X, y)
    np.testing.assert_array_equal(mean.predict(X[:5]), mean.predict(X[:5], quantiles="mean"))


def test_mean_is_the_regression_forest_of_the_same_trees(fitted):
    X, y, qrf = fitted
    forest = RandomForestRegressor(20, random_state=0, min_samples_leaf=3, executor="serial").fit(X, y)
    assert_same_trees(qrf, forest)
    np.testing.assert_allclose(qrf.predict(X, quantiles="mean"), forest.predict(X))


def test_quantiles_rise_with_q(fitted):
    X, y, qrf = fitted
    q = qrf.predict(X, quantiles=[0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0])
    assert np.all(np.diff(q, axis=1) >= 0)
    assert q.min() >= y.min() and q.max() <= y.max()


def reference_quantile(qrf, X_train, y_train, x, q):
    """Meinshausen's weights for one row, read off the fitted trees directly."""
    n = len(y_train)
    weight = np.zeros(n)
    for est in qrf.estimators_:
        counts = bootstrap_counts(est.random_state, n, n).astype(float)
        same_leaf = est.tree_.apply(X_train) == est.tree_.apply(x[None])[0]
        w = counts * same_leaf
        weight += w / w.sum() / len(qrf.estimators_)
    order = np.argsort(y_train, kind="stable")
    v, w = y_train[order], weight[order]
    keep = w > 0
    v, w = v[keep], w[keep]
    mid = np.cumsum(w) - w / 2
    return np.interp(q, mid, v)


def test_quantiles_are_the_weighted_quantiles_of_the_leaves(fitted):
    X, y, qrf = fitted
    qs = [0.05, 0.3, 0.5, 0.9]
    got = qrf.predict(X[:10], quantiles=qs)
    for row in range(10):
        expected = [reference_quantile(qrf, X, y, X[row], q) for q in qs]
        np.testing.assert_allclose(got[row], expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("bad", [-0.1, 1.5, [0.5, 2.0], "median", [], np.nan])
def test_quantiles_out_of_range_raise_naming_the_parameter(fitted, bad):
    X, _, qrf = fitted
    with pytest.raises(ValueError, match="'quantiles' parameter"):
        qrf.predict(X[:2], quantiles=bad)


def test_bad_default_quantiles_raise(fitted):
    X, y, _ = fitted
    from sklearn.utils._param_validation import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="default_quantiles"):
        RandomForestQuantileRegressor(3, default_quantiles=1.5).fit(X, y)
    with pytest.raises(ValueError, match="'quantiles' parameter"):
        RandomForestQuantileRegressor(3, default_quantiles=[0.5, 7]).fit(X, y).predict(X)


def test_without_bootstrap_every_sample_is_in_a_leaf(fitted):
    X, y, _ = fitted
    qrf = RandomForestQuantileRegressor(3, bootstrap=False, random_state=0, max_features=0.5).fit(X, y)
    samples = qrf.leaf_samples_
    assert samples.ids.size == 3 * len(y) and np.all(samples.weights == 1)
    # Fully grown on distinct rows: each leaf holds its own sample, so q=0.5 returns the training target.
    np.testing.assert_allclose(qrf.predict(X, quantiles=0.5), y)


def test_sample_weights_weigh_the_leaves(fitted):
    X, y, _ = fitted
    sw = np.random.default_rng(1).uniform(0.5, 2, len(y))
    qrf = RandomForestQuantileRegressor(4, random_state=0, min_samples_leaf=5).fit(X, y, sample_weight=sw)
    est = qrf.estimators_[0]
    counts = bootstrap_counts(est.random_state, len(y), len(y))
    first = qrf.leaf_samples_
    n_in_bag = np.count_nonzero(counts)
    np.testing.assert_allclose(np.sort(first.weights[:n_in_bag]), np.sort((counts * sw)[counts > 0]))


def test_pickle_and_executors_keep_predictions(fitted):
    X, y, qrf = fitted
    again = pickle.loads(pickle.dumps(qrf))
    np.testing.assert_array_equal(again.predict(X, quantiles=[0.1, 0.9]), qrf.predict(X, quantiles=[0.1, 0.9]))
    threaded = RandomForestQuantileRegressor(20, random_state=0, min_samples_leaf=3, executor="thread", n_jobs=2)
    np.testing.assert_array_equal(
        threaded.fit(X, y).predict(X, quantiles=[0.1, 0.9]), qrf.predict(X, quantiles=[0.1, 0.9])
    )


def test_warm_start_keeps_every_trees_samples(fitted):
    X, y, _ = fitted
    grown = RandomForestQuantileRegressor(6, random_state=0, executor="serial").fit(X, y)
    warm = RandomForestQuantileRegressor(3, random_state=0, warm_start=True, executor="serial").fit(X, y)
    warm.set_params(n_estimators=6).fit(X, y)
    np.testing.assert_array_equal(warm.predict(X, quantiles=[0.2, 0.7]), grown.predict(X, quantiles=[0.2, 0.7]))
