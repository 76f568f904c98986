"""scikit-learn estimators whose trees grow on shmforest's executors.

============  ================================================================
classes       the public estimators: random forests, extra trees, decision trees
quantile      the quantile regression forest
base          what they share: fit through the batch, predict, forests' extras
batch         one batch of trees on an executor (binning, placement, tasks)
many          ``fit_many``: several models on one placed dataset
class_weight  ``class_weight`` turned into one weight per class
export        ``to_sklearn()``: the same trees in scikit-learn's classes
validation    parameter constraints and the counts scikit-learn has no helper for
progress      the progress bar of ``verbose`` fits
============  ================================================================
"""

from __future__ import annotations

from shmforest.estimators.classes import (
    DecisionTreeClassifier,
    DecisionTreeRegressor,
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from shmforest.estimators.many import fit_many
from shmforest.estimators.quantile import RandomForestQuantileRegressor

__all__ = [
    "DecisionTreeClassifier",
    "DecisionTreeRegressor",
    "ExtraTreesClassifier",
    "ExtraTreesRegressor",
    "RandomForestClassifier",
    "RandomForestQuantileRegressor",
    "RandomForestRegressor",
    "fit_many",
]
