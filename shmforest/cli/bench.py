"""``python -m shmforest bench``: the benchmark suites through pytest-benchmark, then a table and a plot.

::

    pytest benchmarks/ --benchmark-enable --benchmark-only --benchmark-json=OUT/benchmarks.json
        -> OUT/benchmarks.json        (pytest-benchmark's own format)
        -> a markdown table per suite  (median, and the scalars each benchmark put in extra_info)
        -> OUT/fit_vs_workers.png     (fit seconds against workers, one line per executor and peer)

The suites live in the source tree, not in the installed package: they are found in
the current folder, else in the checkout the package was installed from (``pip
install -e``); an install from a wheel has none, and says so in one line. The plot
reads benchmarks parametrized by a ``runner`` of ``(library, executor, n_jobs)``, as
``benchmarks/test_bench_forest.py``'s are; matplotlib is optional and only imported
here.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shmforest.cli.messages import one_line

__all__ = [
    "JSON_NAME",
    "PLOT_NAME",
    "SOURCE_ROOT",
    "RunnerPoint",
    "command",
    "find_suites",
    "format_tables",
    "plot_fit_vs_workers",
    "run_bench",
    "runner_points",
]

JSON_NAME = "benchmarks.json"
PLOT_NAME = "fit_vs_workers.png"
#: Where a checkout keeps its suites, and the checkout this package was imported from
#: (in an install from a wheel, site-packages: no suites there).
SUITES = "benchmarks"
SOURCE_ROOT = Path(__file__).resolve().parents[2]
MAX_HIGHLIGHTS = 6  # extra_info items shown per row; the JSON has them all

# pytest's exit statuses (pytest.ExitCode), without importing pytest here
_TESTS_FAILED, _INTERRUPTED, _USAGE_ERROR, _NO_TESTS = 1, 2, 4, 5

# "shmforest-shm-n_jobs2", "scikit-learn-n_jobs1": the ids test_bench_forest.py gives its runners
_RUNNER_ID = re.compile(r"^(?P<library>shmforest|scikit-learn)(?:-(?P<executor>.+?))?-n_jobs(?P<n_jobs>\d+)$")


def find_suites(cwd: Path, source_root: Path) -> Path | None:
    """The suites folder: ``cwd/benchmarks``, else the source checkout's; None in an installed package."""
    if (cwd / SUITES).is_dir():
        return cwd / SUITES
    if (source_root / SUITES).is_dir() and (source_root / "pyproject.toml").is_file():
        return source_root / SUITES
    return None


def command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Check the options (bad ones exit 2), then :func:`run_bench`."""
    suites = find_suites(Path.cwd(), SOURCE_ROOT)
    if suites is None:
        parser.error(
            f"the benchmark suites ({SUITES}/) are not installed with the package: "
            "run this from a shmforest source checkout (make bench)"
        )
    if args.against is not None:
        try:
            earlier = json.loads(args.against.read_text())
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            parser.error(f"argument --against: cannot read {args.against} as JSON ({one_line(exc)})")
        if not isinstance(earlier, dict) or not isinstance(earlier.get("benchmarks"), list):
            parser.error(f"argument --against: {args.against} is not a pytest-benchmark JSON (no 'benchmarks' list)")
    return run_bench(suites, args.out, keyword=args.k, pytest_args=args.pytest_args, against=args.against)


def run_bench(
    suites: Path,
    out: Path,
    *,
    keyword: str | None = None,
    pytest_args: Sequence[str] = (),
    against: Path | None = None,
) -> int:
    """Run the suites, then report; returns the exit status for the command line.

    Parameters
    ----------
    suites : Path
        The folder of pytest-benchmark suites (``benchmarks``).
    out : Path
        Where ``benchmarks.json`` and ``fit_vs_workers.png`` are written.
    keyword : str, optional
        A pytest ``-k`` expression.
    pytest_args : sequence of str
        More arguments for pytest.
    against : Path, optional
        An earlier run's JSON; the table gains a "vs before" column (median ratio).
    """
    if importlib.util.find_spec("pytest_benchmark") is None:
        print(
            "shmforest bench failed: pytest-benchmark is not installed (pip install 'shmforest[bench]')",
            file=sys.stderr,
        )
        return 1
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / JSON_NAME
    json_path.unlink(missing_ok=True)  # a stale file must never pass for this run's results
    command = [
        sys.executable,
        "-m",
        "pytest",
        str(suites),
        "--benchmark-enable",
        "--benchmark-only",
        f"--benchmark-json={json_path}",
        "-p",
        "no:cacheprovider",
    ]
    if keyword:
        command += ["-k", keyword]
    command += list(pytest_args)
    print("$ " + shlex.join(command), flush=True)
    status = subprocess.call(command)

    if status == _INTERRUPTED:
        print("interrupted", file=sys.stderr)
        return 130
    if status == _NO_TESTS:
        what = f" matched -k {keyword!r}" if keyword else f" found in {suites}/"
        print(f"python -m shmforest bench: error: no benchmarks{what}", file=sys.stderr)
        return 2
    if status == _USAGE_ERROR:
        print("python -m shmforest bench: error: pytest rejected its arguments (see above)", file=sys.stderr)
        return 2
    if not json_path.is_file():
        print(f"shmforest bench failed: pytest exited with status {status} and wrote no {json_path}", file=sys.stderr)
        return 1

    report = json.loads(json_path.read_text())
    before = json.loads(against.read_text()) if against is not None else None
    print()
    print(format_tables(report, before))
    print(f"\nsaved: {json_path}")
    print(plot_fit_vs_workers(report, out / PLOT_NAME))
    if status != 0:
        print(f"shmforest bench failed: some benchmarks failed (pytest exit status {status})", file=sys.stderr)
        return 1
    return 0


# --------------------------------------------------------------------------- the table


def _seconds(value: float) -> str:
    if value >= 1:
        return f"{value:.2f} s"
    if value >= 1e-3:
        return f"{value * 1e3:.2f} ms"
    return f"{value * 1e6:.1f} µs"


def _scalar(value: Any) -> str | None:
    """A short rendering of an extra_info value, or None for what does not fit in a cell."""
    if isinstance(value, bool) or isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, str) and len(value) <= 30:
        return value
    return None


def _highlights(extra: Mapping[str, Any]) -> str:
    shown = [f"{key}={text}" for key, value in extra.items() if (text := _scalar(value)) is not None]
    more = len(shown) - MAX_HIGHLIGHTS
    return ", ".join(shown[:MAX_HIGHLIGHTS]) + (f", +{more} more in the JSON" if more > 0 else "")


def _suite(bench: Mapping[str, Any]) -> str:
    return str(bench.get("fullname", bench["name"])).split("::")[0]


def format_tables(report: Mapping[str, Any], before: Mapping[str, Any] | None = None) -> str:
    """One markdown table per suite: name, median, and the scalars of ``extra_info``.

    Benchmarks that report goals (``extra_info["goals"]``: what -> measured, met)
    get a goals table after their suite's.
    """
    earlier = {b.get("fullname"): (b.get("stats") or {}).get("median") for b in (before or {}).get("benchmarks", [])}
    suites: dict[str, list[Mapping[str, Any]]] = {}
    for bench in report.get("benchmarks", []):
        suites.setdefault(_suite(bench), []).append(bench)
    if not suites:
        return "(no benchmark results)"
    blocks = []
    for suite, benches in suites.items():
        header = "| benchmark | median |" + (" vs before |" if before else "") + " highlights |"
        rule = "|---|---:|" + ("---:|" if before else "") + "---|"
        lines = [f"{suite}", "", header, rule]
        goals: list[str] = []
        for bench in benches:
            median = bench["stats"]["median"]
            ratio = ""
            if before:
                old = earlier.get(bench["fullname"])
                ratio = f" {median / old:.2f}x |" if old else " new |"
            lines.append(
                f"| {bench['name']} | {_seconds(median)} |{ratio} {_highlights(bench.get('extra_info', {}))} |"
            )
            for what, goal in (bench.get("extra_info", {}).get("goals") or {}).items():
                met = goal.get("met")
                goals.append(
                    f"| {what} | {goal.get('measured', '')} | {'n/a' if met is None else 'yes' if met else 'NO'} |"
                )
        if goals:
            lines += ["", "| goal | measured | met |", "|---|---|---|", *goals]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


# --------------------------------------------------------------------------- the plot


@dataclass(frozen=True)
class RunnerPoint:
    """One fit of a runner-parametrized benchmark: which panel, which line, where."""

    panel: str  # the test function, e.g. "test_forest_fit"
    series: str  # "shmforest shm", "scikit-learn"
    workers: int
    fit_s: float


def _runner_of(bench: Mapping[str, Any]) -> tuple[str, str | None, int] | None:
    runner = (bench.get("params") or {}).get("runner")
    if isinstance(runner, (list, tuple)) and len(runner) == 3 and isinstance(runner[2], int):
        return str(runner[0]), None if runner[1] is None else str(runner[1]), runner[2]
    match = _RUNNER_ID.match(str(bench.get("param") or ""))
    if match:
        return match["library"], match["executor"], int(match["n_jobs"])
    return None


def runner_points(report: Mapping[str, Any]) -> list[RunnerPoint]:
    """Fit seconds (``extra_info["fit_s"]``, else the median) of every runner-parametrized benchmark."""
    points = []
    for bench in report.get("benchmarks", []):
        runner = _runner_of(bench)
        if runner is None:
            continue
        library, executor, workers = runner
        fit_s = bench.get("extra_info", {}).get("fit_s", bench["stats"]["median"])
        panel = str(bench["name"]).split("[")[0]
        points.append(
            RunnerPoint(panel, library if executor is None else f"{library} {executor}", workers, float(fit_s))
        )
    return points


def plot_fit_vs_workers(report: Mapping[str, Any], path: Path) -> str:
    """Write the plot (one panel per benchmark function); returns a line saying what happened."""
    points = runner_points(report)
    if not points:
        return "no plot: no fit-against-workers results in this run (benchmarks/test_bench_forest.py did not run)"
    if importlib.util.find_spec("matplotlib") is None:
        return "no plot: matplotlib is not installed (pip install 'shmforest[bench]')"
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed, none opened
    import matplotlib.pyplot as plt

    panels = list(dict.fromkeys(p.panel for p in points))
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.5), squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        mine = [p for p in points if p.panel == panel]
        for series in dict.fromkeys(p.series for p in mine):
            line = sorted((p.workers, p.fit_s) for p in mine if p.series == series)
            ax.plot([w for w, _ in line], [s for _, s in line], marker="o", label=series)
        ax.set_title(panel)
        ax.set_xlabel("workers (n_jobs)")
        ax.set_ylabel("fit seconds")
        ax.set_xticks(sorted({p.workers for p in mine}))
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return f"plot: {path}"
