"""The demo's datasets: a few contrasting built-in workloads, or the user's own file.

Each workload is split 75% train / 25% test with the same seed. The built-ins are
chosen to differ where forests differ in cost: shallow trees on easy data, deep
regression trees, and a small real dataset where fixed costs per tree dominate.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits, make_classification, make_regression
from sklearn.model_selection import train_test_split

__all__ = [
    "TEST_SIZE",
    "WORKLOADS",
    "DemoData",
    "Workload",
    "load_file",
    "load_workload",
    "synthetic_bytes",
]

TEST_SIZE = 0.25
SEED = 0
#: Above this many distinct labels the last column of a file is surely not a class label.
MAX_CLASSES = 100
#: Peak memory of synthetic data while it is generated and split, in float64 copies of X.
GENERATION_COPIES = 4


@dataclass(frozen=True)
class DemoData:
    """A train/test split, what it is, and whether its target is a number to regress."""

    X_train: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    description: str
    regression: bool = False


def _easy(rows: int, features: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    # DESIGN.md's workload: ten informative features (fewer if there are fewer
    # columns), two redundant, the rest noise, two classes.
    informative = min(10, features)
    redundant = min(2, features - informative)
    clusters = 2 if informative >= 2 else 1  # 2 classes x 2 clusters need 4 hypercube vertices
    return make_classification(
        n_samples=rows,
        n_features=features,
        n_informative=informative,
        n_redundant=redundant,
        n_clusters_per_class=clusters,
        random_state=seed,
    )


def _regression(rows: int, features: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    return make_regression(n_samples=rows, n_features=features, noise=10.0, random_state=seed)


def _digits(rows: int, features: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    X, y = load_digits(return_X_y=True)
    return X, y


@dataclass(frozen=True)
class Workload:
    """A dataset the demo fits forests on, and why it is in the demo."""

    name: str
    source: str  # the scikit-learn function that makes or loads it
    why: str
    regression: bool
    trees: int
    rows: int | None  # None: a bundled dataset of its own size (--rows and --features leave it alone)
    features: int | None
    make: Callable[[int, int, int], tuple[np.ndarray, np.ndarray]]


# Sized so that the three, with every executor and scikit-learn n_jobs=1 and 2, take
# a minute or two on 2 cores; scikit-learn's fits take most of it.
WORKLOADS = {
    w.name: w
    for w in (
        Workload(
            "easy",
            "make_classification",
            "most nodes soon pure, shallow trees",
            regression=False,
            trees=20,
            rows=100_000,
            features=20,
            make=_easy,
        ),
        Workload(
            "regression",
            "make_regression",
            "fully grown trees, deep and wide",
            regression=True,
            trees=20,
            rows=20_000,
            features=20,
            make=_regression,
        ),
        Workload(
            "digits",
            "load_digits",
            "small real data, 10 classes",
            regression=False,
            trees=100,
            rows=None,
            features=None,
            make=_digits,
        ),
    )
}


def load_workload(
    workload: Workload, rows: int | None = None, features: int | None = None, seed: int = SEED
) -> DemoData:
    """Make or load a workload's data (``rows`` and ``features`` size a synthetic one) and split it."""
    size = (rows or workload.rows or 0, features or workload.features or 0)
    X, y = workload.make(*size, seed)
    what = f"{workload.name}: {workload.source} {X.shape[0]:,} x {X.shape[1]}, {workload.why}"
    return _split(X, y, what, workload.regression, seed)


def _split(X: np.ndarray, y: np.ndarray, description: str, regression: bool, seed: int) -> DemoData:
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=TEST_SIZE, random_state=seed)
    return DemoData(X_train, X_test, y_train, y_test, description, regression)


def synthetic_bytes(rows: int, features: int) -> int:
    """About the most memory a synthetic workload of this size holds at once."""
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
    return _split(X, y, f"{path.name}, {X.shape[0]:,} x {X.shape[1]}, {len(np.unique(y))} classes", False, seed)


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
    if not np.isfinite(y.astype(np.float64)).all():
        raise ValueError(f"--data {path}: the last column (the label) holds NaN or infinite values")
    if np.isinf(X).any():
        # NaN is a missing value, which the forests learn; infinity is not a value.
        column = int(np.flatnonzero(np.isinf(X).any(axis=0))[0]) + 1
        raise ValueError(f"--data {path}: column {column} holds infinite values (NaN, a missing value, is allowed)")
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
