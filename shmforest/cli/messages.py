"""How the command line words what goes wrong: one line each, never a traceback.

Errors in what the user typed end with ``prog: error: message`` and exit status 2;
a failure while running ends with ``shmforest COMMAND failed: reason`` and exit
status 1.
"""

from __future__ import annotations

import argparse
from typing import NoReturn

__all__ = ["PROG", "OneLineParser", "one_line", "warning_on_one_line"]

PROG = "python -m shmforest"


class OneLineParser(argparse.ArgumentParser):
    """argparse, with errors on one line: ``prog: error: message`` and exit status 2 (no usage block)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}\n")


def one_line(exc: BaseException) -> str:
    """``Type: message`` of an exception, its message's whitespace folded onto one line."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def warning_on_one_line(message: Warning | str, category: type[Warning], *args: object, **kwargs: object) -> str:
    """A ``warnings.formatwarning`` that prints ``prog: warning: message``."""
    return f"{PROG}: warning: {' '.join(str(message).split())}\n"
