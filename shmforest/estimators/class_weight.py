"""``class_weight`` as scikit-learn means it, turned into one weight per class.

scikit-learn expands ``class_weight`` into a weight per sample
(:func:`sklearn.utils.class_weight.compute_sample_weight`); every sample of a class
gets the same one, so what travels to a tree task is the short vector of class
weights, and the task multiplies each sample's weight by its class's entry
(:func:`shmforest.tree.tasks.fit_tree`). With several outputs the vector holds
each output's classes one after the other (output ``k``'s from the sum of the
earlier outputs' class counts), and a sample weighs the product of its classes'
entries, one per output, as ``compute_sample_weight`` multiplies them.
``"balanced_subsample"`` cannot be known before the bootstrap sample is drawn:
the task computes it from its own counts (:func:`shmforest.tree.tasks.balanced_class_weights`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.class_weight import compute_class_weight, compute_sample_weight

__all__ = ["FOREST_CLASS_WEIGHT", "TREE_CLASS_WEIGHT", "resolve_class_weight"]

#: The constraints scikit-learn puts on ``class_weight`` (a list holds a dict per output).
TREE_CLASS_WEIGHT: dict[str, list[Any]] = {"class_weight": [dict, list, StrOptions({"balanced"}), None]}
FOREST_CLASS_WEIGHT: dict[str, list[Any]] = {
    "class_weight": [StrOptions({"balanced_subsample", "balanced"}), dict, list, None]
}


def resolve_class_weight(
    class_weight: Any,
    y: np.ndarray,
    codes: np.ndarray,
    classes: Sequence[np.ndarray],
    *,
    forest: bool = False,
    bootstrap: bool = False,
    warm_start: bool = False,
    sample_weight: np.ndarray | None = None,
) -> tuple[np.ndarray | None, bool]:
    """The weight of each class, and whether each tree balances its own bootstrap sample instead.

    Parameters
    ----------
    class_weight : dict, list, "balanced", "balanced_subsample" or None
        As the estimator was given it (already checked against its constraints); with
        several outputs, a list of one dict per output or a preset.
    y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        The labels as given to ``fit``: a dict's keys are labels of ``y``.
    codes : ndarray of int, of ``y``'s shape
        Each sample's class index (into its output's ``classes``).
    classes : sequence of ndarray
        Each output's sorted labels.
    forest : bool
        A forest's "balanced" counts classes by ``sample_weight``, a tree's by samples, as in scikit-learn.
    bootstrap, warm_start : bool
        The forest's.
    sample_weight : ndarray or None
        The checked sample weights.

    Returns
    -------
    per_class : ndarray of float64, shape (sum of the outputs' class counts,), or None
        ``None`` when nothing is weighted here.
    balanced_subsample : bool
        Each tree weighs classes by its own bootstrap sample (only with ``bootstrap``).
    """
    if class_weight is None:
        return None, False
    if isinstance(class_weight, str) and warm_start:
        warnings.warn(
            'class_weight presets "balanced" or "balanced_subsample" are not recommended for '
            "warm_start if the fitted data differs from the full dataset. In order to use "
            '"balanced" weights, use compute_class_weight ("balanced", classes, y). In place '
            "of y you can use a large enough sample of the full training set target to "
            "properly estimate the class frequency distributions. Pass the resulting weights "
            "as the class_weight parameter.",
            UserWarning,
            stacklevel=6,
        )
    if class_weight == "balanced_subsample":
        if bootstrap:
            return None, True
        class_weight = "balanced"  # without bootstrap the subsample is the whole sample, as in scikit-learn
    if len(classes) > 1:
        return _per_output(class_weight, y, classes, forest, sample_weight), False
    if forest and class_weight == "balanced":
        return compute_class_weight("balanced", classes=classes[0], y=y, sample_weight=sample_weight), False
    # scikit-learn's own expansion, for its semantics and its error messages (unknown labels).
    per_sample = compute_sample_weight(class_weight, y)
    per_class = np.ones(len(classes[0]))
    per_class[codes] = per_sample
    return per_class, False


def _per_output(
    class_weight: Any, y: np.ndarray, classes: Sequence[np.ndarray], forest: bool, sample_weight: np.ndarray | None
) -> np.ndarray:
    """Each output's class weights, one output after the other, as scikit-learn computes them for ``y``'s columns."""
    if class_weight != "balanced":
        # scikit-learn's own expansion, for its checks and messages: a dict where a list
        # of dicts is due, a list of the wrong length, an output's unknown labels.
        compute_sample_weight(class_weight, y)
    per_output = []
    for k, classes_k in enumerate(classes):
        if class_weight == "balanced":
            # A forest counts by sample_weight, a tree by samples, as for one output.
            weight_k = sample_weight if forest else None
            per_output.append(compute_class_weight("balanced", classes=classes_k, y=y[:, k], sample_weight=weight_k))
        else:
            per_output.append(compute_class_weight(class_weight[k], classes=classes_k, y=y[:, k]))
    return np.concatenate(per_output).astype(np.float64)
