"""Fitting on executors: one task per tree, one placed dataset, fit_many, and
determinism across executors and budgets."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from estimator_support import (
    FORESTS,
    assert_same_trees,
    make_data,
    prediction,
    small,
)

import shmforest.estimators.batch as fitting
import shmforest.tree.growth as growth
import shmforest.tree.tasks as tree_tasks
from shmforest import (
    DecisionTreeClassifier,
    DecisionTreeRegressor,
    ExtraTreesClassifier,
    RandomForestClassifier,
    RandomForestRegressor,
    fit_many,
)
from shmforest.budget import ProcessBudget
from shmforest.executors.serial import SerialExecutor
from shmforest.tree.builder import TreeBuilder

# A warning nobody asked for is a defect here; tests that expect one use pytest.warns.
pytestmark = pytest.mark.filterwarnings("error::UserWarning")

# ----------------------------------------------------------------- executors


class RecordingExecutor(SerialExecutor):
    """A serial executor that remembers what was submitted to it and whether it was shut down."""

    def __init__(self, max_workers=4, **options):
        super().__init__(**options)
        self.calls = []
        self.was_shut_down = False
        self._max_workers = max_workers

    @property
    def max_workers(self):  # claims workers, so the builder hands subtrees on (run inline here)
        return self._max_workers

    def submit(self, fn, /, *args, **kwargs):
        self.calls.append((fn, args))
        return super().submit(fn, *args, **kwargs)

    def shutdown(self, wait=True, *, cancel_futures=False):
        self.was_shut_down = True
        super().shutdown(wait, cancel_futures=cancel_futures)

    def tree_tasks(self):
        return [args for fn, args in self.calls if fn is tree_tasks.fit_tree]


def test_forest_submits_one_task_per_tree_and_leaves_a_given_executor_running(data):
    X, y, _ = data
    ex = RecordingExecutor()
    model = RandomForestClassifier(7, executor=ex, random_state=0).fit(X, y)
    tasks = ex.tree_tasks()
    assert len(tasks) == 7
    assert [t[2] for t in tasks] == [e.random_state for e in model.estimators_]
    assert all(t[5] is False for t in tasks)  # trees side by side, no branch parallelism
    assert not ex.was_shut_down
    assert ex.submit(int, "3").result() == 3


def test_decision_tree_on_one_worker_is_one_branch_parallel_task(data):
    X, y, _ = data
    ex = RecordingExecutor(max_workers=1)
    DecisionTreeClassifier(executor=ex, random_state=0).fit(X, y)
    tasks = ex.tree_tasks()
    assert len(tasks) == 1 and tasks[0][5] is True


class Nesting(RecordingExecutor):
    """Runs tasks inline and tells the caller's submissions from theirs; with ``budget``, exposes it."""

    depth = 0

    def __init__(self, max_workers=2, budget=None):
        super().__init__(max_workers=max_workers)
        if budget is not None:
            self.budget = budget

    def submit(self, fn, /, *args, **kwargs):
        free = self.budget.available if hasattr(self, "budget") else None
        self.calls.append((("depth", self.depth), free))
        self.depth += 1
        try:
            return super().submit(fn, *args, **kwargs)
        finally:
            self.depth -= 1

    def from_caller(self):
        """(payload, free tokens at submission) of each subtree task the caller itself submitted."""
        marks, calls = self.calls[::2], self.calls[1::2]
        return [
            (args[2], free)
            for ((_, depth), free), (fn, args) in zip(marks, calls)
            if depth == 0 and fn is growth._grow_task
        ]

    def tree_tasks(self):
        return [args for fn, args in self.calls[1::2] if fn is tree_tasks.fit_tree]


def test_decision_tree_on_several_workers_grows_here_and_hands_its_subtrees_on(data, monkeypatch):
    X, y, _ = data
    monkeypatch.setattr(growth, "MIN_TASK_SAMPLES", 32)
    ex = Nesting(max_workers=2)  # no budget: no token to hold, so the caller only waits
    model = DecisionTreeClassifier(executor=ex, random_state=0).fit(X, y)
    assert ex.tree_tasks() == []  # not one task on one worker: the caller grows the top
    from_caller = [payload for payload, _ in ex.from_caller()]
    # The root's two children, one task each, with every sample between them.
    assert len(from_caller) == 2 and sum(p["samples"].size for p in from_caller) == X.shape[0]
    reference = DecisionTreeClassifier(executor="serial", random_state=0).fit(X, y)
    assert model.tree_ == reference.tree_


def test_decision_tree_fitted_here_holds_a_token_keeps_a_part_and_gives_the_token_back(data, monkeypatch):
    X, y, _ = data
    monkeypatch.setattr(growth, "MIN_TASK_SAMPLES", 32)
    budget = ProcessBudget(2, inherit=False)
    try:
        ex = Nesting(max_workers=2, budget=budget)
        model = DecisionTreeClassifier(executor=ex, random_state=0).fit(X, y)
        from_caller = ex.from_caller()
        assert from_caller, "the caller handed nothing on"
        # It held one of the two tokens while it grew, and kept a part of its first cut
        # (handing every part on, the first cut's tasks would hold every sample).
        assert all(free == 1 for _, free in from_caller)
        first_depth = int(np.min(from_caller[0][0]["depth"]))
        first_cut = [p for p, _ in from_caller if int(np.min(p["depth"])) == first_depth]
        assert 0 < sum(p["samples"].size for p in first_cut) < X.shape[0]
        assert budget.available == 2  # given back
        reference = DecisionTreeClassifier(executor="serial", random_state=0).fit(X, y)
        assert model.tree_ == reference.tree_
    finally:
        budget.close()


def test_decision_tree_fitted_here_warms_the_executor_up_only_for_a_tree_it_will_cut(data, monkeypatch):
    X, y, _ = data

    class Warmed(Nesting):
        warmed = 0

        def warm_up(self):
            self.warmed += 1

    for min_task, max_depth, expected in ((32, None, 1), (32, 1, 0), (X.shape[0] + 1, None, 0)):
        monkeypatch.setattr(growth, "MIN_TASK_SAMPLES", min_task)
        ex = Warmed(max_workers=2)
        DecisionTreeClassifier(executor=ex, max_depth=max_depth, random_state=0).fit(X, y)
        assert ex.warmed == expected, (min_task, max_depth)


def test_decision_tree_fitted_here_gives_its_token_back_when_the_fit_fails(data, monkeypatch):
    X, y, _ = data
    monkeypatch.setattr(growth, "MIN_TASK_SAMPLES", 32)

    class Failing(Nesting):
        def submit(self, fn, /, *args, **kwargs):
            raise RuntimeError("no worker for this subtree")

    class FailingWarmUp(Nesting):
        def warm_up(self):
            raise RuntimeError("a plugin's broken hint")

    budget = ProcessBudget(2, inherit=False)
    try:
        for cls in (Failing, FailingWarmUp):
            with pytest.raises(RuntimeError):
                DecisionTreeClassifier(executor=cls(max_workers=2, budget=budget), random_state=0).fit(X, y)
            assert budget.available == 2, cls.__name__
    finally:
        budget.close()


def test_decision_tree_fitted_here_with_every_token_taken_hands_every_part_on(data, monkeypatch):
    X, y, _ = data
    monkeypatch.setattr(growth, "MIN_TASK_SAMPLES", 32)
    budget = ProcessBudget(2, inherit=False)
    try:
        held = budget.try_acquire(2)  # someone else's work holds them: computing here would exceed the budget
        ex = Nesting(max_workers=2, budget=budget)
        DecisionTreeClassifier(executor=ex, random_state=0).fit(X, y)
        from_caller = [payload for payload, _ in ex.from_caller()]
        assert len(from_caller) == 2 and sum(p["samples"].size for p in from_caller) == X.shape[0]
        assert budget.available == 0
        budget.release(held)
    finally:
        budget.close()


def test_an_executor_made_by_name_is_shut_down(data, monkeypatch):
    made = []

    def by_name(name, max_workers):
        ex = RecordingExecutor()
        made.append((name, max_workers, ex))
        return ex

    monkeypatch.setattr(fitting, "_executor_by_name", by_name)
    X, y, _ = data
    RandomForestClassifier(3, executor="anything", n_jobs=2).fit(X, y)
    RandomForestClassifier(3, n_jobs=-1).fit(X, y)
    assert [(name, n) for name, n, _ in made] == [("anything", 2), ("thread", None)]
    assert all(ex.was_shut_down and len(ex.tree_tasks()) == 3 for _, _, ex in made)


def test_fit_places_one_dataset_and_closes_it(data, monkeypatch):
    placed = []
    real = fitting.SharedDataset

    def spy(*args, **kwargs):
        placed.append(real(*args, **kwargs))
        return placed[-1]

    monkeypatch.setattr(fitting, "SharedDataset", spy)
    X, y, _ = data
    small(RandomForestClassifier, n_estimators=30, oob_score=True).fit(X, y, sample_weight=np.ones(len(y)))
    assert len(placed) == 1
    assert sorted(placed[0].handles) == ["X", "Xb", "thresholds", "w", "y"]
    assert placed[0].closed


def test_a_failing_tree_leaves_the_model_as_it_was(data, monkeypatch):
    X, y, _ = data
    model = small(RandomForestClassifier, n_estimators=3, warm_start=True).fit(X, y)
    before = list(model.estimators_)
    real = TreeBuilder.build
    built = []

    def build(self, *args, **kwargs):
        built.append(1)
        if len(built) % 3 == 0:
            raise RuntimeError("tree 5 failed")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(TreeBuilder, "build", build)
    with pytest.raises(RuntimeError, match="tree 5 failed"):
        model.set_params(n_estimators=8).fit(X, y)
    assert model.estimators_ == before
    fresh = small(RandomForestClassifier, n_estimators=8)
    with pytest.raises(RuntimeError):
        fresh.fit(X, y)
    assert not hasattr(fresh, "estimators_")


def test_verbose_draws_a_progress_bar_on_stderr(data, capsys):
    X, y, _ = data
    small(RandomForestClassifier, n_estimators=7, verbose=1).fit(X, y)
    err = capsys.readouterr().err
    assert "RandomForestClassifier" in err and "7/7" in err and err.endswith("\n")
    small(RandomForestClassifier, n_estimators=7).fit(X, y)
    assert capsys.readouterr().err == ""


# ----------------------------------------------------------------- fit_many


def test_fit_many_fits_a_dict_in_place_like_separate_fits(data):
    X, y, _ = data
    models = {
        "shallow": RandomForestClassifier(5, max_depth=2, random_state=1),
        "deep": RandomForestClassifier(30, random_state=2, oob_score=True),
        "tree": DecisionTreeClassifier(random_state=3),
    }
    out = fit_many(models, X, y, executor="serial")
    assert out is models
    for model in models.values():
        separate = type(model)(**{**model.get_params(), "executor": "serial"}).fit(X, y)
        assert_same_trees(model, separate)
        np.testing.assert_array_equal(model.predict_proba(X), separate.predict_proba(X))
    assert models["deep"].oob_score_ == pytest.approx(
        RandomForestClassifier(30, random_state=2, oob_score=True, executor="serial").fit(X, y).oob_score_
    )


def test_fit_many_runs_every_tree_on_one_executor_and_one_dataset_per_target_kind(data, monkeypatch):
    X, _, target = data
    placed = []
    real = fitting.SharedDataset
    monkeypatch.setattr(fitting, "SharedDataset", lambda *a, **k: placed.append(real(*a, **k)) or placed[-1])
    ex = RecordingExecutor()
    models = [
        RandomForestRegressor(3, random_state=0),
        RandomForestRegressor(4, random_state=1),
        DecisionTreeRegressor(),
    ]
    assert fit_many(models, X, target, executor=ex) is models
    assert len(ex.tree_tasks()) == 3 + 4 + 1
    assert len(placed) == 1 and placed[0].closed
    assert all(m.score(X, target) > 0.5 for m in models)


def test_fit_many_mixes_classifiers_and_regressors(data):
    X, y, _ = data
    clf, reg = small(RandomForestClassifier), small(RandomForestRegressor)
    fit_many([clf, reg], X, y, executor="serial")
    np.testing.assert_array_equal(clf.classes_, [0, 1])
    assert reg.predict(X).dtype == np.float64 and not hasattr(reg, "classes_")


@pytest.mark.parametrize(
    "models, exc, fragment",
    [
        ("forest", TypeError, "mapping or a sequence"),
        ([RandomForestClassifier(2), object()], TypeError, r"models\[1\] must be a shmforest"),
        ({"a": RandomForestClassifier(2), "b": RandomForestClassifier(2, max_bins=16)}, ValueError, "share max_bins"),
        ({"a": RandomForestClassifier(2), "b": RandomForestClassifier(0)}, ValueError, "n_estimators"),
    ],
    ids=["string", "not-an-estimator", "max-bins", "bad-parameter"],
)
def test_fit_many_rejects_bad_models(data, models, exc, fragment):
    X, y, _ = data
    with pytest.raises(exc, match=fragment):
        fit_many(models, X, y, executor="serial")
    for model in models.values() if isinstance(models, dict) else []:
        assert not hasattr(model, "estimators_")


def test_fit_many_rejects_the_same_model_twice(data):
    model = RandomForestClassifier(2)
    with pytest.raises(ValueError, match="same object"):
        fit_many([model, model], data[0], data[1], executor="serial")


# ----------------------------------------------------------------- determinism


@pytest.fixture(scope="module")
def big_data():
    """Big enough that a single tree's levels are cut into branch-parallel tasks."""
    X, y, target = make_data(n=20_000, seed=2)
    weights = np.random.default_rng(2).uniform(0.5, 2.0, size=len(y))
    return X, y, target, weights


DETERMINISM_CASES = {
    "forest-classifier": (RandomForestClassifier, {"n_estimators": 5, "oob_score": True}),
    "forest-regressor": (RandomForestRegressor, {"n_estimators": 5, "oob_score": True, "max_features": 0.5}),
    "tree-classifier": (DecisionTreeClassifier, {"max_features": "sqrt"}),
    "tree-regressor": (DecisionTreeRegressor, {"max_depth": 10}),
    "extra-trees-classifier": (ExtraTreesClassifier, {"n_estimators": 5, "bootstrap": True, "oob_score": True}),
    "tree-random-splitter": (DecisionTreeRegressor, {"splitter": "random", "max_depth": 14}),
}


def _determinism_fit(case, data, big_data, **params):
    cls, case_params = DETERMINISM_CASES[case]
    if cls in FORESTS:
        X, y, target = data
        w = np.linspace(0.5, 1.5, len(y))
    else:
        X, y, target, w = big_data
    y = y if "Classifier" in cls.__name__ else target
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "some samples were in every tree", UserWarning)  # 5 trees only
        model = cls(**{"random_state": 0, **case_params, **params}).fit(X, y, sample_weight=w)
    return model, X


@pytest.fixture(scope="module")
def reference(data, big_data):
    """Serial fits every other executor and budget must match bit for bit."""
    return {case: _determinism_fit(case, data, big_data, executor="serial")[0] for case in DETERMINISM_CASES}


def test_the_big_tree_is_really_built_branch_parallel(big_data):
    X, y, _, w = big_data
    ex = RecordingExecutor()
    DecisionTreeClassifier(random_state=0, max_features="sqrt", executor=ex).fit(X, y, sample_weight=w)
    assert ex.tree_tasks() == []  # several workers: grown from here...
    assert sum(fn is growth._grow_task for fn, _ in ex.calls) >= 2  # ...and the builder handed subtrees on


@pytest.mark.parametrize("n_jobs", [1, 2, 3])
@pytest.mark.parametrize("executor", ["serial", "thread", "process", "shm"])
@pytest.mark.parametrize("case", list(DETERMINISM_CASES))
def test_every_executor_at_every_budget_gives_identical_models(data, big_data, reference, case, executor, n_jobs):
    model, X = _determinism_fit(case, data, big_data, executor=executor, n_jobs=n_jobs)
    expected = reference[case]
    assert_same_trees(model, expected)
    np.testing.assert_array_equal(prediction(model, X), prediction(expected, X))
    for name in ("oob_score_", "oob_decision_function_", "oob_prediction_"):
        if hasattr(expected, name):
            np.testing.assert_array_equal(getattr(model, name), getattr(expected, name))


def test_a_plain_concurrent_futures_executor_works_too(data, big_data, reference):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:
        for case in ("forest-classifier", "tree-classifier"):
            model, _ = _determinism_fit(case, data, big_data, executor=pool)
            assert_same_trees(model, reference[case])


def test_a_fit_places_only_what_its_trees_read(big_data, monkeypatch):
    """Binning reads X where it is, whatever its size; the one placed dataset holds the codes,
    thresholds, targets and weights, and X only when out-of-bag predictions need it."""
    from shmforest.shared import SharedDataset

    X, y, _, w = big_data
    placed, real_add = [], SharedDataset.add

    def recording_add(self, **arrays):
        placed.append(set(arrays))
        return real_add(self, **arrays)

    monkeypatch.setattr(SharedDataset, "add", recording_add)
    ex = RecordingExecutor(max_workers=2)
    fitting._bin(X, w, 256, ex)
    assert ex.calls == [] and placed == []
    small(RandomForestClassifier, n_estimators=3, executor=ex).fit(X, y, sample_weight=w)
    assert placed == [{"Xb", "thresholds", "y", "w"}]
    assert {fn for fn, _ in ex.calls} == {tree_tasks.fit_tree}
    placed.clear()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "some samples were in every tree", UserWarning)  # 3 trees only
        small(RandomForestClassifier, n_estimators=3, oob_score=True, executor=ex).fit(X, y)
    assert placed == [{"Xb", "thresholds", "y", "X"}]


def test_mid_sized_data_is_binned_by_threads_here_exactly_as_in_one_piece(big_data, monkeypatch):
    import threading

    from shmforest.executors.base import run_in_task
    from shmforest.tree.binning import Binner

    X, y, _, w = big_data  # 120,000 values: above THREADED_BINNING_CELLS
    assert fitting.THREADED_BINNING_CELLS <= X.size
    real, seen = tree_tasks.bin_columns, []

    def recording(X, w, start, stop, max_bins):
        seen.append((threading.current_thread().name, start, stop))
        return real(X, w, start, stop, max_bins)

    monkeypatch.setattr(tree_tasks, "bin_columns", recording)
    monkeypatch.setattr(fitting, "usable_cores", lambda: (8, "test"))  # whatever this machine has
    ex = RecordingExecutor(max_workers=2)
    thresholds, ranges, codes = fitting._bin(X, w, 256, ex)
    assert ex.calls == []  # no tasks...
    # ...two threads: this one bins the first group, a binning thread the second.
    assert sorted(seen) == sorted([(threading.current_thread().name, 0, 3), ("shmforest-binning_0", 3, 6)])
    whole = Binner(256).fit(X, w)
    np.testing.assert_array_equal(thresholds, whole.thresholds_)
    np.testing.assert_array_equal(ranges, whole.bin_ranges_)
    np.testing.assert_array_equal(codes, whole.transform(X))
    # Inside a task this process holds one token: one thread, the task's own.
    seen.clear()
    again = run_in_task(ex, fitting._bin, (X, w, 256, ex), {})
    assert [(name, a, b) for name, a, b in seen] == [(threading.current_thread().name, 0, 6)]
    np.testing.assert_array_equal(again[2], codes)


def test_a_fit_on_worker_processes_bins_here_and_submits_only_trees(big_data, monkeypatch):
    """On ``shm`` too, X is binned in the caller (nothing of X placed) and the forest is the same."""
    from shmforest import get_executor

    X, y, _, w = big_data
    reference = small(RandomForestClassifier, n_estimators=3).fit(X, y, sample_weight=w)
    with get_executor("shm", max_workers=2) as ex:
        submitted = []
        real_submit = ex.submit
        monkeypatch.setattr(ex, "submit", lambda fn, *a, **k: submitted.append(fn) or real_submit(fn, *a, **k))
        model = small(RandomForestClassifier, n_estimators=3, executor=ex).fit(X, y, sample_weight=w)
    assert submitted == [tree_tasks.fit_tree] * 3
    assert_same_trees(model, reference)


def test_threaded_prediction_is_bit_identical(big_data, monkeypatch):
    import threading

    from shmforest.tree.ensemble import ForestArrays, predict_forest

    X, y, _, _ = big_data
    model = small(RandomForestClassifier, n_estimators=12, max_depth=8).fit(X[:3000], y[:3000])
    threads = set()
    real = ForestArrays._walk
    monkeypatch.setattr(ForestArrays, "_walk", lambda self, *a: threads.add(threading.get_ident()) or real(self, *a))
    one = model.set_params(n_jobs=1).predict_proba(X)
    assert len(threads) == 1
    threads.clear()
    two = model.set_params(n_jobs=2).predict_proba(X)
    assert len(threads) == 2
    np.testing.assert_array_equal(two, one)
    np.testing.assert_array_equal(model.set_params(n_jobs=None).predict_proba(X), one)  # every usable core
    np.testing.assert_array_equal(one, predict_forest([e.tree_ for e in model.estimators_], X))


def test_random_state_fixes_the_forest_and_none_varies_it(data):
    X, y, _ = data
    a = small(RandomForestClassifier, random_state=11).fit(X, y)
    b = small(RandomForestClassifier, random_state=11).fit(X, y)
    assert_same_trees(a, b)
    seeds = [e.random_state for e in small(RandomForestClassifier, random_state=None).fit(X, y).estimators_]
    assert seeds != [e.random_state for e in small(RandomForestClassifier, random_state=None).fit(X, y).estimators_]
    rs = np.random.RandomState(5)
    c = small(RandomForestClassifier, random_state=rs).fit(X, y)
    d = small(RandomForestClassifier, random_state=rs).fit(X, y)  # the RandomState advanced
    assert [e.random_state for e in c.estimators_] != [e.random_state for e in d.estimators_]


def test_no_warnings_in_a_plain_fit(data):
    X, y, _ = data
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        small(RandomForestClassifier, oob_score=True, n_estimators=20).fit(X, y).predict(X)


_PRELOAD_LIST_SCRIPT = """
import shmforest.estimators.batch  # a fit registers the forest's preloads
from shmforest.pool.launch import _PRELOAD
print(",".join(_PRELOAD))
"""

_WORKER_TASKS_SCRIPT = """
import sys
for module in sys.argv[1].split(","):  # what a forkserver worker starts with
    __import__(module)
import numpy as np
from shmforest.shared import SharedDataset
from shmforest.tree.builder import TreeParams
before = set(sys.modules)
from shmforest.tree.tasks import bin_columns, fit_tree
X = np.random.default_rng(0).normal(size=(3000, 6))
y = (X[:, 0] > 0).astype(np.intp)
thresholds, _, Xb = bin_columns(X, None, 0, 6, 256)
with SharedDataset({"Xb": Xb, "y": y, "thresholds": thresholds, "X": X}) as data:
    fit_tree(data, TreeParams("gini", None, 2, 1, 2, 0.0, None, 2), 3, True, 3000, False, True)
print(",".join(sorted(set(sys.modules) - before)))
# scikit-learn takes a second to import: it stays in the process that called fit.
print(",".join(sorted(m for m in sys.modules if m.split(".")[0] == "sklearn")))
"""


def test_a_workers_first_tasks_import_nothing(tmp_path):
    """A tree, as a fresh worker runs it, loads no module the forkserver did not, and
    nothing of scikit-learn (binning, done by the caller, loads nothing either).

    Each lazy import is paid again in every fresh worker: ``np.unique`` pulls in
    ``numpy.ma`` (~20 ms), ``np.random`` its package (~10 ms).
    """
    import subprocess
    import sys

    def run(*args: str) -> str:
        return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=180, check=True).stdout

    preload = run("-c", _PRELOAD_LIST_SCRIPT).strip()
    assert "shmforest.tree.tasks" in preload.split(",")
    script = tmp_path / "tasks.py"
    script.write_text(_WORKER_TASKS_SCRIPT)
    assert run(str(script), preload).splitlines() == ["", ""]
