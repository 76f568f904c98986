"""scikit-learn's own estimator checks, on every estimator shmforest ships.

The only checks allowed to fail are those scikit-learn declares expected to fail
for its own counterpart of each estimator, in the installed version.
"""

from __future__ import annotations

from typing import Any

import sklearn.ensemble
import sklearn.tree
from sklearn.base import BaseEstimator
from sklearn.utils.estimator_checks import parametrize_with_checks

from shmforest import (
    DecisionTreeClassifier,
    DecisionTreeRegressor,
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    RandomForestClassifier,
    RandomForestQuantileRegressor,
    RandomForestRegressor,
)

# Small forests on the serial executor: the checks fit hundreds of times.
ESTIMATORS = [
    RandomForestClassifier(n_estimators=5, executor="serial", random_state=0),
    RandomForestRegressor(n_estimators=5, executor="serial", random_state=0),
    RandomForestQuantileRegressor(n_estimators=5, executor="serial", random_state=0),
    ExtraTreesClassifier(n_estimators=5, executor="serial", random_state=0),
    ExtraTreesRegressor(n_estimators=5, executor="serial", random_state=0),
    DecisionTreeClassifier(executor="serial", random_state=0),
    DecisionTreeRegressor(executor="serial", random_state=0),
]


#: Ours without a scikit-learn namesake, and the scikit-learn estimator closest to each.
COUNTERPARTS = {"RandomForestQuantileRegressor": "RandomForestRegressor"}


def sklearn_counterpart(estimator: BaseEstimator) -> BaseEstimator:
    """scikit-learn's estimator of the same name (or the closest, :data:`COUNTERPARTS`)."""
    name = type(estimator).__name__
    name = COUNTERPARTS.get(name, name)
    module = sklearn.tree if name.startswith("DecisionTree") else sklearn.ensemble
    return getattr(module, name)()


def expected_failed_checks(estimator: BaseEstimator) -> dict[str, str]:
    """What scikit-learn declares expected to fail for its own counterpart of ``estimator``."""
    from sklearn.utils._test_common.instance_generator import (
        _get_expected_failed_checks,
    )

    return dict(_get_expected_failed_checks(sklearn_counterpart(estimator)))


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_estimator_checks(estimator: Any, check: Any) -> None:
    check(estimator)
