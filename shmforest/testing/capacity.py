"""How many cores' worth of work the machine gives right now, to read parallel benchmarks by.

On a shared or virtual machine, ``n`` cores do not always run ``n`` processes at
full speed, and what they give can change from one minute to the next
(``benchmarks/RESULTS.md`` has readings). A parallel speedup measured in a slow
minute says more about the machine than about the code: run
:class:`CapacityProbe` between a benchmark's rounds and report what it saw next
to the speedup.

::

    with CapacityProbe(processes=2) as probe:
        for _ in range(rounds):
            cores = probe.measure()            # about 2.0 on two free cores, 1.0 on one
            bandwidth = probe.measure("memory")
            ... time the serial and the parallel runner ...
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

__all__ = ["CapacityProbe", "KERNELS", "kernel_seconds"]

#: The kernels, by kind: float64 elements in each of their two arrays, and passes
#: per timing. ``compute``: 256 KiB arrays, in any core's L2, about 10 ms;
#: ``memory``: 32 MiB arrays, past a shared L3, so the processes share memory
#: bandwidth, about 15 ms (on current server cores).
KERNELS: dict[str, tuple[int, int]] = {"compute": (32_000, 500), "memory": (4_000_000, 4)}

_ARRAYS: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # made once per process: no page faults timed


def _check_kind(kind: str) -> tuple[int, int]:
    try:
        return KERNELS[kind]
    except (KeyError, TypeError):
        raise ValueError(f"kind must be one of {sorted(KERNELS)}, got {kind!r}") from None


def kernel_seconds(kind: str = "compute", passes: int | None = None) -> float:
    """Time one of :data:`KERNELS`: ``passes`` of three ufuncs over its two arrays."""
    elements, default = _check_kind(kind)
    if elements not in _ARRAYS:
        _ARRAYS[elements] = (np.linspace(0.5, 1.5, elements), np.linspace(1.0, 2.0, elements))
    a, b = _ARRAYS[elements]
    start = time.perf_counter()
    for _ in range(default if passes is None else passes):
        np.multiply(a, b, out=a)
        np.add(a, b, out=a)
        np.multiply(a, 0.25, out=a)  # a stays in (0, 1]: b / (4 - b) is its fixed point
    return time.perf_counter() - start


def _serve() -> None:
    """A helper process (stdin/stdout): on each ``start_at kind passes`` line, wait, run the kernel, print its time."""
    for kind in KERNELS:
        kernel_seconds(kind, 1)  # arrays made, first-call costs out of the way
    print("ready", flush=True)
    for line in sys.stdin:
        start_at, kind, passes = line.split()
        while time.time() < float(start_at):
            pass
        print(repr(kernel_seconds(kind, int(passes))), flush=True)


_HELPER_CODE = "from shmforest.testing.capacity import _serve; _serve()"


class CapacityProbe:
    """Measures, on demand, how many cores' worth of work ``processes`` processes get together.

    Parameters
    ----------
    processes : int, default 2
        Processes run at once, this one included (``processes - 1`` helper
        interpreters are started, and kept until :meth:`close`).

    Notes
    -----
    :meth:`measure` times a kernel alone here (median of three), then in every
    process at once, started together, and returns the sum of each process's
    speed relative to alone: about ``processes`` when the cores (or, for the
    ``"memory"`` kernel, the memory bandwidth) are free, less when they are shared
    with other tenants, siblings of one core, or busy. Each helper holds the
    memory kernel's 64 MiB.
    """

    def __init__(self, processes: int = 2) -> None:
        if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
            raise ValueError(f"processes must be a positive int, got {processes!r}")
        self.processes = processes
        self._closed = False
        # A plain interpreter per helper, not multiprocessing: nothing of the
        # caller's main module is run again in it.
        self._helpers: list[subprocess.Popen[str]] = []
        # This package's parent first on the helper's path: the same shmforest,
        # installed or not.
        root = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
        try:
            for _ in range(processes - 1):
                self._helpers.append(
                    subprocess.Popen(
                        [sys.executable, "-c", _HELPER_CODE],
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        text=True,
                        env=env,
                    )
                )
            for helper in self._helpers:
                if helper.stdout is None or helper.stdout.readline().strip() != "ready":
                    raise RuntimeError(f"a capacity-probe helper failed to start (exit code {helper.poll()})")
        except BaseException:
            self.close()
            raise
        for kind in KERNELS:
            kernel_seconds(kind, 1)

    def measure(self, kind: str = "compute", passes: int | None = None) -> float:
        """Cores' worth of work the processes did together just now (1.0: one core's).

        Parameters
        ----------
        kind : {"compute", "memory"}, default "compute"
            Which of :data:`KERNELS` to run: ``"memory"`` tells whether the
            processes share memory bandwidth, as array-heavy work such as growing
            a tree's top levels does.
        passes : int, optional
            Kernel passes per timing (default: the kernel's, 10 to 15 ms of work).
        """
        if self._closed:
            raise RuntimeError("this CapacityProbe is closed")
        _check_kind(kind)
        if passes is not None and (isinstance(passes, bool) or not isinstance(passes, int) or passes < 1):
            raise ValueError(f"passes must be a positive int or None, got {passes!r}")
        passes = KERNELS[kind][1] if passes is None else passes
        alone = statistics.median(kernel_seconds(kind, passes) for _ in range(3))
        start_at = time.time() + 0.02  # time for every helper to read the line first
        for helper in self._helpers:
            try:
                assert helper.stdin is not None  # started with stdin=PIPE
                helper.stdin.write(f"{start_at!r} {kind} {passes}\n")
                helper.stdin.flush()
            except OSError as exc:  # BrokenPipeError: it is gone
                raise RuntimeError(f"a capacity-probe helper exited (exit code {helper.poll()})") from exc
        while time.time() < start_at:
            pass
        mine = kernel_seconds(kind, passes)
        theirs = [self._read_time(helper) for helper in self._helpers]
        return sum(alone / t for t in [mine, *theirs])

    @staticmethod
    def _read_time(helper: subprocess.Popen[str]) -> float:
        line = helper.stdout.readline() if helper.stdout is not None else ""
        if not line:
            raise RuntimeError(f"a capacity-probe helper exited (exit code {helper.poll()})")
        return float(line)

    def close(self) -> None:
        """Stop the helper processes and wait for them."""
        self._closed = True
        for helper in self._helpers:
            try:
                if helper.stdin is not None:
                    helper.stdin.close()  # end of input: the helper returns
            except OSError:
                pass
        for helper in self._helpers:
            try:
                helper.wait(5)
            except subprocess.TimeoutExpired:
                helper.kill()
                helper.wait()
            if helper.stdout is not None:
                helper.stdout.close()
        self._helpers = []

    def __enter__(self) -> CapacityProbe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
