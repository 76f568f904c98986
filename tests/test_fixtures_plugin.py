"""The opt-in pytest fixtures of ``shmforest.testing``, tested from outside with pytester.

Each inner session runs in a subprocess (``runpytest_subprocess``): its executors
and shared blocks belong to that process, so what it leaves behind is visible here.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from shmforest.executors import available_executors
from shmforest.shared import SEGMENT_PREFIX

pytest_plugins = ["pytester"]

_USER_SUITE = """
import os

import pytest

from shmforest import SharedDataset
from shmforest.executors import Executor

pytest_plugins = ["shmforest.testing"]

SEGMENTS = []


def _log(name):
    with open(os.environ["SEGMENT_LOG"], "a") as f:
        f.write(name + "\\n")


def test_dataset_is_placed(shared_dataset):
    assert isinstance(shared_dataset, SharedDataset) and shared_dataset.owner
    assert sorted(shared_dataset) == ["X", "y"]
    assert shared_dataset["X"].shape == (10_000, 20) and shared_dataset["y"].shape == (10_000,)
    SEGMENTS.append(shared_dataset.handles["X"].segment)
    _log(SEGMENTS[-1])


def test_executor_reads_the_dataset(benchmark, executor, executor_name, shared_dataset):
    assert isinstance(executor, Executor) and executor.name == executor_name
    SEGMENTS.append(shared_dataset.handles["X"].segment)
    first_column = lambda ds: float(ds["X"][:, 0].sum())  # the dataset travels as handles
    got = benchmark.pedantic(lambda: executor.submit(first_column, shared_dataset).result(), rounds=1, iterations=1)
    assert got == pytest.approx(float(shared_dataset["X"][:, 0].sum()))


def test_zz_placed_once_per_session(shared_dataset):
    assert len(SEGMENTS) > 1 and set(SEGMENTS) == {shared_dataset.handles["X"].segment}
"""


def _segments() -> set[str]:
    return {n for n in os.listdir("/dev/shm") if n.startswith(SEGMENT_PREFIX)}


@pytest.fixture
def segment_log(pytester, monkeypatch):
    path = pytester.path / "segments.log"
    monkeypatch.setenv("SEGMENT_LOG", str(path))
    return path


def test_user_suite_gets_both_fixtures_and_every_executor(pytester, segment_log):
    pytester.makepyfile(test_user_suite=_USER_SUITE)
    names = list(available_executors())
    result = pytester.runpytest_subprocess("-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=len(names) + 2)
    for name in names:
        result.stdout.fnmatch_lines([f"*test_executor_reads_the_dataset?{name}?*PASSED*"])
    placed = segment_log.read_text().split()
    assert len(placed) == 1
    assert placed[0] not in _segments()  # removed at the end of the session


def test_executor_name_parametrized_by_the_user_wins(pytester):
    pytester.makepyfile(
        """
        import pytest

        pytest_plugins = ["shmforest.testing"]

        @pytest.mark.parametrize("executor_name", ["serial"])
        def test_only_serial(executor):
            assert executor.submit(pow, 2, 5).result() == 32
        """
    )
    result = pytester.runpytest_subprocess("-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*test_only_serial?serial?*PASSED*"])


def test_dataset_shape_can_be_overridden(pytester):
    pytester.makeconftest(
        """
        import pytest

        pytest_plugins = ["shmforest.testing"]

        @pytest.fixture(scope="session")
        def shared_dataset_shape():
            return (64, 3)
        """
    )
    pytester.makepyfile(
        """
        def test_small(shared_dataset):
            assert shared_dataset["X"].shape == (64, 3)
        """
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_nothing_is_registered_without_opting_in(pytester):
    pytester.makepyfile(
        """
        def test_wants_it(shared_dataset):
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'shared_dataset' not found*"])


def test_package_imports_without_pytest():
    code = (
        "import sys; sys.modules['pytest'] = None\n"  # a None entry makes `import pytest` fail
        "import shmforest.testing as t\n"
        "assert t.ProcessTreeMonitor and not hasattr(t, 'shared_dataset')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
