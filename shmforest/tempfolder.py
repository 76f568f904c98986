"""Blocks in a temporary folder, for data that ``/dev/shm`` has no room for.

::

    owner process                                     any other process
    -------------                                     -----------------
    create_file_block(nbytes)
      each folder in turn: $SHMFOREST_TEMP_FOLDER,
      the system's temporary folder, /dev/shm
        open(O_TMPFILE, 0600): a file with no name
        (or create shmf_<hex> with O_EXCL, unlink at once)
        fallocate: a full disk fails here, not as SIGBUS
      keep the descriptor, map it
    the handle's segment is a locator   ------------>  open_file_block(locator):
      shmf_<hex>@<pid>.<fd>.<dev>.<ino>                  open /proc/<pid>/fd/<fd>
                                                         same device and inode, no name,
                                                         mode 0600? else refuse; map it
    close() / exit / SIGTERM: close the descriptor
    SIGKILL: the kernel closes it

The file has no name in any folder while it is in use, so nothing is left to
sweep after any death, SIGKILL included: its space goes back once the owner's
descriptor and the last mapping are gone. (The stdlib's resource tracker, which
sweeps ``/dev/shm`` blocks, cannot remove files on Python 3.11.) Other processes
reach the file through the owner's descriptor, which needs Linux's ``/proc`` and
the same user, as shared-memory blocks need the same ``/dev/shm``.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import stat
import tempfile
from dataclasses import dataclass

from shmforest.errors import SegmentNotFoundError, SharedMemoryFullError

__all__ = [
    "TEMP_FOLDER_ENV_VAR",
    "FileBlock",
    "create_file_block",
    "file_block_exists",
    "is_file_locator",
    "open_file_block",
    "temp_folders",
]

#: A folder for blocks that ``/dev/shm`` has no room for, tried before the system's temporary folder.
TEMP_FOLDER_ENV_VAR = "SHMFOREST_TEMP_FOLDER"
_SHM_DIR = "/dev/shm"
_PROC_FD = "/proc/{pid}/fd/{fd}"
_O_TMPFILE = getattr(os, "O_TMPFILE", 0)  # Linux only
_LOCATOR = re.compile(r"^(?P<name>[A-Za-z0-9_]+)@(?P<pid>\d+)\.(?P<fd>\d+)\.(?P<dev>\d+)\.(?P<ino>\d+)$")


@dataclass(frozen=True)
class FileBlock:
    """Where a temporary-folder block is: its owner's descriptor and the file's identity."""

    name: str
    pid: int
    fd: int
    dev: int
    ino: int

    @property
    def locator(self) -> str:
        """What a handle carries as its segment: ``shmf_<hex>@<pid>.<fd>.<dev>.<ino>``."""
        return f"{self.name}@{self.pid}.{self.fd}.{self.dev}.{self.ino}"

    @classmethod
    def parse(cls, locator: str) -> FileBlock | None:
        """The block a locator names, or None if it is not a locator."""
        m = _LOCATOR.match(locator)
        if m is None:
            return None
        return cls(m["name"], int(m["pid"]), int(m["fd"]), int(m["dev"]), int(m["ino"]))


def is_file_locator(segment: str) -> bool:
    """Whether a handle's segment names a temporary-folder block (else a ``/dev/shm`` one)."""
    return _LOCATOR.match(segment) is not None


def temp_folders() -> list[tuple[str, str]]:
    """The folders a block goes to when ``/dev/shm`` has no room, in order, each with why it is tried.

    ``$SHMFOREST_TEMP_FOLDER`` if set, the system's temporary folder
    (``tempfile.gettempdir()``: ``$TMPDIR``, else ``/tmp``...), then ``/dev/shm``;
    a folder named twice is tried once.
    """
    candidates = []
    chosen = os.environ.get(TEMP_FOLDER_ENV_VAR)
    if chosen:
        candidates.append((os.path.abspath(os.path.expanduser(chosen)), TEMP_FOLDER_ENV_VAR))
    candidates.append((tempfile.gettempdir(), "the system's temporary folder"))
    candidates.append((_SHM_DIR, "shared memory as a folder"))
    seen: set[str] = set()
    out = []
    for folder, why in candidates:
        key = os.path.realpath(folder)
        if key not in seen:
            seen.add(key)
            out.append((folder, why))
    return out


def _free_bytes(folder: str) -> int:
    st = os.statvfs(folder)
    return st.f_bavail * st.f_frsize


def _open_nameless(folder: str, name: str) -> int:
    """An open, nameless, empty file of mode 0600 in ``folder``."""
    if _O_TMPFILE:
        try:
            return os.open(folder, _O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            # Filesystems without O_TMPFILE (older overlayfs, NFS): a name, for a moment.
            if exc.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
                raise
    path = os.path.join(folder, name)
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    os.unlink(path)
    return fd


def _fill(fd: int, nbytes: int) -> None:
    """Give the file its blocks now, so a full disk fails here and not later as SIGBUS."""
    try:
        os.posix_fallocate(fd, 0, nbytes)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.EOPNOTSUPP, errno.ENODEV):
            raise
        os.ftruncate(fd, nbytes)  # filesystems without fallocate
    except AttributeError:  # pragma: no cover - no posix_fallocate (macOS)
        os.ftruncate(fd, nbytes)


def create_file_block(nbytes: int, prefix: str, tried: list[str]) -> tuple[FileBlock, int]:
    """A nameless file of ``nbytes`` in the first temporary folder with room: where it is, and its descriptor.

    The caller keeps the descriptor open as long as the block lives (other
    processes reach the file through it) and maps it.

    Parameters
    ----------
    nbytes : int
        The block's size.
    prefix : str
        The block's name starts with this (``shmf_``), then 96 random bits.
    tried : list of str
        Why earlier places could not take the block, for the error.

    Raises
    ------
    SharedMemoryFullError
        No folder could take the block; the message names every place tried and why.
    """
    reasons = list(tried)
    name = prefix + secrets.token_hex(12)
    if not os.path.isdir("/proc/self/fd"):  # pragma: no cover - not Linux
        reasons.append("temporary folders: other processes reach their blocks through /proc, which is missing")
        folders = []
    else:
        folders = temp_folders()
    for folder, why in folders:
        where = f"{folder} ({why})"
        try:
            free = _free_bytes(folder)
            if nbytes > free:
                reasons.append(f"{where} has only {free:,} bytes free")
                continue
            fd = _open_nameless(folder, name)
        except OSError as exc:
            reasons.append(f"{where}: {exc.strerror or exc}")
            continue
        try:
            _fill(fd, nbytes)
            st = os.fstat(fd)
        except OSError as exc:
            os.close(fd)
            reasons.append(f"{where}: {'full' if exc.errno == errno.ENOSPC else exc.strerror or exc}")
            continue
        except BaseException:
            os.close(fd)
            raise
        return FileBlock(name, os.getpid(), fd, st.st_dev, st.st_ino), fd
    raise SharedMemoryFullError(
        f"cannot place {nbytes:,} bytes: " + "; ".join(reasons) + f" (enlarge /dev/shm, e.g. docker --shm-size, "
        f"set {TEMP_FOLDER_ENV_VAR} to a folder with room, or place less)"
    )


def _is_the_block(st: os.stat_result, block: FileBlock) -> bool:
    # Same file as created, still nameless, private: not whatever took the descriptor's number since.
    return (
        stat.S_ISREG(st.st_mode)
        and (st.st_dev, st.st_ino) == (block.dev, block.ino)
        and st.st_nlink == 0
        and stat.S_IMODE(st.st_mode) == 0o600
    )


def open_file_block(locator: str) -> int:
    """Open the block a locator names, through its owner's descriptor; checked to be that very file.

    Raises
    ------
    SegmentNotFoundError
        The owner closed the block or exited (the descriptor is gone or now
        names another file).
    PermissionError
        The owner's descriptors cannot be read from here (another user).
    """
    block = FileBlock.parse(locator)
    if block is None:
        raise ValueError(f"segment {locator!r} is not a temporary-folder block's locator")
    path = _PROC_FD.format(pid=block.pid, fd=block.fd)
    gone = SegmentNotFoundError(
        errno.ENOENT,
        f"temporary-folder block {locator!r} does not exist (its owner closed it or exited)",
        locator,
    )
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        raise gone from None
    except PermissionError as exc:
        raise PermissionError(
            exc.errno, f"cannot open temporary-folder block {locator!r} through {path}: {exc.strerror}"
        ) from None
    try:
        st = os.fstat(fd)
    except BaseException:
        os.close(fd)
        raise
    if not _is_the_block(st, block):
        os.close(fd)
        raise gone
    return fd


def file_block_exists(locator: str) -> bool:
    """Whether the block is still there (its owner still holds it)."""
    block = FileBlock.parse(locator)
    if block is None:
        return False
    try:
        st = os.stat(_PROC_FD.format(pid=block.pid, fd=block.fd))
    except OSError:
        return False
    return _is_the_block(st, block)
