"""CapacityProbe: cores' worth of work a benchmark's processes get, measured beside its rounds."""

from __future__ import annotations

import psutil
import pytest

from shmforest.testing.capacity import CapacityProbe, kernel_seconds


def test_two_processes_get_between_none_and_two_cores_worth_and_the_helper_ends():
    with CapacityProbe(2, passes=50) as probe:
        helpers = [psutil.Process(h.pid) for h in probe._helpers]
        assert len(helpers) == 1 and helpers[0].is_running()
        seen = [probe.measure() for _ in range(3)]
    # Each process's speed against alone: ~1 each on free cores, ~0.5 each on one.
    assert all(0.2 < c < 3.0 for c in seen), seen
    assert all(not h.is_running() or h.status() == psutil.STATUS_ZOMBIE for h in helpers)
    with pytest.raises(RuntimeError, match="closed"):
        probe.measure()


def test_one_process_measures_itself_against_itself():
    with CapacityProbe(1, passes=50) as probe:
        assert probe._helpers == []
        assert 0.3 < probe.measure() < 3.0


@pytest.mark.parametrize("kwargs, name", [({"processes": 0}, "processes"), ({"processes": 2.0}, "processes"),
                                          ({"passes": 0}, "passes"), ({"processes": True}, "processes")])
def test_bad_arguments_name_the_parameter(kwargs, name):
    with pytest.raises(ValueError, match=name):
        CapacityProbe(**kwargs)


def test_the_kernel_runs_and_reports_a_positive_time():
    assert kernel_seconds(5) > 0
