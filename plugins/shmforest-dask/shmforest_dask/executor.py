"""``dask``: shmforest tasks on a dask.distributed cluster.

::

    DaskExecutor.submit(fn, *args)                        dask workers (any machine)
    ------------------------------                        --------------------------
    arrays and datasets in args -> placements
      (placement.py: data reaches each machine once)
    payload = cloudpickle((in-cluster executor, fn, args, kwargs))
      a few hundred bytes plus the small arguments; counted
    with a cap (max_workers/budget on a cluster it did
      not start): at most `cap` in flight, the rest wait
    client.submit(_run_task, payload)  ---------------->  _run_task: unpickle (placements attach
                                                            this machine's copy, no data moves),
                                                            run_in_task(in-cluster executor, fn, ...)
                                                          inside fn, current_executor().submit(g):
                                                            get_client().submit(_run_task, ...)
                                                            waiting on its result secedes from the
                                                            worker's thread pool and rejoins after,
                                                            so a waiting task never holds a thread
    concurrent.futures.Future  <---- result, or the exception with its remote traceback

Dask's own scheduler decides where and when tasks run; the cluster's threads
bound how many run at once. Nested submissions always go to the cluster (Dask's
mechanism for tasks that launch tasks), never inline: a parent that waits gives
its thread up, so recursion cannot deadlock at any cluster size.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import cloudpickle
import distributed
import numpy as np
from dask.utils import funcname

from shmforest.budget import ProcessBudget
from shmforest.errors import BudgetError, TaskPicklingError
from shmforest.executors import Executor, resolve_budget, run_in_task
from shmforest_dask.cluster import start_local_cluster
from shmforest_dask.errors import WorkerLostError
from shmforest_dask.placement import Placements, _Placed, _Placement, common_workers, reemit

__all__ = ["ADDRESS_ENV_VAR", "DaskExecutor", "TaskFuture"]

T = TypeVar("T")

#: The scheduler a ``DaskExecutor()`` (``executor="dask"``) connects to when given no client or address.
ADDRESS_ENV_VAR = "SHMFOREST_DASK_ADDRESS"

# Cluster options a DaskExecutor sizes itself: one single-threaded worker process per token.
_SIZED_BY_BUDGET = frozenset({"n_workers", "threads_per_worker", "processes"})
_THREADS_TTL = 1.0


# --------------------------------------------------------------------------- futures


def _secede() -> bool:
    """Leave the dask worker's thread pool, if this thread is one of its task threads."""
    try:
        distributed.get_worker()
    except ValueError:
        return False  # not inside a task on a worker (the client, or a thread a task started)
    try:
        distributed.secede()
    except (AttributeError, KeyError):
        return False  # not on the worker's thread pool (an async task), or already seceded
    return True


@contextmanager
def _thread_given_up() -> Iterator[None]:
    seceded = _secede()
    try:
        yield
    finally:
        if seceded:
            distributed.rejoin()


class TaskFuture(cf.Future):
    """A :class:`concurrent.futures.Future` for one task on the cluster.

    Waiting on it from a task running on a dask worker (``result``, ``exception``)
    secedes from the worker's thread pool for the wait and rejoins after, so the
    cluster can run the awaited task meanwhile. ``cancel`` cancels the dask task.
    Waiting with ``concurrent.futures.wait`` or ``as_completed`` inside a task
    does not secede; wait with ``result`` there.
    """

    def __init__(self) -> None:
        super().__init__()
        self._claimed = False
        self._claim_lock = threading.Lock()

    def _claim(self) -> bool:
        """Move out of PENDING exactly once: True if the outcome may be set, False if cancelled."""
        with self._claim_lock:
            if self._claimed:
                return False
            self._claimed = True
        return self.set_running_or_notify_cancel()

    def result(self, timeout: float | None = None) -> Any:
        if self.done():
            return super().result(timeout)
        with _thread_given_up():
            return super().result(timeout)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        if self.done():
            return super().exception(timeout)
        with _thread_given_up():
            return super().exception(timeout)


def _outcome(dask_future: distributed.Future) -> tuple[str, Any]:
    if dask_future.cancelled():
        return "cancelled", None
    try:
        return "ok", dask_future.result()
    except cf.CancelledError:
        return "cancelled", None
    except distributed.KilledWorker as exc:
        lost = WorkerLostError(f"the cluster gave up on task {dask_future.key!r}: {exc}")
        lost.__cause__ = exc
        return "error", lost
    except BaseException as exc:  # noqa: BLE001 - the task's own error, delivered through the future
        return "error", exc


def _link(dask_future: distributed.Future, future: TaskFuture, finished: Callable[[], None] | None) -> None:
    """Deliver ``dask_future``'s outcome to ``future``; cancelling ``future`` cancels the task."""

    def on_cancel(f: cf.Future) -> None:
        if f.cancelled():
            future._claim()  # wakes concurrent.futures.wait()ers
            if not dask_future.done():
                dask_future.cancel()

    def on_done(df: distributed.Future) -> None:
        try:
            kind, value = _outcome(df)
            if kind == "cancelled":
                future.cancel()  # cancelled under us (cluster closing): the future ends cancelled
                future._claim()
            elif future._claim():
                if kind == "ok":
                    future.set_result(value)
                else:
                    future.set_exception(value)
        finally:
            if finished is not None:
                finished()

    future.add_done_callback(on_cancel)
    dask_future.add_done_callback(on_done)


# --------------------------------------------------------------------------- the task


_MALLOC_PRIMED = False


def _prime_malloc() -> None:
    """Once per worker process: let glibc see one large block freed.

    glibc trims its heap whenever 128 KiB at the top are free, until it has seen a
    large mmapped block freed; then it raises that threshold to twice the block's
    size (mallopt(3), M_MMAP_THRESHOLD). A fresh dask worker has seen none, so tree
    building there gave its memory back and faulted it in again on every level:
    20,000 page faults a tree on 50,000 x 20, 1.5x the time of a pool worker, which
    inherits a primed heap from its parent. Freeing one untouched 16 MiB block costs
    an mmap and an munmap, and puts the worker where any long-running process is.
    """
    global _MALLOC_PRIMED
    if not _MALLOC_PRIMED:
        _MALLOC_PRIMED = True
        block = np.empty(2 << 20)  # 16 MiB: under glibc's 32 MiB cap for the adjustment
        del block


def _run_task(payload: bytes) -> Any:
    """What every task runs on a worker: unpickle (placements attach), run under the executor."""
    _prime_malloc()
    executor, fn, args, kwargs = cloudpickle.loads(payload)
    return run_in_task(executor, fn, args, kwargs)


def _dumps(executor: Executor, fn: Callable[..., Any], args: Any, kwargs: Any) -> bytes:
    try:
        return cloudpickle.dumps((executor, fn, args, kwargs), protocol=5)
    except Exception as exc:
        raise TaskPicklingError(
            f"task {funcname(fn)!r} or its arguments cannot be pickled to travel to the cluster: "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def _task_key(fn: Callable[..., Any]) -> str:
    return f"shmforest-{funcname(fn)}-{uuid.uuid4().hex}"


# Payload bytes sent by nested submissions from this (worker) process, by executor token.
_NESTED_BYTES: dict[str, int] = {}
_NESTED_TASKS: dict[str, int] = {}
_NESTED_LOCK = threading.Lock()
# Nested tasks in flight from this process: a dask future dropped early is a task forgotten.
_NESTED_IN_FLIGHT: set[distributed.Future] = set()


def _nested_counts(token: str) -> tuple[int, int]:
    with _NESTED_LOCK:
        return _NESTED_TASKS.get(token, 0), _NESTED_BYTES.get(token, 0)


class _InCluster(Executor):
    """The executor as a task on a worker sees it: submissions go to the cluster."""

    name: ClassVar[str] = "dask"
    shares_memory: ClassVar[bool] = False
    uses_processes: ClassVar[bool] = True

    def __init__(self, token: str, max_workers: int) -> None:
        self._token = token
        self._max_workers = max_workers

    @property
    def max_workers(self) -> int:
        return self._max_workers

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> cf.Future[T]:
        client = distributed.get_client()
        found: list[_Placed] = []
        args, kwargs = reemit(args, found), reemit(kwargs, found)
        payload = _dumps(self, fn, args, kwargs)
        with _NESTED_LOCK:
            _NESTED_TASKS[self._token] = _NESTED_TASKS.get(self._token, 0) + 1
            _NESTED_BYTES[self._token] = _NESTED_BYTES.get(self._token, 0) + len(payload)
        workers = common_workers(found)
        dask_future = client.submit(
            _run_task, payload, key=_task_key(fn), pure=False, workers=workers, allow_other_workers=workers is not None
        )
        _NESTED_IN_FLIGHT.add(dask_future)
        future = TaskFuture()
        _link(dask_future, future, lambda: _NESTED_IN_FLIGHT.discard(dask_future))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        pass  # the cluster belongs to the executor that submitted the task

    def __reduce__(self) -> tuple[Any, ...]:
        return (_InCluster, (self._token, self._max_workers))


# --------------------------------------------------------------------------- the executor


@dataclass(eq=False)
class _Task:
    future: TaskFuture
    fn: Callable[..., Any]
    payload: bytes
    workers: list[str] | None
    used: list[_Placement]
    dask_future: distributed.Future | None = None
    state: str = "queued"  # queued -> sent -> over


class DaskExecutor(Executor):
    """Runs shmforest tasks on a dask.distributed cluster.

    Parameters
    ----------
    client : distributed.Client, optional
        Submit through this client; it stays open after :meth:`shutdown`.
    address : str, optional
        Connect to the scheduler at this address (``"tcp://scheduler:8786"``); the
        connection is closed at shutdown.
    max_workers : int, optional
        On a cluster this executor starts: how many single-threaded worker
        processes (tokens of a new budget). On an existing cluster: the most of
        the tasks submitted here in flight at once (default: no cap; the cluster's
        threads bound them, as they always bound what tasks submit themselves).
    budget : ProcessBudget, optional
        On a cluster this executor starts: one worker process per token it takes
        from this budget, held until shutdown; the workers join the budget, so
        shmforest code inside tasks draws on it too. On an existing cluster: the
        budget's size caps the tasks in flight (its tokens stay free: they lease
        processes of this machine, and a cluster's workers are not those).
    min_bytes : int, default 65536
        Numpy arrays in arguments smaller than this travel inside the task;
        larger ones are placed once per machine.
    cluster_options : dict, optional
        Extra :class:`distributed.LocalCluster` options for a cluster this
        executor starts (not its size, which the budget sets).

    Notes
    -----
    Which cluster, in order: ``client``; ``address``; the ``SHMFOREST_DASK_ADDRESS``
    environment variable; the current default client (``distributed.default_client()``);
    else a new :class:`~distributed.LocalCluster` on 127.0.0.1, stopped at shutdown.

    Examples
    --------
    >>> from distributed import Client  # doctest: +SKIP
    >>> client = Client("tcp://scheduler:8786")  # doctest: +SKIP
    >>> forest = RandomForestClassifier(executor=DaskExecutor(client)).fit(X, y)  # doctest: +SKIP
    """

    name: ClassVar[str] = "dask"
    # Copies on other machines are copies: sharing holds on the client's machine only.
    shares_memory: ClassVar[bool] = False
    uses_processes: ClassVar[bool] = True
    install_hint: ClassVar[str] = "pip install shmforest-dask"

    def __init__(
        self,
        client: distributed.Client | None = None,
        address: str | None = None,
        *,
        max_workers: int | None = None,
        budget: ProcessBudget | None = None,
        min_bytes: int = 1 << 16,
        cluster_options: dict[str, Any] | None = None,
    ) -> None:
        if isinstance(min_bytes, bool) or not isinstance(min_bytes, int) or min_bytes < 0:
            raise ValueError(f"min_bytes must be a non-negative int, got {min_bytes!r}")
        if client is not None and address is not None:
            raise TypeError("pass client or address, not both")
        if client is not None and not isinstance(client, distributed.Client):
            raise TypeError(f"client must be a distributed.Client, got {type(client).__name__}")
        if address is not None and not isinstance(address, str):
            raise TypeError(f"address must be a str such as 'tcp://scheduler:8786', got {type(address).__name__}")
        if cluster_options is not None and not isinstance(cluster_options, dict):
            raise TypeError(f"cluster_options must be a dict, got {type(cluster_options).__name__}")
        self._token = uuid.uuid4().hex
        self._lock = threading.Lock()
        self._closed = False
        self._finalized = threading.Event()
        self._tasks: set[_Task] = set()
        self._queue: deque[_Task] = deque()
        self._sent = 0
        self._cap: int | None = None
        self._budget: ProcessBudget | None = None
        self._close_budget = False
        self._tokens = 0
        self._cluster: distributed.LocalCluster | None = None
        self._owns_client = False
        self._threads_seen = 1
        self._threads_asked = -float("inf")
        self._workers = 0
        self._nested_at_close: tuple[int, int] = (0, 0)
        self._payload_bytes = 0
        self._submitted = 0

        address = address or os.environ.get(ADDRESS_ENV_VAR) or None
        if client is None and address is None:
            try:
                client = distributed.default_client()
            except ValueError:
                client = None
        if client is not None or address is not None:
            if cluster_options:
                raise TypeError("cluster_options applies only to a cluster this executor starts")
            self._cap = _cap_of(max_workers, budget)
            if client is None:
                client = distributed.Client(address, set_as_default=False)
                self._owns_client = True
        else:
            client = self._start_cluster(max_workers, budget, cluster_options or {})
        self._client: distributed.Client = client
        self._placements = Placements(client, min_bytes)

    def _start_cluster(
        self, max_workers: int | None, budget: ProcessBudget | None, options: dict[str, Any]
    ) -> distributed.Client:
        sized = _SIZED_BY_BUDGET & set(options)
        if sized:
            raise ValueError(
                f"cluster_options may not set {sorted(sized)}: the cluster has one single-threaded "
                "worker process per budget token (size it with max_workers or budget)"
            )
        self._budget, self._close_budget = resolve_budget(max_workers, budget)
        self._tokens = self._workers = self._budget.try_acquire(self._budget.size)
        if self._tokens == 0:
            if self._close_budget:
                self._budget.close()
            raise BudgetError(
                f"budget {self._budget.name!r} has no free token for a dask worker (all {self._budget.size} "
                "are held): pass a budget with free tokens, or a client of a running cluster"
            )
        # Workers run under this budget, as pool workers do: code in a task that asks
        # for workers of its own finds the tokens taken and runs inline.
        env = {**options.get("env", {}), **self._budget.environment()}
        try:
            self._cluster = start_local_cluster(self._tokens, **{**options, "env": env})
            # Results come straight from the workers, not through the scheduler.
            client = distributed.Client(self._cluster, set_as_default=False, direct_to_workers=True)
        except BaseException:
            if self._cluster is not None:
                self._cluster.close()
            self._give_back_budget()
            raise
        self._owns_client = True
        return client

    # -- properties ----------------------------------------------------
    @property
    def client(self) -> distributed.Client:
        """The client tasks are submitted through."""
        return self._client

    @property
    def cluster(self) -> distributed.LocalCluster | None:
        """The cluster this executor started, or None when it uses an existing one."""
        return self._cluster

    @property
    def max_workers(self) -> int:
        """The most tasks running at once: the cap if one was asked for, else the cluster's threads."""
        if self._cluster is not None:
            return self._workers
        if self._cap is not None:
            return self._cap
        now = time.monotonic()
        if not self._closed and now - self._threads_asked > _THREADS_TTL:
            # Asked of the scheduler at most once a second: submit reads it for every task.
            try:
                self._threads_seen = max(1, sum(self._client.nthreads().values()))
                self._threads_asked = now
            except Exception:  # noqa: BLE001 - a closed client: the last count seen
                pass
        return self._threads_seen

    @property
    def budget(self) -> ProcessBudget | None:
        """The budget whose tokens this executor's worker processes hold (a cluster it started)."""
        return self._budget

    def transfer_stats(self) -> dict[str, int]:
        """What this executor has sent to the cluster so far.

        ``tasks`` and ``payload_bytes``: tasks submitted from here and their pickled
        size; ``nested_tasks`` and ``nested_payload_bytes``: those tasks' own
        submissions (asked of the workers); ``placements`` and ``placed_bytes``:
        arguments placed and their size; ``shipped_bytes``: data sent to other
        machines' placers; ``local_bytes``: numpy arrays copied into this machine's
        shared memory (datasets are there already).
        """
        stats = {
            "tasks": self._submitted,
            "payload_bytes": self._payload_bytes,
            "nested_tasks": 0,
            "nested_payload_bytes": 0,
            "placements": self._placements.placements,
            "placed_bytes": self._placements.placed_bytes,
            "shipped_bytes": self._placements.shipped_bytes,
            "local_bytes": self._placements.local_bytes,
        }
        stats["nested_tasks"], stats["nested_payload_bytes"] = (
            self._nested() if not self._closed else self._nested_at_close
        )
        return stats

    def _nested(self) -> tuple[int, int]:
        try:
            counts = self._client.run(_nested_counts, self._token, on_error="ignore").values()
        except Exception:  # noqa: BLE001 - a closed client: nothing more to learn
            return self._nested_at_close
        return sum(t for t, _ in counts), sum(b for _, b in counts)

    # -- submitting ----------------------------------------------------
    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> cf.Future[T]:
        if self._closed:
            raise RuntimeError("cannot schedule new futures after shutdown")
        used: list[_Placement] = []
        try:
            args, kwargs = self._placements.prepare(args, used), self._placements.prepare(kwargs, used)
            payload = _dumps(_InCluster(self._token, self.max_workers), fn, args, kwargs)
        except BaseException:
            self._placements.done(used)
            raise
        task = _Task(TaskFuture(), fn, payload, common_workers([p.marker for p in used]), used)
        with self._lock:
            if self._closed:
                self._placements.done(used)
                raise RuntimeError("cannot schedule new futures after shutdown")
            self._tasks.add(task)
            self._submitted += 1
            self._payload_bytes += len(payload)
            send = self._cap is None or self._sent < self._cap
            if send:
                self._sent += 1
                task.state = "sent"
            else:
                self._queue.append(task)
        task.future.add_done_callback(lambda f, task=task: self._on_cancel(task) if f.cancelled() else None)
        if send:
            self._send(task)
        return task.future

    def _send(self, task: _Task) -> None:
        if task.future.cancelled():
            self._over(task)
            return
        try:
            dask_future = self._client.submit(
                _run_task,
                task.payload,
                key=_task_key(task.fn),
                pure=False,
                workers=task.workers,
                allow_other_workers=task.workers is not None,
            )
        except BaseException as exc:  # noqa: BLE001 - the client is gone: fail this task, not the caller
            if task.future._claim():
                task.future.set_exception(exc)
            self._over(task)
            return
        task.dask_future = dask_future
        task.payload = b""  # sent: keep no second copy
        _link(dask_future, task.future, lambda: self._over(task))

    def _on_cancel(self, task: _Task) -> None:
        """Cancelled by the caller: a queued task never goes; a sent one is cancelled by _link."""
        with self._lock:
            queued = task.state == "queued"
            if queued:
                self._queue.remove(task)
        if queued:
            task.future._claim()
            self._over(task, was_sent=False)

    def _over(self, task: _Task, was_sent: bool = True) -> None:
        """A task ended (done, failed, cancelled): account, release its placements, send the next."""
        with self._lock:
            if task.state == "over":
                return
            task.state = "over"
            self._tasks.discard(task)
            if was_sent:
                self._sent -= 1
            following = []
            while self._queue and (self._cap is None or self._sent < self._cap):
                nxt = self._queue.popleft()
                nxt.state = "sent"
                self._sent += 1
                following.append(nxt)
        task.dask_future = None
        self._placements.done(task.used)
        for nxt in following:
            self._send(nxt)

    # -- shutting down -------------------------------------------------
    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            first = not self._closed
            self._closed = True
            tasks = list(self._tasks)
        if cancel_futures:
            for task in tasks:
                task.future.cancel()
        if not first:
            if wait:
                self._finalized.wait()
            return
        if wait:
            self._finalize(tasks)
        else:
            threading.Thread(target=self._finalize, args=(tasks,), name="shmforest-dask-shutdown").start()

    def _finalize(self, tasks: list[_Task]) -> None:
        try:
            cf.wait([t.future for t in tasks])
            self._nested_at_close = self._nested()
            self._placements.close()
            if self._owns_client:
                self._client.close()
            if self._cluster is not None:
                self._cluster.close()
        finally:
            self._give_back_budget()
            self._finalized.set()

    def _give_back_budget(self) -> None:
        if self._budget is None:
            return
        tokens, self._tokens = self._tokens, 0
        if tokens:
            self._budget.release(tokens)
        if self._close_budget:
            self._close_budget = False
            self._budget.close()

    def __reduce__(self) -> tuple[Any, ...]:
        # What a task sees of it on a worker: submissions go back to the cluster.
        return (_InCluster, (self._token, self.max_workers))

    def __repr__(self) -> str:
        where = "own LocalCluster" if self._cluster is not None else getattr(self._client, "scheduler", None)
        where = getattr(where, "address", where)
        return f"<DaskExecutor scheduler={where!r} max_workers={self.max_workers}>"


def _cap_of(max_workers: int | None, budget: ProcessBudget | None) -> int | None:
    if budget is not None:
        if not isinstance(budget, ProcessBudget):
            raise TypeError(f"budget must be a ProcessBudget or None, got {type(budget).__name__}")
        return budget.size
    if max_workers is None:
        return None
    if isinstance(max_workers, bool) or not isinstance(max_workers, int):
        raise TypeError(f"max_workers must be a positive int or None, got {type(max_workers).__name__}")
    if max_workers < 1:
        raise ValueError(f"max_workers must be a positive int or None, got {max_workers}")
    return max_workers
