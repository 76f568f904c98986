"""scikit-learn estimators whose trees grow on shmforest's executors.

============  ================================================================
classes       the public estimators: random forests and decision trees
quantile      the quantile regression forest
base          what they share: fit through the batch, predict, forests' extras
batch         one batch of trees on an executor (binning, placement, tasks), ``fit_many``
class_weight  ``class_weight`` turned into one weight per class
validation    parameter constraints and the counts scikit-learn has no helper for
progress      the progress bar of ``verbose`` fits
============  ================================================================
"""

from __future__ import annotations

from shmforest.estimators.batch import fit_many
from shmforest.estimators.classes import (
    DecisionTreeClassifier,
    DecisionTreeRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from shmforest.estimators.quantile import RandomForestQuantileRegressor

__all__ = [
    "DecisionTreeClassifier",
    "DecisionTreeRegressor",
    "RandomForestClassifier",
    "RandomForestQuantileRegressor",
    "RandomForestRegressor",
    "fit_many",
]
