"""Seeded synthetic datasets for the demo, the pytest fixtures and examples, without scikit-learn.

:func:`make_classification` follows scikit-learn's generator of the same name in
spirit (its layout of informative, redundant and noise features, clusters on
hypercube vertices, a few flipped labels), not bit for bit: the figures in
DESIGN.md were measured on scikit-learn's, so they are comparable, not equal.
"""

from __future__ import annotations

import numpy as np

__all__ = ["make_classification", "train_test_split"]


def _hypercube_vertices(n_vertices: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    """``n_vertices`` distinct random vertices of the unit hypercube in ``dim`` dimensions."""
    if dim < 63:
        codes = rng.choice(1 << dim, size=n_vertices, replace=False)
        return ((codes[:, None] >> np.arange(dim)) & 1).astype(np.float64)
    # 2**dim does not fit an int64; with so many vertices a repeat is practically impossible
    while True:
        vertices = rng.integers(0, 2, size=(n_vertices, dim)).astype(np.float64)
        if len(np.unique(vertices, axis=0)) == n_vertices:
            return vertices


def make_classification(
    n_samples: int = 100,
    n_features: int = 20,
    *,
    n_informative: int = 2,
    n_redundant: int = 2,
    n_classes: int = 2,
    n_clusters_per_class: int = 2,
    class_sep: float = 1.0,
    flip_y: float = 0.01,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """A random classification problem: Gaussian clusters on the vertices of a hypercube.

    Each class owns ``n_clusters_per_class`` clusters, each centred on a distinct
    vertex of a hypercube of side ``2 * class_sep`` in the informative subspace and
    given its own random covariance. Redundant features are random linear
    combinations of the informative ones; the remaining features are noise. Then a
    fraction ``flip_y`` of the labels is redrawn at random and rows and columns are
    shuffled. The same arguments always give the same arrays.

    Parameters
    ----------
    n_samples : int, default 100
        Rows.
    n_features : int, default 20
        Columns: informative, redundant, then noise (before shuffling).
    n_informative : int, default 2
        Features that carry the class structure.
    n_redundant : int, default 2
        Linear combinations of the informative features.
    n_classes : int, default 2
        Labels ``0 .. n_classes - 1``.
    n_clusters_per_class : int, default 2
        Clusters of each class; ``n_classes * n_clusters_per_class`` must not exceed
        ``2 ** n_informative``, the vertices available.
    class_sep : float, default 1.0
        Half the hypercube's side: larger separates the classes more.
    flip_y : float, default 0.01
        Fraction of labels redrawn at random (label noise caps the attainable accuracy).
    seed : int, default 0
        Seeds everything.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), float64
    y : ndarray of shape (n_samples,), int64

    Examples
    --------
    >>> X, y = make_classification(1000, 20, n_informative=10, seed=0)
    >>> X.shape, sorted(set(y.tolist()))
    ((1000, 20), [0, 1])
    """
    for name, value, low in (
        ("n_samples", n_samples, 1),
        ("n_features", n_features, 1),
        ("n_informative", n_informative, 1),
        ("n_redundant", n_redundant, 0),
        ("n_classes", n_classes, 1),
        ("n_clusters_per_class", n_clusters_per_class, 1),
    ):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
            raise ValueError(f"{name} must be an int >= {low}; got {value!r}")
    if n_informative + n_redundant > n_features:
        raise ValueError(
            "n_informative + n_redundant must be at most n_features; "
            f"got {n_informative} + {n_redundant} > {n_features}"
        )
    n_clusters = n_classes * n_clusters_per_class
    if n_informative < 63 and n_clusters > 1 << n_informative:
        raise ValueError(
            f"n_classes * n_clusters_per_class must be at most 2 ** n_informative = {1 << n_informative}; "
            f"got {n_clusters}"
        )
    if not 0.0 <= flip_y <= 1.0:
        raise ValueError(f"flip_y must be in [0, 1]; got {flip_y!r}")

    rng = np.random.default_rng(seed)
    X = np.empty((n_samples, n_features))
    y = np.empty(n_samples, dtype=np.int64)
    centroids = (2.0 * _hypercube_vertices(n_clusters, n_informative, rng) - 1.0) * class_sep
    informative = X[:, :n_informative]
    informative[:] = rng.standard_normal((n_samples, n_informative))
    # Clusters as equal as the row count allows; cluster k belongs to class k % n_classes.
    bounds = np.linspace(0, n_samples, n_clusters + 1).astype(np.int64)
    for k, (start, stop) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        y[start:stop] = k % n_classes
        covariance = 2.0 * rng.random((n_informative, n_informative)) - 1.0
        informative[start:stop] = informative[start:stop] @ covariance + centroids[k]
    if n_redundant:
        mixing = 2.0 * rng.random((n_informative, n_redundant)) - 1.0
        X[:, n_informative : n_informative + n_redundant] = informative @ mixing
    n_noise = n_features - n_informative - n_redundant
    if n_noise:
        X[:, n_features - n_noise :] = rng.standard_normal((n_samples, n_noise))
    flipped = rng.random(n_samples) < flip_y
    y[flipped] = rng.integers(0, n_classes, size=int(flipped.sum()))
    rows = rng.permutation(n_samples)
    columns = rng.permutation(n_features)
    return np.ascontiguousarray(X[rows][:, columns]), y[rows]


def train_test_split(
    X: np.ndarray, y: np.ndarray, *, test_size: float = 0.25, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Shuffle the rows with ``seed`` and hold out ``test_size`` of them (at least one row each side).

    Parameters
    ----------
    X : ndarray of shape (n_samples, ...)
    y : ndarray of shape (n_samples,)
    test_size : float, default 0.25
        Fraction of rows held out, in (0, 1).
    seed : int, default 0
        Seeds the shuffle.

    Returns
    -------
    X_train, X_test, y_train, y_test : ndarray
    """
    n = len(X)
    if len(y) != n:
        raise ValueError(f"X and y must have the same number of rows; got {n} and {len(y)}")
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be in (0, 1); got {test_size!r}")
    if n < 2:
        raise ValueError(f"need at least 2 rows to split; got {n}")
    n_test = min(max(int(round(n * test_size)), 1), n - 1)
    order = np.random.default_rng(seed).permutation(n)
    test, train = order[:n_test], order[n_test:]
    return X[train], X[test], y[train], y[test]
