"""The worker side of :class:`shmforest.pool.WorkerPool`: its main loop and nested submission.

One process per worker, connected to the pool's owner by a socket pair. The
main thread runs one task at a time; a reader thread takes every message off the
socket, so results of nested submissions arrive while a task runs; a watchdog
thread ends the worker when the owner is gone. Messages are a 10-byte header
(kind, flag, id) followed by a cloudpickle payload; see ``pool.py`` for the flow.
"""

from __future__ import annotations

import concurrent.futures as cf
import ctypes
import itertools
import os
import queue
import signal
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cloudpickle

from shmforest.budget import DEPTH_ENV_VAR, ENV_VAR, ProcessBudget, _alive
from shmforest.errors import TaskPicklingError

# -- wire format ---------------------------------------------------------------------
HEADER = struct.Struct("<BBq")  # kind, flag, id
# owner -> worker
RUN = 1  # id: task; payload: pickled (fn, args, kwargs)
DECISION = 2  # id: nested request; flag: DISPATCHED or INLINE
NESTED_DONE = 3  # id: nested request; flag: OK or ERROR; payload: outcome
EXIT = 4  # finish and exit
# worker -> owner
DONE = 5  # id: task; flag: OK or ERROR; payload: outcome
SUBMIT = 6  # id: nested request; payload: pickled (fn, args, kwargs)

OK, ERROR = 0, 1
DISPATCHED, INLINE = 0, 1
# Shared ints the owner keeps current for its workers: how many workers are idle,
# and whether the pool is shutting down. Read without a lock, only to skip a round
# trip when the answer would surely be "run it inline".
IDLE, CLOSING = 0, 1
_ORPHAN_POLL_S = 0.25
_ORPHAN_EXIT_CODE = 70


# glibc mallopt parameter numbers (malloc.h)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3


def message(kind: int, flag: int, ident: int, payload: bytes | memoryview = b"") -> bytes:
    return HEADER.pack(kind, flag, ident) + payload


class RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker, attached as its ``__cause__``."""

    def __init__(self, tb: str) -> None:
        super().__init__(tb)
        self.tb = tb

    def __str__(self) -> str:
        return f'\n"""\n{self.tb}"""'


def dump_task(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> bytes:
    """Pickle a task; raise :class:`TaskPicklingError` naming what could not be pickled."""
    try:
        return cloudpickle.dumps((fn, args, kwargs), protocol=5)
    except Exception as exc:
        culprit = _unpicklable_part(fn, args, kwargs)
        raise TaskPicklingError(f"cannot send task {_name(fn)} to a worker: {culprit} cannot be pickled ({exc})") from exc


def _unpicklable_part(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    parts = [("the function", fn)]
    parts += [(f"argument {i}", a) for i, a in enumerate(args)]
    parts += [(f"argument {k!r}", v) for k, v in kwargs.items()]
    for what, obj in parts:
        try:
            cloudpickle.dumps(obj, protocol=5)
        except Exception:
            return f"{what} (of type {type(obj).__module__}.{type(obj).__qualname__})"
    return "part of it"  # pragma: no cover - each part pickles alone but not together


def _name(fn: Any) -> str:
    return getattr(fn, "__qualname__", None) or type(fn).__qualname__


def dump_outcome_error(exc: BaseException) -> bytes:
    """Pickle an exception with its traceback text; never fails."""
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    try:
        return cloudpickle.dumps((exc, tb), protocol=5)
    except Exception as pickling_exc:
        substitute = TaskPicklingError(
            f"the task raised {type(exc).__module__}.{type(exc).__qualname__}: {exc}; "
            f"that exception cannot be pickled ({pickling_exc})"
        )
        return cloudpickle.dumps((substitute, tb), protocol=5)


def run_payload(payload: memoryview | bytes) -> tuple[int, bytes]:
    """Unpickle and run a task; return (flag, pickled outcome)."""
    try:
        fn, args, kwargs = cloudpickle.loads(payload)
    except BaseException as exc:  # noqa: BLE001 - reported to whoever submitted it
        err = TaskPicklingError(f"the task could not be unpickled in worker {os.getpid()}: {type(exc).__name__}: {exc}")
        return ERROR, dump_outcome_error(err)
    try:
        result = fn(*args, **kwargs)
    except BaseException as exc:  # noqa: BLE001 - SystemExit in a task fails the task, not the worker
        return ERROR, dump_outcome_error(exc)
    del fn, args, kwargs
    try:
        return OK, cloudpickle.dumps(result, protocol=5)
    except Exception as exc:
        err = TaskPicklingError(
            f"the task's result is of type {type(result).__module__}.{type(result).__qualname__}, "
            f"which cannot be pickled ({exc})"
        )
        return ERROR, dump_outcome_error(err)


def set_outcome(future: cf.Future[Any], flag: int, payload: memoryview | bytes) -> None:
    """Complete ``future`` from a pickled outcome."""
    try:
        value = cloudpickle.loads(payload)
    except BaseException as exc:  # noqa: BLE001
        value = None
        flag, err = ERROR, TaskPicklingError(f"the task's outcome could not be unpickled: {type(exc).__name__}: {exc}")
    else:
        if flag == ERROR:
            err, tb = value
            if tb:
                err.__cause__ = RemoteTraceback(tb)
    if future.done():  # cancelled by its owner meanwhile
        return
    if flag == OK:
        future.set_result(value)
    else:
        future.set_exception(err)


def run_inline(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> cf.Future[Any]:
    """Run a task now, in the caller; return its finished future."""
    future: cf.Future[Any] = cf.Future()
    future.set_running_or_notify_cancel()
    try:
        result = fn(*args, **kwargs)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - a future carries what the task raised
        future.set_exception(exc)
    else:
        future.set_result(result)
    return future


# -- the worker process ------------------------------------------------------------------


@dataclass
class WorkerConfig:
    """What a worker needs from its owner; pickled once, at start."""

    budget_name: str
    start_method: str
    depth: int
    owner_pid: int
    owner_start: int
    shared: Any  # multiprocessing RawArray('i', 2): IDLE, CLOSING
    env: dict[str, str] = field(default_factory=dict)


class _Pending:
    __slots__ = ("decided", "inline", "future")

    def __init__(self) -> None:
        self.decided = threading.Event()
        self.inline = False
        self.future: cf.Future[Any] = cf.Future()


class Worker:
    """This process's side of the connection to the pool that started it."""

    def __init__(self, conn: Any, config: WorkerConfig) -> None:
        self.pid = os.getpid()
        self.conn = conn
        self.config = config
        self.shared = config.shared
        self.budget = ProcessBudget.join(config.budget_name)
        self.jobs: queue.SimpleQueue[tuple[int, bytes] | None] = queue.SimpleQueue()
        self.pending: dict[int, _Pending] = {}
        self.ids = itertools.count(1)
        self.send_lock = threading.Lock()
        self.exiting = False

    def send(self, data: bytes) -> None:
        with self.send_lock:
            self.conn.send_bytes(data)

    # -- nested submission ---------------------------------------------
    def free_workers(self) -> int:
        """Workers a nested submission could get now: the pool's idle ones, or new ones on free tokens."""
        shared = self.shared
        return int(shared[IDLE]) + (0 if shared[CLOSING] else self.budget._peek_available())

    def submit(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> cf.Future[Any]:
        if self.free_workers() == 0:
            return run_inline(fn, args, kwargs)  # surely no one to take it: skip the round trip
        try:
            payload = dump_task(fn, args, kwargs)
        except TaskPicklingError as exc:
            future: cf.Future[Any] = cf.Future()
            future.set_exception(exc)
            return future
        ident = next(self.ids)
        pending = self.pending[ident] = _Pending()
        self.send(message(SUBMIT, 0, ident, payload))
        pending.decided.wait()
        if pending.inline:
            del self.pending[ident]
            return run_inline(fn, args, kwargs)
        return pending.future

    # -- threads ---------------------------------------------------------
    def read(self) -> None:
        """Reader thread: every message from the owner arrives here."""
        while True:
            try:
                data = self.conn.recv_bytes()
            except (EOFError, OSError):
                if self.exiting:
                    return
                os._exit(_ORPHAN_EXIT_CODE)  # the owner is gone: nobody wants our results
            kind, flag, ident = HEADER.unpack_from(data)
            if kind == RUN:
                self.jobs.put((ident, data))
            elif kind == DECISION:
                pending = self.pending[ident]
                pending.inline = flag == INLINE
                if not pending.inline:
                    # Running before the submitter wakes: its result may arrive next, on this thread.
                    pending.future.set_running_or_notify_cancel()
                pending.decided.set()
            elif kind == NESTED_DONE:
                pending = self.pending.pop(ident)
                set_outcome(pending.future, flag, memoryview(data)[HEADER.size :])
            elif kind == EXIT:
                self.exiting = True
                self.jobs.put(None)
                return

    def watch_owner(self) -> None:
        """Watchdog thread: exit if the owner died without the socket telling us."""
        while True:
            time.sleep(_ORPHAN_POLL_S)
            if not _alive(self.config.owner_pid, self.config.owner_start):
                os._exit(_ORPHAN_EXIT_CODE)

    def serve(self) -> None:
        threading.Thread(target=self.read, name="shmforest-worker-reader", daemon=True).start()
        threading.Thread(target=self.watch_owner, name="shmforest-worker-watchdog", daemon=True).start()
        while True:
            job = self.jobs.get()
            if job is None:
                return
            ident, data = job
            flag, payload = run_payload(memoryview(data)[HEADER.size :])
            del job, data
            try:
                self.send(message(DONE, flag, ident, payload))
            except OSError:
                os._exit(_ORPHAN_EXIT_CODE)


_WORKER: Worker | None = None


def current_worker() -> Worker | None:
    """This process's :class:`Worker` if it is a pool worker, else None."""
    worker = _WORKER
    if worker is None or worker.pid != os.getpid():
        return None
    return worker


def main(conn: Any, config: WorkerConfig) -> None:
    """Entry point of a worker process."""
    global _WORKER
    # Ctrl-C reaches the whole foreground process group; the owner handles it and
    # tears the pool down. A no-op handler (not SIG_IGN) so programs a task execs
    # get the default back.
    signal.signal(signal.SIGINT, _ignore_signal)
    for key in [k for k in os.environ if k.startswith("SHMFOREST_") and k not in config.env]:
        del os.environ[key]
    os.environ.update(config.env)
    os.environ[ENV_VAR] = config.budget_name
    os.environ[DEPTH_ENV_VAR] = str(config.depth)
    if config.start_method == "fork":
        _forget_inherited_forkserver()
    _keep_freed_memory()
    _WORKER = Worker(conn, config)
    try:
        _WORKER.serve()
    finally:
        _WORKER.exiting = True
    _clean_up_after_tasks()
    sys.stdout.flush()
    sys.stderr.flush()


def _keep_freed_memory() -> None:
    """Ask glibc to reuse freed heap for numpy's temporaries instead of mapping them afresh.

    By default glibc maps every block of 128 KiB or more on its own and unmaps it
    when freed, until it has seen such a block freed (then it raises that threshold,
    up to 32 MiB). Setting any of these parameters freezes the threshold, so all
    three are set: blocks up to 32 MiB come from the heap, and up to 256 MiB of free
    heap is kept rather than trimmed. One fully grown tree on 75,000 x 20, fitted in
    a fresh interpreter: 47,000 minor page faults with glibc's defaults, 96,000 with
    M_TOP_PAD alone (the setting before this one), 455 with these
    (``benchmarks/test_bench_faults.py``, which sets them through the MALLOC_*
    variables). Workers are ours to tune; the user's own process is left alone.
    """
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20)
        libc.mallopt(_M_TRIM_THRESHOLD, 256 << 20)
        libc.mallopt(_M_TOP_PAD, 64 << 20)
    except (OSError, AttributeError):  # not glibc: nothing to tune
        pass


def _clean_up_after_tasks() -> None:
    """End what tasks created here: pools, budgets, shared-memory blocks.

    multiprocessing ends a child with ``os._exit`` and rightly skips atexit (a
    forked child inherits its parent's handlers, temporary directories' included),
    so the owners' exit hooks are called by name. Pools go first: multiprocessing
    joins a child's children after this returns.
    """
    from shmforest import _dispatch, budget, shared

    _dispatch._end_pools_owned_here(wait=True)
    budget._close_owned_at_exit()
    shared.close_owned()


def _ignore_signal(signum: int, frame: object) -> None:
    pass


def _forget_inherited_forkserver() -> None:
    """Let code in a forked worker start forkserver processes of its own.

    A forked child inherits its parent's handle on the parent's forkserver, which it
    cannot wait on (``ChildProcessError``) and whose environment lacks this budget;
    starting afresh gives a forkserver, and so processes, under this worker's env.
    """
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    if server is None or getattr(server, "_forkserver_pid", None) is None:
        return
    server._lock = threading.Lock()
    alive_fd = server._forkserver_alive_fd
    server._forkserver_pid = server._forkserver_address = server._forkserver_alive_fd = None
    if alive_fd is not None:
        try:
            os.close(alive_fd)
        except OSError:  # pragma: no cover
            pass


def _after_fork_in_child() -> None:
    # A process forked from a worker (by a task) is not a worker; keeping the
    # socket open would also hide the worker's death from its owner.
    global _WORKER
    worker = _WORKER
    if worker is not None and worker.pid != os.getpid():
        _WORKER = None
        try:
            worker.conn.close()
        except OSError:  # pragma: no cover
            pass


os.register_at_fork(after_in_child=_after_fork_in_child)
