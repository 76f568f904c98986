"""Random forests and decision trees with scikit-learn's conventions, and :func:`fit_many`.

The estimators validate and wire; the tree builder grows (``shmforest.tree``); the
batch machinery in ``shmforest._fitting`` bins ``X`` once, places it once in shared
memory and runs one task per tree on an executor. Forests run their trees side by
side; a single decision tree runs as one task whose builder hands independent
subtrees to the same executor (branch parallelism), under the same budget.

Fitted forests keep one fitted :class:`DecisionTreeClassifier` /
:class:`DecisionTreeRegressor` per tree in ``estimators_``, each holding its flat
node arrays in ``tree_`` and its seed in ``random_state``, as scikit-learn does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import numpy as np

from shmforest._estimator import BaseDecisionTree, BaseForest, ClassifierMixin, RegressorMixin, TreeModel
from shmforest._fitting import DEFAULT_EXECUTOR, fit_models

__all__ = [
    "RandomForestClassifier",
    "RandomForestRegressor",
    "DecisionTreeClassifier",
    "DecisionTreeRegressor",
    "fit_many",
]

M = TypeVar("M", bound="Mapping[Any, Any] | Sequence[Any]")


class DecisionTreeClassifier(ClassifierMixin, BaseDecisionTree):
    """A decision tree classifier, built branch-parallel on an executor.

    Parameters
    ----------
    criterion : {"gini", "entropy", "log_loss"}, default "gini"
        Impurity measure of a split ("log_loss" is "entropy").
    max_depth : int or None, default None
        Deepest level grown; ``None`` grows until the other limits stop it.
    min_samples_split : int or float, default 2
        Samples a node needs to be split (a float is a fraction of the samples).
    min_samples_leaf : int or float, default 1
        Samples each leaf must keep (a float is a fraction of the samples).
    max_features : {"sqrt", "log2"}, int, float or None, default None
        Features drawn as candidates at each node; ``None`` means all.
    random_state : int, RandomState or None, default None
        Seeds the candidate features' draws.
    max_leaf_nodes : int or None, default None
        Most leaves the tree may have.
    min_impurity_decrease : float, default 0.0
        A split must decrease the weighted impurity at least this much.
    max_bins : int, default 256
        Quantile bins per feature (2 to 256); exact when a feature has fewer values.
    executor : str or Executor, default "shm"
        A registered executor name, or an executor instance (left running after fit).
    n_jobs : int or None, default None
        Workers of an executor created by name; ``None`` or -1 use every usable core.

    Attributes
    ----------
    tree_ : shmforest.tree.Tree
        The fitted tree as flat node arrays (scikit-learn's ``tree_`` layout).
    classes_, n_classes_, n_features_in_, n_outputs_, max_features_, feature_importances_
        As in scikit-learn; ``feature_names_in_`` too when ``X`` had string column names.

    Notes
    -----
    ``decision_path`` returns ``(indptr, indices)``, the CSR parts of scikit-learn's
    indicator matrix, so as not to depend on scipy.
    """

    def __init__(
        self,
        *,
        criterion: str = "gini",
        max_depth: int | None = None,
        min_samples_split: int | float = 2,
        min_samples_leaf: int | float = 1,
        max_features: int | float | str | None = None,
        random_state: Any = None,
        max_leaf_nodes: int | None = None,
        min_impurity_decrease: float = 0.0,
        max_bins: int = 256,
        executor: Any = DEFAULT_EXECUTOR,
        n_jobs: int | None = None,
    ) -> None:
        self.criterion = criterion
        self.max_depth = max_depth
        self.min_samples_split = min_samples_split
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.random_state = random_state
        self.max_leaf_nodes = max_leaf_nodes
        self.min_impurity_decrease = min_impurity_decrease
        self.max_bins = max_bins
        self.executor = executor
        self.n_jobs = n_jobs

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities of each sample: the class fractions of its leaf."""
        return self._value(X)


class DecisionTreeRegressor(RegressorMixin, BaseDecisionTree):
    """A decision tree regressor, built branch-parallel on an executor.

    Parameters are those of :class:`DecisionTreeClassifier`, except ``criterion``,
    which takes "squared_error" only.
    """

    def __init__(
        self,
        *,
        criterion: str = "squared_error",
        max_depth: int | None = None,
        min_samples_split: int | float = 2,
        min_samples_leaf: int | float = 1,
        max_features: int | float | str | None = None,
        random_state: Any = None,
        max_leaf_nodes: int | None = None,
        min_impurity_decrease: float = 0.0,
        max_bins: int = 256,
        executor: Any = DEFAULT_EXECUTOR,
        n_jobs: int | None = None,
    ) -> None:
        self.criterion = criterion
        self.max_depth = max_depth
        self.min_samples_split = min_samples_split
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.random_state = random_state
        self.max_leaf_nodes = max_leaf_nodes
        self.min_impurity_decrease = min_impurity_decrease
        self.max_bins = max_bins
        self.executor = executor
        self.n_jobs = n_jobs

    def predict(self, X: Any) -> np.ndarray:
        """The mean target of the leaf each sample ends in."""
        return self._value(X)[:, 0]


class RandomForestClassifier(ClassifierMixin, BaseForest):
    """A random forest classifier: trees on bootstrap samples, built in parallel on an executor.

    Parameters
    ----------
    n_estimators : int, default 100
        Number of trees.
    criterion, max_depth, min_samples_split, min_samples_leaf, max_leaf_nodes, min_impurity_decrease
        As in :class:`DecisionTreeClassifier`.
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
    max_samples : int, float or None, default None
        Draws per bootstrap sample (a float is a fraction of the samples).
    max_bins : int, default 256
        Quantile bins per feature (2 to 256).
    executor : str or Executor, default "shm"
        A registered executor name, or an executor instance (left running after fit).

    Attributes
    ----------
    estimators_ : list of DecisionTreeClassifier
        The fitted trees; each one's ``random_state`` is the seed it was grown from.
    classes_, n_classes_, n_features_in_, n_outputs_, feature_importances_
        As in scikit-learn; ``feature_names_in_`` too when ``X`` had string column names.
    oob_score_, oob_decision_function_ : only with ``oob_score``
        Each tree's out-of-bag predictions are made in the task that grew it (``X``
        is then placed in shared memory beside its codes); a sample no tree left
        out gets zeros and a warning, as in scikit-learn.
    """

    _tree_class = DecisionTreeClassifier

    def __init__(
        self,
        n_estimators: int = 100,
        *,
        criterion: str = "gini",
        max_depth: int | None = None,
        min_samples_split: int | float = 2,
        min_samples_leaf: int | float = 1,
        max_features: int | float | str | None = "sqrt",
        max_leaf_nodes: int | None = None,
        min_impurity_decrease: float = 0.0,
        bootstrap: bool = True,
        oob_score: Any = False,
        n_jobs: int | None = None,
        random_state: Any = None,
        verbose: int = 0,
        warm_start: bool = False,
        max_samples: int | float | None = None,
        max_bins: int = 256,
        executor: Any = DEFAULT_EXECUTOR,
    ) -> None:
        self.n_estimators = n_estimators
        self.criterion = criterion
        self.max_depth = max_depth
        self.min_samples_split = min_samples_split
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.max_leaf_nodes = max_leaf_nodes
        self.min_impurity_decrease = min_impurity_decrease
        self.bootstrap = bootstrap
        self.oob_score = oob_score
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start
        self.max_samples = max_samples
        self.max_bins = max_bins
        self.executor = executor

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities: the mean over trees of the class fractions of each sample's leaf."""
        return self._value(X)


class RandomForestRegressor(RegressorMixin, BaseForest):
    """A random forest regressor, built in parallel on an executor.

    Parameters are those of :class:`RandomForestClassifier`, except ``criterion``
    ("squared_error" only) and ``max_features`` (default 1.0: every feature). With
    ``oob_score`` it sets ``oob_score_`` (R² by default) and ``oob_prediction_``.
    """

    _tree_class = DecisionTreeRegressor

    def __init__(
        self,
        n_estimators: int = 100,
        *,
        criterion: str = "squared_error",
        max_depth: int | None = None,
        min_samples_split: int | float = 2,
        min_samples_leaf: int | float = 1,
        max_features: int | float | str | None = 1.0,
        max_leaf_nodes: int | None = None,
        min_impurity_decrease: float = 0.0,
        bootstrap: bool = True,
        oob_score: Any = False,
        n_jobs: int | None = None,
        random_state: Any = None,
        verbose: int = 0,
        warm_start: bool = False,
        max_samples: int | float | None = None,
        max_bins: int = 256,
        executor: Any = DEFAULT_EXECUTOR,
    ) -> None:
        self.n_estimators = n_estimators
        self.criterion = criterion
        self.max_depth = max_depth
        self.min_samples_split = min_samples_split
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.max_leaf_nodes = max_leaf_nodes
        self.min_impurity_decrease = min_impurity_decrease
        self.bootstrap = bootstrap
        self.oob_score = oob_score
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start
        self.max_samples = max_samples
        self.max_bins = max_bins
        self.executor = executor

    def predict(self, X: Any) -> np.ndarray:
        """The mean over trees of each sample's leaf mean."""
        return self._value(X)[:, 0]


# --------------------------------------------------------------------------- fit_many


def fit_many(
    models: M,
    X: Any,
    y: Any,
    *,
    sample_weight: Any = None,
    executor: Any = DEFAULT_EXECUTOR,
    n_jobs: int | None = None,
    verbose: int = 0,
) -> M:
    """Fit several models on one placed dataset, under one executor and budget.

    ``X`` is checked and binned once and placed once in shared memory; every tree of
    every model is one task on the same executor. The models are fitted in place and
    the same container is returned, so nothing comes back unfitted (as copies trained
    by ``Pool.map`` do). The models' own ``executor`` and ``n_jobs`` are not used.

    Parameters
    ----------
    models : mapping of any to estimator, or sequence of estimators
        Forests and decision trees of this module, classifiers and regressors mixed;
        all must share ``max_bins``.
    X, y, sample_weight
        As for ``fit``.
    executor : str or Executor, default "shm"
        A registered executor name, or an instance (left running).
    n_jobs : int or None, default None
        Workers of an executor created by name; ``None`` or -1 use every usable core.
    verbose : int, default 0
        Draw a progress bar on stderr.

    Returns
    -------
    models
        The same container, its models fitted.

    Examples
    --------
    >>> forests = {d: RandomForestClassifier(50, max_depth=d, random_state=0) for d in (4, 8)}
    >>> fit_many(forests, X, y)  # doctest: +SKIP
    """
    if isinstance(models, Mapping):
        items = list(models.items())
    elif isinstance(models, Sequence) and not isinstance(models, (str, bytes)):
        items = list(enumerate(models))
    else:
        raise TypeError(f"models must be a mapping or a sequence of estimators; got {type(models).__name__}")
    seen: dict[int, Any] = {}
    for key, model in items:
        if not isinstance(model, TreeModel):
            raise TypeError(
                f"models[{key!r}] must be a shmforest RandomForest*/DecisionTree* estimator; "
                f"got {type(model).__name__}"
            )
        if id(model) in seen:
            raise ValueError(f"models[{key!r}] is the same object as models[{seen[id(model)]!r}]; pass distinct estimators")
        seen[id(model)] = key
    fit_models(
        [m for _, m in items],
        X,
        y,
        sample_weight,
        executor=executor,
        n_jobs=n_jobs,
        verbose=verbose,
        label=f"fit_many ({len(items)} models): trees",
    )
    return models
