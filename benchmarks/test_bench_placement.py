"""Placement: what it costs to put arrays in shared memory, and what readers add.

Run with ``make bench`` (all suites) or, for this file's table (``benchmarks/RESULTS.md``)::

    .venv/bin/python benchmarks/test_bench_placement.py
"""

from __future__ import annotations

import multiprocessing as mp
import pickle
import sys
import time

import numpy as np
import pytest

from shmforest import SharedArray, shared
from shmforest.testing import sample_process_tree

MiB = 1 << 20
SIZES = {"1MiB": MiB, "100MiB": 100 * MiB, "1GiB": 1024 * MiB}


@pytest.mark.parametrize("size", SIZES)
def test_place(benchmark, size):
    """Copy an existing array into a new block (create, reserve pages, copy)."""
    a = np.ones(SIZES[size] // 8)

    def place():
        SharedArray.copy_of(a).close()

    benchmark.pedantic(place, rounds=3 if size == "1GiB" else 10, warmup_rounds=1)


@pytest.mark.parametrize("size", SIZES)
def test_attach_and_read(benchmark, size):
    """Unpickle a handle, map the block, and read every page once."""
    with SharedArray.zeros(SIZES[size] // 8) as sa:
        blob = pickle.dumps(sa.handle)

        def attach_and_read():
            shared._ATTACHED.pop(sa.name, None)  # a fresh attachment each round
            return float(pickle.loads(blob).attach().sum())

        benchmark.pedantic(attach_and_read, rounds=3 if size == "1GiB" else 10, warmup_rounds=1)


def test_handle_pickle_size(benchmark):
    with SharedArray.zeros(SIZES["1GiB"] // 8) as sa:
        size = benchmark(lambda: len(pickle.dumps(sa.handle)))
        benchmark.extra_info["handle_bytes"] = size
        assert size < 1024


# ----------------------------------------------------------------- readers


def _reader(conn) -> None:
    conn.send("ready")
    payload = conn.recv()
    array = payload.array if isinstance(payload, SharedArray) else payload
    conn.send(float(array.sum()))  # touches every page
    conn.recv()  # hold the data until the parent has sampled


def _mem_available() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no MemAvailable in /proc/meminfo")


def readers_footprint(nbytes: int, workers: int, mode: str) -> dict[str, float]:
    """Memory added while ``workers`` spawned processes each read (and hold) an array.

    The baseline is taken with the data placed and the workers started and idle,
    so what is reported is what *reading* adds: with ``shared`` the workers map
    the one block; with ``pickled`` each receives its own copy through a pipe,
    as ``multiprocessing`` does for task arguments.

    Two measures, taken once every reader holds its data: the whole tree's summed
    PSS (a shared page counts once however many map it), and the drop in the
    system's MemAvailable (physical truth, but it sees the whole machine). A PSS
    *peak* sampled while mappings change is not used: processes read a moment
    apart see different sharing counts, and the sum overshoots.
    """
    ctx = mp.get_context("spawn")
    if mode == "shared":
        data = SharedArray.empty(nbytes // 8)
        data.array.fill(1.0)
    else:
        data = np.ones(nbytes // 8)
    procs, conns = [], []
    try:
        for _ in range(workers):
            parent_end, child_end = ctx.Pipe()
            p = ctx.Process(target=_reader, args=(child_end,))
            p.start()
            procs.append(p)
            conns.append(parent_end)
        for c in conns:
            assert c.recv() == "ready"
        time.sleep(0.3)
        before, avail_before = sample_process_tree(), _mem_available()
        t0 = time.perf_counter()
        for c in conns:
            c.send(data)
        sums = [c.recv() for c in conns]
        seconds = time.perf_counter() - t0
        time.sleep(0.3)
        holding, avail_holding = sample_process_tree(), _mem_available()
        assert sums == [nbytes / 8] * workers
        for c in conns:
            c.send("exit")
        for p in procs:
            p.join(30)
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join()
        if isinstance(data, SharedArray):
            data.close()
    return {
        "baseline_pss_mib": before.pss / MiB,
        "holding_pss_mib": holding.pss / MiB,
        "added_mib": (holding.pss - before.pss) / MiB,
        "added_fraction_of_data": (holding.pss - before.pss) / nbytes,
        "mem_available_drop_mib": (avail_before - avail_holding) / MiB,
        "seconds": seconds,
    }


@pytest.mark.parametrize("mode", ["shared", "pickled"])
@pytest.mark.parametrize("workers", [2, 4])
def test_readers_footprint(benchmark, mode, workers):
    result = benchmark.pedantic(readers_footprint, args=(SIZES["1GiB"], workers, mode), rounds=1, iterations=1)
    benchmark.extra_info.update(result)


def main() -> None:
    print(
        "| readers | data path | whole-tree PSS, idle | while reading | added | added / 1 GiB | MemAvailable drop | seconds |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for workers in (2, 4):
        for mode in ("shared", "pickled"):
            r = readers_footprint(SIZES["1GiB"], workers, mode)
            print(
                f"| {workers} | {'SharedArray handle' if mode == 'shared' else 'pickled argument'} "
                f"| {r['baseline_pss_mib']:,.0f} MiB | {r['holding_pss_mib']:,.0f} MiB | {r['added_mib']:,.1f} MiB "
                f"| {100 * r['added_fraction_of_data']:.1f}% | {r['mem_available_drop_mib']:,.0f} MiB | {r['seconds']:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    sys.exit(main())
