"""LeakCheck: the mechanism behind every leak guard and the conformance kit's leak test."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import psutil

from shmforest import SharedArray
from shmforest.testing.leaks import LeakCheck


def test_nothing_new_means_no_leftovers():
    check = LeakCheck()
    with SharedArray.zeros(4):
        pass
    left = check.leftovers(timeout=0.5)
    assert not left and left.describe() == ""


def test_a_new_child_is_reported_and_ended():
    check = LeakCheck()
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        left = check.leftovers(timeout=0.2)
        assert left.processes == [proc.pid]
        assert "child processes left running" in left.describe()
        assert proc.wait(timeout=5) is not None  # ended by the check
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_new_block_is_reported_but_not_removed():
    check = LeakCheck()
    block = SharedArray.copy_of(np.ones(3))
    try:
        left = check.leftovers(timeout=0.2)
        assert left.segments == [block.name]
        assert block.array.sum() == 3.0  # /dev/shm is machine-wide: reported, never unlinked
    finally:
        block.close()


def test_ignored_pids_and_blocks_are_left_out():
    check = LeakCheck()
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    block = SharedArray.zeros(2)
    try:
        left = check.leftovers(timeout=0.2, ignore_pids={proc.pid}, ignore_segments=lambda: {block.name})
        assert not left
        assert psutil.pid_exists(proc.pid) and proc.poll() is None
    finally:
        proc.kill()
        proc.wait()
        block.close()
