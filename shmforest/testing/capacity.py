"""How many cores' worth of work the machine gives right now, to read parallel benchmarks by.

On a shared or virtual machine, ``n`` cores do not always run ``n`` processes at
full speed. On this project's 2-vCPU machines a small compute kernel (its arrays
in L2) ran 2.1x slower in each of two processes at once than alone in one
minute, and no slower in the next (one-off runs, 2026-12-02). A parallel speedup
measured in such a minute says more about the machine than about the code: run
:class:`CapacityProbe` between a benchmark's rounds and report what it saw next
to the speedup.

::

    with CapacityProbe(processes=2) as probe:
        for _ in range(rounds):
            capacity.append(probe.measure())   # about 2.0 on two free cores, 1.0 on one
            ... time the serial and the parallel runner ...
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

import numpy as np

__all__ = ["CapacityProbe", "kernel_seconds"]

#: Float64 elements per kernel array: two arrays of 256 KiB, in any core's L2.
_KERNEL_ELEMENTS = 32_000
#: Passes of the kernel per timing: about 10 ms on a 2026 server core.
_KERNEL_PASSES = 500


def kernel_seconds(passes: int = _KERNEL_PASSES) -> float:
    """Time a fixed compute-bound numpy kernel: ``passes`` of three ufuncs over L2-resident arrays."""
    a = np.linspace(0.5, 1.5, _KERNEL_ELEMENTS)
    b = np.linspace(1.0, 2.0, _KERNEL_ELEMENTS)
    start = time.perf_counter()
    for _ in range(passes):
        np.multiply(a, b, out=a)
        np.add(a, b, out=a)
        np.multiply(a, 0.25, out=a)
    return time.perf_counter() - start


def _serve() -> None:
    """A helper process (stdin/stdout): on each ``start_at passes`` line, wait, run the kernel, print its time."""
    kernel_seconds(50)  # first-call costs out of the way
    print("ready", flush=True)
    for line in sys.stdin:
        start_at, passes = line.split()
        while time.time() < float(start_at):
            pass
        print(repr(kernel_seconds(int(passes))), flush=True)


_HELPER_CODE = "from shmforest.testing.capacity import _serve; _serve()"


class CapacityProbe:
    """Measures, on demand, how many cores' worth of work ``processes`` processes get together.

    Parameters
    ----------
    processes : int, default 2
        Processes run at once, this one included (``processes - 1`` helper
        interpreters are started, and kept until :meth:`close`).
    passes : int, optional
        Kernel passes per timing (default about 10 ms of work).

    Notes
    -----
    :meth:`measure` times the kernel alone here (median of three), then in every
    process at once, started together, and returns the sum of each process's
    speed relative to alone: about ``processes`` when the cores are free, less
    when they are shared with other tenants, siblings of one core, or busy.
    """

    def __init__(self, processes: int = 2, *, passes: int = _KERNEL_PASSES) -> None:
        if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
            raise ValueError(f"processes must be a positive int, got {processes!r}")
        if isinstance(passes, bool) or not isinstance(passes, int) or passes < 1:
            raise ValueError(f"passes must be a positive int, got {passes!r}")
        self.processes, self.passes = processes, passes
        self._closed = False
        # A plain interpreter per helper, not multiprocessing: nothing of the
        # caller's main module is run again in it.
        self._helpers: list[subprocess.Popen[str]] = []
        try:
            for _ in range(processes - 1):
                self._helpers.append(subprocess.Popen(
                    [sys.executable, "-c", _HELPER_CODE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                ))
            for helper in self._helpers:
                if helper.stdout is None or helper.stdout.readline().strip() != "ready":
                    raise RuntimeError(f"a capacity-probe helper failed to start (exit code {helper.poll()})")
        except BaseException:
            self.close()
            raise
        kernel_seconds(50)

    def measure(self) -> float:
        """Cores' worth of work the processes did together just now (1.0: one core's)."""
        if self._closed:
            raise RuntimeError("this CapacityProbe is closed")
        alone = statistics.median(kernel_seconds(self.passes) for _ in range(3))
        start_at = time.time() + 0.02  # time for every helper to read the line first
        for helper in self._helpers:
            helper.stdin.write(f"{start_at!r} {self.passes}\n")  # type: ignore[union-attr]
            helper.stdin.flush()  # type: ignore[union-attr]
        while time.time() < start_at:
            pass
        mine = kernel_seconds(self.passes)
        theirs = [float(helper.stdout.readline()) for helper in self._helpers]  # type: ignore[union-attr]
        return sum(alone / t for t in [mine, *theirs])

    def close(self) -> None:
        """Stop the helper processes and wait for them."""
        self._closed = True
        for helper in self._helpers:
            try:
                helper.stdin.close()  # type: ignore[union-attr]  # end of input: the helper returns
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
