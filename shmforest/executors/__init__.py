"""Executors: one interface, built-in strategies, and the registry that finds them.

Everything a plugin author needs is public here: subclass :class:`Executor`, run
each task through :func:`run_in_task` (so :func:`current_executor` works inside
it), draw workers from :func:`resolve_budget`, and declare the class under the
``shmforest.executors`` entry-point group.
"""

from __future__ import annotations

from shmforest.executors.base import (
    Executor,
    completed_future,
    in_task,
    resolve_budget,
    run_in_task,
)
from shmforest.executors.current import current_executor
from shmforest.executors.registry import (
    ENTRY_POINT_GROUP,
    available_executors,
    executor_class,
    get_executor,
    register_executor,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "Executor",
    "available_executors",
    "completed_future",
    "current_executor",
    "executor_class",
    "get_executor",
    "in_task",
    "register_executor",
    "resolve_budget",
    "run_in_task",
]
