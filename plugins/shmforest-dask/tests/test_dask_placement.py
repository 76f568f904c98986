"""Data reaches each machine once: on one machine nothing is copied; across machines,
one copy per machine, attached by every worker process there.

Several machines are simulated on this one by giving each worker process its own
shared-memory domain (``SHMFOREST_DASK_SHM_DOMAIN``): to the plugin they are then
machines that cannot see each other's blocks, and it places a copy on each.
"""

from __future__ import annotations

import gc
import os
import time

import numpy as np
import pytest
from shmforest_dask import (
    DOMAIN_ENV_VAR,
    DaskExecutor,
    HostCopyReadOnlyError,
    PlacedDataset,
    PlacementError,
    host_copies,
    shm_domain,
)

from shmforest import SharedArray, SharedDataset
from shmforest.executors import current_executor

pytestmark = pytest.mark.filterwarnings("error::UserWarning")

# ---------------------------------------------------------------- task functions


def set_domain(domain: str | None) -> None:
    if domain is None:
        os.environ.pop(DOMAIN_ENV_VAR, None)
    else:
        os.environ[DOMAIN_ENV_VAR] = domain


def where_and_what(data: SharedDataset) -> tuple[str, str, float, str]:
    """This worker's domain, the block its view of ``data`` maps, a checksum, the type."""
    return shm_domain(), data.handles["X"].segment, float(data["X"].sum()), type(data).__name__


def array_segment_and_sum(a: np.ndarray) -> tuple[str, float]:
    return shm_domain(), float(a.sum())


def shared_array_sum(sa: SharedArray) -> tuple[str, str, float]:
    return shm_domain(), sa.name, float(sa.array.sum())


def write_into(data: SharedDataset) -> None:
    data.view("X", writable=True)[0, 0] = 1.0


def fan_out(data: SharedDataset, n: int) -> list[tuple[str, str, float, str]]:
    """Nested tasks, each of which may land on any machine, receive the dataset again."""
    ex = current_executor()
    futures = [ex.submit(where_and_what, data) for _ in range(n)]
    return [f.result(timeout=60) for f in futures]


def dataset(n: int = 2000, seed: int = 0) -> SharedDataset:
    rng = np.random.default_rng(seed)
    return SharedDataset(X=rng.normal(size=(n, 8)), y=rng.integers(0, 2, size=n))


# ---------------------------------------------------------------- one machine


def test_one_machine_nothing_is_copied(client):
    blocks_before = set(os.listdir("/dev/shm"))
    with dataset() as data, DaskExecutor(client) as ex:
        results = [f.result(timeout=60) for f in [ex.submit(where_and_what, data) for _ in range(8)]]
        stats = ex.transfer_stats()
        assert {r[1] for r in results} == {data.handles["X"].segment}  # the caller's own block
        assert {r[2] for r in results} == {float(data["X"].sum())}
        assert {r[3] for r in results} == {"PlacedDataset"}
        assert set(os.listdir("/dev/shm")) - blocks_before == {h.segment for h in data.handles.values()}
    assert stats["shipped_bytes"] == 0 and stats["local_bytes"] == 0 and stats["placements"] == 1
    assert stats["payload_bytes"] < 8 * 1_500  # handles, not 128 kB of X per task


def test_an_array_is_placed_once_per_object_and_released_with_it(client):
    a = np.ones((500, 100))  # 400 kB
    with DaskExecutor(client) as ex:
        assert {ex.submit(array_segment_and_sum, a).result(timeout=60)[1] for _ in range(5)} == {50_000.0}
        assert ex.transfer_stats()["placements"] == 1
        ours = set(os.listdir("/dev/shm"))
        b = a.copy()  # equal, but another object: placed again
        assert ex.submit(array_segment_and_sum, b).result(timeout=60)[1] == 50_000.0
        assert ex.transfer_stats()["placements"] == 2
        del b
        gc.collect()
        assert set(os.listdir("/dev/shm")) == ours  # b's block went with b
        small = np.ones(10)  # under min_bytes: travels inside the task
        assert ex.submit(array_segment_and_sum, small).result(timeout=60)[1] == 10.0
        assert ex.transfer_stats()["placements"] == 2


def test_a_shared_array_argument_is_attached_not_copied(client):
    with SharedArray.copy_of(np.arange(100_000.0)) as sa, DaskExecutor(client) as ex:
        domain, name, total = ex.submit(shared_array_sum, sa).result(timeout=60)
        assert name == sa.name and total == float(np.arange(100_000.0).sum())
        assert ex.transfer_stats()["local_bytes"] == 0


# ---------------------------------------------------------------- several machines


@pytest.fixture
def two_machines(client):
    """Each of the two worker processes its own machine, as far as shared memory goes."""
    workers = sorted(client.nthreads())
    for i, address in enumerate(workers):
        client.run(set_domain, f"machine-{i}", workers=[address])
    yield {address: f"machine-{i}" for i, address in enumerate(workers)}
    client.run(set_domain, None)


def test_each_machine_gets_one_copy_attached_by_its_workers(client, two_machines):
    with dataset() as data:
        with DaskExecutor(client) as ex:
            results = [f.result(timeout=60) for f in [ex.submit(where_and_what, data) for _ in range(12)]]
            stats = ex.transfer_stats()
            copies = client.run(host_copies)
            # Every task read the same values, each from its own machine's copy.
            assert {r[2] for r in results} == {float(data["X"].sum())}
            blocks = {}
            for domain, segment, _, _ in results:
                blocks.setdefault(domain, set()).add(segment)
            assert all(len(segments) == 1 for segments in blocks.values())
            assert data.handles["X"].segment not in set().union(*blocks.values())
            assert len(set().union(*blocks.values())) == len(blocks)
            # Shipped once per machine: not per task, not per worker process's use.
            assert stats["shipped_bytes"] == 2 * data.nbytes
            assert stats["placements"] == 1
            assert sorted(len(keys) for keys in copies.values()) == [1, 1]
        # Shutdown told the placers to let go.
        assert client.run(host_copies) == {address: [] for address in two_machines}


def test_copies_go_when_the_dataset_does(client, two_machines):
    with DaskExecutor(client) as ex:
        data = dataset()
        ex.submit(where_and_what, data).result(timeout=60)
        assert sum(len(k) for k in client.run(host_copies).values()) == 2
        data.close()
        del data
        gc.collect()
        deadline = time.monotonic() + 10
        while sum(len(k) for k in client.run(host_copies).values()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.run(host_copies) == {address: [] for address in two_machines}


def test_nested_tasks_carry_the_placement_to_any_machine(client, two_machines):
    with dataset() as data, DaskExecutor(client) as ex:
        results = ex.submit(fan_out, data, 8).result(timeout=60)
        assert {r[2] for r in results} == {float(data["X"].sum())}
    assert {r[3] for r in results} == {"PlacedDataset"}
    assert {r[0] for r in results} <= set(two_machines.values())


def test_writes_into_another_machines_copy_are_refused(client, two_machines):
    with dataset() as data, DaskExecutor(client) as ex:
        with pytest.raises(HostCopyReadOnlyError, match="would not reach its owner") as info:
            ex.submit(write_into, data).result(timeout=60)
        assert isinstance(info.value, ValueError)
        assert data["X"][0, 0] != 1.0


def test_writes_on_the_clients_machine_reach_the_owner(client):
    with SharedDataset(X=np.zeros((4, 4))) as data, DaskExecutor(client) as ex:
        ex.submit(write_into, data).result(timeout=60)
        assert data["X"][0, 0] == 1.0


def test_a_machine_that_joined_later_is_told_so(client, two_machines):
    with dataset() as data, DaskExecutor(client) as ex:
        ex.submit(where_and_what, data).result(timeout=60)  # placed on machine-0 and machine-1
        client.run(set_domain, "machine-new")  # as if both workers were replaced elsewhere
        with pytest.raises(PlacementError, match="machine-new.*joined the cluster after"):
            ex.submit(where_and_what, data).result(timeout=60)


def test_placed_dataset_pickles_as_the_whole_placement(client, two_machines):
    import pickle

    from shmforest_dask.placement import Placements

    with dataset() as data:
        placements = Placements(client, 1 << 16)
        used: list = []
        marker = placements.prepare(data, used)
        set_domain("machine-1")
        try:
            resolved = pickle.loads(pickle.dumps(marker))
            assert isinstance(resolved, PlacedDataset) and resolved.host_copy
            again = pickle.loads(pickle.dumps(resolved))
            assert again.handles == resolved.handles
            np.testing.assert_array_equal(again["X"], data["X"])
        finally:
            set_domain(None)
            placements.done(used)
            placements.close()
