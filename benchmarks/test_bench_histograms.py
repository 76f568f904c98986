"""How many histogram cells the builder evaluates per group of dense nodes (``DENSE_CELLS``).

Fully grown trees on the 75,000 x 20 workload, serial: one deep tree (all features)
and 5 forest trees (bootstrap, ``max_features="sqrt"``), with groups of 16 MiB
arrays (2M cells, the setting before) and of 3 MiB arrays (393,216 cells, now), in
turns, 5 rounds, medians. In a fresh interpreter twice: with glibc's malloc
defaults (a user's process, where ``executor="serial"`` runs) and with the
settings workers make (``shmforest/_worker.py``). For the README::

    .venv/bin/python benchmarks/test_bench_histograms.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_bench_faults import SETTINGS, run_fresh  # noqa: E402

CELLS = {"2M cells (16 MiB arrays)": 1 << 21, "393,216 cells (3 MiB arrays)": 3 << 17}
MALLOC = {
    "glibc defaults (user process)": SETTINGS["glibc defaults"],
    "worker settings": SETTINGS["mmap 32 MiB, trim 256 MiB (workers now)"],
}

_SCRIPT = """
import json, statistics, sys, time
sys.path.insert(0, {here!r})
from test_bench_forest import load_workload
import shmforest.tree.growth as growth
from shmforest import DecisionTreeClassifier, RandomForestClassifier
X, _, y, _ = load_workload()
cells = {cells!r}
DecisionTreeClassifier(executor="serial", random_state=0).fit(X, y)
times = {{name: {{"deep tree": [], "5 forest trees": []}} for name in cells}}
for _ in range({rounds}):
    for name, value in cells.items():
        growth.DENSE_CELLS = value
        t0 = time.perf_counter()
        DecisionTreeClassifier(executor="serial", random_state=0).fit(X, y)
        t1 = time.perf_counter()
        RandomForestClassifier(5, executor="serial", random_state=0).fit(X, y)
        t2 = time.perf_counter()
        times[name]["deep tree"].append(t1 - t0)
        times[name]["5 forest trees"].append(t2 - t1)
print(json.dumps({{n: {{k: statistics.median(v) for k, v in d.items()}} for n, d in times.items()}}))
"""


def measure(env: dict[str, str], rounds: int = 5) -> dict[str, dict[str, float]]:
    script = _SCRIPT.format(here=str(Path(__file__).parent), cells=CELLS, rounds=rounds)
    return json.loads(run_fresh(script, env))


def report(results: dict[str, dict[str, dict[str, float]]]) -> str:
    lines = ["| malloc | group size | one deep tree | 5 forest trees |", "|---|---|---|---|"]
    for malloc, by_cells in results.items():
        for name, t in by_cells.items():
            lines.append(f"| {malloc} | {name} | {t['deep tree']:.3f} s | {t['5 forest trees']:.3f} s |")
    return "\n".join(lines)


@pytest.mark.parametrize("malloc", list(MALLOC))
def test_dense_group_size(benchmark, malloc, capsys):
    pytest.importorskip("sklearn")
    result = benchmark.pedantic(measure, args=(MALLOC[malloc], 3), rounds=1, iterations=1)
    benchmark.extra_info.update(result)
    with capsys.disabled():
        print("\n" + report({malloc: result}))


if __name__ == "__main__":
    print(report({name: measure(env) for name, env in MALLOC.items()}))
