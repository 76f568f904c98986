"""What a forest's fit runs: one tree from a placed dataset (a worker's task), or the
binning of a group of features (a thread of the process that called ``fit``).

Module-level functions, so tasks pickle by reference; this module imports no
scikit-learn, so a fresh worker that unpickles a task loads only what the
forkserver already holds (the estimators, which import scikit-learn, stay in
the process that called ``fit``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.random  # noqa: F401 - loaded by the first bootstrap otherwise, in every fresh worker

from shmforest.shared import SharedDataset
from shmforest.tree.binning import Binner
from shmforest.tree.builder import TreeBuilder, TreeParams
from shmforest.tree.growth import offset_codes
from shmforest.tree.pruning import prune_tree
from shmforest.tree.tree import Tree

__all__ = [
    "FitOptions",
    "balanced_class_weights",
    "bin_columns",
    "bootstrap_counts",
    "fit_tree",
    "oob_predict",
]

# Bootstrap draws use their own stream of the tree's seed, apart from the builder's.
_BOOTSTRAP_STREAM = 0xB0075


def bootstrap_counts(seed: int, n_samples: int, n_draws: int, p: np.ndarray | None = None) -> np.ndarray:
    """How many times each sample is drawn into the bootstrap sample of the tree seeded ``seed``.

    ``p``: the probability of drawing each sample (uniform when ``None``).
    """
    rng = np.random.default_rng([_BOOTSTRAP_STREAM, seed])
    draws = rng.integers(0, n_samples, size=n_draws) if p is None else rng.choice(n_samples, size=n_draws, p=p)
    return np.bincount(draws, minlength=n_samples).astype(np.int32)


@dataclass(frozen=True)
class FitOptions:
    """What a tree task does around the builder besides growing.

    Attributes
    ----------
    class_weight : ndarray of float64, shape (n_classes,), or None
        Multiplies the weight of each sample of a class (the estimator's ``class_weight``).
        With several outputs, every output's classes side by side (output k's from the
        sum of the class counts before it): a sample's weight is multiplied by the
        product of its classes' entries, as scikit-learn's ``compute_sample_weight`` does.
        With a bootstrap, the classes' weights are the odds of drawing their samples
        instead (scikit-learn's forests since 1.9: class weights shape the draws, the tree
        then weighs each sample by its count).
    balanced_subsample : bool
        Weigh classes inversely to their counts in this tree's bootstrap sample.
    ccp_alpha : float
        Prune the grown tree with minimal cost-complexity pruning (0: keep it whole).
    """

    class_weight: np.ndarray | None = None
    balanced_subsample: bool = False
    ccp_alpha: float = 0.0


def balanced_class_weights(codes: np.ndarray, counts: np.ndarray, n_classes: int) -> np.ndarray:
    """scikit-learn's "balanced" class weights over a bootstrap sample: ``n_draws / (n_present * draws_of_class)``.

    A class the bootstrap sample missed weighs 0, as in scikit-learn's
    ``compute_sample_weight("balanced", y, indices=...)``.
    """
    per_class = np.bincount(codes, weights=counts, minlength=n_classes)
    present = per_class > 0
    out = np.zeros(n_classes)
    out[present] = counts.sum() / (np.count_nonzero(present) * per_class[present])
    return out


def _class_codes(data: SharedDataset, class_counts: tuple[int, ...]) -> np.ndarray:
    """Each sample's classes as indices into every output's classes side by side: shape (n, n_outputs)."""
    codes = np.asarray(data["y"], dtype=np.int64).reshape(data["Xb"].shape[0], -1)
    return offset_codes(codes, class_counts) if len(class_counts) > 1 else codes


def _per_sample(class_weight: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Each sample's weight: the product over its outputs of its classes' weights (one output: its class's)."""
    per_output = class_weight[codes]
    return per_output[:, 0] if codes.shape[1] == 1 else np.prod(per_output, axis=1)


def _draws_and_multipliers(
    data: SharedDataset,
    seed: int,
    bootstrap: bool,
    n_draws: int,
    options: FitOptions,
    class_counts: tuple[int, ...],
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The bootstrap counts, and what multiplies ``data["w"]`` in the builder (counts times any class weights).

    ``class_counts``: each output's number of classes (``TreeParams.class_counts``).
    """
    n_samples = data["Xb"].shape[0]
    weighted = options.class_weight is not None or options.balanced_subsample
    codes = _class_codes(data, class_counts) if weighted else np.empty((0, 1), dtype=np.int64)
    if not bootstrap:
        return None, None if options.class_weight is None else _per_sample(options.class_weight, codes)
    if options.class_weight is None:
        counts = bootstrap_counts(seed, n_samples, n_draws)
        if not options.balanced_subsample:
            return counts, counts
        # Per output, each over its own classes: a class of another output is never drawn here.
        total = sum(class_counts)
        balanced = [balanced_class_weights(codes[:, k], counts, total) for k in range(codes.shape[1])]
        factor = balanced[0][codes[:, 0]]
        for k in range(1, codes.shape[1]):
            factor = factor * balanced[k][codes[:, k]]
        return counts, counts * factor
    odds = _per_sample(options.class_weight, codes)
    counts = bootstrap_counts(seed, n_samples, n_draws, odds / odds.sum())
    return counts, counts


def bin_columns(
    X: np.ndarray, w: np.ndarray | None, start: int, stop: int, max_bins: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thresholds, bin ranges and uint8 codes (C order) of the features ``start:stop`` of ``X`` (:class:`Binner`)."""
    binner = Binner(max_bins=max_bins)
    codes = binner.fit_transform(X[:, start:stop], w)
    return binner.thresholds_, binner.bin_ranges_, codes


def fit_tree(
    data: SharedDataset,
    params: TreeParams,
    seed: int,
    bootstrap: bool,
    n_draws: int,
    parallel: bool = False,
    oob: bool = False,
    options: FitOptions | None = None,
    delegate: bool = False,
) -> tuple[Tree, tuple[np.ndarray, np.ndarray] | None]:
    """Build one tree; with ``oob``, also its predictions for the samples its bootstrap left out.

    ``delegate``: run here, by a caller of ``fit`` that holds no token, handing
    every subtree to the executor (:meth:`TreeBuilder.build`); otherwise this is a
    task on a worker, or a caller holding a token (``_fit_tree_here`` in :mod:`shmforest.estimators.batch`).
    ``options``: class weights on the samples and pruning after growth (:class:`FitOptions`).
    """
    options = options or FitOptions()
    # The builder multiplies data["w"] by these per-sample factors, fractional ones included.
    counts, multipliers = _draws_and_multipliers(data, seed, bootstrap, n_draws, options, params.class_counts)
    tree = TreeBuilder(params).build(data, seed, sample_counts=multipliers, parallel=parallel, delegate=delegate)
    # Pruned here, before the out-of-bag predictions, which are the pruned tree's.
    tree = prune_tree(tree, options.ccp_alpha)
    if oob and counts is not None:
        rows = np.flatnonzero(counts == 0)
        return tree, (rows.astype(np.int32), tree.predict(data["X"][rows]))
    return tree, None


def oob_predict(
    data: SharedDataset,
    tree: Tree,
    seed: int,
    n_draws: int,
    options: FitOptions | None = None,
    class_counts: tuple[int, ...] = (),
) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-bag predictions of a tree built earlier (kept by ``warm_start``).

    ``class_counts``: each output's number of classes (``TreeParams.class_counts``), for class weights.
    """
    counts, _ = _draws_and_multipliers(data, seed, True, n_draws, options or FitOptions(), class_counts)
    rows = np.flatnonzero(counts == 0)
    return rows.astype(np.int32), tree.predict(data["X"][rows])
