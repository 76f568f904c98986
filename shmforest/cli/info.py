"""``python -m shmforest info``: the version, the cores and budget work will get, every executor found."""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys

import numpy as np

import shmforest

__all__ = ["command"]


def command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Print the version, usable cores, budget, start method and executors; exit status 0."""
    from shmforest.budget import ENV_VAR, default_budget
    from shmforest.cores import usable_cores
    from shmforest.executors import available_executors
    from shmforest.pool import default_start_method

    cores, how = usable_cores()
    budget = default_budget()
    inherited = "inherited from " + ENV_VAR if budget.name == os.environ.get(ENV_VAR) else "this process's default"
    override = os.environ.get("SHMFOREST_MAX_WORKERS")
    print(f"shmforest {shmforest.__version__} (python {sys.version.split()[0]}, numpy {np.__version__})")
    print(f"usable cores: {cores} ({how})")
    print(f"budget: {budget.size} workers, {inherited}" + (f"; SHMFOREST_MAX_WORKERS={override}" if override else ""))
    print(f"start method: {default_start_method()} (available: {', '.join(mp.get_all_start_methods())})")
    print("executors:")
    for name, source in available_executors().items():
        print(f"  {name:<10} {source}")
    return 0
