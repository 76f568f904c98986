"""Arrays placed once in shared memory and passed between processes as handles.

::

    owner process                                  any other process
    -------------                                  -----------------
    SharedArray.copy_of(a)
      shm_open(O_CREAT|O_EXCL, 0600), fallocate
      register with the resource tracker  <-- sweeps the block if the owner dies
      copy `a` into the block (the only copy)
    pickle(SharedArray) == ArrayHandle   ------->  unpickle: nothing mapped yet
      (segment name, dtype, shape, order,          .array / handle.attach():
       offset: well under 1 KB)                      shm_open(O_RDWR), mmap, cached
                                                     per process, read-only view
    close() / with / atexit / SIGTERM
      shm_unlink + unregister from the tracker

    no room in /dev/shm: a nameless file in a temporary folder instead
      (:mod:`shmforest.tempfolder`); the handle's segment locates it, the same
      attach, the same views, closed with the same calls

Attaching checks what it attaches: a handle opens only this package's blocks
(``shmf_`` segments, or temporary-folder files still held by their owner), and a
handle whose dtype, shape or offset does not fit the block raises
:class:`~shmforest.errors.SegmentMismatchError` instead of mapping past its end.

Two CPython 3.11 traps shape this module. ``SharedMemory(name)`` in an
attaching process registers the block with *that* process's resource tracker,
which unlinks it (and warns "leaked shared_memory") when it shuts down
(gh-82300); so attachments here go through ``_posixshmem`` directly and never
touch the tracker. Only the creator registers, which is exactly what makes the
tracker sweep a block whose owner was killed. And a process forked before the
tracker runs starts its own tracker; :func:`ensure_tracker` is what pools call
before forking.
"""

from __future__ import annotations

import errno
import mmap
import os
import re
import secrets
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from multiprocessing import resource_tracker
from typing import Any, Literal

import numpy as np

from shmforest import lifecycle, tempfolder
from shmforest.errors import (
    SegmentMismatchError,
    SegmentNotFoundError,
    SharedArrayClosedError,
    SharedMemoryFullError,
)

try:  # POSIX only; the stdlib's own SharedMemory is built on it.
    import _posixshmem
except ImportError:  # pragma: no cover - Windows
    _posixshmem = None

__all__ = [
    "ArrayHandle",
    "SharedArray",
    "SharedDataset",
    "SEGMENT_PREFIX",
    "close_owned",
    "create_segment",
    "is_placeable",
    "map_arguments",
    "place_arguments",
    "ensure_tracker",
    "owned_segments",
    "unlink_segment",
]

#: Every block this package creates is named with this prefix, so a leak is easy to spot.
SEGMENT_PREFIX = "shmf_"
_SHM_DIR = "/dev/shm"
_ALIGN = 64  # arrays inside a dataset block start on cache-line boundaries
_NUMERIC_KINDS = frozenset("biufc")
_MAP_POPULATE = getattr(mmap, "MAP_POPULATE", 0)  # Linux only
# What a handle may name in /dev/shm: our prefix, then letters, digits and underscores (no path).
_SEGMENT_NAME = re.compile(re.escape(SEGMENT_PREFIX) + r"[A-Za-z0-9_]+")


# --------------------------------------------------------------------------- segments


class _Segment:
    """One block mapped into this process: POSIX shared memory, or a temporary-folder file.

    ``fd`` is the file's descriptor, held open while the block lives (other
    processes reach the file through it); None for a shared-memory block.
    """

    __slots__ = ("name", "size", "mm", "owner_pid", "fd", "__weakref__")

    def __init__(self, name: str, size: int, mm: mmap.mmap, owner_pid: int | None, fd: int | None = None) -> None:
        self.name = name
        self.size = size
        self.mm = mm
        self.owner_pid = owner_pid
        self.fd = fd

    @property
    def owned_here(self) -> bool:
        return self.owner_pid == os.getpid()

    @classmethod
    def create(cls, nbytes: int) -> _Segment:
        """A new block in /dev/shm, or in a temporary folder when /dev/shm has no room."""
        size = max(int(nbytes), 1)  # a zero-length mapping is not allowed
        try:
            name, fd = create_segment(size)
            kept_fd = None
        except (_NoRoom, OSError) as exc:  # no room, or no /dev/shm we may write in
            reason = exc.reason if isinstance(exc, _NoRoom) else f"{_SHM_DIR}: {exc.strerror or exc}"
            block, fd = tempfolder.create_file_block(size, SEGMENT_PREFIX, [reason])
            name, kept_fd = block.locator, fd
        try:
            # Map the reserved pages now, in one call: faulting them in one by one
            # while copying cost 2x the copy itself (measured on 1 GiB).
            mm = mmap.mmap(fd, size, flags=mmap.MAP_SHARED | _MAP_POPULATE)
        except BaseException:
            if kept_fd is None:
                unlink_segment(name)
            else:
                os.close(kept_fd)
            raise
        finally:
            if kept_fd is None:
                os.close(fd)
        seg = cls(name, size, mm, os.getpid(), kept_fd)
        with _LOCK:
            _OWNED[name] = seg
        lifecycle.install_sigterm_cleanup()
        return seg

    def unlink(self) -> None:
        """Remove the block's name (the memory goes once every mapping is gone)."""
        with _LOCK:
            _OWNED.pop(self.name, None)
            if not self.owned_here:
                return
            self.owner_pid = None
            fd, self.fd = self.fd, None
        if fd is not None:
            os.close(fd)  # the file has no name: its last descriptor going is its removal
        else:
            unlink_segment(self.name)


def create_segment(nbytes: int, *, prefix: str = SEGMENT_PREFIX) -> tuple[str, int]:
    """Create a shared-memory block of ``nbytes``: its name and an open descriptor.

    Every block of this package is made here (datasets' and budgets'): an
    unguessable name (``prefix`` and 96 random bits), mode 0600, real pages
    reserved now (a full ``/dev/shm`` fails here, not later as SIGBUS), and
    registered with the resource tracker, which removes it if this process is
    killed. The caller maps it, closes the descriptor when done with it, and
    removes the block with :func:`unlink_segment`.

    Raises
    ------
    SharedMemoryFullError
        ``/dev/shm`` has no room for ``nbytes``.
    """
    if _posixshmem is None:  # pragma: no cover
        raise _NoRoom(nbytes, "shared memory segments need a POSIX system")
    free = _free_shm_bytes()
    if free is not None and nbytes > free:
        raise _NoRoom(nbytes, f"{_SHM_DIR} has only {free:,} bytes free")
    ensure_tracker()
    for _ in range(8):
        name = prefix + secrets.token_hex(12)
        try:
            fd = _posixshmem.shm_open("/" + name, os.O_CREAT | os.O_EXCL | os.O_RDWR, mode=0o600)
            break
        except FileExistsError:  # pragma: no cover - 96 random bits
            continue
    else:  # pragma: no cover
        raise FileExistsError("could not find a free shared-memory name")
    try:
        _reserve(fd, nbytes, name)
    except BaseException:
        os.close(fd)
        _posixshmem.shm_unlink("/" + name)
        raise
    resource_tracker.register("/" + name, "shared_memory")
    return name, fd


class _NoRoom(SharedMemoryFullError):
    """/dev/shm has no room for a block; ``reason`` says so in a few words.

    What :meth:`_Segment.create` catches to try the temporary folders; callers of
    :func:`create_segment` see a :class:`SharedMemoryFullError` like any other.
    """

    def __init__(self, nbytes: int, reason: str) -> None:
        super().__init__(
            f"cannot place {nbytes:,} bytes in shared memory: {reason} (enlarge it, e.g. docker --shm-size, "
            "or place less)"
        )
        self.reason = reason


def unlink_segment(name: str) -> None:
    """Remove a block made by :func:`create_segment` (its memory goes once every mapping is gone)."""
    try:
        _posixshmem.shm_unlink("/" + name)
    except FileNotFoundError:
        pass
    resource_tracker.unregister("/" + name, "shared_memory")


def _reserve(fd: int, size: int, name: str) -> None:
    """Give the block real pages now, so a full /dev/shm fails here and not as SIGBUS."""
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise _NoRoom(size, f"{_SHM_DIR} is full") from exc
        if exc.errno not in (errno.EINVAL, errno.EOPNOTSUPP, errno.ENODEV):
            raise
        os.ftruncate(fd, size)  # filesystems without fallocate
    except AttributeError:  # pragma: no cover - no posix_fallocate (macOS)
        os.ftruncate(fd, size)


def _free_shm_bytes() -> int | None:
    try:
        st = os.statvfs(_SHM_DIR)
    except OSError:  # pragma: no cover - no /dev/shm (macOS)
        return None
    return st.f_bavail * st.f_frsize


def ensure_tracker() -> None:
    """Start the multiprocessing resource tracker in this process if it is not running.

    Call before forking workers: a child forked earlier starts a tracker of its own,
    which destroys blocks when that child exits.
    """
    resource_tracker.ensure_running()


# Blocks created by this process, swept at exit and on SIGTERM.
_OWNED: dict[str, _Segment] = {}
# Blocks this process attached to, by name; a mapping stays valid after the owner unlinks.
_ATTACHED: dict[str, mmap.mmap] = {}
_LOCK = threading.RLock()


def owned_segments() -> list[str]:
    """Names of the shared-memory blocks this process created and has not closed."""
    with _LOCK:
        return [name for name, seg in _OWNED.items() if seg.owned_here]


def close_owned() -> None:
    """Remove every block this process created and has not closed.

    What exit and SIGTERM do; for processes that leave without running atexit
    handlers (pool workers end with ``os._exit``).
    """
    with _LOCK:
        segments = list(_OWNED.values())
    for seg in segments:
        seg.unlink()


def _after_fork_in_child() -> None:
    global _LOCK
    # Another thread of the parent may have held the lock at fork: start afresh.
    _LOCK = threading.RLock()
    # The child inherited the parent's bookkeeping but owns none of those blocks;
    # nor their files' descriptors, which would keep the files' space taken while it lives.
    for seg in _OWNED.values():
        if seg.fd is not None:
            try:
                os.close(seg.fd)
            except OSError:  # pragma: no cover - closed by the code that forked
                pass
    _OWNED.clear()


lifecycle.register("segments", at_exit=lambda reason: close_owned(), after_fork=_after_fork_in_child)


def _attach(name: str) -> mmap.mmap:
    """Map the block ``name`` into this process, once; later calls reuse the mapping."""
    with _LOCK:
        mm = _ATTACHED.get(name)
        if mm is not None:
            return mm
        seg = _OWNED.get(name)
        if seg is not None and seg.owned_here:
            return seg.mm
        _forget_removed_attachments()
        fd = _open_block(name)
        try:
            size = os.fstat(fd).st_size
            mm = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        _ATTACHED[name] = mm
        return mm


def _open_block(name: str) -> int:
    """A descriptor of the block ``name``: only a ``shmf_`` segment or one of our temporary-folder files."""
    if tempfolder.is_file_locator(name):
        return tempfolder.open_file_block(name)
    if not _SEGMENT_NAME.fullmatch(name):
        raise ValueError(
            f"segment {name!r} is not a shmforest block: handles name {SEGMENT_PREFIX}<hex> segments "
            f"in {_SHM_DIR}, or temporary-folder blocks ({SEGMENT_PREFIX}<hex>@<pid>.<fd>.<dev>.<ino>)"
        )
    try:
        return int(_posixshmem.shm_open("/" + name, os.O_RDWR, mode=0))
    except FileNotFoundError:
        raise SegmentNotFoundError(
            errno.ENOENT,
            f"shared-memory segment {name!r} does not exist (its owner closed it or exited)",
            name,
        ) from None


def _block_exists(name: str) -> bool:
    if tempfolder.is_file_locator(name):
        return tempfolder.file_block_exists(name)
    return os.path.exists(os.path.join(_SHM_DIR, name))


def _forget_removed_attachments() -> None:
    # A long-lived worker would otherwise keep every dataset it ever saw mapped,
    # holding memory the owners already released. Only the cache lets go: numpy
    # views keep the mmap object as their base, and closing it under them would
    # turn their next read into a segfault, so the mapping goes with the last view.
    for name in [n for n in _ATTACHED if not _block_exists(n)]:
        del _ATTACHED[name]


# --------------------------------------------------------------------------- arrays


def _check_dtype(dtype: np.dtype, argument: str) -> None:
    if dtype.kind not in _NUMERIC_KINDS or dtype.fields is not None:
        raise TypeError(
            f"{argument} has dtype {dtype!s}; shared arrays take numeric or bool dtypes "
            "(bool, int*, uint*, float*, complex*), not object, string or structured ones"
        )


def _order_of(a: np.ndarray) -> str:
    return "F" if (a.flags.f_contiguous and not a.flags.c_contiguous) else "C"


@dataclass(frozen=True, slots=True)
class ArrayHandle:
    """What travels between processes in place of an array.

    Its pickle is a few hundred bytes whatever the array's size.
    """

    segment: str
    dtype: str
    shape: tuple[int, ...]
    order: str = "C"
    offset: int = 0

    def attach(self, writable: bool = False) -> np.ndarray:
        """Map the array into this process without copying it.

        Parameters
        ----------
        writable : bool, default False
            Return a writable view. Writes are seen by every process.

        Raises
        ------
        SegmentNotFoundError
            The block is gone (also a ``FileNotFoundError``).
        SegmentMismatchError
            The handle's dtype, shape, order or offset does not describe an
            array that fits in the block (also a ``ValueError``).
        ValueError
            The segment is not one of this package's blocks.
        """
        dtype, nbytes = self._checked()
        mm = _attach(self.segment)
        if self.offset + nbytes > len(mm):
            raise SegmentMismatchError(
                f"handle for a {dtype!s} array of shape {self.shape} at offset {self.offset:,} needs "
                f"{self.offset + nbytes:,} bytes, but segment {self.segment!r} holds {len(mm):,} bytes"
            )
        order: Literal["C", "F"] = "F" if self.order == "F" else "C"
        view = np.ndarray(self.shape, dtype, buffer=mm, offset=self.offset, order=order)
        view.flags.writeable = writable
        return view

    def _checked(self) -> tuple[np.dtype, int]:
        """The handle's dtype and the bytes its array spans, or a SegmentMismatchError saying what is wrong."""

        def mismatch(what: str) -> SegmentMismatchError:
            return SegmentMismatchError(f"handle of segment {self.segment!r} {what}")

        try:
            dtype = np.dtype(self.dtype)
        except TypeError:
            raise mismatch(f"has dtype {self.dtype!r}, which is not a numpy dtype") from None
        if dtype.kind not in _NUMERIC_KINDS or dtype.fields is not None:
            raise mismatch(f"has dtype {dtype!s}; blocks hold numeric or bool arrays only")
        shape = self.shape
        if not isinstance(shape, tuple) or not all(
            isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 0 for n in shape
        ):
            raise mismatch(f"has shape {shape!r}; it takes a tuple of non-negative ints")
        if self.order not in ("C", "F"):
            raise mismatch(f"has order {self.order!r}; it takes 'C' or 'F'")
        if not isinstance(self.offset, (int, np.integer)) or isinstance(self.offset, bool) or self.offset < 0:
            raise mismatch(f"has offset {self.offset!r}; it takes a non-negative int")
        count = 1
        for n in shape:
            count *= int(n)  # Python ints: a forged shape cannot overflow into a small size
        return dtype, count * dtype.itemsize


class SharedArray:
    """A numpy array placed once in a shared-memory block.

    Pickling a ``SharedArray`` sends only its :class:`ArrayHandle`; the receiving
    process maps the block on first use, read-only. The creating process owns the
    block and removes it on :meth:`close`, on leaving a ``with`` block, at exit and
    on SIGTERM; if it is killed outright, the resource tracker removes it.

    Build one with :meth:`copy_of` (or ``SharedArray(array)``), :meth:`empty` or
    :meth:`zeros`.

    Examples
    --------
    >>> import numpy as np
    >>> with SharedArray.copy_of(np.arange(6.0).reshape(2, 3)) as sa:
    ...     float(sa.array.sum())
    15.0
    """

    __slots__ = ("_handle", "_segment", "_writable", "_view", "_closed", "__weakref__")

    def __init__(self, array: Any) -> None:
        other = SharedArray.copy_of(array)
        self._handle: ArrayHandle = other._handle
        self._segment: _Segment | None = other._segment
        self._writable = True
        self._view: np.ndarray | None = None
        self._closed = False
        other._segment = None  # ownership moved to self

    # -- construction --------------------------------------------------
    @classmethod
    def _new(cls, handle: ArrayHandle, segment: _Segment | None, writable: bool) -> SharedArray:
        self = object.__new__(cls)
        self._handle, self._segment, self._writable = handle, segment, writable
        self._view = None
        self._closed = False
        return self

    @classmethod
    def empty(cls, shape: int | tuple[int, ...], dtype: Any = np.float64, order: str = "C") -> SharedArray:
        """A new block holding an uninitialised array; the owner's view is writable."""
        dtype = np.dtype(dtype)
        _check_dtype(dtype, "dtype")
        shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)
        if any(s < 0 for s in shape):
            raise ValueError(f"shape must hold non-negative sizes, got {shape}")
        if order not in ("C", "F"):
            raise ValueError(f"order must be 'C' or 'F', got {order!r}")
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        seg = _Segment.create(nbytes)
        return cls._new(ArrayHandle(seg.name, dtype.str, shape, order, 0), seg, True)

    @classmethod
    def zeros(cls, shape: int | tuple[int, ...], dtype: Any = np.float64, order: str = "C") -> SharedArray:
        """A new block holding zeros (fresh shared memory is zero-filled: no write needed)."""
        return cls.empty(shape, dtype, order)

    @classmethod
    def copy_of(cls, array: Any) -> SharedArray:
        """Place a copy of ``array`` in a new block; the only copy made.

        Non-contiguous views are placed contiguous (Fortran order is kept).
        """
        a = np.asarray(array)
        _check_dtype(a.dtype, "array")
        sa = cls.empty(a.shape, a.dtype, _order_of(a))
        np.copyto(sa.view(writable=True), a, casting="no")
        return sa

    # -- access --------------------------------------------------------
    @property
    def handle(self) -> ArrayHandle:
        """The picklable handle; attach it anywhere with :meth:`ArrayHandle.attach`."""
        return self._handle

    @property
    def name(self) -> str:
        """The shared-memory segment's name."""
        return self._handle.segment

    @property
    def shape(self) -> tuple[int, ...]:
        return self._handle.shape

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self._handle.dtype)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize

    @property
    def owner(self) -> bool:
        """Whether this process created the block (and so removes it)."""
        return self._segment is not None and self._segment.owned_here

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def array(self) -> np.ndarray:
        """The numpy view: writable in the creating process, read-only elsewhere."""
        if self._view is None:
            self._view = self.view(writable=self._writable and self.owner)
        elif self._closed:
            self._raise_closed()
        return self._view

    def view(self, writable: bool = False) -> np.ndarray:
        """A numpy view of the block, mapped without copying."""
        if self._closed:
            self._raise_closed()
        return self._handle.attach(writable=writable)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        a = self.array
        return a if dtype is None else a.astype(dtype, copy=False)

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("owner" if self.owner else "attached")
        return f"SharedArray(name={self.name!r}, shape={self.shape}, dtype={self.dtype}, {state})"

    def _raise_closed(self) -> None:
        raise SharedArrayClosedError(f"SharedArray {self.name!r} is closed")

    # -- lifecycle -----------------------------------------------------
    def close(self) -> None:
        """Release the block: the owner removes it; elsewhere only this object lets go.

        Calling it twice is fine. Views taken earlier stay readable until dropped.
        """
        if self._closed:
            return
        self._closed = True
        self._view = None
        if self._segment is not None:
            self._segment.unlink()

    def __enter__(self) -> SharedArray:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __reduce__(self) -> tuple[Any, ...]:
        if self._closed:
            self._raise_closed()
        return (_attached_array, (self._handle,))

    def __del__(self) -> None:
        # An owner dropped without close() frees its block now rather than at exit;
        # views taken from it keep their mapping and stay valid.
        if not getattr(self, "_closed", True) and getattr(self, "_segment", None) is not None:
            self.close()


def _attached_array(handle: ArrayHandle) -> SharedArray:
    return SharedArray._new(handle, None, False)


# --------------------------------------------------------------------------- datasets


class SharedDataset(Mapping[str, np.ndarray]):
    """A named group of arrays placed together in shared memory.

    The data and caches that tasks would otherwise each receive a copy of: place
    them once, pass the dataset (it pickles as handles), read ``ds["X"]``.

    Parameters
    ----------
    arrays : mapping of str to array-like, optional
        Arrays to place now, all in one block.
    **more : array-like
        More arrays, by keyword.

    Examples
    --------
    >>> import numpy as np
    >>> with SharedDataset(X=np.ones((4, 2)), y=np.arange(4)) as ds:
    ...     ds["X"].shape, sorted(ds)
    ((4, 2), ['X', 'y'])
    """

    def __init__(self, arrays: Mapping[str, Any] | None = None, **more: Any) -> None:
        self._handles: dict[str, ArrayHandle] = {}
        self._segments: list[_Segment] = []
        self._views: dict[str, np.ndarray] = {}
        self._closed = False
        items = {**(arrays or {}), **more}
        if items:
            self.add(**items)

    @classmethod
    def _attached(cls, handles: dict[str, ArrayHandle]) -> SharedDataset:
        self = cls.__new__(cls)
        self._handles, self._segments, self._views, self._closed = dict(handles), [], {}, False
        return self

    def add(self, **arrays: Any) -> None:
        """Place more arrays (caches, binned copies) together in one new block."""
        self._check_open()
        prepared = {}
        for key, value in arrays.items():
            if key in self._handles:
                raise KeyError(f"dataset already holds an array named {key!r}")
            a = np.asarray(value)
            _check_dtype(a.dtype, f"array {key!r}")
            prepared[key] = a
        offsets, total = {}, 0
        for key, a in prepared.items():
            offsets[key] = total
            total += -(-a.nbytes // _ALIGN) * _ALIGN
        seg = _Segment.create(total)
        self._segments.append(seg)
        for key, a in prepared.items():
            handle = ArrayHandle(seg.name, a.dtype.str, a.shape, _order_of(a), offsets[key])
            np.copyto(handle.attach(writable=True), a, casting="no")
            self._handles[key] = handle

    @property
    def handles(self) -> dict[str, ArrayHandle]:
        """The handle of each array, by name."""
        return dict(self._handles)

    @property
    def nbytes(self) -> int:
        return sum(int(np.prod(h.shape, dtype=np.int64)) * np.dtype(h.dtype).itemsize for h in self._handles.values())

    @property
    def owner(self) -> bool:
        """Whether this process placed (and so removes) the dataset's blocks."""
        return any(seg.owned_here for seg in self._segments)

    @property
    def closed(self) -> bool:
        return self._closed

    def __getitem__(self, key: str) -> np.ndarray:
        self._check_open()
        view = self._views.get(key)
        if view is None:
            try:
                handle = self._handles[key]
            except KeyError:
                raise KeyError(f"dataset has no array {key!r}; it holds {sorted(self._handles)}") from None
            view = self._views[key] = handle.attach(writable=False)
        return view

    def view(self, key: str, writable: bool = False) -> np.ndarray:
        """A view of one array; ``writable=True`` lets this process write into it."""
        self._check_open()
        return self._handles[key].attach(writable=writable)

    def __iter__(self) -> Iterator[str]:
        return iter(self._handles)

    def __len__(self) -> int:
        return len(self._handles)

    def __contains__(self, key: object) -> bool:
        return key in self._handles

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("owner" if self.owner else "attached")
        inner = ", ".join(f"{k}: {h.shape} {np.dtype(h.dtype)}" for k, h in self._handles.items())
        return f"SharedDataset({{{inner}}}, {state})"

    def _check_open(self) -> None:
        if self._closed:
            raise SharedArrayClosedError("SharedDataset is closed")

    def close(self) -> None:
        """Remove the dataset's blocks (owner) or let go of them (elsewhere); idempotent."""
        if self._closed:
            return
        self._closed = True
        self._views.clear()
        for seg in self._segments:
            seg.unlink()

    def __enter__(self) -> SharedDataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __reduce__(self) -> tuple[Any, ...]:
        self._check_open()
        return (SharedDataset._attached, (self._handles,))

    def __del__(self) -> None:
        # An owner dropped without close() frees its blocks now rather than at exit;
        # views taken from it keep their mapping and stay valid.
        if not getattr(self, "_closed", True):
            self.close()


# --------------------------------------------------------------------------- task arguments


def is_placeable(value: Any, min_bytes: int) -> bool:
    """Whether ``value`` is an array worth placing: numeric, not structured, ``min_bytes`` or more."""
    return (
        isinstance(value, np.ndarray)
        and value.dtype.kind in _NUMERIC_KINDS
        and value.dtype.fields is None
        and value.nbytes >= min_bytes
    )


def map_arguments(obj: Any, replace: Callable[[Any], Any]) -> Any:
    """``obj`` with every value inside plain tuples, lists and dicts passed through ``replace``.

    Only those exact types are walked (a subclass or a namedtuple is a value of
    its own), as executors walk task arguments.
    """
    if type(obj) is tuple:
        return tuple(map_arguments(v, replace) for v in obj)
    if type(obj) is list:
        return [map_arguments(v, replace) for v in obj]
    if type(obj) is dict:
        return {k: map_arguments(v, replace) for k, v in obj.items()}
    return replace(obj)


def place_arguments(
    obj: Any, place: Callable[[Any], Any], *, min_bytes: int = 1 << 16, also: tuple[type, ...] = ()
) -> Any:
    """A task's arguments with what should be placed replaced by ``place(value)``.

    What should be placed: arrays :func:`is_placeable` at ``min_bytes``, and
    instances of ``also`` (e.g. :class:`SharedDataset`, for an executor that
    copies datasets to other machines). The ``shm`` executor and the dask plugin
    both walk their arguments with this.
    """

    def replace(value: Any) -> Any:
        if is_placeable(value, min_bytes) or (also and isinstance(value, also)):
            return place(value)
        return value

    return map_arguments(obj, replace)
