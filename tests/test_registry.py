"""The registry: built-ins through entry points, plugins, names that cannot be stolen."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import pytest

from shmforest.errors import ExecutorNotFoundError, PluginImportError
from shmforest.executors import Executor, available_executors, executor_class, get_executor, register_executor, registry
from shmforest.executors.serial import SerialExecutor
from shmforest.executors.shm import ShmExecutor
from shmforest.testing.conformance import ExecutorConformance

HERE = Path(__file__).parent
BUILTINS = {"serial", "thread", "process", "shm"}


@pytest.fixture(autouse=True)
def fresh_registry():
    registry.refresh()
    yield
    registry.refresh()


@pytest.fixture
def example_plugin(monkeypatch):
    """Install the example plugin the way pip would: a .dist-info on sys.path."""
    monkeypatch.syspath_prepend(str(HERE / "example_plugin"))
    registry.refresh()


@pytest.fixture
def bad_plugin(monkeypatch):
    monkeypatch.syspath_prepend(str(HERE / "example_plugin"))
    monkeypatch.syspath_prepend(str(HERE / "bad_plugin"))
    registry.refresh()


def test_builtins_come_from_our_own_entry_points():
    ours = {ep.name for ep in metadata.entry_points(group="shmforest.executors") if ep.dist.name == "shmforest"}
    assert BUILTINS <= ours  # registered through the same door as a third party
    found = available_executors()
    assert all(found[name] == "built-in" for name in BUILTINS)


def test_available_executors_is_read_only():
    with pytest.raises(TypeError):
        available_executors()["mine"] = "x"  # type: ignore[index]


def test_unknown_name_lists_what_is_available():
    with pytest.raises(ExecutorNotFoundError, match="no executor named 'nope'") as info:
        get_executor("nope")
    assert isinstance(info.value, LookupError)
    for name in BUILTINS:
        assert name in str(info.value)


def test_name_must_be_a_string():
    with pytest.raises(TypeError, match="str"):
        executor_class(3)  # type: ignore[arg-type]


def test_an_instance_passes_through_but_takes_no_options():
    ex = SerialExecutor()
    assert get_executor(ex) is ex
    with pytest.raises(TypeError, match="max_workers"):
        get_executor(ex, max_workers=2)


def test_builtin_classes_load_lazily_by_name():
    assert executor_class("shm") is ShmExecutor
    assert executor_class("serial") is SerialExecutor


def test_discovery_is_lazy_and_cached(monkeypatch):
    calls = []
    real = metadata.entry_points

    def counting(**kw):
        calls.append(kw)
        return real(**kw)

    monkeypatch.setattr(registry.metadata, "entry_points", counting)
    registry.refresh()
    assert calls == []  # nothing scanned until someone asks
    executor_class("serial")
    executor_class("thread")
    available_executors()
    assert len(calls) == 1


def test_a_taken_name_is_not_silently_replaced():
    class Mine(SerialExecutor):
        name = "mine"

    with pytest.raises(ValueError, match="already taken.*replace=True"):
        register_executor("shm", Mine)
    assert executor_class("shm") is ShmExecutor
    register_executor("shm", Mine, replace=True)
    assert executor_class("shm") is Mine


def test_register_at_run_time():
    class Mine(SerialExecutor):
        name = "mine"

    register_executor("mine", Mine)
    assert available_executors()["mine"] == "registered at run time"
    assert isinstance(get_executor("mine"), Mine)
    with pytest.raises(ValueError, match="already taken"):
        register_executor("mine", Mine)


@pytest.mark.parametrize("bad", [object, int, "serial", None])
def test_register_takes_only_executor_classes(bad):
    with pytest.raises(TypeError, match="subclass of shmforest.executors.Executor"):
        register_executor("x", bad)


@pytest.mark.parametrize("bad", ["", "has space", 3])
def test_register_checks_the_name(bad):
    with pytest.raises(ValueError, match="name"):
        register_executor(bad, SerialExecutor)


def test_plugin_found_through_its_entry_point(example_plugin):
    assert available_executors()["spare"] == "plugin shmforest-example-plugin 0.1"
    with get_executor("spare", max_workers=2) as ex:
        assert isinstance(ex, Executor) and ex.name == "spare"
        assert ex.submit(pow, 3, 3).result() == 27


def test_plugin_that_fails_to_import_says_how_to_install_it(bad_plugin):
    with pytest.warns(RuntimeWarning, match="'shm'"):
        names = available_executors()
    assert "broken" in names
    with pytest.raises(PluginImportError, match="pip install shmforest-bad-plugin") as info:
        get_executor("broken")
    assert isinstance(info.value, ImportError)


def test_plugin_cannot_take_a_builtin_name(bad_plugin):
    with pytest.warns(RuntimeWarning, match="already provides"):
        cls = executor_class("shm")
    assert cls is ShmExecutor


class TestExamplePlugin(ExecutorConformance):
    """A third-party executor, installed by entry point, passes the same kit."""

    @pytest.fixture
    def executor(self, example_plugin, budget):
        ex = get_executor("spare", budget=budget)
        yield ex
        ex.shutdown()
