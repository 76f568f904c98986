"""Fit times of this checkout beside another's (the main branch's), on the forest kinds the kernels grow.

What a change to the kernels costs the fits it was not meant to change. Each
(round, checkout) runs in a subprocess with ``PYTHONPATH`` at the checkout, which
loads the kernels from numba's cache with a small warm-up fit, then times the best
of a few fits on one core (the ``serial`` executor, so the figures are the kernels'
own). The checkouts alternate which goes first from round to round; the report gives
each workload's median of the per-round ratios (this checkout / the other) and the
ratios themselves, so the spread shows. The machine may be shared: medians of
interleaved ratios, not minima of separate runs, are what resist its load::

    .venv/bin/python benchmarks/against_checkout.py /path/to/other/checkout [--rounds 5] [workload ...]

A first run after the kernels changed compiles them (about a minute per checkout):
run it twice, or warm each checkout first with ``--time rf-diabetes``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

THIS_TREE = Path(__file__).resolve().parent.parent
#: workload: fits timed per subprocess, the best one kept (more of the short ones).
WORKLOADS = {
    "rf-digits": 7,
    "rf-diabetes": 7,
    "rf-clf-100k": 3,
    "rf-reg-100k": 2,
    "et-clf-100k": 3,
    "et-diabetes": 7,
    "dt-reg-100k": 2,
    "rf-nan-digits": 5,
    "rf-poisson-diabetes": 5,
}


def load(name: str) -> tuple[np.ndarray, np.ndarray]:
    """``X, y`` of a workload: the dataset its name ends with, with NaN (``nan``) or Poisson targets."""
    from sklearn import datasets

    if name.endswith("digits"):
        X, y = datasets.load_digits(return_X_y=True)
    elif name.endswith("diabetes"):
        X, y = datasets.load_diabetes(return_X_y=True)
    elif name.endswith("clf-100k"):
        X, y = datasets.make_classification(100_000, 20, n_informative=10, random_state=0)
    else:
        X, y = datasets.make_regression(100_000, 20, n_informative=10, random_state=0)
    X = X.astype(np.float64)
    if "nan" in name:
        X[np.random.default_rng(0).random(X.shape) < 0.2] = np.nan
    if "poisson" in name:
        y = np.abs(y)
    return X, y


def make(name: str) -> Any:
    """The model a workload fits: ``rf``/``et`` forests (10 trees on 100k rows, else 30), or a ``dt`` tree."""
    import shmforest

    regression = name.endswith(("diabetes", "reg-100k"))
    if name.startswith("dt"):
        return shmforest.DecisionTreeRegressor(random_state=0, executor="serial")
    kind = "RandomForest" if name.startswith("rf") else "ExtraTrees"
    cls = getattr(shmforest, kind + ("Regressor" if regression else "Classifier"))
    options = {"criterion": "poisson"} if "poisson" in name else {}
    return cls(n_estimators=10 if "100k" in name else 30, random_state=0, executor="serial", **options)


def best_fit_seconds(name: str) -> float:
    X, y = load(name)
    make(name).fit(X[:500], y[:500])  # the kernels loaded from numba's cache
    best = np.inf
    for _ in range(WORKLOADS[name]):
        model = make(name)
        start = time.perf_counter()
        model.fit(X, y)
        best = min(best, time.perf_counter() - start)
    return best


def time_in_subprocess(tree: Path, name: str) -> float:
    """Workload ``name``'s best fit seconds, timed in a subprocess with ``shmforest`` imported from ``tree``."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--time", name],
        env=env,
        cwd=tree,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    origin, seconds = out.strip().splitlines()[-1].split()
    if not Path(origin).resolve().is_relative_to(tree.resolve()):
        raise RuntimeError(f"the subprocess imported shmforest from {origin}, not from {tree}")
    return float(seconds)


def ratios(other: Path, name: str, rounds: int, this: Path = THIS_TREE) -> dict[str, Any]:
    """Workload ``name``'s best fit seconds in ``this`` checkout and in ``other``, in
    ``rounds`` interleaved rounds: their medians, and the per-round ratios and their median."""
    ours: list[float] = []
    theirs: list[float] = []
    for r in range(rounds):
        order = [(this, ours), (other, theirs)]
        for tree, times in order if r % 2 == 0 else order[::-1]:
            times.append(time_in_subprocess(tree, name))
    per_round = np.array(ours) / np.array(theirs)
    return {
        "this_s": float(np.median(ours)),
        "other_s": float(np.median(theirs)),
        "ratio_median": float(np.median(per_round)),
        "ratios": [round(float(x), 3) for x in per_round],
    }


def compare(other: Path, names: list[str], rounds: int) -> None:
    print("| workload | this, median s | other, median s | this / other, median | per-round ratios |")
    print("|---|---|---|---|---|")
    for name in names:
        r = ratios(other, name, rounds)
        print(
            f"| {name} | {r['this_s']:.3f} | {r['other_s']:.3f} | {r['ratio_median']:.3f} "
            f"| {', '.join(f'{x:.3f}' for x in r['ratios'])} |",
            flush=True,
        )


def main() -> None:
    if sys.argv[1:2] == ["--time"]:  # a subprocess of compare(): time one workload here
        import shmforest

        print(shmforest.__file__, best_fit_seconds(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("other", type=Path, help="the other checkout")
    parser.add_argument("workloads", nargs="*", help=f"default: all of {', '.join(WORKLOADS)}")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_intermixed_args()
    unknown = sorted(set(args.workloads) - set(WORKLOADS))
    if unknown:
        parser.error(f"unknown workloads {unknown}; choose from {list(WORKLOADS)}")
    compare(args.other, args.workloads or list(WORKLOADS), args.rounds)


if __name__ == "__main__":
    main()
