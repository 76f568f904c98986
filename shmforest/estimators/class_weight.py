"""``class_weight`` as scikit-learn means it, turned into one weight per class.

scikit-learn expands ``class_weight`` into a weight per sample
(:func:`sklearn.utils.class_weight.compute_sample_weight`); every sample of a class
gets the same one, so what travels to a tree task is the short vector of class
weights, and the task multiplies each sample's weight by its class's entry
(:func:`shmforest.tree.tasks.fit_tree`). ``"balanced_subsample"`` cannot be known
before the bootstrap sample is drawn: the task computes it from its own counts
(:func:`shmforest.tree.tasks.balanced_class_weights`).
"""

from __future__ import annotations

import warnings
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
    classes: np.ndarray,
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
        As the estimator was given it (already checked against its constraints).
    y : ndarray
        The labels as given to ``fit``: a dict's keys are labels of ``y``.
    codes : ndarray of int
        Each sample's class index (into ``classes``).
    classes : ndarray
        The sorted labels.
    forest : bool
        A forest's "balanced" counts classes by ``sample_weight``, a tree's by samples, as in scikit-learn.
    bootstrap, warm_start : bool
        The forest's.
    sample_weight : ndarray or None
        The checked sample weights.

    Returns
    -------
    per_class : ndarray of float64, shape (n_classes,), or None
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
    if forest and class_weight == "balanced":
        return compute_class_weight("balanced", classes=classes, y=y, sample_weight=sample_weight), False
    # scikit-learn's own expansion, for its semantics and its error messages (unknown labels).
    per_sample = compute_sample_weight(class_weight, y)
    per_class = np.ones(len(classes))
    per_class[codes] = per_sample
    return per_class, False
