"""Helpers the tree tests share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from shmforest.tree import Tree


def tree_from_sklearn(est: Any) -> Tree:
    """A fitted scikit-learn tree's arrays as a :class:`Tree` (its nodes numbered depth first)."""
    t = est.tree_
    return Tree(
        t.children_left,
        t.children_right,
        t.feature,
        t.threshold,
        t.value.reshape(t.node_count, -1),
        t.n_node_samples,
        t.weighted_n_node_samples,
        t.impurity,
        est.n_features_in_,
    )


@pytest.fixture(scope="session")
def from_sklearn() -> Callable[[Any], Tree]:
    return tree_from_sklearn
