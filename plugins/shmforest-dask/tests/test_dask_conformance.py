"""The executor conformance kit, on real LocalClusters, in both of the plugin's modes.

With a cluster it starts itself, a DaskExecutor takes one budget token per worker
process (single-threaded), so the budget bounds both running tasks and live
processes. On an existing cluster it takes no tokens: the budget's size caps its
tasks in flight. That cluster here has budget-many worker processes of two threads
each, so the kit's bound on running tasks holds only because the cap holds.
"""

from __future__ import annotations

import pytest
from shmforest_dask import DaskExecutor

from shmforest.testing.conformance import ExecutorConformance


class TestDaskExecutorOwnCluster(ExecutorConformance):
    """``DaskExecutor(budget=...)``: it starts (and stops) a LocalCluster sized by the budget."""

    @pytest.fixture
    def executor(self, budget):
        ex = DaskExecutor(budget=budget)
        yield ex
        ex.shutdown()


@pytest.mark.one_cluster_per_shape
class TestDaskExecutorOnAClient(ExecutorConformance):
    """``DaskExecutor(client, budget=...)`` on a cluster with twice the budget's threads."""

    @pytest.fixture
    def executor(self, budget, cluster_of):
        kept = cluster_of(budget.size, threads_per_worker=2)
        ex = DaskExecutor(kept.client, budget=budget)
        assert ex.max_workers == budget.size < sum(kept.client.nthreads().values())
        yield ex
        ex.shutdown()
        assert kept.client.status == "running", "shutdown closed a client it was given"
