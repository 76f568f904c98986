"""Our fitted estimators as scikit-learn's own fitted estimators, holding the same trees.

With them, the tools that read scikit-learn trees work on our models:
``sklearn.tree.export_text`` and ``plot_tree``, skl2onnx, treelite, shap's
``TreeExplainer``. A :class:`~shmforest.tree.tree.Tree` already has scikit-learn's
node layout (preorder ids, ``-1`` children at leaves, ``-2`` features there; class
fractions as values), so each tree becomes a ``sklearn.tree._tree.Tree`` through the
state scikit-learn pickles it as (``nodes`` of its ``NODE_DTYPE``, ``values`` of shape
(node_count, n_outputs, max_n_classes)).

scikit-learn casts ``X`` to float32 before it walks a tree and compares that with the
float64 threshold; we compare float64 ``X``. Each threshold is therefore rounded down
to the nearest float32: a float32-representable value then goes the same way in both
(none lies between the two thresholds), and any other value does unless it lies
within one float32 step of a threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import sklearn.ensemble
import sklearn.tree
from sklearn.base import BaseEstimator, is_classifier
from sklearn.tree._tree import NODE_DTYPE
from sklearn.tree._tree import Tree as SkTree
from sklearn.utils.validation import check_is_fitted

from shmforest.tree.tree import TREE_LEAF, Tree

__all__ = ["float32_thresholds", "sklearn_tree", "to_sklearn"]

#: Our estimators without a scikit-learn namesake, and the class that holds their trees.
SKLEARN_CLASSES = {"RandomForestQuantileRegressor": "RandomForestRegressor"}


def float32_thresholds(threshold: np.ndarray, is_leaf: np.ndarray) -> np.ndarray:
    """Each split threshold rounded down to a float32 value (stored as float64); leaves unchanged.

    A threshold of +inf (a split on missingness alone: every value left, NaN right) stays +inf.
    """
    limit = np.finfo(np.float32).max
    down = np.clip(threshold, -limit, limit).astype(np.float32)
    too_high = down.astype(np.float64) > threshold
    down[too_high] = np.nextafter(down[too_high], np.float32(-np.inf))
    return np.where(is_leaf | np.isposinf(threshold), threshold, down.astype(np.float64))


def sklearn_tree(tree: Tree, n_classes: int | Sequence[int] | None) -> SkTree:
    """``tree`` as a ``sklearn.tree._tree.Tree``.

    ``n_classes``: ``None`` for regression (one output per value column), the
    number of classes for one output, or each output's for several (their class
    fractions sit one output after the other in ``tree.value``; scikit-learn's
    values pad each output to the most classes of any with zeros).
    """
    n = tree.node_count
    is_leaf = tree.children_left == TREE_LEAF
    nodes = np.zeros(n, dtype=NODE_DTYPE)
    nodes["left_child"] = tree.children_left
    nodes["right_child"] = tree.children_right
    nodes["feature"] = tree.feature
    nodes["threshold"] = float32_thresholds(tree.threshold, is_leaf)
    nodes["impurity"] = tree.impurity
    nodes["n_node_samples"] = tree.n_node_samples
    nodes["weighted_n_node_samples"] = tree.weighted_n_node_samples
    nodes["missing_go_to_left"] = tree.missing_go_to_left
    if n_classes is None:
        counts = np.ones(tree.value.shape[1], dtype=np.intp)  # scikit-learn's regression trees: one "class"
    else:
        counts = np.atleast_1d(np.asarray(n_classes, dtype=np.intp))
    n_outputs = len(counts)
    if n_outputs == 1 or n_classes is None:
        values = tree.value.reshape(n, n_outputs, int(counts.max()))
    else:
        values = np.zeros((n, n_outputs, int(counts.max())))
        for k, (start, count) in enumerate(zip(np.cumsum(counts) - counts, counts)):
            values[:, k, :count] = tree.value[:, start : start + count]
    out = SkTree(tree.n_features, counts, n_outputs)
    out.__setstate__(
        {
            "max_depth": tree.max_depth,
            "node_count": n,
            "nodes": nodes,
            "values": np.ascontiguousarray(values),
        }
    )
    return out


def _sklearn_class(model: BaseEstimator) -> type[BaseEstimator]:
    name = type(model).__name__
    name = SKLEARN_CLASSES.get(name, name)
    module = sklearn.tree if name.startswith("DecisionTree") else sklearn.ensemble
    return getattr(module, name)


def _unfitted(model: BaseEstimator, cls: type[BaseEstimator]) -> Any:
    """A ``cls`` with every parameter of ``model`` that it shares."""
    theirs = cls().get_params()
    params = {k: v for k, v in model.get_params().items() if k in theirs}
    if params.get("criterion") == "friedman_mse":
        # Its alias since scikit-learn 1.9, which warns that the name goes away.
        params["criterion"] = "squared_error"
    return cls(**params)


def _copy_data_attributes(model: Any, out: Any) -> None:
    for name in ("n_features_in_", "feature_names_in_", "n_outputs_", "classes_", "n_classes_"):
        if hasattr(model, name):
            setattr(out, name, getattr(model, name))


def _sklearn_decision_tree(model: Any, cls: type[BaseEstimator], template: Any = None) -> Any:
    out = _unfitted(model, cls) if template is None else template
    _copy_data_attributes(model, out)
    out.max_features_ = model.max_features_
    out.tree_ = sklearn_tree(model.tree_, model.n_classes_ if is_classifier(model) else None)
    return out


def to_sklearn(model: Any) -> Any:
    """The fitted scikit-learn estimator equivalent to ``model``, holding the same trees.

    Parameters
    ----------
    model : fitted shmforest estimator

    Returns
    -------
    sklearn.tree.DecisionTreeClassifier, ..., sklearn.ensemble.RandomForestRegressor
        A quantile forest becomes a ``RandomForestRegressor`` (its mean prediction).
    """
    check_is_fitted(model)
    cls = _sklearn_class(model)
    if not hasattr(model, "estimators_"):
        return _sklearn_decision_tree(model, cls)
    out = _unfitted(model, cls)
    tree_cls = type(out.estimator)
    out.estimator_ = _unfitted(model.estimators_[0], tree_cls).set_params(random_state=None)
    out.estimators_ = [_sklearn_decision_tree(e, tree_cls) for e in model.estimators_]
    _copy_data_attributes(model, out)
    for name in ("oob_score_", "oob_decision_function_", "oob_prediction_"):
        if hasattr(model, name):
            setattr(out, name, getattr(model, name))
    return out
