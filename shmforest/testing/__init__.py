"""Tools for testing and benchmarking shmforest and its plugins."""

from __future__ import annotations

from shmforest.testing.monitor import TreeMonitor, TreeSample, sample_tree

__all__ = ["TreeMonitor", "TreeSample", "sample_tree"]
