"""ProcessBudget: tokens, leases, reclaiming, reach into nested processes, default size, depth guard."""

from __future__ import annotations

import os
import pickle
import signal
import stat
import subprocess
import sys
import time
import warnings

import pytest

from shmforest import budget as budget_mod
from shmforest import cores, liveness
from shmforest.budget import (
    DEPTH_ENV_VAR,
    ENV_VAR,
    MAX_DEPTH_ENV_VAR,
    MAX_WORKERS_ENV_VAR,
    ProcessBudget,
    check_nesting_depth,
    default_budget,
    default_budget_segment,
)
from shmforest.cores import usable_cores
from shmforest.errors import BudgetError, BudgetWarning, NestingDepthError

SHM = "/dev/shm"


@pytest.fixture
def budget():
    b = ProcessBudget(3)
    yield b
    b.close()


def _python(code: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def _wait_until(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


# --------------------------------------------------------------------------- tokens


def test_try_acquire_takes_what_is_free_and_never_more(budget):
    assert (budget.size, budget.available) == (3, 3)
    assert budget.try_acquire(2) == 2
    assert budget.try_acquire(2) == 1  # only one left: partial, not blocking
    assert budget.try_acquire() == 0
    assert budget.available == 0
    assert budget.holders() == {os.getpid(): 3}
    budget.release(3)
    assert budget.available == 3
    assert budget.try_acquire(0) == 0


def test_tokens_context_manager_releases_on_error(budget):
    with pytest.raises(ZeroDivisionError):
        with budget.tokens(2) as got:
            assert got == 2 and budget.available == 1
            raise ZeroDivisionError
    assert budget.available == 3
    with budget.tokens(5) as got:
        assert got == 3
    assert budget.available == 3


def test_releasing_tokens_not_held_is_an_error(budget):
    budget.try_acquire(1)
    with pytest.raises(BudgetError, match="held only 1"):
        budget.release(2)
    assert budget.available == 3  # the one it did hold went back


@pytest.mark.parametrize("size, error", [(0, ValueError), (-1, ValueError), (2.0, TypeError), (True, TypeError)])
def test_bad_sizes_are_refused(size, error):
    with pytest.raises(error, match="size"):
        ProcessBudget(size)


def test_bad_counts_are_refused(budget):
    with pytest.raises(ValueError, match="n must be 0 or more"):
        budget.try_acquire(-1)
    with pytest.raises(TypeError, match="n must be an int"):
        budget.release(1.0)


def test_block_is_private_and_named_with_our_prefix(budget):
    assert budget.name.startswith("shmf_budget_")
    mode = os.stat(os.path.join(SHM, budget.name)).st_mode
    assert stat.S_IMODE(mode) == 0o600


# --------------------------------------------------------------------------- identity and joining


def test_join_and_pickle_share_the_same_tokens(budget):
    other = ProcessBudget.join(budget.name)
    copy = pickle.loads(pickle.dumps(budget))
    assert not other.owner and not copy.owner and budget.owner
    assert other.try_acquire(2) == 2
    assert budget.available == 1 and copy.available == 1
    other.release(2)
    other.close()
    copy.close()  # a joined handle only lets go; the budget lives on
    assert budget.available == 3


def test_joining_a_missing_budget_fails_clearly():
    with pytest.raises(BudgetError, match="no process budget named"):
        ProcessBudget.join("shmf_budget_" + "0" * 24)
    with pytest.raises(ValueError, match="not a process budget name"):
        ProcessBudget.join("../etc/passwd")


def test_another_process_draws_on_the_budget_through_the_environment(budget):
    code = (
        "from shmforest.budget import ProcessBudget\n"
        "b = ProcessBudget.from_environment()\n"
        "print(b.name, b.try_acquire(2), flush=True)\n"
        "b.release(2)\n"
    )
    proc = _python(code, env={ENV_VAR: budget.name})
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert out.split() == [budget.name, "2"]
    assert budget.available == 3


def test_from_environment_is_none_when_unset_or_gone(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert ProcessBudget.from_environment() is None
    monkeypatch.setenv(ENV_VAR, "shmf_budget_" + "f" * 24)
    assert ProcessBudget.from_environment() is None


def test_a_budget_created_under_one_joins_it_unless_told_otherwise(budget, monkeypatch):
    monkeypatch.setenv(ENV_VAR, budget.name)
    joined = ProcessBudget()
    assert joined.name == budget.name and not joined.owner
    own = ProcessBudget(inherit=False)
    sized = ProcessBudget(2)
    assert own.name != budget.name and sized.name != budget.name and own.owner
    assert default_budget().name == budget.name
    for b in (joined, own, sized):
        b.close()


# --------------------------------------------------------------------------- dead holders


def test_tokens_of_a_killed_process_are_reclaimed(budget):
    code = (
        "import time\n"
        "from shmforest.budget import ProcessBudget\n"
        "b = ProcessBudget.from_environment()\n"
        "print(b.try_acquire(2), flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = _python(code, env={ENV_VAR: budget.name})
    try:
        assert proc.stdout.readline().strip() == "2"
        assert budget.available == 1
        assert budget.holders()[proc.pid] == 2
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=10)
    # A zombie or a vanished pid holds nothing: the next acquire gets them back.
    assert budget.try_acquire(3) == 3
    assert proc.pid not in budget.holders()
    budget.release(3)


def test_a_recycled_pid_does_not_keep_a_dead_processes_token(budget):
    parent = os.getppid()
    start = liveness.start_time(parent)
    assert budget.try_acquire(2) == 2
    budget.lease_to(parent, start)  # a live process: kept
    budget.lease_to(parent, start + 1)  # same pid, another start time: a dead holder
    assert budget.holders() == {parent: 1}
    assert budget.release_lease(parent, start)
    assert budget.available == 3


def test_own_pid_with_another_start_time_is_a_dead_holder(budget):
    pid, start = liveness.current_process()
    budget.try_acquire(1)
    budget.lease_to(pid, start - 1)
    assert budget.available == 3


# --------------------------------------------------------------------------- closing


def test_close_says_when_tokens_do_not_add_up():
    b = ProcessBudget(2)
    b.try_acquire(1)
    with pytest.warns(BudgetWarning, match=r"1 still held \(pid \d+: 1\)"):
        b.close()
    assert not os.path.exists(os.path.join(SHM, b.name))


def test_close_is_quiet_when_tokens_add_up_and_is_idempotent():
    b = ProcessBudget(2)
    with b.tokens(2):
        pass
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        b.close()
        b.close()
    assert b.closed
    with pytest.raises(BudgetError, match="closed"):
        b.try_acquire()


def test_joined_handles_see_the_owner_close(budget):
    other = ProcessBudget.join(budget.name)
    budget.close()
    with pytest.raises(BudgetError, match="closed by its owner"):
        other.try_acquire()
    other.close()


def test_a_killed_owners_budget_is_swept():
    code = (
        "from shmforest.budget import ProcessBudget\nb = ProcessBudget(2)\n"
        "print(b.name, flush=True)\nimport time; time.sleep(60)\n"
    )
    proc = _python(code)
    name = proc.stdout.readline().strip()
    assert os.path.exists(os.path.join(SHM, name))
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)
    # The owner's resource tracker removes the block once the owner is gone.
    assert _wait_until(lambda: not os.path.exists(os.path.join(SHM, name)), timeout=10)


# --------------------------------------------------------------------------- default size and default budget


def test_default_size_is_usable_cores_or_the_variable(monkeypatch):
    monkeypatch.delenv(MAX_WORKERS_ENV_VAR, raising=False)
    with ProcessBudget(inherit=False) as b:
        assert b.size == usable_cores()[0]
    monkeypatch.setenv(MAX_WORKERS_ENV_VAR, "5")
    with ProcessBudget(inherit=False) as b:
        assert b.size == 5
    with ProcessBudget(3) as b:  # the argument wins
        assert b.size == 3
    monkeypatch.setenv(MAX_WORKERS_ENV_VAR, "lots")
    with pytest.raises(ValueError, match="SHMFOREST_MAX_WORKERS='lots'"):
        ProcessBudget(inherit=False)


def test_usable_cores_respects_affinity():
    count, source = usable_cores()
    assert 1 <= count <= len(os.sched_getaffinity(0))
    assert source in {"affinity", "cgroup v2 quota", "cgroup v1 quota"}


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_cgroup_v2_quota_is_read_and_rounded_up(tmp_path):
    _write(tmp_path / "proc_cgroup", "0::/job\n")
    _write(tmp_path / "cg" / "job" / "cpu.max", "150000 100000\n")
    assert cores._cgroup_cpu_quota(str(tmp_path / "cg"), str(tmp_path / "proc_cgroup")) == (1.5, "cgroup v2 quota")
    _write(tmp_path / "cg" / "job" / "cpu.max", "max 100000\n")
    assert cores._cgroup_cpu_quota(str(tmp_path / "cg"), str(tmp_path / "proc_cgroup")) is None


def test_cgroup_v1_quota_is_read(tmp_path):
    _write(tmp_path / "proc_cgroup", "4:cpu,cpuacct:/docker/abc\n0::/\n")
    _write(tmp_path / "cg" / "cpu,cpuacct" / "docker" / "abc" / "cpu.cfs_quota_us", "300000\n")
    _write(tmp_path / "cg" / "cpu,cpuacct" / "docker" / "abc" / "cpu.cfs_period_us", "100000\n")
    assert cores._cgroup_cpu_quota(str(tmp_path / "cg"), str(tmp_path / "proc_cgroup")) == (3.0, "cgroup v1 quota")
    _write(tmp_path / "cg" / "cpu,cpuacct" / "docker" / "abc" / "cpu.cfs_quota_us", "-1\n")
    assert cores._cgroup_cpu_quota(str(tmp_path / "cg"), str(tmp_path / "proc_cgroup")) is None


def test_default_budget_is_one_per_process(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    first = default_budget()
    assert default_budget() is first
    assert default_budget_segment() == first.name
    assert first.owner and first.size == budget_mod._default_size()


# --------------------------------------------------------------------------- nesting depth guard


def test_depth_guard_stops_runaway_nesting(monkeypatch):
    monkeypatch.setenv(DEPTH_ENV_VAR, "3")
    assert check_nesting_depth() == 3
    monkeypatch.setenv(MAX_DEPTH_ENV_VAR, "3")
    with pytest.raises(NestingDepthError, match="nested 3 levels deep, the limit is 3") as info:
        check_nesting_depth()
    assert isinstance(info.value, RecursionError)
    monkeypatch.delenv(MAX_DEPTH_ENV_VAR)
    monkeypatch.setenv(DEPTH_ENV_VAR, str(budget_mod.DEFAULT_MAX_DEPTH))
    with pytest.raises(NestingDepthError):
        check_nesting_depth()
