"""CapacityProbe: cores' worth of work a benchmark's processes get, measured beside its rounds."""

from __future__ import annotations

import psutil
import pytest

from shmforest.testing.capacity import KERNELS, CapacityProbe, kernel_seconds


def test_two_processes_get_between_none_and_two_cores_worth_and_the_helper_ends():
    with CapacityProbe(2) as probe:
        helpers = [psutil.Process(h.pid) for h in probe._helpers]
        assert len(helpers) == 1 and helpers[0].is_running()
        seen = [probe.measure(passes=50) for _ in range(3)]
        memory = probe.measure("memory", passes=2)
    # Each process's speed against alone: ~1 each on free cores, ~0.5 each on one
    # (a busy moment while timing "alone" can read high; far off means a broken sum).
    assert all(0.2 < c < 5.0 for c in seen), seen
    assert 0.05 < memory < 20.0, memory
    assert all(not h.is_running() or h.status() == psutil.STATUS_ZOMBIE for h in helpers)
    with pytest.raises(RuntimeError, match="closed"):
        probe.measure()


def test_one_process_measures_itself_against_itself():
    with CapacityProbe(1) as probe:
        assert probe._helpers == []
        assert 0.3 < probe.measure(passes=50) < 3.0


@pytest.mark.parametrize("processes", [0, 2.0, True, "2"])
def test_a_bad_process_count_is_refused_naming_it(processes):
    with pytest.raises(ValueError, match="processes"):
        CapacityProbe(processes)


def test_bad_kernel_arguments_are_refused_naming_them():
    with CapacityProbe(1) as probe:
        with pytest.raises(ValueError, match="kind must be one of"):
            probe.measure("disk")
        with pytest.raises(ValueError, match="passes"):
            probe.measure(passes=0)


@pytest.mark.parametrize("kind", sorted(KERNELS))
def test_each_kernel_runs_and_reports_a_positive_time(kind):
    assert kernel_seconds(kind, 1) > 0


def test_a_helper_that_dies_is_reported_not_misread():
    with CapacityProbe(2) as probe:
        probe._helpers[0].kill()
        probe._helpers[0].wait()
        with pytest.raises(RuntimeError, match="helper exited"):
            probe.measure(passes=5)
