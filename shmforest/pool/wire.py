"""The wire format a pool's owner and its workers share: message headers and pickled tasks.

A message is a 10-byte header (kind, flag, id) followed by a cloudpickle payload.
Tasks travel as pickled ``(fn, args, kwargs)``; outcomes as the pickled result, or
the pickled exception with its traceback text.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import struct
import traceback
from collections.abc import Callable
from typing import Any

import cloudpickle

from shmforest.errors import TaskPicklingError

__all__ = [
    "CLOSING",
    "DECISION",
    "DISPATCHED",
    "DONE",
    "ERROR",
    "EXIT",
    "HEADER",
    "IDLE",
    "INLINE",
    "NESTED_DONE",
    "OK",
    "RUN",
    "SUBMIT",
    "RemoteTraceback",
    "dump_outcome_error",
    "dump_task",
    "message",
    "run_inline",
    "run_payload",
    "set_outcome",
]

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
        raise TaskPicklingError(
            f"cannot send task {_name(fn)} to a worker: {culprit} cannot be pickled ({exc})"
        ) from exc


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
