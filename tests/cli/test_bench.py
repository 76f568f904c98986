"""``python -m shmforest bench``: the suites through pytest-benchmark, tables, plot, and where suites are found."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from cli_support import assert_one_line_error, run_cli, run_main

from shmforest.cli import bench

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


def test_bench_from_an_installed_package_is_one_line_and_status_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bench, "SOURCE_ROOT", tmp_path / "site-packages")  # a wheel's: no suites beside it
    monkeypatch.chdir(tmp_path)
    status, out, err = run_main(["bench"], capsys)
    assert status == 2
    assert err.count("\n") == 1 and err.startswith("python -m shmforest bench: error: ")
    assert "not installed with the package" in err and "source checkout" in err
    assert out == ""


def test_bench_finds_the_suites_here_else_in_the_checkout_it_was_installed_from(tmp_path):
    here, checkout, wheel = tmp_path / "here", tmp_path / "checkout", tmp_path / "site-packages"
    for folder in (here / "benchmarks", checkout / "benchmarks", wheel / "benchmarks"):
        folder.mkdir(parents=True)
    (checkout / "pyproject.toml").write_text("[project]\nname = 'shmforest'\n")
    assert bench.find_suites(here, checkout) == here / "benchmarks"
    assert bench.find_suites(tmp_path, checkout) == checkout / "benchmarks"
    assert bench.find_suites(tmp_path, wheel) is None  # a folder named benchmarks, but no checkout
    assert (bench.SOURCE_ROOT / "shmforest" / "cli" / "bench.py").is_file()


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
