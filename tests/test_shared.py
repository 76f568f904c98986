"""SharedArray and SharedDataset: placement, attachment, lifecycle, bad input."""

from __future__ import annotations

import gc
import multiprocessing as mp
import os
import pickle
import signal
import stat
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from shmforest import SharedArray, SharedDataset, shared
from shmforest.errors import SegmentNotFoundError, SharedArrayClosedError, SharedMemoryFullError, ShmforestError

START_METHODS = mp.get_all_start_methods()


def _exists(name: str) -> bool:
    return os.path.exists(f"/dev/shm/{name}")


def _wait_gone(name: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _exists(name) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not _exists(name)


# ----------------------------------------------------------------- placement


DTYPES = [
    np.bool_,
    np.int8,
    np.uint8,
    np.int16,
    np.uint16,
    np.int32,
    np.uint32,
    np.int64,
    np.uint64,
    np.float16,
    np.float32,
    np.float64,
    np.complex64,
    np.complex128,
]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_copy_of_round_trips_every_numeric_dtype(dtype):
    rng = np.random.default_rng(0)
    a = (rng.random((7, 5)) * 100).astype(dtype)
    with SharedArray.copy_of(a) as sa:
        back = pickle.loads(pickle.dumps(sa)).array
        assert back.dtype == a.dtype
        np.testing.assert_array_equal(back, a)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: np.arange(24.0).reshape(4, 6), id="C"),
        pytest.param(lambda: np.asfortranarray(np.arange(24.0).reshape(4, 6)), id="F"),
        pytest.param(lambda: np.arange(48.0).reshape(8, 6)[::2, ::3], id="strided-view"),
        pytest.param(lambda: np.arange(24.0).reshape(4, 6).T, id="transposed"),
        pytest.param(lambda: np.array(3.5), id="0-d"),
        pytest.param(lambda: np.empty((0, 3)), id="empty"),
        pytest.param(lambda: np.empty(0, dtype=np.int32), id="empty-1d"),
    ],
)
def test_layouts_are_placed_and_read_back(make):
    a = make()
    with SharedArray.copy_of(a) as sa:
        view = pickle.loads(pickle.dumps(sa)).array
        assert view.shape == a.shape
        np.testing.assert_array_equal(view, a)
        assert view.flags.c_contiguous or view.flags.f_contiguous


def test_fortran_order_is_kept():
    a = np.asfortranarray(np.ones((3, 4)))
    with SharedArray.copy_of(a) as sa:
        assert sa.array.flags.f_contiguous and not sa.array.flags.c_contiguous


def test_handle_pickle_is_small_whatever_the_size():
    with SharedArray.zeros((4096, 4096)) as big, SharedArray.zeros(3) as small:  # 128 MiB and 24 bytes
        big_size, small_size = len(pickle.dumps(big.handle)), len(pickle.dumps(small.handle))
        assert big_size < 1024
        assert len(pickle.dumps(big)) < 1024
        assert abs(big_size - small_size) <= 8  # only the digits of the shape differ


def test_empty_and_zeros_give_writable_owner_views():
    with SharedArray.zeros((3, 2), dtype=np.int32) as z, SharedArray.empty(5, np.float32) as e:
        assert z.array.dtype == np.int32 and not z.array.any()
        z.array[1, 1] = 7
        e.array[:] = 2
        assert pickle.loads(pickle.dumps(z)).array[1, 1] == 7
        assert e.array.sum() == 10


def test_constructor_is_copy_of():
    with SharedArray(np.arange(4)) as sa:
        assert sa.owner and sa.array.tolist() == [0, 1, 2, 3]


def test_attached_views_are_read_only_unless_asked():
    with SharedArray.copy_of(np.zeros(4)) as sa:
        ro = sa.handle.attach()
        with pytest.raises(ValueError, match="read-only"):
            ro[0] = 1.0
        rw = sa.handle.attach(writable=True)
        rw[0] = 5.0
        assert sa.array[0] == 5.0


def test_attachment_is_cached_per_process():
    with SharedArray.copy_of(np.ones(10)) as sa:
        attached = pickle.loads(pickle.dumps(sa))
        first = attached.handle.attach()
        second = attached.handle.attach()
        assert np.shares_memory(first, second)
        # One mapping per segment, not one per attach.
        assert sum(1 for n in shared._ATTACHED if n == sa.name) <= 1


def test_names_are_prefixed_unguessable_and_private():
    with SharedArray.zeros(1) as a, SharedArray.zeros(1) as b:
        for sa in (a, b):
            assert sa.name.startswith("shmf_") and len(sa.name) >= len("shmf_") + 24
            assert stat.S_IMODE(os.stat(f"/dev/shm/{sa.name}").st_mode) == 0o600
        assert a.name != b.name


# ----------------------------------------------------------------- other processes


def _child_sum(sa, queue):
    queue.put(float(sa.array.sum()))


def _child_write(handle):
    handle.attach(writable=True)[0] = 42.0


@pytest.mark.parametrize("method", START_METHODS)
def test_other_processes_read_and_write_without_copy(method):
    ctx = mp.get_context(method)
    with SharedArray.copy_of(np.arange(1000.0)) as sa:
        queue = ctx.Queue()
        p = ctx.Process(target=_child_sum, args=(sa, queue))
        p.start()
        assert queue.get(timeout=60) == float(np.arange(1000.0).sum())
        p.join(30)
        w = ctx.Process(target=_child_write, args=(sa.handle,))
        w.start()
        w.join(30)
        assert w.exitcode == 0
        assert sa.array[0] == 42.0  # the child wrote into the same block
        assert _exists(sa.name)  # a process that only attached never unlinks


_ATTACH_SCRIPT = textwrap.dedent(
    """
    import pickle, sys
    import multiprocessing as mp
    handle = pickle.loads(bytes.fromhex(sys.argv[1]))
    mp.set_start_method(sys.argv[2])
    from multiprocessing import resource_tracker
    resource_tracker.ensure_running()  # a tracker of its own, as a worker would have
    print(float(handle.attach().sum()))
    """
)


@pytest.mark.parametrize("method", START_METHODS)
def test_attaching_process_never_unlinks_nor_warns(method):
    with SharedArray.copy_of(np.ones(100)) as sa:
        proc = subprocess.run(
            [sys.executable, "-c", _ATTACH_SCRIPT, pickle.dumps(sa.handle).hex(), method],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == "100.0"
        assert "leaked" not in proc.stderr and "resource_tracker" not in proc.stderr
        assert _exists(sa.name)


def _forked_child_exits(sa):
    _ = sa.array.sum()


def test_forked_child_inheriting_an_owner_does_not_unlink():
    if "fork" not in START_METHODS:
        pytest.skip("fork is not available on this platform")
    ctx = mp.get_context("fork")
    with SharedArray.copy_of(np.ones(10)) as sa:
        p = ctx.Process(target=_forked_child_exits, args=(sa,))
        p.start()
        p.join(30)
        assert p.exitcode == 0
        assert _exists(sa.name)


# ----------------------------------------------------------------- lifecycle


def test_close_unlinks_and_twice_is_fine():
    sa = SharedArray.copy_of(np.ones(3))
    name = sa.name
    sa.close()
    assert not _exists(name)
    sa.close()
    assert sa.closed


def test_with_block_unlinks():
    with SharedArray.zeros(4) as sa:
        name = sa.name
        assert _exists(name)
    assert not _exists(name)


def test_use_after_close_raises_clearly():
    sa = SharedArray.copy_of(np.ones(3))
    sa.close()
    with pytest.raises(SharedArrayClosedError, match=sa.name):
        _ = sa.array
    with pytest.raises(ValueError):  # SharedArrayClosedError is also a ValueError
        pickle.dumps(sa)


def test_views_taken_before_close_stay_readable():
    sa = SharedArray.copy_of(np.arange(5.0))
    view = sa.array
    sa.close()
    assert view.sum() == 10.0


def test_dropping_an_owner_frees_its_block():
    sa = SharedArray.copy_of(np.ones(3))
    name = sa.name
    del sa
    gc.collect()
    assert not _exists(name)


def test_attaching_a_removed_block_raises_file_not_found_naming_it():
    sa = SharedArray.copy_of(np.ones(3))
    handle = sa.handle
    sa.close()
    with pytest.raises(SegmentNotFoundError, match=handle.segment) as info:
        handle.attach()
    assert isinstance(info.value, FileNotFoundError)
    assert isinstance(info.value, ShmforestError)


_OWNER_SCRIPT = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from shmforest import SharedArray, SharedDataset
    sa = SharedArray.copy_of(np.ones(1000))
    ds = SharedDataset(X=np.zeros((10, 3)))
    print(sa.name, ds.handles["X"].segment, flush=True)
    sys.stdin.readline()  # wait until the test has seen the blocks
    if sys.argv[1] == "exit":
        sys.exit(0)
    time.sleep(120)
    """
)


def _start_owner(mode: str) -> tuple[subprocess.Popen, list[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _OWNER_SCRIPT, mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    names = proc.stdout.readline().split()
    assert len(names) == 2 and all(_exists(n) for n in names), proc.stderr.read() if proc.poll() is not None else ""
    proc.stdin.write("go\n")
    proc.stdin.close()
    return proc, names


@pytest.mark.parametrize("how", ["exit", "SIGTERM", "SIGKILL"])
def test_blocks_do_not_outlive_their_owner(how):
    proc, names = _start_owner("exit" if how == "exit" else "sleep")
    try:
        if how != "exit":
            time.sleep(0.2)  # let it reach its sleep, past the readline
            proc.send_signal(getattr(signal, how))
        proc.wait(timeout=30)
        # SIGKILL gives the owner no chance: its resource tracker sweeps once the owner's end of its pipe closes.
        assert all(_wait_gone(n, timeout=10) for n in names), f"{how}: blocks survived their owner"
        if how == "SIGTERM":
            assert proc.returncode == -signal.SIGTERM  # died of the signal, after cleaning up
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


# ----------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "bad, fragment",
    [
        (np.array([object(), 1], dtype=object), "object"),
        (np.array(["a", "bc"]), "<U2"),
        (np.array([b"x"]), "|S1"),
        (np.zeros(2, dtype=[("a", "i4"), ("b", "f8")]), "a"),
    ],
    ids=["object", "unicode", "bytes", "structured"],
)
def test_non_numeric_dtypes_raise_type_error_naming_the_dtype(bad, fragment):
    before = set(shared.owned_segments())
    with pytest.raises(TypeError, match="dtype") as info:
        SharedArray.copy_of(bad)
    assert fragment in str(info.value)
    assert set(shared.owned_segments()) == before


def test_empty_rejects_non_numeric_dtype_and_bad_shape():
    with pytest.raises(TypeError, match="dtype"):
        SharedArray.empty(3, dtype=object)
    with pytest.raises(ValueError, match="shape"):
        SharedArray.empty((-1, 2))
    with pytest.raises(ValueError, match="order"):
        SharedArray.empty(3, order="K")


def test_block_larger_than_free_shared_memory_fails_before_writing():
    before = set(os.listdir("/dev/shm"))
    with pytest.raises(SharedMemoryFullError, match="/dev/shm") as info:
        SharedArray.empty((1 << 50,), np.uint8)  # a petabyte
    assert isinstance(info.value, MemoryError)
    assert set(os.listdir("/dev/shm")) == before


def test_fallocate_failure_is_reported_not_a_sigbus(monkeypatch):
    # Free space can vanish between the check and the allocation; fallocate catches that.
    monkeypatch.setattr(shared, "_free_shm_bytes", lambda: None)
    before = set(os.listdir("/dev/shm"))
    with pytest.raises(SharedMemoryFullError):
        SharedArray.empty((1 << 50,), np.uint8)
    assert set(os.listdir("/dev/shm")) == before


# ----------------------------------------------------------------- datasets


def test_dataset_places_a_named_group_and_pickles_as_handles():
    X = np.random.default_rng(0).random((100, 4))
    y = np.arange(100)
    with SharedDataset({"X": X}, y=y) as ds:
        assert sorted(ds) == ["X", "y"] and len(ds) == 2 and "X" in ds
        np.testing.assert_array_equal(ds["X"], X)
        assert len({h.segment for h in ds.handles.values()}) == 1  # placed together
        assert all(h.offset % 64 == 0 for h in ds.handles.values())
        blob = pickle.dumps(ds)
        assert len(blob) < 1024
        other = pickle.loads(blob)
        assert not other.owner
        np.testing.assert_array_equal(other["y"], y)
        with pytest.raises(ValueError, match="read-only"):
            other["X"][0, 0] = 1


def test_dataset_add_places_caches_later():
    with SharedDataset(X=np.ones((5, 2))) as ds:
        ds.add(Xb=np.zeros((5, 2), dtype=np.uint8))
        assert ds["Xb"].dtype == np.uint8
        assert ds.nbytes == 5 * 2 * 8 + 5 * 2
        with pytest.raises(KeyError, match="already"):
            ds.add(X=np.ones(1))


def test_dataset_missing_key_lists_what_it_holds():
    with SharedDataset(X=np.ones(2)) as ds:
        with pytest.raises(KeyError, match="'X'"):
            ds["nope"]


def test_dataset_close_unlinks_and_use_after_close_raises():
    ds = SharedDataset(X=np.ones(3))
    segment = ds.handles["X"].segment
    ds.close()
    ds.close()
    assert not _exists(segment)
    with pytest.raises(SharedArrayClosedError):
        ds["X"]


def test_dataset_rejects_non_numeric_arrays_naming_them():
    with pytest.raises(TypeError, match="'labels'"):
        SharedDataset(labels=np.array(["a", "b"]))


def _dataset_child(ds, queue):
    queue.put(float(ds["X"].sum() + ds["y"].sum()))


@pytest.mark.parametrize("method", START_METHODS)
def test_dataset_reaches_workers_under_every_start_method(method):
    ctx = mp.get_context(method)
    with SharedDataset(X=np.ones((10, 10)), y=np.arange(5)) as ds:
        queue = ctx.Queue()
        p = ctx.Process(target=_dataset_child, args=(ds, queue))
        p.start()
        assert queue.get(timeout=60) == 110.0
        p.join(30)


# ----------------------------------------------------------------- attaching checks what it attaches


@pytest.mark.parametrize(
    "change, fragment",
    [
        ({"shape": (100, 3)}, r"needs 2,400 bytes, but segment '.+' holds 128 bytes"),
        ({"offset": 64}, r"at offset 64 needs 160 bytes, but segment '.+' holds 128 bytes"),
        ({"dtype": "<c16"}, r"complex128 array of shape \(4, 3\) at offset 0 needs 192 bytes"),
        ({"dtype": "|O"}, "has dtype object; blocks hold numeric or bool arrays only"),
        ({"dtype": "no such dtype"}, "has dtype 'no such dtype', which is not a numpy dtype"),
        ({"shape": (-1, 3)}, r"has shape \(-1, 3\); it takes a tuple of non-negative ints"),
        ({"offset": -8}, "has offset -8; it takes a non-negative int"),
        ({"order": "K"}, "has order 'K'; it takes 'C' or 'F'"),
    ],
    ids=[
        "shape",
        "offset",
        "dtype-size",
        "dtype-object",
        "dtype-unknown",
        "negative-shape",
        "negative-offset",
        "order",
    ],
)
def test_a_handle_that_does_not_fit_its_block_raises_naming_both(change, fragment):
    import dataclasses

    from shmforest.errors import SegmentMismatchError

    with SharedDataset(X=np.ones((4, 3))) as ds:  # 96 bytes, in a 128-byte block
        bad = dataclasses.replace(ds.handles["X"], **change)
        with pytest.raises(SegmentMismatchError, match=fragment) as info:
            bad.attach()
        assert isinstance(info.value, ValueError)
        assert ds.handles["X"].segment in str(info.value)


@pytest.mark.parametrize("segment", ["../etc/passwd", "/etc/passwd", "psm_12345", "shmf_a/b", "shmf_x@1.2"])
def test_a_handle_opens_only_our_blocks(segment):
    with pytest.raises(ValueError, match="is not a shmforest block") as info:
        shared.ArrayHandle(segment, "<f8", (1,)).attach()
    assert not isinstance(info.value, FileNotFoundError)
