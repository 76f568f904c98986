"""The demo's parts in-process: file loading, runners and the table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shmforest import demo
from sklearn.datasets import make_classification

# --------------------------------------------------------------------------- loading a file


def _table(rows: int = 100) -> np.ndarray:
    X, y = make_classification(n_samples=rows, n_features=4, n_informative=2, random_state=0)
    return np.column_stack([X, y])


def test_load_file_reads_npy_and_csv_alike(tmp_path: Path):
    table = _table()
    np.save(tmp_path / "data.npy", table)
    np.savetxt(tmp_path / "headed.csv", table, delimiter=",", header="a,b,c,d,label", comments="")
    np.savetxt(tmp_path / "bare.csv", table, delimiter=",")
    loaded = [demo.load_file(tmp_path / name) for name in ("data.npy", "headed.csv", "bare.csv")]
    for data in loaded:
        assert data.X_train.shape == (75, 4) and data.X_test.shape == (25, 4)
        assert data.y_train.dtype.kind == "i"  # 0.0/1.0 in a CSV are labels 0/1
    assert np.allclose(loaded[0].X_train, loaded[1].X_train) and np.array_equal(loaded[1].X_train, loaded[2].X_train)
    assert "headed.csv, 100 x 4, 2 classes" == loaded[1].description


def test_load_file_refuses_a_regression_target(tmp_path: Path):
    table = _table(300)
    table[:, -1] = np.linspace(0, 1, 300)
    np.save(tmp_path / "continuous.npy", table)
    with pytest.raises(ValueError, match="300 distinct values"):
        demo.load_file(tmp_path / "continuous.npy")


# --------------------------------------------------------------------------- runners and the table


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


def test_run_demo_fits_the_same_forest_everywhere(monkeypatch):
    monkeypatch.setattr(demo, "MONITOR_INTERVAL", 0.005)  # these fits are too short for the demo's 0.1 s
    data = demo.synthetic(1_000, 6)
    runners = demo.make_runners(["serial", "thread", "shm"], workers=2, sklearn=False)
    results = demo.run_demo(runners, trees=3, data=data)
    assert [r.runner for r in results] == runners
    # a fixed random_state gives bit-identical trees on every executor: the same accuracy
    assert len({r.accuracy for r in results}) == 1 and results[0].accuracy > 0.7
    assert results[0].peak_processes == 0 and results[1].peak_processes == 0
    assert 1 <= results[2].peak_processes <= 2  # shm's workers, never more than the budget


def test_table_speedups_are_over_serial_when_it_ran():
    serial, shm = demo.Runner("shmforest", "serial", 1), demo.Runner("shmforest", "shm", 2)
    results = [demo.RunResult(serial, 4.0, 0.9, 10 * demo.MiB, 0), demo.RunResult(shm, 2.0, 0.9, 60 * demo.MiB, 2)]
    lines = demo.format_table(results).splitlines()
    assert lines[2] == "| shmforest serial | 4.00 | 1.00x | 0.9000 | +10.0 MiB | 0 |"
    assert lines[3] == "| shmforest shm, 2 workers | 2.00 | 2.00x | 0.9000 | +60.0 MiB | 2 |"
    assert "| n/a |" in demo.format_table(results[1:])
