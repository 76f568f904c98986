"""Training a batch of tree models on one placed dataset, under one executor.

::

    parent                                               executor (one budget)
    ------                                               ---------------------
    check X, y, sample_weight once
    each model: check params, draw per-tree seeds  (a model's plan)
    Binner: X -> uint8 codes, once  (from mid-sized X up: groups of features in threads here)
    SharedDataset(Xb, thresholds, y[, w][, missing][, bin_ranges][, X])
      (one per target kind; pickles as handles)   -->  tree_tasks.fit_tree(dataset, params, seed, ...)
                                                            bootstrap counts from the seed
                                                            TreeBuilder(params).build(...)
                                                            out-of-bag predictions, if asked
    results in submission order  <------------------     (Tree, oob) per task
    each model assembles its fitted attributes
    close the dataset (also on error), shut down the executor if we made it

A fit of one branch-parallel tree on several workers (a ``DecisionTree*``) runs
:func:`~shmforest.tree.tasks.fit_tree` here instead: the first levels grow in this process, then subtrees
go to the executor. Holding a token of the executor's budget, this process keeps
a part of each cut, as a worker does; with none free, every subtree goes to the
executor (``delegate``, :meth:`TreeBuilder.build`).

Only what the trees read is placed: the codes, thresholds, targets and weights
(X itself only for out-of-bag predictions). Binning reads X where it is, in this
process: as tasks it would need X placed, a block eight times the codes' size,
which a small ``/dev/shm`` (a container's 64 MB) may not hold.

Everything random is decided by the per-tree seeds drawn in the parent, so the
executor, its budget and the order tasks finish in cannot change a result.
Out-of-bag predictions are made inside the task that built the tree, from the real
feature values (``X`` is placed only when some model asks for ``oob_score``); trees
kept by ``warm_start`` get their out-of-bag predictions from :func:`~shmforest.tree.tasks.oob_predict` tasks.
"""

from __future__ import annotations

import concurrent.futures as cf
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.base import is_classifier, is_regressor
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, column_or_1d, validate_data

from shmforest.budget import ProcessBudget
from shmforest.cores import usable_cores
from shmforest.errors import ExecutorNotFoundError
from shmforest.estimators.progress import ProgressBar
from shmforest.estimators.validation import encode_classes, resolve_n_jobs
from shmforest.executors.base import Executor, in_task, run_in_task
from shmforest.executors.registry import get_executor
from shmforest.pool import preload_in_workers
from shmforest.shared import SharedDataset
from shmforest.tree import growth
from shmforest.tree import tasks as tree_tasks
from shmforest.tree.binning import Binner, check_no_infinity
from shmforest.tree.builder import TreeParams
from shmforest.tree.tree import Tree

__all__ = ["DEFAULT_EXECUTOR", "Targets", "TreePlan", "TreeResults", "fit_models", "resolve_executor"]

# A forest's tasks unpickle from tree.tasks, whose trees run the compiled kernels:
# process pools' workers start with both loaded (numba's cache read once, in the forkserver).
preload_in_workers(tree_tasks.__name__, "shmforest.tree.warmup")

DEFAULT_EXECUTOR = "thread"
#: From this many values of X up, threads of the parent bin groups of features
#: (:func:`_bin_in_threads`); below it binning takes a few milliseconds, about what
#: starting and joining the threads would take back.
THREADED_BINNING_CELLS = 100_000


# --------------------------------------------------------------------------- executors


def resolve_executor(executor: Any, n_jobs: Any) -> tuple[cf.Executor, bool]:
    """The executor to run on, and whether we created it (and so shut it down).

    A name is looked up in the registry and sized by ``n_jobs``; an instance is
    used as it is (``n_jobs`` does not apply to it).
    """
    max_workers = resolve_n_jobs(n_jobs)
    if isinstance(executor, cf.Executor):
        return executor, False
    if not isinstance(executor, str):
        raise TypeError(
            f"executor must be a registered executor name (str, e.g. 'shm', 'serial') or an "
            f"Executor instance; got {executor!r} ({type(executor).__name__})"
        )
    return _executor_by_name(executor, max_workers), True


def _executor_by_name(name: str, max_workers: int | None) -> cf.Executor:
    try:
        return get_executor(name, max_workers=max_workers)
    except ExecutorNotFoundError as exc:
        raise ValueError(f"executor={name!r} is not a registered executor: {exc}") from exc


# --------------------------------------------------------------------------- plans


@dataclass
class Targets:
    """``y`` checked once for every model of a batch.

    One output: ``y``, ``codes`` and ``values`` of shape (n_samples,); several:
    (n_samples, n_outputs), C order.
    """

    n_samples: int
    n_features: int
    n_outputs: int = 1
    classes: list[np.ndarray] | None = None  # classification: each output's sorted labels
    codes: np.ndarray | None = None  # classification: each sample's class index per output, int32
    values: np.ndarray | None = None  # regression: float64 targets
    y: Any = None  # as checked, for class weights and scoring callables
    sample_weight: np.ndarray | None = None  # checked, for what weighs classes by it
    X: np.ndarray | None = None  # checked, for what models keep about the training rows (quantile forests)


@dataclass
class TreePlan:
    """What one model asks of a batch fit: the trees to build and how."""

    model: Any
    params: TreeParams
    seeds: list[int]
    bootstrap: bool = False
    n_draws: int = 0
    parallel: bool = False
    oob: bool = False
    oob_refits: list[tuple[Tree, int]] = field(default_factory=list)  # warm-started trees needing oob
    kept: list[Any] = field(default_factory=list)  # fitted estimators warm_start keeps
    max_bins: int = 256
    options: tree_tasks.FitOptions = field(default_factory=tree_tasks.FitOptions)  # class weights, pruning

    @property
    def regression(self) -> bool:
        return self.params.regression


@dataclass
class TreeResults:
    """What came back for one plan, in seed order."""

    trees: list[Tree]
    oob: list[tuple[np.ndarray, np.ndarray]]  # (rows, value rows) for every tree that has them


# --------------------------------------------------------------------------- the batch


def fit_models(
    models: Sequence[Any],
    X: Any,
    y: Any,
    sample_weight: Any = None,
    *,
    executor: Any = DEFAULT_EXECUTOR,
    n_jobs: Any = None,
    verbose: int = 0,
    label: str = "",
) -> None:
    """Fit every model in ``models`` on ``X, y``: one binning, one placed dataset, one executor.

    Each model supplies ``_plan(targets) -> TreePlan`` (parameters checked, seeds drawn)
    and ``_assemble(plan, results, targets)`` (fitted attributes set). Models are left
    untouched if anything fails.
    """
    for model in models:
        model._validate_params()
    Xa, y = _check_data(models, X, y)
    missing = check_no_infinity(Xa)
    n_samples, n_features = Xa.shape
    w = (
        None
        if sample_weight is None
        else _check_sample_weight(sample_weight, Xa, dtype=np.float64, ensure_non_negative=True)
    )
    targets = Targets(n_samples, n_features, 1 if y.ndim == 1 else y.shape[1], y=y, sample_weight=w, X=Xa)
    if any(is_classifier(m) for m in models):
        check_classification_targets(y)
        targets.classes, targets.codes = encode_classes(y)
    if any(is_regressor(m) for m in models):
        targets.values = np.ascontiguousarray(y, dtype=np.float64)
    plans: list[TreePlan] = [m._plan(targets) for m in models]
    bins = sorted({p.max_bins for p in plans})
    if len(bins) > 1:
        raise ValueError(f"models fitted together must share max_bins (X is binned once); got max_bins values {bins}")
    pool, owned = resolve_executor(executor, n_jobs)
    try:
        thresholds, ranges, Xb = _bin(Xa, w, bins[0] if bins else 256, pool)
        with ExitStack() as placed:
            datasets: dict[bool, SharedDataset] = {}
            for regression in sorted({p.regression for p in plans}):
                arrays: dict[str, np.ndarray] = {"Xb": Xb, "thresholds": thresholds}
                if missing.any():
                    arrays["missing"] = missing  # the features binned with a NaN code
                if any(p.params.splitter == "random" for p in plans):
                    arrays["bin_ranges"] = ranges  # where extra trees draw their thresholds
                y_of_kind = targets.values if regression else targets.codes
                assert y_of_kind is not None  # checked for every model of that kind
                arrays["y"] = y_of_kind
                if w is not None:
                    arrays["w"] = w
                if any(p.oob and p.regression == regression for p in plans):
                    arrays["X"] = Xa
                datasets[regression] = placed.enter_context(SharedDataset(arrays))
            results = _run(plans, datasets, pool, verbose, label)
    finally:
        if owned:
            pool.shutdown(wait=True, cancel_futures=True)
    for plan, result in zip(plans, results):
        plan.model._assemble(plan, result, targets)


def _check_data(models: Sequence[Any], X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """``X`` as C-order float64 and ``y`` as a 1-D array (one output) or a 2-D one
    (several), checked once by scikit-learn.

    NaN passes (a missing value, learned per split); infinity is refused by
    :func:`~shmforest.tree.binning.check_no_infinity`, which names the column. A
    column vector ``y`` is one output, as in scikit-learn: forests warn
    (``DataConversionWarning``), trees take it silently.

    The first model's check converts; every model records ``n_features_in_`` and
    ``feature_names_in_`` from the data as given.
    """
    first = models[0]
    Xa, y = validate_data(
        first,
        X,
        y,
        dtype=np.float64,
        order="C",
        multi_output=True,
        y_numeric=is_regressor(first),
        ensure_all_finite=False,
    )
    if not isinstance(y, np.ndarray):  # a sparse matrix, which multi_output lets through
        raise ValueError("sparse multilabel-indicator for y is not supported.")
    if y.ndim == 2 and y.shape[1] == 1:
        y = column_or_1d(y, warn=any(getattr(m, "_warns_column_vector_y", False) for m in models))
    for model in models[1:]:
        validate_data(model, X, skip_check_array=True)
    return Xa, y


def _gather(futures: list[cf.Future[Any]]) -> list[Any]:
    """Results in submission order; on the first failure, cancel the rest, wait for them, raise.

    Waiting matters: the tasks read a dataset that is closed once this returns.
    """
    try:
        done, _ = cf.wait(futures, return_when=cf.FIRST_EXCEPTION)
        for future in futures:  # the first failure in submission order, for a stable error
            error = future.exception() if future in done else None
            if error is not None:
                raise error
        return [f.result() for f in futures]
    except BaseException:
        _abandon(futures)
        raise


def _abandon(futures: list[cf.Future[Any]]) -> None:
    for future in futures:
        future.cancel()
    cf.wait(futures)


Bins = tuple[np.ndarray, np.ndarray, np.ndarray]  # thresholds, bin ranges, codes (Binner's)


def _bin(Xa: np.ndarray, w: np.ndarray | None, max_bins: int, pool: cf.Executor) -> Bins:
    """Thresholds, bin ranges and uint8 codes of every feature: by threads here, one per
    worker the pool could run, or in one piece on small data or one worker.

    Nothing is placed: the threads read ``X`` where it is. Each feature's bins
    depend on that feature alone, so how features are grouped into threads
    cannot change a bit of the result.
    """
    workers = getattr(pool, "max_workers", getattr(pool, "_max_workers", 1))
    n_samples, n_features = Xa.shape
    if workers < 2 or n_features < 2 or n_samples * n_features < THREADED_BINNING_CELLS:
        binner = Binner(max_bins=max_bins)
        codes = binner.fit_transform(Xa, w)
        return binner.thresholds_, binner.bin_ranges_, codes
    return _bin_in_threads(Xa, w, max_bins, workers)


def _bin_in_threads(Xa: np.ndarray, w: np.ndarray | None, max_bins: int, workers: int) -> Bins:
    """Groups of features binned by threads of this process, one per worker the pool could run.

    The pool runs nothing while the fit bins (its trees need the codes), so its
    workers' share of the machine is free; the sorts and searches of each feature
    release the GIL. Each thread copies its own features out of ``X``
    (:func:`~shmforest.tree.binning.by_feature`), so no transposed copy of all of
    ``X`` is made before the threads start. Inside a task this process holds one
    token only: one thread.
    """
    n_features = Xa.shape[1]
    threads = 1 if in_task() else min(workers, n_features, usable_cores()[0])
    groups = np.array_split(np.arange(n_features), threads)

    def bin_group(columns: np.ndarray) -> Bins:
        return tree_tasks.bin_columns(Xa, w, int(columns[0]), int(columns[-1]) + 1, max_bins)

    if threads == 1:
        return bin_group(groups[0])
    with cf.ThreadPoolExecutor(threads - 1, thread_name_prefix="shmforest-binning") as binning:
        # This thread bins the first group itself: handed to a thread as well, it
        # would wait for the GIL while the threads started.
        others = [binning.submit(bin_group, columns) for columns in groups[1:]]
        results = [bin_group(groups[0])] + [future.result() for future in others]
    return _assemble_bins(groups, results, Xa.shape)


def _assemble_bins(groups: list[np.ndarray], results: list[Bins], shape: tuple[int, int]) -> Bins:
    """Thresholds, bin ranges and C-order codes of all features from each group's."""
    codes = np.empty(shape, dtype=np.uint8)
    for columns, (_, _, group_codes) in zip(groups, results):
        codes[:, columns] = group_codes
    return np.vstack([r[0] for r in results]), np.concatenate([r[1] for r in results]), codes


def _run(
    plans: list[TreePlan], datasets: dict[bool, SharedDataset], pool: cf.Executor, verbose: int, label: str
) -> list[TreeResults]:
    tasks: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []
    for plan in plans:
        data = datasets[plan.regression]
        for seed in plan.seeds:
            tasks.append(
                (
                    tree_tasks.fit_tree,
                    (data, plan.params, seed, plan.bootstrap, plan.n_draws, plan.parallel, plan.oob, plan.options),
                )
            )
        for tree, seed in plan.oob_refits:
            tasks.append(
                (tree_tasks.oob_predict, (data, tree, seed, plan.n_draws, plan.options, plan.params.class_counts))
            )
    bar = ProgressBar(len(tasks), label or "fitting trees") if verbose else None
    try:
        if _drives_here(plans, tasks, pool) and isinstance(pool, Executor):
            outputs = [_fit_tree_here(pool, tasks[0][1])]
            if bar is not None:
                bar.advance()
        else:
            outputs = _submit_all(tasks, pool, bar)
    finally:
        if bar is not None:
            bar.close()
    results = []
    it = iter(outputs)
    for plan in plans:
        built = [next(it) for _ in plan.seeds]
        refits = [next(it) for _ in plan.oob_refits]
        oob = [o for _, o in built if o is not None]
        results.append(TreeResults(trees=[t for t, _ in built], oob=refits + oob))
    return results


def _drives_here(
    plans: list[TreePlan], tasks: list[tuple[Callable[..., Any], tuple[Any, ...]]], pool: cf.Executor
) -> bool:
    """Whether the one tree of this fit is better grown from here than as a task.

    A single branch-parallel tree (a ``DecisionTree*`` fit) on an executor of
    several workers: as a task it would grow its first levels on one freshly
    started worker, which then starts the second at its first hand-off. From here
    the first levels run in this (warm) process, which then grows a part of the
    tree itself or waits for the workers (:func:`_fit_tree_here`); the tree is
    the same to the bit (:mod:`shmforest.tree.growth`).
    """
    return (
        len(tasks) == 1
        and tasks[0][0] is tree_tasks.fit_tree
        and plans[0].parallel
        and isinstance(pool, Executor)
        and pool.max_workers >= 2
    )


def _fit_tree_here(pool: Executor, args: tuple[Any, ...]) -> Any:
    """Grow the one tree of this fit here, handing subtrees to ``pool``; holding a token if one is free.

    With a token of the pool's budget this process grows like one of the
    workers: at each cut it keeps a part and hands the rest on, so only one
    worker has to start before the first subtrees grow. The token is held until
    the subtrees are back: given back when this process's own part is done, it
    would let a worker's next cut start a fresh process for a small share. With no token
    free, computing here would put one process more to work than the budget
    allows: every part goes to the workers and this process only waits
    (``delegate``, :meth:`TreeBuilder.build`).
    """
    budget = getattr(pool, "budget", None)
    held = budget.try_acquire(1) if isinstance(budget, ProcessBudget) and not in_task() else 0
    data, params = args[0], args[1]
    try:
        if data["Xb"].shape[0] >= growth.MIN_TASK_SAMPLES and (params.max_depth is None or params.max_depth >= 2):
            # The first cut is a root level away: workers that start on demand start
            # meanwhile, on the core this process leaves free.
            pool.warm_up()
        return run_in_task(pool, tree_tasks.fit_tree, args, {"delegate": not held})
    finally:
        if held and budget is not None:
            budget.release(held)


def _submit_all(
    tasks: list[tuple[Callable[..., Any], tuple[Any, ...]]], pool: cf.Executor, bar: ProgressBar | None
) -> list[Any]:
    """Every task on ``pool``; their results in submission order."""
    futures: list[cf.Future[Any]] = []
    try:
        for fn, args in tasks:
            future = pool.submit(fn, *args)
            if bar is not None:
                future.add_done_callback(lambda _f: bar.advance())
            futures.append(future)
    except BaseException:
        _abandon(futures)
        raise
    return _gather(futures)
