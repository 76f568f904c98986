"""Check that work left no shared-memory block or temporary-folder file of ours and no child process behind.

One mechanism for shmforest's own test guards, the dask plugin's, and the
conformance kit::

    check = LeakCheck()
    ...  # the work
    left = check.leftovers()
    assert not left, left.describe()

Leftover child processes are ended, so one failure does not cascade. Blocks are
only reported, never removed: ``/dev/shm`` is machine-wide, and a block that
appeared meanwhile may belong to another program (a concurrent test run). Ours
are swept by the resource tracker when their owner exits.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import TypeVar

import psutil

from shmforest.shared import SEGMENT_PREFIX
from shmforest.tempfolder import temp_folders
from shmforest.testing.processes import live_workers

__all__ = ["LeakCheck", "Leftovers", "our_segments", "our_temp_files", "process_wide_segments", "settle"]

SHM_DIR = "/dev/shm"
T = TypeVar("T", bound=Collection)


def our_segments() -> set[str]:
    """Names of every ``shmf_`` block in ``/dev/shm``, whoever created it."""
    try:
        return {n for n in os.listdir(SHM_DIR) if n.startswith(SEGMENT_PREFIX)}
    except FileNotFoundError:  # pragma: no cover - no /dev/shm
        return set()


def our_temp_files() -> set[str]:
    """Paths of every ``shmf_`` file in the temporary folders blocks go to, whoever created it.

    Blocks there have no name while in use, so any such file is a leak (or a
    moment's name on a filesystem without ``O_TMPFILE``).
    """
    found: set[str] = set()
    for folder, _ in temp_folders():
        if os.path.realpath(folder) == os.path.realpath(SHM_DIR):
            continue  # our_segments() looks there
        try:
            found.update(os.path.join(folder, n) for n in os.listdir(folder) if n.startswith(SEGMENT_PREFIX))
        except OSError:
            continue
    return found


def process_wide_segments() -> set[str]:
    """Blocks that live as long as this process by design (its default budget)."""
    from shmforest.budget import default_budget_segment

    name = default_budget_segment()
    return {name} if name else set()


def settle(check: Callable[[], T], timeout: float = 5.0) -> T:
    """Call ``check`` until it returns nothing or ``timeout`` passes; its last answer.

    Processes and blocks released at shutdown take a moment to go.
    """
    deadline = time.monotonic() + timeout
    left = check()
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = check()
    return left


@dataclass
class Leftovers:
    """What outlived the work: child processes (already ended), blocks and temporary-folder files."""

    processes: list[int] = field(default_factory=list)
    segments: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.processes or self.segments or self.files)

    def describe(self) -> str:
        problems = []
        if self.processes:
            problems.append(f"child processes left running: {self.processes}")
        if self.segments:
            problems.append(f"shared-memory blocks left in {SHM_DIR}: {self.segments}")
        if self.files:
            problems.append(f"files left in temporary folders: {self.files}")
        return "; ".join(problems)


class LeakCheck:
    """Snapshot child processes, ``shmf_`` blocks and files now; :meth:`leftovers` reports what is new."""

    def __init__(self) -> None:
        self.children_before = {p.pid for p in live_workers()}
        self.segments_before = our_segments()
        self.files_before = our_temp_files()

    def leftovers(
        self,
        timeout: float = 5.0,
        *,
        ignore_pids: Collection[int] = (),
        ignore_segments: Callable[[], Collection[str]] = set,
    ) -> Leftovers:
        """New children and blocks still there after ``timeout``; the children are ended.

        ``ignore_segments`` is called on each look: blocks that may legitimately
        come and go meanwhile (held by something still alive) are left out.
        """
        skip = self.children_before | set(ignore_pids)
        children = settle(lambda: {p.pid: p for p in live_workers() if p.pid not in skip}, timeout)
        allowed = self.segments_before | process_wide_segments()
        segments = settle(lambda: our_segments() - allowed - set(ignore_segments()), timeout)
        files = settle(lambda: our_temp_files() - self.files_before, timeout)
        for proc in children.values():
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(list(children.values()), timeout=3)
        return Leftovers(sorted(children), sorted(segments), sorted(files))
