"""shmforest: decision trees and random forests trained in parallel.

Datasets are placed once in shared memory, one process budget bounds the whole
process tree, and executor plugins (serial, thread, process, shm, or yours) all
drive the same tree builder.

The public names are imported on first use (PEP 562): a worker process that
imports ``shmforest.pool`` or a task module loads neither the estimators nor
scikit-learn, which take about a second to import.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shmforest.budget import ProcessBudget
    from shmforest.cores import usable_cores
    from shmforest.errors import ShmforestError
    from shmforest.estimators import (
        DecisionTreeClassifier,
        DecisionTreeRegressor,
        ExtraTreesClassifier,
        ExtraTreesRegressor,
        RandomForestClassifier,
        RandomForestQuantileRegressor,
        RandomForestRegressor,
        fit_many,
    )
    from shmforest.executors import (
        Executor,
        available_executors,
        current_executor,
        get_executor,
        register_executor,
    )
    from shmforest.shared import ArrayHandle, SharedArray, SharedDataset

__version__ = "0.1.0"

#: Public name -> the module that defines it.
_EXPORTS = {
    "ArrayHandle": "shmforest.shared",
    "SharedArray": "shmforest.shared",
    "SharedDataset": "shmforest.shared",
    "ProcessBudget": "shmforest.budget",
    "usable_cores": "shmforest.cores",
    "ShmforestError": "shmforest.errors",
    "Executor": "shmforest.executors",
    "available_executors": "shmforest.executors",
    "current_executor": "shmforest.executors",
    "get_executor": "shmforest.executors",
    "register_executor": "shmforest.executors",
    "DecisionTreeClassifier": "shmforest.estimators",
    "DecisionTreeRegressor": "shmforest.estimators",
    "ExtraTreesClassifier": "shmforest.estimators",
    "ExtraTreesRegressor": "shmforest.estimators",
    "RandomForestClassifier": "shmforest.estimators",
    "RandomForestRegressor": "shmforest.estimators",
    "RandomForestQuantileRegressor": "shmforest.estimators",
    "fit_many": "shmforest.estimators",
}

__all__ = [
    "ArrayHandle",
    "DecisionTreeClassifier",
    "DecisionTreeRegressor",
    "Executor",
    "ExtraTreesClassifier",
    "ExtraTreesRegressor",
    "ProcessBudget",
    "RandomForestClassifier",
    "RandomForestQuantileRegressor",
    "RandomForestRegressor",
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


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'shmforest' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
