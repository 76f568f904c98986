"""Sample the memory and process count of a process tree while work runs.

A *process* tree: this process and all its descendants (not a decision tree). Used
by the benchmarks and the demo to report "peak whole-tree memory" and "peak live
processes". Memory is summed over the tree:

``pss``
    Proportional set size: a page shared by k processes counts 1/k in each, so
    the sum counts a shared-memory block once. This is the tree's real footprint.
``uss``
    Unique set size: pages private to one process. Shared blocks mapped by
    several processes do not appear here at all.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import psutil

__all__ = ["ProcessTreeMonitor", "ProcessTreeSample", "live_workers", "sample_process_tree"]


@dataclass(frozen=True)
class ProcessTreeSample:
    """One reading of the process tree (not a decision tree)."""

    pss: int
    uss: int
    processes: int  # live descendants that are not multiprocessing helpers


def _mem_available() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:  # pragma: no cover - not Linux
        return None
    return None


def _cmdline(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline())
    except psutil.Error:
        return ""


def is_multiprocessing_helper(proc: psutil.Process) -> bool:
    """Whether ``proc`` is one of multiprocessing's own long-lived helpers, not a worker.

    The resource tracker, and the forkserver itself. Workers forked *from* a
    forkserver inherit its command line, so they are told apart by their parent.
    """
    cmdline = _cmdline(proc)
    if "resource_tracker" in cmdline or "semaphore_tracker" in cmdline:
        return True
    if "forkserver" in cmdline:
        try:
            parent = proc.parent()
        except psutil.Error:
            return True
        return parent is None or "forkserver" not in _cmdline(parent)
    return False


def live_workers(root: psutil.Process | None = None) -> list[psutil.Process]:
    """Live descendants of ``root`` (default: this process), multiprocessing's helpers left out."""
    root = root or psutil.Process()
    out: list[psutil.Process] = []
    try:
        children = root.children(recursive=True)
    except psutil.Error:
        return out
    for proc in children:
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
        except psutil.Error:
            continue
        if not is_multiprocessing_helper(proc):
            out.append(proc)
    return out


def sample_process_tree(root: psutil.Process | None = None) -> ProcessTreeSample:
    """Read PSS, USS and the worker count of ``root`` (default: this process) and its descendants."""
    root = root or psutil.Process()
    pss = uss = workers = 0
    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        procs = [root]
    for proc in procs:
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
            info = proc.memory_full_info()
        except psutil.Error:
            continue
        pss += getattr(info, "pss", info.uss)
        uss += info.uss
        if proc is not root and not is_multiprocessing_helper(proc):
            workers += 1
    return ProcessTreeSample(pss, uss, workers)


@dataclass
class ProcessTreeMonitor:
    """Samples the process tree in a background thread; use as a context manager.

    Examples
    --------
    >>> with ProcessTreeMonitor(interval=0.02) as mon:
    ...     _ = sum(range(1000))
    >>> mon.peak_pss >= mon.baseline.pss > 0
    True
    """

    interval: float = 0.02
    baseline: ProcessTreeSample = field(init=False)
    peak_pss: int = field(init=False, default=0)
    peak_uss: int = field(init=False, default=0)
    peak_processes: int = field(init=False, default=0)
    #: The largest drop in the machine's MemAvailable since entry: physical truth,
    #: but it sees every process on the machine, not only this tree.
    peak_system_drop: int = field(init=False, default=0)
    samples: int = field(init=False, default=0)
    _avail0: int = field(init=False, default=0)
    _stop: threading.Event = field(init=False, default_factory=threading.Event)
    _thread: threading.Thread | None = field(init=False, default=None)

    def _record(self, s: ProcessTreeSample) -> None:
        avail = _mem_available()
        if avail is not None:
            self.peak_system_drop = max(self.peak_system_drop, self._avail0 - avail)
        self.peak_pss = max(self.peak_pss, s.pss)
        self.peak_uss = max(self.peak_uss, s.uss)
        self.peak_processes = max(self.peak_processes, s.processes)
        self.samples += 1

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._record(sample_process_tree())

    def __enter__(self) -> ProcessTreeMonitor:
        self.baseline = sample_process_tree()
        self._avail0 = _mem_available() or 0
        self._record(self.baseline)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="shmforest-monitor", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._record(sample_process_tree())

    @property
    def added_pss(self) -> int:
        """Peak whole-tree PSS above the baseline taken on entry."""
        return self.peak_pss - self.baseline.pss
