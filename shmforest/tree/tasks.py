"""What a worker runs for a forest's fit: one tree from a placed dataset, or the
binning of a group of features.

Module-level functions, so tasks pickle by reference; this module imports no
scikit-learn, so a fresh worker that unpickles a task loads only what the
forkserver already holds (the estimators, which import scikit-learn, stay in
the process that called ``fit``).
"""

from __future__ import annotations

import numpy as np
import numpy.random  # noqa: F401 - loaded by the first bootstrap otherwise, in every fresh worker

from shmforest.shared import SharedDataset
from shmforest.tree.binning import Binner
from shmforest.tree.builder import TreeBuilder, TreeParams
from shmforest.tree.tree import Tree

__all__ = ["bin_columns", "bin_features", "bootstrap_counts", "fit_tree", "oob_predict"]

# Bootstrap draws use their own stream of the tree's seed, apart from the builder's.
_BOOTSTRAP_STREAM = 0xB0075


def bootstrap_counts(seed: int, n_samples: int, n_draws: int) -> np.ndarray:
    """How many times each sample is drawn into the bootstrap sample of the tree seeded ``seed``."""
    rng = np.random.default_rng([_BOOTSTRAP_STREAM, seed])
    draws = rng.integers(0, n_samples, size=n_draws)
    return np.bincount(draws, minlength=n_samples).astype(np.int32)


def bin_features(source: SharedDataset, start: int, stop: int, max_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Bin the features ``start:stop`` of ``source["XT"]`` (X transposed): their thresholds and uint8 codes.

    X travels transposed so that a task reads only its own features' memory, a
    contiguous slice, instead of every row of X. The codes travel back with the
    result rather than being written into shared memory: a task may run on
    another machine, where the dataset is a copy (the dask plugin), and uint8
    codes are an eighth of the float data anyway.
    """
    return bin_columns(source["XT"].T, source["w"] if "w" in source else None, start, stop, max_bins)


def bin_columns(
    X: np.ndarray, w: np.ndarray | None, start: int, stop: int, max_bins: int
) -> tuple[np.ndarray, np.ndarray]:
    """Thresholds and uint8 codes (C order) of the features ``start:stop`` of ``X``."""
    binner = Binner(max_bins=max_bins)
    codes = binner.fit_transform(X[:, start:stop], w)
    return binner.thresholds_, codes


def fit_tree(
    data: SharedDataset,
    params: TreeParams,
    seed: int,
    bootstrap: bool,
    n_draws: int,
    parallel: bool = False,
    oob: bool = False,
    delegate: bool = False,
) -> tuple[Tree, tuple[np.ndarray, np.ndarray] | None]:
    """Build one tree; with ``oob``, also its predictions for the samples its bootstrap left out.

    ``delegate``: run here, by a caller of ``fit`` that holds no token, handing
    every subtree to the executor (:meth:`TreeBuilder.build`); otherwise this is a
    task on a worker, or a caller holding a token (``_fit_tree_here`` in :mod:`shmforest.estimators.batch`).
    """
    counts = bootstrap_counts(seed, data["Xb"].shape[0], n_draws) if bootstrap else None
    tree = TreeBuilder(params).build(data, seed, sample_counts=counts, parallel=parallel, delegate=delegate)
    if oob and counts is not None:
        rows = np.flatnonzero(counts == 0)
        return tree, (rows.astype(np.int32), tree.predict(data["X"][rows]))
    return tree, None


def oob_predict(data: SharedDataset, tree: Tree, seed: int, n_draws: int) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-bag predictions of a tree built earlier (kept by ``warm_start``)."""
    counts = bootstrap_counts(seed, data["X"].shape[0], n_draws)
    rows = np.flatnonzero(counts == 0)
    return rows.astype(np.int32), tree.predict(data["X"][rows])
