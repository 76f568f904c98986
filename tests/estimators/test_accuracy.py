"""Accuracy against scikit-learn's forests (random forests and extra trees) on its bundled real datasets.

Same parameters (50 trees, scikit-learn's defaults otherwise), same 5 folds; the
cross-validated score of our forest must be within 1 accuracy point (0.02 R² for
regression) of scikit-learn's. One 5-fold score of a 50-tree forest on iris or wine
moves by about a point from one ``random_state`` to the next, for scikit-learn as for
us, so each side's score is the mean over three random states: what is compared is
the estimators, not two draws of their noise.

scikit-learn is used here for comparison only (the ``test`` extra); shmforest never
imports it.
"""

from __future__ import annotations

import numpy as np
import pytest

import shmforest
from shmforest.executors import get_executor

sklearn = pytest.importorskip("sklearn")
from sklearn import datasets, ensemble  # noqa: E402
from sklearn.model_selection import KFold, StratifiedKFold  # noqa: E402

N_ESTIMATORS = 50
FOLDS = 5
SEEDS = (0, 1, 2)

# dataset, regression?, allowed gap
CASES = [
    ("breast_cancer", False, 0.01),
    ("digits", False, 0.01),
    ("wine", False, 0.01),
    ("iris", False, 0.01),
    ("diabetes", True, 0.02),
]


def cross_validated(make, X, y, folds):
    """Mean over seeds of the mean score over folds."""
    return float(np.mean([[make(seed).fit(X[tr], y[tr]).score(X[te], y[te]) for tr, te in folds] for seed in SEEDS]))


@pytest.fixture
def executor():
    """One shm pool for all of a dataset's fits: the score is what is tested, not start-up."""
    with get_executor("shm", max_workers=2) as ex:
        yield ex


@pytest.mark.parametrize("family", ["RandomForest", "ExtraTrees"])
@pytest.mark.parametrize("name, regression, gap", CASES, ids=[c[0] for c in CASES])
def test_cross_validated_score_matches_scikit_learn(name, regression, gap, family, executor, record_property):
    X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    splitter = KFold if regression else StratifiedKFold
    folds = list(splitter(FOLDS, shuffle=True, random_state=0).split(X, y))
    class_name = family + ("Regressor" if regression else "Classifier")
    ours_cls = getattr(shmforest, class_name)
    theirs_cls = getattr(ensemble, class_name)
    ours = cross_validated(lambda seed: ours_cls(N_ESTIMATORS, random_state=seed, executor=executor), X, y, folds)
    theirs = cross_validated(lambda seed: theirs_cls(N_ESTIMATORS, random_state=seed), X, y, folds)
    record_property("shmforest", round(ours, 4))
    record_property("scikit-learn", round(theirs, 4))
    print(f"{class_name} on {name}: shmforest {ours:.4f}, scikit-learn {theirs:.4f}, difference {ours - theirs:+.4f}")
    assert abs(ours - theirs) <= gap, f"{name}: shmforest {ours:.4f} vs scikit-learn {theirs:.4f}"
