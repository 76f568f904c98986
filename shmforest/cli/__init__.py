"""``python -m shmforest``: demo, bench, info.

Errors in what the user typed (an unknown executor, a missing or malformed file, a
bad size) end with a one-line message and exit status 2; a failure while running
ends with a one-line reason and exit status 1. Neither prints a traceback
(:mod:`shmforest.cli.messages`). Each command is a module with a ``command(args,
parser)`` that returns the exit status; this module holds the parser.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from shmforest.cli.messages import PROG, OneLineParser, warning_on_one_line

__all__ = ["build_parser", "main"]


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated names, got {text!r}")
    return list(dict.fromkeys(names))  # repeats would only fit the same forest twice


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m shmforest`` command line."""
    from shmforest.cli import bench, demo, info, workloads

    parser = OneLineParser(prog=PROG, description=(__doc__ or "").splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "demo",
        help="fit forests on a few contrasting workloads with every executor and scikit-learn; a table each",
        description="Fit the same random forests with every available executor (plugins included) and with "
        "scikit-learn n_jobs=1 and n_jobs=workers when installed, on a few contrasting workloads; print, per "
        "workload, fit and predict seconds, their ratio to scikit-learn's at the same n_jobs, the score, "
        "peak whole-tree memory and peak live processes.",
    )
    p.add_argument(
        "--workloads",
        type=_names,
        help=f"comma-separated, from {', '.join(workloads.WORKLOADS)} (default: all of them)",
    )
    p.add_argument("--rows", type=_positive, help="rows of the synthetic workloads (default: each its own)")
    p.add_argument("--features", type=_positive, help="columns of the synthetic workloads (default: each its own)")
    p.add_argument("--trees", type=_positive, help="trees per forest (default: each workload its own)")
    p.add_argument(
        "--executors",
        type=_names,
        help="comma-separated executor names (default: every available one, plugins included)",
    )
    p.add_argument("--workers", type=_positive, help="workers, and scikit-learn's n_jobs (default: usable cores)")
    p.add_argument(
        "--data",
        type=Path,
        metavar="PATH",
        help="instead of the workloads, a .npy 2-D array or a numeric .csv (optional header) whose last "
        "column is the class label",
    )
    p.add_argument("--no-sklearn", action="store_true", help="leave scikit-learn out even when installed")
    p.set_defaults(func=demo.command, parser=p)

    p = sub.add_parser(
        "bench",
        help="run the benchmark suites (pytest-benchmark); JSON, a table and a plot",
        description="Run benchmarks/ through pytest-benchmark from a source checkout, save the JSON, print a "
        "table of the results and plot fit time against workers for each executor and peer.",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path(".benchmarks/latest"),
        help="where the JSON and the plot go (default %(default)s)",
    )
    p.add_argument("-k", metavar="EXPR", help="only benchmarks matching this pytest -k expression")
    p.add_argument("--against", type=Path, metavar="JSON", help="an earlier run's JSON: add a 'vs before' column")
    p.add_argument("pytest_args", nargs="*", metavar="-- PYTEST_ARGS", help="more arguments for pytest, after --")
    p.set_defaults(func=bench.command, parser=p)

    p = sub.add_parser("info", help="version, cores, budget, executors, start method")
    p.set_defaults(func=info.command, parser=p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (``SystemExit(2)`` for bad input)."""
    # A command line shows warnings (a plugin shadowing a built-in, ...) on one line, as it
    # does errors; put back as found, for callers that run main() in their own process.
    saved, warnings.formatwarning = warnings.formatwarning, warning_on_one_line
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if getattr(args, "workers", 0) is None:
            from shmforest.cores import usable_cores

            args.workers = usable_cores()[0]
        # The subcommand's own parser, so its errors read "python -m shmforest demo: error: ..."
        return int(args.func(args, args.parser))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        warnings.formatwarning = saved
