"""Growing a tree level by level: the machinery behind :class:`~shmforest.tree.TreeBuilder`.

::

    Level (nodes of one depth, samples grouped node by node)
      LevelGrower._expand:
        node stats -> value, impurity; which nodes may split
        feature orders from each node's key                 (seeding.py)
        best splits: sorted runs for small nodes, histograms for the rest (splitter.py)
        stable partition of samples into children; child stats; min_impurity_decrease
        -> NodeRecords (the level's nodes), next Level (their children)
      parallel: half of a level  --submit(_grow_task, data, setup, payload)-->  a worker
                                  <--------- that subtree's NodeRecords -----------
      delegate (the caller of fit, not a worker): all of the first level worth
                cutting, one part per free worker; the caller keeps none
      records_to_tree: breadth-first ids -> Tree            (records.py)

A node's split depends only on its own samples (in their canonical, ascending
order) and its key, a hash of its path from the root; so how levels are cut into
tasks, and where the tasks run, cannot change any bit of the tree. What travels to
a task is the dataset's handles, the small setup and the task's own sample ids
with their weights; never ``X``.

When to cut: a level goes on as one batch unless it holds two or more nodes and
``MIN_TASK_SAMPLES`` samples, and either the executor reports a free worker
(:meth:`Executor.free_workers`, which the built-ins answer) or, lacking that hint,
the level holds at least ``TASK_SHARE`` of the tree's samples per worker. Every
task pays the per-level cost again, so inline tasks (no token free) are to be
avoided, not multiplied. With the hint the cut is dynamic: the worker that took
half of level 1 and finishes first gets half of whatever level the other is on
next, so the halves need not be equal work. One fully grown tree on the 75,000
x 20 workload, ``benchmarks/test_bench_forest.py``: 1.39x to 1.51x serial with the
one cut of the heuristic, 1.51x and 1.59x in the two runs after the hint went in
(commit 7173072 and the worker fixes after it; later speed-ups of the serial
build lowered the ratio, see the README).

Where a tree starts: a ``DecisionTree*`` fit on several workers grows in the
process that called ``fit`` (warm, and idle otherwise); as one task, a freshly
started worker grew the root level (31 to 70 ms in a traced one-off run, against
16 to 25 ms in the parent) and started the second worker only at its first
hand-off. Holding a token, the caller cuts as a worker does (``_fitting``);
holding none, it delegates: every node of the first level worth cutting goes to
the workers.
"""

from __future__ import annotations

import concurrent.futures as cf
import heapq
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from shmforest.executors.base import current_executor
from shmforest.tree.criterion import Criterion, get_criterion
from shmforest.tree.seeding import child_keys, feature_orders
from shmforest.tree.records import NodeRecords
from shmforest.tree.splitter import BinnedX, SplitBatch, SplitRules, Splits, dense_splits, sparse_splits
from shmforest.tree.tree import TREE_UNDEFINED

if TYPE_CHECKING:
    from shmforest.shared import SharedDataset
    from shmforest.tree.builder import TreeParams

__all__ = [
    "GrowthSetup",
    "Level",
    "LevelGrower",
    "bins_per_feature",
    "read_inputs",
]

EPSILON = float(np.finfo(np.float64).eps)
#: Nodes with fewer samples than this are split by sorting instead of histograms.
SPARSE_BELOW = 32
#: Histogram cells (stats x bins x candidate features) per group of dense nodes:
#: 393,216 float64 cells are 3 MiB an array, whatever the data's size: below glibc's
#: default mmap threshold, so in a user's process (``executor="serial"``) they are
#: not mapped and faulted in afresh at every group, as 16 MiB arrays were. One deep
#: tree on the 75,000 x 20 workload, fresh interpreter: 1.28 s with 16 MiB groups,
#: 1.04 s now; no change in workers, whose malloc settings already kept 16 MiB on
#: the heap (``benchmarks/test_bench_histograms.py``, one run).
DENSE_CELLS = 3 << 17
#: A level is cut into tasks only if it holds at least this many samples...
MIN_TASK_SAMPLES = 4096
#: ...and, when the executor does not tell how many workers are free, at least
#: this share of the tree's samples per worker. Every task grows its levels
#: separately, paying the per-level cost (about a hundred numpy calls) again, so a
#: few big tasks beat many small ones.
TASK_SHARE = 0.25


# --------------------------------------------------------------------------- state


@dataclass
class Level:
    """Nodes waiting to be expanded, with their samples grouped node by node."""

    samples: np.ndarray  # intp, each node's samples contiguous and ascending
    sizes: np.ndarray  # int64 (n,)
    stats: np.ndarray  # (n_node_stats, n)
    keys: np.ndarray  # uint64 (n,)
    depth: np.ndarray  # int64 (n,)
    parent: np.ndarray  # int64 (n,) record id of the parent; -1 - j for a task's j-th root
    side: np.ndarray  # int8 (n,) 0 left, 1 right

    @property
    def n(self) -> int:
        return int(self.sizes.shape[0])

    def take(self, nodes: np.ndarray) -> Level:
        """The level restricted to ``nodes`` (sorted indices), samples included."""
        keep = np.zeros(self.n, dtype=bool)
        keep[nodes] = True
        samples = self.samples[np.repeat(keep, self.sizes)]
        return Level(samples, self.sizes[nodes], self.stats[:, nodes], self.keys[nodes],
                     self.depth[nodes], self.parent[nodes], self.side[nodes])


@dataclass(frozen=True)
class GrowthSetup:
    """What every subtree task needs besides its samples (small, picklable)."""

    params: TreeParams
    n_features: int
    n_bins: np.ndarray  # (n_features,) bins per feature
    root_weight: float
    root_samples: int
    exact: bool  # classification with integer weights: every sum is exact
    parallel: bool


# --------------------------------------------------------------------------- inputs


def read_inputs(data: Any, params: TreeParams, counts: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Checked ``Xb``, ``y`` (intp classes or float64 targets) and effective weights ``w * counts``."""
    Xb = data["Xb"]
    if Xb.dtype != np.uint8 or Xb.ndim != 2:
        raise TypeError(f'data["Xb"] must be a 2-d uint8 array (Binner.transform), got {Xb.dtype} {Xb.shape}')
    n = Xb.shape[0]
    y = np.asarray(data["y"])
    if y.shape != (n,):
        raise ValueError(f'data["y"] has shape {y.shape}; expected ({n},) to match data["Xb"]')
    if params.n_classes > 0:
        y = y.astype(np.intp)
        if n and (y.min() < 0 or y.max() >= params.n_classes):
            raise ValueError(f'data["y"] must hold class indices in [0, {params.n_classes}) for classification')
    else:
        y = y.astype(np.float64)
    w = np.asarray(data["w"], dtype=np.float64) if "w" in data else None
    if counts is not None:
        counts = np.asarray(counts)
        if counts.shape != (n,):
            raise ValueError(f"sample_counts has shape {counts.shape}; expected ({n},)")
        w = counts.astype(np.float64) if w is None else w * counts
    if w is None:
        w = np.ones(n)
    elif not (np.all(np.isfinite(w)) and np.all(w >= 0)):
        raise ValueError('sample weights (data["w"] times sample_counts) must be finite and non-negative')
    if params.n_classes == 0 and not np.all(np.isfinite(y)):
        raise ValueError('data["y"] holds NaN or infinite targets')
    return Xb, y, w


def bins_per_feature(thresholds: np.ndarray, n_features: int) -> np.ndarray:
    """Bins of each feature, from :attr:`Binner.thresholds_` (padded with +inf)."""
    thresholds = np.asarray(thresholds)
    if thresholds.ndim != 2 or thresholds.shape[0] != n_features:
        raise ValueError(f'data["thresholds"] must have shape ({n_features}, max_bins - 1), got {thresholds.shape}')
    return (np.isfinite(thresholds).sum(axis=1) + 1).astype(np.int64)


# --------------------------------------------------------------------------- growth


class LevelGrower:
    """Expands levels of nodes; one per build or task."""

    def __init__(self, data: Any, setup: GrowthSetup, Xb: np.ndarray, y: np.ndarray, w: np.ndarray) -> None:
        self.data, self.setup = data, setup
        self.params = setup.params
        self.criterion: Criterion = get_criterion(self.params.criterion, self.params.n_classes)
        self.Xb, self.y, self.w = BinnedX(Xb), y, w
        self.rules = SplitRules(self.criterion, self.params.min_samples_leaf, setup.exact)
        self.thresholds = np.asarray(data["thresholds"])
        self.max_depth = np.iinfo(np.int64).max if self.params.max_depth is None else self.params.max_depth

    # -- drivers --------------------------------------------------------
    def grow(self, level: Level, delegate: bool = False) -> NodeRecords:
        """Grow ``level`` and all its descendants, breadth first.

        With ``delegate`` (only for a parallel build), this process is not one of
        the executor's workers but the one waiting for them: at the first level
        worth cutting, every node goes to the executor and none stays here.
        """
        records = NodeRecords()
        tasks: list[tuple[Any, np.ndarray]] = []
        try:
            while level.n:
                _, level, _ = self._expand(level, records)
                if self.setup.parallel and level.n >= 2 and level.samples.size >= MIN_TASK_SAMPLES:
                    level = self._hand_off(level, tasks, delegate)
            for future, root_parent in tasks:
                records.merge(future.result(), root_parent)
        except BaseException:
            # Subtree tasks read the dataset, which the caller closes once this
            # raises: let none of them outlive it.
            for future, _ in tasks:
                future.cancel()
            for future, _ in tasks:
                try:
                    future.exception()  # waits; a second Ctrl-C here gives up waiting
                except cf.CancelledError:
                    pass
            raise
        return records

    def _hand_off(self, level: Level, tasks: list[tuple[Any, np.ndarray]], delegate: bool) -> Level:
        """Submit parts of ``level`` (cut by samples, between nodes) as tasks; return what stays.

        A worker keeps the first half and submits the second, if a worker is free
        to take it. A delegating caller submits all of it, one part per free
        worker, and keeps nothing.
        """
        executor = current_executor()
        workers = executor.max_workers
        if workers < 2:
            return level
        free = free_workers(executor)
        if delegate:
            parts = min(level.n, free if free else workers)
        elif free == 0:
            return level  # would run inline: same work, more per-level overhead
        elif free is None and level.samples.size < TASK_SHARE * self.setup.root_samples / workers:
            return level
        else:
            parts = 2
        # Each part ends before the node that would carry it past its share of the samples.
        bounds = np.searchsorted(np.cumsum(level.sizes), level.samples.size * np.arange(1, parts) / parts)
        bounds = np.clip(bounds, 1, level.n - 1)
        bounds = bounds[np.append(True, bounds[1:] != bounds[:-1])] if bounds.size else bounds
        pieces = np.split(np.arange(level.n), bounds)
        for nodes in pieces if delegate else pieces[1:]:
            give = level.take(nodes)
            future = executor.submit(_grow_task, self.data, self.setup, task_payload(give, self.w))
            tasks.append((future, give.parent))
        return empty_level(self.criterion.n_node_stats) if delegate else level.take(pieces[0])

    def grow_best_first(self, root: Level) -> NodeRecords:
        """Grow by largest impurity decrease until ``max_leaf_nodes`` leaves."""
        records = NodeRecords()
        heap: list[tuple[float, int, Level]] = []
        level = root
        n_leaves = 1
        while True:
            ids, children, improvement = self._expand(level, records)
            # `children` holds two nodes per node that split, in the order of `ids`.
            split = np.flatnonzero(improvement > -np.inf)
            for j, node in enumerate(split):
                pair = children.take(np.array([2 * j, 2 * j + 1]))
                # Ties go to the node recorded first; ids are unique, so the
                # comparison never reaches the Level.
                heapq.heappush(heap, (-float(improvement[node]), int(ids[node]), pair))
            if not heap:
                break
            if n_leaves >= self.params.max_leaf_nodes:
                break
            _, node, level = heapq.heappop(heap)
            n_leaves += 1
        # Splits still pending never happened: those nodes stay leaves.
        records.make_leaves(np.array([node for _, node, _ in heap], dtype=np.int64))
        return records

    # -- one level ------------------------------------------------------
    def _expand(self, level: Level, records: NodeRecords) -> tuple[np.ndarray, Level, np.ndarray]:
        """Record ``level``'s nodes, split those that can; return their children.

        Returns the record ids of the level's nodes, the children (two per split
        node, left then right, in node order) and each node's impurity decrease
        (``-inf`` where it did not split).
        """
        crit, p = self.criterion, self.params
        n = level.n
        impurity = crit.impurity(level.stats)
        weight = crit.weight(level.stats)
        feature = np.full(n, TREE_UNDEFINED, dtype=np.int64)
        threshold = np.full(n, float(TREE_UNDEFINED))
        improvement = np.full(n, -np.inf)
        may_split = (
            (level.sizes >= p.min_samples_split)
            & (level.sizes >= 2 * p.min_samples_leaf)
            & (level.depth < self.max_depth)
            & (impurity > EPSILON)
        )
        children = empty_level(crit.n_node_stats)
        ids = records.count + np.arange(n)
        nodes = np.flatnonzero(may_split)
        if nodes.size:
            sub = level.take(nodes) if nodes.size < n else level
            node_of = np.repeat(np.arange(nodes.size), sub.sizes)
            y, w = self.y[sub.samples], self.w[sub.samples]
            batch = SplitBatch(sub.samples, node_of, sub.sizes, sub.stats[: crit.n_split_stats], y, w)
            f, b, nb, found = self._best_splits(batch, sub.keys)
            if found.any():
                children, gain, accepted = self._split(sub, batch, f, b, found, weight[nodes], impurity[nodes], ids[nodes])
                done = nodes[accepted]
                feature[done] = f[accepted]
                t = self.thresholds
                lo = t[f[accepted], b[accepted]]
                hi = t[f[accepted], nb[accepted] - 1]
                # Midway between the node's two nearest samples (in bins), as
                # scikit-learn puts thresholds midway between sample values.
                threshold[done] = np.clip(0.5 * lo + 0.5 * hi, lo, hi)
                improvement[done] = gain[accepted]
        records.append(
            parent=level.parent, side=level.side, depth=level.depth, feature=feature, threshold=threshold,
            value=crit.value(level.stats), n=level.sizes, weight=weight, impurity=impurity,
        )
        return ids, children, improvement

    def _best_splits(self, batch: SplitBatch, keys: np.ndarray) -> tuple[np.ndarray, ...]:
        """Best split per node, visiting features in each node's drawn order.

        As scikit-learn's splitter, features found constant in a node do not
        count towards ``max_features``: further features are tried, in order,
        until that many non-constant ones were evaluated or none are left.
        """
        F, mtry = self.setup.n_features, self.params.max_features
        order = feature_orders(keys, F)
        n = batch.n_nodes
        score = np.full(n, -np.inf)
        feature = np.zeros(n, dtype=np.intp)
        bin_ = np.zeros(n, dtype=np.intp)
        next_bin = np.zeros(n, dtype=np.intp)
        found = np.zeros(n, dtype=np.intp)
        visited = np.zeros(n, dtype=np.intp)
        todo = np.arange(n)
        sub = batch
        while todo.size:
            want = mtry - found[todo]
            cols = visited[todo, None] + np.arange(int(want.max()))
            usable = (np.arange(cols.shape[1]) < want[:, None]) & (cols < F)
            cand = order[todo[:, None], np.minimum(cols, F - 1)]
            res = self._evaluate(sub, cand, usable)
            better = res.score > score[todo]  # ties keep the feature drawn first
            rows = np.arange(todo.size)
            tb = todo[better]
            score[tb] = res.score[better]
            feature[tb] = cand[rows[better], res.slot[better]]
            bin_[tb] = res.bin[better]
            next_bin[tb] = res.next_bin[better]
            found[todo] += res.n_nonconstant
            visited[todo] += usable.sum(axis=1)
            again = (found[todo] < mtry) & (visited[todo] < F)
            if not again.any():
                break
            sub = sub.take(np.flatnonzero(again))
            todo = todo[again]
        return feature, bin_, next_bin, score > -np.inf

    def _evaluate(self, batch: SplitBatch, features: np.ndarray, usable: np.ndarray) -> Splits:
        """Best split per node: small nodes by sorting, the others by histograms.

        The path depends on the node's size alone and dense histograms are built
        for bounded groups of nodes, so neither choice depends on what else is in
        the batch.
        """
        n_bins = int(self.setup.n_bins[features].max())
        small = batch.sizes < SPARSE_BELOW
        parts: list[tuple[np.ndarray, Splits]] = []
        if small.any():
            nodes = np.flatnonzero(small)
            sub = batch if nodes.size == batch.n_nodes else batch.take(nodes)
            parts.append((nodes, sparse_splits(sub, features[nodes], usable[nodes], self.Xb, self.rules)))
        if not small.all():
            big = np.flatnonzero(~small)
            # Bound the histogram's memory: (stats, bins, pairs) float64 per group.
            per_node = features.shape[1] * n_bins * self.criterion.n_split_stats
            step = max(1, DENSE_CELLS // per_node)
            for start in range(0, big.size, step):
                nodes = big[start : start + step]
                sub = batch if nodes.size == batch.n_nodes else batch.take(nodes)
                parts.append((nodes, dense_splits(sub, features[nodes], usable[nodes], self.Xb, n_bins, self.rules)))
        if len(parts) == 1:
            return parts[0][1]
        fields = ("score", "slot", "bin", "next_bin", "n_nonconstant")
        out = Splits(*(np.empty(batch.n_nodes, dtype=getattr(parts[0][1], f).dtype) for f in fields))
        for nodes, res in parts:
            for f in fields:
                getattr(out, f)[nodes] = getattr(res, f)
        return out

    def _split(
        self,
        level: Level,
        batch: SplitBatch,
        feature: np.ndarray,
        bin_: np.ndarray,
        found: np.ndarray,
        weight: np.ndarray,
        impurity: np.ndarray,
        ids: np.ndarray,
    ) -> tuple[Level, np.ndarray, np.ndarray]:
        """Partition the samples of nodes with a split; drop splits that gain too little."""
        crit, p = self.criterion, self.params
        if not found.all():
            keep = np.flatnonzero(found)
            level, batch = level.take(keep), batch.take(keep)
            feature, bin_, weight, impurity, ids = feature[keep], bin_[keep], weight[keep], impurity[keep], ids[keep]
        node_of = batch.node_of
        codes = self.Xb.codes(batch.samples, np.repeat(feature, batch.sizes))
        right = (codes > np.repeat(bin_, batch.sizes)).astype(np.intp)
        child = 2 * node_of + right
        n_children = 2 * level.n
        stats = crit.node_stats(child, n_children, batch.y, batch.w)
        c_imp = crit.impurity(stats).reshape(-1, 2)
        c_w = crit.weight(stats).reshape(-1, 2)
        gain = (weight / self.setup.root_weight) * (
            impurity - c_w[:, 0] / weight * c_imp[:, 0] - c_w[:, 1] / weight * c_imp[:, 1]
        )
        accepted = gain + EPSILON >= p.min_impurity_decrease
        sizes = np.bincount(child, minlength=n_children)
        order = stable_group(child, n_children)
        acc2 = np.repeat(accepted, 2)
        samples = batch.samples[order]
        if not accepted.all():
            samples = samples[np.repeat(acc2, sizes)]
        keys = child_keys(level.keys[accepted]).reshape(-1)
        children = Level(
            samples, sizes[acc2], stats[:, acc2], keys, np.repeat(level.depth[accepted] + 1, 2),
            np.repeat(ids[accepted], 2), np.tile(np.array([0, 1], dtype=np.int8), int(accepted.sum())),
        )
        full_accepted = np.zeros(found.shape[0], dtype=bool)
        full_gain = np.full(found.shape[0], -np.inf)
        idx = np.flatnonzero(found)
        full_accepted[idx] = accepted
        full_gain[idx] = gain
        return children, full_gain, full_accepted


def stable_group(group: np.ndarray, n_groups: int) -> np.ndarray:
    """Permutation that groups entries by ``group`` (ascending), keeping their order."""
    if n_groups <= 1 << 16:
        # numpy's stable sort of 16-bit keys is a radix sort: linear time.
        return np.argsort(group.astype(np.uint16), kind="stable")
    return np.argsort(group, kind="stable")


def empty_level(n_stats: int) -> Level:
    z = np.zeros(0, dtype=np.int64)
    return Level(z.astype(np.intp), z, np.zeros((n_stats, 0)), z.astype(np.uint64), z, z, z.astype(np.int8))


# --------------------------------------------------------------------------- tasks


def free_workers(executor: Any) -> int | None:
    """Workers that could take a task right now, if the executor says; else None.

    Read from :meth:`~shmforest.executors.base.Executor.free_workers` (also from
    executors not built on that base, if they have one). Only a hint: should the
    worker be gone by the time of ``submit``, the task runs inline, which is still
    correct. With it, levels stay in big batches while no one is free, and a worker
    that became idle gets half of a slow subtree as soon as the next level starts.
    """
    hint = getattr(executor, "free_workers", None)
    if callable(hint):
        hint = hint()
    return int(hint) if isinstance(hint, (int, np.integer)) else None


def task_payload(level: Level, w: np.ndarray) -> dict[str, np.ndarray]:
    """What a subtree task receives: its nodes' samples and their weights, not X."""
    return {
        "samples": level.samples.astype(np.int32 if level.samples.size and level.samples.max() < 2**31 else np.int64),
        "weights": w[level.samples],
        "sizes": level.sizes, "stats": level.stats, "keys": level.keys, "depth": level.depth,
        "parent": -1 - np.arange(level.n, dtype=np.int64), "side": level.side,
    }


def _grow_task(data: SharedDataset, setup: GrowthSetup, payload: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Grow the subtrees under the nodes in ``payload``; a module-level task function.

    Returns the records of those nodes and their descendants; root ``j`` has
    parent ``-1 - j``, which the caller maps to its own record.
    """
    Xb, y, _ = read_inputs(data, setup.params, None)
    samples = payload["samples"].astype(np.intp)
    w = np.zeros(Xb.shape[0])
    w[samples] = payload["weights"]
    level = Level(samples, payload["sizes"], payload["stats"], payload["keys"], payload["depth"],
                  payload["parent"], payload["side"])
    return LevelGrower(data, setup, Xb, y, w).grow(level).arrays()
