"""The demo behind ``make demo`` and ``python -m shmforest demo``."""

from __future__ import annotations

import multiprocessing as mp
import time

import numpy as np

import shmforest
from shmforest.shared import SharedArray
from shmforest.testing.monitor import sample_tree

__all__ = ["run_shared_demo"]

MiB = 1 << 20


def _read_and_sum(conn) -> None:
    payload = conn.recv()
    array = payload.array if isinstance(payload, SharedArray) else payload
    conn.send(float(array.sum()))
    conn.recv()


def _readers(data: object, workers: int) -> tuple[float, int]:
    """Send ``data`` to ``workers`` spawned readers; seconds taken and tree PSS added."""
    ctx = mp.get_context("spawn")
    pairs = [ctx.Pipe() for _ in range(workers)]
    procs = [ctx.Process(target=_read_and_sum, args=(child,)) for _, child in pairs]
    for p in procs:
        p.start()
    try:
        time.sleep(0.5)  # let interpreters settle so the baseline is theirs, not the data's
        before = sample_tree().pss
        t0 = time.perf_counter()
        for parent, _ in pairs:
            parent.send(data)
        for parent, _ in pairs:
            if not parent.poll(120):
                raise RuntimeError("a reader process did not answer within 120 s")
            parent.recv()
        seconds = time.perf_counter() - t0
        added = sample_tree().pss - before
        for parent, _ in pairs:
            parent.send("exit")
    finally:
        for p in procs:
            p.join(10)
            if p.is_alive():
                p.kill()
                p.join()
    return seconds, added


def run_shared_demo(size_mib: int, workers: int) -> int:
    """Show what placing data once buys: readers of one block versus pickled copies."""
    nbytes = size_mib * MiB
    print(f"shmforest {shmforest.__version__}: {workers} worker processes each read a {size_mib} MiB array\n")
    rows = []
    with SharedArray.empty(nbytes // 8) as shared_copy:
        shared_copy.array.fill(1.0)
        rows.append(("SharedArray handle", *_readers(shared_copy, workers)))
    rows.append(("pickled argument", *_readers(np.ones(nbytes // 8), workers)))
    print(f"{'data path':<20} {'seconds':>8} {'memory added':>14}")
    for name, seconds, added in rows:
        print(f"{name:<20} {seconds:>8.2f} {added / MiB:>11.1f} MiB")
    return 0
