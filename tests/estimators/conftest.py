"""Fixtures of the estimator tests."""

from __future__ import annotations

import pytest
from estimator_support import make_data


@pytest.fixture(scope="module")
def data():
    X, y, target = make_data()
    return X, y, target
