"""shm: arrays in task arguments are placed once, by identity, and travel as handles."""

from __future__ import annotations

import gc
import os

import numpy as np
import pytest

from shmforest import shared
from shmforest.budget import ProcessBudget
from shmforest.executors import get_executor


def _our_segments() -> set[str]:
    return {n for n in os.listdir("/dev/shm") if n.startswith(shared.SEGMENT_PREFIX) and "budget" not in n}


def row_total(a: np.ndarray, i: int) -> float:
    return float(a[i].sum())


def is_read_only_view(a: np.ndarray) -> bool:
    return not a.flags.writeable


def total(payload: dict) -> float:
    return float(payload["X"].sum() + sum(v.sum() for v in payload["parts"]) + payload["t"][0].sum())


@pytest.fixture
def shm():
    with ProcessBudget(2, inherit=False) as budget:
        ex = get_executor("shm", budget=budget)
        yield ex
        ex.shutdown()


def test_one_array_passed_to_a_thousand_tasks_is_copied_once(shm, monkeypatch):
    copies = []
    real = shared.SharedArray.copy_of.__func__

    def counting(cls, array):
        copies.append(array.nbytes)
        return real(cls, array)

    monkeypatch.setattr(shared.SharedArray, "copy_of", classmethod(counting))
    a = np.random.default_rng(0).random((1000, 100))  # 800 kB
    results = list(shm.map(row_total, [a] * 1000, range(1000)))
    np.testing.assert_allclose(results, a.sum(axis=1))
    assert copies == [a.nbytes]
    assert shm.placed_bytes == a.nbytes


def test_arrays_inside_dicts_lists_and_tuples_are_placed(shm):
    before = _our_segments()
    X = np.ones((500, 100))
    payload = {"X": X, "parts": [np.full(20_000, 2.0), np.full(20_000, 3.0)], "t": (np.ones(10_000),)}
    assert shm.submit(total, payload).result() == 50_000 + 40_000 + 60_000 + 10_000
    assert len(_our_segments() - before) == 4
    assert shm.placed_bytes == sum(a.nbytes for a in (X, *payload["parts"], payload["t"][0]))


def test_small_arrays_travel_pickled(shm):
    assert shm.submit(row_total, np.ones((3, 3)), 0).result() == 3.0
    assert shm.placed_bytes == 0


def test_tasks_see_read_only_views(shm):
    assert shm.submit(is_read_only_view, np.ones(100_000)).result() is True


def test_a_temporary_view_lives_until_its_task_is_done(shm):
    a = np.ones(100_000)
    assert shm.submit(row_total, a[None, :], 0).result() == 100_000.0  # the view dies at once


def test_a_dropped_array_releases_its_block(shm):
    a = np.ones((1, 100_000))
    shm.submit(row_total, a, 0).result()
    before = _our_segments()
    assert before
    del a
    gc.collect()
    assert shm.placed_bytes == 0
    assert not (_our_segments() & before)


def test_shutdown_releases_every_block():
    before = _our_segments()
    with ProcessBudget(2, inherit=False) as budget:
        with get_executor("shm", budget=budget) as ex:
            keep = np.ones((100, 1000))
            ex.submit(row_total, keep, 0).result()
            assert _our_segments() - before
        assert not (_our_segments() - before)


def test_min_bytes_is_validated():
    with pytest.raises(ValueError, match="min_bytes"):
        get_executor("shm", min_bytes=-1)
