"""``python -m shmforest``: demo, bench, info.

Errors in what the user typed (an unknown executor, a missing or malformed file, a
bad size) end with a one-line message and exit status 2; a failure while running
ends with a one-line reason and exit status 1. Neither prints a traceback.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import numpy as np

import shmforest

if TYPE_CHECKING:
    from shmforest.demo import DemoData

_PROG = "python -m shmforest"


class _Parser(argparse.ArgumentParser):
    """argparse, with errors on one line: ``prog: error: message`` and exit status 2 (no usage block)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}\n")


def _warning_on_one_line(message: Warning | str, category: type[Warning], *args: object, **kwargs: object) -> str:
    return f"{_PROG}: warning: {' '.join(str(message).split())}\n"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# --------------------------------------------------------------------------- demo


def demo(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Fit one forest with every executor (and scikit-learn); print one table."""
    from shmforest import demo as d

    t0 = time.perf_counter()
    notes: list[str] = []
    names = _demo_executors(args, parser, notes)
    load = _demo_data(args, parser)
    sklearn = not args.no_sklearn and d.sklearn_installed()
    if args.no_sklearn:
        notes.append("scikit-learn: skipped (--no-sklearn).")
    elif not sklearn:
        notes.append("scikit-learn: skipped, not installed (pip install 'shmforest[test]' to compare).")
    runners = d.make_runners(names, args.workers, sklearn)
    if not runners:
        parser.error("nothing to run: no usable executor and no scikit-learn")
    try:
        data = load()
        results = d.run_demo(runners, args.trees, data)
    except Exception as exc:  # the reason on one line; the traceback helps nobody running a demo
        print(f"shmforest demo failed: {_one_line(exc)}", file=sys.stderr)
        return 1
    d.write_report(results, data, args.trees, args.workers, notes, sys.stdout)
    print(f"\ndemo took {time.perf_counter() - t0:.1f} s", file=sys.stdout)
    return 0


def _demo_executors(args: argparse.Namespace, parser: argparse.ArgumentParser, notes: list[str]) -> list[str]:
    """The executors to run: those named (each must exist and import), else every one that imports."""
    from shmforest.demo import order_executors
    from shmforest.errors import PluginImportError
    from shmforest.executors import available_executors, executor_class

    available = available_executors()
    if args.executors is not None:
        for name in args.executors:
            if name not in available:
                parser.error(f"argument --executors: unknown executor {name!r}; available: {', '.join(available)}")
            try:
                executor_class(name)
            except PluginImportError as exc:
                parser.error(f"argument --executors: {_one_line(exc)}")
        return order_executors(args.executors)
    names = []
    for name in order_executors(list(available)):
        try:
            executor_class(name)
        except PluginImportError as exc:  # one broken plugin must not hide the others
            notes.append(f"{name}: skipped, {_one_line(exc)}")
            continue
        names.append(name)
    return names


def _demo_data(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Callable[[], DemoData]:
    """Check the dataset options now (bad ones exit 2); what to call for the data itself.

    A file is read here, since what is wrong with it is bad input; the synthetic
    data is generated later, where a failure is the demo's.
    """
    import psutil

    from shmforest import demo as d

    if args.data is not None:
        if args.rows is not None or args.features is not None:
            parser.error("--rows and --features size the synthetic dataset; leave them out with --data")
        try:
            data = d.load_file(args.data)
        except ValueError as exc:
            parser.error(str(exc))
        return lambda: data
    rows = args.rows if args.rows is not None else d.DEFAULT_ROWS
    features = args.features if args.features is not None else d.DEFAULT_FEATURES
    if rows < 8:
        parser.error(f"argument --rows: need at least 8 rows to hold out a test split, got {rows}")
    needed, free = d.synthetic_bytes(rows, features), psutil.virtual_memory().available
    if needed > free:
        parser.error(
            f"--rows {rows} x --features {features}: the dataset needs about {needed / 2**30:,.1f} GiB "
            f"and {free / 2**30:,.1f} GiB is available"
        )
    return lambda: d.synthetic(rows, features)


# --------------------------------------------------------------------------- bench


def bench(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run the benchmark suites through pytest-benchmark; save the JSON, print a table, plot."""
    from shmforest import bench as b

    suites = Path("benchmarks")  # beside the package in a checkout; never installed
    if not suites.is_dir():
        parser.error(f"no {suites}/ folder here: run from a shmforest source checkout (the suites are not installed)")
    if args.against is not None:
        try:
            earlier = json.loads(args.against.read_text())
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            parser.error(f"argument --against: cannot read {args.against} as JSON ({_one_line(exc)})")
        if not isinstance(earlier, dict) or not isinstance(earlier.get("benchmarks"), list):
            parser.error(f"argument --against: {args.against} is not a pytest-benchmark JSON (no 'benchmarks' list)")
    return b.run_bench(suites, args.out, keyword=args.k, pytest_args=args.pytest_args, against=args.against)


# --------------------------------------------------------------------------- info


def info(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Print the version, the cores and budget work will get, and every executor found."""
    from shmforest.budget import ENV_VAR, default_budget, usable_cores
    from shmforest.executors import available_executors
    from shmforest.pool import default_start_method

    cores, how = usable_cores()
    budget = default_budget()
    inherited = "inherited from " + ENV_VAR if budget.name == os.environ.get(ENV_VAR) else "this process's default"
    override = os.environ.get("SHMFOREST_MAX_WORKERS")
    print(f"shmforest {shmforest.__version__} (python {sys.version.split()[0]}, numpy {np.__version__})")
    print(f"usable cores: {cores} ({how})")
    print(f"budget: {budget.size} workers, {inherited}" + (f"; SHMFOREST_MAX_WORKERS={override}" if override else ""))
    print(f"start method: {default_start_method()} (available: {', '.join(mp.get_all_start_methods())})")
    print("executors:")
    for name, source in available_executors().items():
        print(f"  {name:<10} {source}")
    return 0


# --------------------------------------------------------------------------- parser


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
        raise argparse.ArgumentTypeError(f"expected comma-separated executor names, got {text!r}")
    return list(dict.fromkeys(names))  # repeats would only fit the same forest twice


def _default_workers() -> int:
    from shmforest.budget import usable_cores

    return usable_cores()[0]


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m shmforest`` command line."""
    from shmforest import demo as d

    parser = _Parser(prog=_PROG, description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "demo",
        help="fit one forest with every executor and scikit-learn; one table",
        description="Fit the same random forest with every available executor (plugins included) and with "
        "scikit-learn when installed; print fit seconds, speedup over serial, accuracy, peak whole-tree "
        "memory and peak live processes.",
    )
    p.add_argument("--rows", type=_positive, help=f"rows of the synthetic dataset (default {d.DEFAULT_ROWS:,})")
    p.add_argument(
        "--features", type=_positive, help=f"columns of the synthetic dataset (default {d.DEFAULT_FEATURES})"
    )
    p.add_argument(
        "--trees", type=_positive, default=d.DEFAULT_TREES, help=f"trees per forest (default {d.DEFAULT_TREES})"
    )
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
        help="a .npy 2-D array or a numeric .csv (optional header); the last column is the class label",
    )
    p.add_argument("--no-sklearn", action="store_true", help="leave scikit-learn out even when installed")
    p.set_defaults(func=demo, parser=p)

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
    p.set_defaults(func=bench, parser=p)

    p = sub.add_parser("info", help="version, cores, budget, executors, start method")
    p.set_defaults(func=info, parser=p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (``SystemExit(2)`` for bad input)."""
    # A command line shows warnings (a plugin shadowing a built-in, ...) on one line, as it
    # does errors; put back as found, for callers that run main() in their own process.
    saved, warnings.formatwarning = warnings.formatwarning, _warning_on_one_line
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if getattr(args, "workers", 0) is None:
            args.workers = _default_workers()
        # The subcommand's own parser, so its errors read "python -m shmforest demo: error: ..."
        return int(args.func(args, args.parser))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        warnings.formatwarning = saved


if __name__ == "__main__":
    sys.exit(main())
