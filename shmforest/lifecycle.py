"""One owner of what runs at exit, after a fork (in the child) and on SIGTERM, in one declared order.

Modules that hold process-wide resources register their hooks here, under a stage
of :data:`STAGES`; the hooks run stage by stage, in that order::

    at exit, at a worker's end, on SIGTERM     after a fork, in the child
    ------------------------------------       --------------------------
    pools     end the pools this process owns  pools     forget the parent's pools
              (workers are joined first)       worker    forget the parent's worker link
    budgets   close the budgets it owns        budgets   fresh locks
    segments  unlink the blocks it created     segments  forget the parent's blocks

Pools go first because their workers hold budget tokens and read shared blocks;
blocks go last because everything above may still read them. A worker process ends
with ``os._exit`` and so skips ``atexit``: it runs the same hooks by calling
:func:`run_exit_hooks` itself.
"""

from __future__ import annotations

import atexit
import multiprocessing.util  # noqa: F401 - registers its exit hook first, so ours runs before it
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Literal

__all__ = ["STAGES", "ExitReason", "install_sigterm_cleanup", "register", "run_exit_hooks"]

#: The stages, in the order their hooks run.
STAGES = ("pools", "worker", "budgets", "segments")

#: Why exit hooks run: the interpreter exits, a worker's tasks are over, or SIGTERM arrived.
ExitReason = Literal["exit", "task-end", "sigterm"]

_EXIT: dict[str, list[Callable[[ExitReason], None]]] = {stage: [] for stage in STAGES}
_FORK: dict[str, list[Callable[[], None]]] = {stage: [] for stage in STAGES}
_sigterm_installed = False


def register(
    stage: str,
    *,
    at_exit: Callable[[ExitReason], None] | None = None,
    after_fork: Callable[[], None] | None = None,
) -> None:
    """Run ``at_exit(reason)`` at exit and ``after_fork()`` in a forked child, in ``stage``'s turn.

    Raises
    ------
    ValueError
        ``stage`` is not one of :data:`STAGES`.
    """
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {', '.join(map(repr, STAGES))}; got {stage!r}")
    if at_exit is not None:
        _EXIT[stage].append(at_exit)
    if after_fork is not None:
        _FORK[stage].append(after_fork)


def run_exit_hooks(reason: ExitReason) -> None:
    """Run every exit hook, stage by stage; one hook's failure does not skip the others."""
    for stage in STAGES:
        for hook in list(_EXIT[stage]):
            try:
                hook(reason)
            except Exception:  # noqa: BLE001 - clean-up goes on; the error is already moot
                pass


def _after_fork_in_child() -> None:
    global _sigterm_installed
    # The parent's handler is inherited, but whether this process owns anything
    # to clean is its own business: it installs the handler again when it does.
    _sigterm_installed = False
    for stage in STAGES:
        for hook in _FORK[stage]:
            hook()


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    run_exit_hooks("sigterm")
    # Die of SIGTERM as we would have without this handler, so exit codes stay honest.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def install_sigterm_cleanup() -> None:
    """Run the exit hooks on SIGTERM too, unless the program handles SIGTERM itself.

    Called by whoever first creates something that must not outlive this process
    (a shared-memory block); only the main thread may install a signal handler.
    """
    global _sigterm_installed
    if _sigterm_installed or threading.current_thread() is not threading.main_thread():
        return
    _sigterm_installed = True
    try:
        if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
            signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # pragma: no cover - not the main interpreter
        pass


# atexit runs last-registered first: after multiprocessing's hook (imported above),
# which joins non-daemonic children, so pools end their workers before that join.
atexit.register(run_exit_hooks, "exit")
os.register_at_fork(after_in_child=_after_fork_in_child)
