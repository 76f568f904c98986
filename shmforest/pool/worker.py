"""The worker side of :class:`shmforest.pool.WorkerPool`: its main loop and nested submission.

One process per worker, connected to the pool's owner by a socket pair. The
main thread runs one task at a time; a reader thread takes every message off the
socket, so results of nested submissions arrive while a task runs; a watchdog
thread ends the worker when the owner is gone. Messages are a 10-byte header
(kind, flag, id) followed by a cloudpickle payload (:mod:`shmforest.pool.wire`);
see :mod:`shmforest.pool` for the flow.
"""

from __future__ import annotations

import concurrent.futures as cf
import ctypes
import itertools
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shmforest import lifecycle
from shmforest.budget import DEPTH_ENV_VAR, ENV_VAR, ProcessBudget
from shmforest.errors import TaskPicklingError
from shmforest.liveness import is_alive
from shmforest.pool.wire import (
    CLOSING,
    DECISION,
    DONE,
    EXIT,
    HEADER,
    IDLE,
    INLINE,
    NESTED_DONE,
    RUN,
    SUBMIT,
    dump_task,
    message,
    run_inline,
    run_payload,
    set_outcome,
)

_ORPHAN_POLL_S = 0.25
_ORPHAN_EXIT_CODE = 70

# glibc mallopt parameter numbers (malloc.h)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3


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
        return int(shared[IDLE]) + (0 if shared[CLOSING] else self.budget.peek_available())

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
            if not is_alive(self.config.owner_pid, self.config.owner_start):
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
    so the exit hooks run here, in their declared order (:mod:`shmforest.lifecycle`):
    pools first, since multiprocessing joins a child's children after this returns.
    """
    lifecycle.run_exit_hooks("task-end")


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


lifecycle.register("worker", after_fork=_after_fork_in_child)
