"""Blocks that /dev/shm has no room for: nameless files in a temporary folder, with a shared block's guarantees."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
import time

import numpy as np
import pytest

from shmforest import SharedArray, SharedDataset, shared, tempfolder
from shmforest.errors import SegmentNotFoundError, SharedMemoryFullError
from shmforest.tempfolder import TEMP_FOLDER_ENV_VAR, FileBlock


@pytest.fixture
def no_room_in_shm(monkeypatch, tmp_path):
    """/dev/shm reports no free byte; blocks go to ``tmp_path`` (as ``SHMFOREST_TEMP_FOLDER``)."""
    monkeypatch.setattr(shared, "_free_shm_bytes", lambda: 0)
    monkeypatch.setenv(TEMP_FOLDER_ENV_VAR, str(tmp_path))
    return tmp_path


def _fd_target(locator: str) -> str:
    block = FileBlock.parse(locator)
    assert block is not None and block.pid == os.getpid()
    return os.readlink(f"/proc/self/fd/{block.fd}")


def _read_in_child(handle, queue):
    sa = SharedArray._new(handle, None, False)
    queue.put((float(sa.array.sum()), sa.array.flags.writeable))


@pytest.mark.parametrize("nameless", [True, False], ids=["O_TMPFILE", "named-then-unlinked"])
def test_a_block_without_room_in_dev_shm_is_a_nameless_private_file_in_the_temp_folder(
    no_room_in_shm, monkeypatch, nameless
):
    if not nameless:
        monkeypatch.setattr(tempfolder, "_O_TMPFILE", 0)
    data = np.arange(12.0).reshape(3, 4)
    with SharedArray.copy_of(data) as sa:
        assert tempfolder.is_file_locator(sa.name) and sa.name.startswith("shmf_")
        assert _fd_target(sa.name).startswith(str(no_room_in_shm)) and _fd_target(sa.name).endswith("(deleted)")
        assert os.listdir(no_room_in_shm) == []  # no name to leave behind
        st = os.fstat(FileBlock.parse(sa.name).fd)
        assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_size >= data.nbytes
        np.testing.assert_array_equal(sa.array, data)
        # Another process attaches without a copy, read-only.
        ctx = mp.get_context("spawn")
        queue = ctx.Queue()
        child = ctx.Process(target=_read_in_child, args=(sa.handle, queue))
        child.start()
        assert queue.get(timeout=60) == (float(data.sum()), False)
        child.join()
        handle = sa.handle
    with pytest.raises(SegmentNotFoundError, match="does not exist"):
        handle.attach()
    assert shared.owned_segments() == []


def test_datasets_go_there_too_and_close_removes_them(no_room_in_shm):
    ds = SharedDataset(X=np.ones((5, 2)), y=np.arange(5))
    segment = ds.handles["X"].segment
    assert tempfolder.file_block_exists(segment)
    assert float(ds["X"].sum()) == 10.0 and not ds["X"].flags.writeable
    ds.close()
    assert not tempfolder.file_block_exists(segment)


def test_folders_are_tried_in_order_and_the_error_names_every_place(monkeypatch, tmp_path):
    chosen, system = tmp_path / "chosen", tmp_path / "system"
    chosen.mkdir()
    system.mkdir()
    monkeypatch.setattr(shared, "_free_shm_bytes", lambda: 0)
    monkeypatch.setenv(TEMP_FOLDER_ENV_VAR, str(chosen))
    monkeypatch.setattr(tempfile, "tempdir", str(system))
    assert [f for f, _ in tempfolder.temp_folders()] == [str(chosen), str(system), "/dev/shm"]
    real_free = tempfolder._free_bytes
    full = {str(chosen)}
    monkeypatch.setattr(tempfolder, "_free_bytes", lambda folder: 10 if folder in full else real_free(folder))
    with SharedArray.zeros(1000) as sa:  # the chosen folder is full: the system's takes it
        assert _fd_target(sa.name).startswith(str(system))
    full |= {str(system), "/dev/shm"}
    with pytest.raises(SharedMemoryFullError) as info:
        SharedArray.zeros(1000)
    message = str(info.value)
    assert "cannot place 8,000 bytes" in message
    for place in ("/dev/shm has only 0 bytes free", f"{chosen} ({TEMP_FOLDER_ENV_VAR}) has only 10 bytes free"):
        assert place in message
    assert f"{system} (the system's temporary folder) has only 10 bytes free" in message
    assert "/dev/shm (shared memory as a folder) has only 10 bytes free" in message
    assert shared.owned_segments() == []


def test_a_folder_that_cannot_be_written_is_named_with_why(monkeypatch, tmp_path):
    monkeypatch.setattr(shared, "_free_shm_bytes", lambda: 0)
    monkeypatch.setenv(TEMP_FOLDER_ENV_VAR, str(tmp_path / "missing"))
    monkeypatch.setattr(tempfolder, "temp_folders", lambda: [(str(tmp_path / "missing"), TEMP_FOLDER_ENV_VAR)])
    with pytest.raises(SharedMemoryFullError, match=r"missing \(SHMFOREST_TEMP_FOLDER\): No such file or directory"):
        SharedArray.zeros(10)


def test_a_forked_child_does_not_keep_the_owners_file_open(no_room_in_shm):
    with SharedArray.zeros(100) as sa:
        fd = FileBlock.parse(sa.name).fd
        pid = os.fork()
        if pid == 0:  # the child: the descriptor must be gone, the parent's block still readable
            try:
                os.fstat(fd)
                code = 1
            except OSError:
                code = 0 if float(sa.handle.attach().sum()) == 0.0 else 2
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0


def test_a_reused_descriptor_number_is_not_taken_for_the_block(no_room_in_shm, tmp_path):
    sa = SharedArray.zeros(100)
    handle, fd = sa.handle, FileBlock.parse(sa.name).fd
    sa.close()
    other = tmp_path / "someone-elses-file"
    other.write_bytes(b"x" * 4096)
    reused = os.open(other, os.O_RDWR)
    try:
        assert reused == fd  # the lowest free number: the block's
        assert not tempfolder.file_block_exists(handle.segment)
        with pytest.raises(SegmentNotFoundError):
            handle.attach()
    finally:
        os.close(reused)


_OWNER_SCRIPT = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from shmforest import SharedArray, SharedDataset, shared
    shared._free_shm_bytes = lambda: 0  # as in a container whose /dev/shm is full
    sa = SharedArray.copy_of(np.ones(1000))
    ds = SharedDataset(X=np.zeros((10, 3)))
    print(sa.name, ds.handles["X"].segment, flush=True)
    sys.stdin.readline()
    if sys.argv[1] == "exit":
        sys.exit(0)
    time.sleep(120)
    """
)


@pytest.mark.parametrize("how", ["exit", "SIGTERM", "SIGKILL"])
def test_files_do_not_outlive_their_owner(how, tmp_path):
    env = {**os.environ, TEMP_FOLDER_ENV_VAR: str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _OWNER_SCRIPT, "exit" if how == "exit" else "sleep"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        locators = proc.stdout.readline().split()
        assert len(locators) == 2 and all(tempfolder.file_block_exists(s) for s in locators)
        targets = {os.readlink(f"/proc/{proc.pid}/fd/{FileBlock.parse(s).fd}") for s in locators}
        assert all(t.startswith(str(tmp_path)) and t.endswith("(deleted)") for t in targets)
        proc.stdin.write("go\n")
        proc.stdin.close()
        if how != "exit":
            time.sleep(0.2)
            proc.send_signal(getattr(signal, how))
        proc.wait(timeout=30)
        assert not any(tempfolder.file_block_exists(s) for s in locators)
        assert os.listdir(tmp_path) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
