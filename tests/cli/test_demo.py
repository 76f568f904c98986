"""``python -m shmforest demo``: bad input in one line, the tables, and the runners in this process."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from cli_support import TESTS, assert_one_line_error, run_cli, run_main

from shmforest.cli import demo
from shmforest.cli.workloads import WORKLOADS, load_workload
from shmforest.executors import available_executors

TINY_DEMO = ["--workloads", "easy", "--rows", "2000", "--trees", "4", "--workers", "2", "--no-sklearn"]


def table_rows(stdout: str) -> list[list[str]]:
    """The runner column of each of the demo's tables."""
    tables: list[list[str]] = []
    for line in stdout.splitlines():
        if line.startswith("| runner"):
            tables.append([])
        elif line.startswith("| ") and "---" not in line:
            tables[-1].append(line.split("|")[1].strip())
    return tables


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
        "--rows chooses and sizes the built-in workloads; leave it out with --data",
    ),
    "workloads with a file": (
        lambda tmp: ["--workloads", "digits", "--data", _write(tmp, "ok.csv", "1,0\n2,1\n")],
        "--workloads chooses",
    ),
    "unknown workload": (lambda tmp: ["--workloads", "easy,hard"], "unknown workload 'hard'; available: easy,"),
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
    "npy with infinity": (
        lambda tmp: [
            "--data",
            _write(tmp, "inf.npy", np.column_stack([np.ones(10), np.full(10, np.inf), np.arange(10) % 2])),
        ],
        "column 2 holds infinite values",
    ),
    "label NaN": (
        lambda tmp: ["--data", _write(tmp, "nanlabel.npy", np.column_stack([np.arange(10.0), np.full(10, np.nan)]))],
        "the label) holds NaN",
    ),
    "not npy inside": (lambda tmp: ["--data", _write(tmp, "text.npy", "hello\n")], "no NumPy header"),
}


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


# --------------------------------------------------------------------------- the tables


def test_demo_prints_a_table_with_a_row_per_runner():
    result = run_cli("demo", *TINY_DEMO, "--executors", "shm,serial")
    assert result.returncode == 0, result.stderr
    assert table_rows(result.stdout) == [["shmforest serial", "shmforest shm, 2 workers"]]
    header = next(line for line in result.stdout.splitlines() if line.startswith("| runner"))
    for column in ("fit s", "fit / scikit-learn", "predict s", "accuracy", "peak tree memory", "peak live processes"):
        assert column in header
    assert "easy: make_classification 2,000 x 20" in result.stdout
    assert "scikit-learn: skipped (--no-sklearn)" in result.stdout
    assert "[2/2] shmforest shm, 2 workers: trees 4/4" in result.stderr  # the progress bar
    serial_row = next(line for line in result.stdout.splitlines() if line.startswith("| shmforest serial"))
    assert "| n/a |" in serial_row  # no scikit-learn to compare with


def test_demo_runs_every_executor_plugins_included_by_default():
    result = run_cli("demo", *TINY_DEMO, "--rows", "400", pythonpath=[TESTS / "example_plugin"])
    assert result.returncode == 0, result.stderr
    names = demo.order_executors([*available_executors(), "spare"])
    expected = [f"shmforest {name}, 2 workers" if name != "serial" else "shmforest serial" for name in names]
    assert table_rows(result.stdout) == [expected]


@pytest.mark.skipif(importlib.util.find_spec("sklearn") is None, reason="scikit-learn not installed")
def test_demo_runs_every_workload_beside_scikit_learn_by_default():
    result = run_cli("demo", "--rows", "400", "--trees", "2", "--workers", "2", "--executors", "serial")
    assert result.returncode == 0, result.stderr
    runners = ["shmforest serial", "scikit-learn, n_jobs=1", "scikit-learn, n_jobs=2"]
    assert table_rows(result.stdout) == [runners] * len(WORKLOADS)
    headers = [line for line in result.stdout.splitlines() if line.startswith("| runner")]
    assert ["R²" in h for h in headers] == [w.regression for w in WORKLOADS.values()]
    assert "load_digits 1,797 x 64" in result.stdout  # --rows sizes only the synthetic workloads


def test_demo_reads_a_csv_with_a_header(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    table = np.column_stack([X, (X[:, 0] > 0).astype(int)])
    path = tmp_path / "mine.csv"
    np.savetxt(path, table, delimiter=",", header="a,b,c,label", comments="")
    result = run_cli("demo", "--data", str(path), "--trees", "3", "--executors", "serial", "--no-sklearn")
    assert result.returncode == 0, result.stderr
    assert "mine.csv, 200 x 3, 2 classes" in result.stdout
    assert len(table_rows(result.stdout)) == 1


def test_demo_learns_missing_values_in_a_csv(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    label = (X[:, 0] > 0).astype(int)
    X[rng.random(X.shape) < 0.2] = np.nan
    path = tmp_path / "holes.csv"
    np.savetxt(path, np.column_stack([X, label]), delimiter=",", header="a,b,c,label", comments="")
    assert "nan" in path.read_text()
    result = run_cli("demo", "--data", str(path), "--trees", "3", "--executors", "serial", "--no-sklearn")
    assert result.returncode == 0, result.stderr
    assert "holes.csv, 200 x 3, 2 classes" in result.stdout


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
    result = run_cli("demo", *TINY_DEMO, "--executors", "broken", pythonpath=[TESTS / "bad_plugin"])
    line = assert_one_line_error(result, 2, "python -m shmforest demo: error: ")
    assert "pip install shmforest-bad-plugin" in line


# --------------------------------------------------------------------------- in this process


def test_runners_tell_the_story_in_order():
    names = demo.order_executors(["shm", "zeta", "process", "alpha", "serial", "thread"])
    assert names == ["serial", "thread", "process", "shm", "alpha", "zeta"]
    runners = demo.make_runners(["serial", "shm"], workers=3, sklearn=True)
    assert [r.label for r in runners] == [
        "shmforest serial",
        "shmforest shm, 3 workers",
        "scikit-learn, n_jobs=1",
        "scikit-learn, n_jobs=3",
    ]
    assert [r.label for r in demo.make_runners(["thread"], workers=1, sklearn=True)] == [
        "shmforest thread, 1 worker",
        "scikit-learn, n_jobs=1",
    ]


@pytest.mark.parametrize("workload", ["easy", "regression"])
def test_run_demo_fits_the_same_forest_everywhere(workload, monkeypatch):
    monkeypatch.setattr(demo, "MONITOR_INTERVAL", 0.005)  # these fits are too short for the demo's 0.1 s
    data = load_workload(WORKLOADS[workload], 1_000, 6)
    runners = demo.make_runners(["serial", "thread", "shm"], workers=2, sklearn=False)
    [done] = demo.run_demo(runners, [(lambda: data, 3, data.regression)])
    assert done.data is data and done.trees == 3
    assert [r.runner for r in done.results] == runners
    # a fixed random_state gives bit-identical trees on every executor: the same score
    assert len({r.score for r in done.results}) == 1 and done.results[0].score > 0.5
    assert all(r.predict_s > 0 for r in done.results)
    assert done.results[0].peak_processes == 0 and done.results[1].peak_processes == 0
    assert done.results[2].peak_processes <= 2  # shm's workers, never more than the budget


def test_table_ratios_are_to_scikit_learn_at_the_same_n_jobs():
    serial, shm = demo.Runner("shmforest", "serial", 1), demo.Runner("shmforest", "shm", 2)
    sk1, sk2 = demo.Runner("scikit-learn", None, 1), demo.Runner("scikit-learn", None, 2)
    results = [
        demo.RunResult(serial, 4.0, 0.2, 0.9, 10 * demo.MiB, 0),
        demo.RunResult(shm, 2.0, 0.1, 0.9, 60 * demo.MiB, 2),
        demo.RunResult(sk1, 8.0, 0.4, 0.9, 1 * demo.MiB, 0),
        demo.RunResult(sk2, 5.0, 0.5, 0.9, 2 * demo.MiB, 0),
    ]
    lines = demo.format_table(results).splitlines()
    assert lines[2] == "| shmforest serial | 4.00 | 0.50 | 0.200 | 0.50 | 0.9000 | +10.0 MiB | 0 |"
    assert lines[3] == "| shmforest shm, 2 workers | 2.00 | 0.40 | 0.100 | 0.20 | 0.9000 | +60.0 MiB | 2 |"
    assert lines[4] == "| scikit-learn, n_jobs=1 | 8.00 |  | 0.400 |  | 0.9000 | +1.0 MiB | 0 |"
    assert "| n/a |" in demo.format_table(results[:2])
    assert "| R² |" in demo.format_table(results, regression=True).splitlines()[0]
