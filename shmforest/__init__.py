"""shmforest: decision trees and random forests trained in parallel.

Datasets are placed once in shared memory, one process budget bounds the whole
process tree, and executor plugins (serial, thread, process, shm, or yours) all
drive the same tree builder.
"""

from __future__ import annotations

from shmforest.budget import ProcessBudget, usable_cores
from shmforest.errors import ShmforestError
from shmforest.executors import (
    Executor,
    available_executors,
    current_executor,
    get_executor,
    register_executor,
)
from shmforest.estimators import (
    DecisionTreeClassifier,
    DecisionTreeRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
    fit_many,
)
from shmforest.shared import ArrayHandle, SharedArray, SharedDataset

__version__ = "0.1.0"

__all__ = [
    "ArrayHandle",
    "DecisionTreeClassifier",
    "DecisionTreeRegressor",
    "RandomForestClassifier",
    "RandomForestRegressor",
    "Executor",
    "ProcessBudget",
    "SharedArray",
    "SharedDataset",
    "ShmforestError",
    "__version__",
    "available_executors",
    "current_executor",
    "fit_many",
    "get_executor",
    "register_executor",
    "usable_cores",
]
