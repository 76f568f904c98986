"""``python -m shmforest``: demo, info.

Errors in what the user typed end with a one-line message and exit status 2.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
from collections.abc import Sequence

import numpy as np

import shmforest

def demo(args: argparse.Namespace) -> int:
    """Show what placing data once buys: readers of one block versus pickled copies."""
    from shmforest.demo import run_shared_demo

    return run_shared_demo(args.size_mib, args.workers)


def info(args: argparse.Namespace) -> int:
    """Print the version and how this machine will run work."""
    print(f"shmforest {shmforest.__version__}")
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}")
    print(f"start methods: {', '.join(mp.get_all_start_methods())} (default {mp.get_start_method(allow_none=True) or mp.get_all_start_methods()[0]})")
    return 0


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m shmforest", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="show shared datasets at work")
    d.add_argument("--size-mib", type=_positive, default=256, help="array size in MiB (default 256)")
    d.add_argument("--workers", type=_positive, default=2, help="reader processes (default 2)")
    d.set_defaults(func=demo)
    i = sub.add_parser("info", help="version, cores, start methods")
    i.set_defaults(func=info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
