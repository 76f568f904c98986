"""Quantile regression forests beside the ``quantile-forest`` package (a ``bench`` peer).

A heteroscedastic synthetic problem (noise grows with the first feature), 5,000
training and 5,000 held-out rows, 100 trees, ``min_samples_leaf`` 5 (leaves that are
not tiny) and 1 (fully grown), same parameters on both sides. Reported per
side: coverage of the 5%-95% interval on the held-out rows, and the mean pinball loss
at 0.05, 0.5 and 0.95; and the fit and predict times. ``quantile-forest`` runs
twice: with Meinshausen's weighting as ours (``max_samples_leaf=None``,
``weighted_leaves=True``) and with its defaults (one sample kept per leaf).

Goals, asserted where they are statements about the model, not the clock:
coverage within 2 points of quantile-forest's, pinball loss within 5% of it.
As a script::

    .venv/bin/python benchmarks/test_bench_quantile.py
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from shmforest import RandomForestQuantileRegressor

N_TREES = 100
QUANTILES = [0.05, 0.5, 0.95]
LEAVES = (5, 1)


def heteroscedastic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 10, size=(n, 5))
    y = X[:, 0] + np.sin(X[:, 1]) + rng.normal(size=n) * (0.2 + 0.3 * X[:, 0])
    return X, y


def pinball(y: np.ndarray, pred: np.ndarray, q: float) -> float:
    d = y - pred
    return float(np.mean(np.maximum(q * d, (q - 1) * d)))


def scores(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    out = {"coverage": float(np.mean((y >= pred[:, 0]) & (y <= pred[:, 2])))}
    out["pinball"] = float(np.mean([pinball(y, pred[:, i], q) for i, q in enumerate(QUANTILES)]))
    return out


def run(min_samples_leaf: int) -> dict[str, dict[str, float]]:
    """Fit and score each side; returns {side: {coverage, pinball, fit_s, predict_s}}."""
    from quantile_forest import RandomForestQuantileRegressor as PeerQRF

    X, y = heteroscedastic(5000, 0)
    X_new, y_new = heteroscedastic(5000, 1)
    params = {"n_estimators": N_TREES, "min_samples_leaf": min_samples_leaf, "random_state": 0, "n_jobs": 2}
    sides: dict[str, tuple[Any, dict[str, Any]]] = {
        "shmforest": (RandomForestQuantileRegressor(**params), {}),
        "quantile-forest (Meinshausen)": (PeerQRF(max_samples_leaf=None, **params), {"weighted_leaves": True}),
        "quantile-forest (defaults)": (PeerQRF(**params), {}),
    }
    results = {}
    for side, (model, predict_kw) in sides.items():
        t0 = time.perf_counter()
        model.fit(X, y)
        t1 = time.perf_counter()
        pred = model.predict(X_new, quantiles=QUANTILES, **predict_kw)
        t2 = time.perf_counter()
        results[side] = {**scores(y_new, pred), "fit_s": t1 - t0, "predict_s": t2 - t1}
    return results


@pytest.fixture(scope="module")
def peer() -> None:
    pytest.importorskip("quantile_forest")


@pytest.mark.parametrize("min_samples_leaf", LEAVES)
def test_quantile_forest_beside_quantile_forest(peer: None, min_samples_leaf: int, record_property: Any) -> None:
    results = run(min_samples_leaf)
    record_property("results", results)
    ours = results["shmforest"]
    for side in ("quantile-forest (Meinshausen)", "quantile-forest (defaults)"):
        theirs = results[side]
        assert abs(ours["coverage"] - theirs["coverage"]) <= 0.02, (side, ours, theirs)
        assert ours["pinball"] <= 1.05 * theirs["pinball"], (side, ours, theirs)
    if min_samples_leaf > 1:
        assert abs(ours["coverage"] - 0.90) <= 0.05


def test_predict_speed(benchmark: Any, peer: None) -> None:
    X, y = heteroscedastic(5000, 0)
    model = RandomForestQuantileRegressor(N_TREES, min_samples_leaf=5, random_state=0, n_jobs=2).fit(X, y)
    X_new, _ = heteroscedastic(5000, 1)
    benchmark.pedantic(model.predict, args=(X_new,), kwargs={"quantiles": QUANTILES}, rounds=5, warmup_rounds=1)


if __name__ == "__main__":
    for leaf in LEAVES:
        print(f"min_samples_leaf={leaf}")
        for side, r in run(leaf).items():
            print(
                f"  {side:32s} coverage {r['coverage']:.3f}  pinball {r['pinball']:.4f}  "
                f"fit {r['fit_s']:.2f} s  predict {r['predict_s']:.2f} s"
            )
