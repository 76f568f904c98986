"""The demo's datasets: the built-in workloads and reading a user's file."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import make_classification

from shmforest.cli import workloads

# --------------------------------------------------------------------------- built-in workloads


def test_workloads_contrast_classification_regression_and_real_data():
    kinds = {name: w.regression for name, w in workloads.WORKLOADS.items()}
    assert kinds == {"easy": False, "regression": True, "digits": False}


@pytest.mark.parametrize("name", list(workloads.WORKLOADS))
def test_a_workload_splits_three_to_one_and_sizes_only_synthetic_data(name):
    w = workloads.WORKLOADS[name]
    data = workloads.load_workload(w, rows=400, features=5)
    rows = 400 if w.rows is not None else 1_797
    assert len(data.y_train) + len(data.y_test) == rows and len(data.y_test) == math.ceil(rows / 4)
    assert data.X_train.shape[1] == (5 if w.features is not None else 64)
    assert data.regression is w.regression and data.description.startswith(f"{name}: {w.source} ")
    assert (data.y_train.dtype.kind == "f") is w.regression


def test_a_workload_is_the_same_data_every_time():
    easy = workloads.WORKLOADS["easy"]
    first, again = workloads.load_workload(easy, 300, 4), workloads.load_workload(easy, 300, 4)
    assert np.array_equal(first.X_train, again.X_train) and np.array_equal(first.y_test, again.y_test)


# --------------------------------------------------------------------------- loading a file


def _table(rows: int = 100) -> np.ndarray:
    X, y = make_classification(n_samples=rows, n_features=4, n_informative=2, random_state=0)
    return np.column_stack([X, y])


def test_load_file_reads_npy_and_csv_alike(tmp_path: Path):
    table = _table()
    np.save(tmp_path / "data.npy", table)
    np.savetxt(tmp_path / "headed.csv", table, delimiter=",", header="a,b,c,d,label", comments="")
    np.savetxt(tmp_path / "bare.csv", table, delimiter=",")
    loaded = [workloads.load_file(tmp_path / name) for name in ("data.npy", "headed.csv", "bare.csv")]
    for data in loaded:
        assert data.X_train.shape == (75, 4) and data.X_test.shape == (25, 4)
        assert data.y_train.dtype.kind == "i"  # 0.0/1.0 in a CSV are labels 0/1
        assert not data.regression
    assert np.allclose(loaded[0].X_train, loaded[1].X_train) and np.array_equal(loaded[1].X_train, loaded[2].X_train)
    assert "headed.csv, 100 x 4, 2 classes" == loaded[1].description


def test_load_file_refuses_a_regression_target(tmp_path: Path):
    table = _table(300)
    table[:, -1] = np.linspace(0, 1, 300)
    np.save(tmp_path / "continuous.npy", table)
    with pytest.raises(ValueError, match="300 distinct values"):
        workloads.load_file(tmp_path / "continuous.npy")
