"""``python -m shmforest info``."""

from __future__ import annotations

from cli_support import TESTS, run_cli

from shmforest.executors import available_executors


def test_info_lists_every_executor_and_where_it_comes_from():
    result = run_cli("info")
    assert result.returncode == 0, result.stderr
    assert "usable cores:" in result.stdout and "start method:" in result.stdout
    for name, source in available_executors().items():
        assert f"  {name:<10} {source}" in result.stdout


def test_info_shows_a_plugin():
    result = run_cli("info", pythonpath=[TESTS / "example_plugin"])
    assert result.returncode == 0, result.stderr
    assert "spare" in result.stdout and "plugin shmforest-example-plugin" in result.stdout
