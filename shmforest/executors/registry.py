"""Find executors by name: built-ins and plugins, through one entry-point group.

The built-ins (serial, thread, process, shm) are declared in shmforest's own
``pyproject.toml`` under the entry-point group ``shmforest.executors``, the same
door a third-party plugin uses::

    [project.entry-points."shmforest.executors"]
    mine = "my_package.executors:MyExecutor"

Discovery is lazy (on the first lookup) and cached; classes are imported only
when first asked for. A plugin cannot take a built-in's name, and
:func:`register_executor` refuses to replace a name unless told ``replace=True``.
"""

from __future__ import annotations

import importlib
import threading
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from types import MappingProxyType
from typing import Any

from shmforest.errors import ExecutorNotFoundError, PluginImportError
from shmforest.executors.base import Executor

__all__ = ["ENTRY_POINT_GROUP", "available_executors", "get_executor", "register_executor", "executor_class"]

ENTRY_POINT_GROUP = "shmforest.executors"
_OWN_DISTRIBUTION = "shmforest"

# Only used when shmforest runs from a source tree that was never installed, so
# its own entry points are missing; the same targets pyproject.toml declares.
_BUILTIN_TARGETS = {
    "serial": "shmforest.executors.serial:SerialExecutor",
    "thread": "shmforest.executors.thread:ThreadExecutor",
    "process": "shmforest.executors.process:ProcessExecutor",
    "shm": "shmforest.executors.shm:ShmExecutor",
}


@dataclass
class _Entry:
    name: str
    target: str  # "module:attribute", or a description for run-time registrations
    source: str  # "built-in", "plugin <dist> <version>", or "registered at run time"
    install_hint: str = ""
    cls: type[Executor] | None = None

    def load(self) -> type[Executor]:
        if self.cls is None:
            module_name, _, attr = self.target.partition(":")
            try:
                obj: Any = importlib.import_module(module_name)
                for part in attr.split("."):
                    obj = getattr(obj, part)
            except Exception as exc:
                hint = f"; install it with: {self.install_hint}" if self.install_hint else ""
                raise PluginImportError(
                    f"executor {self.name!r} ({self.source}) failed to import {self.target!r}: "
                    f"{type(exc).__name__}: {exc}{hint}"
                ) from exc
            self.cls = _check_executor_class(self.name, obj)
        return self.cls


_LOCK = threading.RLock()
_ENTRIES: dict[str, _Entry] | None = None


def _check_executor_class(name: str, cls: object) -> type[Executor]:
    if not (isinstance(cls, type) and issubclass(cls, Executor)):
        raise TypeError(f"executor {name!r} must be a subclass of shmforest.executors.Executor, got {cls!r}")
    return cls


def _discover() -> dict[str, _Entry]:
    entries: dict[str, _Entry] = {}
    plugins: list[_Entry] = []
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist.name if ep.dist is not None else "unknown"
        version = ep.dist.version if ep.dist is not None else ""
        if dist.lower() == _OWN_DISTRIBUTION:
            entries[ep.name] = _Entry(ep.name, ep.value, "built-in")
        else:
            plugins.append(_Entry(ep.name, ep.value, f"plugin {dist} {version}".strip(), f"pip install {dist}"))
    for name, target in _BUILTIN_TARGETS.items():
        entries.setdefault(name, _Entry(name, target, "built-in"))
    for entry in plugins:
        taken = entries.get(entry.name)
        if taken is not None:
            warnings.warn(
                f"{entry.source} declares executor {entry.name!r}, which {taken.source} already provides; "
                "ignoring the plugin's (register it under another name)",
                RuntimeWarning,
                stacklevel=3,
            )
            continue
        entries[entry.name] = entry
    return entries


def _entries() -> dict[str, _Entry]:
    global _ENTRIES
    with _LOCK:
        if _ENTRIES is None:
            _ENTRIES = _discover()
        return _ENTRIES


def refresh() -> None:
    """Forget what was discovered, so newly installed plugins are found (run-time registrations go too)."""
    global _ENTRIES
    with _LOCK:
        _ENTRIES = None


def available_executors() -> Mapping[str, str]:
    """Every executor name, mapped to where it comes from (read-only).

    Examples
    --------
    >>> dict(available_executors())["shm"]
    'built-in'
    """
    return MappingProxyType({name: e.source for name, e in sorted(_entries().items())})


def executor_class(name: str) -> type[Executor]:
    """The class registered under ``name``, imported on first use.

    Raises
    ------
    ExecutorNotFoundError
        No such name (also a ``LookupError``); the message lists what exists.
    PluginImportError
        The plugin is declared but failed to import (also an ``ImportError``);
        the message says how to install it.
    """
    if not isinstance(name, str):
        raise TypeError(f"executor name must be a str, got {type(name).__name__}")
    entries = _entries()
    entry = entries.get(name)
    if entry is None:
        raise ExecutorNotFoundError(f"no executor named {name!r}; available: {', '.join(sorted(entries))}")
    return entry.load()


def get_executor(name: str | Executor, /, **options: Any) -> Executor:
    """An executor by registered name, built with ``options``; an instance is returned as is.

    Parameters
    ----------
    name : str or Executor
        A name from :func:`available_executors`, or an executor to pass through.
    **options
        Passed to the executor's constructor (``max_workers``, ``budget``, ...).

    Examples
    --------
    >>> with get_executor("serial") as ex:
    ...     ex.submit(pow, 2, 10).result()
    1024
    """
    if isinstance(name, Executor):
        if options:
            raise TypeError(f"options {sorted(options)} cannot be applied to an existing executor instance")
        return name
    return executor_class(name)(**options)


def register_executor(name: str, cls: type[Executor], *, replace: bool = False) -> None:
    """Make ``cls`` available as ``name`` in this process.

    Parameters
    ----------
    name : str
        The name to register.
    cls : type
        A subclass of :class:`shmforest.executors.Executor`.
    replace : bool, default False
        Allow replacing an existing name (built-ins included). Without it, a
        taken name raises ``ValueError``.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"executor name must be an identifier-like str, got {name!r}")
    _check_executor_class(name, cls)
    with _LOCK:
        entries = _entries()
        taken = entries.get(name)
        if taken is not None and not replace:
            raise ValueError(
                f"executor name {name!r} is already taken by {taken.source} ({taken.target}); "
                "pass replace=True to override it"
            )
        entries[name] = _Entry(name, f"{cls.__module__}:{cls.__qualname__}", "registered at run time", cls=cls)
