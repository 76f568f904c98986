"""``ccp_alpha`` and ``cost_complexity_pruning_path`` on the estimators."""

from __future__ import annotations

import numpy as np
import pytest
from estimator_support import ESTIMATORS, FORESTS, assert_same_trees, small, target_for
from sklearn.datasets import make_classification
from sklearn.tree import DecisionTreeClassifier as SkDecisionTreeClassifier

from shmforest import DecisionTreeClassifier, DecisionTreeRegressor, RandomForestClassifier
from shmforest.tree.pruning import prune_tree

pytestmark = pytest.mark.filterwarnings("error::UserWarning")


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_each_tree_is_the_grown_tree_pruned(cls, data):
    X, y = data[0], target_for(cls, data)
    grown = small(cls).fit(X, y)
    alpha = 0.01 if "Classifier" in cls.__name__ else 0.02
    pruned = small(cls, ccp_alpha=alpha).fit(X, y)
    grown_trees = [e.tree_ for e in grown.estimators_] if cls in FORESTS else [grown.tree_]
    pruned_trees = [e.tree_ for e in pruned.estimators_] if cls in FORESTS else [pruned.tree_]
    for whole, cut in zip(grown_trees, pruned_trees):
        assert cut == prune_tree(whole, alpha)
        assert cut.node_count < whole.node_count
    if cls in FORESTS:
        assert all(e.ccp_alpha == alpha for e in pruned.estimators_)


def test_out_of_bag_predictions_are_the_pruned_trees(data):
    X, y = data[0], data[1]
    forest = small(RandomForestClassifier, ccp_alpha=0.02, oob_score=True, n_estimators=30).fit(X, y)
    refit = small(RandomForestClassifier, ccp_alpha=0.02, n_estimators=30).fit(X, y)
    assert_same_trees(forest, refit)
    from shmforest.tree.tasks import bootstrap_counts

    total = np.zeros((len(y), 2))
    seen = np.zeros(len(y))
    for est in refit.estimators_:
        out = bootstrap_counts(est.random_state, len(y), len(y)) == 0
        total[out] += est.tree_.predict(X[out])
        seen[out] += 1
    np.testing.assert_allclose(forest.oob_decision_function_, total / seen[:, None])


@pytest.mark.parametrize("cls", [DecisionTreeClassifier, DecisionTreeRegressor])
def test_pruning_path_ends_at_the_root(cls, data):
    X, y = data[0], target_for(cls, data)
    path = small(cls).cost_complexity_pruning_path(X, y)
    assert path.ccp_alphas[0] == 0.0
    assert np.all(np.diff(path.ccp_alphas) >= 0) and np.all(np.diff(path.impurities) >= 0)
    sizes = [small(cls, ccp_alpha=a).fit(X, y).tree_.node_count for a in path.ccp_alphas]
    assert sizes[0] == small(cls).fit(X, y).tree_.node_count
    assert sizes == sorted(sizes, reverse=True) and sizes[-1] == 1


def test_pruning_path_fits_a_clone(data):
    X, y = data[0], data[1]
    model = small(DecisionTreeClassifier, ccp_alpha=0.05)
    model.cost_complexity_pruning_path(X, y)
    assert not hasattr(model, "tree_") and model.ccp_alpha == 0.05


def test_path_behaves_as_scikit_learns():
    # The two builders break ties between splits differently, so the trees differ; the
    # paths agree where they must: from pure leaves (impurity 0) up to the root's impurity.
    X, y = make_classification(500, n_features=6, flip_y=0.1, random_state=1)
    a = DecisionTreeClassifier(random_state=0, executor="serial").cost_complexity_pruning_path(X, y)
    b = SkDecisionTreeClassifier(random_state=0).cost_complexity_pruning_path(X, y)
    assert a.impurities[0] == b.impurities[0] == 0.0
    assert a.impurities[-1] == pytest.approx(b.impurities[-1], rel=1e-12)
    assert 0.5 < len(a.ccp_alphas) / len(b.ccp_alphas) < 2
    assert a.ccp_alphas[-1] == pytest.approx(b.ccp_alphas[-1], rel=0.2)


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_pruned_forests_are_the_same_on_every_executor(data, executor):
    X, y = data[0], data[1]
    serial = small(RandomForestClassifier, ccp_alpha=0.01).fit(X, y)
    other = small(RandomForestClassifier, ccp_alpha=0.01, executor=executor, n_jobs=2).fit(X, y)
    assert_same_trees(serial, other)


def test_negative_ccp_alpha_is_rejected(data):
    from sklearn.utils._param_validation import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="ccp_alpha"):
        small(DecisionTreeClassifier, ccp_alpha=-1.0).fit(data[0], data[1])
