"""``python -m shmforest``: demo, bench and info, run as a user runs them (a subprocess each)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from shmforest import __main__ as cli
from shmforest import bench, demo
from shmforest.executors import available_executors

HERE = Path(__file__).parent
TINY_DEMO = ["--rows", "2000", "--trees", "4", "--workers", "2", "--no-sklearn"]


def run_cli(
    *args: str, cwd: Path | None = None, pythonpath: Sequence[Path] = (), timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join([*map(str, pythonpath), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "shmforest", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def assert_one_line_error(result: subprocess.CompletedProcess, status: int, starts: str) -> str:
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert lines and lines[-1].startswith(starts), result.stderr
    return lines[-1]


def table_rows(stdout: str) -> list[str]:
    """The runner column of the demo's table."""
    return [line.split("|")[1].strip() for line in stdout.splitlines() if line.startswith("| ") and "---" not in line][
        1:
    ]


# --------------------------------------------------------------------------- bad input: exit 2


def _write(tmp_path: Path, name: str, content: str | np.ndarray) -> str:
    path = tmp_path / name
    if isinstance(content, np.ndarray):
        np.save(path, content, allow_pickle=True)
    else:
        path.write_text(content)
    return str(path)


BAD_DEMO_INPUT = {
    "unknown executor": (lambda tmp: ["--executors", "serial,nope"], "unknown executor 'nope'"),
    "missing file": (lambda tmp: ["--data", str(tmp / "absent.csv")], "no such file"),
    "unknown file type": (lambda tmp: ["--data", _write(tmp, "data.txt", "1,2\n")], "expected a .npy or .csv file"),
    "zero rows": (lambda tmp: ["--rows", "0"], "--rows: expected a positive integer, got 0"),
    "rows not a number": (lambda tmp: ["--rows", "many"], "--rows: expected a positive integer, got 'many'"),
    "too few rows": (lambda tmp: ["--rows", "3"], "need at least 8 rows"),
    "more rows than memory": (lambda tmp: ["--rows", str(10**13)], "GiB is available"),
    "negative trees": (lambda tmp: ["--trees", "-4"], "--trees: expected a positive integer"),
    "size with a file": (
        lambda tmp: ["--rows", "100", "--data", _write(tmp, "ok.csv", "1,0\n2,1\n")],
        "leave them out",
    ),
    "csv with text": (
        lambda tmp: ["--data", _write(tmp, "words.csv", "a,b,label\n1,2,0\n3,x,1\n")],
        "line 3, column 2: 'x' is not a number",
    ),
    "ragged csv": (lambda tmp: ["--data", _write(tmp, "ragged.csv", "1,2,0\n3,4,1\n5,6\n")], "line 3 has 2 fields"),
    "empty csv": (lambda tmp: ["--data", _write(tmp, "empty.csv", "")], "empty"),
    "header only": (lambda tmp: ["--data", _write(tmp, "header.csv", "x,y,label\n")], "no data rows"),
    "one label": (lambda tmp: ["--data", _write(tmp, "same.csv", "1,0\n2,0\n3,0\n4,0\n")], "single value"),
    "npy of objects": (
        lambda tmp: ["--data", _write(tmp, "objects.npy", np.array([[1, "a"]], dtype=object))],
        "Python objects",
    ),
    "npy 1-D": (lambda tmp: ["--data", _write(tmp, "flat.npy", np.arange(10.0))], "expected a 2-D array"),
    "npy with NaN": (lambda tmp: ["--data", _write(tmp, "nan.npy", np.full((10, 3), np.nan))], "NaN"),
    "not npy inside": (lambda tmp: ["--data", _write(tmp, "text.npy", "hello\n")], "no NumPy header"),
}


def run_main(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """The command line in this process: fast, for the many ways input can be wrong."""
    try:
        status = cli.main(args)
    except SystemExit as exc:
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize("case", list(BAD_DEMO_INPUT))
def test_demo_rejects_bad_input_in_one_line(case, tmp_path, capsys):
    make_args, expected = BAD_DEMO_INPUT[case]
    status, out, err = run_main(["demo", *make_args(tmp_path)], capsys)
    assert status == 2
    assert err.count("\n") == 1 and err.startswith("python -m shmforest demo: error: ")
    assert expected in err
    assert out == ""


@pytest.mark.parametrize("case", ["unknown executor", "missing file", "zero rows", "csv with text"])
def test_bad_input_exits_2_without_a_traceback(case, tmp_path):
    make_args, expected = BAD_DEMO_INPUT[case]
    result = run_cli("demo", *make_args(tmp_path))
    line = assert_one_line_error(result, 2, "python -m shmforest demo: error: ")
    assert len(result.stderr.splitlines()) == 1 and expected in line
    assert result.stdout == ""


def test_unknown_command_is_one_line_and_status_2(capsys):
    status, _, err = run_main(["train"], capsys)
    assert status == 2
    assert err.count("\n") == 1 and err.startswith("python -m shmforest: error: ")


# --------------------------------------------------------------------------- info


def test_info_lists_every_executor_and_where_it_comes_from():
    result = run_cli("info")
    assert result.returncode == 0, result.stderr
    assert "usable cores:" in result.stdout and "start method:" in result.stdout
    for name, source in available_executors().items():
        assert f"  {name:<10} {source}" in result.stdout


def test_info_shows_a_plugin():
    result = run_cli("info", pythonpath=[HERE / "example_plugin"])
    assert result.returncode == 0, result.stderr
    assert "spare" in result.stdout and "plugin shmforest-example-plugin" in result.stdout


# --------------------------------------------------------------------------- demo


def test_demo_prints_one_table_with_a_row_per_runner():
    result = run_cli("demo", *TINY_DEMO, "--executors", "shm,serial")
    assert result.returncode == 0, result.stderr
    assert table_rows(result.stdout) == ["shmforest serial", "shmforest shm, 2 workers"]
    header = next(line for line in result.stdout.splitlines() if line.startswith("| runner"))
    for column in ("fit s", "speedup vs serial", "accuracy", "peak tree memory", "peak live processes"):
        assert column in header
    assert "scikit-learn: skipped (--no-sklearn)" in result.stdout
    assert "[2/2] shmforest shm, 2 workers: trees 4/4" in result.stderr  # the progress bar
    serial_row = next(line for line in result.stdout.splitlines() if line.startswith("| shmforest serial"))
    assert "| 1.00x |" in serial_row


def test_demo_runs_every_executor_plugins_included_by_default():
    result = run_cli("demo", *TINY_DEMO, "--rows", "400", pythonpath=[HERE / "example_plugin"])
    assert result.returncode == 0, result.stderr
    names = demo.order_executors([*available_executors(), "spare"])
    expected = [f"shmforest {name}, 2 workers" if name != "serial" else "shmforest serial" for name in names]
    assert table_rows(result.stdout) == expected


@pytest.mark.skipif(importlib.util.find_spec("sklearn") is None, reason="scikit-learn not installed")
def test_demo_compares_with_scikit_learn_when_installed():
    result = run_cli("demo", "--rows", "400", "--trees", "2", "--workers", "2", "--executors", "serial")
    assert result.returncode == 0, result.stderr
    assert table_rows(result.stdout) == ["shmforest serial", "scikit-learn, n_jobs=1", "scikit-learn, n_jobs=2"]


def test_demo_reads_a_csv_with_a_header(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    table = np.column_stack([X, (X[:, 0] > 0).astype(int)])
    path = tmp_path / "mine.csv"
    np.savetxt(path, table, delimiter=",", header="a,b,c,label", comments="")
    result = run_cli("demo", "--data", str(path), "--trees", "3", "--executors", "serial", "--no-sklearn")
    assert result.returncode == 0, result.stderr
    assert "mine.csv, 200 x 3, 2 classes" in result.stdout


_FAILING_PLUGIN = """
from shmforest.executors import Executor

class FailingExecutor(Executor):
    name = "failing"

    def __init__(self, max_workers=None, *, budget=None):
        pass

    def submit(self, fn, /, *args, **kwargs):
        raise RuntimeError("the cluster is on fire")

    def shutdown(self, wait=True, *, cancel_futures=False):
        pass
"""


def _install_plugin(root: Path) -> Path:
    """A plugin whose executor fails every task, installed as pip would (a .dist-info on sys.path)."""
    (root / "failing_plugin.py").write_text(_FAILING_PLUGIN)
    info = root / "failing_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: failing-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[shmforest.executors]\nfailing = failing_plugin:FailingExecutor\n")
    return root


def test_demo_failure_is_one_line_and_status_1(tmp_path):
    plugin = _install_plugin(tmp_path)
    result = run_cli("demo", *TINY_DEMO, "--executors", "failing", pythonpath=[plugin])
    line = assert_one_line_error(result, 1, "shmforest demo failed: ")
    assert line == "shmforest demo failed: RuntimeError: the cluster is on fire"
    assert result.stdout == ""


def test_demo_names_a_plugin_that_cannot_import(tmp_path):
    result = run_cli("demo", *TINY_DEMO, "--executors", "broken", pythonpath=[HERE / "bad_plugin"])
    line = assert_one_line_error(result, 2, "python -m shmforest demo: error: ")
    assert "pip install shmforest-bad-plugin" in line


# --------------------------------------------------------------------------- bench

_FAKE_SUITE = """
import pytest

RUNNERS = [("shmforest", "serial", 1), ("shmforest", "shm", 1), ("shmforest", "shm", 2), ("scikit-learn", None, 2)]


def _label(r):
    return f"{r[0]}{'-' + r[1] if r[1] else ''}-n_jobs{r[2]}"


@pytest.mark.parametrize("runner", RUNNERS, ids=[_label(r) for r in RUNNERS])
def test_forest_fit(benchmark, runner):
    benchmark.pedantic(sum, args=(range(100),), rounds=1, iterations=1)
    benchmark.extra_info.update(fit_s=1.0 / runner[2], accuracy=0.9, nested={"not": "shown"})


def test_other(benchmark):
    benchmark.pedantic(sum, args=(range(10),), rounds=2, iterations=1)
    benchmark.extra_info["goals"] = {"be quick": {"measured": "1 s", "met": True}}
"""


@pytest.fixture
def fake_checkout(tmp_path):
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "test_bench_fake.py").write_text(_FAKE_SUITE)
    return tmp_path


def test_bench_saves_json_prints_table_and_plots(fake_checkout):
    result = run_cli("bench", "--out", "results", cwd=fake_checkout)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((fake_checkout / "results" / bench.JSON_NAME).read_text())
    assert len(report["benchmarks"]) == 5
    assert "| test_forest_fit[shmforest-shm-n_jobs2] |" in result.stdout
    assert "fit_s=0.5, accuracy=0.9" in result.stdout
    assert "| be quick | 1 s | yes |" in result.stdout
    png = fake_checkout / "results" / bench.PLOT_NAME
    if importlib.util.find_spec("matplotlib") is None:
        assert "no plot: matplotlib is not installed" in result.stdout
    else:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_passes_k_and_says_when_nothing_matched(fake_checkout):
    result = run_cli("bench", "--out", "results", "-k", "no_such_benchmark", cwd=fake_checkout)
    line = assert_one_line_error(result, 2, "python -m shmforest bench: error: ")
    assert "no benchmarks matched -k 'no_such_benchmark'" in line


def test_bench_outside_a_checkout_is_one_line_and_status_2(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    status, _, err = run_main(["bench"], capsys)
    assert status == 2
    assert err.count("\n") == 1 and "source checkout" in err


def test_bench_against_must_be_a_benchmark_json(tmp_path, monkeypatch, capsys):
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "old.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    status, _, err = run_main(["bench", "--against", "old.json"], capsys)
    assert status == 2
    assert err.startswith(
        "python -m shmforest bench: error: argument --against: old.json is not a pytest-benchmark JSON"
    )
    assert err.count("\n") == 1


def _bench(name: str, median: float, param: str | None = None, **extra) -> dict:
    return {
        "name": name + (f"[{param}]" if param else ""),
        "fullname": f"benchmarks/test_x.py::{name}" + (f"[{param}]" if param else ""),
        "param": param,
        "params": None,
        "extra_info": extra,
        "stats": {"median": median},
    }


def test_bench_table_compares_with_an_earlier_run():
    now = {"benchmarks": [_bench("test_a", 2.0), _bench("test_b", 0.002, note="x" * 100, n=3)]}
    before = {"benchmarks": [_bench("test_a", 4.0)]}
    table = bench.format_tables(now, before)
    assert "| test_a | 2.00 s | 0.50x |" in table
    assert "| test_b | 2.00 ms | new | n=3 |" in table  # a long string stays in the JSON


def test_bench_plot_points_come_from_runner_ids_or_params():
    report = {
        "benchmarks": [
            _bench("test_forest_fit", 3.0, "scikit-learn-n_jobs2", fit_s=2.5),
            _bench("test_deep_tree_fit", 1.0, "shmforest-shm+started-n_jobs2"),
            {
                **_bench("test_forest_fit", 9.0),
                "params": {"runner": ["shmforest", "process", 1]},
                "extra_info": {"fit_s": 8.0},
            },
            _bench("test_column_sums", 1.0, "numpy"),
        ]
    }
    assert bench.runner_points(report) == [
        bench.RunnerPoint("test_forest_fit", "scikit-learn", 2, 2.5),
        bench.RunnerPoint("test_deep_tree_fit", "shmforest shm+started", 2, 1.0),
        bench.RunnerPoint("test_forest_fit", "shmforest process", 1, 8.0),
    ]
    assert bench.plot_fit_vs_workers(
        {"benchmarks": [_bench("test_column_sums", 1.0, "numpy")]}, Path("unused.png")
    ).startswith("no plot")
