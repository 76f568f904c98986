"""Test-wide guards: no test may leave a shared-memory block of ours or a child process behind."""

from __future__ import annotations

import pytest

from shmforest.testing.leaks import LeakCheck


@pytest.fixture(autouse=True)
def no_leaks(request):
    """Fail any test that leaves a ``shmf_`` block or a child process behind."""
    check = LeakCheck()
    yield
    if request.node.get_closest_marker("allow_leaks"):
        return
    left = check.leftovers()
    if left:
        pytest.fail("test leaked resources: " + left.describe(), pytrace=False)


def pytest_configure(config):
    config.addinivalue_line("markers", "allow_leaks: the test checks leak handling itself")
