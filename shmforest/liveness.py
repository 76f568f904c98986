"""Which process is which: a process named by pid *and* start time, so a recycled
pid is never mistaken for the process that held it before.

The budget leases tokens to such identities and reclaims those of dead ones; the
pool's workers watch their owner by it.
"""

from __future__ import annotations

import os

__all__ = ["current_process", "is_alive", "start_time"]


def start_time(pid: int) -> int | None:
    """Start time of a live (not zombie) process in clock ticks, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    except OSError:  # pragma: no cover - no procfs (macOS): ask psutil
        return _psutil_start_time(pid)
    fields = data[data.rindex(b")") + 2 :].split()
    if fields[0] in (b"Z", b"X", b"x"):  # exited, waiting to be reaped: holds no CPU
        return None
    return int(fields[19])  # field 22 of stat(5); fields[0] is field 3


def _psutil_start_time(pid: int) -> int | None:  # pragma: no cover - non-Linux
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return int(proc.create_time() * 100)
    except psutil.Error:
        return None


_SELF: tuple[int, int] | None = None


def current_process() -> tuple[int, int]:
    """This process's identity (pid, start time), cached per pid."""
    global _SELF
    pid = os.getpid()
    if _SELF is None or _SELF[0] != pid:
        _SELF = (pid, start_time(pid) or 0)
    return _SELF


def is_alive(pid: int, start: int) -> bool:
    """Whether the process that had ``pid`` and started at ``start`` is still running."""
    me = current_process()
    if pid == me[0]:
        return start == me[1]  # else an earlier holder of our pid
    return start_time(pid) == start
