"""Random draws that depend only on the tree's seed and a node's position.

A node's *key* is a 64-bit hash of its path from the root (``child = mix(parent,
side)``), so it is the same whichever process grows the node and whatever other
nodes are grown beside it. Feature subsets are drawn from the key alone, which is
what makes trees bit-identical on every executor at every budget.
"""

from __future__ import annotations

import numpy as np

__all__ = ["root_key", "child_keys", "feature_orders"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser on an array of uint64 (wrapping arithmetic)."""
    z = z.copy()
    z ^= z >> np.uint64(30)
    z *= _M1
    z ^= z >> np.uint64(27)
    z *= _M2
    z ^= z >> np.uint64(31)
    return z


def root_key(seed: int) -> np.ndarray:
    """The root's key for a tree ``seed`` (any int), as a length-1 uint64 array."""
    return _mix(np.array([int(seed) & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64) + _GOLDEN)


def child_keys(keys: np.ndarray) -> np.ndarray:
    """Keys of the children of ``keys``: shape (n, 2), left then right."""
    base = keys.astype(np.uint64)[:, None] * np.uint64(2) + np.arange(1, 3, dtype=np.uint64)
    return _mix(base * _GOLDEN)


def feature_orders(keys: np.ndarray, n_features: int) -> np.ndarray:
    """A random permutation of the features for each node key: shape (n, n_features).

    Features are visited in this order; the first ``max_features`` usable ones are
    evaluated, as scikit-learn's splitter draws features without replacement.
    """
    f = np.arange(n_features, dtype=np.uint64)
    scores = _mix(keys.astype(np.uint64)[:, None] ^ ((f + np.uint64(1)) * _GOLDEN))
    return np.argsort(scores, axis=1, kind="stable").astype(np.intp)
