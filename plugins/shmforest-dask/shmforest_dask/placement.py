"""Arrays and datasets in task arguments, placed once per machine in shared memory.

::

    client (DaskExecutor.submit)                          cluster
    ----------------------------                          -------
    walk args: an ndarray of min_bytes or more, a SharedArray, a SharedDataset,
    the first time this object is seen (by identity):
      ask every worker its shm domain  --- client.run --->  shm_domain(): boot id + /dev/shm device
      the client's own domain: its blocks serve as they are  (workers sharing /dev/shm agree)
        (an ndarray is copied once into a SharedArray here)
      each other domain: one worker there, the placer
        scatter the arrays to it  ------------------->      _place_here: one copy into its /dev/shm,
        <----------------------------- handles -------        owner kept in _HOST_COPIES
    the task carries _Placed(kind, key, {domain: copy})
      (a few hundred bytes a domain, whatever the size)
                                                            unpickling _Placed on any worker:
                                                              attach the copy of *its* domain
    source gone (garbage collected) and no task using it:
      client-side block closed; placers told  --- run -->   _release_here: unlink the copies

On one machine (a LocalCluster) every worker is in the client's domain: nothing
is copied at all, tasks attach the caller's blocks. Across machines, each machine
receives the data once, however many worker processes it runs and however many
tasks read it. Copies on other machines are read-only (:class:`PlacedDataset`
refuses a writable view), since writes there would never reach the owner.
"""

from __future__ import annotations

import os
import pickle
import socket
import threading
import uuid
import weakref
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shmforest.shared import SharedArray, SharedDataset, map_arguments, place_arguments
from shmforest_dask.errors import HostCopyReadOnlyError, PlacementError

__all__ = ["DOMAIN_ENV_VAR", "PlacedDataset", "Placements", "shm_domain"]

#: Overrides a process's shared-memory domain (containers with unusual /dev/shm setups; tests).
DOMAIN_ENV_VAR = "SHMFOREST_DASK_SHM_DOMAIN"
_SHM_DIR = "/dev/shm"


def shm_domain() -> str:
    """Which shared memory this process sees: equal strings, same ``/dev/shm``.

    The kernel's boot id names the machine (containers on one host share it) and
    the device number of ``/dev/shm`` names the mount (each container usually has
    its own), so two processes agree exactly when one's blocks are the other's.
    ``SHMFOREST_DASK_SHM_DOMAIN`` overrides it.
    """
    override = os.environ.get(DOMAIN_ENV_VAR, "").strip()
    if override:
        return override
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            machine = f.read().strip()
    except OSError:  # pragma: no cover - not Linux
        machine = socket.gethostname()
    try:
        device = os.stat(_SHM_DIR).st_dev
    except OSError:  # pragma: no cover - no /dev/shm: this process shares with no one
        return f"{machine}:no-shm:{os.getpid()}"
    return f"{machine}:{device}"


# --------------------------------------------------------------------------- what travels


class _Placed:
    """An argument, travelling as its copies' handles, one per shared-memory domain."""

    __slots__ = ("kind", "key", "origin", "copies", "workers")

    def __init__(
        self, kind: str, key: str, origin: str, copies: dict[str, Any], workers: tuple[str, ...] | None
    ) -> None:
        self.kind = kind  # "ndarray", "sharedarray" or "dataset"
        self.key = key
        self.origin = origin  # the client's domain: where the source lives
        self.copies = copies  # domain -> SharedArray / SharedDataset (pickle as handles)
        self.workers = workers  # workers that can attach a copy, when some copies are remote

    def __reduce__(self) -> tuple[Any, ...]:
        return (_resolve, (self.kind, self.key, self.origin, self.copies, self.workers))


class PlacedDataset(SharedDataset):
    """A :class:`~shmforest.SharedDataset` as a task on a dask worker sees it.

    Attached to the copy on the worker's own machine. Pickled again (a task
    submitting branches of its own), it travels as the whole placement, so the
    branch may run on any machine. On a machine other than the client's it is a
    copy, and :meth:`view` refuses to hand out a writable view.
    """

    _placement: _Placed
    host_copy: bool

    def view(self, key: str, writable: bool = False) -> np.ndarray:
        if writable and self.host_copy:
            raise HostCopyReadOnlyError(
                f"dataset array {key!r} is this machine's copy of a dataset placed from another "
                "machine; writes would not reach its owner. Write on the client's machine, or "
                "return the values from the task instead"
            )
        return super().view(key, writable=writable)

    def __reduce__(self) -> tuple[Any, ...]:
        return self._placement.__reduce__()


# Arrays and SharedArrays resolved in this process, by id, so that a task passing one
# on to a nested task sends the placement again rather than this machine's handle.
_RESOLVED: dict[int, tuple[weakref.ref, _Placed]] = {}
_RESOLVED_LOCK = threading.Lock()


def _remember(obj: Any, marker: _Placed) -> None:
    key = id(obj)

    def forget(_: weakref.ref, key: int = key) -> None:
        with _RESOLVED_LOCK:
            entry = _RESOLVED.get(key)
            if entry is not None and entry[0]() is None:
                del _RESOLVED[key]

    with _RESOLVED_LOCK:
        _RESOLVED[key] = (weakref.ref(obj, forget), marker)


def _resolve(kind: str, key: str, origin: str, copies: dict[str, Any], workers: tuple[str, ...] | None) -> Any:
    """Unpickling a placement, wherever that happens: this domain's copy, attached."""
    domain = shm_domain()
    copy = copies.get(domain)
    if copy is None:
        raise PlacementError(
            f"this worker's shared-memory domain {domain!r} holds no copy of placed {kind} {key}; "
            f"copies exist for {sorted(copies)}. The worker's machine joined the cluster after the "
            "data was placed: submit the data again (a new object) to place it there too"
        )
    marker = _Placed(kind, key, origin, copies, workers)
    if kind == "dataset":
        # A separate attached object (the one in `copies` pickles as handles inside the
        # placement), given the placement-aware class: same layout, so a class change.
        dataset = pickle.loads(pickle.dumps(copy))
        dataset.__class__ = PlacedDataset
        dataset._placement = marker
        dataset.host_copy = domain != origin
        return dataset
    if kind == "sharedarray":
        _remember(copy, marker)
        return copy
    view = copy.array  # read-only view of this machine's block
    _remember(view, marker)
    return view


def reemit(obj: Any, found: list[_Placed]) -> Any:
    """Inside a task: arguments resolved from placements become placements again."""

    def again(value: Any) -> Any:
        if isinstance(value, PlacedDataset):
            found.append(value._placement)
            return value
        if isinstance(value, (np.ndarray, SharedArray)):
            with _RESOLVED_LOCK:
                entry = _RESOLVED.get(id(value))
            if entry is not None and entry[0]() is value:
                found.append(entry[1])
                return entry[1]
        return value

    return map_arguments(obj, again)


def common_workers(markers: list[_Placed]) -> list[str] | None:
    """Workers able to attach every placement given, or None where any worker can."""
    allowed: set[str] | None = None
    for marker in markers:
        if marker.workers is not None:
            allowed = set(marker.workers) if allowed is None else allowed & set(marker.workers)
    return sorted(allowed) if allowed else None


# --------------------------------------------------------------------------- on the placer


# Copies this worker process placed for clients on other machines, by placement key.
_HOST_COPIES: dict[str, SharedArray | SharedDataset] = {}
_HOST_LOCK = threading.Lock()


def _place_here(key: str, kind: str, data: Any) -> tuple[str, str, Any]:
    """A task on the placer: one copy of ``data`` into this machine's shared memory."""
    from distributed import get_worker

    copy: SharedArray | SharedDataset = SharedDataset(data) if kind == "dataset" else SharedArray.copy_of(data)
    with _HOST_LOCK:
        _HOST_COPIES[key] = copy
    return shm_domain(), get_worker().address, copy


def _release_here(keys: list[str]) -> int:
    """Run on a placer: unlink the copies named; how many there were."""
    with _HOST_LOCK:
        copies = [_HOST_COPIES.pop(k) for k in keys if k in _HOST_COPIES]
    for copy in copies:
        copy.close()
    return len(copies)


def host_copies() -> list[str]:
    """Keys of the copies this process holds for clients elsewhere (run it on a worker)."""
    with _HOST_LOCK:
        return sorted(_HOST_COPIES)


# --------------------------------------------------------------------------- on the client


@dataclass(eq=False)
class _Placement:
    marker: _Placed
    nbytes: int
    local: SharedArray | None = None  # a block this client made (ndarray sources)
    placers: dict[str, str] = field(default_factory=dict)  # domain -> address holding the copy
    users: int = 0  # tasks in flight that carry it
    orphaned: bool = False  # the source object is gone
    released: bool = False


class Placements:
    """The client side: what was placed for which source object, and when to let go.

    Parameters
    ----------
    client : distributed.Client
        The client tasks are submitted through.
    min_bytes : int
        Numpy arrays smaller than this travel inside the task (a placement costs more).
    """

    def __init__(self, client: Any, min_bytes: int) -> None:
        self._client = client
        self._min_bytes = min_bytes
        self._lock = threading.RLock()
        self._by_source: dict[int, tuple[weakref.ref, _Placement]] = {}
        self._live: set[_Placement] = set()
        self._orphans: deque[tuple[int, weakref.ref]] = deque()  # appended by GC callbacks
        self._releasers: list[threading.Thread] = []
        self.shipped_bytes = 0  # data sent to placers on other machines
        self.local_bytes = 0  # data copied into this machine's shared memory
        self.placed_bytes = 0  # size of every argument placed, wherever its copies are
        self.placements = 0

    # -- task arguments ---------------------------------------------------
    def prepare(self, obj: Any, used: list[_Placement]) -> Any:
        """``obj`` with every placeable argument replaced by its placement (users counted)."""

        def kind(value: Any) -> str:
            if isinstance(value, SharedDataset):
                return "dataset"
            return "sharedarray" if isinstance(value, SharedArray) else "ndarray"

        return place_arguments(
            obj, lambda v: self._use(v, kind(v), used), min_bytes=self._min_bytes, also=(SharedDataset, SharedArray)
        )

    def done(self, used: list[_Placement]) -> None:
        """The task that carried ``used`` is over."""
        doomed = []
        with self._lock:
            for p in used:
                p.users -= 1
                if p.orphaned and p.users == 0:
                    doomed.append(p)
        for p in doomed:
            self._release(p)

    def _use(self, source: Any, kind: str, used: list[_Placement]) -> _Placed:
        with self._lock:
            entry = self._by_source.get(id(source))
            if entry is not None and entry[0]() is source:
                p = entry[1]
            else:
                p = self._place(source, kind)
                self._by_source[id(source)] = (weakref.ref(source, self._orphan_callback(id(source))), p)
                self._live.add(p)
            if not any(q is p for q in used):
                p.users += 1
                used.append(p)
            return p.marker

    # -- placing -----------------------------------------------------------
    def _place(self, source: Any, kind: str) -> _Placement:
        origin = shm_domain()
        by_worker: dict[str, str] = self._client.run(shm_domain)
        domains: dict[str, list[str]] = {}
        for address, domain in sorted(by_worker.items()):
            domains.setdefault(domain, []).append(address)
        key = uuid.uuid4().hex
        nbytes = int(source.nbytes)
        copies: dict[str, Any] = {}
        local = None
        if kind == "ndarray":
            if origin in domains or not domains:
                local = SharedArray.copy_of(source)
                copies[origin] = local
                self.local_bytes += nbytes
        else:
            # Already in this machine's shared memory. Hold its handles, not the object:
            # the caller's object going away is what says the placement is done with.
            copies[origin] = pickle.loads(pickle.dumps(source))
        placement = _Placement(_Placed(kind, key, origin, copies, None), nbytes, local)
        remote = [d for d in domains if d != origin]
        if remote:
            self._place_remote(placement, source, kind, {d: domains[d] for d in remote})
            able = [a for d, addresses in domains.items() if d in copies for a in addresses]
            placement.marker.workers = tuple(sorted(able))
        self.placements += 1
        self.placed_bytes += nbytes
        return placement

    def _place_remote(self, placement: _Placement, source: Any, kind: str, remote: dict[str, list[str]]) -> None:
        """One copy per other domain, made by one worker there from data scattered to it alone."""
        if kind == "dataset":
            data: Any = {name: np.asarray(source[name]) for name in source}
        else:
            data = np.asarray(source)
        client = self._client
        pending = []
        for addresses in remote.values():
            placer = addresses[0]
            [shipped] = client.scatter([data], workers=[placer], hash=False)
            self.shipped_bytes += placement.nbytes
            # Loose restriction: should the placer be gone, another worker places it
            # and reports its own domain.
            task = client.submit(
                _place_here,
                placement.marker.key,
                kind,
                shipped,
                workers=[placer],
                allow_other_workers=True,
                pure=False,
                key=f"shmforest-place-{uuid.uuid4().hex}",
            )
            pending.append((shipped, task))
        copies = placement.marker.copies
        try:
            for _, task in pending:
                domain, address, copy = task.result()
                if domain in copies:  # landed twice in one domain (placer replaced): keep one
                    client.run(_release_here, [placement.marker.key], workers=[address], on_error="return")
                    continue
                copies[domain] = copy
                placement.placers[domain] = address
        except BaseException:
            self._release(placement)
            raise
        finally:
            del pending

    # -- letting go --------------------------------------------------------
    def _orphan_callback(self, source_id: int):
        def orphaned(ref: weakref.ref) -> None:
            # A garbage-collection callback may run in any thread, the client's event
            # loop included, while another thread holds the lock waiting on that loop:
            # it must not block. It queues the source; a thread of its own settles it.
            self._orphans.append((source_id, ref))
            thread = threading.Thread(target=self._settle_orphans, name="shmforest-dask-release", daemon=True)
            self._releasers.append(thread)
            thread.start()

        return orphaned

    def _settle_orphans(self) -> None:
        doomed = []
        with self._lock:
            while self._orphans:
                source_id, ref = self._orphans.popleft()
                entry = self._by_source.get(source_id)
                if entry is None or entry[0] is not ref:
                    continue  # closed meanwhile, or the id already names a newer source
                del self._by_source[source_id]
                p = entry[1]
                p.orphaned = True
                if p.users == 0:
                    doomed.append(p)
            self._releasers = [t for t in self._releasers if t.is_alive() and t is not threading.current_thread()]
        for p in doomed:
            self._release(p)

    def _release(self, p: _Placement) -> None:
        with self._lock:
            if p.released:
                return
            p.released = True
            self._live.discard(p)
        if p.local is not None:
            p.local.close()
        if p.placers:
            try:
                self._client.run(
                    _release_here, [p.marker.key], workers=sorted(set(p.placers.values())), on_error="return"
                )
            except Exception:  # noqa: BLE001 - a gone cluster took its copies with it
                pass

    def close(self) -> None:
        """Release every placement (the executor is shutting down; its tasks are over)."""
        with self._lock:
            releasers, self._releasers = list(self._releasers), []
        for thread in releasers:
            thread.join()
        with self._lock:
            live, self._live = list(self._live), set()
            self._by_source.clear()
            self._orphans.clear()
        by_address: dict[str, list[str]] = {}
        for p in live:
            p.released = True
            if p.local is not None:
                p.local.close()
            for address in set(p.placers.values()):
                by_address.setdefault(address, []).append(p.marker.key)
        for address, keys in by_address.items():
            try:
                self._client.run(_release_here, keys, workers=[address], on_error="return")
            except Exception:  # noqa: BLE001 - see _release
                pass
