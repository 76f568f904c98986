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
