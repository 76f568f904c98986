"""pytest fixtures for your own (pytest-benchmark) suites: a shared dataset and every executor.

Opt in from a test module or your root ``conftest.py``::

    pytest_plugins = ["shmforest.testing"]

    def test_fit(benchmark, shared_dataset, executor):
        X, y = shared_dataset["X"], shared_dataset["y"]
        benchmark(lambda: RandomForestClassifier(20, executor=executor).fit(X, y))

``shared_dataset``
    Session-scoped :class:`~shmforest.SharedDataset`, placed in shared memory once
    for the whole session and removed at its end. Keys: ``"X"`` (float64, rows x
    features) and ``"y"`` (int64 class labels 0/1), from
    scikit-learn's ``make_classification`` with ``random_state=0`` (10 informative
    features or as many as there are columns). Views are read-only; pass the dataset
    itself to tasks and it travels as handles.
``shared_dataset_shape``
    ``(rows, features)`` of that dataset, ``(10_000, 20)`` by default: override
    this fixture (session scope) in your ``conftest.py`` to resize it.
``executor_name``
    Each available executor's name in turn (:func:`shmforest.available_executors`,
    plugins included): a test asking for it, or for ``executor``, runs once per
    executor. Parametrize ``executor_name`` yourself to pick some.
``executor``
    A fresh executor of that name with ``max_workers=2`` (:data:`EXECUTOR_WORKERS`),
    shut down after the test.

Nothing is registered automatically: installing shmforest does not add these
fixtures to anyone's test run.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sklearn.datasets import make_classification

from shmforest.executors import Executor, available_executors, get_executor
from shmforest.shared import SharedDataset

__all__ = [
    "EXECUTOR_WORKERS",
    "executor",
    "executor_name",
    "pytest_generate_tests",
    "shared_dataset",
    "shared_dataset_shape",
]

#: Workers of each ``executor``: parallel, yet small enough for a laptop or CI runner.
EXECUTOR_WORKERS = 2
_DEFAULT_SHAPE = (10_000, 20)


@pytest.fixture(scope="session")
def shared_dataset_shape() -> tuple[int, int]:
    """``(rows, features)`` of :func:`shared_dataset`; override it to resize the dataset."""
    return _DEFAULT_SHAPE


@pytest.fixture(scope="session")
def shared_dataset(shared_dataset_shape: tuple[int, int]) -> Iterator[SharedDataset]:
    """A seeded classification dataset (keys ``"X"``, ``"y"``) placed once per session, removed at its end."""
    rows, features = shared_dataset_shape
    informative = min(10, features)
    X, y = make_classification(
        n_samples=rows,
        n_features=features,
        n_informative=informative,
        n_redundant=min(2, features - informative),
        n_clusters_per_class=2 if informative >= 2 else 1,
        random_state=0,
    )
    dataset = SharedDataset(X=X, y=y)
    try:
        yield dataset
    finally:
        dataset.close()


@pytest.fixture
def executor_name(request: pytest.FixtureRequest) -> str:
    """The name of the executor under test (parametrized by :func:`pytest_generate_tests`)."""
    return str(request.param)


@pytest.fixture
def executor(executor_name: str) -> Iterator[Executor]:
    """A fresh executor named ``executor_name``, ``max_workers=2``, shut down after the test."""
    ex = get_executor(executor_name, max_workers=EXECUTOR_WORKERS)
    try:
        yield ex
    finally:
        ex.shutdown(wait=True, cancel_futures=True)


def _parametrized_by_user(metafunc: pytest.Metafunc, argname: str) -> bool:
    for marker in metafunc.definition.iter_markers("parametrize"):
        names = marker.args[0] if marker.args else marker.kwargs.get("argnames", "")
        if isinstance(names, str):
            names = [n.strip() for n in names.split(",")]
        if argname in names:
            return True
    return False


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run every test that needs ``executor_name`` (``executor`` does) once per available executor.

    Done here rather than with ``@pytest.fixture(params=...)`` so that the registry
    is read when tests are collected, not whenever ``shmforest.testing`` is imported.
    """
    if "executor_name" in metafunc.fixturenames and not _parametrized_by_user(metafunc, "executor_name"):
        names = list(available_executors())
        metafunc.parametrize("executor_name", names, indirect=True, ids=names)
