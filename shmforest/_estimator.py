"""What every estimator of :mod:`shmforest.forest` shares: parameter checks, fit
through the batch machinery, input checks at predict time, forest prediction.

The public classes live in :mod:`shmforest.forest`; these bases hold the wiring
(scikit-learn's conventions: ``__init__`` stores, ``fit`` checks, fitted
attributes end in ``_``).
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import numpy as np

from shmforest._fitting import Targets, TreePlan, TreeResults, fit_models
from shmforest._params import ParamsMixin
from shmforest._validation import (
    check_bool,
    check_choice,
    check_int,
    check_random_state,
    check_real,
    check_sample_weight,
    check_X,
    feature_names_of,
    resolve_max_features,
    resolve_max_samples,
    resolve_min_samples_leaf,
    resolve_min_samples_split,
    resolve_n_jobs,
)
from shmforest.errors import NotFittedError
from shmforest.executors.registry import get_executor
from shmforest.tree.builder import TreeParams
from shmforest.tree.ensemble import CodedForest
from shmforest.tree.tree import Tree

__all__ = ["ClassifierMixin", "RegressorMixin", "BaseDecisionTree", "BaseForest", "forest_value", "r2_score"]

# Per-tree seeds are drawn below this bound, as scikit-learn draws them.
MAX_SEED = np.iinfo(np.int32).max
# Fewer rows than this and prediction stays on the calling thread.
_ROWS_PER_THREAD = 4096


# --------------------------------------------------------------------------- shared base


class TreeModel(ParamsMixin):
    """What every estimator here shares: parameter checks, fit, input checks at predict."""

    _estimator_kind: ClassVar[str]  # "classifier" or "regressor"
    _criteria: ClassVar[tuple[str, ...]]
    _fitted_attribute: ClassVar[str]

    # Set by the subclasses' __init__ (scikit-learn style: stored as given, checked in fit).
    criterion: Any
    max_depth: Any
    min_samples_split: Any
    min_samples_leaf: Any
    max_features: Any
    max_leaf_nodes: Any
    min_impurity_decrease: Any
    random_state: Any
    max_bins: Any
    executor: Any
    n_jobs: Any

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> TreeModel:
        """Build from the training set ``(X, y)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Numbers or bools, all finite.
        y : array-like of shape (n_samples,)
            Class labels of any sortable type, or regression targets.
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weights; ``None`` weighs every sample 1.

        Returns
        -------
        self
        """
        fit_models(
            [self],
            X,
            y,
            sample_weight,
            executor=self.executor,
            n_jobs=self.n_jobs,
            verbose=getattr(self, "verbose", 0),
            label=f"{type(self).__name__}: trees",
        )
        return self

    def _tree_params(self, targets: Targets) -> tuple[TreeParams, int]:
        n_samples, n_features = targets.n_samples, targets.n_features
        criterion = check_choice("criterion", self.criterion, self._criteria)
        leaf = resolve_min_samples_leaf(self.min_samples_leaf, n_samples)
        params = TreeParams(
            criterion="entropy" if criterion == "log_loss" else criterion,
            max_depth=check_int("max_depth", self.max_depth, low=1, allow_none=True),
            min_samples_split=resolve_min_samples_split(self.min_samples_split, n_samples, leaf),
            min_samples_leaf=leaf,
            max_features=resolve_max_features(self.max_features, n_features),
            min_impurity_decrease=check_real("min_impurity_decrease", self.min_impurity_decrease, low=0.0),
            max_leaf_nodes=check_int("max_leaf_nodes", self.max_leaf_nodes, low=2, allow_none=True),
            n_classes=len(targets.classes) if self._estimator_kind == "classifier" else 0,  # type: ignore[arg-type]
        )
        max_bins = check_int("max_bins", self.max_bins, low=2, high=256)
        return params, max_bins  # type: ignore[return-value]

    def _set_data_attributes(self, targets: Targets) -> None:
        self.n_features_in_ = targets.n_features
        self.n_outputs_ = 1
        if targets.feature_names is not None:
            self.feature_names_in_ = targets.feature_names
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        if self._estimator_kind == "classifier":
            self.classes_ = targets.classes
            self.n_classes_ = len(targets.classes)  # type: ignore[arg-type]

    def _check_fitted(self) -> None:
        if not hasattr(self, self._fitted_attribute):
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with "
                "appropriate arguments before using this estimator."
            )

    def _check_X_predict(self, X: Any) -> np.ndarray:
        self._check_fitted()
        Xa = check_X(X)
        if Xa.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {Xa.shape[1]} features, but {type(self).__name__} was fitted with "
                f"{self.n_features_in_} features"
            )
        names = feature_names_of(X)
        fitted = getattr(self, "feature_names_in_", None)
        if names is not None and fitted is not None and list(names) != list(fitted):
            raise ValueError(
                f"X has feature names {list(names)}, but {type(self).__name__} was fitted with {list(fitted)}"
            )
        return Xa


class ClassifierMixin:
    _estimator_kind: ClassVar[str] = "classifier"
    _estimator_type = "classifier"  # what scikit-learn's helpers look for
    _criteria: ClassVar[tuple[str, ...]] = ("gini", "entropy", "log_loss")
    classes_: np.ndarray

    def predict_proba(self, X: Any) -> np.ndarray:  # pragma: no cover - overridden
        raise NotImplementedError

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each sample (labels as given to ``fit``)."""
        proba = self.predict_proba(X)  # checks fitted first
        return self.classes_[np.argmax(proba, axis=1)]

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """The log of :meth:`predict_proba` (``-inf`` for probability 0)."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Mean accuracy on ``(X, y)``, weighted by ``sample_weight``."""
        predicted = self.predict(X)
        y_true = _scored_y(y, len(predicted))
        w = check_sample_weight(sample_weight, len(predicted))
        return float(np.average(predicted == y_true, weights=w))


class RegressorMixin:
    _estimator_kind: ClassVar[str] = "regressor"
    _estimator_type = "regressor"
    _criteria: ClassVar[tuple[str, ...]] = ("squared_error",)

    def predict(self, X: Any) -> np.ndarray:  # pragma: no cover - overridden
        raise NotImplementedError

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Coefficient of determination R² on ``(X, y)``, weighted by ``sample_weight``."""
        predicted = self.predict(X)
        y_true = _scored_y(y, len(predicted)).astype(np.float64)
        w = check_sample_weight(sample_weight, len(predicted))
        return r2_score(y_true, predicted, w)


def _scored_y(y: Any, n_samples: int) -> np.ndarray:
    y_true = np.asarray(y)
    if y_true.ndim == 2 and y_true.shape[1] == 1:
        y_true = y_true[:, 0]
    if y_true.shape != (n_samples,):
        raise ValueError(f"y must have one target per sample of X: X has {n_samples} samples, y has shape {y_true.shape}")
    return y_true


def r2_score(y_true: np.ndarray, y_pred: np.ndarray, sample_weight: np.ndarray | None = None) -> float:
    """R² as scikit-learn computes it (1.0 for a perfect fit of constant targets, else 0.0)."""
    w = np.ones_like(y_true) if sample_weight is None else sample_weight
    residual = float(np.sum(w * (y_true - y_pred) ** 2))
    total = float(np.sum(w * (y_true - np.average(y_true, weights=w)) ** 2))
    if total == 0.0:
        return 1.0 if residual == 0.0 else 0.0
    return 1.0 - residual / total


# --------------------------------------------------------------------------- decision trees


class BaseDecisionTree(TreeModel):
    _fitted_attribute: ClassVar[str] = "tree_"
    tree_: Tree

    def _plan(self, targets: Targets) -> TreePlan:
        params, max_bins = self._tree_params(targets)
        seed = int(check_random_state(self.random_state).randint(MAX_SEED))
        # One task; inside it the builder hands subtrees to the executor running it.
        return TreePlan(self, params, [seed], parallel=True, max_bins=max_bins)

    def _assemble(self, plan: TreePlan, results: TreeResults, targets: Targets) -> None:
        self._set_fitted(results.trees[0], targets, plan.params.max_features)

    def _set_fitted(self, tree: Tree, targets: Targets, max_features: int) -> None:
        self._set_data_attributes(targets)
        self.max_features_ = max_features
        self.tree_ = tree

    def apply(self, X: Any) -> np.ndarray:
        """The index of the leaf each sample ends in."""
        Xa = self._check_X_predict(X)
        return np.asarray(self.tree_.apply(Xa))

    def decision_path(self, X: Any) -> Any:
        """The nodes each sample passes through (as ``Tree.decision_path`` returns them)."""
        Xa = self._check_X_predict(X)
        return self.tree_.decision_path(Xa)

    def get_depth(self) -> int:
        """The depth of the tree (a lone root has depth 0)."""
        self._check_fitted()
        return int(self.tree_.max_depth)

    def get_n_leaves(self) -> int:
        """The number of leaves of the tree."""
        self._check_fitted()
        left = np.asarray(self.tree_.children_left)[: self.tree_.node_count]
        return int(np.count_nonzero(left < 0))

    @property
    def feature_importances_(self) -> np.ndarray:
        """Impurity-based importance of each feature, normalised to sum to 1."""
        self._check_fitted()
        return np.asarray(self.tree_.compute_feature_importances(normalize=True))

    def _value(self, X: Any) -> np.ndarray:
        Xa = self._check_X_predict(X)
        return self.tree_.predict(Xa)


# --------------------------------------------------------------------------- forests


class BaseForest(TreeModel):
    _fitted_attribute: ClassVar[str] = "estimators_"
    _tree_class: ClassVar[type[BaseDecisionTree]]
    estimators_: list[Any]

    n_estimators: Any
    bootstrap: Any
    oob_score: Any
    verbose: Any
    warm_start: Any
    max_samples: Any

    def _plan(self, targets: Targets) -> TreePlan:
        params, max_bins = self._tree_params(targets)
        n_estimators = check_int("n_estimators", self.n_estimators, low=1)
        bootstrap = check_bool("bootstrap", self.bootstrap)
        warm_start = check_bool("warm_start", self.warm_start)
        oob = self.oob_score
        if not (isinstance(oob, (bool, np.bool_)) or callable(oob)):
            raise TypeError(f"oob_score must be a bool or a callable(y_true, y_pred); got {oob!r}")
        if (callable(oob) or oob) and not bootstrap:
            raise ValueError("oob_score needs bootstrap=True (without bootstrap no sample is out of bag)")
        if not isinstance(self.verbose, (bool, np.bool_)):
            check_int("verbose", self.verbose, low=0)
        n_draws = resolve_max_samples(self.max_samples, targets.n_samples, bootstrap)
        kept = list(self.estimators_) if warm_start and hasattr(self, "estimators_") else []
        if kept:
            self._check_warm_start(kept, n_estimators, targets)
        # Draw every seed, the kept trees' too, so warm-started forests match fresh ones.
        seeds = check_random_state(self.random_state).randint(MAX_SEED, size=n_estimators)
        plan = TreePlan(
            self,
            params,
            [int(s) for s in seeds[len(kept):]],
            bootstrap=bootstrap,
            n_draws=n_draws,
            oob=callable(oob) or bool(oob),
            max_bins=max_bins,
            kept=kept,
        )
        if plan.oob:
            plan.oob_refits = [(e.tree_, int(e.random_state)) for e in kept]
        return plan

    def _check_warm_start(self, kept: list[Any], n_estimators: int, targets: Targets) -> None:
        if n_estimators < len(kept):
            raise ValueError(
                f"n_estimators={n_estimators} must be >= len(estimators_)={len(kept)} when warm_start=True"
            )
        if targets.n_features != self.n_features_in_:
            raise ValueError(
                f"warm_start: X has {targets.n_features} features, but the forest was fitted with {self.n_features_in_}"
            )
        if self._estimator_kind == "classifier" and not np.array_equal(targets.classes, self.classes_):
            raise ValueError(
                f"warm_start: y has classes {list(targets.classes)}, but the forest was fitted with {list(self.classes_)}"  # type: ignore[arg-type]
            )
        if n_estimators == len(kept):
            warnings.warn("warm_start fit without increasing n_estimators fits no new trees", UserWarning, stacklevel=6)

    def _assemble(self, plan: TreePlan, results: TreeResults, targets: Targets) -> None:
        new = []
        for tree, seed in zip(results.trees, plan.seeds):
            est = self._make_tree(random_state=seed)
            est._set_fitted(tree, targets, plan.params.max_features)
            new.append(est)
        self._set_data_attributes(targets)
        self.estimator_ = self._make_tree(random_state=None)
        self.estimators_ = plan.kept + new
        for stale in ("oob_score_", "oob_decision_function_", "oob_prediction_"):
            if hasattr(self, stale):
                delattr(self, stale)
        if plan.oob:
            self._set_oob(results.oob, targets)

    def _make_tree(self, random_state: int | None) -> BaseDecisionTree:
        return self._tree_class(
            criterion=self.criterion,
            max_depth=self.max_depth,
            min_samples_split=self.min_samples_split,
            min_samples_leaf=self.min_samples_leaf,
            max_features=self.max_features,
            random_state=random_state,
            max_leaf_nodes=self.max_leaf_nodes,
            min_impurity_decrease=self.min_impurity_decrease,
            max_bins=self.max_bins,
        )

    def _set_oob(self, oob: list[tuple[np.ndarray, np.ndarray]], targets: Targets) -> None:
        width = len(self.classes_) if self._estimator_kind == "classifier" else 1  # type: ignore[attr-defined]
        total = np.zeros((targets.n_samples, width))
        count = np.zeros(targets.n_samples)
        for rows, values in oob:
            total[rows] += values
            count[rows] += 1
        if (count == 0).any():
            warnings.warn(
                "some samples were in every tree's bootstrap sample and have no out-of-bag "
                "prediction; oob_score_ is unreliable (use more trees)",
                UserWarning,
                stacklevel=5,
            )
            count[count == 0] = 1
        prediction = total / count[:, None]
        if self._estimator_kind == "classifier":
            self.oob_decision_function_ = prediction
            y_true = self.classes_[targets.codes]  # type: ignore[attr-defined, index]
            y_pred = self.classes_[np.argmax(prediction, axis=1)]  # type: ignore[attr-defined]
            default = float(np.mean(y_true == y_pred))
        else:
            self.oob_prediction_ = prediction[:, 0]
            y_true, y_pred = targets.values, self.oob_prediction_
            default = r2_score(y_true, y_pred)  # type: ignore[arg-type]
        self.oob_score_ = float(self.oob_score(y_true, y_pred)) if callable(self.oob_score) else default

    @property
    def _trees(self) -> list[Tree]:
        return [e.tree_ for e in self.estimators_]

    def _coded_forest(self) -> CodedForest:
        """The fitted trees on threshold ranks: built at the first predict after a fit, then kept."""
        trees = self._trees
        kept = self.__dict__.get("_coded")
        if kept is None or len(kept.trees) != len(trees) or any(a is not b for a, b in zip(kept.trees, trees)):
            kept = self.__dict__["_coded"] = CodedForest(trees)
        return kept

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_coded", None)  # derived from the trees: rebuilt on demand, not pickled
        return state

    def _value(self, X: Any) -> np.ndarray:
        Xa = self._check_X_predict(X)
        return forest_value(self._coded_forest(), Xa, self.n_jobs)

    def apply(self, X: Any) -> np.ndarray:
        """The leaf each sample ends in, per tree: shape (n_samples, n_estimators)."""
        Xa = self._check_X_predict(X)
        forest = self._coded_forest()
        return forest.apply(forest.encode(Xa)).T.astype(np.int64)

    @property
    def feature_importances_(self) -> np.ndarray:
        """Mean of the trees' normalised impurity importances, normalised to sum to 1."""
        self._check_fitted()
        per_tree = [
            np.asarray(t.compute_feature_importances(normalize=True)) for t in self._trees if t.node_count > 1
        ]
        if not per_tree:
            return np.zeros(self.n_features_in_)
        mean = np.mean(per_tree, axis=0)
        return mean / mean.sum()

    def __len__(self) -> int:
        return len(getattr(self, "estimators_", []))

    def __getitem__(self, index: int) -> Any:
        return self.estimators_[index]

    def __iter__(self) -> Any:
        return iter(self.estimators_)


# --------------------------------------------------------------------------- prediction


def forest_value(forest: CodedForest, X: np.ndarray, n_jobs: Any = None) -> np.ndarray:
    """Mean over the forest's trees of the value row each row of ``X`` reaches.

    With ``n_jobs`` threads (under the process budget), ``X`` is encoded in row
    blocks, and then the fixed groups of trees that :meth:`CodedForest.predict`
    sums are shared out among threads, each walking all rows. Splitting by trees
    rather than rows halves each thread's numpy calls and keeps every call on all
    rows, so the GIL is released for longer (``benchmarks/test_bench_predict.py``).
    Group sums are added in order, so the result is bit-identical to one
    :meth:`CodedForest.predict` call.
    """
    workers = resolve_n_jobs(n_jobs)
    groups = forest.groups()
    if workers == 1 or len(groups) < 2 or X.shape[0] < _ROWS_PER_THREAD:
        return forest.predict(forest.encode(X))
    with get_executor("thread", max_workers=workers) as ex:
        codes = np.empty(X.shape, dtype=forest.dtype)
        bounds = np.linspace(0, X.shape[0], ex.max_workers + 1).astype(int)
        for done in [ex.submit(forest.encode, X[a:b], out=codes[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]:
            done.result()
        parts = [ex.submit(forest.sum_values, codes, start, stop) for start, stop in groups]
        out = parts[0].result()
        for part in parts[1:]:
            out = out + part.result()
    out /= len(forest)
    return out
