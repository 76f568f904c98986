"""Test-wide guards: no test may leave a shared-memory block of ours or a child process behind."""

from __future__ import annotations

import os
import time

import psutil
import pytest

from shmforest.shared import SEGMENT_PREFIX
from shmforest.testing.monitor import live_workers

_SHM_DIR = "/dev/shm"


def _our_segments() -> set[str]:
    try:
        return {n for n in os.listdir(_SHM_DIR) if n.startswith(SEGMENT_PREFIX)}
    except FileNotFoundError:  # pragma: no cover - no /dev/shm
        return set()


def _process_wide_segments() -> set[str]:
    """Blocks that live as long as the test process by design (the default budget)."""
    try:
        from shmforest import budget
    except ImportError:
        return set()
    name = getattr(budget, "default_budget_segment", lambda: None)()
    return {name} if name else set()


def _live_children() -> dict[int, psutil.Process]:
    # multiprocessing's resource tracker and forkserver live as long as the test process.
    return {p.pid: p for p in live_workers()}


def _settle(check, timeout: float = 5.0):
    """Processes and blocks released at shutdown take a moment to go; wait, then report."""
    deadline = time.monotonic() + timeout
    left = check()
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = check()
    return left


@pytest.fixture(autouse=True)
def no_leaks(request):
    """Fail any test that leaves a ``shmf_`` block or a child process behind."""
    segments_before = _our_segments()
    children_before = set(_live_children())
    yield
    if request.node.get_closest_marker("allow_leaks"):
        return
    left_children = _settle(lambda: {p: c for p, c in _live_children().items() if p not in children_before})
    allowed = segments_before | _process_wide_segments()
    left_segments = _settle(lambda: _our_segments() - allowed)
    # End leftover descendants so one failure does not cascade into later tests.
    # Blocks are reported but not removed: /dev/shm is machine-wide and a block
    # that appeared during this test may belong to another test run; ours are
    # swept by the resource tracker when this process exits, and later tests
    # compare against their own snapshot, so nothing cascades.
    for proc in left_children.values():
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(list(left_children.values()), timeout=3)
    problems = []
    if left_children:
        problems.append(f"child processes left running: {sorted(left_children)}")
    if left_segments:
        problems.append(f"shared-memory blocks left in {_SHM_DIR}: {sorted(left_segments)}")
    if problems:
        pytest.fail("test leaked resources: " + "; ".join(problems), pytrace=False)


def pytest_configure(config):
    config.addinivalue_line("markers", "allow_leaks: the test checks leak handling itself")
