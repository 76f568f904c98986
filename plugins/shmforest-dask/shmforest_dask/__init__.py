"""shmforest on dask.distributed: the ``dask`` executor.

Installed, it registers the executor ``dask`` under shmforest's
``shmforest.executors`` entry point, so ``RandomForestClassifier(executor="dask")``
finds it by name; pass a :class:`DaskExecutor` instance to choose the cluster.
Arrays and datasets in task arguments reach each machine once, into its shared
memory, where every worker process attaches them.
"""

from __future__ import annotations

from shmforest_dask.cluster import WORKER_CONFIG, start_local_cluster
from shmforest_dask.errors import HostCopyReadOnlyError, PlacementError, WorkerLostError
from shmforest_dask.executor import ADDRESS_ENV_VAR, DaskExecutor, TaskFuture
from shmforest_dask.placement import DOMAIN_ENV_VAR, PlacedDataset, host_copies, shm_domain

__version__ = "0.1.0"

__all__ = [
    "ADDRESS_ENV_VAR",
    "DOMAIN_ENV_VAR",
    "DaskExecutor",
    "HostCopyReadOnlyError",
    "PlacedDataset",
    "PlacementError",
    "TaskFuture",
    "WORKER_CONFIG",
    "WorkerLostError",
    "__version__",
    "host_copies",
    "shm_domain",
    "start_local_cluster",
]
