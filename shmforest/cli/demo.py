"""The demo behind ``make demo`` and ``python -m shmforest demo``: a few workloads, every executor.

::

    for each workload (easy classification, fully grown regression, digits; or --data FILE):
        75% train / 25% test
        for each runner (our executors by name, then scikit-learn n_jobs=1 and =workers):
            ProcessTreeMonitor samples the process tree  \\
            fit the same forest (same trees, same seed)   }  fit s, peak memory, processes
            predict the test rows, once                  ->  predict s, accuracy or R²
    one table per workload on stdout, ratios to scikit-learn at the same n_jobs; progress on stderr

Our forests are fitted the way ``RandomForestClassifier(executor=name,
n_jobs=workers).fit`` does it, so "fit s" includes starting the workers and placing
the data, as a user would pay for them. Each runner fits once, in turn: a demo,
not a benchmark (``benchmarks/test_bench_workloads.py`` takes medians).
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

import numpy as np

import shmforest
from shmforest.cli import workloads as wl
from shmforest.cli.messages import one_line
from shmforest.cli.workloads import DemoData
from shmforest.estimators import RandomForestClassifier, RandomForestRegressor
from shmforest.estimators.batch import fit_models
from shmforest.estimators.progress import ProgressBar
from shmforest.testing.processes import ProcessTreeMonitor

__all__ = [
    "RunResult",
    "Runner",
    "WorkloadResult",
    "command",
    "format_table",
    "make_model",
    "make_runners",
    "order_executors",
    "run_demo",
    "run_one",
    "sklearn_installed",
    "warm_up",
    "write_report",
]

SEED = 0
MONITOR_INTERVAL = 0.1  # s; finer sampling steals CPU from the fits on a small machine
MiB = 1 << 20

# Built-ins in the order that tells the story; plugins follow, by name.
_STORY_ORDER = ("serial", "thread", "process", "shm")
_FORKSERVER_EXECUTORS = ("process", "shm")


@dataclass(frozen=True)
class Runner:
    """One row of a table: a library, an executor (ours only) and a worker count."""

    library: str  # "shmforest" or "scikit-learn"
    executor: str | None
    workers: int

    @property
    def label(self) -> str:
        if self.library == "scikit-learn":
            return f"scikit-learn, n_jobs={self.workers}"
        if self.executor == "serial":
            return "shmforest serial"
        unit = "worker" if self.workers == 1 else "workers"
        return f"shmforest {self.executor}, {self.workers} {unit}"


@dataclass(frozen=True)
class RunResult:
    """What one runner measured on one workload."""

    runner: Runner
    fit_s: float
    predict_s: float
    score: float  # accuracy, or R² for a regression
    peak_pss_added: int  # bytes
    peak_processes: int


@dataclass(frozen=True)
class WorkloadResult:
    """One workload's data, trees and every runner's result: one table."""

    data: DemoData
    trees: int
    results: list[RunResult]


# --------------------------------------------------------------------------- runners


def order_executors(names: Sequence[str]) -> list[str]:
    """Built-ins first in the order that tells the story (serial, thread, process, shm), then the rest by name."""
    first = [n for n in _STORY_ORDER if n in names]
    return first + sorted(n for n in names if n not in _STORY_ORDER)


def sklearn_installed() -> bool:
    return importlib.util.find_spec("sklearn") is not None


def make_runners(executors: Sequence[str], workers: int, sklearn: bool) -> list[Runner]:
    """Our executors (serial always at 1 worker), then scikit-learn at n_jobs 1 and ``workers``."""
    runners = [Runner("shmforest", name, 1 if name == "serial" else workers) for name in executors]
    if sklearn:
        runners += [Runner("scikit-learn", None, n) for n in sorted({1, workers})]
    return runners


def make_model(runner: Runner, trees: int, regression: bool = False) -> Any:
    """The unfitted forest a runner fits, every one seeded alike.

    scikit-learn's forests are imported here, before any clock starts.
    """
    if runner.library == "scikit-learn":
        from sklearn.ensemble import RandomForestClassifier as SkClassifier
        from sklearn.ensemble import RandomForestRegressor as SkRegressor

        sk = SkRegressor if regression else SkClassifier
        return sk(trees, n_jobs=runner.workers, random_state=SEED)
    if runner.executor is None:
        raise ValueError(f"a shmforest runner names its executor, got {runner!r}")
    ours = RandomForestRegressor if regression else RandomForestClassifier
    return ours(trees, executor=runner.executor, n_jobs=runner.workers, random_state=SEED)


def _fit(model: Any, data: DemoData, label: str) -> None:
    if isinstance(model, (RandomForestClassifier, RandomForestRegressor)):
        # What model.fit(X, y) runs, with a label that names the runner on the progress bar.
        fit_models(
            [model], data.X_train, data.y_train, executor=model.executor, n_jobs=model.n_jobs, verbose=1, label=label
        )
    else:
        with _TickingBar(model.n_estimators, label):
            model.fit(data.X_train, data.y_train)


class _TickingBar:
    """A progress bar for a fit that reports no progress: elapsed time ticks, done at the end."""

    def __init__(self, total: int, label: str) -> None:
        self._bar = ProgressBar(total, label)
        # Ticks redraw the line in place on a terminal; in a log file they would pile up.
        self._ticks = sys.stderr.isatty()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tick, name="shmforest-demo-bar", daemon=True)

    def _tick(self) -> None:
        while not self._stop.wait(0.5):
            self._bar.advance(0)

    def __enter__(self) -> _TickingBar:
        if self._ticks:
            self._thread.start()
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self._stop.set()
        if self._ticks:
            self._thread.join()
        if exc_type is None:
            self._bar.advance(self._bar.total)
        self._bar.close()


def _score(data: DemoData, predicted: np.ndarray) -> float:
    """Accuracy, or R² for a regression, of predictions on the test rows."""
    if not data.regression:
        return float(np.mean(predicted == data.y_test))
    residual = np.sum((data.y_test - predicted) ** 2)
    return float(1.0 - residual / np.sum((data.y_test - np.mean(data.y_test)) ** 2))


def run_one(runner: Runner, trees: int, data: DemoData, label: str) -> RunResult:
    """Fit, time and watch one runner; time one predict of the test rows and score it."""
    model = make_model(runner, trees, data.regression)
    with ProcessTreeMonitor(interval=MONITOR_INTERVAL) as monitor:
        t0 = time.perf_counter()
        _fit(model, data, label)
        fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    predicted = model.predict(data.X_test)
    predict_s = time.perf_counter() - t0
    return RunResult(runner, fit_s, predict_s, _score(data, predicted), monitor.added_pss, monitor.peak_processes)


def warm_up(runners: Sequence[Runner], regression: Sequence[bool]) -> None:
    """One tiny fit and predict per library and kind of target, untimed.

    What a program pays once would otherwise land in whichever runner comes first:
    lazy imports, first allocations, compiling our kernels (on a machine's first
    run), and starting the forkserver that ``process`` and ``shm`` workers fork from.
    """
    X = np.random.default_rng(SEED).normal(size=(256, 4))
    warm = [Runner(r.library, "serial" if r.library == "shmforest" else None, 1) for r in runners]
    if any(r.executor in _FORKSERVER_EXECUTORS for r in runners):
        warm.append(Runner("shmforest", "process", 1))
    for runner in dict.fromkeys(warm):
        for kind in dict.fromkeys(regression):
            make_model(runner, 1, kind).fit(X, X[:, 0] if kind else X[:, 0] > 0).predict(X)


def run_demo(
    runners: Sequence[Runner], workloads: Sequence[tuple[Callable[[], DemoData], int, bool]]
) -> list[WorkloadResult]:
    """Every workload (how to load it, its trees, whether a regression) with every runner in turn.

    A progress line each on stderr.
    """
    print("warming up (a machine's first run also compiles the kernels, once)", file=sys.stderr, flush=True)
    warm_up(runners, [regression for _, _, regression in workloads])
    done = []
    for number, (load, trees, _) in enumerate(workloads, 1):
        data = load()
        print(f"workload {number}/{len(workloads)}, {data.description}", file=sys.stderr, flush=True)
        results = [
            run_one(runner, trees, data, f"[{i}/{len(runners)}] {runner.label}: trees")
            for i, runner in enumerate(runners, 1)
        ]
        done.append(WorkloadResult(data, trees, results))
    return done


# --------------------------------------------------------------------------- report


def _ratio(mine: float, theirs: float | None) -> str:
    return "n/a" if theirs is None or theirs <= 0 else f"{mine / theirs:.2f}"  # n/a: no peer ran


def format_table(results: Sequence[RunResult], regression: bool = False) -> str:
    """One workload's results as a markdown table; ratios are to scikit-learn at the same n_jobs."""
    sklearn = {r.runner.workers: r for r in results if r.runner.library == "scikit-learn"}
    score = "R²" if regression else "accuracy"
    lines = [
        (
            f"| runner | fit s | fit / scikit-learn | predict s | predict / scikit-learn | {score} "
            "| peak tree memory (PSS added) | peak live processes |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        fit = predict = ""  # scikit-learn's own rows
        if r.runner.library != "scikit-learn":
            peer = sklearn.get(r.runner.workers)
            fit = _ratio(r.fit_s, peer.fit_s if peer else None)
            predict = _ratio(r.predict_s, peer.predict_s if peer else None)
        lines.append(
            f"| {r.runner.label} | {r.fit_s:.2f} | {fit} | {r.predict_s:.3f} | {predict} | {r.score:.4f} | "
            f"{r.peak_pss_added / MiB:+,.1f} MiB | {r.peak_processes} |"
        )
    return "\n".join(lines)


COLUMN_NOTES = (
    "fit s: wall time of fit, starting the workers and placing the data included. predict s: one predict "
    "of the test rows, the first after fit. / scikit-learn: our seconds over scikit-learn's at the same "
    "n_jobs (serial against n_jobs=1); below 1, shmforest is faster. accuracy or R²: on the test rows. "
    "peak tree memory: the most the PSS of this process and all its descendants (a shared page counted "
    f"once) rose above its level before the fit, sampled every {MONITOR_INTERVAL:g} s; worker "
    "interpreters count. peak live processes: descendants alive at once, multiprocessing's own helpers "
    "(resource tracker, forkserver) left out. One fit per runner, in turn, on a machine that may be "
    "busy: for medians, see benchmarks/."
)


def write_report(done: Sequence[WorkloadResult], workers: int, notes: Sequence[str], out: TextIO) -> None:
    """The header line, a table per workload, what the columns mean, and any notes (skipped runners)."""
    from shmforest.cores import usable_cores

    cores, how = usable_cores()
    print(
        f"shmforest {shmforest.__version__} demo: {len(done)} workload{'s' if len(done) != 1 else ''}; "
        f"{workers} workers; {cores} usable cores ({how})",
        file=out,
    )
    for w in done:
        print(
            f"\n{w.data.description}; {w.trees} trees; "
            f"{len(w.data.y_train):,} train / {len(w.data.y_test):,} test rows\n",
            file=out,
        )
        print(format_table(w.results, w.data.regression), file=out)
    print("\n" + textwrap.fill(COLUMN_NOTES, width=100), file=out)
    for note in notes:
        print(note, file=out)


# --------------------------------------------------------------------------- the command


def command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Check the options (bad ones exit 2), run every workload, print the tables."""
    t0 = time.perf_counter()
    notes: list[str] = []
    names = _executors(args, parser, notes)
    workloads = _workloads(args, parser)
    sklearn = not args.no_sklearn and sklearn_installed()
    if args.no_sklearn:
        notes.append("scikit-learn: skipped (--no-sklearn).")
    elif not sklearn:
        notes.append("scikit-learn: skipped, not installed (pip install 'shmforest[test]' to compare).")
    runners = make_runners(names, args.workers, sklearn)
    if not runners:
        parser.error("nothing to run: no usable executor and no scikit-learn")
    try:
        done = run_demo(runners, workloads)
    except Exception as exc:  # the reason on one line; the traceback helps nobody running a demo
        print(f"shmforest demo failed: {one_line(exc)}", file=sys.stderr)
        return 1
    write_report(done, args.workers, notes, sys.stdout)
    print(f"\ndemo took {time.perf_counter() - t0:.1f} s", file=sys.stdout)
    return 0


def _executors(args: argparse.Namespace, parser: argparse.ArgumentParser, notes: list[str]) -> list[str]:
    """The executors to run: those named (each must exist and import), else every one that imports."""
    from shmforest.errors import PluginImportError
    from shmforest.executors import available_executors, executor_class

    available = available_executors()
    if args.executors is not None:
        for name in args.executors:
            if name not in available:
                parser.error(f"argument --executors: unknown executor {name!r}; available: {', '.join(available)}")
            try:
                executor_class(name)
            except PluginImportError as exc:
                parser.error(f"argument --executors: {one_line(exc)}")
        return order_executors(args.executors)
    names = []
    for name in order_executors(list(available)):
        try:
            executor_class(name)
        except PluginImportError as exc:  # one broken plugin must not hide the others
            notes.append(f"{name}: skipped, {one_line(exc)}")
            continue
        names.append(name)
    return names


def _workloads(
    args: argparse.Namespace, parser: argparse.ArgumentParser
) -> list[tuple[Callable[[], DemoData], int, bool]]:
    """Check the dataset options now (bad ones exit 2); how to load each workload, its trees, its kind.

    A file is read here, since what is wrong with it is bad input; the built-in
    workloads are made later, where a failure is the demo's.
    """
    import psutil

    if args.data is not None:
        for option in ("workloads", "rows", "features"):
            if getattr(args, option) is not None:
                parser.error(f"--{option} chooses and sizes the built-in workloads; leave it out with --data")
        try:
            data = wl.load_file(args.data)
        except ValueError as exc:
            parser.error(str(exc))
        return [(lambda: data, args.trees or wl.WORKLOADS["easy"].trees, False)]
    names = args.workloads or list(wl.WORKLOADS)
    for name in names:
        if name not in wl.WORKLOADS:
            parser.error(f"argument --workloads: unknown workload {name!r}; available: {', '.join(wl.WORKLOADS)}")
    chosen = [wl.WORKLOADS[name] for name in names]
    synthetic = [w for w in chosen if w.rows is not None and w.features is not None]
    if args.rows is not None and args.rows < 8:
        parser.error(f"argument --rows: need at least 8 rows to hold out a test split, got {args.rows}")
    for w in synthetic:
        rows, features = args.rows or w.rows or 0, args.features or w.features or 0
        needed, free = wl.synthetic_bytes(rows, features), psutil.virtual_memory().available
        if needed > free:
            parser.error(
                f"--rows {rows} x --features {features}: the {w.name} workload needs about "
                f"{needed / 2**30:,.1f} GiB and {free / 2**30:,.1f} GiB is available"
            )
    return [
        (functools.partial(wl.load_workload, w, args.rows, args.features), args.trees or w.trees, w.regression)
        for w in chosen
    ]
