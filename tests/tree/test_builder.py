"""TreeBuilder: fits, parameters, bootstrap counts, determinism and branch parallelism."""

from __future__ import annotations

import concurrent.futures as cf
import pickle
import threading
import time
from dataclasses import replace

import numpy as np
import pytest
from sklearn.datasets import (
    load_breast_cancer,
    load_diabetes,
    make_classification,
    make_friedman1,
)
from sklearn.model_selection import KFold
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

import shmforest.tree.growth as growth_module
from shmforest import SharedDataset
from shmforest.executors.base import Executor, completed_future, run_in_task
from shmforest.tree import Binner, Tree, TreeBuilder, TreeParams


def params(**kw) -> TreeParams:
    base = dict(
        criterion="gini",
        max_depth=None,
        min_samples_split=2,
        min_samples_leaf=1,
        max_features=1,
        min_impurity_decrease=0.0,
        max_leaf_nodes=None,
        n_classes=2,
    )
    base.update(kw)
    return TreeParams(**base)


def dataset(X, y, w=None, max_bins=256) -> SharedDataset:
    b = Binner(max_bins).fit(X)
    arrays = dict(Xb=b.transform(X), thresholds=b.thresholds_, y=y)
    if b.missing_.any():
        arrays["missing"] = b.missing_
    if w is not None:
        arrays["w"] = w
    return SharedDataset(**arrays)


def grow(X, y, p, seed=0, counts=None, w=None, parallel=False) -> Tree:
    with dataset(X, y, w) as ds:
        return TreeBuilder(p).build(ds, seed=seed, sample_counts=counts, parallel=parallel)


def bootstrap(n, seed):
    return np.bincount(np.random.default_rng(seed).integers(0, n, n), minlength=n).astype(np.int32)


@pytest.fixture(scope="module")
def clf_data():
    X, y = make_classification(n_samples=3000, n_features=8, n_informative=5, random_state=0)
    return X, y.astype(np.int32)


class BudgetThreads(Executor):
    """Nested submission as the budgeted executors do it: a thread when one is free, else inline."""

    name = "test-threads"
    shares_memory = True

    def __init__(self, max_workers: int = 2) -> None:
        self._pool = cf.ThreadPoolExecutor(max_workers)
        self._free = threading.Semaphore(max_workers - 1)  # the caller holds one
        self._n = max_workers
        self.submitted: list[tuple] = []
        self.threaded = 0

    @property
    def max_workers(self) -> int:
        return self._n

    def submit(self, fn, /, *args, **kwargs):
        self.submitted.append(args)
        if not self._free.acquire(blocking=False):
            return completed_future(run_in_task, (self, fn, args, kwargs), {})
        self.threaded += 1

        def run():
            try:
                return run_in_task(self, fn, args, kwargs)
            finally:
                self._free.release()

        return self._pool.submit(run)

    def shutdown(self, wait=True, *, cancel_futures=False):
        self._pool.shutdown(wait, cancel_futures=cancel_futures)


# --------------------------------------------------------------------------- fits


def test_exact_bins_all_features_fit_the_training_set_perfectly():
    # Under 256 distinct values per feature: bins are exact, so a full tree is pure.
    rng = np.random.default_rng(0)
    X = rng.integers(0, 30, (800, 5)).astype(float)
    y = (X[:, 0] + X[:, 1] * X[:, 2] % 7 > 20).astype(np.int32)
    X = np.unique(np.column_stack([X, y]), axis=0)  # no duplicate rows with two labels
    X, y = X[:, :5], X[:, 5].astype(np.int32)
    tree = grow(X, y, params(max_features=5))
    leaves = tree.children_left == -1
    assert np.all(tree.impurity[leaves] == 0)
    assert np.array_equal(tree.predict(X).argmax(1), y)


@pytest.mark.parametrize("criterion", ["gini", "entropy"])
def test_classification_accuracy_near_sklearn(criterion):
    X, y = load_breast_cancer(return_X_y=True)
    ours, theirs = [], []
    for tr, te in KFold(5, shuffle=True, random_state=0).split(X):
        tree = grow(X[tr], y[tr].astype(np.int32), params(criterion=criterion, max_features=X.shape[1]))
        ours.append(np.mean(tree.predict(X[te]).argmax(1) == y[te]))
        theirs.append(DecisionTreeClassifier(criterion=criterion, random_state=0).fit(X[tr], y[tr]).score(X[te], y[te]))
    assert np.mean(ours) > np.mean(theirs) - 0.03


def test_regression_accuracy_near_sklearn():
    X, y = make_friedman1(n_samples=1500, noise=0.5, random_state=0)
    r2 = lambda t, p: 1 - np.sum((t - p) ** 2) / np.sum((t - t.mean()) ** 2)  # noqa: E731
    ours, theirs = [], []
    for tr, te in KFold(3, shuffle=True, random_state=0).split(X):
        p = params(criterion="squared_error", n_classes=0, max_features=X.shape[1], min_samples_leaf=3)
        ours.append(r2(y[te], grow(X[tr], y[tr], p).predict(X[te])[:, 0]))
        sk = DecisionTreeRegressor(min_samples_leaf=3, random_state=0).fit(X[tr], y[tr])
        theirs.append(r2(y[te], sk.predict(X[te])))
    assert np.mean(ours) > np.mean(theirs) - 0.05


def test_regression_values_and_impurity():
    X, y = load_diabetes(return_X_y=True)
    w = np.random.default_rng(0).uniform(0.5, 2, y.size)
    tree = grow(X, y, params(criterion="squared_error", n_classes=0, max_depth=3, max_features=10), w=w)
    assert tree.value[0, 0] == pytest.approx(np.average(y, weights=w))
    var = np.average((y - np.average(y, weights=w)) ** 2, weights=w)
    assert tree.impurity[0] == pytest.approx(var)
    assert tree.max_depth == 3


# --------------------------------------------------------------------------- node arrays


def _check_node_arrays(tree: Tree, X, y, w, n_classes):
    """Every node's numbers equal those recomputed from the samples its real threshold routes there."""
    internal = np.flatnonzero(tree.children_left != -1)
    left, right = tree.children_left[internal], tree.children_right[internal]
    assert np.array_equal(tree.n_node_samples[internal], tree.n_node_samples[left] + tree.n_node_samples[right])
    assert np.allclose(
        tree.weighted_n_node_samples[internal], tree.weighted_n_node_samples[left] + tree.weighted_n_node_samples[right]
    )
    # Preorder ids: the left child comes next, the right one after the left subtree.
    assert np.array_equal(left, internal + 1) and np.all(right > left)
    inbag = w > 0
    leaves = tree.apply(X[inbag])
    n = np.bincount(leaves, minlength=tree.node_count)
    assert np.array_equal(n[tree.children_left == -1], tree.n_node_samples[tree.children_left == -1])
    wsum = np.bincount(leaves, weights=w[inbag], minlength=tree.node_count)
    assert np.allclose(wsum[tree.children_left == -1], tree.weighted_n_node_samples[tree.children_left == -1])
    for c in range(n_classes):
        cw = np.bincount(leaves, weights=w[inbag] * (y[inbag] == c), minlength=tree.node_count)
        is_leaf = tree.children_left == -1
        assert np.allclose(cw[is_leaf] / wsum[is_leaf], tree.value[is_leaf, c])


def test_node_arrays_agree_with_real_thresholds(clf_data):
    X, y = clf_data
    counts = bootstrap(y.size, 1)
    tree = grow(X, y, params(max_features=3), counts=counts)
    assert tree.n_node_samples[0] == np.count_nonzero(counts)
    assert tree.weighted_n_node_samples[0] == counts.sum()
    _check_node_arrays(tree, X, y, counts.astype(float), 2)


def test_values_are_class_fractions(clf_data):
    X, y = clf_data
    tree = grow(X, y, params(max_depth=4))
    assert np.allclose(tree.value.sum(axis=1), 1.0)
    assert np.allclose(tree.value[0], np.bincount(y) / y.size)


# --------------------------------------------------------------------------- parameters


def test_max_depth_min_samples_split_and_leaf(clf_data):
    X, y = clf_data
    tree = grow(X, y, params(max_depth=5, max_features=4))
    assert tree.max_depth == 5
    tree = grow(X, y, params(min_samples_leaf=20, max_features=4))
    assert tree.n_node_samples[tree.children_left == -1].min() >= 20
    tree = grow(X, y, params(min_samples_split=50, max_features=4))
    internal = tree.children_left != -1
    assert tree.n_node_samples[internal].min() >= 50


def test_min_samples_leaf_counts_distinct_samples(clf_data):
    X, y = clf_data
    counts = bootstrap(y.size, 3)
    tree = grow(X, y, params(min_samples_leaf=7, max_features=8), counts=counts)
    assert tree.n_node_samples[tree.children_left == -1].min() >= 7
    _check_node_arrays(tree, X, y, counts.astype(float), 2)


def test_min_impurity_decrease(clf_data):
    X, y = clf_data
    p = params(max_features=8, min_impurity_decrease=0.01)
    tree = grow(X, y, p)
    internal = np.flatnonzero(tree.children_left != -1)
    wi = tree.weighted_n_node_samples * tree.impurity
    gain = (wi[internal] - wi[tree.children_left[internal]] - wi[tree.children_right[internal]]) / y.size
    assert gain.min() >= 0.01 - 1e-12
    assert 1 < tree.node_count < grow(X, y, replace(p, min_impurity_decrease=0.0)).node_count
    assert grow(X, y, replace(p, min_impurity_decrease=1.0)).node_count == 1


@pytest.mark.parametrize("max_leaf_nodes", [2, 5, 17])
def test_max_leaf_nodes_grows_best_first_like_sklearn(max_leaf_nodes):
    X, y = load_breast_cancer(return_X_y=True)
    X = np.argsort(np.argsort(X, axis=0), axis=0) // 3  # under 256 distinct values: exact bins
    tree = grow(X, y.astype(np.int32), params(max_features=X.shape[1], max_leaf_nodes=max_leaf_nodes))
    sk = DecisionTreeClassifier(max_leaf_nodes=max_leaf_nodes, random_state=0).fit(X, y)
    assert tree.n_leaves == max_leaf_nodes == sk.tree_.n_leaves
    # The same splits were chosen (up to exact ties between features).
    internal = tree.children_left != -1
    sk_internal = sk.tree_.children_left != -1
    assert np.allclose(np.sort(tree.impurity[internal]), np.sort(sk.tree_.impurity[sk_internal]))


def test_max_leaf_nodes_larger_than_the_full_tree(clf_data):
    X, y = clf_data
    full = grow(X[:300], y[:300], params(max_features=8))
    capped = grow(X[:300], y[:300], params(max_features=8, max_leaf_nodes=10_000))
    assert capped.n_leaves == full.n_leaves


def test_constant_features_do_not_count_towards_max_features():
    # One informative feature among many constant ones: scikit-learn's splitter keeps
    # drawing until it finds max_features non-constant ones, and so must we.
    rng = np.random.default_rng(0)
    X = np.zeros((400, 12))
    X[:, 7] = rng.normal(size=400)
    y = (X[:, 7] > 0.3).astype(np.int32)
    tree = grow(X, y, params(max_features=1))
    assert tree.node_count == 3 and tree.feature[0] == 7
    # Binary features go constant deep in the tree, the common case in practice.
    Xb = rng.integers(0, 2, (600, 10)).astype(float)
    yb = (Xb[:, :4].sum(1) % 2).astype(np.int32)
    assert np.array_equal(grow(Xb, yb, params(max_features=1)).predict(Xb).argmax(1), yb)


def test_max_features_draws_vary_with_the_node_and_seed(clf_data):
    X, y = clf_data
    tree = grow(X, y, params(max_features=1))
    assert np.unique(tree.feature[tree.children_left != -1]).size == X.shape[1]
    trees = [grow(X, y, params(max_features=1), seed=s) for s in range(4)]
    assert len({t.feature[0] for t in trees}) > 1


def test_parameters_are_validated(clf_data):
    X, y = clf_data
    bad = [
        dict(max_features=0),
        dict(max_features=9),
        dict(min_samples_split=1),
        dict(min_samples_leaf=0),
        dict(max_depth=-1),
        dict(max_leaf_nodes=1),
        dict(min_impurity_decrease=-1.0),
        dict(criterion="mse"),
    ]
    for kw in bad:
        with pytest.raises(ValueError):
            grow(X, y, params(**kw))


def test_bad_data_is_rejected(clf_data):
    X, y = clf_data
    p = params()
    with pytest.raises(ValueError, match="class indices"):
        grow(X, y + 5, p)
    with pytest.raises(ValueError, match="positive weight"):
        grow(X, y, p, counts=np.zeros(y.size, dtype=np.int32))
    with pytest.raises(ValueError, match="sample_counts"):
        grow(X, y, p, counts=np.ones(5, dtype=np.int32))
    with pytest.raises(ValueError, match="non-negative"):
        grow(X, y, p, counts=-np.ones(y.size, dtype=np.int32))
    with pytest.raises(ValueError, match="finite"):
        grow(X, y, p, w=np.full(y.size, np.nan))
    with pytest.raises(ValueError, match="infinite targets"):
        grow(X, np.full(y.size, np.inf), params(criterion="squared_error", n_classes=0))
    with SharedDataset(Xb=X, thresholds=np.zeros((8, 255)), y=y) as ds:
        with pytest.raises(TypeError, match="uint8"):
            TreeBuilder(p).build(ds, seed=0)


# --------------------------------------------------------------------------- weights


def test_counts_are_weights_and_zero_counts_drop_samples(clf_data):
    X, y = clf_data
    counts = bootstrap(y.size, 5)
    p = params(max_features=3)
    b = Binner().fit(X)
    Xb = b.transform(X)
    with SharedDataset(Xb=Xb, thresholds=b.thresholds_, y=y) as ds:
        by_counts = TreeBuilder(p).build(ds, seed=9, sample_counts=counts)
    with SharedDataset(Xb=Xb, thresholds=b.thresholds_, y=y, w=counts.astype(float)) as ds:
        assert TreeBuilder(p).build(ds, seed=9) == by_counts
    inbag = counts > 0
    with SharedDataset(Xb=Xb[inbag], thresholds=b.thresholds_, y=y[inbag]) as ds:
        # Same samples, same order, same keys: the same tree, bit for bit.
        assert TreeBuilder(p).build(ds, seed=9, sample_counts=counts[inbag]) == by_counts


def test_uniform_weights_scale_but_do_not_change_the_tree(clf_data):
    X, y = clf_data
    p = params(max_features=3)
    plain = grow(X, y, p)
    doubled = grow(X, y, p, counts=np.full(y.size, 2, dtype=np.int32))
    assert np.array_equal(plain.feature, doubled.feature) and np.array_equal(plain.threshold, doubled.threshold)
    assert np.array_equal(2 * plain.weighted_n_node_samples, doubled.weighted_n_node_samples)


def test_float_sample_weights(clf_data):
    X, y = clf_data
    w = np.random.default_rng(0).uniform(0.1, 3.0, y.size)
    counts = bootstrap(y.size, 2)
    tree = grow(X, y, params(max_features=3, min_samples_leaf=2), counts=counts, w=w)
    _check_node_arrays(tree, X, y, w * counts, 2)
    # Weights matter: up-weighting class 1 moves the root's class balance.
    assert tree.value[0, 1] == pytest.approx(np.sum((w * counts)[y == 1]) / np.sum(w * counts))


# --------------------------------------------------------------------------- determinism and parallelism


def test_same_seed_same_tree_and_other_seed_other_tree(clf_data):
    X, y = clf_data
    counts = bootstrap(y.size, 0)
    a = grow(X, y, params(max_features=2), seed=4, counts=counts)
    assert grow(X, y, params(max_features=2), seed=4, counts=counts) == a
    assert grow(X, y, params(max_features=2), seed=5, counts=counts) != a


@pytest.mark.parametrize("small", [2, 16, 200])
@pytest.mark.parametrize("max_features", [3, 8])
def test_sorted_and_histogram_paths_agree_on_exact_sums(clf_data, monkeypatch, small, max_features):
    # Integer weights: both paths score candidates from the same exact sums, so the
    # node size where sorting gives way to histograms cannot change a bit.
    X, y = clf_data
    counts = bootstrap(y.size, 7)
    p = params(max_features=max_features)
    reference = grow(X, y, p, counts=counts)
    monkeypatch.setattr(growth_module, "SMALL_NODE", small)
    assert grow(X, y, p, counts=counts) == reference


@pytest.mark.parametrize("small", [2, 200])
@pytest.mark.parametrize("kind", ["entropy", "squared_error"])
def test_sorted_and_histogram_paths_find_equally_good_trees(clf_data, monkeypatch, small, kind):
    # Float sums: the paths add in different orders, so compare fits, not bits.
    X, y = clf_data
    w = np.random.default_rng(1).uniform(0.5, 2.0, y.size)
    p = params(criterion=kind, n_classes=0 if kind == "squared_error" else 2, max_features=8, max_depth=6)
    target = y.astype(float) + X[:, 0] if kind == "squared_error" else y
    ref = grow(X, target, p, w=w)
    monkeypatch.setattr(growth_module, "SMALL_NODE", small)
    tree = grow(X, target, p, w=w)

    def loss(t):
        leaf = t.children_left == -1
        return np.sum(t.weighted_n_node_samples[leaf] * t.impurity[leaf])

    assert loss(tree) == pytest.approx(loss(ref), rel=0.02)
    assert abs(tree.node_count - ref.node_count) <= 0.05 * ref.node_count
    assert tree.feature[0] == ref.feature[0] and tree.threshold[0] == ref.threshold[0]


@pytest.mark.parametrize("kind", ["gini", "entropy", "squared_error"])
def test_c_and_fortran_order_codes_give_the_same_tree(clf_data, kind):
    X, y = clf_data
    w = np.random.default_rng(3).uniform(0.5, 2.0, y.size)  # float sums, not just counts
    p = params(criterion=kind, n_classes=0 if kind == "squared_error" else 2, max_features=X.shape[1])
    target = y.astype(float) + X[:, 0] if kind == "squared_error" else y
    b = Binner().fit(X)
    trees = []
    for order in ("C", "F"):
        codes = np.asarray(b.transform(X), order=order)
        with SharedDataset(Xb=codes, thresholds=b.thresholds_, y=target, w=w) as ds:
            trees.append(TreeBuilder(p).build(ds, seed=2))
    assert trees[0].node_count > 50
    assert trees[0] == trees[1]


def test_nodes_are_numbered_in_preorder_as_scikit_learn_does(clf_data):
    X, y = clf_data
    tree = grow(X, y, params(max_features=3))
    internal = np.flatnonzero(tree.children_left != -1)
    assert np.array_equal(tree.children_left[internal], internal + 1)  # the left child comes next
    assert np.all(tree.children_right[internal] > tree.children_left[internal])


@pytest.mark.parametrize(
    "kind",
    [
        "exact",
        "float_weights",
        "regression",
        "entropy_msl",
        "subtracted_float",
        "subtracted_regression",
        "min_weight_leaf",
        "poisson",
        "monotonic",
        "monotonic_binary",
        "multi_output_regression",
        "multi_output_classification",
        "multi_output_sorted",
    ],
)
def test_branch_parallel_build_is_bit_identical(clf_data, monkeypatch, kind):
    X, y = clf_data
    counts = bootstrap(y.size, 11)
    w = None
    p = params(max_features=3)
    target = y
    if kind in ("float_weights", "subtracted_float"):
        w = np.random.default_rng(3).uniform(0.2, 2.0, y.size)
    if kind == "subtracted_float":
        # Every feature in every node: larger children's histograms by subtraction,
        # in float sums, which must travel with the nodes handed on.
        p = params(max_features=X.shape[1])
    elif kind in ("regression", "subtracted_regression"):
        p = params(criterion="squared_error", n_classes=0, max_features=3 if kind == "regression" else X.shape[1])
        target = X[:, 1] * 3 + y
    elif kind == "entropy_msl":
        p = params(criterion="entropy", max_features=3, min_samples_leaf=3)
    elif kind == "poisson":
        p = params(criterion="poisson", n_classes=0, max_features=X.shape[1])
        target = np.abs(X[:, 1]).round() + y
    elif kind == "monotonic":
        # Bounds passed down the tree must travel with the nodes handed on.
        p = params(criterion="squared_error", n_classes=0, max_features=3, monotonic_cst=(1, -1, 0, 0, 0, 0, 1, 0))
        target = X[:, 1] * 3 + y
    elif kind == "monotonic_binary":
        p = params(max_features=X.shape[1], monotonic_cst=(1, 0, 0, -1, 0, 0, 0, 1))
    elif kind == "min_weight_leaf":
        w = np.random.default_rng(3).uniform(0.2, 2.0, y.size)
        p = params(max_features=X.shape[1], min_weight_fraction_leaf=0.002)
    elif kind == "multi_output_regression":
        # Histograms of three outputs' sums, subtracted, travelling with the nodes.
        w = np.random.default_rng(3).uniform(0.2, 2.0, y.size)
        p = params(criterion="squared_error", n_classes=0, n_outputs=3, max_features=X.shape[1])
        target = np.column_stack([X[:, 1] * 3 + y, X[:, 2] - X[:, 0], y * 1.5])
    elif kind in ("multi_output_classification", "multi_output_sorted"):
        p = params(n_classes=(2, 3), n_outputs=2, max_features=X.shape[1] if kind.endswith("tion") else 3)
        target = np.column_stack([y, np.digitize(X[:, 3], [-0.5, 0.5])]).astype(np.int32)
    with dataset(X, target, w) as ds:
        assert_branch_parallel_is_serial(ds, p, counts, monkeypatch)


def assert_branch_parallel_is_serial(ds, p, counts, monkeypatch) -> Tree:
    """Grow ``ds`` serially, branch-parallel on threads and through a serial executor; the
    same tree, to the bit, each time (returned)."""
    serial = TreeBuilder(p).build(ds, seed=21, sample_counts=counts)
    # Cut levels into tasks as soon as they hold 32 samples: many tasks, many shapes.
    monkeypatch.setattr(growth_module, "MIN_TASK_SAMPLES", 32)
    ex = BudgetThreads(2)
    try:
        parallel = run_in_task(ex, TreeBuilder(p).build, (ds,), dict(seed=21, sample_counts=counts, parallel=True))
        assert ex.threaded > 0 and len(ex.submitted) > 10
        # The same through a serial executor: every task inline.
        from shmforest.executors.serial import SerialExecutor

        inline = run_in_task(
            SerialExecutor(), TreeBuilder(p).build, (ds,), dict(seed=21, sample_counts=counts, parallel=True)
        )
    finally:
        ex.shutdown()
    assert parallel == serial
    assert inline == serial
    return serial


class HintedThreads(BudgetThreads):
    """BudgetThreads that also say how many threads are free, as the pool executors do."""

    def __init__(self, max_workers: int = 2, free: int | None = None) -> None:
        super().__init__(max_workers)
        self.fixed = free
        self.asked = 0

    def free_workers(self) -> int:
        self.asked += 1
        return self._free._value if self.fixed is None else self.fixed


@pytest.mark.parametrize("free", [0, None])
def test_levels_are_handed_off_only_when_a_worker_is_free(clf_data, monkeypatch, free):
    X, y = clf_data
    monkeypatch.setattr(growth_module, "MIN_TASK_SAMPLES", 32)
    ex = HintedThreads(2, free)
    try:
        with dataset(X, y) as ds:
            serial = TreeBuilder(params(max_features=3)).build(ds, seed=4)
            tree = run_in_task(ex, TreeBuilder(params(max_features=3)).build, (ds,), dict(seed=4, parallel=True))
    finally:
        ex.shutdown()
    assert tree == serial and ex.asked > 0
    if free == 0:
        assert ex.submitted == []  # nobody free: no task would have run anywhere but here
    else:
        assert ex.submitted and ex.threaded == len(ex.submitted)  # every hand-off found its thread


class ThreadsForEveryToken(HintedThreads):
    """A thread per token: the caller holds none, as the process that called ``fit`` (``delegate``)."""

    def __init__(self, max_workers: int = 2) -> None:
        super().__init__(max_workers)
        self._free = threading.Semaphore(max_workers)
        self.from_caller: list[bool] = []

    def submit(self, fn, /, *args, **kwargs):
        self.from_caller.append(threading.current_thread() is threading.main_thread())
        return super().submit(fn, *args, **kwargs)

    def caller_payloads(self) -> list[dict]:
        return [args[2] for args, mine in zip(self.submitted, self.from_caller) if mine]


@pytest.mark.parametrize("max_workers", [2, 3])
def test_a_delegating_caller_hands_every_node_on_at_its_first_cut(clf_data, monkeypatch, max_workers):
    X, y = clf_data
    counts = bootstrap(y.size, 5)
    p = params(max_features=3)
    monkeypatch.setattr(growth_module, "MIN_TASK_SAMPLES", 32)
    handed = {}
    with dataset(X, y) as ds:
        serial = TreeBuilder(p).build(ds, seed=6, sample_counts=counts)
        for delegate in (True, False):
            ex = ThreadsForEveryToken(max_workers)
            try:
                tree = run_in_task(
                    ex,
                    TreeBuilder(p).build,
                    (ds,),
                    dict(seed=6, sample_counts=counts, parallel=True, delegate=delegate),
                )
            finally:
                ex.shutdown()
            assert tree == serial
            handed[delegate] = ex.caller_payloads()
    # Level 1 (the root's two children) is the first cut: both go, one task each, and
    # with them every sample of the tree; without delegate the caller keeps a half.
    assert len(handed[True]) == 2
    assert sum(t["samples"].size for t in handed[True]) == np.count_nonzero(counts)
    assert sum(t["samples"].size for t in handed[False][:1]) < np.count_nonzero(counts)


def test_a_failed_subtree_task_is_raised_after_the_others_finished(clf_data, monkeypatch):
    # The caller closes the dataset once the build raises: no task may still read it.
    X, y = clf_data
    monkeypatch.setattr(growth_module, "MIN_TASK_SAMPLES", 32)
    real = growth_module._grow_task
    calls, finished = [], []
    second_started = threading.Event()

    def flaky(data, setup, payload):
        calls.append(payload["samples"].size)
        if len(calls) == 1:
            second_started.wait(10)  # fail while the other task runs (a task not started is just cancelled)
            raise RuntimeError("subtree task failed")
        second_started.set()
        time.sleep(0.3)
        out = real(data, setup, payload)
        finished.append(True)
        return out

    monkeypatch.setattr(growth_module, "_grow_task", flaky)
    ex = ThreadsForEveryToken(2)
    try:
        with dataset(X, y) as ds:
            with pytest.raises(RuntimeError, match="subtree task failed"):
                run_in_task(
                    ex, TreeBuilder(params(max_features=3)).build, (ds,), dict(seed=0, parallel=True, delegate=True)
                )
            assert len(calls) >= 2 and len(finished) == len(calls) - 1  # every other task done
    finally:
        ex.shutdown()


def test_tasks_receive_handles_not_data(clf_data, monkeypatch):
    X, y = clf_data
    monkeypatch.setattr(growth_module, "MIN_TASK_SAMPLES", 256)
    ex = BudgetThreads(2)
    try:
        with dataset(X, y) as ds:
            run_in_task(ex, TreeBuilder(params(max_features=3)).build, (ds,), dict(seed=0, parallel=True))
            assert ex.submitted
            for args in ex.submitted:
                assert isinstance(args[0], SharedDataset)
                assert len(pickle.dumps(args[0])) < 2048
                # The rest is the task's samples and their weights, never X.
                assert len(pickle.dumps(args[1:])) < X.shape[0] * 24
    finally:
        ex.shutdown()


def test_parallel_without_a_task_context_runs_inline(clf_data):
    X, y = clf_data
    p = params(max_features=3)
    assert grow(X, y, p, parallel=True) == grow(X, y, p)


def test_tree_comes_back_small(clf_data):
    X, y = clf_data
    tree = grow(X, y, params(max_features=3), counts=bootstrap(y.size, 0))
    assert len(pickle.dumps(tree)) < tree.node_count * 80 + 2048


@pytest.mark.parametrize("max_workers", [1, 2])
@pytest.mark.parametrize("name", ["serial", "thread", "process", "shm"])
def test_every_executor_at_every_budget_builds_the_same_tree(name, max_workers):
    get_executor = pytest.importorskip("shmforest.executors.registry").get_executor
    X, y = make_classification(n_samples=12_000, n_features=6, n_informative=4, random_state=1)
    y = y.astype(np.int32)
    counts = bootstrap(y.size, 4)
    p = params(max_features=2)
    with dataset(X, y) as ds:
        reference = TreeBuilder(p).build(ds, seed=8, sample_counts=counts)
        with get_executor(name, max_workers=max_workers) as ex:
            # A bound method pickles by reference to TreeBuilder: it runs in any worker.
            tree = ex.submit(TreeBuilder(p).build, ds, 8, counts, True).result()
    assert tree == reference
