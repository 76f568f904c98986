"""The owner's side of a :class:`~shmforest.pool.WorkerPool`: its workers and the dispatcher thread.

See :mod:`shmforest.pool` for the flow. Everything here runs in the process that created
the pool: callers' threads submit, one dispatcher thread reads every worker's
socket and sentinel, routes results and nested submissions, and buries workers
that die.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextvars
import itertools
import os
import sys
import threading
import warnings
import weakref
from collections import deque
from collections.abc import Callable
from multiprocessing.connection import wait as wait_ready
from typing import Any

from shmforest import lifecycle
from shmforest.budget import DEPTH_ENV_VAR, ENV_VAR, ProcessBudget
from shmforest.errors import BudgetError, PoolTerminatedError, TaskPicklingError, TaskRetryWarning, WorkerCrashedError
from shmforest.liveness import current_process, start_time
from shmforest.pool import wire
from shmforest.pool import worker as worker_side
from shmforest.pool.launch import describe_exit, process_class
from shmforest.shared import ensure_tracker

#: The task of a worker that warm_up() is starting: none yet (its origin is None).
_STARTING: tuple[int, Any] = (0, None)

_EXIT_GRACE_S = 5.0  # how long a worker asked to exit may take before it is killed
_TERMINATE_GRACE_S = 1.0  # after SIGTERM, before SIGKILL

# The pool running an inline task in this thread, so worker_submit inside it works.
INLINE_POOL: contextvars.ContextVar[Any] = contextvars.ContextVar("shmforest_inline_pool", default=None)


class _Worker:
    """The owner's record of one worker process."""

    __slots__ = ("process", "pid", "lease", "conn", "send_lock", "task", "dead", "dying")

    def __init__(self) -> None:
        self.process: Any = None
        self.pid = 0
        self.lease: tuple[int, int] | None = None
        self.conn: Any = None
        self.send_lock = threading.Lock()
        # (task id, origin): a Future for a top-level task, (worker, request id) for a nested one
        self.task: tuple[int, Any] | None = None
        self.dead = False
        self.dying = False  # its death is being handled: give it nothing more

    def send(self, data: bytes) -> bool:
        with self.send_lock:
            try:
                self.conn.send_bytes(data)
                return True
            except (OSError, ValueError, AttributeError):  # it died; its sentinel says so
                return False


_POOLS: weakref.WeakSet[PoolState] = weakref.WeakSet()


class PoolState:
    """Everything the dispatcher thread shares with the pool's callers."""

    def __init__(self, budget: ProcessBudget, ctx: Any, child_depth: int, max_retries: int = 0) -> None:
        self.budget = budget
        self.ctx = ctx
        self.child_depth = child_depth
        self.max_retries = max_retries
        # What a dead worker's task needs to run again: its pickled payload, by task id,
        # kept from dispatch to its end (only when retries are allowed), and its crashes so far.
        self.payloads: dict[int, bytes] = {}
        self.crashes: dict[int, int] = {}
        self.owner_pid = os.getpid()
        self.lock = threading.Lock()
        self.start_lock = threading.Lock()
        self.workers: list[_Worker] = []
        self.idle: list[_Worker] = []
        self.pending: deque[tuple[int, cf.Future[Any], bytes]] = deque()
        self.ids = itertools.count(1)
        self.closing = False
        self.terminated = False
        self.shared = ctx.RawArray("i", 2)
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        self.thread: threading.Thread | None = None
        self.stopped = threading.Event()
        self.starting: set[_Worker] = set()  # being started by warm_up(), counted as free
        self.warming: threading.Thread | None = None
        _POOLS.add(self)

    # -- helpers (call with self.lock held) ------------------------------------------
    def _publish(self) -> None:
        self.shared[wire.IDLE] = len(self.idle)
        self.shared[wire.CLOSING] = int(self.closing)

    def _take_idle(self) -> _Worker | None:
        if not self.idle:
            return None
        worker = self.idle.pop()
        self.shared[wire.IDLE] = len(self.idle)
        return worker

    def _take_token(self) -> bool:
        try:
            return self.budget.try_acquire(1) == 1
        except BudgetError:  # the budget was closed under us: run what comes inline
            return False

    def _keep(self, ident: int, payload: bytes | memoryview) -> None:
        """Keep a dispatched task's payload until it ends, to run it again if its worker dies (lock held)."""
        if self.max_retries:
            self.payloads[ident] = bytes(payload)

    def _forget(self, ident: int) -> None:
        """A task ended: its payload and crash count go (lock held)."""
        self.payloads.pop(ident, None)
        self.crashes.pop(ident, None)

    @staticmethod
    def _claim(future: cf.Future[Any]) -> bool:
        """Whether a queued task is still wanted; a retried one is running already."""
        return future.running() or future.set_running_or_notify_cancel()

    @staticmethod
    def _drop_queued(future: cf.Future[Any], err: BaseException) -> None:
        """A queued task will not run: cancelled, or, if it ran before (a retry), failed with ``err``."""
        if not future.cancel() and not future.done():
            future.set_exception(err)

    def wake(self) -> None:
        with self.lock:
            if self.wake_w >= 0:
                try:
                    os.write(self.wake_w, b"x")
                except OSError:  # full: a wake-up is pending anyway
                    pass

    # -- submission --------------------------------------------------------------------
    def free_workers(self) -> int:
        with self.lock:
            return len(self.idle) + len(self.starting) + (0 if self.closing else self.budget.peek_available())

    def warm_up(self) -> None:
        """Start idle workers on every free token, in a thread of their own; return at once.

        For a caller about to submit as many tasks as there are workers, but
        busy for a while first (the top levels of a tree): the workers' start
        then overlaps that work instead of following it. A task submitted
        meanwhile waits for the first of them to be up.
        """
        with self.lock:
            if self.closing or self.terminated or self.warming is not None or self.owner_pid != os.getpid():
                return
            self.warming = threading.Thread(target=self._start_idle_workers, name="shmforest-pool-warm-up", daemon=True)
            self.warming.start()

    def _start_idle_workers(self) -> None:
        try:
            while True:
                with self.lock:
                    if self.closing or self.terminated or self.wake_r < 0 or not self._take_token():
                        return
                    # Registered with the token: a submission from now on queues for it.
                    worker = self._register(None)
                    self.starting.add(worker)
                try:
                    started = self._start_worker(None, b"", worker)
                finally:
                    with self.lock:
                        self.starting.discard(worker)  # done already if it is up
                if started is None:
                    return
        finally:
            with self.lock:
                self.warming = None

    def submit(
        self, pool: Any, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], nested: bool
    ) -> cf.Future[Any]:
        if self.owner_pid != os.getpid():
            raise RuntimeError("this WorkerPool belongs to another process; inside a task use worker_submit()")
        if self.closing and not nested:
            raise RuntimeError("cannot schedule new futures after shutdown")
        if not self.workers and not self.idle and self.budget.peek_available() == 0:
            return self._inline(pool, fn, args, kwargs)  # nothing could take it: skip pickling
        try:
            payload = wire.dump_task(fn, args, kwargs)
        except TaskPicklingError as exc:
            failed: cf.Future[Any] = cf.Future()
            failed.set_exception(exc)
            return failed
        future: cf.Future[Any] = cf.Future()
        run_here = False
        with self.lock:
            if self.closing and not nested:
                raise RuntimeError("cannot schedule new futures after shutdown")
            ident = next(self.ids)
            worker = self._take_idle()
            if worker is not None:
                future.set_running_or_notify_cancel()
                worker.task = (ident, future)
            elif not self.closing and self._take_token():
                future.set_running_or_notify_cancel()
            elif self.workers and not nested:
                self._keep(ident, payload)
                self.pending.append((ident, future, payload))
                return future
            else:
                run_here = True
            if not run_here:
                self._keep(ident, payload)
        if run_here:  # outside the lock: the task may submit more
            return self._inline(pool, fn, args, kwargs)
        if worker is not None:
            worker.send(wire.message(wire.RUN, 0, ident, payload))
        elif self._start_worker((ident, future), payload) is None:
            with self.lock:
                self._forget(ident)
            return self._inline(pool, fn, args, kwargs, future)
        return future

    def _inline(
        self,
        pool: Any,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        future: cf.Future[Any] | None = None,
    ) -> cf.Future[Any]:
        token = INLINE_POOL.set(pool)
        try:
            done = wire.run_inline(fn, args, kwargs)
        finally:
            INLINE_POOL.reset(token)
        if future is None:
            return done
        exc = done.exception()
        future.set_exception(exc) if exc is not None else future.set_result(done.result())
        return future

    def _register(self, task: tuple[int, Any] | None) -> _Worker:
        """A new worker's record, counted from now on (lock held; its process is yet to start)."""
        worker = _Worker()
        worker.task = task if task is not None else _STARTING
        self.workers.append(worker)  # its end of the socket is closed in forked children
        if self.thread is None:
            self.thread = threading.Thread(target=self._dispatch, name="shmforest-pool-dispatcher", daemon=True)
            self.thread.start()
        return worker

    def _start_worker(
        self, task: tuple[int, Any] | None, payload: bytes, worker: _Worker | None = None
    ) -> _Worker | None:
        """Start a worker for ``task`` with a token this process just took; None if it failed.

        With no task (:meth:`warm_up`), the worker joins the idle ones once it is
        up, or takes a task queued meanwhile. ``worker``: its record, if the caller
        registered it when it took the token (:meth:`_register`). From then on
        submissions queue for it, and a shutdown waits for it: its placeholder
        task keeps the dispatcher from stopping before it is up.
        """
        owner_end, child_end = self.ctx.Pipe(duplex=True)
        with self.lock:
            if self.terminated or self.wake_r < 0:
                owner_end.close()
                child_end.close()
                if worker is not None:
                    self.workers.remove(worker)
                    self.starting.discard(worker)
                self.budget.release(1)
                return None
            if worker is None:
                worker = self._register(task)
            worker.conn = owner_end
        config = worker_side.WorkerConfig(
            budget_name=self.budget.name,
            start_method=self.ctx.get_start_method(),
            depth=self.child_depth,
            owner_pid=current_process()[0],
            owner_start=current_process()[1],
            shared=self.shared,
            env={
                k: v for k, v in os.environ.items() if k.startswith("SHMFOREST_") and k not in (ENV_VAR, DEPTH_ENV_VAR)
            },
        )
        process = process_class(self.ctx)(
            target=worker_side.main, args=(child_end, config), name="shmforest-worker", daemon=False
        )
        try:
            with self.start_lock:
                ensure_tracker()
                process.start()
        except BaseException as exc:
            with self.lock:
                self.workers.remove(worker)
                self.starting.discard(worker)
                self.budget.release(1)
            owner_end.close()
            if isinstance(exc, OSError):  # out of processes or memory: run it some other way
                return None
            raise
        finally:
            child_end.close()
        start = start_time(process.pid)
        try:
            if start is None:  # died already; its sentinel will report it
                self.budget.release(1)
            else:
                self.budget.lease_to(process.pid, start)
                worker.lease = (process.pid, start)
        except BudgetError:
            pass
        with self.lock:
            worker.process, worker.pid = process, process.pid
            terminated = self.terminated
        if terminated:  # terminate() ran while this one was starting
            self._reap(worker, kill=True)
            return None
        if task is None:
            with self.lock:
                self.starting.discard(worker)  # free from now on as an idle one, in one step
                if worker.task is _STARTING:  # not buried meanwhile
                    worker.task = None
                    self._next_for(worker)
        else:
            worker.send(wire.message(wire.RUN, 0, task[0], payload))
        self.wake()  # the dispatcher now watches this worker too
        return worker

    # -- the dispatcher thread -----------------------------------------------------------
    def _dispatch(self) -> None:
        try:
            while True:
                with self.lock:
                    if self.terminated or self.wake_r < 0:
                        return
                    if self.closing and not self.pending and all(w.task is None for w in self.workers):
                        self.idle = []  # from now on nested submissions run inline
                        self._publish()
                        break
                    watched = {}
                    for worker in self.workers:
                        if worker.process is not None and not worker.dead:
                            watched[worker.conn] = worker
                            watched[worker.process.sentinel] = worker
                    # Queued tasks and no worker: look for a token now and then.
                    stranded = bool(self.pending) and not self.workers
                try:
                    ready_list = wait_ready([self.wake_r, *watched], timeout=0.05 if stranded else None)
                except (OSError, ValueError):  # a worker was reaped under us (terminate)
                    continue
                if stranded:
                    self._refill()
                for ready in ready_list:
                    if ready == self.wake_r:
                        os.read(self.wake_r, 4096)
                        continue
                    worker = watched[ready]
                    if worker.dead:
                        continue
                    from_socket = ready is worker.conn  # else the worker's sentinel
                    if from_socket:
                        try:
                            data = worker.conn.recv_bytes()
                        except (EOFError, OSError):
                            self._bury(worker)
                            continue
                        self._handle(worker, data)
                    else:
                        self._bury(worker)
            self._stop_workers()
        except BaseException as exc:  # noqa: BLE001 - never leave futures hanging
            self._break(exc)
        finally:
            self.stopped.set()
            self._close_pipe()

    def _handle(self, worker: _Worker, data: bytes) -> None:
        kind, flag, ident = wire.HEADER.unpack_from(data)
        if kind == wire.DONE:
            with self.lock:
                task, worker.task = worker.task, None
                if task is not None:
                    self._forget(task[0])
                self._next_for(worker)
            if task is not None:
                self._deliver(task[1], flag, memoryview(data)[wire.HEADER.size :])
        elif kind == wire.SUBMIT:
            self._nested(worker, ident, memoryview(data)[wire.HEADER.size :])

    def _next_for(self, worker: _Worker) -> None:
        """Give an idle worker the next queued task, or put it with the idle (lock held)."""
        if worker.dying:
            return
        while self.pending:
            ident, future, payload = self.pending.popleft()
            if self._claim(future):
                worker.task = (ident, future)
                worker.send(wire.message(wire.RUN, 0, ident, payload))
                return
            self._forget(ident)
        self.idle.append(worker)
        self.shared[wire.IDLE] = len(self.idle)

    def _deliver(self, origin: Any, flag: int, payload: memoryview) -> None:
        if isinstance(origin, cf.Future):
            wire.set_outcome(origin, flag, payload)
        else:
            requester, request = origin
            if not requester.dead:  # its result has nowhere to go otherwise
                requester.send(wire.message(wire.NESTED_DONE, flag, request, payload))

    def _nested(self, requester: _Worker, request: int, payload: memoryview) -> None:
        with self.lock:
            ident = next(self.ids)
            task = (ident, (requester, request))
            worker = self._take_idle()
            if worker is not None:
                worker.task = task
            elif self.closing or not self._take_token():
                requester.send(wire.message(wire.DECISION, wire.INLINE, request))
                return
            self._keep(ident, payload)
        if worker is not None:
            worker.send(wire.message(wire.RUN, 0, ident, payload))
        elif self._start_worker(task, bytes(payload)) is None:
            with self.lock:
                self._forget(ident)
            requester.send(wire.message(wire.DECISION, wire.INLINE, request))
            return
        requester.send(wire.message(wire.DECISION, wire.DISPATCHED, request))

    def _reap(self, worker: _Worker, *, kill: bool = False) -> tuple[Any, int | None]:
        """Wait for a worker to end (killing it if asked or stuck), release its token.

        Returns its task, if it held one, and its exit code. Only the first call
        for a worker does anything.
        """
        with self.lock:
            if worker.dead:
                return None, None
            worker.dead = True
            if worker in self.workers:
                self.workers.remove(worker)
            if worker in self.idle:
                self.idle.remove(worker)
            self._publish()
            task, worker.task = worker.task, None
        process = worker.process
        if kill:
            process.terminate()
        process.join(_TERMINATE_GRACE_S if kill else _EXIT_GRACE_S)
        if process.exitcode is None:
            process.kill()
            process.join()
        exitcode = process.exitcode
        worker.conn.close()
        process.close()
        if worker.lease is not None:
            self.budget.release_lease(*worker.lease)
            worker.lease = None
        return task, exitcode

    def _bury(self, worker: _Worker) -> None:
        """A worker died (or broke its socket): fail its task, give its token back."""
        worker.dying = True
        try:  # what it sent before it died still counts: a finished task is not lost
            while worker.conn.poll(0):
                self._handle(worker, worker.conn.recv_bytes())
        except (EOFError, OSError):
            pass
        task, exitcode = self._reap(worker)
        if task is not None and task[1] is not None and not self._retry(task, worker.pid, exitcode):
            with self.lock:
                runs = self.crashes.get(task[0], 0) + 1
                self._forget(task[0])
            msg = f"{describe_exit(worker.pid, exitcode)} while running a task"
            if runs > 1:
                msg += f" (it ran {runs} times, each time on a fresh worker: max_retries={self.max_retries})"
            self._fail(task[1], WorkerCrashedError(msg, pid=worker.pid, exitcode=exitcode))
        self._refill()

    def _retry(self, task: tuple[int, Any], pid: int, exitcode: int | None) -> bool:
        """Run a dead worker's task again on a fresh (or idle) worker, if it has retries left.

        Returns whether the task is taken care of: sent again, queued, or no longer
        wanted (a nested task whose requester died too). A task's result does not
        depend on where it runs (a forest's seeds are drawn before dispatch), so
        the rerun gives the same bits. A nested task is run again only if a worker or
        token is free now: its requester waits for it and cannot take it back inline.
        """
        ident, origin = task
        start = False
        with self.lock:
            payload = self.payloads.get(ident)
            runs = self.crashes.get(ident, 0) + 1
            if payload is None or self.terminated or runs > self.max_retries:
                return False
            if not isinstance(origin, cf.Future) and origin[0].dead:
                self._forget(ident)  # its requester died too: nobody wants the result
                return True
            self.crashes[ident] = runs
            worker = self._take_idle()
            if worker is not None:
                worker.task = task
            elif self._take_token():
                start = True
            elif isinstance(origin, cf.Future):
                self.pending.appendleft((ident, origin, payload))
            else:
                return False
        try:
            warnings.warn(
                f"{describe_exit(pid, exitcode)} while running a task; running it again on a fresh worker "
                f"(retry {runs} of at most {self.max_retries})",
                TaskRetryWarning,
                stacklevel=2,
            )
        except Exception:  # noqa: BLE001 - warnings turned into errors must not stop the dispatcher
            pass
        if worker is not None:
            worker.send(wire.message(wire.RUN, 0, ident, payload))
        elif start and self._start_worker(task, payload) is None:
            return False
        return True

    def _fail(self, origin: Any, err: BaseException) -> None:
        if origin is None:  # a worker that died starting up held no task
            return
        if isinstance(origin, cf.Future):
            if not origin.done():
                origin.set_exception(err)
        else:
            requester, request = origin
            if not requester.dead:
                requester.send(wire.message(wire.NESTED_DONE, wire.ERROR, request, wire.dump_outcome_error(err)))

    def _refill(self) -> None:
        """Tasks queued and no worker left to run them: start one when a token is free.

        Without a token they stay queued; the dispatcher looks again every 50 ms.
        """
        with self.lock:
            if not self.pending or self.workers or self.terminated or not self._take_token():
                return
            while self.pending:
                ident, future, payload = self.pending.popleft()
                if self._claim(future):
                    break
                self._forget(ident)
            else:
                self.budget.release(1)
                return
        if self._start_worker((ident, future), payload) is None:
            with self.lock:
                self._forget(ident)
            if not future.done():
                future.set_exception(PoolTerminatedError("no worker could be started for this task"))

    def _stop_workers(self) -> None:
        """Graceful end: ask every worker to exit, wait, give the tokens back."""
        with self.lock:
            workers = [w for w in self.workers if w.process is not None]
            for worker in workers:
                worker.send(wire.message(wire.EXIT, 0, 0))
        for worker in workers:
            self._reap(worker)

    def _break(self, exc: BaseException) -> None:  # pragma: no cover - a bug in the dispatcher
        self._kill_all(PoolTerminatedError(f"the pool's dispatcher failed: {type(exc).__name__}: {exc}"))

    # -- ending ------------------------------------------------------------------------------
    def shutdown(self, wait: bool, cancel_futures: bool) -> None:
        with self.lock:
            if self.owner_pid != os.getpid():
                return
            self.closing = True
            self._publish()
            if cancel_futures:
                for ident, future, _ in self.pending:
                    self._forget(ident)
                    self._drop_queued(future, PoolTerminatedError("the pool was shut down before this task ran again"))
                self.pending.clear()
            started = self.thread is not None
            if not started:  # no worker ever started: nothing to stop; none will start now
                fds, self.wake_r, self.wake_w = (self.wake_r, self.wake_w), -1, -1
            warming = self.warming
        if wait and warming is not None and warming is not threading.current_thread():
            warming.join()  # it sees closing and starts no more; one it is starting is stopped below
        if not started:
            for fd in fds:
                if fd >= 0:
                    os.close(fd)
            self.stopped.set()
            return
        self.wake()
        if wait and self.thread is not threading.current_thread():  # not from a done-callback
            self.stopped.wait()
            self._close_pipe()

    def terminate(self) -> None:
        with self.lock:
            if self.owner_pid != os.getpid() or self.terminated:
                return
            self.closing = self.terminated = True
            self._publish()
        self.wake()
        # Workers first, all at once: the dispatcher may be busy, the 2 s bound is not.
        self._kill_all(PoolTerminatedError("the pool was terminated while this task ran"))
        with self.lock:
            warming = self.warming
        if warming is not None and warming is not threading.current_thread():
            # A worker it is starting sees ``terminated`` once started and is killed
            # there: wait, so that its token is back when this returns.
            warming.join(2 * _TERMINATE_GRACE_S)
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join(_TERMINATE_GRACE_S)
        self.stopped.set()
        self._close_pipe()

    def _kill_all(self, err: BaseException) -> None:
        with self.lock:
            self.closing = self.terminated = True
            self._publish()
            workers = [w for w in self.workers if w.process is not None and not w.dead]
            pending, self.pending = list(self.pending), deque()
            self.payloads.clear()
            self.crashes.clear()
        for _, future, _ in pending:
            self._drop_queued(future, err)
        for worker in workers:  # all at once, then wait: the grace periods overlap
            try:
                worker.process.terminate()
            except (OSError, ValueError):
                pass
        for worker in workers:
            task, _ = self._reap(worker, kill=True)
            if task is not None:
                self._fail(task[1], err)

    def _close_pipe(self) -> None:
        with self.lock:
            fds, self.wake_r, self.wake_w = (self.wake_r, self.wake_w), -1, -1
        for fd in fds:
            if fd >= 0:
                os.close(fd)


def _end_pools_owned_here(wait: bool) -> None:
    for state in list(_POOLS):
        if state.owner_pid == os.getpid():
            state.shutdown(True, False) if wait else state.terminate()


def _at_exit(reason: lifecycle.ExitReason) -> None:
    """End pools left open: wait for their tasks, unless the program dies of an error.

    After an uncaught exception (Ctrl-C included) nobody will read the results, so
    the workers are terminated at once instead. On SIGTERM nothing is done here:
    workers notice their owner's death by themselves.
    """
    if reason == "sigterm":
        return
    failed = getattr(sys, "last_exc", None) or getattr(sys, "last_value", None)  # 3.12+ / 3.11
    _end_pools_owned_here(wait=reason == "task-end" or failed is None)


def _after_fork_in_child() -> None:
    # A forked child (a fork-started worker, or a task's own fork) is no owner:
    # holding the owners' ends of the sockets would hide an owner's death from its
    # workers, and the locks may have been held by threads that do not exist here.
    for state in list(_POOLS):
        if state.owner_pid == os.getpid():
            continue
        state.lock = threading.Lock()
        state.start_lock = threading.Lock()
        state.terminated = state.closing = True
        for worker in state.workers:
            if worker.conn is not None:
                worker.conn.close()
        for fd in (state.wake_r, state.wake_w):
            if fd >= 0:
                os.close(fd)
        state.wake_r = state.wake_w = -1
        state.workers, state.idle = [], []


lifecycle.register("pools", at_exit=_at_exit, after_fork=_after_fork_in_child)
