"""Which executor runs the code calling: :func:`current_executor`.

Apart from :mod:`shmforest.executors.base` because outside any task the answer is a
serial executor, which is itself built on the base.
"""

from __future__ import annotations

from shmforest.executors.base import Executor, running_executor
from shmforest.executors.serial import SerialExecutor

__all__ = ["current_executor"]


def current_executor() -> Executor:
    """The executor running the current task; a serial executor outside any task.

    Recursive code submits its branches here and needs no executor argument: each
    submission runs in parallel if the budget has a token free, inline otherwise.
    """
    return running_executor() or SerialExecutor()
