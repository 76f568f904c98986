"""Executors: one interface, built-in strategies, and the registry that finds them."""

from __future__ import annotations

from shmforest.executors.base import Executor, current_executor, in_task

__all__ = ["Executor", "current_executor", "in_task"]
