"""Fits where users run them: a worker killed mid-fit, and a container's 64 MB /dev/shm."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from estimator_support import assert_same_trees, make_data, prediction, small

from shmforest import DecisionTreeClassifier, RandomForestClassifier, get_executor
from shmforest.errors import TaskRetryWarning, WorkerCrashedError
from shmforest.tree import growth

# --------------------------------------------------------------------------- a worker dies


def _retry_messages(record) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, TaskRetryWarning)]


def _first_run_kills_its_worker(marker: str, fn, *args, **kwargs):
    """Run ``fn``, except on the first call of all: that one notes its worker's pid in ``marker`` and SIGKILLs it."""
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return fn(*args, **kwargs)
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_forest_fit_survives_a_worker_killed_mid_fit_and_fits_the_same_forest(tmp_path):
    X, y, _ = make_data(3000, 8)
    reference = small(RandomForestClassifier, n_estimators=8).fit(X, y)
    marker = str(tmp_path / "killed")
    with get_executor("shm", max_workers=2) as ex:
        real_submit = ex.submit

        def submit_through_the_killer(fn, *args, **kwargs):
            # The worker dies holding its first tree, whatever the timing of the others.
            return real_submit(_first_run_kills_its_worker, marker, fn, *args, **kwargs)

        ex.submit = submit_through_the_killer
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            model = small(RandomForestClassifier, n_estimators=8, executor=ex).fit(X, y)
        pid = int(open(marker).read())
        assert pid not in ex.worker_pids()
    (message,) = _retry_messages(record)
    assert f"worker {pid} was killed by SIGKILL" in message
    assert_same_trees(model, reference)
    np.testing.assert_array_equal(prediction(model, X), prediction(reference, X))


def test_a_single_deep_tree_survives_its_subtree_worker_killed_mid_fit(monkeypatch):
    X, y, _ = make_data(20_000, 8, noise=1.0)  # fully grown on noisy labels: a deep tree
    reference = DecisionTreeClassifier(executor="serial", random_state=0).fit(X, y)
    killed = []
    with get_executor("shm", max_workers=2) as ex:
        ex.submit(int, "1").result()  # one worker up and idle: the tree's first cut goes to it
        real_submit = ex.submit

        def submit_then_kill(fn, *args, **kwargs):
            future = real_submit(fn, *args, **kwargs)
            if fn is growth._grow_task and not killed and not future.done():
                (pid,) = ex.worker_pids()  # the caller holds the other token
                killed.append(pid)
                os.kill(pid, signal.SIGKILL)
            return future

        ex.submit = submit_then_kill
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            model = DecisionTreeClassifier(executor=ex, random_state=0).fit(X, y)
    assert killed, "no subtree went to a worker: nothing was killed"
    (message,) = _retry_messages(record)
    assert f"worker {killed[0]} was killed by SIGKILL" in message
    assert model.tree_.max_depth > 10
    assert_same_trees(model, reference)
    np.testing.assert_array_equal(model.predict_proba(X), reference.predict_proba(X))


def _kill_own_worker() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def test_pool_executors_retry_twice_by_default_then_fail():
    with get_executor("process", max_workers=2) as ex:  # no worker started: cheap to ask
        assert ex.max_retries == 2
    with get_executor("shm", max_workers=2) as ex:
        assert ex.max_retries == 2
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            with pytest.raises(WorkerCrashedError, match=r"ran 3 times, each time on a fresh worker"):
                ex.submit(_kill_own_worker).result(timeout=120)
    assert len(_retry_messages(record)) == 2


@pytest.mark.parametrize("bad, error", [(-1, ValueError), ("2", TypeError)])
def test_max_retries_is_an_executor_option_checked_by_name(bad, error):
    with pytest.raises(error, match=f"max_retries must be a non-negative int, got {bad!r}"):
        get_executor("shm", max_retries=bad)


# --------------------------------------------------------------------------- a 64 MB /dev/shm

# Runs as the only program of a private mount namespace whose /dev/shm is a 64 MB tmpfs.
_DRIVER = textwrap.dedent(
    """
    import json, os, signal, subprocess, sys, time
    import psutil

    folder = sys.argv[1]
    env = {**os.environ, "SHMFOREST_TEMP_FOLDER": folder}
    report = {"shm_bytes": os.statvfs("/dev/shm").f_blocks * os.statvfs("/dev/shm").f_frsize}

    def leftovers():
        return sorted(n for n in os.listdir("/dev/shm") if n.startswith("shmf_")) + sorted(os.listdir(folder))

    def run_owner(mode):
        return subprocess.Popen([sys.executable, "-c", OWNER, mode, folder], env=env, stdout=subprocess.PIPE, text=True)

    OWNER = sys.stdin.read()
    # 1. Fit and predict on 96 MB of X; then nothing is left.
    owner = run_owner("fit")
    out, _ = owner.communicate(timeout=240)
    report["fit"] = {"returncode": owner.returncode, "out": out.strip().splitlines()[-1:] }
    report["after_fit"] = leftovers()
    # 2. SIGKILL the owner in the middle of such a fit; nothing is left within 5 s.
    owner = run_owner("kill")
    deadline = time.monotonic() + 240
    shm, tree = [], []
    # Mid-fit: the forest's codes placed, workers running (with the resource tracker and forkserver).
    while time.monotonic() < deadline and owner.poll() is None and not (shm and len(tree) >= 3):
        time.sleep(0.05)
        shm = [n for n in os.listdir("/dev/shm") if n.startswith("shmf_") and "budget" not in n]
        tree = psutil.Process(owner.pid).children(recursive=True)
    folder_blocks = 0
    for fd in os.listdir(f"/proc/{owner.pid}/fd"):
        try:
            folder_blocks += os.readlink(f"/proc/{owner.pid}/fd/{fd}").startswith(folder)
        except OSError:
            pass
    report["before_kill"] = {
        "alive": owner.poll() is None, "shm_blocks": len(shm), "folder_blocks": folder_blocks, "processes": len(tree)
    }
    owner.kill()
    owner.wait()
    t0 = time.monotonic()
    while time.monotonic() - t0 < 5 and (leftovers() or any(p.is_running() and p.status() != "zombie" for p in tree)):
        time.sleep(0.05)
    report["after_kill"] = {
        "left": leftovers(),
        "processes": [p.pid for p in tree if p.is_running() and p.status() != "zombie"],
    }
    print(json.dumps(report))
    """
)

_OWNER = textwrap.dedent(
    """
    import os, sys, threading, time
    import numpy as np
    from shmforest import RandomForestClassifier, SharedArray

    mode, folder = sys.argv[1], sys.argv[2]
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600_000, 20))  # 96 MB: more than /dev/shm holds
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    if mode == "fit":
        # oob_score: the trees read X too, so X is placed with the codes (113 MB in one block)
        seen = set()
        def watch():  # where the blocks went: this process's descriptors of files in the folder
            while not done.is_set():
                for fd in os.listdir("/proc/self/fd"):
                    try:
                        seen.add(os.readlink(f"/proc/self/fd/{fd}"))
                    except OSError:
                        pass
                time.sleep(0.01)
        done = threading.Event()
        threading.Thread(target=watch, daemon=True).start()
        model = RandomForestClassifier(
            4, max_depth=6, oob_score=True, executor="shm", n_jobs=2, random_state=0
        ).fit(X, y)
        accuracy = float((model.predict(X) == y).mean())
        done.set()
        in_folder = any(t.startswith(folder) and t.endswith("(deleted)") for t in seen)
        print(f"fitted oob={model.oob_score_:.3f} accuracy={accuracy:.3f} in_folder={in_folder}")
    else:
        # The owner's own 96 MB block goes to the folder; the forest's codes go to /dev/shm.
        mine = SharedArray.copy_of(X)
        RandomForestClassifier(200, executor="shm", n_jobs=2, random_state=0).fit(X, y)
        print("finished before the kill", flush=True)
    """
)


def test_a_fit_needing_more_than_a_64_mb_dev_shm_works_and_leaves_nothing_even_when_killed(tmp_path):
    """In a private mount namespace with a 64 MB tmpfs on /dev/shm (Docker's default size).

    CI runs as root, so ``unshare -m`` works there; where it does not, this test fails
    and says why instead of passing without having run.
    """
    folder = tmp_path / "temp-folder"
    folder.mkdir()
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.fail(
            "this test mounts a 64 MB tmpfs over /dev/shm in a private mount namespace and needs "
            f"`unshare -m` (root, or CAP_SYS_ADMIN), which failed here: {probe.stderr.strip()!r}",
            pytrace=False,
        )
    command = ["sh", "-c", 'mount -t tmpfs -o size=64m tmpfs /dev/shm && exec "$0" "$@"', sys.executable, "-c"]
    result = subprocess.run(
        ["unshare", "-m", *command, _DRIVER, str(folder)],
        input=_OWNER,
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["shm_bytes"] == 64 << 20
    assert report["fit"]["returncode"] == 0, result.stderr[-3000:]
    (line,) = report["fit"]["out"]
    assert line.startswith("fitted") and line.endswith("in_folder=True"), line
    assert float(line.split("accuracy=")[1].split()[0]) > 0.9
    assert report["after_fit"] == []
    before = report["before_kill"]
    assert before["alive"] and before["shm_blocks"] == 1 and before["folder_blocks"] >= 1, before
    assert before["processes"] >= 3  # workers, the resource tracker, the forkserver
    assert report["after_kill"] == {"left": [], "processes": []}
