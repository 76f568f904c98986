"""``class_weight`` with scikit-learn's semantics: what it weighs, what it rejects, and
the balanced accuracy it buys on an imbalanced problem beside scikit-learn."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from estimator_support import assert_same_trees, small
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier as SkRandomForestClassifier
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.tree import DecisionTreeClassifier as SkDecisionTreeClassifier
from sklearn.utils.class_weight import compute_sample_weight

from shmforest import DecisionTreeClassifier, RandomForestClassifier
from shmforest.tree.tasks import balanced_class_weights, bootstrap_counts

pytestmark = pytest.mark.filterwarnings("error::UserWarning")


@pytest.fixture(scope="module")
def imbalanced():
    X, y = make_classification(n_samples=600, n_features=8, n_informative=4, weights=[0.9, 0.1], random_state=0)
    # Fewer distinct values than bins: the bins are exact, so sample weights (which
    # place quantile bins) and class weights (which do not) meet the same codes.
    return np.round(X, 1), y


def test_dict_weights_are_sample_weights(imbalanced):
    X, y = imbalanced
    weighted = small(DecisionTreeClassifier, class_weight={0: 1.0, 1: 3.0}).fit(X, y)
    by_samples = small(DecisionTreeClassifier).fit(X, y, sample_weight=np.where(y == 1, 3.0, 1.0))
    assert_same_trees(weighted, by_samples)


def test_balanced_tree_is_the_dict_scikit_learn_computes(imbalanced):
    X, y = imbalanced
    w = compute_sample_weight("balanced", y)
    balanced = small(DecisionTreeClassifier, class_weight="balanced").fit(X, y)
    by_dict = small(DecisionTreeClassifier, class_weight={0: w[y == 0][0], 1: w[y == 1][0]}).fit(X, y)
    assert_same_trees(balanced, by_dict)
    assert balanced.tree_.weighted_n_node_samples[0] == pytest.approx(len(y))


def test_class_weights_multiply_sample_weights(imbalanced):
    X, y = imbalanced
    sw = np.random.default_rng(0).uniform(0.5, 2.0, len(y))
    both = small(DecisionTreeClassifier, class_weight={0: 1.0, 1: 4.0}).fit(X, y, sample_weight=sw)
    product = small(DecisionTreeClassifier).fit(X, y, sample_weight=sw * np.where(y == 1, 4.0, 1.0))
    assert_same_trees(both, product)


def test_balanced_subsample_without_bootstrap_is_balanced(imbalanced):
    X, y = imbalanced
    a = small(RandomForestClassifier, class_weight="balanced_subsample", bootstrap=False).fit(X, y)
    b = small(RandomForestClassifier, class_weight="balanced", bootstrap=False).fit(X, y)
    assert_same_trees(a, b)


def test_balanced_subsample_weighs_each_bootstrap_sample(imbalanced):
    X, y = imbalanced
    forest = small(RandomForestClassifier, class_weight="balanced_subsample").fit(X, y)
    for est in forest.estimators_:
        counts = bootstrap_counts(est.random_state, len(y), len(y))
        # Balanced: each class present carries the same total weight at the root.
        assert est.tree_.weighted_n_node_samples[0] == pytest.approx(counts.sum())
        root = est.tree_.value[0]
        np.testing.assert_allclose(root, [0.5, 0.5])


def test_balanced_class_weights_match_scikit_learn_on_a_bootstrap_sample():
    rng = np.random.default_rng(3)
    y = rng.choice(3, size=200, p=[0.7, 0.25, 0.05])
    indices = rng.integers(0, 200, size=150)
    counts = np.bincount(indices, minlength=200)
    ours = balanced_class_weights(y, counts, 3)[y]
    np.testing.assert_allclose(ours, compute_sample_weight("balanced", y, indices=indices))


def test_a_class_missing_from_the_bootstrap_weighs_zero():
    y = np.array([0, 0, 0, 1, 2])
    counts = np.array([2, 1, 1, 1, 0])
    np.testing.assert_allclose(balanced_class_weights(y, counts, 3), [5 / (2 * 4), 5 / (2 * 1), 0.0])


def test_forest_class_weights_shape_the_bootstrap_draws(imbalanced):
    # scikit-learn's forests (1.9) draw the bootstrap sample in proportion to the class
    # weights: the minority class fills about half of each balanced bootstrap sample.
    X, y = imbalanced
    forest = small(RandomForestClassifier, class_weight="balanced", n_estimators=4).fit(X, y)
    for est in forest.estimators_:
        assert 0.4 < est.tree_.value[0][1] < 0.6


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_weighted_forests_are_the_same_on_every_executor(imbalanced, executor):
    X, y = imbalanced
    for class_weight in ("balanced", "balanced_subsample", {0: 1, 1: 5}):
        serial = small(RandomForestClassifier, class_weight=class_weight, n_estimators=3).fit(X, y)
        other = small(
            RandomForestClassifier, class_weight=class_weight, n_estimators=3, executor=executor, n_jobs=2
        ).fit(X, y)
        assert_same_trees(serial, other)


def test_out_of_bag_score_with_class_weights(imbalanced):
    X, y = imbalanced
    with warnings.catch_warnings():
        # Balanced draws take the minority's few samples into nearly every bootstrap
        # sample (as scikit-learn's do), so some have no out-of-bag prediction.
        warnings.filterwarnings("ignore", "some samples were in every tree", UserWarning)
        forest = small(RandomForestClassifier, class_weight="balanced", n_estimators=20, oob_score=True).fit(X, y)
    assert 0.5 < forest.oob_score_ <= 1.0


@pytest.mark.parametrize(
    "class_weight",
    [{0: 1, 5: 3}, [{0: 1, 1: 2}], "bogus", 3, {0: 1, 1: 2, 5: 3}, {0: 1}],
    ids=["unknown-and-missing", "list", "bad-preset", "number", "unknown-only", "partial"],
)
@pytest.mark.parametrize(
    "ours, theirs",
    [
        (DecisionTreeClassifier, SkDecisionTreeClassifier),
        (RandomForestClassifier, SkRandomForestClassifier),
    ],
)
def test_bad_class_weight_fails_as_in_scikit_learn(imbalanced, class_weight, ours, theirs):
    X, y = imbalanced
    try:
        theirs(class_weight=class_weight).fit(X, y)
    except ValueError as exc:
        expected = exc
    else:
        expected = None
    if expected is None:
        small(ours, class_weight=class_weight).fit(X, y)
        return
    with pytest.raises(type(expected)) as raised:
        small(ours, class_weight=class_weight).fit(X, y)
    assert str(raised.value).replace(type(small(ours)).__name__, "") == str(expected).replace(theirs.__name__, "")


def test_presets_warn_with_warm_start(imbalanced):
    X, y = imbalanced
    with pytest.warns(UserWarning, match="not recommended for warm_start"):
        small(RandomForestClassifier, class_weight="balanced", warm_start=True).fit(X, y)


# ----------------------------------------------------------------- beside scikit-learn

SEEDS = (0, 1, 2)


def _balanced_accuracy(cls, X, y, **params):
    scores = []
    for seed in SEEDS:
        folds = StratifiedKFold(5, shuffle=True, random_state=seed)
        model = cls(random_state=seed, **params)
        scores.append(cross_val_score(model, X, y, cv=folds, scoring="balanced_accuracy").mean())
    return float(np.mean(scores))


@pytest.mark.parametrize(
    "ours, theirs, params",
    [
        (
            RandomForestClassifier,
            SkRandomForestClassifier,
            {"n_estimators": 40, "class_weight": "balanced", "min_samples_leaf": 5},
        ),
        (
            RandomForestClassifier,
            SkRandomForestClassifier,
            {"n_estimators": 40, "class_weight": "balanced_subsample", "min_samples_leaf": 5},
        ),
        (
            RandomForestClassifier,
            SkRandomForestClassifier,
            {"n_estimators": 40, "class_weight": {0: 1, 1: 10}, "min_samples_leaf": 5},
        ),
        (DecisionTreeClassifier, SkDecisionTreeClassifier, {"class_weight": "balanced", "max_depth": 6}),
    ],
    ids=["forest-balanced", "forest-balanced_subsample", "forest-dict", "tree-balanced"],
)
def test_balanced_accuracy_beside_scikit_learn_on_a_95_5_problem(ours, theirs, params, record_property):
    """Same parameters, 5-fold CV, mean of 3 seeds: within 1 point of scikit-learn."""
    X, y = make_classification(
        n_samples=3000, n_features=20, n_informative=6, weights=[0.95, 0.05], flip_y=0.01, random_state=0
    )
    extra = {"executor": "serial"} if ours is DecisionTreeClassifier else {}
    mine = _balanced_accuracy(ours, X, y, **params, **extra)
    reference = _balanced_accuracy(theirs, X, y, **params)
    record_property("balanced_accuracy", {"shmforest": mine, "scikit-learn": reference})
    assert mine >= reference - 0.01, (mine, reference)
