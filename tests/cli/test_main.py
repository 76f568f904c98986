"""The parser and ``main``: one-line errors, and ``python -m shmforest`` reaching ``shmforest.cli.main``."""

from __future__ import annotations

import warnings

from cli_support import run_cli, run_main


def test_unknown_command_is_one_line_and_status_2(capsys):
    status, _, err = run_main(["train"], capsys)
    assert status == 2
    assert err.count("\n") == 1 and err.startswith("python -m shmforest: error: ")


def test_python_dash_m_runs_the_cli():
    result = run_cli("--help")
    assert result.returncode == 0, result.stderr
    assert "{demo,bench,info}" in result.stdout


def test_main_puts_the_warning_format_back(capsys):
    before = warnings.formatwarning
    run_main(["train"], capsys)
    assert warnings.formatwarning is before
