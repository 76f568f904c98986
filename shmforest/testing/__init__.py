"""Tools for testing and benchmarking shmforest and its plugins.

``pytest_plugins = ["shmforest.testing"]`` in a test module or ``conftest.py`` adds
the fixtures of :mod:`shmforest.testing.fixtures` (a session-wide shared dataset,
an executor per available executor). They are defined only when pytest is
importable, so this package imports without it.
"""

from __future__ import annotations

from shmforest.testing.processes import ProcessTreeMonitor, ProcessTreeSample, sample_process_tree

__all__ = ["ProcessTreeMonitor", "ProcessTreeSample", "sample_process_tree"]

try:
    import pytest as _pytest  # noqa: F401  (only probing whether the fixtures can exist)
except ImportError:  # pragma: no cover - pytest is in the test extra
    pass
else:
    # Names a pytest plugin module must hold: pytest looks for fixtures and hooks on it.
    from shmforest.testing.fixtures import (  # noqa: F401
        executor,
        executor_name,
        pytest_generate_tests,
        shared_dataset,
        shared_dataset_shape,
    )
