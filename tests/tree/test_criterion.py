"""Criteria: impurities by their formulas, proxies that rank splits as the impurity decrease does."""

from __future__ import annotations

import numpy as np
import pytest

from shmforest.tree import CRITERIA, get_criterion


def _class_stats(y, w, n_classes):
    return np.bincount(y, weights=w, minlength=n_classes).reshape(n_classes, 1)


def test_gini_and_entropy_impurity():
    stats = np.array([[3.0], [1.0]])  # weights 3 and 1
    assert get_criterion("gini", 2).impurity(stats)[0] == pytest.approx(1 - (0.75**2 + 0.25**2))
    expected = -(0.75 * np.log2(0.75) + 0.25 * np.log2(0.25))
    assert get_criterion("entropy", 2).impurity(stats)[0] == pytest.approx(expected)
    pure = np.array([[0.0], [5.0]])
    assert get_criterion("gini", 2).impurity(pure)[0] == 0.0
    assert get_criterion("entropy", 2).impurity(pure)[0] == 0.0


def test_squared_error_stats_value_and_impurity():
    crit = get_criterion("squared_error", 0)
    y = np.array([1.0, 2.0, 4.0, 10.0])
    w = np.array([1.0, 2.0, 1.0, 0.5])
    stats = crit.node_stats(np.array([0, 0, 0, 1]), 2, y, w)
    mean0 = (1 + 4 + 4) / 4
    var0 = (1 * (1 - mean0) ** 2 + 2 * (2 - mean0) ** 2 + 1 * (4 - mean0) ** 2) / 4
    assert crit.value(stats)[:, 0] == pytest.approx([mean0, 10.0])
    assert crit.impurity(stats) == pytest.approx([var0, 0.0])
    assert crit.weight(stats).tolist() == [4.0, 0.5]


def test_class_value_is_weight_fractions():
    crit = get_criterion("gini", 3)
    stats = crit.node_stats(np.zeros(4, dtype=np.intp), 1, np.array([0, 2, 2, 2]), np.array([1.0, 1.0, 1.0, 1.0]))
    assert crit.value(stats).tolist() == [[0.25, 0.0, 0.75]]


def _decrease(crit, parent, left, right):
    """Weighted impurity decrease, from node stats."""
    w = crit.weight(parent)
    wl, wr = crit.weight(left), crit.weight(right)
    return w * crit.impurity(parent) - wl * crit.impurity(left) - wr * crit.impurity(right)


@pytest.mark.parametrize(("name", "n_classes"), [("gini", 2), ("gini", 4), ("entropy", 2), ("entropy", 3), ("squared_error", 0)])
def test_proxy_ranks_splits_as_the_impurity_decrease(name, n_classes):
    rng = np.random.default_rng(1)
    crit = get_criterion(name, n_classes)
    n = 200
    y = rng.integers(0, n_classes, n) if n_classes else rng.normal(size=n)
    w = rng.uniform(0.5, 2.0, n)
    order = np.argsort(rng.random(n))
    proxies, decreases = [], []
    for cut in range(1, n):
        side = np.zeros(n, dtype=np.intp)
        side[order[cut:]] = 1
        node = crit.node_stats(side, 2, y, w)
        split = crit.histogram(side, 2, y, w)
        parent = node.sum(axis=1, keepdims=True)
        proxies.append(crit.proxy(split[:, :1], split[:, 1:])[0])
        decreases.append(_decrease(crit, parent, node[:, :1], node[:, 1:])[0])
    proxies, decreases = np.array(proxies), np.array(decreases)
    assert np.argmax(proxies) == np.argmax(decreases)
    # Not just the best: the whole order agrees (proxy = a * decrease + b, a > 0).
    a, b = np.polyfit(decreases, proxies, 1)
    assert a > 0
    assert np.allclose(proxies, a * decreases + b, rtol=0, atol=1e-9 * np.abs(proxies).max())


@pytest.mark.parametrize("name", sorted(CRITERIA))
def test_empty_side_scores_nan(name):
    crit = get_criterion(name, 0 if name == "squared_error" else 2)
    full = crit.histogram(np.zeros(3, dtype=np.intp), 1, np.array([0, 1, 1]), np.ones(3))
    with np.errstate(invalid="ignore", divide="ignore"):
        assert np.isnan(crit.proxy(np.zeros_like(full), full)).all()
        assert np.isnan(crit.proxy(full, np.zeros_like(full))).all()


def test_binary_gini_shortcut_matches_the_general_formula():
    rng = np.random.default_rng(2)
    left = rng.integers(1, 50, (2, 100)).astype(float)
    right = rng.integers(1, 50, (2, 100)).astype(float)
    gini = get_criterion("gini", 2)
    general = (left**2).sum(0) / left.sum(0) + (right**2).sum(0) / right.sum(0)
    total = left.sum(0) + right.sum(0)
    assert np.allclose(2 * gini.proxy(left, right) + total, general)


def test_histogram_sums_per_cell_with_weights():
    crit = get_criterion("gini", 2)
    h = crit.histogram(np.array([0, 1, 1, 2]), 3, np.array([1, 0, 1, 1]), np.array([1.0, 2.0, 3.0, 4.0]))
    assert h.tolist() == [[0.0, 2.0, 0.0], [1.0, 3.0, 4.0]]
    reg = get_criterion("squared_error", 0)
    h = reg.histogram(np.array([0, 1, 1]), 2, np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 1.0]))
    assert h.tolist() == [[1.0, 3.0], [1.0, 7.0]]


def test_get_criterion_errors():
    with pytest.raises(ValueError, match="criterion must be one of"):
        get_criterion("mae", 0)
    with pytest.raises(ValueError, match="n_classes >= 1"):
        get_criterion("gini", 0)
    with pytest.raises(ValueError, match="n_classes == 0"):
        get_criterion("squared_error", 2)
