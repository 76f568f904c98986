"""Every built-in executor passes the conformance kit."""

from __future__ import annotations

import pytest

from shmforest.executors.registry import get_executor
from shmforest.testing.conformance import ExecutorConformance


class TestSerial(ExecutorConformance):
    @pytest.fixture
    def executor(self, budget):
        ex = get_executor("serial", budget=budget)
        yield ex
        ex.shutdown()


class TestThread(ExecutorConformance):
    @pytest.fixture
    def executor(self, budget):
        ex = get_executor("thread", budget=budget)
        yield ex
        ex.shutdown()


class TestProcess(ExecutorConformance):
    @pytest.fixture
    def executor(self, budget):
        ex = get_executor("process", budget=budget)
        yield ex
        ex.shutdown()


class TestShm(ExecutorConformance):
    @pytest.fixture
    def executor(self, budget):
        ex = get_executor("shm", budget=budget)
        yield ex
        ex.shutdown()


@pytest.mark.parametrize("name", ["thread", "process", "shm"])
def test_shutdown_without_waiting_then_waiting_still_cleans_up(name):
    """The first shutdown that waits closes what the executor owns, even after one that did not."""
    import numpy as np

    from shmforest.executors import get_executor

    ex = get_executor(name, max_workers=2)
    array = np.ones(1 << 14)  # 128 KiB: placed by shm, and kept alive so its block stays
    assert ex.submit(np.sum, array).result() == 1 << 14
    if name == "shm":
        assert ex.placed_bytes > 0
    ex.shutdown(wait=False)
    ex.shutdown()
    assert ex.budget.closed
    if name == "shm":
        assert ex.placed_bytes == 0
