"""Rows walking down trees together, a depth per step, on flat node arrays.

Every (tree, row) pair still inside its tree takes one step at once: gather its
node's feature and threshold, gather the row's value of that feature, compare, go
to a child. The arrays are arranged so a step needs no test for leaves: a leaf's
test always goes left and its children are itself, so pairs that reached a leaf
stay where they are until a compaction drops them.

Several trees walk in one go (:func:`stack_walks`): their node arrays are laid end
to end, so each numpy call covers more pairs. That matters with threads, which
release the GIL only inside numpy calls: short calls make them queue for it.

Compaction costs about as much as a step or two, and pairs reach their leaves at
widely different depths, so when to compact is chosen per tree: from how many
training samples the leaves at each depth hold, the steps after which compacting
saves the most (:func:`compaction_steps`, a small dynamic programme over depths).
The last is always the deepest leaf's depth, so every pair is done however test
rows are spread.

The walk does not care what the values are: real features against real
thresholds (:class:`~shmforest.tree.tree.Tree`), or small integer codes against
threshold ranks (:class:`~shmforest.tree.ensemble.CodedForest`), as long as
``value > threshold`` means "go right".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

__all__ = ["WalkArrays", "compaction_steps", "node_depths", "stack_walks", "walk", "walk_arrays"]

# What steps and compactions cost, per pair and per call (the numpy calls' own
# overhead), in seconds: rough one-off timings of the walk's numpy calls on the
# 75,000 x 20 workload, 2 cores. Only their ratios matter: they choose the
# schedule, never a result.
STEP_PER_PAIR, STEP_FIXED = 7e-9, 7e-6
COMPACTION_PER_PAIR, COMPACTION_FIXED = 8e-9, 10e-6


class WalkArrays(NamedTuple):
    """Node arrays of one tree, or of several laid end to end, arranged for :func:`walk`."""

    feature: np.ndarray  #: intp; 0 at leaves
    threshold: np.ndarray  #: go right when value > threshold; "always left" at leaves
    children: np.ndarray  #: left child ids: every right child is its left sibling + 1
    leaf: np.ndarray  #: bool
    roots: np.ndarray  #: intp: where each tree's nodes start
    depth_share: np.ndarray  #: share of training samples in leaves at each depth, summed over trees
    old_id: np.ndarray | None  #: each node's id in its own tree, when trees were renumbered
    schedules: dict[int, frozenset[int]]  #: compaction steps by pair count (log2), filled as walked


def node_depths(children_left: np.ndarray, children_right: np.ndarray) -> np.ndarray:
    """Depth of every node (the root's is 0), level by level from the root."""
    depth = np.zeros(children_left.shape[0], dtype=np.int64)
    frontier = np.array([0], dtype=np.int64)
    d = 0
    while frontier.size:
        depth[frontier] = d
        internal = frontier[children_left[frontier] >= 0]
        frontier = np.concatenate([children_left[internal], children_right[internal]])
        d += 1
    return depth


def compaction_steps(depth_share: np.ndarray, pairs: int) -> frozenset[int]:
    """Steps after which to compact ``pairs`` pairs whose leaves lie at each depth as ``depth_share``.

    With ``F(j)`` the share of pairs whose leaf is deeper than ``j``, a step after a
    compaction at ``j`` costs ``STEP_PER_PAIR * pairs * F(j) + STEP_FIXED``, and the
    next compaction ``COMPACTION_PER_PAIR * pairs * F(j) + COMPACTION_FIXED``.
    ``best[k]``, the least cost of steps 1..k ending in a compaction, is the least
    over ``j < k`` of ``best[j]`` plus ``k - j`` such steps plus that compaction.
    The last compaction is at the deepest leaf, where every pair is done.
    """
    top = depth_share.shape[0] - 1
    if top <= 0:
        return frozenset({1})  # lone roots: one step keeps every pair where it is
    total = float(depth_share.sum())
    deeper = (1.0 - np.cumsum(depth_share) / total) if total > 0 else np.ones(top + 1)
    present = pairs * deeper
    per_step = STEP_PER_PAIR * present + STEP_FIXED  # a step after a compaction at j
    compaction = COMPACTION_PER_PAIR * present + COMPACTION_FIXED  # the next compaction
    j = np.arange(top + 1)
    best = np.zeros(top + 1)
    came_from = [0] * (top + 1)
    for k in range(1, top + 1):
        options = best[:k] + (k - j[:k]) * per_step[:k] + compaction[:k]
        came_from[k] = int(np.argmin(options))  # ties: the earliest, as min() would
        best[k] = options[came_from[k]]
    steps, k = [], top
    while k > 0:
        steps.append(k)
        k = came_from[k]
    return frozenset(steps)


def walk_arrays(
    children_left: np.ndarray,
    children_right: np.ndarray,
    feature: np.ndarray,
    threshold: np.ndarray,
    always_left: float,
    depth: np.ndarray,
    weight: np.ndarray,
) -> WalkArrays:
    """Arrange one tree's arrays for :func:`walk`.

    Parameters
    ----------
    children_left, children_right, feature, threshold : ndarray
        The tree's node arrays; ``threshold`` may hold codes of any dtype.
    always_left : scalar
        A threshold no value exceeds, put at the leaves.
    depth : ndarray
        Each node's depth (:func:`node_depths`).
    weight : ndarray
        How many training samples each node holds: where test rows are expected.

    Notes
    -----
    Nodes must be numbered so that every right child is its left sibling + 1
    (breadth first, as the builder does): the next node is then
    ``left[node] + went_right``, one gather fewer than a (left, right) lookup.
    Trees numbered otherwise are renumbered here first (ids breadth first,
    left before right), and :func:`walk` maps leaves back to the tree's own ids.
    """
    # Masks in arithmetic, not as indices: boolean indexing is several times slower.
    leaf = children_left < 0
    n = children_left.shape[0]
    if np.all((children_right - children_left == 1) | leaf):
        order = None
    else:
        order = _breadth_first(children_left, children_right)
        new_id = np.empty(n, dtype=np.intp)
        new_id[order] = np.arange(n)
        children_left = np.where(leaf, -1, new_id[children_left])[order]
        feature, threshold, depth, weight, leaf = feature[order], threshold[order], depth[order], weight[order], leaf[order]
    ids = np.arange(n, dtype=np.intp)
    children = np.where(leaf, ids, children_left).astype(np.intp)
    share = np.bincount(depth, weights=np.where(leaf, weight, 0).astype(np.float64), minlength=int(depth.max()) + 1)
    share = share / share.sum() if share.sum() > 0 else np.full(share.shape, 1.0 / share.size)
    return WalkArrays(
        np.where(leaf, 0, feature).astype(np.intp),
        np.where(leaf, always_left, threshold).astype(threshold.dtype, copy=False),
        children,
        leaf,
        np.zeros(1, dtype=np.intp),
        share,
        order,
        {},
    )


def _breadth_first(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Old node ids in breadth-first order, left before right."""
    order = [np.array([0], dtype=np.intp)]
    frontier = order[0]
    while frontier.size:
        internal = frontier[left[frontier] >= 0]
        frontier = np.stack([left[internal], right[internal]], axis=1).reshape(-1).astype(np.intp)
        order.append(frontier)
    return np.concatenate(order)


def stack_walks(walks: Sequence[WalkArrays]) -> WalkArrays:
    """Several trees' walk arrays laid end to end, to walk together."""
    if len(walks) == 1:
        return walks[0]
    sizes = np.array([w.feature.shape[0] for w in walks], dtype=np.intp)
    roots = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
    top = max(w.depth_share.shape[0] for w in walks)
    share = np.zeros(top)
    for w in walks:
        share[: w.depth_share.shape[0]] += w.depth_share
    renumbered = any(w.old_id is not None for w in walks)
    return WalkArrays(
        np.concatenate([w.feature for w in walks]),
        np.concatenate([w.threshold for w in walks]),
        np.concatenate([w.children + r for w, r in zip(walks, roots)]),
        np.concatenate([w.leaf for w in walks]),
        roots,
        share,
        np.concatenate([np.arange(s) if w.old_id is None else w.old_id for w, s in zip(walks, sizes)])
        if renumbered
        else None,
        {},
    )


class Workspace:
    """Buffers a walk reuses instead of allocating arrays at every numpy call.

    A walk's temporaries are megabytes; allocated afresh at every step, glibc maps
    and unmaps them, and every page is faulted in again: a warm 100-tree predict of
    25,000 rows took 7,964 minor faults before workspaces and takes 3 with them
    (``benchmarks/test_bench_faults.py``; the first figure at commit ed56779). With
    threads the faults also contend for the process's memory map. A workspace keeps one buffer per role, grown as
    needed; one thread at a time may use it, and :func:`walk`'s result lives in
    it until the next walk with the same workspace.
    """

    def __init__(self) -> None:
        self._buffers: dict[str, np.ndarray] = {}

    def get(self, role: str, size: int, dtype: np.dtype | type) -> np.ndarray:
        """A buffer of at least ``size`` items of ``dtype`` for ``role``: its first ``size``."""
        buf = self._buffers.get(role)
        if buf is None or buf.shape[0] < size or buf.dtype != dtype:
            buf = self._buffers[role] = np.empty(size, dtype=dtype)
        return buf[:size]

    @property
    def nbytes(self) -> int:
        """Bytes held."""
        return sum(b.nbytes for b in self._buffers.values())


def walk(
    arrays: WalkArrays, values: np.ndarray, row_offset: np.ndarray | None = None, workspace: Workspace | None = None
) -> np.ndarray:
    """Leaf reached by each row in each tree of ``arrays``.

    Parameters
    ----------
    arrays : WalkArrays
        From :func:`walk_arrays` (one tree) or :func:`stack_walks`.
    values : ndarray of shape (n_rows, n_features), C order
        Real values or codes, matching ``arrays.threshold``.
    row_offset : ndarray of intp, optional
        ``arange(n_rows) * n_features``, when the caller walks many times.
    workspace : Workspace, optional
        Buffers to reuse; the result then lives in it, valid until its next walk.

    Returns
    -------
    ndarray of intp, shape (n_trees, n_rows)
        Node ids within each tree.
    """
    feature, threshold, children, leaf, roots, depth_share, old_id, schedules = arrays
    n, stride = values.shape
    k = roots.shape[0]
    pairs = k * n
    ws = Workspace() if workspace is None else workspace
    flat_out = ws.get("out", pairs, np.intp)
    out = flat_out.reshape(k, n)
    if k == 1 and leaf[0]:
        out[...] = 0
        return out  # a lone root, possibly on no features at all
    compact_after = schedules.get(pairs.bit_length())
    if compact_after is None:  # one schedule per power of two of pairs: close enough
        compact_after = schedules[pairs.bit_length()] = compaction_steps(depth_share, pairs)
    flat = values.reshape(-1)
    rows = np.arange(n, dtype=np.intp) * stride if row_offset is None else row_offset
    # Two buffers for each array that compaction rewrites: it reads one, writes the other.
    node, node2 = ws.get("node", pairs, np.intp), ws.get("node2", pairs, np.intp)
    offset, offset2 = ws.get("offset", pairs, np.intp), ws.get("offset2", pairs, np.intp)
    slot, slot2 = ws.get("slot", pairs, np.intp), ws.get("slot2", pairs, np.intp)
    f = ws.get("f", pairs, np.intp)
    v, t = ws.get("v", pairs, flat.dtype), ws.get("t", pairs, threshold.dtype)
    right, done = ws.get("right", pairs, np.bool_), ws.get("done", pairs, np.bool_)
    node.reshape(k, n)[...] = roots[:, None]
    offset.reshape(k, n)[...] = rows
    slot[...] = np.arange(pairs, dtype=np.intp)  # where each pair's leaf goes in ``out``
    m, step = pairs, 0
    # mode="clip" skips the bounds checks: every index here is valid by construction.
    while m:
        nd, fm = node[:m], f[:m]
        feature.take(nd, mode="clip", out=fm)
        np.add(fm, offset[:m], out=fm)
        flat.take(fm, mode="clip", out=v[:m])
        threshold.take(nd, mode="clip", out=t[:m])
        np.greater(v[:m], t[:m], out=right[:m])
        children.take(nd, mode="clip", out=nd)  # each output depends only on its own input
        np.add(nd, right[:m], out=nd)
        step += 1
        if step in compact_after:
            # Index arrays and take(): boolean masks select several times slower.
            dm = leaf.take(nd, mode="clip", out=done[:m])
            at = np.flatnonzero(dm)
            flat_out[slot[:m].take(at, mode="clip")] = nd.take(at, mode="clip")
            keep = np.flatnonzero(~dm)
            kept = keep.shape[0]
            nd.take(keep, mode="clip", out=node2[:kept])
            offset[:m].take(keep, mode="clip", out=offset2[:kept])
            slot[:m].take(keep, mode="clip", out=slot2[:kept])
            node, node2, offset, offset2, slot, slot2 = node2, node, offset2, offset, slot2, slot
            m = kept
    if old_id is not None:
        return old_id.take(out, mode="clip", out=out)
    if k > 1:
        out -= roots[:, None]
    return out
