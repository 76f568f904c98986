"""scikit-learn estimators whose trees grow on shmforest's executors.

==========  ==================================================================
classes     the public estimators: random forests and decision trees
base        what they share: fit through the batch, predict, forests' extras
batch       one batch of trees on an executor (binning, placement, tasks)
fit_many    several models on one placed dataset
validation  parameter constraints and the counts scikit-learn has no helper for
progress    the progress bar of ``verbose`` fits
==========  ==================================================================
"""

from __future__ import annotations

from shmforest.estimators.fit_many import fit_many
from shmforest.estimators.classes import (
    DecisionTreeClassifier,
    DecisionTreeRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)

__all__ = [
    "DecisionTreeClassifier",
    "DecisionTreeRegressor",
    "RandomForestClassifier",
    "RandomForestRegressor",
    "fit_many",
]
