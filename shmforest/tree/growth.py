"""Growing a tree: compiled subtrees here, and subtrees handed to the executor as tasks.

::

    serial (or one worker):   kernels.grow(root)          the whole tree, one compiled call
    max_leaf_nodes:           kernels.grow_best_first     one compiled call
    branch parallel:
      level of open nodes --kernels.split_node, one per node--> their children
        cut: the level's nodes, split between them by samples
             --submit(_grow_task, data, setup, payload)-->  a worker: the same, recursively
             <---------- a node table per node, in preorder -----------
        past LEVEL_NODES nodes (or too few samples to cut): each node's subtree in
        one kernels.grow call, the rest offered to a worker that became free
      assemble: each expanded node's row, then its left table, then its right

A node's split depends only on its own samples (in ascending order), its key (a
hash of its path from the root) and, when its histogram came by subtraction, its
parent's histogram, which travels with it; so how the tree is cut into tasks, and
where they run, cannot change a bit of it. What travels to a task is the
dataset's handles, the small setup and the task's own sample ids with their
weights (and histograms), never ``X``.

When to cut: a level goes on as one batch unless it holds two or more nodes and
``MIN_TASK_SAMPLES`` samples, and either the executor reports a free worker
(:meth:`Executor.free_workers`) or, lacking that hint, the level holds at least
``TASK_SHARE`` of the tree's samples per worker. A *delegating* caller (the
process that called ``fit``, holding no token) hands every node of its first
level worth cutting to the workers and keeps none.
"""

from __future__ import annotations

import concurrent.futures as cf
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from shmforest.executors.current import current_executor
from shmforest.tree import kernels

# numba types its dispatchers loosely; the kernels check their arguments when they compile.
K: Any = kernels

if TYPE_CHECKING:
    from shmforest.tree.builder import TreeParams

__all__ = [
    "MIN_TASK_SAMPLES",
    "GrowthSetup",
    "Inputs",
    "OpenNode",
    "bin_ranges",
    "bins_per_feature",
    "free_workers",
    "grow_tree",
    "missing_features",
    "n_planes",
    "offset_codes",
    "read_inputs",
]

#: A level is cut into tasks only if it holds at least this many samples...
MIN_TASK_SAMPLES = 4096
#: ...and, when the executor does not tell how many workers are free, at least
#: this share of the tree's samples per worker.
TASK_SHARE = 0.25
#: Past this many open nodes a level's nodes are grown whole, one compiled call
#: each, instead of a Python call per node and level. Few: a node split by a Python
#: call costs about as much as a compiled call's whole small subtree, and a worker
#: that falls idle still takes the level's nodes not yet grown (:func:`_finish`).
LEVEL_NODES = 8
#: Nodes of fewer samples are split by sorting their codes; larger ones on histograms.
SMALL_NODE = 48

Table = tuple[np.ndarray, np.ndarray]

#: The kernels' code of each criterion. Friedman's improvement orders splits as the
#: squared error's decrease does: scikit-learn 1.9 grows the same trees for both.
CRITERION_CODES = {
    "gini": K.GINI,
    "entropy": K.ENTROPY,
    "squared_error": K.SQUARED_ERROR,
    "friedman_mse": K.SQUARED_ERROR,
    "poisson": K.POISSON,
}


# --------------------------------------------------------------------------- inputs


def read_inputs(data: Any, params: TreeParams, counts: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Checked ``Xb``, ``y`` (int64 classes or float64 targets; (n, n_outputs) for several) and effective
    weights ``w * counts``."""
    Xb = data["Xb"]
    if Xb.dtype != np.uint8 or Xb.ndim != 2:
        raise TypeError(f'data["Xb"] must be a 2-d uint8 array (Binner.transform), got {Xb.dtype} {Xb.shape}')
    n = Xb.shape[0]
    y = np.asarray(data["y"])
    params.check_outputs()
    k = params.n_outputs
    expected = (n,) if k == 1 else (n, k)
    if y.shape != expected and not (k == 1 and y.shape == (n, 1)):
        raise ValueError(f'data["y"] has shape {y.shape}; expected {expected} to match data["Xb"] and n_outputs')
    y = y.reshape(expected)
    if not params.regression:
        y = y.astype(np.int64)
        classes = params.class_counts
        if n and (y.min() < 0 or (y.max() >= classes[0] if k == 1 else np.any(y.max(axis=0) >= classes))):
            raise ValueError(
                f'data["y"] must hold class indices in [0, n_classes) of each output for classification, '
                f"n_classes {params.n_classes}"
            )
    else:
        y = y.astype(np.float64)
        if not np.all(np.isfinite(y)):
            raise ValueError('data["y"] holds NaN or infinite targets')
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
    return Xb, y, w


def missing_features(data: Any) -> np.ndarray | None:
    """Which features have a NaN code (``data["missing"]``, :attr:`Binner.missing_`), or None when none has."""
    return data["missing"] if "missing" in data else None


def bins_per_feature(thresholds: np.ndarray, n_features: int) -> np.ndarray:
    """Value bins of each feature, from :attr:`Binner.thresholds_` (padded with +inf)."""
    thresholds = np.asarray(thresholds)
    if thresholds.ndim != 2 or thresholds.shape[0] != n_features:
        raise ValueError(f'data["thresholds"] must have shape ({n_features}, max_bins - 1), got {thresholds.shape}')
    return (np.isfinite(thresholds).sum(axis=1) + 1).astype(np.int64)


@dataclass(frozen=True)
class GrowthSetup:
    """What every subtree task needs besides its samples (small, picklable)."""

    params: TreeParams
    ip: np.ndarray  # int64 kernel parameters (kernels.P_*)
    fp: np.ndarray  # float64 kernel parameters (kernels.F_*)
    root_samples: int
    parallel: bool

    @classmethod
    def make(
        cls,
        params: TreeParams,
        n_features: int,
        n_bins_total: int,
        root_weight: float,
        root_samples: int,
        parallel: bool,
    ) -> GrowthSetup:
        regression = params.regression
        planes = n_planes(params)
        # Monotonic constraints bound a binary classifier's first class, whose fraction
        # falls as the second's rises: their signs flip, as in scikit-learn.
        cst = params.monotonic_cst if params.class_counts != (1,) else None
        ip = np.zeros(K.N_INT_PARAMS + (n_features if cst is not None else 0), dtype=np.int64)
        if cst is not None:
            ip[K.P_MONOTONIC] = K.N_INT_PARAMS
            ip[K.N_INT_PARAMS :] = np.asarray(cst) * (1 if regression else -1)
        # Every output's classes, side by side (0 for regression).
        ip[K.P_N_CLASSES] = sum(params.class_counts)
        ip[K.P_N_OUTPUTS] = params.n_outputs
        ip[K.P_MAX_DEPTH] = -1 if params.max_depth is None else params.max_depth
        ip[K.P_MIN_SPLIT] = params.min_samples_split
        ip[K.P_MIN_LEAF] = params.min_samples_leaf
        ip[K.P_MAX_FEATURES] = params.max_features
        ip[K.P_CRITERION] = CRITERION_CODES[params.criterion]
        # Every node's histogram of every feature, the larger child's by subtraction,
        # pays when a node evaluates at least half of the features; otherwise each
        # node sums only the features it draws.
        ip[K.P_USE_SUB] = int(2 * params.max_features >= n_features) and params.max_leaf_nodes is None
        ip[K.P_RANDOM_SPLIT] = int(params.splitter == "random")
        ip[K.P_SMALL] = SMALL_NODE
        # Subtracting costs two passes over the cells; summing the larger child, a
        # pass over its samples' codes.
        ip[K.P_SUB_MIN] = max(SMALL_NODE, n_bins_total * planes // max(n_features, 1))
        # scikit-learn's min_weight_leaf: a fraction of the tree's total weight (bootstrap counts included).
        min_weight_leaf = params.min_weight_fraction_leaf * root_weight
        fp = np.array([params.min_impurity_decrease, root_weight, min_weight_leaf], dtype=np.float64)
        return cls(params, K.readonly(ip, np.int64), K.readonly(fp, np.float64), root_samples, parallel)


@dataclass
class Inputs:
    """The arrays the kernels read, read-only and in the dtypes they are compiled for."""

    Xb: np.ndarray
    yc: np.ndarray  # int64 classes (empty for regression); several outputs: side by side, offset to each's classes
    yr: np.ndarray  # float64 targets (empty for classification); several outputs: side by side
    w: np.ndarray
    edges: np.ndarray  # (n_features, 3 or 1, max_bins): the thresholds, then (extra trees) bins' value ranges
    nbins: np.ndarray  # codes per feature, the NaN code included
    offs: np.ndarray
    nan_code: np.ndarray  # each feature's NaN code, -1 for a feature without NaN

    @classmethod
    def make(
        cls,
        Xb: np.ndarray,
        y: np.ndarray,
        w: np.ndarray,
        thresholds: np.ndarray,
        class_counts: tuple[int, ...],
        missing: np.ndarray | None = None,
        bin_ranges: np.ndarray | None = None,
        random_cuts: bool = False,
    ) -> Inputs:
        """The kernels' arrays; ``missing``: which features have a NaN code (:func:`missing_features`).

        ``y``: (n,) or (n, n_outputs) targets, or class indices with ``class_counts``
        each output's number of classes (``TreeParams.class_counts``; () for regression).
        ``bin_ranges``: :attr:`Binner.bin_ranges_`, where extra trees (``random_cuts``)
        draw thresholds (:func:`edges`).
        """
        n_features = Xb.shape[1]
        nbins = bins_per_feature(thresholds, n_features)
        nan_code = np.full(n_features, -1, dtype=np.int64)
        if missing is not None:
            has = np.asarray(missing, dtype=bool)
            if has.shape != (n_features,):
                raise ValueError(f'data["missing"] must have shape ({n_features},), got {has.shape}')
            # The NaN code follows the feature's value bins (Binner).
            nan_code[has] = nbins[has]
            nbins = nbins + has
        offs = np.zeros(n_features + 1, dtype=np.int64)
        np.cumsum(nbins, out=offs[1:])
        empty = np.zeros(0)
        if len(class_counts) > 1:
            y = offset_codes(y, class_counts)
        y = np.asarray(y).reshape(-1)
        return cls(
            K.readonly(Xb, np.uint8),
            K.readonly(y if class_counts else empty, np.int64),
            K.readonly(empty if class_counts else y, np.float64),
            K.readonly(w, np.float64),
            K.readonly(edges(thresholds, bin_ranges, random_cuts), np.float64),
            K.readonly(nbins, np.int64),
            K.readonly(offs, np.int64),
            K.readonly(nan_code, np.int64),
        )

    @property
    def arrays(self) -> tuple[np.ndarray, ...]:
        return (self.Xb, self.yc, self.yr, self.w, self.edges, self.nbins, self.offs, self.nan_code)


def offset_codes(y: np.ndarray, class_counts: tuple[int, ...]) -> np.ndarray:
    """Class indices of every output (``y`` (n, n_outputs)) as indices into all outputs' classes
    side by side, each past the classes of the outputs before it: one stats vector holds them all."""
    offsets = np.concatenate([[0], np.cumsum(class_counts)[:-1]]).astype(np.int64)
    return np.asarray(y, dtype=np.int64).reshape(-1, len(class_counts)) + offsets


def edges(thresholds: np.ndarray, bin_ranges: np.ndarray | None, random_cuts: bool) -> np.ndarray:
    """The kernels' ``edges``, (n_features, 3, max_bins): the thresholds (padded with +inf),
    then each bin's smallest and largest value, which only extra trees' cuts
    (``random_cuts``) read; without them, the thresholds alone, (n_features, 1, max_bins).

    Without the Binner's ``bin_ranges``, a bin is taken to run from the threshold below
    it to the one above (the first and last value bins reduced to their one threshold).
    """
    thresholds = np.asarray(thresholds, dtype=np.float64)
    n_features, n_cuts = thresholds.shape
    out = np.empty((n_features, 3 if random_cuts else 1, n_cuts + 1))
    out[:, 0, :-1] = thresholds
    out[:, 0, -1] = np.inf
    if not random_cuts:
        return out
    if bin_ranges is not None:
        ranges = np.asarray(bin_ranges, dtype=np.float64)
        if ranges.shape != (n_features, n_cuts + 1, 2):
            raise ValueError(f'data["bin_ranges"] must have shape ({n_features}, {n_cuts + 1}, 2), got {ranges.shape}')
        out[:, 1] = ranges[:, :, 0]
        out[:, 2] = ranges[:, :, 1]
        return out
    out[:, 1, 1:] = thresholds
    out[:, 1, 0] = thresholds[:, 0] if n_cuts else 0.0
    out[:, 2] = out[:, 0]
    last = bins_per_feature(thresholds, n_features) - 1
    rows = np.arange(n_features)
    out[rows, 2, last] = out[rows, 1, last]
    return out


def bin_ranges(data: Any) -> np.ndarray | None:
    """Each bin's smallest and largest value (``data["bin_ranges"]``, :attr:`Binner.bin_ranges_`), or None."""
    return data["bin_ranges"] if "bin_ranges" in data else None


@dataclass
class OpenNode:
    """A node not yet grown: its samples (writable, permuted when it splits) and what it inherits."""

    samples: np.ndarray  # int64, ascending
    key: np.uint64
    depth: int
    stats: np.ndarray  # (n_stats,)
    hist: np.ndarray | None  # its histogram, when the tree subtracts and the node is big
    row: Table | None = None  # its own one-row table, once split here
    children: list[OpenNode] = field(default_factory=list)
    table: Table | None = None  # its whole subtree's table, once grown
    bounds: np.ndarray = field(default_factory=lambda: unbounded())  # its value's, under monotonic constraints

    @property
    def size(self) -> int:
        return int(self.samples.shape[0])


def unbounded() -> np.ndarray:
    """The (lower, upper) bounds of a node's value that bound nothing: the root's."""
    return np.array([-np.inf, np.inf])


# --------------------------------------------------------------------------- growth


def grow_tree(data: Any, setup: GrowthSetup, inputs: Inputs, root: OpenNode, delegate: bool) -> Table:
    """The table of the tree (or subtree) under ``root``, in preorder."""
    p = setup.params
    if p.max_leaf_nodes is not None:
        return K.grow_best_first(
            *inputs.arrays, setup.ip, setup.fp, root.samples, root.key, root.stats, int(p.max_leaf_nodes)
        )
    if setup.parallel and current_executor().max_workers >= 2:
        return grow_nodes(data, setup, inputs, [root], delegate)[0]
    return _grow_whole(setup, inputs, root)


def _grow_whole(setup: GrowthSetup, inputs: Inputs, node: OpenNode) -> Table:
    hist = node.hist if node.hist is not None else _no_hist(setup)
    return K.grow(*inputs.arrays, setup.ip, setup.fp, node.samples, node.key, node.depth, node.stats, hist, node.bounds)


def n_planes(params: TreeParams) -> int:
    """Planes of a histogram cell: (count, every output's class weights) or (count, w, wy_1..k)."""
    return 2 + params.n_outputs if params.regression else 1 + sum(params.class_counts)


def _no_hist(setup: GrowthSetup) -> np.ndarray:
    return np.zeros((0, n_planes(setup.params)))


def expand(setup: GrowthSetup, inputs: Inputs, node: OpenNode) -> list[OpenNode]:
    """Record ``node`` and split it here (one compiled call); its children, if it split."""
    ints, floats, mid, ls, rs, hl, hr, cb = K.split_node(
        *inputs.arrays,
        setup.ip,
        setup.fp,
        node.samples,
        node.key,
        node.depth,
        node.stats,
        node.hist if node.hist is not None else _no_hist(setup),
        node.bounds,
    )
    node.hist = None
    if mid < 0:
        node.table = (ints, floats)
        return []
    node.row = (ints, floats)
    node.children = [
        OpenNode(
            node.samples[:mid],
            np.uint64(K.child_key(node.key, 0)),
            node.depth + 1,
            ls,
            hl if hl.shape[0] else None,
            bounds=cb[0],
        ),
        OpenNode(
            node.samples[mid:],
            np.uint64(K.child_key(node.key, 1)),
            node.depth + 1,
            rs,
            hr if hr.shape[0] else None,
            bounds=cb[1],
        ),
    ]
    return node.children


def grow_nodes(
    data: Any, setup: GrowthSetup, inputs: Inputs, nodes: list[OpenNode], delegate: bool = False
) -> list[Table]:
    """Grow the subtrees under ``nodes``, handing parts to free workers; their tables, in order.

    With ``delegate``, this process is not one of the executor's workers but
    the one waiting for them: at the first level worth cutting, every node goes
    to the executor and none stays here.
    """
    tasks: list[tuple[Any, list[OpenNode]]] = []
    level = list(nodes)
    try:
        while level:
            if len(level) >= 2 and sum(n.size for n in level) >= MIN_TASK_SAMPLES:
                level = _hand_off(data, setup, inputs, level, tasks, delegate)
            if not level:
                break
            if len(level) > LEVEL_NODES or sum(n.size for n in level) < MIN_TASK_SAMPLES:
                _finish(data, setup, inputs, level, tasks)
                break
            level = [child for node in level for child in expand(setup, inputs, node)]
        for future, given in tasks:
            for node, table in zip(given, future.result()):
                node.table = table
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
    return [_assemble(node) for node in nodes]


def _finish(data: Any, setup: GrowthSetup, inputs: Inputs, level: list[OpenNode], tasks: list) -> None:
    """Grow each node of ``level`` whole, offering what is left to a worker that became free."""
    pending = list(level)
    while pending:
        if len(pending) >= 2 and sum(n.size for n in pending) >= MIN_TASK_SAMPLES:
            pending = _hand_off(data, setup, inputs, pending, tasks, False)
        node = pending.pop(0)
        node.table = _grow_whole(setup, inputs, node)
        node.hist = None


def _hand_off(
    data: Any, setup: GrowthSetup, inputs: Inputs, level: list[OpenNode], tasks: list, delegate: bool
) -> list[OpenNode]:
    """Submit parts of ``level`` (cut by samples, between nodes) as tasks; return what stays here.

    A worker keeps the first half and submits the second, if a worker is free
    to take it. A delegating caller submits all of it, one part per free worker.
    """
    executor = current_executor()
    workers = executor.max_workers
    if workers < 2:
        return level
    free = free_workers(executor)
    total = sum(n.size for n in level)
    if delegate:
        parts = min(len(level), free if free else workers)
    elif free == 0:
        return level  # would run inline: the same work, more calls
    elif free is None and total < TASK_SHARE * setup.root_samples / workers:
        return level
    else:
        parts = 2
    sizes = np.array([n.size for n in level])
    # Each part ends before the node that would carry it past its share of the samples.
    bounds = np.searchsorted(np.cumsum(sizes), total * np.arange(1, parts) / parts)
    bounds = np.clip(bounds, 1, len(level) - 1)
    bounds = np.unique(bounds)
    pieces = np.split(np.arange(len(level)), bounds)
    for piece in pieces if delegate else pieces[1:]:
        given = [level[i] for i in piece]
        future = executor.submit(_grow_task, data, setup, task_payload(given, inputs.w))
        tasks.append((future, given))
        for node in given:
            node.hist = None
    return [] if delegate else [level[i] for i in pieces[0]]


def _assemble(node: OpenNode) -> Table:
    """One table in preorder: each expanded node's row, its left subtree's table, then its right's."""
    pieces: list[Table] = []

    def flatten(n: OpenNode) -> int:
        if n.table is not None:
            pieces.append(n.table)
            return int(n.table[0].shape[0])
        ints, floats = n.row  # type: ignore[misc]
        ints = ints.copy()
        pieces.append((ints, floats))
        left_size = flatten(n.children[0])
        right_size = flatten(n.children[1])
        # Ids local to this node's own piece: children follow it, left first.
        ints[0, 0] = 1
        ints[0, 1] = 1 + left_size
        n.row = None
        return 1 + left_size + right_size

    if node.table is not None:
        return node.table
    flatten(node)
    # Offsets: children ids in each piece are local to the subtree that piece starts.
    offsets = np.cumsum([0] + [p[0].shape[0] for p in pieces])
    ints = np.concatenate([p[0] for p in pieces])
    floats = np.concatenate([p[1] for p in pieces])
    _shift_children(ints, pieces, offsets)
    return ints, floats


def _shift_children(ints: np.ndarray, pieces: list[Table], offsets: np.ndarray) -> None:
    for (piece, _), at in zip(pieces, offsets[:-1]):
        if at:
            block = ints[at : at + piece.shape[0], 0:2]
            block[block >= 0] += at


# --------------------------------------------------------------------------- tasks


def free_workers(executor: Any) -> int | None:
    """Workers that could take a task right now, if the executor says; else None.

    Read from :meth:`~shmforest.executors.base.Executor.free_workers` (also from
    executors not built on that base, if they have one). Only a hint: should the
    worker be gone by the time of ``submit``, the task runs inline, which is still
    correct.
    """
    hint = getattr(executor, "free_workers", None)
    if callable(hint):
        hint = hint()
    return int(hint) if isinstance(hint, (int, np.integer)) else None


def task_payload(nodes: list[OpenNode], w: np.ndarray) -> dict[str, np.ndarray]:
    """What a subtree task receives: its nodes' samples, their weights, histograms and bounds, not X."""
    samples = np.concatenate([n.samples for n in nodes])
    with_hist = [i for i, n in enumerate(nodes) if n.hist is not None]
    hist_of = np.full(len(nodes), -1, dtype=np.int64)
    hist_of[with_hist] = np.arange(len(with_hist))
    return {
        "samples": samples.astype(np.int32 if samples.size and samples.max() < 2**31 else np.int64),
        "weights": w[samples],
        "sizes": np.array([n.size for n in nodes], dtype=np.int64),
        "stats": np.stack([n.stats for n in nodes]),
        "keys": np.array([n.key for n in nodes], dtype=np.uint64),
        "depth": np.array([n.depth for n in nodes], dtype=np.int64),
        "bounds": np.stack([n.bounds for n in nodes]),
        "hist_of": hist_of,
        "hists": np.stack([h for i in with_hist if (h := nodes[i].hist) is not None])
        if with_hist
        else np.zeros((0, 0, 0)),
    }


def _grow_task(data: Any, setup: GrowthSetup, payload: dict[str, np.ndarray]) -> list[Table]:
    """Grow the subtrees under the nodes in ``payload``; a module-level task function.

    Returns one table per node, in the payload's order, each in preorder.
    """
    Xb, y, _ = read_inputs(data, setup.params, None)
    samples = np.array(payload["samples"], dtype=np.int64)
    w = np.zeros(Xb.shape[0])
    w[samples] = payload["weights"]
    p = setup.params
    inputs = Inputs.make(
        Xb, y, w, data["thresholds"], p.class_counts, missing_features(data), bin_ranges(data), p.splitter == "random"
    )
    bounds = np.concatenate([[0], np.cumsum(payload["sizes"])])
    nodes = []
    for i in range(len(payload["sizes"])):
        h = int(payload["hist_of"][i])
        nodes.append(
            OpenNode(
                samples[bounds[i] : bounds[i + 1]],
                np.uint64(payload["keys"][i]),
                int(payload["depth"][i]),
                np.array(payload["stats"][i], dtype=np.float64),
                np.array(payload["hists"][h]) if h >= 0 else None,
                bounds=np.array(payload["bounds"][i], dtype=np.float64),
            )
        )
    if setup.parallel and current_executor().max_workers >= 2:
        return grow_nodes(data, setup, inputs, nodes)
    return [_grow_whole(setup, inputs, node) for node in nodes]
