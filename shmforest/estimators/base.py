"""What every estimator of :mod:`shmforest.estimators.classes` shares.

scikit-learn's conventions, through scikit-learn itself: the bases inherit
``BaseEstimator``, parameters are checked against ``_parameter_constraints`` in
``fit``, data through ``validate_data``, and ``check_is_fitted`` guards predict.
What predict needs beyond the trees is built at the end of ``fit``, so predict
never changes the fitted estimator (safe to share between threads, to pickle and
to compare).

Several outputs (a 2-D ``y``) grow into the same trees: a tree's value row holds
every output, each output's class fractions one output after the other
(classification) or each output's mean (regression). Prediction splits the rows
per output only when there are several, so one output pays nothing for them.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone, is_classifier
from sklearn.metrics import accuracy_score, r2_score
from sklearn.utils import Bunch
from sklearn.utils.validation import check_is_fitted, check_random_state, validate_data

from shmforest.cores import usable_cores
from shmforest.estimators.batch import Targets, TreePlan, TreeResults, fit_models
from shmforest.estimators.class_weight import resolve_class_weight
from shmforest.estimators.validation import (
    FOREST_CONSTRAINTS,
    PARAMETER_CONSTRAINTS,
    check_poisson_targets,
    resolve_max_features,
    resolve_max_samples,
    resolve_min_samples_leaf,
    resolve_min_samples_split,
    resolve_monotonic_cst,
    resolve_n_jobs,
)
from shmforest.executors.base import in_task
from shmforest.tree.binning import check_no_infinity
from shmforest.tree.builder import TreeParams
from shmforest.tree.ensemble import ForestArrays
from shmforest.tree.pruning import pruning_path
from shmforest.tree.tasks import FitOptions
from shmforest.tree.tree import Tree

__all__ = ["TreeModel", "BaseDecisionTree", "BaseForest", "ClassifierBase", "RegressorBase", "predict_threads"]

# Per-tree seeds are drawn below this bound, as scikit-learn draws them.
MAX_SEED = np.iinfo(np.int32).max


# --------------------------------------------------------------------------- shared base


class TreeModel(BaseEstimator):
    """What every estimator here shares: fit through the batch machinery, input checks at predict."""

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = dict(PARAMETER_CONSTRAINTS)
    _fitted_attribute: ClassVar[str]
    #: Whether ``fit`` warns of a column vector ``y`` (scikit-learn's forests do, its trees do not).
    _warns_column_vector_y: ClassVar[bool] = False
    # Fitted, as scikit-learn's: for several outputs, lists (classes_) where one output has an array.
    n_outputs_: int
    classes_: Any
    n_classes_: Any

    # Set by the subclasses' __init__ (scikit-learn style: stored as given, checked in fit).
    criterion: str
    max_depth: int | None
    min_samples_split: int | float
    min_samples_leaf: int | float
    min_weight_fraction_leaf: float
    max_features: int | float | str | None
    max_leaf_nodes: int | None
    min_impurity_decrease: float
    ccp_alpha: float
    monotonic_cst: Any
    random_state: Any
    max_bins: int
    executor: Any
    n_jobs: int | None

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> TreeModel:
        """Build from the training set ``(X, y)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Numbers or bools; NaN is a missing value, whose side each split
            learns (infinite values raise).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Class labels, or regression targets; one column per output. A
            column vector is one output (forests warn, as scikit-learn's do).
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

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, self._fitted_attribute)

    def to_sklearn(self) -> Any:
        """The equivalent fitted scikit-learn estimator, holding the same trees.

        ``sklearn.tree.DecisionTreeClassifier`` for a ``DecisionTreeClassifier``, and so
        on; tools that read scikit-learn trees (``export_text``, skl2onnx, shap) then
        work. Its predictions equal ours to float rounding (see
        :mod:`shmforest.estimators.export` for thresholds and float32).
        """
        from shmforest.estimators.export import to_sklearn  # imports scikit-learn's forests only when asked

        return to_sklearn(self)

    def _tree_params(self, targets: Targets) -> TreeParams:
        n_samples, n_features = targets.n_samples, targets.n_features
        if self.criterion == "poisson" and targets.values is not None:
            check_poisson_targets(targets.values, forest=isinstance(self, BaseForest))
        leaf = resolve_min_samples_leaf(self.min_samples_leaf, n_samples)
        n_classes: int | tuple[int, ...] = 0
        if is_classifier(self) and targets.classes is not None:
            counts = tuple(len(c) for c in targets.classes)
            n_classes = counts[0] if targets.n_outputs == 1 else counts
        return TreeParams(
            criterion="entropy" if self.criterion == "log_loss" else self.criterion,
            max_depth=self.max_depth,
            min_samples_split=resolve_min_samples_split(self.min_samples_split, n_samples, leaf),
            min_samples_leaf=leaf,
            max_features=resolve_max_features(self.max_features, n_features),
            min_impurity_decrease=float(self.min_impurity_decrease),
            max_leaf_nodes=self.max_leaf_nodes,
            n_classes=n_classes,
            min_weight_fraction_leaf=float(self.min_weight_fraction_leaf),
            monotonic_cst=resolve_monotonic_cst(self.monotonic_cst, n_features, n_classes, targets.n_outputs),
            splitter=self._splitter(),
            n_outputs=targets.n_outputs,
        )

    def _splitter(self) -> str:  # pragma: no cover - every subclass says
        raise NotImplementedError

    def _fit_options(self, targets: Targets, bootstrap: bool = False) -> FitOptions:
        """What each tree task does besides growing: class weights (classifiers), pruning."""
        class_weight, subsample = None, False
        if is_classifier(self) and targets.classes is not None and targets.codes is not None:
            class_weight, subsample = resolve_class_weight(
                getattr(self, "class_weight", None),
                targets.y,
                targets.codes,
                targets.classes,
                forest=isinstance(self, BaseForest),
                bootstrap=bootstrap,
                warm_start=bool(getattr(self, "warm_start", False)),
                sample_weight=targets.sample_weight,
            )
        return FitOptions(class_weight, subsample, float(self.ccp_alpha))

    def _set_data_attributes(self, targets: Targets) -> None:
        self.n_features_in_ = targets.n_features
        self.n_outputs_ = targets.n_outputs
        if is_classifier(self):
            assert targets.classes is not None  # checked for every classifier of a batch
            if targets.n_outputs == 1:
                self.classes_ = targets.classes[0]
                self.n_classes_ = len(self.classes_)
            else:
                # As scikit-learn: a list of each output's labels; their counts as an
                # array in a tree, as a list in a forest.
                self.classes_ = list(targets.classes)
                counts = [len(c) for c in targets.classes]
                self.n_classes_ = counts if isinstance(self, BaseForest) else np.array(counts, dtype=np.intp)

    def _check_X_predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        Xa = validate_data(self, X, reset=False, dtype=np.float64, order="C", ensure_all_finite=False)
        check_no_infinity(Xa, missing=False)
        return Xa

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        # NaN is a missing value: each split learns which side it goes to.
        tags.input_tags.allow_nan = True
        # y of shape (n_samples, n_outputs), as scikit-learn's trees and forests take.
        tags.target_tags.multi_output = True
        return tags


class ClassifierBase(ClassifierMixin):
    """scikit-learn's classifier mixin, and the prediction the classifiers share: labels
    from probabilities, per output."""

    classes_: Any  # an array of labels; a list of them, one per output, for several outputs
    n_classes_: Any
    n_outputs_: int
    _value: Callable[[Any], np.ndarray]  # TreeModel's: the value rows of X's rows

    def predict_proba(self, X: Any) -> Any:
        """Class probabilities of each sample: the class fractions of the leaf it reaches
        (a forest: their mean over the trees).

        Returns
        -------
        ndarray of shape (n_samples, n_classes), or a list of them, one per output
            The columns follow ``classes_`` (each output's ``classes_[k]``).
        """
        value = self._value(X)
        if self.n_outputs_ == 1:
            return value
        return _split_outputs(value, self.n_classes_)

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each sample (labels as given to ``fit``).

        Returns
        -------
        ndarray of shape (n_samples,), or (n_samples, n_outputs) for several outputs
        """
        proba = self.predict_proba(X)  # checks fitted first
        if self.n_outputs_ == 1:
            return self.classes_[np.argmax(proba, axis=1)]
        return _labels(self.classes_, [np.argmax(p, axis=1) for p in proba])

    def predict_log_proba(self, X: Any) -> Any:
        """The log of :meth:`predict_proba` (``-inf`` for probability 0); a list for several outputs."""
        proba = self.predict_proba(X)
        with np.errstate(divide="ignore"):
            if self.n_outputs_ == 1:
                return np.log(proba)
            return [np.log(p) for p in proba]

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()  # ClassifierMixin's: the classifier tags made
        tags.classifier_tags.multi_label = True  # a 2-D y of 0 and 1 is several binary outputs
        return tags


class RegressorBase(RegressorMixin):
    """scikit-learn's regressor mixin, and the prediction the regressors share."""

    n_outputs_: int
    _value: Callable[[Any], np.ndarray]  # TreeModel's: the value rows of X's rows

    def predict(self, X: Any) -> np.ndarray:
        """The mean target of the leaves each sample reaches (a forest: the mean over its trees).

        Returns
        -------
        ndarray of shape (n_samples,), or (n_samples, n_outputs) for several outputs
        """
        value = self._value(X)
        return value[:, 0] if self.n_outputs_ == 1 else value


def _split_outputs(value: np.ndarray, n_classes: Any) -> list[np.ndarray]:
    """Each output's columns of ``value``: its classes sit one output after the other."""
    ends = np.cumsum(n_classes)
    return [value[:, end - n : end] for n, end in zip(n_classes, ends)]


def _labels(classes: list[np.ndarray], codes: list[np.ndarray]) -> np.ndarray:
    """Labels of shape (n_samples, n_outputs) from each output's class indices, as scikit-learn
    makes them: in the first output's dtype (``y`` was one array, so all share it)."""
    out = np.empty((len(codes[0]), len(classes)), dtype=classes[0].dtype)
    for k, (classes_k, codes_k) in enumerate(zip(classes, codes)):
        out[:, k] = classes_k[codes_k]
    return out


# --------------------------------------------------------------------------- decision trees


class BaseDecisionTree(TreeModel):
    _fitted_attribute: ClassVar[str] = "tree_"
    tree_: Tree
    splitter: str

    def _splitter(self) -> str:
        return self.splitter

    def _plan(self, targets: Targets) -> TreePlan:
        params = self._tree_params(targets)
        seed = int(check_random_state(self.random_state).randint(MAX_SEED))
        # One task; inside it the builder hands subtrees to the executor running it.
        return TreePlan(self, params, [seed], parallel=True, max_bins=self.max_bins, options=self._fit_options(targets))

    def _assemble(self, plan: TreePlan, results: TreeResults, targets: Targets) -> None:
        self._set_fitted(results.trees[0], targets, plan.params.max_features)

    def _set_fitted(self, tree: Tree, targets: Targets, max_features: int) -> None:
        self._set_data_attributes(targets)
        self.max_features_ = max_features
        self.tree_ = tree

    def cost_complexity_pruning_path(self, X: Any, y: Any, sample_weight: Any = None) -> Bunch:
        """The pruning path of minimal cost-complexity pruning, as scikit-learn computes it.

        A clone with ``ccp_alpha=0`` is fitted on ``(X, y)``; its weakest-link pruning path
        is returned (:func:`shmforest.tree.pruning.pruning_path`).

        Returns
        -------
        Bunch
            ``ccp_alphas``: the effective alphas of the subtrees along the path, from 0;
            ``impurities``: the total leaf impurity of the subtree at each.
        """
        grown = clone(self).set_params(ccp_alpha=0.0).fit(X, y, sample_weight)
        return Bunch(**pruning_path(grown.tree_))

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
        check_is_fitted(self)
        return int(self.tree_.max_depth)

    def get_n_leaves(self) -> int:
        """The number of leaves of the tree."""
        check_is_fitted(self)
        left = np.asarray(self.tree_.children_left)[: self.tree_.node_count]
        return int(np.count_nonzero(left < 0))

    @property
    def feature_importances_(self) -> np.ndarray:
        """Impurity-based importance of each feature, normalised to sum to 1."""
        check_is_fitted(self)
        return np.asarray(self.tree_.compute_feature_importances(normalize=True))

    def _value(self, X: Any) -> np.ndarray:
        Xa = self._check_X_predict(X)
        return self.tree_.predict(Xa)


# --------------------------------------------------------------------------- forests


class BaseForest(TreeModel):
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {**PARAMETER_CONSTRAINTS, **FOREST_CONSTRAINTS}
    _fitted_attribute: ClassVar[str] = "estimators_"
    _warns_column_vector_y: ClassVar[bool] = True
    _tree_class: ClassVar[type[BaseDecisionTree]]
    #: How each tree splits: "best" (random forests) or "random" (extra trees).
    _tree_splitter: ClassVar[str] = "best"
    estimators_: list[Any]

    n_estimators: int
    bootstrap: bool
    oob_score: Any
    verbose: int
    warm_start: bool
    max_samples: int | float | None

    def _plan(self, targets: Targets) -> TreePlan:
        params = self._tree_params(targets)
        if self.oob_score is not False and not self.bootstrap:
            raise ValueError("Out of bag estimation only available if bootstrap=True")
        n_draws = resolve_max_samples(self.max_samples, targets.n_samples, self.bootstrap)
        kept = list(self.estimators_) if self.warm_start and hasattr(self, "estimators_") else []
        if kept:
            self._check_warm_start(kept, self.n_estimators, targets)
        # Draw every seed, the kept trees' too, so warm-started forests match fresh ones.
        seeds = check_random_state(self.random_state).randint(MAX_SEED, size=self.n_estimators)
        oob = callable(self.oob_score) or bool(self.oob_score)
        plan = TreePlan(
            self,
            params,
            [int(s) for s in seeds[len(kept) :]],
            bootstrap=self.bootstrap,
            n_draws=n_draws,
            oob=oob,
            max_bins=self.max_bins,
            kept=kept,
            options=self._fit_options(targets, bootstrap=self.bootstrap),
        )
        if plan.oob:
            plan.oob_refits = [(e.tree_, int(e.random_state)) for e in kept]
        return plan

    def _splitter(self) -> str:
        return self._tree_splitter

    def _check_warm_start(self, kept: list[Any], n_estimators: int, targets: Targets) -> None:
        if n_estimators < len(kept):
            raise ValueError(
                f"n_estimators={n_estimators} must be >= len(estimators_)={len(kept)} when warm_start=True"
            )
        fitted_features = kept[0].n_features_in_
        if targets.n_features != fitted_features:
            raise ValueError(
                f"warm_start: X has {targets.n_features} features, but the forest was fitted with {fitted_features}"
            )
        fitted_outputs = kept[0].n_outputs_
        if targets.n_outputs != fitted_outputs:
            raise ValueError(
                f"warm_start: y has {targets.n_outputs} outputs, but the forest was fitted with {fitted_outputs}"
            )
        if is_classifier(self) and targets.classes is not None:
            fitted = kept[0].classes_ if fitted_outputs > 1 else [kept[0].classes_]
            if any(not np.array_equal(a, b) for a, b in zip(targets.classes, fitted)):
                raise ValueError(
                    f"warm_start: y has classes {_describe(targets.classes)}, but the forest was "
                    f"fitted with {_describe(fitted)}"
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
        self._pack()
        for stale in ("oob_score_", "oob_decision_function_", "oob_prediction_"):
            if hasattr(self, stale):
                delattr(self, stale)
        if plan.oob:
            self._set_oob(results.oob, targets)

    def _make_tree(self, random_state: int | None) -> BaseDecisionTree:
        return self._tree_class(
            criterion=self.criterion,
            splitter=self._tree_splitter,
            max_depth=self.max_depth,
            min_samples_split=self.min_samples_split,
            min_samples_leaf=self.min_samples_leaf,
            min_weight_fraction_leaf=self.min_weight_fraction_leaf,
            max_features=self.max_features,
            random_state=random_state,
            max_leaf_nodes=self.max_leaf_nodes,
            min_impurity_decrease=self.min_impurity_decrease,
            ccp_alpha=self.ccp_alpha,
            monotonic_cst=self.monotonic_cst,
            max_bins=self.max_bins,
        )

    def _set_oob(self, oob: list[tuple[np.ndarray, np.ndarray]], targets: Targets) -> None:
        """``oob_score_`` and ``oob_decision_function_`` / ``oob_prediction_`` from each tree's
        out-of-bag value rows, shaped as scikit-learn shapes them."""
        classifier = is_classifier(self)
        width = int(np.sum(self.n_classes_)) if classifier else targets.n_outputs
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
        if classifier:
            assert targets.codes is not None
            default, y_true, y_pred = self._set_oob_classes(prediction, targets.codes)
        else:
            assert targets.values is not None
            self.oob_prediction_ = prediction[:, 0] if targets.n_outputs == 1 else prediction
            y_true, y_pred = targets.values, self.oob_prediction_
            default = float(r2_score(y_true, y_pred))
        self.oob_score_ = float(self.oob_score(y_true, y_pred)) if callable(self.oob_score) else default

    def _set_oob_classes(self, prediction: np.ndarray, codes: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """Set ``oob_decision_function_``; return the default score (accuracy), the labels and the predicted labels.

        Several outputs: the decision function is of shape (n_samples, n_classes,
        n_outputs), as scikit-learn's, each output's classes from index 0 (padded with
        zeros where an output has fewer classes than the most of any); the default
        score is the fraction of samples with every output right (what scikit-learn's
        ``accuracy_score`` gives for multilabel targets).
        """
        if self.n_outputs_ == 1:
            self.oob_decision_function_ = prediction
            y_true = self.classes_[codes]
            y_pred = self.classes_[np.argmax(prediction, axis=1)]
            return float(accuracy_score(y_true, y_pred)), y_true, y_pred
        per_output = _split_outputs(prediction, self.n_classes_)
        decision = np.zeros((prediction.shape[0], max(self.n_classes_), self.n_outputs_))
        for k, block in enumerate(per_output):
            decision[:, : block.shape[1], k] = block
        self.oob_decision_function_ = decision
        predicted = [np.argmax(block, axis=1) for block in per_output]
        right = np.all(np.column_stack(predicted) == codes, axis=1)
        y_true = _labels(self.classes_, [codes[:, k] for k in range(self.n_outputs_)])
        return float(np.mean(right)), y_true, _labels(self.classes_, predicted)

    @property
    def _trees(self) -> list[Tree]:
        return [e.tree_ for e in self.estimators_]

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.pop("_packed", None)  # derived from the trees: rebuilt on load, not pickled
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        if "estimators_" in state:
            self._pack()

    def _pack(self) -> None:
        """Pack the trees for prediction, keeping which trees were packed."""
        trees = self._trees
        self._packed = (tuple(trees), ForestArrays(trees))

    def _predictor(self) -> ForestArrays:
        """The trees packed for prediction at the end of fit (rebuilt for this call only when
        ``estimators_`` was changed by hand, so predict never changes the estimator)."""
        trees = self._trees
        packed, forest = self.__dict__.get("_packed", ((), None))
        if forest is None or len(packed) != len(trees) or any(a is not b for a, b in zip(packed, trees)):
            return ForestArrays(trees)
        return forest

    def _value(self, X: Any) -> np.ndarray:
        Xa = self._check_X_predict(X)
        return self._predictor().predict_value(Xa, predict_threads(self.n_jobs))

    def apply(self, X: Any) -> np.ndarray:
        """The leaf each sample ends in, per tree: shape (n_samples, n_estimators)."""
        Xa = self._check_X_predict(X)
        return self._predictor().apply(Xa, predict_threads(self.n_jobs))

    @property
    def feature_importances_(self) -> np.ndarray:
        """Mean of the trees' normalised impurity importances, normalised to sum to 1."""
        check_is_fitted(self)
        per_tree = [np.asarray(t.compute_feature_importances(normalize=True)) for t in self._trees if t.node_count > 1]
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


def _describe(classes: list[np.ndarray]) -> list[Any]:
    """Labels for a message: one output's as a list, several outputs' as a list of lists."""
    return classes[0].tolist() if len(classes) == 1 else [c.tolist() for c in classes]


# --------------------------------------------------------------------------- prediction


def predict_threads(n_jobs: int | None) -> int:
    """Threads a forest's predict walks row blocks with: ``n_jobs``, or every usable core.

    Inside a task this process holds one token of the budget: one thread.
    """
    if in_task():
        return 1
    return resolve_n_jobs(n_jobs) or usable_cores()[0]
