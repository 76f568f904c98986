"""One token budget for a whole process tree, modelled on GNU make's jobserver.

A token is permission for one live worker (process or thread). Whoever wants to
run something in parallel *tries* to take a token and never waits for one: no
token means "do it inline, here". The budget's state is a small shared-memory
block; its name travels to descendants in an environment variable, as
``MAKEFLAGS`` carries make's jobserver, so code nested anywhere below draws on the
same tokens::

    owner process                                any process of the tree
    -------------                                -----------------------
    ProcessBudget(size)                          ProcessBudget.from_environment()
      shm_open("shmf_budget_<hex>", 0600)          shm_open(name): never tracked,
      registered with the resource tracker         so only the owner's exit sweeps it
      [header | size slots of (pid, start)]
    workers get SHMFOREST_BUDGET=<name>  ----->  try_acquire(n): lockf, lease free
                                                   slots to (pid, start time); first
                                                   reclaim slots of dead processes
    close(): warn if tokens are still held,      release(n): free this pid's slots
      shm_unlink, unregister from the tracker

A lease names a process by pid *and* start time, so a recycled pid never keeps a
dead process's token. Mutations hold ``fcntl.lockf`` on the block (a per-process
lock the kernel drops when its holder dies, and which a forked child does not
inherit) plus a ``threading.Lock`` for the threads of one process; both are held
for microseconds, which is not waiting for a token.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import re
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from shmforest import lifecycle
from shmforest.cores import usable_cores
from shmforest.errors import BudgetError, BudgetWarning, NestingDepthError
from shmforest.liveness import current_process, is_alive
from shmforest.shared import SEGMENT_PREFIX, create_segment, unlink_segment

try:  # POSIX only, as in shared.py
    import _posixshmem
except ImportError:  # pragma: no cover - Windows
    _posixshmem = None

__all__ = [
    "ENV_VAR",
    "DEPTH_ENV_VAR",
    "MAX_WORKERS_ENV_VAR",
    "MAX_DEPTH_ENV_VAR",
    "DEFAULT_MAX_DEPTH",
    "ProcessBudget",
    "default_budget",
    "default_budget_segment",
    "nesting_depth",
    "max_nesting_depth",
    "check_nesting_depth",
]

#: Names the budget a process tree shares; set in every worker's environment.
ENV_VAR = "SHMFOREST_BUDGET"
#: How many worker-pool levels sit above this process (0 in a program's own process).
DEPTH_ENV_VAR = "SHMFOREST_DEPTH"
#: Overrides the default budget size (usable cores).
MAX_WORKERS_ENV_VAR = "SHMFOREST_MAX_WORKERS"
#: Overrides the nesting-depth guard.
MAX_DEPTH_ENV_VAR = "SHMFOREST_MAX_DEPTH"
#: Pools nested deeper than this raise :class:`NestingDepthError`; the budget already
#: bounds processes, so this only stops runaway recursion that creates pools.
DEFAULT_MAX_DEPTH = 16

_NAME_PREFIX = SEGMENT_PREFIX + "budget_"
_NAME_RE = re.compile(re.escape(_NAME_PREFIX) + r"[0-9a-f]{24}\Z")
_MAGIC = 0x3144_5542_464D_4853  # b"SHMFBUD1" little-endian
# Header words (int64), then `size` slots of two words: (pid, start time).
_H_MAGIC, _H_SIZE, _H_OWNER_PID, _H_OWNER_START, _H_FREE, _H_RECLAIMED, _H_CLOSED = range(7)
_HEADER_WORDS = 8
_PEEK_RECLAIM_S = 0.2  # how stale a lock-free "no tokens" answer may be before a real look


def _default_size() -> int:
    value = os.environ.get(MAX_WORKERS_ENV_VAR, "").strip()
    if value:
        try:
            size = int(value)
        except ValueError:
            size = 0
        if size < 1:
            raise ValueError(f"{MAX_WORKERS_ENV_VAR}={value!r}: expected a whole number of workers, 1 or more")
        return size
    return usable_cores()[0]


# --------------------------------------------------------------------------- nesting depth


def nesting_depth() -> int:
    """How many worker-pool levels sit above this process (0 outside any worker)."""
    try:
        return max(0, int(os.environ.get(DEPTH_ENV_VAR, "0")))
    except ValueError:
        return 0


def max_nesting_depth() -> int:
    """The nesting-depth guard: :data:`DEFAULT_MAX_DEPTH` or ``SHMFOREST_MAX_DEPTH``."""
    value = os.environ.get(MAX_DEPTH_ENV_VAR, "").strip()
    if not value:
        return DEFAULT_MAX_DEPTH
    try:
        limit = int(value)
    except ValueError:
        limit = 0
    if limit < 1:
        raise ValueError(f"{MAX_DEPTH_ENV_VAR}={value!r}: expected a whole number of levels, 1 or more")
    return limit


def check_nesting_depth() -> int:
    """Return the current depth; raise if starting workers here would pass the guard.

    Raises
    ------
    NestingDepthError
        This process is already ``max_nesting_depth()`` pool levels deep (also a
        ``RecursionError``).
    """
    depth, limit = nesting_depth(), max_nesting_depth()
    if depth >= limit:
        raise NestingDepthError(
            f"worker pools are nested {depth} levels deep, the limit is {limit}: code running in a "
            "worker keeps creating pools (submit nested work to the pool running it with "
            f"worker_submit, or raise the limit with {MAX_DEPTH_ENV_VAR})"
        )
    return depth


# --------------------------------------------------------------------------- shared state


class _State:
    """One mapping of a budget block in this process, shared by every handle to it.

    POSIX record locks belong to the (process, file) pair and closing *any*
    descriptor of the file drops them, so a process keeps exactly one descriptor
    per budget, here.
    """

    def __init__(self, name: str, fd: int, mm: mmap.mmap, owner_pid: int | None) -> None:
        self.name = name
        self.fd = fd
        self.mm = mm
        self.words = memoryview(mm).cast("q")
        self.size = int(self.words[_H_SIZE])
        self.owner_pid = owner_pid
        self.lock = threading.Lock()
        self.refs = 0
        self.last_reclaim = 0.0

    @contextmanager
    def locked(self) -> Iterator[memoryview]:
        with self.lock:
            fcntl.lockf(self.fd, fcntl.LOCK_EX)
            try:
                if self.words[_H_CLOSED]:
                    raise BudgetError(f"process budget {self.name!r} was closed by its owner")
                yield self.words
            finally:
                fcntl.lockf(self.fd, fcntl.LOCK_UN)

    def reclaim(self, w: memoryview) -> int:
        """Free the slots of processes that died (caller holds the lock)."""
        verdict: dict[tuple[int, int], bool] = {}
        freed = 0
        for i in range(_HEADER_WORDS, _HEADER_WORDS + 2 * self.size, 2):
            pid = w[i]
            if pid:
                key = (pid, w[i + 1])
                if key not in verdict:
                    verdict[key] = is_alive(*key)
                if not verdict[key]:
                    w[i] = w[i + 1] = 0
                    freed += 1
        w[_H_FREE] += freed
        w[_H_RECLAIMED] += freed
        self.last_reclaim = time.monotonic()
        return freed

    def detach(self) -> None:
        self.words.release()
        try:
            self.mm.close()
        except BufferError:  # pragma: no cover - a view escaped
            pass
        os.close(self.fd)


_STATES: dict[str, _State] = {}
_STATES_LOCK = threading.Lock()


def _open_state(name: str) -> _State:
    with _STATES_LOCK:
        state = _STATES.get(name)
        if state is None:
            if not _NAME_RE.match(name):
                raise ValueError(f"{name!r} is not a process budget name (expected {_NAME_PREFIX}<24 hex digits>)")
            try:
                fd = _posixshmem.shm_open("/" + name, os.O_RDWR, mode=0)
            except FileNotFoundError:
                raise BudgetError(f"no process budget named {name!r} (its owner closed it or exited)") from None
            try:
                size = os.fstat(fd).st_size
                if size < 8 * _HEADER_WORDS:
                    raise BudgetError(f"shared-memory block {name!r} is not a process budget")
                mm = mmap.mmap(fd, size)
            except BaseException:
                os.close(fd)
                raise
            state = _State(name, fd, mm, None)
            if state.words[_H_MAGIC] != _MAGIC or state.size < 1 or size < 8 * (_HEADER_WORDS + 2 * state.size):
                state.detach()
                raise BudgetError(f"shared-memory block {name!r} is not a process budget")
            _STATES[name] = state
        state.refs += 1
        return state


def _create_state(size: int) -> _State:
    nbytes = 8 * (_HEADER_WORDS + 2 * size)
    name, fd = create_segment(nbytes, prefix=_NAME_PREFIX)
    try:
        mm = mmap.mmap(fd, nbytes)
    except BaseException:
        os.close(fd)
        unlink_segment(name)
        raise
    words = memoryview(mm).cast("q")
    pid, start = current_process()
    words[_H_SIZE], words[_H_OWNER_PID], words[_H_OWNER_START], words[_H_FREE] = size, pid, start, size
    words[_H_MAGIC] = _MAGIC  # last: a joiner that sees the magic sees the rest
    words.release()
    state = _State(name, fd, mm, pid)
    state.refs = 1
    with _STATES_LOCK:
        _STATES[name] = state
    return state


def _after_fork_in_child() -> None:
    # A lock held by another thread at fork time would never be released here.
    global _STATES_LOCK, _DEFAULT_LOCK
    _STATES_LOCK = threading.Lock()
    _DEFAULT_LOCK = threading.Lock()
    for state in _STATES.values():
        state.lock = threading.Lock()


# --------------------------------------------------------------------------- the budget


class ProcessBudget:
    """A pool of tokens shared by a whole process tree; taking one never blocks.

    Parameters
    ----------
    size : int, optional
        How many tokens (live workers) the budget holds. Default:
        ``SHMFOREST_MAX_WORKERS`` if set, else :func:`usable_cores`.
    inherit : bool, default True
        With no ``size``, a process running under a budget (``SHMFOREST_BUDGET``
        names a live one, as in every pool worker) joins it instead of creating a
        new one; pass ``inherit=False`` or a ``size`` to get a budget of its own.

    Notes
    -----
    The process that creates a budget owns it and removes its shared state on
    :meth:`close`, on leaving a ``with`` block, or at exit; if it is killed, the
    resource tracker removes it. Other processes attach with :meth:`join` or
    :meth:`from_environment`. Tokens are leased to the calling process, so a
    process that dies holding tokens gives them back on the next acquire.

    Examples
    --------
    >>> with ProcessBudget(2) as budget:
    ...     with budget.tokens(3) as got:
    ...         got, budget.available
    (2, 0)
    """

    def __init__(self, size: int | None = None, *, inherit: bool = True) -> None:
        if size is not None:
            if isinstance(size, bool) or not isinstance(size, int):
                raise TypeError(f"size must be an int, got {type(size).__name__}")
            if size < 1:
                raise ValueError(f"size must be 1 or more, got {size}")
        state = None
        if size is None and inherit:
            state = _environment_state()
        self._owns = state is None
        self._state: _State | None = state if state is not None else _create_state(size or _default_size())
        self._name = self._state.name
        self._size = self._state.size

    @classmethod
    def join(cls, name: str) -> ProcessBudget:
        """Attach to the budget called ``name``, created by another process.

        Raises
        ------
        BudgetError
            No such budget exists (its owner closed it or exited).
        """
        self = cls.__new__(cls)
        self._state, self._owns = _open_state(name), False
        self._name, self._size = name, self._state.size
        return self

    @classmethod
    def from_environment(cls) -> ProcessBudget | None:
        """The budget named by ``SHMFOREST_BUDGET``, or None if unset or gone."""
        state = _environment_state()
        if state is None:
            return None
        self = cls.__new__(cls)
        self._state, self._owns, self._name, self._size = state, False, state.name, state.size
        return self

    # -- properties ----------------------------------------------------
    @property
    def name(self) -> str:
        """The budget's identity: what ``SHMFOREST_BUDGET`` carries to descendants."""
        return self._name

    @property
    def size(self) -> int:
        """How many tokens the budget holds in all."""
        return self._size

    @property
    def available(self) -> int:
        """Tokens free right now (after reclaiming those of dead processes)."""
        state = self._live_state()
        with state.locked() as w:
            state.reclaim(w)
            return int(w[_H_FREE])

    @property
    def owner(self) -> bool:
        """Whether this process created the budget (and so removes it)."""
        return self._owns and self._state is not None and self._state.owner_pid == os.getpid()

    @property
    def closed(self) -> bool:
        return self._state is None or bool(self._state.words[_H_CLOSED])

    def environment(self) -> dict[str, str]:
        """Variables that make a process started with them join this budget."""
        return {ENV_VAR: self._name}

    # -- tokens --------------------------------------------------------
    def try_acquire(self, n: int = 1) -> int:
        """Take up to ``n`` tokens without waiting; return how many were taken (0..n)."""
        n = _check_count(n)
        state = self._live_state()
        pid, start = current_process()
        with state.locked() as w:
            if w[_H_FREE] < n:
                state.reclaim(w)
            got = 0
            if w[_H_FREE]:
                for i in range(_HEADER_WORDS, _HEADER_WORDS + 2 * state.size, 2):
                    if got == n:
                        break
                    if w[i] == 0:
                        w[i], w[i + 1] = pid, start
                        got += 1
                w[_H_FREE] -= got
            return got

    def release(self, n: int = 1) -> None:
        """Give back ``n`` tokens this process holds.

        Raises
        ------
        BudgetError
            This process holds fewer than ``n`` tokens (those it holds are released).
        """
        n = _check_count(n)
        state = self._live_state()
        pid, start = current_process()
        with state.locked() as w:
            freed = _free_slots(state, w, pid, start, n)
        if freed < n:
            raise BudgetError(f"release({n}) on budget {self._name!r}, but process {pid} held only {freed} token(s)")

    @contextmanager
    def tokens(self, n: int = 1) -> Iterator[int]:
        """Take up to ``n`` tokens for a ``with`` block; yields how many were taken.

        The tokens are released when the block ends, also on error.
        """
        got = self.try_acquire(n)
        try:
            yield got
        finally:
            if got:
                self.release(got)

    def holders(self) -> dict[int, int]:
        """How many tokens each live process holds, by pid."""
        state = self._live_state()
        with state.locked() as w:
            state.reclaim(w)
            out: dict[int, int] = {}
            for i in range(_HEADER_WORDS, _HEADER_WORDS + 2 * state.size, 2):
                if w[i]:
                    out[int(w[i])] = out.get(int(w[i]), 0) + 1
            return out

    # -- leases on behalf of other processes: what a pool (or a plugin's) builds on -------
    def lease_to(self, pid: int, start: int) -> None:
        """Hand one token this process holds to process ``(pid, start)``.

        A pool takes a token (:meth:`try_acquire`), starts a worker, and leases the
        token to it, so the token is the worker's while it lives and is reclaimed if
        it dies, even when its owner cannot give it back. ``start`` is the worker's
        start time (:func:`shmforest.liveness.start_time`).

        Raises
        ------
        BudgetError
            This process holds no token of this budget.
        """
        state = self._live_state()
        me, my_start = current_process()
        with state.locked() as w:
            for i in range(_HEADER_WORDS, _HEADER_WORDS + 2 * state.size, 2):
                if w[i] == me and w[i + 1] == my_start:
                    w[i], w[i + 1] = pid, start
                    return
        raise BudgetError(f"process {me} holds no token of budget {self._name!r} to hand over")

    def release_lease(self, pid: int, start: int) -> bool:
        """Free one token leased to ``(pid, start)``: when that worker exits.

        Returns False if the lease was already reclaimed (its holder died and a
        later :meth:`try_acquire` freed it) or the budget was closed.
        """
        state = self._state
        if state is None:
            return False
        try:
            with state.locked() as w:
                return _free_slots(state, w, pid, start, 1) == 1
        except BudgetError:  # closed: nothing left to give back to
            return False

    def peek_available(self) -> int:
        """Free tokens, read without the lock; for "is it worth asking" decisions
        such as an executor's ``free_workers()``.

        A "none" answer older than a moment triggers a real look, so tokens of
        processes that died are not missed for long.
        """
        state = self._live_state()
        free = int(state.words[_H_FREE])
        if free == 0 and time.monotonic() - state.last_reclaim > _PEEK_RECLAIM_S:
            with state.locked() as w:
                state.reclaim(w)
                free = int(w[_H_FREE])
        return free

    # -- lifecycle -----------------------------------------------------
    def close(self) -> None:
        """Let go of the budget; the owner also removes its shared state.

        The owner warns with :class:`~shmforest.errors.BudgetWarning` when tokens
        do not add up: some are still held by live processes, or the free count
        disagrees with the slot table. Calling it twice is fine.
        """
        state, self._state = self._state, None
        if state is None:
            return
        problem = None
        if self._owns and state.owner_pid == os.getpid() and not state.words[_H_CLOSED]:
            with state.locked() as w:
                state.reclaim(w)
                held: dict[int, int] = {}
                for i in range(_HEADER_WORDS, _HEADER_WORDS + 2 * state.size, 2):
                    if w[i]:
                        held[int(w[i])] = held.get(int(w[i]), 0) + 1
                free = int(w[_H_FREE])
                w[_H_CLOSED] = 1
            if held or free + sum(held.values()) != state.size:
                who = ", ".join(f"pid {pid}: {count}" for pid, count in sorted(held.items())) or "none"
                problem = (
                    f"process budget {state.name!r} closed with tokens that do not add up: size "
                    f"{state.size}, {free} free, {sum(held.values())} still held ({who}); "
                    "something took tokens and never released them"
                )
            unlink_segment(state.name)
            state.owner_pid = None
        with _STATES_LOCK:
            state.refs -= 1
            if state.refs <= 0:
                if _STATES.get(state.name) is state:
                    del _STATES[state.name]
                state.detach()
        if problem:
            warnings.warn(problem, BudgetWarning, stacklevel=2)

    def __enter__(self) -> ProcessBudget:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __reduce__(self) -> tuple[object, ...]:
        # Another process attaches by name; it never becomes the owner.
        return (ProcessBudget.join, (self._name,))

    def __repr__(self) -> str:
        if self._state is None:
            return f"ProcessBudget(name={self._name!r}, size={self._size}, closed)"
        role = "owner" if self.owner else "joined"
        return f"ProcessBudget(name={self._name!r}, size={self._size}, {role})"

    def _live_state(self) -> _State:
        if self._state is None:
            raise BudgetError(f"process budget {self._name!r} is closed")
        return self._state


def _check_count(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n must be an int, got {type(n).__name__}")
    if n < 0:
        raise ValueError(f"n must be 0 or more, got {n}")
    return n


def _free_slots(state: _State, w: memoryview, pid: int, start: int, n: int) -> int:
    freed = 0
    for i in range(_HEADER_WORDS, _HEADER_WORDS + 2 * state.size, 2):
        if freed == n:
            break
        if w[i] == pid and w[i + 1] == start:
            w[i] = w[i + 1] = 0
            freed += 1
    w[_H_FREE] += freed
    return freed


def _environment_state() -> _State | None:
    name = os.environ.get(ENV_VAR, "").strip()
    if not name:
        return None
    try:
        return _open_state(name)
    except (BudgetError, ValueError):
        return None


# --------------------------------------------------------------------------- process-wide default

_DEFAULT: ProcessBudget | None = None
_DEFAULT_LOCK = threading.Lock()


def default_budget() -> ProcessBudget:
    """The budget code uses when given none.

    The budget named by ``SHMFOREST_BUDGET`` when this process runs under one (as
    every pool worker does); otherwise one budget per process, created on first
    use with the default size and removed at exit.
    """
    global _DEFAULT
    joined = ProcessBudget.from_environment()
    if joined is not None:
        return joined
    with _DEFAULT_LOCK:
        if _DEFAULT is None or _DEFAULT.closed:
            _DEFAULT = ProcessBudget(inherit=False)
        return _DEFAULT


def default_budget_segment() -> str | None:
    """Shared-memory name of this process's lazily created default budget, if any."""
    budget = _DEFAULT
    if budget is None or not budget.owner or budget.closed:
        return None
    return budget.name


def _close_owned_at_exit() -> None:
    for state in list(_STATES.values()):
        if state.owner_pid == os.getpid():
            handle = ProcessBudget.__new__(ProcessBudget)
            handle._state, handle._owns, handle._name, handle._size = state, True, state.name, state.size
            state.refs += 1
            handle.close()


def _at_exit(reason: lifecycle.ExitReason) -> None:
    # Not on SIGTERM: the handler may interrupt this process's own budget calls,
    # whose lock is not re-entrant; the resource tracker removes the block then.
    if reason != "sigterm":
        _close_owned_at_exit()


lifecycle.register("budgets", at_exit=_at_exit, after_fork=_after_fork_in_child)
