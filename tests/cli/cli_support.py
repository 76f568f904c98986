"""Running ``python -m shmforest`` as a user does (a subprocess) or in this process, and reading what it says."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from shmforest import cli

TESTS = Path(__file__).parent.parent  # example_plugin/ and bad_plugin/ live there


def run_cli(
    *args: str, cwd: Path | None = None, pythonpath: Sequence[Path] = (), timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join([*map(str, pythonpath), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "shmforest", *args],
        check=False,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_main(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """The command line in this process: fast, for the many ways input can be wrong."""
    try:
        status = cli.main(args)
    except SystemExit as exc:
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_line_error(result: subprocess.CompletedProcess[str], status: int, starts: str) -> str:
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert lines and lines[-1].startswith(starts), result.stderr
    return lines[-1]
