"""Random forests and decision trees: real scikit-learn estimators.

The estimators validate and wire; the tree builder grows (``shmforest.tree``); the
batch machinery in :mod:`shmforest.estimators.batch` bins ``X`` once, places it once in shared
memory and runs one task per tree on an executor. Forests run their trees side by
side; a single decision tree runs as one task whose builder hands independent
subtrees to the same executor (branch parallelism), under the same budget.

Fitted forests keep one fitted :class:`DecisionTreeClassifier` /
:class:`DecisionTreeRegressor` per tree in ``estimators_``, each holding its flat
node arrays in ``tree_`` and its seed in ``random_state``, as scikit-learn does.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike
from sklearn.utils._param_validation import StrOptions

from shmforest.estimators.base import BaseDecisionTree, BaseForest, ClassifierBase, RegressorBase
from shmforest.estimators.batch import DEFAULT_EXECUTOR
from shmforest.estimators.class_weight import FOREST_CLASS_WEIGHT, TREE_CLASS_WEIGHT

__all__ = [
    "ExtraTreesClassifier",
    "ExtraTreesRegressor",
    "RandomForestClassifier",
    "RandomForestRegressor",
    "DecisionTreeClassifier",
    "DecisionTreeRegressor",
]

_CLASSIFICATION_CRITERIA = {"criterion": [StrOptions({"gini", "entropy", "log_loss"})]}
_REGRESSION_CRITERIA = {"criterion": [StrOptions({"squared_error", "friedman_mse", "poisson"})]}
_SPLITTER = {"splitter": [StrOptions({"best", "random"})]}


class DecisionTreeClassifier(ClassifierBase, BaseDecisionTree):
    """A decision tree classifier, built branch-parallel on an executor.

    Parameters
    ----------
    criterion : {"gini", "entropy", "log_loss"}, default "gini"
        Impurity measure of a split ("log_loss" is "entropy").
    splitter : {"best", "random"}, default "best"
        "best": the best boundary of each candidate feature; "random": one random cut
        of each, drawn between the node's lowest and highest bin (extra trees), the
        best of those taken; its threshold lies anywhere in the gap between the two
        sides' values, as scikit-learn's does.
    max_depth : int or None, default None
        Deepest level grown; ``None`` grows until the other limits stop it.
    min_samples_split : int or float, default 2
        Samples a node needs to be split (a float is a fraction of the samples).
    min_samples_leaf : int or float, default 1
        Samples each leaf must keep (a float is a fraction of the samples).
    min_weight_fraction_leaf : float, default 0.0
        Each leaf must keep at least this fraction (in [0, 0.5]) of the total sample
        weight (sample weights times class weights, times bootstrap counts in a forest).
    max_features : {"sqrt", "log2"}, int, float or None, default None
        Features drawn as candidates at each node; ``None`` means all.
    random_state : int, RandomState or None, default None
        Seeds the candidate features' draws.
    max_leaf_nodes : int or None, default None
        Most leaves the tree may have.
    min_impurity_decrease : float, default 0.0
        A split must decrease the weighted impurity at least this much.
    class_weight : dict, list of dict, "balanced" or None, default None
        Weight of each class, multiplying the sample weights: ``{label: weight}``, or
        "balanced" (``n_samples / (n_classes * np.bincount(y))``), as in scikit-learn.
        With several outputs, one dict per output (or "balanced", per output); a
        sample weighs the product of its classes' weights over the outputs.
    ccp_alpha : float, default 0.0
        Minimal cost-complexity pruning after growth: the largest subtree whose weakest
        link costs more than ``ccp_alpha`` is kept (scikit-learn's algorithm; 0 prunes nothing).
    monotonic_cst : array-like of int of shape (n_features,) or None, default None
        Per feature, 1 (predictions increase with it), -1 (decrease) or 0 (no constraint),
        as in scikit-learn: for regression and binary classification (the probability of
        ``classes_[1]``), not multi-class nor several outputs. Each split on a constrained feature keeps its
        children's values in order and within bounds passed down the tree, and every
        node's value is clipped to its bounds.
    max_bins : int, default 256
        Quantile bins per feature (2 to 256); exact when a feature has fewer values.
    executor : str or Executor, default "thread"
        A registered executor name, or an executor instance (left running after fit).
    n_jobs : int or None, default None
        Workers of an executor created by name; ``None`` or -1 use every usable core.

    Attributes
    ----------
    tree_ : shmforest.tree.Tree
        The fitted tree as flat node arrays (scikit-learn's ``tree_`` layout). With
        several outputs, each node's ``value`` row holds each output's class fractions,
        one output after the other.
    classes_ : ndarray, or list of ndarray (one per output)
        The labels, sorted, as ``predict_proba``'s columns follow them.
    n_classes_ : int, or ndarray of int (one per output)
    n_outputs_ : int
        Columns of ``y`` (1 for a 1-D ``y`` or a column vector).
    n_features_in_, max_features_, feature_importances_
        As in scikit-learn; ``feature_names_in_`` too when ``X`` had string column names.

    With several outputs, ``predict`` returns an array of shape (n_samples, n_outputs)
    and ``predict_proba`` / ``predict_log_proba`` a list of one array per output, as
    scikit-learn's do.

    Notes
    -----
    ``decision_path`` returns ``(indptr, indices)``, the CSR parts of scikit-learn's
    indicator matrix, so as not to depend on scipy.
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **BaseDecisionTree._parameter_constraints,
        **_CLASSIFICATION_CRITERIA,
        **TREE_CLASS_WEIGHT,
        **_SPLITTER,
    }

    def __init__(
        self,
        *,
        criterion: str = "gini",
        splitter: str = "best",
        max_depth: int | None = None,
        min_samples_split: int | float = 2,
        min_samples_leaf: int | float = 1,
        min_weight_fraction_leaf: float = 0.0,
        max_features: int | float | str | None = None,
        random_state: int | np.random.RandomState | None = None,
        max_leaf_nodes: int | None = None,
        min_impurity_decrease: float = 0.0,
        class_weight: dict[Any, float] | list[dict[Any, float]] | str | None = None,
        ccp_alpha: float = 0.0,
        monotonic_cst: ArrayLike | None = None,
        max_bins: int = 256,
        executor: str | Executor = DEFAULT_EXECUTOR,
        n_jobs: int | None = None,
    ) -> None:
        self.criterion = criterion
        self.splitter = splitter
        self.max_depth = max_depth
        self.min_samples_split = min_samples_split
        self.min_samples_leaf = min_samples_leaf
        self.min_weight_fraction_leaf = min_weight_fraction_leaf
        self.max_features = max_features
        self.random_state = random_state
        self.max_leaf_nodes = max_leaf_nodes
        self.min_impurity_decrease = min_impurity_decrease
        self.class_weight = class_weight
        self.ccp_alpha = ccp_alpha
        self.monotonic_cst = monotonic_cst
        self.max_bins = max_bins
        self.executor = executor
        self.n_jobs = n_jobs


class DecisionTreeRegressor(RegressorBase, BaseDecisionTree):
    """A decision tree regressor, built branch-parallel on an executor.

    Parameters are those of :class:`DecisionTreeClassifier`, except ``criterion``
    and ``class_weight``, which classifiers alone take.

    Parameters
    ----------
    criterion : {"squared_error", "friedman_mse", "poisson"}, default "squared_error"
        "squared_error" splits where the weighted variance decreases most; "friedman_mse"
        grows the same trees (scikit-learn 1.9 made it an alias, as both were always
        equivalent); "poisson" where the half Poisson deviance decreases most, for
        non-negative targets (counts, rates) of a positive sum; leaves predict the mean in
        each case. "absolute_error" is not supported.

    Notes
    -----
    A 2-D ``y`` is several outputs grown into one tree, as in scikit-learn: each split
    is scored over all of them, each leaf holds every output's mean, and ``predict``
    returns shape (n_samples, n_outputs) (``n_outputs_``).
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **BaseDecisionTree._parameter_constraints,
        **_REGRESSION_CRITERIA,
        **_SPLITTER,
    }

    def __init__(
        self,
        *,
        criterion: str = "squared_error",
        splitter: str = "best",
        max_depth: int | None = None,
        min_samples_split: int | float = 2,
        min_samples_leaf: int | float = 1,
        min_weight_fraction_leaf: float = 0.0,
        max_features: int | float | str | None = None,
        random_state: int | np.random.RandomState | None = None,
        max_leaf_nodes: int | None = None,
        min_impurity_decrease: float = 0.0,
        ccp_alpha: float = 0.0,
        monotonic_cst: ArrayLike | None = None,
        max_bins: int = 256,
        executor: str | Executor = DEFAULT_EXECUTOR,
        n_jobs: int | None = None,
    ) -> None:
        self.criterion = criterion
        self.splitter = splitter
        self.max_depth = max_depth
        self.min_samples_split = min_samples_split
        self.min_samples_leaf = min_samples_leaf
        self.min_weight_fraction_leaf = min_weight_fraction_leaf
        self.max_features = max_features
        self.random_state = random_state
        self.max_leaf_nodes = max_leaf_nodes
        self.min_impurity_decrease = min_impurity_decrease
        self.ccp_alpha = ccp_alpha
        self.monotonic_cst = monotonic_cst
        self.max_bins = max_bins
        self.executor = executor
        self.n_jobs = n_jobs


class RandomForestClassifier(ClassifierBase, BaseForest):
    """A random forest classifier: trees on bootstrap samples, built in parallel on an executor.

    Parameters
    ----------
    n_estimators : int, default 100
        Number of trees.
    criterion, max_depth, min_samples_split, min_samples_leaf, min_weight_fraction_leaf, max_leaf_nodes
    min_impurity_decrease, ccp_alpha, monotonic_cst
        As in :class:`DecisionTreeClassifier`; each tree is pruned in the task that grew it.
    max_features : {"sqrt", "log2"}, int, float or None, default "sqrt"
        Features drawn as candidates at each node.
    bootstrap : bool, default True
        Train each tree on a bootstrap sample (drawn as per-sample counts; X is never copied).
    oob_score : bool or callable, default False
        Score the forest on the samples each tree did not see: accuracy, or
        ``oob_score(y_true, y_pred)``. Sets ``oob_score_`` and ``oob_decision_function_``.
    n_jobs : int or None, default None
        Workers of an executor created by name, and threads ``predict`` uses on big
        inputs; ``None`` or -1 use every usable core (the process budget).
    random_state : int, RandomState or None, default None
        Seeds the per-tree seeds; a fixed value gives bit-identical forests on every
        executor at every budget.
    verbose : int, default 0
        Draw a progress bar (trees done, elapsed) on stderr.
    warm_start : bool, default False
        Keep the fitted trees and add ``n_estimators - len(estimators_)`` more.
    class_weight : dict, list of dict, "balanced", "balanced_subsample" or None, default None
        Weight of each class, as in :class:`DecisionTreeClassifier`; "balanced_subsample"
        balances each tree's bootstrap sample (computed from its counts in the tree's task,
        per output). With ``bootstrap``, the weights shape each tree's draws instead (as in
        scikit-learn 1.9).
    max_samples : int, float or None, default None
        Draws per bootstrap sample (a float is a fraction of the samples).
    max_bins : int, default 256
        Quantile bins per feature (2 to 256).
    executor : str or Executor, default "thread"
        A registered executor name, or an executor instance (left running after fit).

    Attributes
    ----------
    estimators_ : list of DecisionTreeClassifier
        The fitted trees; each one's ``random_state`` is the seed it was grown from.
    classes_ : ndarray, or list of ndarray (one per output)
    n_classes_ : int, or list of int (one per output)
    n_outputs_, n_features_in_, feature_importances_
        As in :class:`DecisionTreeClassifier` (``n_classes_`` a list, as in scikit-learn's
        forests); ``feature_names_in_`` too when ``X`` had string column names.
    oob_score_, oob_decision_function_ : only with ``oob_score``
        Each tree's out-of-bag predictions are made in the task that grew it (``X``
        is then placed in shared memory beside its codes); a sample no tree left
        out gets zeros and a warning, as in scikit-learn. ``oob_decision_function_``
        has shape (n_samples, n_classes), or (n_samples, n_classes, n_outputs) for
        several outputs (each output's classes from index 0, zeros past its count);
        the default ``oob_score_`` is then the fraction of samples with every output
        right (scikit-learn's accuracy of binary outputs, whose other multi-class
        outputs it refuses).
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **BaseForest._parameter_constraints,
        **_CLASSIFICATION_CRITERIA,
        **FOREST_CLASS_WEIGHT,
    }
    _tree_class = DecisionTreeClassifier

    def __init__(
        self,
        n_estimators: int = 100,
        *,
        criterion: str = "gini",
        max_depth: int | None = None,
        min_samples_split: int | float = 2,
        min_samples_leaf: int | float = 1,
        min_weight_fraction_leaf: float = 0.0,
        max_features: int | float | str | None = "sqrt",
        max_leaf_nodes: int | None = None,
        min_impurity_decrease: float = 0.0,
        bootstrap: bool = True,
        oob_score: bool | Callable[[Any, Any], float] = False,
        n_jobs: int | None = None,
        random_state: int | np.random.RandomState | None = None,
        verbose: int = 0,
        warm_start: bool = False,
        class_weight: dict[Any, float] | list[dict[Any, float]] | str | None = None,
        ccp_alpha: float = 0.0,
        monotonic_cst: ArrayLike | None = None,
        max_samples: int | float | None = None,
        max_bins: int = 256,
        executor: str | Executor = DEFAULT_EXECUTOR,
    ) -> None:
        self.n_estimators = n_estimators
        self.class_weight = class_weight
        self.criterion = criterion
        self.max_depth = max_depth
        self.min_samples_split = min_samples_split
        self.min_samples_leaf = min_samples_leaf
        self.min_weight_fraction_leaf = min_weight_fraction_leaf
        self.max_features = max_features
        self.max_leaf_nodes = max_leaf_nodes
        self.min_impurity_decrease = min_impurity_decrease
        self.bootstrap = bootstrap
        self.oob_score = oob_score
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start
        self.ccp_alpha = ccp_alpha
        self.monotonic_cst = monotonic_cst
        self.max_samples = max_samples
        self.max_bins = max_bins
        self.executor = executor


class RandomForestRegressor(RegressorBase, BaseForest):
    """A random forest regressor, built in parallel on an executor.

    Parameters are those of :class:`RandomForestClassifier`, except ``criterion``
    (as in :class:`DecisionTreeRegressor`), ``max_features`` (default 1.0: every
    feature) and ``class_weight`` (classifiers only). With
    ``oob_score`` it sets ``oob_score_`` (R² by default, averaged over the outputs) and
    ``oob_prediction_`` of shape (n_samples,), or (n_samples, n_outputs) for several
    outputs; ``predict`` returns that shape too.
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **BaseForest._parameter_constraints,
        **_REGRESSION_CRITERIA,
    }
    _tree_class = DecisionTreeRegressor

    def __init__(
        self,
        n_estimators: int = 100,
        *,
        criterion: str = "squared_error",
        max_depth: int | None = None,
        min_samples_split: int | float = 2,
        min_samples_leaf: int | float = 1,
        min_weight_fraction_leaf: float = 0.0,
        max_features: int | float | str | None = 1.0,
        max_leaf_nodes: int | None = None,
        min_impurity_decrease: float = 0.0,
        bootstrap: bool = True,
        oob_score: bool | Callable[[Any, Any], float] = False,
        n_jobs: int | None = None,
        random_state: int | np.random.RandomState | None = None,
        verbose: int = 0,
        warm_start: bool = False,
        ccp_alpha: float = 0.0,
        monotonic_cst: ArrayLike | None = None,
        max_samples: int | float | None = None,
        max_bins: int = 256,
        executor: str | Executor = DEFAULT_EXECUTOR,
    ) -> None:
        self.n_estimators = n_estimators
        self.criterion = criterion
        self.max_depth = max_depth
        self.min_samples_split = min_samples_split
        self.min_samples_leaf = min_samples_leaf
        self.min_weight_fraction_leaf = min_weight_fraction_leaf
        self.max_features = max_features
        self.max_leaf_nodes = max_leaf_nodes
        self.min_impurity_decrease = min_impurity_decrease
        self.bootstrap = bootstrap
        self.oob_score = oob_score
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start
        self.ccp_alpha = ccp_alpha
        self.monotonic_cst = monotonic_cst
        self.max_samples = max_samples
        self.max_bins = max_bins
        self.executor = executor


def _with_defaults(init: Callable[..., None], **defaults: Any) -> Callable[..., None]:
    """``init`` with other keyword defaults: scikit-learn reads an estimator's parameters
    and their defaults from its ``__init__`` signature, so extra trees share the random
    forests' ``__init__`` instead of repeating it with one default changed."""
    copy = types.FunctionType(init.__code__, init.__globals__, init.__name__, init.__defaults__, init.__closure__)
    copy.__kwdefaults__ = {**(init.__kwdefaults__ or {}), **defaults}
    copy.__annotations__ = dict(init.__annotations__)
    copy.__qualname__ = init.__qualname__
    return copy


class ExtraTreesClassifier(ClassifierBase, BaseForest):
    """An extremely randomized trees classifier (extra trees), built in parallel on an executor.

    Each tree scores one random cut per candidate feature, drawn between the node's
    lowest and highest bin, and keeps the best of them (scikit-learn draws its cut
    within the node's range of values); the threshold lies anywhere in the gap between
    the two sides' values, as scikit-learn's does. Parameters are those of
    :class:`RandomForestClassifier`, except ``bootstrap``, which defaults to False
    (every tree sees the whole training set), as in scikit-learn.
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = RandomForestClassifier._parameter_constraints
    _tree_class = DecisionTreeClassifier
    _tree_splitter = "random"
    __init__ = _with_defaults(RandomForestClassifier.__init__, bootstrap=False)


class ExtraTreesRegressor(RegressorBase, BaseForest):
    """An extremely randomized trees regressor (extra trees), built in parallel on an executor.

    Parameters are those of :class:`RandomForestRegressor`, except ``bootstrap``, which
    defaults to False; each tree splits as :class:`ExtraTreesClassifier`'s do.
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = RandomForestRegressor._parameter_constraints
    _tree_class = DecisionTreeRegressor
    _tree_splitter = "random"
    __init__ = _with_defaults(RandomForestRegressor.__init__, bootstrap=False)
