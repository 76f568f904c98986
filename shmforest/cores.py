"""How many cores this process may really use: its CPU affinity, capped by a cgroup
CPU quota (v2 ``cpu.max`` or v1 ``cfs_quota_us``), as loky's ``cpu_count`` does.

The default process budget is this many tokens.
"""

from __future__ import annotations

import math
import os

__all__ = ["usable_cores"]


def usable_cores() -> tuple[int, str]:
    """How many cores this process may use, and which limit decided it.

    Takes the smallest of the CPU affinity mask and a cgroup (v2 or v1) CPU quota,
    rounded up; a quota of 1.5 cores gives 2.

    Returns
    -------
    count : int
        At least 1.
    source : str
        ``"affinity"``, ``"cgroup v2 quota"``, ``"cgroup v1 quota"`` or
        ``"os.cpu_count"``.
    """
    try:
        count, source = len(os.sched_getaffinity(0)), "affinity"
    except (AttributeError, OSError):  # pragma: no cover - macOS
        count, source = os.cpu_count() or 1, "os.cpu_count"
    quota = _cgroup_cpu_quota()
    if quota is not None and math.ceil(quota[0]) < count:
        count, source = math.ceil(quota[0]), quota[1]
    return max(1, count), source


def _cgroup_cpu_quota(root: str = "/sys/fs/cgroup", proc_cgroup: str = "/proc/self/cgroup") -> tuple[float, str] | None:
    """The tightest CPU quota (in cores) of this process's cgroups, or None if unlimited."""
    try:
        with open(proc_cgroup) as f:
            lines = f.read().splitlines()
    except OSError:
        lines = []
    v2_path, v1_path = "/", "/"
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[0] == "0" and parts[1] == "":
            v2_path = parts[2]
        elif "cpu" in parts[1].split(","):
            v1_path = parts[2]
    best: tuple[float, str] | None = None
    for directory in _ancestors(root, v2_path) + _ancestors(os.path.join(root, "unified"), v2_path):
        limit = _read_cpu_max(os.path.join(directory, "cpu.max"))
        if limit is not None and (best is None or limit < best[0]):
            best = (limit, "cgroup v2 quota")
    for controller in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
        for directory in _ancestors(os.path.join(root, controller), v1_path):
            limit = _read_cfs_quota(directory)
            if limit is not None and (best is None or limit < best[0]):
                best = (limit, "cgroup v1 quota")
    return best


def _ancestors(mount: str, path: str) -> list[str]:
    """``mount/path`` and each directory above it up to ``mount`` (inside a container the
    process's own cgroup is often the mount's root)."""
    parts = [p for p in path.split("/") if p and p != ".."]
    return [os.path.join(mount, *parts[:i]) for i in range(len(parts), -1, -1)]


def _read_cpu_max(path: str) -> float | None:
    try:
        with open(path) as f:
            quota, _, period = f.read().strip().partition(" ")
    except OSError:
        return None
    if quota == "max" or not period:
        return None
    try:
        return max(int(quota) / int(period), 0.01)
    except (ValueError, ZeroDivisionError):
        return None


def _read_cfs_quota(directory: str) -> float | None:
    try:
        with open(os.path.join(directory, "cpu.cfs_quota_us")) as f:
            quota = int(f.read().strip())
        with open(os.path.join(directory, "cpu.cfs_period_us")) as f:
            period = int(f.read().strip())
    except (OSError, ValueError):
        return None
    if quota <= 0 or period <= 0:
        return None
    return max(quota / period, 0.01)
