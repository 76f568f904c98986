"""shmforest: decision trees and random forests trained in parallel.

Datasets are placed once in shared memory, one process budget bounds the whole
process tree, and executor plugins (serial, thread, process, shm, or yours) all
drive the same tree builder.
"""

from __future__ import annotations

from shmforest.errors import ShmforestError
from shmforest.shared import ArrayHandle, SharedArray, SharedDataset

__version__ = "0.1.0"

__all__ = [
    "ArrayHandle",
    "SharedArray",
    "SharedDataset",
    "ShmforestError",
    "__version__",
]
