"""How worker processes are started: the start method, and a forkserver launch that skips ``__main__``."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sys
from typing import Any

from shmforest.pool import worker as w_

#: Overrides the default start method ("fork", "spawn" or "forkserver").
START_METHOD_ENV_VAR = "SHMFOREST_START_METHOD"
_STDLIB_START_METHODS = ("fork", "spawn", "forkserver")


def default_start_method() -> str:
    """``SHMFOREST_START_METHOD`` if set, else forkserver where available, else spawn.

    forkserver starts workers from a small single-threaded server, so a pool is
    safe to use from a threaded program, and starts them about as fast as fork
    once the server runs (measured in ``benchmarks/test_bench_dispatch.py``).
    """
    method = os.environ.get(START_METHOD_ENV_VAR, "").strip()
    if method:
        return check_start_method(method, START_METHOD_ENV_VAR)
    return "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"


def check_start_method(method: str, where: str) -> str:
    methods = mp.get_all_start_methods()
    if method not in methods:
        raise ValueError(f"{where}={method!r}: expected one of {', '.join(repr(m) for m in methods)}")
    return method


def process_class(ctx: Any) -> Any:
    """The Process class to start workers with under ``ctx``."""
    if ctx.get_start_method() == "forkserver" and _ForkServerWorkerProcess is not None:
        _preload_in_forkserver()
        return _ForkServerWorkerProcess
    return ctx.Process


try:
    # _launch below is the stdlib's, identical from 3.11 to 3.13; a later Python
    # gets the stdlib's own Process until the copy is checked against it.
    if sys.version_info >= (3, 14):
        raise ImportError("unverified multiprocessing internals")
    import io
    from multiprocessing import forkserver as _forkserver
    from multiprocessing import popen_forkserver as _popen_forkserver
    from multiprocessing import reduction as _reduction
    from multiprocessing import spawn as _spawn
    from multiprocessing import util as _mp_util
    from multiprocessing.context import ForkServerProcess as _ForkServerProcess
    from multiprocessing.context import set_spawning_popen as _set_spawning_popen
except ImportError:  # pragma: no cover - no forkserver on this platform
    _ForkServerWorkerProcess = None
else:

    class _ForkServerPopen(_popen_forkserver.Popen):
        """Starts a worker from the forkserver without re-running ``__main__`` in it.

        Tasks travel by cloudpickle and never need the parent's main module, and on
        3.11 the server does not preload it, so each worker would otherwise pay the
        main script's imports (about 150 ms with numpy). The stdlib's ``_launch``,
        less the two preparation keys that ask for it, and less a start method
        that is not the stdlib's.
        """

        def _launch(self, process_obj: Any) -> None:
            prep_data = _spawn.get_preparation_data(process_obj._name)
            prep_data.pop("init_main_from_path", None)
            prep_data.pop("init_main_from_name", None)
            if prep_data.get("start_method") not in _STDLIB_START_METHODS:
                # A caller inside a joblib (loky) worker has loky's start method,
                # which the forkserver, never having imported joblib, cannot set.
                prep_data.pop("start_method", None)
            buf = io.BytesIO()
            _set_spawning_popen(self)
            try:
                _reduction.dump(prep_data, buf)
                _reduction.dump(process_obj, buf)
            finally:
                _set_spawning_popen(None)
            self.sentinel, w = _forkserver.connect_to_new_process(self._fds)  # type: ignore[attr-defined]
            parent_w = os.dup(w)  # the child's sentinel of its parent, as in the stdlib
            # Stdlib internals the copied _launch uses, untyped in typeshed.
            self.finalizer = _mp_util.Finalize(self, _mp_util.close_fds, (parent_w, self.sentinel))  # type: ignore[attr-defined]
            with open(w, "wb", closefd=True) as f:
                f.write(buf.getbuffer())
            self.pid = _forkserver.read_signed(self.sentinel)

    class _ForkServerWorkerProcess(_ForkServerProcess):  # type: ignore[no-redef]
        @staticmethod
        def _Popen(process_obj: Any) -> Any:
            return _ForkServerPopen(process_obj)


#: What the forkserver imports before it forks: the worker's module, and what callers
#: add with :func:`preload_in_workers`. Left to the first task, such imports are paid
#: again in every fresh worker (``benchmarks/test_bench_dispatch.py`` measures a fresh
#: shm executor's first task).
_PRELOAD: list[str] = [w_.__name__]


def preload_in_workers(*modules: str) -> None:
    """Have workers import ``modules`` before their first task, where the start method allows.

    Executors name the modules their tasks unpickle from (their own stand-ins, the
    task functions and what those load); under forkserver the server imports them
    once and every worker forks from it with them loaded. Takes effect for a
    forkserver not started yet.
    """
    for module in modules:
        if module not in _PRELOAD:
            _PRELOAD.append(module)


def _preload_in_forkserver() -> None:
    """Have the forkserver import the preload list before it forks, if it is not running yet."""
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    modules = getattr(server, "_preload_modules", None)
    if server is None or getattr(server, "_forkserver_pid", 0) is not None or modules is None:
        return
    missing = [m for m in _PRELOAD if m not in modules]
    if missing:
        server.set_forkserver_preload([*modules, *missing])


def describe_exit(pid: int, exitcode: int | None) -> str:
    if exitcode is None:
        return f"worker {pid} stopped responding"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"worker {pid} was killed by {name}"
    return f"worker {pid} exited with code {exitcode}"
