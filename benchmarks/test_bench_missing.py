"""What missing-value support costs: fits with NaN beside fits without, and NaN-free fits
of this tree beside another checkout's (the main branch's), in interleaved rounds.

Workloads (one core, the ``serial`` executor, so the figures are the kernels' own):

* ``digits``: scikit-learn's bundled digits (1,797 x 64), a 30-tree classifier;
* ``diabetes``: the bundled diabetes (442 x 10), a 30-tree regressor;
* ``clf-100k``: ``make_classification(100_000, 20, n_informative=10)``, a 10-tree classifier;
* ``reg-100k``: ``make_regression(100_000, 20, n_informative=10)``, a 10-tree regressor.

(a) **With NaN vs without**: each workload fitted on ``X`` and on ``X`` with 20% of
its values set to NaN, alternately, ``ROUNDS`` times; the median of the per-round
ratios (NaN / NaN-free). NaN fits do more (a second scan per feature and node that
holds NaN), and their trees differ, so this is a cost, not a regression check.

(b) **NaN-free fit, this tree vs another**: the same forests timed by
``against_checkout.py`` (its ``rf-`` workloads: a subprocess per round and checkout,
the best of a few fits after a warm-up, the checkouts alternating which goes first);
the report gives the median of per-round ratios (this tree / the other). The goal: 1.00 within noise, i.e. a NaN-free fit pays nothing for NaN
support. The machine may be shared: medians of interleaved ratios, not minima of
separate runs, are what resist its load. As a script::

    .venv/bin/python benchmarks/test_bench_missing.py                      # (a) only
    .venv/bin/python benchmarks/test_bench_missing.py --against /work/main  # (a) and (b)

Under pytest, (b) runs when ``SHMFOREST_BENCH_AGAINST`` names the other checkout.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import against_checkout  # (b): fit times with another checkout's shmforest
import numpy as np
import pytest

WORKLOADS = ("digits", "diabetes", "clf-100k", "reg-100k")
ROUNDS = 5
NAN_SHARE = 0.2
RESULTS: dict[str, dict[str, Any]] = {}


def load(name: str) -> tuple[np.ndarray, np.ndarray, bool, int]:
    """``X, y``, whether it is a regression, and the forest's number of trees."""
    from sklearn import datasets

    if name == "digits":
        X, y = datasets.load_digits(return_X_y=True)
        return X, y, False, 30
    if name == "diabetes":
        X, y = datasets.load_diabetes(return_X_y=True)
        return X, y, True, 30
    if name == "clf-100k":
        X, y = datasets.make_classification(n_samples=100_000, n_features=20, n_informative=10, random_state=0)
        return X, y, False, 10
    if name == "reg-100k":
        X, y = datasets.make_regression(n_samples=100_000, n_features=20, n_informative=10, random_state=0)
        return X, y, True, 10
    raise ValueError(f"workload must be one of {WORKLOADS}, got {name!r}")


def with_nan(X: np.ndarray, seed: int = 0) -> np.ndarray:
    X = X.astype(np.float64)
    X[np.random.default_rng(seed).random(X.shape) < NAN_SHARE] = np.nan
    return X


def fit_seconds(X: np.ndarray, y: np.ndarray, regression: bool, n_trees: int) -> float:
    from shmforest import RandomForestClassifier, RandomForestRegressor

    cls = RandomForestRegressor if regression else RandomForestClassifier
    model = cls(n_estimators=n_trees, random_state=0, executor="serial")
    t0 = time.perf_counter()
    model.fit(X, y)
    return time.perf_counter() - t0


def warm_up(nan: bool = True) -> None:
    """Compile (or load from numba's cache) every kernel a fit (and with ``nan``, a NaN fit) uses."""
    X, y, _, _ = load("diabetes")
    fit_seconds(X, y, True, 2)
    fit_seconds(with_nan(X) if nan else X, y > np.median(y), False, 2)


# --------------------------------------------------------------------------- (a) with NaN vs without


def nan_cost(name: str, rounds: int = ROUNDS) -> dict[str, Any]:
    X, y, regression, n_trees = load(name)
    Xn = with_nan(X)
    plain, nan = [], []
    for _ in range(rounds):
        plain.append(fit_seconds(X, y, regression, n_trees))
        nan.append(fit_seconds(Xn, y, regression, n_trees))
    ratios = np.array(nan) / np.array(plain)
    return {
        "n_trees": n_trees,
        "nan_free_s": float(np.median(plain)),
        "with_nan_s": float(np.median(nan)),
        "ratio_median": float(np.median(ratios)),
    }


# --------------------------------------------------------------------------- (b) this tree vs another


def against(other: Path, names: tuple[str, ...] = WORKLOADS, rounds: int = ROUNDS) -> dict[str, dict[str, Any]]:
    """Per workload, this checkout's NaN-free fit time beside ``other``'s: ``against_checkout``'s
    random-forest workload of the same data and trees, in interleaved rounds."""
    return {name: against_checkout.ratios(other, "rf-" + name, rounds) for name in names}


# --------------------------------------------------------------------------- pytest


@pytest.fixture(scope="module", autouse=True)
def _warm() -> None:
    pytest.importorskip("sklearn")
    warm_up()


@pytest.mark.parametrize("name", WORKLOADS)
def test_nan_cost(benchmark, name):
    result = benchmark.pedantic(nan_cost, args=(name,), rounds=1, iterations=1)
    RESULTS[f"nan {name}"] = result
    benchmark.extra_info.update(result)


@pytest.mark.parametrize("name", WORKLOADS)
def test_nan_free_fit_against_another_checkout(benchmark, name):
    other = os.environ.get("SHMFOREST_BENCH_AGAINST")
    if not other:
        pytest.skip("set SHMFOREST_BENCH_AGAINST to the checkout to compare with (e.g. main's)")
    result = benchmark.pedantic(against, args=(Path(other), (name,)), rounds=1, iterations=1)[name]
    RESULTS[f"vs {name}"] = result
    benchmark.extra_info.update(result)


def line(key: str) -> str:
    """The report's line of one measurement (``"nan NAME"`` or ``"vs NAME"``)."""
    kind, name = key.split(" ", 1)
    r = RESULTS[key]
    if kind == "nan":
        return (
            f"{name:9s} {r['n_trees']:2d} trees: NaN-free {r['nan_free_s']:.3f} s, "
            f"{NAN_SHARE:.0%} NaN {r['with_nan_s']:.3f} s, median ratio {r['ratio_median']:.2f}"
        )
    return (
        f"{name:9s} NaN-free fit, this tree {r['this_s']:.3f} s vs other {r['other_s']:.3f} s: "
        f"median ratio {r['ratio_median']:.3f} (rounds {r['ratios']})"
    )


def report() -> str:
    return "\n".join(
        line(f"{kind} {name}") for kind in ("nan", "vs") for name in WORKLOADS if f"{kind} {name}" in RESULTS
    )


def test_report(benchmark, capsys):
    if not RESULTS:
        pytest.skip("run the whole module: the report gathers its measurements")
    text = benchmark.pedantic(report, rounds=1, iterations=1)
    with capsys.disabled():
        print("\n" + text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", type=Path, help="another checkout: compare NaN-free fits with it")
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=WORKLOADS)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--skip-nan", action="store_true", help="only the comparison with --against")
    args = parser.parse_args()
    if not args.skip_nan:
        warm_up()
        for name in args.workloads:
            RESULTS[f"nan {name}"] = nan_cost(name, args.rounds)
            print(line(f"nan {name}"), flush=True)
    if args.against:
        for name, result in against(args.against, tuple(args.workloads), args.rounds).items():
            RESULTS[f"vs {name}"] = result
            print(line(f"vs {name}"), flush=True)
    print("\n" + report())


if __name__ == "__main__":
    main()
