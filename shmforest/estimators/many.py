"""``fit_many``: several models fitted on one placed dataset, under one executor and budget."""

from __future__ import annotations

import concurrent.futures as cf
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from shmforest.estimators.base import TreeModel
from shmforest.estimators.batch import DEFAULT_EXECUTOR, fit_models

__all__ = ["fit_many"]

M = TypeVar("M", bound="Mapping[Any, Any] | Sequence[Any]")


def fit_many(
    models: M,
    X: Any,
    y: Any,
    *,
    sample_weight: Any = None,
    executor: str | cf.Executor = DEFAULT_EXECUTOR,
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
    executor : str or Executor, default "thread"
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
    >>> from shmforest import RandomForestClassifier
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
                f"models[{key!r}] must be a shmforest RandomForest*/DecisionTree* estimator; got {type(model).__name__}"
            )
        if id(model) in seen:
            raise ValueError(
                f"models[{key!r}] is the same object as models[{seen[id(model)]!r}]; pass distinct estimators"
            )
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
