"""The demo behind ``make demo`` and ``python -m shmforest demo``: one forest, every executor.

::

    dataset (synthetic and seeded, or --data FILE)  ->  75% train / 25% test
    for each runner (our executors by name, then scikit-learn n_jobs=1 and =workers):
        ProcessTreeMonitor samples the process tree  \\
        fit the same forest (same trees, same seed)   }  fit s, peak memory, processes
        predict the test rows                        ->  accuracy
    one table on stdout; progress on stderr

Our forests are fitted the way ``RandomForestClassifier(executor=name,
n_jobs=workers).fit`` does it, so "fit s" includes starting the workers and placing
the data, as a user would pay for them. Nothing here imports scikit-learn unless
it is installed and asked for.
"""

from __future__ import annotations

import importlib.util
import sys
import textwrap
import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from sklearn.datasets import make_classification
from sklearn.model_selection import train_test_split

import shmforest
from shmforest.estimators.batch import fit_models
from shmforest.estimators.progress import ProgressBar
from shmforest.estimators import RandomForestClassifier
from shmforest.testing.processes import ProcessTreeMonitor

__all__ = [
    "DEFAULT_FEATURES",
    "DEFAULT_ROWS",
    "DEFAULT_TREES",
    "DemoData",
    "Runner",
    "RunResult",
    "format_table",
    "load_file",
    "make_model",
    "make_runners",
    "order_executors",
    "run_demo",
    "run_one",
    "sklearn_installed",
    "synthetic",
    "synthetic_bytes",
    "warm_up",
    "write_report",
]

# Sized so the whole demo (serial, thread, process and shm at 2 workers, and
# scikit-learn at n_jobs 1 and 2) takes about a minute on 2 cores: 50 trees took
# 47 s there and 60 trees 63 s (the shmforest-dask plugin included), a third of it
# scikit-learn's n_jobs=1 fit.
DEFAULT_ROWS = 100_000
DEFAULT_FEATURES = 20
DEFAULT_TREES = 60
TEST_SIZE = 0.25
SEED = 0
#: Above this many distinct labels the last column is surely not a class label.
MAX_CLASSES = 100
#: Peak memory of the synthetic data while it is generated and split, in float64 copies of X.
GENERATION_COPIES = 4
MONITOR_INTERVAL = 0.1  # s; finer sampling steals CPU from the fits on a small machine
MiB = 1 << 20

# Built-ins in the order that tells the story; plugins follow, by name.
_STORY_ORDER = ("serial", "thread", "process", "shm")


@dataclass(frozen=True)
class DemoData:
    """A train/test split and how to describe where it came from."""

    X_train: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    description: str


@dataclass(frozen=True)
class Runner:
    """One row of the table: a library, an executor (ours only) and a worker count."""

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
    """What one runner measured."""

    runner: Runner
    fit_s: float
    accuracy: float
    peak_pss_added: int  # bytes
    peak_processes: int


# --------------------------------------------------------------------------- data


def synthetic(rows: int, features: int, seed: int = SEED) -> DemoData:
    """The default workload: scikit-learn's ``make_classification``, split 75/25.

    Ten informative features (fewer if there are fewer columns), two redundant, the
    rest noise, two classes, as DESIGN.md's workload.
    """
    informative = min(10, features)
    redundant = min(2, features - informative)
    clusters = 2 if informative >= 2 else 1  # 2 classes x 2 clusters need 4 hypercube vertices
    X, y = make_classification(
        n_samples=rows,
        n_features=features,
        n_informative=informative,
        n_redundant=redundant,
        n_clusters_per_class=clusters,
        random_state=seed,
    )
    split = train_test_split(X, y, test_size=TEST_SIZE, random_state=seed)
    what = f"synthetic make_classification {rows:,} x {features} (seed {seed})"
    return DemoData(*split, description=what)


def synthetic_bytes(rows: int, features: int) -> int:
    """About the most memory :func:`synthetic` holds at once."""
    return GENERATION_COPIES * rows * features * 8


def load_file(path: Path, seed: int = SEED) -> DemoData:
    """Read a dataset whose last column is the class label: ``.npy`` (2-D) or ``.csv`` (numeric).

    Raises
    ------
    ValueError
        With a one-line message naming the file and what is wrong with it.
    """
    if not path.is_file():
        raise ValueError(f"--data {path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        table = _read_npy(path)
    elif suffix == ".csv":
        table = _read_csv(path)
    else:
        raise ValueError(f"--data {path}: expected a .npy or .csv file, got {suffix or 'no extension'!r}")
    X, y = _features_and_labels(table, path)
    split = train_test_split(X, y, test_size=TEST_SIZE, random_state=seed)
    return DemoData(*split, description=f"{path.name}, {X.shape[0]:,} x {X.shape[1]}, {len(np.unique(y))} classes")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _read_npy(path: Path) -> np.ndarray:
    try:
        with path.open("rb") as f:
            magic = f.read(6)
    except OSError as exc:
        raise ValueError(f"--data {path}: cannot read it ({_one_line(exc)})") from None
    if magic != b"\x93NUMPY":
        raise ValueError(f"--data {path}: not a .npy file (no NumPy header)")
    try:
        # allow_pickle=False: a demo must not run code from a data file
        return np.asarray(np.load(path, allow_pickle=False))
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise ValueError(f"--data {path}: holds Python objects, not numbers; save a numeric array") from None
        raise ValueError(f"--data {path}: not a readable .npy array ({_one_line(exc)})") from None
    except (OSError, EOFError) as exc:
        raise ValueError(f"--data {path}: not a readable .npy array ({_one_line(exc)})") from None


def _read_csv(path: Path) -> np.ndarray:
    try:
        with path.open(encoding="utf-8") as f:
            first = f.readline()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"--data {path}: cannot read it as text ({_one_line(exc)})") from None
    if not first.strip():
        raise ValueError(f"--data {path}: the file is empty or starts with a blank line")
    header = _is_header(first)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "empty input": the shape checks say it better
            return np.loadtxt(path, delimiter=",", skiprows=int(header), ndmin=2, dtype=np.float64, encoding="utf-8")
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        # numpy counts rows after the header from 0; name the file's own line instead
        reason = _first_bad_line(path, header) or _one_line(exc)
        raise ValueError(f"--data {path}: not a numeric CSV ({reason})") from None


def _first_bad_line(path: Path, header: bool) -> str | None:
    """What is wrong with the first line that does not parse, in the file's own line numbers."""
    width = None
    try:
        with path.open(encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if (number == 1 and header) or not line.strip():
                    continue
                fields = line.rstrip("\r\n").split(",")
                if width is not None and len(fields) != width:
                    return f"line {number} has {len(fields)} fields, the lines before it {width}"
                width = len(fields)
                for column, field in enumerate(fields, 1):
                    try:
                        float(field)
                    except ValueError:
                        return f"line {number}, column {column}: {field.strip()[:40]!r} is not a number"
    except (OSError, UnicodeDecodeError):
        return None
    return None


def _is_header(line: str) -> bool:
    """A first line with any field that is not a number is a header."""
    fields = [f.strip() for f in line.split(",")]
    for field in fields:
        try:
            float(field)
        except ValueError:
            return True
    return False


def _features_and_labels(table: np.ndarray, path: Path) -> tuple[np.ndarray, np.ndarray]:
    if table.dtype.kind not in "biuf":
        raise ValueError(f"--data {path}: expected numbers, got an array of dtype {table.dtype}")
    if table.ndim != 2:
        raise ValueError(
            f"--data {path}: expected a 2-D array (rows x columns), got {table.ndim}-D of shape {table.shape}"
        )
    if table.size == 0:
        raise ValueError(f"--data {path}: holds no data rows")
    rows, columns = table.shape
    if columns < 2:
        raise ValueError(f"--data {path}: expected at least 2 columns (features, then the label), got {columns}")
    if rows < 4:
        raise ValueError(f"--data {path}: expected at least 4 rows to split into train and test, got {rows}")
    X = np.ascontiguousarray(table[:, :-1], dtype=np.float64)
    y = table[:, -1]
    if not np.isfinite(X).all() or not np.isfinite(y.astype(np.float64)).all():
        raise ValueError(f"--data {path}: contains NaN or infinite values")
    n_classes = len(np.unique(y))
    if n_classes > MAX_CLASSES:
        raise ValueError(
            f"--data {path}: the last column has {n_classes} distinct values; the demo classifies, "
            f"so it must be a label with at most {MAX_CLASSES} classes"
        )
    if n_classes < 2:
        raise ValueError(f"--data {path}: the last column (the label) has a single value; need 2 classes or more")
    if y.dtype.kind == "f" and np.array_equal(y, np.round(y)):
        y = y.astype(np.int64)  # CSV labels come back as floats; 1.0 reads better as 1
    return X, y


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


def make_model(runner: Runner, trees: int) -> Any:
    """The unfitted forest a runner fits, every one seeded alike.

    scikit-learn is imported here, before any clock starts: its import takes longer
    than a small fit.
    """
    if runner.library == "scikit-learn":
        from sklearn.ensemble import RandomForestClassifier as SkForest

        return SkForest(trees, n_jobs=runner.workers, random_state=SEED)
    return RandomForestClassifier(trees, executor=runner.executor, n_jobs=runner.workers, random_state=SEED)


def _fit(model: Any, data: DemoData, label: str) -> None:
    if isinstance(model, RandomForestClassifier):
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


def run_one(runner: Runner, trees: int, data: DemoData, label: str) -> RunResult:
    """Fit, time and watch one runner; accuracy on the held-out rows."""
    model = make_model(runner, trees)
    with ProcessTreeMonitor(interval=MONITOR_INTERVAL) as monitor:
        t0 = time.perf_counter()
        _fit(model, data, label)
        fit_s = time.perf_counter() - t0
    accuracy = float(np.mean(model.predict(data.X_test) == data.y_test))
    return RunResult(runner, fit_s, accuracy, monitor.added_pss, monitor.peak_processes)


def warm_up(runners: Sequence[Runner], data: DemoData) -> None:
    """One tiny serial fit per library, untimed, so the first row does not pay for first-use costs.

    Lazy imports and first allocations would otherwise land in whichever runner
    comes first (our serial one, the base of every speedup).
    """
    rows = min(len(data.y_train), 256)
    for library in dict.fromkeys(r.library for r in runners):
        model = make_model(Runner(library, "serial" if library == "shmforest" else None, 1), 1)
        model.fit(data.X_train[:rows], data.y_train[:rows])


def run_demo(runners: Sequence[Runner], trees: int, data: DemoData) -> list[RunResult]:
    """Every runner in turn, a progress line each on stderr."""
    warm_up(runners, data)
    results = []
    for i, runner in enumerate(runners, 1):
        results.append(run_one(runner, trees, data, f"[{i}/{len(runners)}] {runner.label}: trees"))
    return results


# --------------------------------------------------------------------------- report


def format_table(results: Sequence[RunResult]) -> str:
    """The results as a markdown table; speedups are over our serial fit when it ran."""
    serial = next((r for r in results if r.runner.executor == "serial"), None)
    lines = [
        "| runner | fit s | speedup vs serial | accuracy | peak tree memory (PSS added) | peak live processes |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        speedup = f"{serial.fit_s / r.fit_s:.2f}x" if serial is not None and r.fit_s > 0 else "n/a"
        lines.append(
            f"| {r.runner.label} | {r.fit_s:.2f} | {speedup} | {r.accuracy:.4f} | "
            f"{r.peak_pss_added / MiB:+,.1f} MiB | {r.peak_processes} |"
        )
    return "\n".join(lines)


COLUMN_NOTES = (
    "fit s: wall time of fit, starting the workers and placing the data included. "
    "speedup: our serial fit's time over this one's. accuracy: on the held-out rows. "
    "peak tree memory: the most the PSS of this process and all its descendants (a shared page "
    f"counted once) rose above its level before the fit, sampled every {MONITOR_INTERVAL:g} s; "
    "worker interpreters count. peak live processes: descendants alive at once, "
    "multiprocessing's own helpers (resource tracker, forkserver) left out."
)


def write_report(
    results: Sequence[RunResult], data: DemoData, trees: int, workers: int, notes: Sequence[str], out: TextIO
) -> None:
    """The header line, the table, what the columns mean, and any notes (skipped runners)."""
    from shmforest.budget import usable_cores

    cores, how = usable_cores()
    print(
        f"shmforest {shmforest.__version__} demo: {trees} trees on {data.description}; "
        f"{len(data.y_train):,} train / {len(data.y_test):,} test rows; {workers} workers; "
        f"{cores} usable cores ({how})\n",
        file=out,
    )
    print(format_table(results), file=out)
    print("\n" + textwrap.fill(COLUMN_NOTES, width=100), file=out)
    for note in notes:
        print(note, file=out)
