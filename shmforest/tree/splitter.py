"""Best split of many nodes at once, from histograms of binned features.

Every candidate feature of every node of a level is a *pair*; the histogram of
all pairs is built by one ``np.bincount`` over a combined index, laid out
``(stat, bin, pair)`` so that the cumulative sums along bins and the criterion run
on whole planes::

    samples of the level (grouped by node)
      -> codes of each node's candidate features      Xb.take(sample * F + feature)
      -> cell = code * n_pairs + pair                 one bincount per stat
      -> cumulative sums over bins                    left side of every threshold
      -> right = node total - left; proxy; -inf where a side is too small
      -> argmax over bins (per pair), then over the node's features

A pair costs ``n_bins`` cells whatever its size, which is wasted on small nodes:
those go through :func:`sparse_splits` instead, which sorts each pair's samples by
code and scores only the thresholds that separate two samples. Both return the
same split (first best in feature order, then in bin order); each node's sums run
over its own samples in their canonical order, so a node's split depends on the
node alone, not on the other nodes evaluated beside it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shmforest.tree.criterion import Criterion

__all__ = ["SplitBatch", "Splits", "dense_splits", "sparse_splits"]


class BinnedX:
    """Random access to the codes of a 2-d ``uint8`` array, C or Fortran order."""

    def __init__(self, Xb: np.ndarray) -> None:
        if not (Xb.flags.c_contiguous or Xb.flags.f_contiguous):
            Xb = np.ascontiguousarray(Xb)
        self.array = Xb
        self.flat = Xb.ravel(order="K")
        self.row_stride, self.col_stride = (s // Xb.itemsize for s in Xb.strides)
        self.n_features = Xb.shape[1]
        #: Rows are contiguous (C order): all of a sample's codes are one short copy.
        self.rows_contiguous = bool(Xb.flags.c_contiguous) and Xb.shape[0] > 0

    def rows(self, samples: np.ndarray) -> np.ndarray:
        """Every feature's code of each sample, in feature order: shape (n, n_features)."""
        return self.array.take(samples, axis=0)

    def codes(self, samples: np.ndarray, features: np.ndarray) -> np.ndarray:
        """``Xb[samples, features]`` (broadcast), as one flat ``take``."""
        return self.flat.take(samples * self.row_stride + features * self.col_stride)

    def node_codes(self, batch: SplitBatch, features: np.ndarray) -> np.ndarray:
        """Codes of each node's candidate features for its samples: shape (n, k).

        ``features`` is (n_nodes, k); nodes' samples are contiguous, so the
        per-sample features are a ``repeat``, not a gather.
        """
        index = np.repeat(features * self.col_stride, batch.sizes, axis=0)
        index += (batch.samples * self.row_stride)[:, None]
        return self.flat.take(index)


@dataclass
class SplitBatch:
    """The nodes to split and their samples, as the splitter needs them.

    ``samples`` holds each node's samples contiguously (``sizes`` of them per
    node, nodes in order); ``y`` and ``w`` are the target and effective weight of
    each entry of ``samples``.
    """

    samples: np.ndarray  # intp (n,)
    node_of: np.ndarray  # intp (n,) node of each entry, 0..n_nodes-1
    sizes: np.ndarray  # int64 (n_nodes,) distinct samples per node
    totals: np.ndarray  # (n_split_stats, n_nodes) split-search stats of each node
    y: np.ndarray  # (n,) int class index or float target
    w: np.ndarray  # (n,) float64 effective weight (> 0)

    @property
    def n_nodes(self) -> int:
        return int(self.sizes.shape[0])

    def take(self, nodes: np.ndarray) -> SplitBatch:
        """The batch restricted to ``nodes`` (sorted indices)."""
        keep = np.zeros(self.n_nodes, dtype=bool)
        keep[nodes] = True
        mask = keep[self.node_of]
        sizes = self.sizes[nodes]
        return SplitBatch(
            self.samples[mask], np.repeat(np.arange(nodes.size), sizes), sizes,
            self.totals[:, nodes], self.y[mask], self.w[mask],
        )


@dataclass
class Splits:
    """Best split found per node among the features tried (nan score: none)."""

    score: np.ndarray  # float64 (n_nodes,) proxy of the best split, nan if none
    slot: np.ndarray  # intp (n_nodes,) which candidate feature (column of `features`)
    bin: np.ndarray  # intp (n_nodes,) left side is code <= bin
    next_bin: np.ndarray  # intp (n_nodes,) smallest code on the right side
    n_nonconstant: np.ndarray  # intp (n_nodes,) candidate features not constant in the node


@dataclass(frozen=True)
class SplitRules:
    """What the splitter needs to know besides the data."""

    criterion: Criterion
    min_samples_leaf: int
    exact: bool  # every sum is an exact integer: no count histogram needed


#: Histogram entries (sample, candidate feature) a dense group sums at a time when
#: every sum is exact: 2.5 MiB of index. One deep tree on the 75,000 x 20 workload
#: (one-off A/Bs in turns, per-round medians against summing all at once): its top
#: levels 20 to 28% faster (the root 8.0 -> 5.7 ms); the whole fit serial 2.5% and
#: 7.5% faster, on 2 ``shm`` workers 11% and 1.4% (15 and 17 rounds), two
#: processes mostly getting one's memory bandwidth here (``CapacityProbe``).
HISTOGRAM_ENTRIES = 5 << 16


def dense_splits(
    batch: SplitBatch,
    features: np.ndarray,
    usable: np.ndarray,
    X: BinnedX,
    n_bins: int,
    rules: SplitRules,
) -> Splits:
    """Best splits from full histograms of every node's candidate features.

    Parameters
    ----------
    batch : SplitBatch
    features : ndarray of shape (n_nodes, k)
        Candidate features of each node, in the order they were drawn.
    usable : ndarray of bool, shape (n_nodes, k)
        False for slots that only pad ``features`` (scored as no split).
    X : BinnedX
    n_bins : int
        Bins to histogram (at least the largest code of these features + 1).
    rules : SplitRules
    """
    crit, msl = rules.criterion, rules.min_samples_leaf
    n_nodes, k = features.shape
    n_pairs = n_nodes * k
    n_cells = n_bins * n_pairs
    # Every node trying every feature (max_features=None): histogram the features in
    # their own order from whole rows of codes, a copy of a few bytes per sample
    # instead of a gather per (sample, feature), and put each node's results in its
    # draw order afterwards. Each cell sums the same samples in the same order
    # either way, so the split found is the same to the bit. One deep tree on the
    # 75,000 x 20 workload, serial: 0.93 s -> 0.80 s and 1.09 s -> 0.88 s in two
    # interleaved runs of 7 (one-off timings of a throwaway script).
    whole_rows = k == X.n_features and X.rows_contiguous and bool(usable.all())
    codes = X.rows(batch.samples) if whole_rows else X.node_codes(batch, features)
    # cell = code * n_pairs + pair (+ the stat plane's offset): bins outermost, so
    # the cumulative sums over bins add whole rows of pairs.
    pair = np.repeat(np.arange(0, n_pairs, k), batch.sizes)
    offset = crit.stat_offset(batch.y, n_cells)
    row = pair if offset is None else pair + offset
    # In place, column offsets then row offsets: ``row[:, None] + np.arange(k)`` would
    # be a temporary as large as ``index``, written, read and freed at every group.
    # One-off A/B on the 75,000 x 20 workload, serial, rounds in turns: 10 trees
    # 0.939 s -> 0.863 s (10 rounds), one deep tree 0.311 s -> 0.301 s (20 rounds).
    # With exact sums (integers: any order gives the same bits) a big group's
    # entries are summed a slice of samples at a time, so that the index and the
    # weights stay in cache instead of being arrays of samples x k.
    stat_weights = crit.stat_weights(batch.y, batch.w)
    n = codes.shape[0]
    # Never where a slice's histogram would dwarf its entries (one node of very
    # many features): each slice adds a whole histogram.
    sliced = rules.exact and n * k > 2 * HISTOGRAM_ENTRIES and n_cells * crit.n_split_stats <= 4 * HISTOGRAM_ENTRIES
    step = max(1, HISTOGRAM_ENTRIES // k) if sliced else max(n, 1)
    left = None
    for start in range(0, max(n, 1), step):  # once at least: no samples, an empty histogram
        part = slice(start, start + step)
        index = np.multiply(codes[part], n_pairs, dtype=np.intp)
        index += np.arange(k)
        index += row[part, None]
        summed = crit.sum_cells(index.reshape(-1), n_cells, [np.repeat(wi[part], k) for wi in stat_weights])
        left = summed if left is None else np.add(left, summed, out=left)
    left = _cumsum_bins(left.reshape(-1, n_bins, n_pairs))
    total = np.repeat(batch.totals, k, axis=1)
    right = total[:, None, :] - left
    with np.errstate(invalid="ignore", divide="ignore"):
        score = crit.proxy(left, right)
    size = np.repeat(batch.sizes, k)
    if rules.exact and msl == 1:
        # Exact sums: an empty side is exactly zero, which the proxy scores nan.
        cum = crit.weight(left) if crit.is_classification else left[0]
        nonconstant = ((cum > 0) & (cum < total_weight(crit, total))).any(axis=0)
    else:
        cell = np.multiply(codes, n_pairs, dtype=np.intp)
        cell += np.arange(k)
        cell += pair[:, None]
        cum = _cumsum_bins(np.bincount(cell.reshape(-1), minlength=n_cells).reshape(1, n_bins, n_pairs))[0]
        np.copyto(score, np.nan, where=(cum < msl) | (cum > size - msl))
        nonconstant = ((cum > 0) & (cum < size)).any(axis=0)
    best = np.fmax.reduce(score, axis=0)  # nan only where a pair has no valid split
    best_bin = (score == best).argmax(axis=0)
    usable = usable.reshape(-1)
    best[~usable] = np.nan
    nonconstant &= usable
    best, best_bin, nonconstant = (a.reshape(n_nodes, k) for a in (best, best_bin, nonconstant))
    if not whole_rows:
        return _pick_per_node(best, best_bin, nonconstant, cum)
    by_slot = [np.take_along_axis(a, features, axis=1) for a in (best, best_bin, nonconstant)]
    return _pick_per_node(*by_slot, cum, column_of_slot=features)


def total_weight(crit: Criterion, stats: np.ndarray) -> np.ndarray:
    """Total weight from split-search stats (class weights, or (w, wy))."""
    return crit.weight(stats) if crit.is_classification else stats[0]


def _cumsum_bins(hist: np.ndarray) -> np.ndarray:
    """Cumulative sums along the bin axis (1) of (stats, bins, pairs), in place.

    Each pair's sums run bin after bin whatever the number of pairs, so a node's
    result does not depend on the others; a loop over bins adds whole rows,
    several times faster than ``np.cumsum`` along a non-last axis.
    """
    if hist.shape[2] < 64:
        return np.cumsum(hist, axis=1, out=hist)
    for b in range(1, hist.shape[1]):
        hist[:, b] += hist[:, b - 1]
    return hist


def _pick_per_node(
    best: np.ndarray, best_bin: np.ndarray, nonconstant: np.ndarray, cum: np.ndarray,
    column_of_slot: np.ndarray | None = None,
) -> Splits:
    """The first best slot of each node; ``column_of_slot`` maps slots to ``cum``'s pair columns when they differ."""
    n_nodes, k = best.shape
    slot = np.fmax.reduce(best, axis=1)
    slot = (best == slot[:, None]).argmax(axis=1)  # first best feature, in draw order
    rows = np.arange(n_nodes)
    score = best[rows, slot]
    b = best_bin[rows, slot]
    pair = rows * k + (slot if column_of_slot is None else column_of_slot[rows, slot])
    # The right side starts at the first bin holding more than the left side.
    column = cum[:, pair]
    next_bin = np.argmax(column > column[b, rows], axis=0)
    return Splits(score, slot, b, next_bin, nonconstant.sum(axis=1))


def sparse_splits(batch: SplitBatch, features: np.ndarray, usable: np.ndarray, X: BinnedX, rules: SplitRules) -> Splits:
    """Best splits of small nodes: each pair's samples sorted by code, only real boundaries scored.

    A pair of a node of ``m`` samples costs ``O(m)`` here against ``n_bins`` cells
    in :func:`dense_splits`. Entries are laid out pair after pair (pair ``s * n_nodes
    + node`` for candidate slot ``s``) and sorted by (pair, code) with two stable
    radix sorts; the left side of the boundary after entry ``e`` is then the prefix
    sum of its pair up to ``e``.
    """
    crit, msl = rules.criterion, rules.min_samples_leaf
    n_nodes, k = features.shape
    n = batch.samples.shape[0]
    n_pairs = n_nodes * k
    starts = np.concatenate([[0], np.cumsum(batch.sizes)[:-1]])
    codes = X.node_codes(batch, features).T.reshape(-1)
    pair = (np.arange(k)[:, None] * n_nodes + batch.node_of).reshape(-1)
    # LSD radix sort: by code, then stably by pair (entries are already grouped by
    # pair, so the second pass only regroups them, now code-sorted inside).
    by_code = np.argsort(codes, kind="stable")
    order = by_code[np.argsort(_radix_key(pair[by_code], n_pairs), kind="stable")]
    codes = codes[order]
    entry = order % n
    stats = crit.entry_stats(batch.y[entry], batch.w[entry])
    pair_start = (np.arange(k)[:, None] * n + starts).reshape(-1)
    # Candidate boundaries: between two different codes of one pair.
    cand = np.flatnonzero((codes[1:] != codes[:-1]) & (pair[1:] == pair[:-1]))
    cpair = pair[cand]
    left_n = cand + 1 - pair_start[cpair]
    left = _segment_prefix(stats, pair_start, pair, cand, rules.exact)
    total = np.tile(batch.totals, (1, k))  # pairs are slot-major here
    right = total[:, cpair] - left
    with np.errstate(invalid="ignore", divide="ignore"):
        score = crit.proxy(left, right)
    if msl > 1:
        size = batch.sizes[cpair % n_nodes]
        score[(left_n < msl) | (left_n > size - msl)] = np.nan
    best = np.full(n_pairs, np.nan)
    best_pos = np.zeros(n_pairs, dtype=np.intp)
    nonconstant = np.zeros(n_pairs, dtype=bool)
    if cand.size:
        first = np.flatnonzero(np.concatenate([[True], cpair[1:] != cpair[:-1]]))
        has = cpair[first]
        nonconstant[has] = True
        top = np.fmax.reduceat(score, first)
        at_top = np.flatnonzero(score == np.repeat(top, np.diff(np.append(first, cand.size))))
        firsts = at_top[np.concatenate([[True], cpair[at_top[1:]] != cpair[at_top[:-1]]])]
        best[cpair[firsts]] = score[firsts]
        best_pos[cpair[firsts]] = cand[firsts]
    bin_ = codes[best_pos]
    next_bin = codes[np.minimum(best_pos + 1, codes.size - 1)]
    # Back to node-major (n_nodes, k) and the first best slot per node.
    best = best.reshape(k, n_nodes).T
    best[~usable] = np.nan
    nonconstant = nonconstant.reshape(k, n_nodes).T & usable
    slot_best = np.fmax.reduce(best, axis=1)
    slot = (best == slot_best[:, None]).argmax(axis=1)
    rows = np.arange(n_nodes)
    chosen = slot * n_nodes + rows
    return Splits(best[rows, slot], slot, bin_[chosen], next_bin[chosen], nonconstant.sum(axis=1))


def _radix_key(a: np.ndarray, bound: int) -> np.ndarray:
    """``a`` as the narrowest unsigned type holding ``bound``: numpy radix-sorts up to 16 bits."""
    if bound <= 1 << 8:
        return a.astype(np.uint8)
    if bound <= 1 << 16:
        return a.astype(np.uint16)
    return a


def _segment_prefix(stats: np.ndarray, pair_start: np.ndarray, pair: np.ndarray, at: np.ndarray, exact: bool) -> np.ndarray:
    """Inclusive sums of ``stats`` from each entry's pair start up to the entries ``at``.

    With exact (integer) sums one global running sum, minus its value before the
    pair, is exact. Otherwise that difference would carry rounding from earlier
    pairs, so a log-step scan (Hillis-Steele) sums within pairs only: entry ``e``'s
    sum then depends only on its pair's entries, whatever else is in the batch.
    """
    if exact:
        run = np.cumsum(stats, axis=1)
        before = pair_start[pair[at]] - 1
        base = np.where(before >= 0, run[:, np.maximum(before, 0)], 0.0)
        return run[:, at] - base
    offset = np.arange(stats.shape[1]) - pair_start[pair]
    run = stats.copy()
    step = 1
    longest = int(offset.max()) + 1 if offset.size else 0
    while step < longest:
        shifted = np.zeros_like(run)
        reach = offset[step:] >= step
        shifted[:, step:] = np.where(reach, run[:, :-step], 0.0)
        run += shifted
        step *= 2
    return run[:, at]
