"""WorkerPool: the budget bound at any depth, nested submission, pickling, crashes, orphans, Ctrl-C."""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import multiprocessing.pool
import os
import signal
import struct
import subprocess
import sys
import textwrap
import threading
import time
import warnings

import cloudpickle
import psutil
import pytest

from shmforest.budget import DEPTH_ENV_VAR, ENV_VAR, MAX_DEPTH_ENV_VAR, ProcessBudget, default_budget_segment
from shmforest.errors import NestingDepthError, TaskPicklingError, WorkerCrashedError
from shmforest.pool import WorkerPool, in_worker, worker_free_workers, worker_submit
from shmforest.testing.processes import live_workers

# Tasks below are sent by value: workers need not import this module (and pytest).
cloudpickle.register_pickle_by_value(sys.modules[__name__])

METHODS = ["forkserver", "fork", "spawn"]


# --------------------------------------------------------------------------- helpers


def live_processes() -> set[int]:
    """Live (not zombie) descendants of this process, long-lived helpers (resource
    trackers, forkservers: multiprocessing's and joblib's) excepted."""
    return {p.pid for p in live_workers()}


class Sampler:
    """Counts live descendant processes every few milliseconds, in a thread."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, len(live_processes()))
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait_until(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def _budgets_owned_here() -> set[str]:
    """Budget blocks in /dev/shm whose header names this process as owner."""
    out = set()
    for name in os.listdir("/dev/shm"):
        if name.startswith("shmf_budget_") and name != default_budget_segment():
            try:
                with open(os.path.join("/dev/shm", name), "rb") as f:
                    owner = struct.unpack_from("<q", f.read(24), 16)[0]
            except (OSError, struct.error):
                continue
            if owner == os.getpid():
                out.add(name)
    return out


@pytest.fixture(autouse=True)
def no_stray_workers():
    """conftest spots leaked processes by command line, which forkserver children share
    with their server, and blocks by name, which other programs using shmforest on the
    machine also create; check by pid too."""
    before = live_processes()
    yield
    assert _wait_until(lambda: not (live_processes() - before), timeout=5), f"workers left: {live_processes() - before}"
    assert not _budgets_owned_here()


@pytest.fixture
def budget2():
    with ProcessBudget(2) as b:
        yield b
        assert b.available == 2 and b.holders() == {}, "tokens leaked"


# --------------------------------------------------------------------------- tasks (sent by value)


def tree(depth: int, path: int = 1, serial: bool = False) -> int:
    """Binary recursion that submits both branches at every level."""
    if depth == 0:
        return path * path % 1009
    if serial:
        left, right = (tree(depth - 1, 2 * path + b, True) for b in (0, 1))
    else:
        futures = [worker_submit(tree, depth - 1, 2 * path + b) for b in (0, 1)]
        left, right = (f.result() for f in futures)
    return (3 * left + 7 * right + path) % 1_000_003


def sleep_and_pid(seconds: float, pidfile: str | None = None) -> int:
    if pidfile:
        with open(pidfile, "w") as f:
            f.write(str(os.getpid()))
    time.sleep(seconds)
    return os.getpid()


def nested_sleeper_then_report(pidfile: str) -> str:
    """Submits a nested task that will be killed; reports what its future raised."""
    future = worker_submit(sleep_and_pid, 30, pidfile)
    try:
        future.result(timeout=20)
    except WorkerCrashedError as exc:
        return f"crashed:{exc.pid}:{exc.exitcode}"
    return "not crashed"


def inner_pool_report(n: int) -> dict:
    """Runs in a worker: a pool created here, by 'user code', with no arguments."""
    with WorkerPool() as inner:
        futures = [inner.submit(sleep_and_pid, 0.2) for _ in range(n)]
        pids = {f.result() for f in futures}
        return {
            "budget": inner.budget.name,
            "env": os.environ.get(ENV_VAR),
            "depth": os.environ.get(DEPTH_ENV_VAR),
            "pids": sorted(pids),
            "me": os.getpid(),
        }


def env_of_grandchild(method: str) -> str | None:
    """Start a plain multiprocessing child from a task; which budget does it see?"""
    with mp.get_context(method).Pool(1) as grandchildren:
        return grandchildren.apply(os.getenv, (ENV_VAR,))


def make_pool_in_task() -> str:
    WorkerPool()
    return "made"


# --------------------------------------------------------------------------- basics


@pytest.mark.parametrize("method", METHODS)
def test_lambdas_closures_and_local_classes_travel(method, budget2):
    class Point:
        def __init__(self, x):
            self.x = x

    offset = 10
    with WorkerPool(budget2, start_method=method) as pool:
        assert pool.submit(lambda x: x + offset, 5).result() == 15
        point = pool.submit(lambda: Point(3)).result()
        assert type(point).__name__ == "Point" and point.x == 3
        assert pool.submit(os.getpid).result() != os.getpid()


def test_idle_workers_are_reused(budget2):
    with WorkerPool(budget2) as pool:
        pids = {pool.submit(os.getpid).result() for _ in range(5)}
        assert len(pids) == 1 and pool.worker_pids() == list(pids)


def test_task_exception_travels_with_remote_traceback(budget2):
    def boom():
        raise KeyError("missing")

    with WorkerPool(budget2) as pool:
        with pytest.raises(KeyError, match="missing") as info:
            pool.submit(boom).result()
        assert "in boom" in str(info.value.__cause__)
        assert pool.submit(int, "7").result() == 7


def test_workers_are_not_daemonic_and_may_start_processes(budget2):
    with WorkerPool(budget2) as pool:
        assert pool.submit(lambda: mp.current_process().daemon).result() is False
        assert pool.submit(in_worker).result() is True
        assert pool.submit(lambda: os.environ[ENV_VAR]).result() == budget2.name
    assert not in_worker()


@pytest.mark.parametrize(
    "worker_method, method",
    [
        ("forkserver", "forkserver"),
        ("forkserver", "fork"),
        ("forkserver", "spawn"),
        ("fork", "forkserver"),
        ("spawn", "forkserver"),
    ],
)
def test_a_process_started_in_a_task_joins_the_budget(worker_method, method, budget2):
    with WorkerPool(budget2, start_method=worker_method) as pool:
        assert pool.submit(env_of_grandchild, method).result(timeout=60) == budget2.name


def test_worker_submit_outside_a_task_is_an_error():
    with pytest.raises(RuntimeError, match="not running in one"):
        worker_submit(int)


def test_bad_arguments_are_refused():
    with pytest.raises(TypeError, match="budget must be a ProcessBudget"):
        WorkerPool(2)
    with pytest.raises(ValueError, match="start_method='threads'"):
        WorkerPool(start_method="threads")


def test_submissions_from_many_threads(budget2):
    with Sampler() as sampler, WorkerPool(budget2) as pool:

        def client(i):
            return [pool.submit(pow, i, k).result() for k in range(20)]

        with cf.ThreadPoolExecutor(4) as threads:
            results = list(threads.map(client, range(4)))
    assert results == [[i**k for k in range(20)] for i in range(4)]
    assert sampler.peak <= 2


def test_pool_cannot_be_pickled(budget2):
    with WorkerPool(budget2) as pool:
        with pytest.raises(TypeError, match="worker_submit"):
            cloudpickle.dumps(pool)


# --------------------------------------------------------------------------- the budget bound


@pytest.mark.parametrize(
    "size, method",
    [(1, "forkserver"), (2, "forkserver"), (4, "forkserver"), (2, "fork"), (2, "spawn")],
)
def test_recursion_never_exceeds_the_budget(size, method):
    expected = tree(8, serial=True)
    with ProcessBudget(size) as budget:
        with Sampler() as sampler, WorkerPool(budget, start_method=method) as pool:
            assert pool.submit(tree, 8).result(timeout=120) == expected
            assert len(pool.worker_pids()) <= size
            # With fork the whole recursion can end between two samples: let the
            # sampler see the (now idle, still live) workers before shutdown.
            seen = sampler.samples
            deadline = time.monotonic() + 5
            while sampler.samples < seen + 2 and time.monotonic() < deadline:
                time.sleep(0.005)
        assert sampler.samples > 0
        assert 1 <= sampler.peak <= size
        assert budget.available == size


def test_budget_one_runs_everything_inline_in_one_worker():
    with ProcessBudget(1) as budget, WorkerPool(budget) as pool:
        pids = pool.submit(lambda: [worker_submit(os.getpid).result() for _ in range(5)] + [os.getpid()]).result()
        assert len(set(pids)) == 1 and pool.worker_pids() == pids[:1]


def test_nested_submission_uses_idle_workers_then_runs_inline(budget2):
    def fan_out():
        futures = [worker_submit(sleep_and_pid, 0.3) for _ in range(3)]
        return [f.result() for f in futures], os.getpid()

    with WorkerPool(budget2) as pool:
        pids, me = pool.submit(fan_out).result()
        # one token for the caller, one for a second worker; the rest ran inline
        assert len(set(pids)) == 2 and me in pids
        assert len(pool.worker_pids()) == 2


def test_free_workers_counts_idle_workers_and_free_tokens(budget2):
    with WorkerPool(budget2) as pool:
        assert pool.free_workers() == 2  # no worker yet: two tokens to start them with
        gate = pool.submit(lambda: worker_free_workers())
        assert gate.result() == 1  # seen from inside: the caller holds one token, one is free
        pool.submit(os.getpid).result()
        assert pool.free_workers() == 2  # one idle worker and a free token
        busy = [pool.submit(sleep_and_pid, 0.5) for _ in range(2)]
        time.sleep(0.2)
        assert pool.free_workers() == 0
        [f.result() for f in busy]


def test_warm_up_starts_a_worker_per_free_token_that_tasks_then_run_on(budget2):
    with WorkerPool(budget2) as pool:
        pool.warm_up()
        # Starting or up, the workers count as free throughout: no task has taken one.
        seen = set()
        assert _wait_until(lambda: seen.add(pool.free_workers()) or len(pool.worker_pids()) == 2, timeout=30)
        assert seen == {2}
        warmed = set(pool.worker_pids())
        assert budget2.available == 0  # each holds its token, as an idle worker does
        pool.warm_up()  # no token left: starts nothing
        assert set(pool.worker_pids()) == warmed
        busy = [pool.submit(sleep_and_pid, 0.3) for _ in range(2)]
        assert {f.result() for f in busy} == warmed


def test_a_task_submitted_while_warm_up_starts_its_worker_waits_for_it():
    with ProcessBudget(1) as budget, WorkerPool(budget) as pool:
        pool.warm_up()
        future = pool.submit(os.getpid)  # the only token is the starting worker's
        assert future.result() != os.getpid()  # not inline: it ran on that worker
        assert pool.worker_pids() == [future.result()]


def test_shutdown_right_after_warm_up_leaves_nothing_behind(budget2):
    for _ in range(3):
        pool = WorkerPool(budget2)
        pool.warm_up()
        pool.shutdown(wait=True)
        assert pool.worker_pids() == []
        assert budget2.available == 2
    # The fixtures check that no process and no budget block outlived the pools.


def test_terminate_during_warm_up_gives_every_token_back(budget2):
    # Terminated at moments spread over the workers' start: one may be mid-start.
    for i in range(40):
        pool = WorkerPool(budget2)
        pool.warm_up()
        time.sleep((i % 10) * 0.002)
        pool.terminate()
        assert budget2.available == 2, f"round {i}: {budget2.holders()}"
        assert pool.worker_pids() == []


def _dies_the_first_time(marker):
    from shmforest.pool import worker as w_

    real = w_.main

    def main(conn, config):
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return real(conn, config)
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        os._exit(3)  # the first worker started dies before it serves anything

    return main


def test_a_worker_dying_while_warm_up_starts_it_costs_no_token(budget2, tmp_path, monkeypatch):
    from shmforest.pool import worker as w_

    marker = str(tmp_path / "died")
    monkeypatch.setattr(w_, "main", _dies_the_first_time(marker))  # fork: children see the patch

    def settled():
        # The dead one is buried and its token back: free, or held by a live worker
        # (warm-up may start another on it).
        if not os.path.exists(marker):
            return False
        pids = pool.worker_pids()
        return int(open(marker).read()) not in pids and budget2.available + len(pids) == 2 and len(pids) >= 1

    with WorkerPool(budget2, start_method="fork") as pool:
        pool.warm_up()
        assert _wait_until(settled, timeout=30), (pool.worker_pids(), budget2.available, budget2.holders())
        pids = {pool.submit(sleep_and_pid, 0.2).result(timeout=30) for _ in range(3)}
        assert pids <= set(pool.worker_pids())
    assert budget2.available == 2


def test_free_workers_is_zero_from_the_only_worker():
    with ProcessBudget(1) as budget, WorkerPool(budget) as pool:
        assert pool.submit(lambda: worker_free_workers()).result() == 0
    with pytest.raises(RuntimeError, match="worker_free_workers"):
        worker_free_workers()


def test_top_level_submissions_queue_when_tokens_are_out():
    with ProcessBudget(1) as budget, Sampler() as sampler, WorkerPool(budget) as pool:
        futures = [pool.submit(sleep_and_pid, 0.1) for _ in range(4)]
        assert len({f.result() for f in futures}) == 1
    assert sampler.peak == 1


def test_no_token_and_no_worker_means_inline_in_the_caller(budget2):
    with budget2.tokens(2), WorkerPool(budget2) as pool:
        future = pool.submit(os.getpid)
        assert future.done() and future.result() == os.getpid()
        inner = pool.submit(lambda: worker_submit(os.getpid).result())
        assert inner.result() == os.getpid()  # nested from an inline task: inline too


def test_submit_nested_never_queues(budget2):
    with budget2.tokens(1), WorkerPool(budget2) as pool:
        busy = pool.submit(sleep_and_pid, 1.0)
        # runs inline, here, and may itself submit (inline again) without deadlocking
        future = pool.submit_nested(lambda: worker_submit(os.getpid).result())
        assert future.done() and future.result() == os.getpid()
        busy.result()


def test_pools_created_inside_tasks_share_the_budget(monkeypatch):
    # Inner pools fork, so no per-worker forkserver helper muddies the process count;
    # workers get SHMFOREST_* from their owner whatever the start method.
    monkeypatch.setenv("SHMFOREST_START_METHOD", "fork")
    with ProcessBudget(3) as budget, Sampler() as sampler, WorkerPool(budget, start_method="forkserver") as pool:
        reports = [f.result(timeout=60) for f in [pool.submit(inner_pool_report, 3) for _ in range(2)]]
    for report in reports:
        assert report["budget"] == report["env"] == budget.name
        assert report["depth"] == "1"
    assert sampler.peak <= 3


def test_depth_guard_applies_to_pools_made_in_workers(budget2, monkeypatch):
    monkeypatch.setenv(MAX_DEPTH_ENV_VAR, "1")
    with WorkerPool(budget2) as pool:
        with pytest.raises(NestingDepthError, match="nested 1 levels deep"):
            pool.submit(make_pool_in_task).result()


_NESTABLE_POOL_SCRIPT = textwrap.dedent(
    """
    import multiprocessing as mp, multiprocessing.pool, sys, time

    class NonDaemonProcess(mp.get_context("spawn").Process):
        daemon = property(lambda self: False, lambda self, value: None)

    class NonDaemonContext(type(mp.get_context("spawn"))):
        Process = NonDaemonProcess

    class NestablePool(multiprocessing.pool.Pool):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, context=NonDaemonContext(), **kwargs)

    def tree(depth):
        if depth == 0:
            time.sleep(0.5)  # long enough for the sampler to see every level alive
            return 1
        with NestablePool(2) as pool:
            return sum(pool.map(tree, [depth - 1] * 2))

    if __name__ == "__main__":
        print(tree(int(sys.argv[1])), flush=True)
    """
)


def test_nested_pools_without_a_budget_explode(tmp_path):
    """The pattern the budget exists to stop: every level makes a non-daemonic pool of 2.

    Run in a fresh interpreter with spawn: forking pools from a threaded process
    (as pytest is by now) can deadlock, which is part of what is wrong with it.
    """
    script = tmp_path / "nestable.py"
    script.write_text(_NESTABLE_POOL_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), "2"], stdout=subprocess.PIPE, text=True)
    root, peak = psutil.Process(proc.pid), 0
    try:
        while proc.poll() is None:
            try:
                peak = max(peak, len(live_workers(root)))
            except psutil.Error:
                pass
            time.sleep(0.01)
        assert proc.stdout.read().strip() == "4"
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)
        proc.stdout.close()
    # 2 + 4 workers where a budget of 2 would allow 2
    assert peak > 2 * 2


_FIRST_TASK_SCRIPT = """
import os
from multiprocessing import forkserver
from shmforest import ProcessBudget
from shmforest.executors.registry import get_executor

with ProcessBudget(1) as budget:
    ex = get_executor("shm", budget=budget, start_method="forkserver")
    assert ex.submit(os.getpid).result() != os.getpid()  # a worker, from the server
    ex.shutdown()
print(",".join(sorted(forkserver._forkserver._preload_modules)))
"""


def test_the_forkserver_preloads_what_every_task_unpickles(tmp_path):
    """A fresh interpreter, so the forkserver starts here with our preload list."""
    script = tmp_path / "first_task.py"
    script.write_text(_FIRST_TASK_SCRIPT)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=True)
    preloaded = set(out.stdout.strip().split(","))
    assert {"shmforest.pool.worker", "shmforest.executors.process", "shmforest.executors.shm"} <= preloaded


# --------------------------------------------------------------------------- pickling errors


def test_unpicklable_task_fails_naming_the_type_and_pool_lives_on(budget2):
    with WorkerPool(budget2) as pool:
        assert pool.submit(int).result() == 0  # a worker exists: the task must travel
        future = pool.submit(lambda lock: 1, threading.Lock())
        with pytest.raises(TaskPicklingError, match=r"argument 0 \(of type _thread\.lock\)") as info:
            future.result()
        assert isinstance(info.value, TypeError)
        assert pool.submit(int, "3").result() == 3


def test_unpicklable_result_fails_naming_the_type_and_pool_lives_on(budget2):
    with WorkerPool(budget2) as pool:
        with pytest.raises(TaskPicklingError, match=r"result is of type _thread\.lock"):
            pool.submit(threading.Lock).result()
        assert pool.submit(int, "4").result() == 4


def _two_idle_workers(pool: WorkerPool) -> None:
    barrier = [pool.submit(sleep_and_pid, 0.3) for _ in range(2)]
    assert len({f.result() for f in barrier}) == 2


def test_nested_pickling_errors_fail_the_nested_task(budget2):
    def nested_errors():
        task = worker_submit(lambda lock: 1, threading.Lock()).exception()
        result = worker_submit(threading.Lock).exception()
        return str(task), str(result)

    with WorkerPool(budget2) as pool:
        _two_idle_workers(pool)  # the nested tasks must travel to the second worker
        task_error, result_error = pool.submit(nested_errors).result()
    assert "argument 0 (of type _thread.lock) cannot be pickled" in task_error
    assert "result is of type _thread.lock" in result_error


# --------------------------------------------------------------------------- crashes


def _read_pid(path, timeout: float = 30) -> int:
    assert _wait_until(lambda: os.path.exists(path) and open(path).read().strip(), timeout)
    return int(open(path).read())


@pytest.mark.parametrize("method", METHODS)
def test_a_killed_worker_fails_exactly_its_task(method, budget2, tmp_path):
    with WorkerPool(budget2, start_method=method) as pool:
        pidfile = str(tmp_path / "victim")
        victim = pool.submit(sleep_and_pid, 30, pidfile)
        survivor = pool.submit(sleep_and_pid, 0.5)
        pid = _read_pid(pidfile)
        os.kill(pid, signal.SIGKILL)
        t0 = time.monotonic()
        with pytest.raises(WorkerCrashedError) as info:
            victim.result(timeout=2)
        assert time.monotonic() - t0 < 2
        err = info.value
        assert isinstance(err, cf.BrokenExecutor)
        assert (err.pid, err.exitcode) == (pid, -signal.SIGKILL)
        assert f"worker {pid} was killed by SIGKILL" in str(err)
        assert survivor.result(timeout=10) != pid
        # a replacement is started on demand and the pool keeps serving
        assert sorted(f.result() for f in [pool.submit(sleep_and_pid, 0.2) for _ in range(2)]) != [pid, pid]
        assert pid not in pool.worker_pids()
        assert pid not in budget2.holders()


def test_a_killed_worker_fails_the_nested_tasks_it_ran_for_others(budget2, tmp_path):
    pidfile = str(tmp_path / "nested")
    with WorkerPool(budget2) as pool:
        outer = pool.submit(nested_sleeper_then_report, pidfile)
        pid = _read_pid(pidfile)
        os.kill(pid, signal.SIGKILL)
        assert outer.result(timeout=10) == f"crashed:{pid}:{-signal.SIGKILL}"
        assert pool.submit(int, "5").result() == 5


def test_killing_the_submitter_drops_its_nested_results(budget2, tmp_path):
    pidfile = str(tmp_path / "submitter")

    def submit_then_hang():
        with open(pidfile, "w") as f:
            f.write(str(os.getpid()))
        worker_submit(sleep_and_pid, 0.5)
        time.sleep(30)

    with WorkerPool(budget2) as pool:
        outer = pool.submit(submit_then_hang)
        pid = _read_pid(pidfile)
        time.sleep(0.2)
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(WorkerCrashedError, match=f"worker {pid} was killed by SIGKILL"):
            outer.result(timeout=2)
        time.sleep(0.6)  # the orphaned nested task finishes; its result has nowhere to go
        assert pool.submit(int, "6").result() == 6


def test_queued_tasks_survive_the_death_of_the_only_worker(tmp_path):
    pidfile = str(tmp_path / "only")
    with ProcessBudget(1) as budget, WorkerPool(budget) as pool:
        victim = pool.submit(sleep_and_pid, 30, pidfile)
        queued = [pool.submit(sleep_and_pid, 0.05) for _ in range(3)]
        pid = _read_pid(pidfile)
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(WorkerCrashedError):
            victim.result(timeout=2)
        replacement = {f.result(timeout=10) for f in queued}
        assert len(replacement) == 1 and pid not in replacement


def test_exit_code_is_reported(budget2):
    with WorkerPool(budget2) as pool:
        with pytest.raises(WorkerCrashedError, match=r"exited with code 3") as info:
            pool.submit(os._exit, 3).result(timeout=10)
        assert info.value.exitcode == 3


# --------------------------------------------------------------------------- retries


def sleep_on_first_run(marker: str) -> int:
    """The first run writes its pid to ``marker`` and sleeps (to be killed); a rerun returns at once."""
    if not os.path.exists(marker):
        with open(marker, "w") as f:
            f.write(str(os.getpid()))
        time.sleep(30)
    return os.getpid()


def kill_own_worker(log: str) -> None:
    """Dies of SIGKILL on every run, after noting its pid."""
    with open(log, "a") as f:
        f.write(f"{os.getpid()}\n")
    os.kill(os.getpid(), signal.SIGKILL)


def nested_sleep_on_first_run(marker: str) -> tuple[int, int]:
    """From a worker: submits a task that will be killed once; its result and this worker's pid."""
    return worker_submit(sleep_on_first_run, marker).result(timeout=60), os.getpid()


def _retry_warnings(record) -> list[str]:
    from shmforest.errors import TaskRetryWarning

    return [str(w.message) for w in record if issubclass(w.category, TaskRetryWarning)]


def test_a_dead_workers_task_runs_again_on_a_fresh_worker_with_one_warning(budget2, tmp_path):
    marker = str(tmp_path / "first")
    with warnings.catch_warnings(record=True) as record, WorkerPool(budget2, max_retries=2) as pool:
        warnings.simplefilter("always")
        future = pool.submit(sleep_on_first_run, marker)
        pid = _read_pid(marker)
        os.kill(pid, signal.SIGKILL)
        rerun_pid = future.result(timeout=60)
    assert rerun_pid != pid
    (message,) = _retry_warnings(record)
    assert f"worker {pid} was killed by SIGKILL" in message and "retry 1 of at most 2" in message


def test_a_nested_task_of_a_dead_worker_runs_again_for_its_requester(budget2, tmp_path):
    marker = str(tmp_path / "nested")
    with warnings.catch_warnings(record=True) as record, WorkerPool(budget2, max_retries=1) as pool:
        warnings.simplefilter("always")
        _two_idle_workers(pool)  # the nested task must travel to the second worker
        outer = pool.submit(nested_sleep_on_first_run, marker)
        pid = _read_pid(marker)
        os.kill(pid, signal.SIGKILL)
        rerun_pid, requester = outer.result(timeout=60)
    assert rerun_pid not in (pid, requester)
    assert len(_retry_warnings(record)) == 1


@pytest.mark.parametrize("max_retries", [0, 2])
def test_a_task_that_always_kills_its_worker_fails_after_its_retries(budget2, tmp_path, max_retries):
    log = tmp_path / "runs"
    with warnings.catch_warnings(record=True) as record, WorkerPool(budget2, max_retries=max_retries) as pool:
        warnings.simplefilter("always")
        with pytest.raises(WorkerCrashedError, match="was killed by SIGKILL while running a task") as info:
            pool.submit(kill_own_worker, str(log)).result(timeout=60)
        assert pool.submit(int, "7").result(timeout=60) == 7  # the pool lives on
    pids = log.read_text().split()
    assert len(pids) == len(set(pids)) == max_retries + 1  # each run on a fresh worker
    assert str(info.value.pid) == pids[-1] and info.value.exitcode == -signal.SIGKILL
    assert (f"ran {max_retries + 1} times" in str(info.value)) == (max_retries > 0)
    messages = _retry_warnings(record)
    assert len(messages) == max_retries
    assert all(f"worker {pid} was killed by SIGKILL" in m for pid, m in zip(pids, messages))


@pytest.mark.parametrize("bad, error", [(-1, ValueError), (1.5, TypeError), (True, TypeError)])
def test_max_retries_is_checked(bad, error):
    with pytest.raises(error, match="max_retries must be a non-negative int"):
        WorkerPool(max_retries=bad)


# --------------------------------------------------------------------------- shutdown


def test_shutdown_waits_then_refuses_new_work(budget2):
    pool = WorkerPool(budget2)
    future = pool.submit(sleep_and_pid, 0.3)
    pool.shutdown(wait=True)
    assert future.done() and pool.worker_pids() == []
    with pytest.raises(RuntimeError, match="after shutdown"):
        pool.submit(int)


def test_shutdown_cancel_futures_cancels_queued_tasks():
    with ProcessBudget(1) as budget:
        pool = WorkerPool(budget)
        running = pool.submit(sleep_and_pid, 0.5)
        queued = [pool.submit(sleep_and_pid, 0.5) for _ in range(3)]
        pool.shutdown(wait=True, cancel_futures=True)
        assert running.result() > 0
        assert all(f.cancelled() for f in queued)


def test_shutdown_without_waiting_lets_tasks_finish(budget2):
    pool = WorkerPool(budget2)
    future = pool.submit(sleep_and_pid, 0.5)
    pool.shutdown(wait=False)
    assert not future.done()
    assert future.result(timeout=10) > 0
    pool.shutdown(wait=True)  # may be called again; waits for the workers to exit
    assert pool.worker_pids() == []


def test_terminate_fails_running_tasks(budget2):
    pool = WorkerPool(budget2)
    future = pool.submit(sleep_and_pid, 30)
    _wait_until(lambda: pool.worker_pids(), 10)
    pool.terminate()
    with pytest.raises(cf.BrokenExecutor, match="terminated"):
        future.result(timeout=2)


# --------------------------------------------------------------------------- orphans and Ctrl-C

_SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    from shmforest.budget import ProcessBudget
    from shmforest.pool import WorkerPool

    def main():
        mode, method = sys.argv[1], sys.argv[2]
        pool = WorkerPool(ProcessBudget(2), start_method=method)
        futures = [pool.submit(time.sleep, 60) for _ in range(2)]
        while len(pool.worker_pids()) < 2:
            time.sleep(0.01)
        time.sleep(0.2)
        print(*pool.worker_pids(), flush=True)
        if mode == "with":
            with pool:
                futures[0].result()
        else:
            futures[0].result()

    if __name__ == "__main__":
        main()
    """
)


def _start_script(tmp_path, mode: str, method: str) -> tuple[subprocess.Popen[str], list[int]]:
    script = tmp_path / "owner.py"
    script.write_text(_SCRIPT)
    proc = subprocess.Popen(
        [sys.executable, str(script), mode, method],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    line = proc.stdout.readline()
    assert line.strip(), proc.communicate()[1]
    return proc, [int(p) for p in line.split()]


@pytest.mark.parametrize("method", ["forkserver", "fork"])
def test_workers_exit_when_their_owner_is_killed(method, tmp_path):
    proc, pids = _start_script(tmp_path, "plain", method)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)
    assert _wait_until(lambda: all(_gone(p) for p in pids), timeout=5), [p for p in pids if not _gone(p)]


@pytest.mark.parametrize("mode, method", [("with", "forkserver"), ("plain", "forkserver"), ("plain", "fork")])
def test_ctrl_c_raises_in_the_owner_and_ends_every_worker(mode, method, tmp_path):
    proc, pids = _start_script(tmp_path, mode, method)
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal does: the whole foreground group
    t0 = time.monotonic()
    assert _wait_until(lambda: all(_gone(p) for p in pids), timeout=2), [p for p in pids if not _gone(p)]
    assert time.monotonic() - t0 <= 2
    _, err = proc.communicate(timeout=10)
    assert "KeyboardInterrupt" in err
    assert proc.returncode == -signal.SIGINT
