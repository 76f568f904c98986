"""Compiled kernels of the tree builder and the predict walk (numba, ``nogil``, cached).

::

    grow(node)                 one compiled call grows a whole subtree, depth first
      stack of open nodes  ->  _split_node:
          record value, weight, impurity             (from the node's stats)
          leaf?  size, depth, purity
          feature draw from the node's key           (splitmix64 of its path)
          best split: small node -> sort its codes, scan boundaries
                      big node   -> histogram of its codes, one cumulative pass per feature
          min_impurity_decrease
          stable partition of the node's samples; both children's stats on the way
      children's histograms: the smaller one summed, the larger one = parent - smaller
    grow_best_first(root)      max_leaf_nodes: the open node of largest decrease next
    pack_nodes(trees)          16-byte node records, siblings side by side, leaves stepping to themselves;
                               each node's missing_go_to_left beside them
    walk_forest(X, forest)     row blocks x trees, batches of rows stepping down a tree together,
                               each row summed over trees in a fixed order

Every kernel takes plain arrays and scalars only. A node's split depends on its
samples (kept in ascending order by the stable partition), its key and, for a
node whose histogram came by subtraction, its parent's histogram, which travels
with a node handed to another task: so how a tree is cut into tasks, and where
they run, cannot change a bit of it.

Missing values: a feature whose training values hold NaN has one code more, its
last (``nan_code[f]``, -1 for a feature without NaN), above every value bin. A
split's scan then runs twice, as scikit-learn's splitter does: NaN right (which
includes the split on missingness alone, the NaN bin by itself on the right, at a
threshold of +inf), then NaN left; the side that scores best is kept in the
node's ``missing_go_to_left``. A node where the feature had no NaN sends NaN to
the child with more samples. Only a node that holds NaN codes of the feature
pays for the second scan; a NaN-free fit runs the same loops as before.

Multi-output: with ``k = ip[P_N_OUTPUTS]`` outputs, ``yc``/``yr`` hold each sample's
``k`` targets side by side (``y[s * k + j]``), a class code already offset to its
output's classes. A node's stats are then each output's class weights side by side
(each output's sum to the node's weight), or (w, wy_1..k, wyy_1..k); histogram planes
(count, those class weights) or (count, w, wy_1..k). Impurities are the mean over
outputs and split scores their sum, as scikit-learn's. Splits of several outputs
are scored by the loops for options (:func:`_scan_checked`), so a one-output tree
runs the loops it always ran.

Arrays of node records: ``ints`` (n, 5) holds left, right, feature, n_node_samples,
missing_go_to_left;
``floats`` (n, 3 + width) holds threshold, weighted_n_node_samples, impurity,
then the value row: each output's class fractions side by side, or each output's
mean. Children ids are local to the table, and a table grown depth first is in
preorder (left subtree before right), the order a Tree keeps.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
from numba import njit
from numpy.typing import DTypeLike

__all__ = [
    "ENTROPY",
    "GINI",
    "POISSON",
    "P_MAX_DEPTH",
    "SQUARED_ERROR",
    "child_key",
    "grow",
    "grow_best_first",
    "node_depths",
    "node_stats",
    "pack_nodes",
    "preorder",
    "readonly",
    "root_key",
    "split_node",
    "walk_forest",
]

# The regression criteria are those from SQUARED_ERROR up.
GINI, ENTROPY, SQUARED_ERROR, POISSON = 0, 1, 2, 3

# Layout of the int64 parameter array ``ip`` the kernels take.
P_N_CLASSES, P_MAX_DEPTH, P_MIN_SPLIT, P_MIN_LEAF, P_MAX_FEATURES, P_CRITERION, P_USE_SUB, P_SMALL, P_SUB_MIN = range(9)
# ...P_RANDOM_SPLIT: extra trees' splitter, one random cut per candidate feature.
P_RANDOM_SPLIT = 9
# Where in ``ip`` the per-feature monotonic constraints start (0: none). They bound the
# regression value, or the first class's fraction (scikit-learn's signs, flipped).
P_MONOTONIC = 10
# ...the number of outputs (multi-output y: see "Multi-output" above).
P_N_OUTPUTS = 11
N_INT_PARAMS = 12
# ...and of the float64 one ``fp``.
F_MIN_DECREASE, F_ROOT_WEIGHT, F_MIN_WEIGHT_LEAF = range(3)

# Kernels that allocate nothing are compiled without numba's reference counting:
# with it, the atomic increments and decrements on every array a per-node function
# takes or views cost about a third of a small forest's fit.
no_refcount: Any = partial(njit, nogil=True, cache=True, _nrt=False)

EPSILON = float(np.finfo(np.float64).eps)
LEAF = -1
UNDEFINED = -2

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S32 = np.uint64(32)
_TWO = np.uint64(2)
# Salts the node key for the extra-trees cut draws, a stream apart from the feature draws.
_CUT_SALT = np.uint64(0x5EED0C07C0DE5A17)


def readonly(a: np.ndarray, dtype: DTypeLike) -> np.ndarray:
    """``a`` as a read-only C-order array of ``dtype`` (a view when it already is one).

    Numba compiles a kernel once per argument type, and read-only is part of the
    type: every caller passes its inputs read-only, so each kernel is compiled
    (and cached) once, whether the arrays come from shared memory or not.
    """
    a = np.ascontiguousarray(a, dtype=dtype)
    if a.flags.writeable:
        a = a.view()
        a.flags.writeable = False
    return a


# --------------------------------------------------------------------------- keys


@njit(nogil=True, cache=True, inline="always")
def _mix(z: np.uint64) -> np.uint64:
    """splitmix64's finaliser (wrapping uint64 arithmetic)."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit(nogil=True, cache=True)
def child_key(key: np.uint64, side: int) -> np.uint64:
    """Key of a node's child: 0 left, 1 right; a hash of the path from the root."""
    return _mix((key * _TWO + np.uint64(side + 1)) * _GOLDEN)


def root_key(seed: int) -> np.uint64:
    """The root's key for a tree ``seed`` (any int)."""
    return np.uint64(_mix(np.uint64((int(seed) + int(_GOLDEN)) & 0xFFFFFFFFFFFFFFFF)))


# --------------------------------------------------------------------------- node stats


@njit(nogil=True, cache=True)
def node_stats(idx, yc, yr, w, n_stats, regression, n_outputs):
    """Stats of the samples ``idx`` summed in order: class weights, or (w, wy_1..k, wyy_1..k)."""
    out = np.zeros(n_stats)
    for i in range(idx.shape[0]):
        s = idx[i]
        if regression:
            out[0] += w[s]
            for k in range(n_outputs):
                y = yr[s * n_outputs + k]
                wy = w[s] * y
                out[1 + k] += wy
                out[1 + n_outputs + k] += wy * y
        else:
            for k in range(n_outputs):
                out[yc[s * n_outputs + k]] += w[s]
    return out


@no_refcount
def _weight(stats, regression, n_out):
    """A node's weight: every output's class weights sum to it."""
    if regression:
        return stats[0]
    total = 0.0
    for k in range(stats.shape[0]):
        total += stats[k]
    # One output divides by nothing: a division per call is a few percent of a small tree's fit.
    return total if n_out == 1 else total / n_out


@no_refcount
def _impurity(stats, crit, n_out):
    """A node's impurity from its stats, the mean over outputs (Poisson's needs its samples:
    :func:`_poisson_impurity`)."""
    if crit >= SQUARED_ERROR:
        if n_out == 1:
            mean = stats[1] / stats[0]
            return max(stats[2] / stats[0] - mean * mean, 0.0)
        var = 0.0
        for k in range(n_out):
            mean = stats[1 + k] / stats[0]
            var += max(stats[1 + n_out + k] / stats[0] - mean * mean, 0.0)
        return var / n_out
    total = 0.0
    sq = 0.0
    for k in range(stats.shape[0]):
        total += stats[k]
        sq += stats[k] * stats[k]
    if n_out > 1:
        total /= n_out
        sq /= n_out
    if crit == GINI:
        return 1.0 - sq / (total * total)
    h = 0.0
    for k in range(stats.shape[0]):
        if stats[k] > 0:
            p = stats[k] / total
            h -= p * np.log2(p)
    return h if n_out == 1 else h / n_out


@no_refcount
def _poisson_impurity(idx, start, end, yr, w, stats, n_out):
    """Half the mean Poisson deviance of the samples ``idx[start:end]`` (scikit-learn's ``poisson_loss``),
    the mean over outputs.

    Infinite when an output's targets sum to (about) zero: its mean, the leaf's
    prediction, must be positive.
    """
    total = 0.0
    for k in range(n_out):
        if stats[1 + k] <= EPSILON:
            return np.inf
        mean = stats[1 + k] / stats[0]
        loss = 0.0
        for i in range(start, end):
            s = idx[i]
            y = yr[s * n_out + k]
            if y > 0:
                loss += w[s] * y * np.log(y / mean)
        total += loss / stats[0]
    return total / n_out


@njit(nogil=True, cache=True, inline="always")
def _children_impurity(idx, start, mid, end, yr, w, lstats, rstats, crit, n_out):
    """The impurities of a split node's two children, the left one's samples ``idx[start:mid]``."""
    if crit == POISSON:
        return (
            _poisson_impurity(idx, start, mid, yr, w, lstats, n_out),
            _poisson_impurity(idx, mid, end, yr, w, rstats, n_out),
        )
    return _impurity(lstats, crit, n_out), _impurity(rstats, crit, n_out)


@njit(nogil=True, cache=True, inline="always")
def _xlogx(x):
    return x * np.log(x) if x > 0 else 0.0


@njit(nogil=True, cache=True, inline="always")
def _class_sums(left, total, gini):
    """Both sides' summed class weights, and their sums of squares (``gini``) or of ``x log x``."""
    wl = 0.0
    wr = 0.0
    sl = 0.0
    sr = 0.0
    for k in range(left.shape[0]):
        lk = left[k]
        rk = total[k] - lk
        wl += lk
        wr += rk
        if gini:
            sl += lk * lk
            sr += rk * rk
        else:
            sl += _xlogx(lk)
            sr += _xlogx(rk)
    return wl, wr, sl, sr


@njit(nogil=True, cache=True, inline="always")
def _proxy(left, total, crit):
    """Score of a split as a fraction ``(num, den)``, ``den > 0``; higher is better.

    ``left`` holds the split-search sums of the left side (class weights, or (w,
    wy)); the right side is ``total - left``. Orders candidates as the impurity
    decrease does (scikit-learn's ``proxy_impurity_improvement``). Scores are
    compared as fractions (:func:`_better`), so a candidate costs no division.
    """
    if crit == SQUARED_ERROR:
        rw = total[0] - left[0]
        ry = total[1] - left[1]
        # sum_l**2 / w_l + sum_r**2 / w_r
        return left[1] * left[1] * rw + ry * ry * left[0], left[0] * rw
    gini = crit == GINI
    wl, wr, sl, sr = _class_sums(left, total, gini)
    if gini:
        # sum_k l_k**2 / w_l + sum_k r_k**2 / w_r
        return sl * wr + sr * wl, wl * wr
    # -(w_l H_l + w_r H_r), in nats
    return sl + sr - _xlogx(wl) - _xlogx(wr), 1.0


@njit(nogil=True, cache=True, inline="always")
def _better(num, den, best_num, best_den):
    """Whether ``num / den > best_num / best_den`` (denominators positive; nan never is)."""
    return num * best_den > best_num * den


@njit(nogil=True, cache=True, inline="always")
def _candidate(left, total, crit, n_left, m, msl, best, best_den):
    """Score the boundary leaving ``n_left`` of ``m`` samples on the left: (better, best, best_den)."""
    if n_left < msl or m - n_left < msl:
        return False, best, best_den
    num, den = _proxy(left, total, crit)
    if _better(num, den, best, best_den):
        return True, num, den
    return False, best, best_den


@njit(nogil=True, cache=True, inline="always")
def _poisson_proxy(left, total):
    """Poisson's score of a split, ``sum_l log(mean_l) + sum_r log(mean_r)`` (over 1), as :func:`_proxy` scores.

    A side whose targets sum to about 0 cannot predict its mean: -inf, never chosen.
    """
    rw = total[0] - left[0]
    ry = total[1] - left[1]
    if left[1] <= EPSILON or ry <= EPSILON:
        return -np.inf, 1.0
    return left[1] * np.log(left[1] / left[0]) + ry * np.log(ry / rw), 1.0


@njit(nogil=True, cache=True, inline="always")
def _proxy_multi(left, total, crit, n_out):
    """:func:`_proxy` for ``n_out`` outputs: their scores summed (scikit-learn's multi-output
    ``proxy_impurity_improvement``, up to a constant factor).

    Regression sums are (w, wy_1..k); class weights are each output's side by side, so
    every output's sum to the side's weight.
    """
    if crit == SQUARED_ERROR:
        lw = left[0]
        rw = total[0] - left[0]
        num = 0.0
        for k in range(1, 1 + n_out):
            ry = total[k] - left[k]
            num += left[k] * left[k] * rw + ry * ry * lw
        return num, lw * rw
    gini = crit == GINI
    wl, wr, sl, sr = _class_sums(left, total, gini)
    wl /= n_out
    wr /= n_out
    if gini:
        return sl * wr + sr * wl, wl * wr
    return sl + sr - n_out * (_xlogx(wl) + _xlogx(wr)), 1.0


@njit(nogil=True, cache=True, inline="always")
def _poisson_proxy_multi(left, total, n_out):
    """:func:`_poisson_proxy` summed over ``n_out`` outputs; -inf when a side of any output sums to about 0."""
    rw = total[0] - left[0]
    score = 0.0
    for k in range(1, 1 + n_out):
        ry = total[k] - left[k]
        if left[k] <= EPSILON or ry <= EPSILON:
            return -np.inf, 1.0
        score += left[k] * np.log(left[k] / left[0]) + ry * np.log(ry / rw)
    return score, 1.0


@njit(nogil=True, cache=True, inline="always")
def _admissible(left, total, crit, mwl, cst, lo, hi, n_out):
    """Whether both sides of a boundary weigh at least ``mwl`` (``min_weight_leaf``) and,
    on a feature of monotonic constraint ``cst``, keep their values within the node's
    bounds ``[lo, hi]`` and in the constraint's order (scikit-learn's ``check_monotonicity``)."""
    if crit >= SQUARED_ERROR:
        wl = left[0]
        wr = total[0] - left[0]
    else:
        wl = 0.0
        wr = 0.0
        for k in range(left.shape[0]):
            wl += left[k]
            wr += total[k] - left[k]
        wl /= n_out
        wr /= n_out
    if wl < mwl or wr < mwl:
        return False
    if cst == 0:
        return True
    # The regression mean, or the first class's fraction.
    p = 1 if crit >= SQUARED_ERROR else 0
    vl = left[p] / wl
    vr = (total[p] - left[p]) / wr
    return vl >= lo and vr >= lo and vl <= hi and vr <= hi and (vl - vr) * cst <= 0


@njit(nogil=True, cache=True, inline="always")
def _candidate_checked(left, total, crit, n_left, m, msl, best, best_den, mwl, cst, lo, hi, n_out):
    """:func:`_candidate` for what only some trees ask: Poisson's score, a minimum weight, a monotonic
    constraint, several outputs (``n_out``).

    A loop of its own, so that the common one keeps none of their branches.
    """
    if n_left < msl or m - n_left < msl:
        return False, best, best_den
    if not _admissible(left, total, crit, mwl, cst, lo, hi, n_out):
        return False, best, best_den
    if n_out > 1:
        if crit == POISSON:
            num, den = _poisson_proxy_multi(left, total, n_out)
        else:
            num, den = _proxy_multi(left, total, crit, n_out)
    elif crit == POISSON:
        num, den = _poisson_proxy(left, total)
    else:
        num, den = _proxy(left, total, crit)
    if _better(num, den, best, best_den):
        return True, num, den
    return False, best, best_den


# --------------------------------------------------------------------------- histograms


@no_refcount
def _histogram(hist, Xb, idx, start, end, feats, n_feats, yc, yr, w, offs, nbins, regression, n_out):
    """Sum the samples ``idx[start:end]`` into ``hist`` for ``feats[:n_feats]``.

    ``hist[offs[f] + code]`` holds (count, class weights...) or (count, w, wy_1..k). The
    features' rows are cleared first; samples are added in their order.
    """
    for j in range(n_feats):
        f = feats[j]
        hist[offs[f] : offs[f] + nbins[f]] = 0.0
    if n_out > 1:
        _histogram_outputs(hist, Xb, idx, start, end, feats, n_feats, yc, yr, w, offs, regression, n_out)
        return
    for i in range(start, end):
        s = idx[i]
        ws = w[s]
        if regression:
            wy = ws * yr[s]
            for j in range(n_feats):
                f = feats[j]
                b = offs[f] + Xb[s, f]
                hist[b, 0] += 1.0
                hist[b, 1] += ws
                hist[b, 2] += wy
        else:
            c = 1 + yc[s]
            for j in range(n_feats):
                f = feats[j]
                b = offs[f] + Xb[s, f]
                hist[b, 0] += 1.0
                hist[b, c] += ws


@no_refcount
def _histogram_outputs(hist, Xb, idx, start, end, feats, n_feats, yc, yr, w, offs, regression, n_out):
    """:func:`_histogram`'s sums for several outputs (a loop of its own: the one-output loop keeps its shape)."""
    for i in range(start, end):
        s = idx[i]
        ws = w[s]
        for j in range(n_feats):
            f = feats[j]
            b = offs[f] + Xb[s, f]
            hist[b, 0] += 1.0
            if regression:
                hist[b, 1] += ws
                for k in range(n_out):
                    hist[b, 2 + k] += ws * yr[s * n_out + k]
            else:
                for k in range(n_out):
                    hist[b, 1 + yc[s * n_out + k]] += ws


@no_refcount
def _scan_histogram(hist, f, offs, nbins, nan, m, total, msl, crit, left):
    """Best boundary of feature ``f`` in ``hist``: (score num, den, bin, next_bin, non-constant, NaN side).

    One cumulative pass over the feature's bins; only boundaries right after a
    non-empty bin are scored (the first best, so ``bin`` is the left side's last
    code), and counts decide which sides are empty or too small. The NaN bin
    (``nan``, the feature's last code, or -1) is then on the right; when it holds
    samples, a second pass scores the value bins with it on the left. NaN side:
    -1 when the node holds no NaN of ``f``, else 0 right, 1 left.
    """
    left[:] = 0.0
    n_left = 0.0
    best = -np.inf
    best_den = 1.0
    best_bin = -1
    nonempty = 0
    o = offs[f]
    P = hist.shape[1]
    for b in range(nbins[f]):
        c = hist[o + b, 0]
        if c == 0.0:
            continue
        nonempty += 1
        n_left += c
        if n_left >= m:
            break
        for p in range(1, P):
            left[p - 1] += hist[o + b, p]
        better, best, best_den = _candidate(left, total, crit, n_left, m, msl, best, best_den)
        if better:
            best_bin = b
    side = -1
    if nan >= 0 and hist[o + nan, 0] != 0.0:
        side = 0
        better, best, best_den, b = _scan_histogram_nan_left(
            hist, o, nan, m, total, msl, crit, left, best, best_den, False, 0.0, 0, -np.inf, np.inf, 1
        )
        if better:
            best_bin = b
            side = 1
    next_bin = -1
    if best_bin >= 0:
        for b in range(best_bin + 1, nbins[f]):
            if hist[o + b, 0] != 0.0:
                next_bin = b
                break
    return best, best_den, best_bin, next_bin, nonempty >= 2, side


@no_refcount
def _scan_histogram_nan_left(hist, o, nan, m, total, msl, crit, left, best, best_den, extra, mwl, cst, lo, hi, n_out):
    """:func:`_scan_histogram`'s second pass, NaN left: (better found, best, best_den, bin).

    The missing samples first, then the value bins; the boundary leaving only NaN
    on the left is the first pass's last one (NaN alone on the right), not scored
    again. Out of line: a NaN-free scan's loop stays as small as it was. With
    ``extra``, candidates are scored by :func:`_candidate_checked` (``mwl``, ``cst``
    within ``[lo, hi]``, ``n_out`` outputs), as :func:`_scan_checked` scores them.
    """
    P = hist.shape[1]
    found = False
    best_bin = -1
    n_left = hist[o + nan, 0]
    for p in range(1, P):
        left[p - 1] = hist[o + nan, p]
    for b in range(nan):
        c = hist[o + b, 0]
        if c == 0.0:
            continue
        n_left += c
        if n_left >= m:
            break
        for p in range(1, P):
            left[p - 1] += hist[o + b, p]
        if extra:
            better, best, best_den = _candidate_checked(
                left, total, crit, n_left, m, msl, best, best_den, mwl, cst, lo, hi, n_out
            )
        else:
            better, best, best_den = _candidate(left, total, crit, n_left, m, msl, best, best_den)
        if better:
            best_bin = b
            found = True
    return found, best, best_den, best_bin


@no_refcount
def _gather_small(idx, start, end, yc, yr, w, regression, lw, lc, n_out):
    """A small node's weights (and w*y, or classes) in node order: the scans read them once per feature.

    Several outputs: ``lw[i]`` holds (w, wy_1..k), ``lc[i * n_out + k]`` output k's class.
    """
    if n_out > 1:
        for i in range(end - start):
            s = idx[start + i]
            lw[i, 0] = w[s]
            for k in range(n_out):
                if regression:
                    lw[i, 1 + k] = w[s] * yr[s * n_out + k]
                else:
                    lc[i * n_out + k] = yc[s * n_out + k]
        return
    for i in range(end - start):
        s = idx[start + i]
        lw[i, 0] = w[s]
        if regression:
            lw[i, 1] = w[s] * yr[s]
        else:
            lc[i] = yc[s]


@njit(nogil=True, cache=True, inline="always")
def _add_gathered(left, lw, lc, li, regression, n_out):
    """Add the gathered sample ``li`` (:func:`_gather_small`) to the sums ``left``."""
    if regression:
        for p in range(1 + n_out):
            left[p] += lw[li, p]
    else:
        for k in range(n_out):
            left[lc[li * n_out + k]] += lw[li, 0]


@njit(nogil=True, cache=True, inline="always")
def _scan_sorted(Xb, idx, start, end, f, nan, lw, lc, total, msl, crit, regression, keys, spare, left):
    """Best boundary of feature ``f`` for a small node: its codes sorted, every change scored.

    Sort keys pack ``code << 8 | position`` (a small node has under 256 samples),
    so plain integers are sorted: by insertion when very few, else by radix. The
    NaN code (``nan``, or -1), the largest, sorts last: the first scan has NaN on
    the right; a second one, when the node holds NaN, puts them on the left
    (NaN side as :func:`_scan_histogram`'s).
    """
    m = end - start
    for i in range(m):
        keys[i] = (np.int32(Xb[idx[start + i], f]) << 8) | i
    if m <= 16:
        for i in range(1, m):
            k = keys[i]
            j = i - 1
            while j >= 0 and keys[j] > k:
                keys[j + 1] = keys[j]
                j -= 1
            keys[j + 1] = k
    else:
        _radix_sort(keys, spare, m)
    if (keys[0] >> 8) == (keys[m - 1] >> 8):
        return -np.inf, 1.0, -1, -1, False, -1
    left[:] = 0.0
    best = -np.inf
    best_den = 1.0
    best_bin = -1
    next_bin = -1
    for i in range(m - 1):
        li = keys[i] & 255
        if regression:
            left[0] += lw[li, 0]
            left[1] += lw[li, 1]
        else:
            left[lc[li]] += lw[li, 0]
        c = keys[i] >> 8
        nc = keys[i + 1] >> 8
        if c == nc:
            continue
        better, best, best_den = _candidate(left, total, crit, i + 1, m, msl, best, best_den)
        if better:
            best_bin = c
            next_bin = nc
    side = -1
    if nan >= 0 and (keys[m - 1] >> 8) == nan:
        side = 0
        better, best, best_den, c, nc = _scan_sorted_nan_left(
            keys, m, nan, lw, lc, total, msl, crit, regression, left, best, best_den, False, 0.0, 0, -np.inf, np.inf, 1
        )
        if better:
            best_bin = c
            next_bin = nc
            side = 1
    return best, best_den, best_bin, next_bin, True, side


@no_refcount
def _scan_sorted_nan_left(
    keys, m, nan, lw, lc, total, msl, crit, regression, left, best, best_den, extra, mwl, cst, lo, hi, n_out
):
    """:func:`_scan_sorted`'s second pass, NaN left: (better found, best, best_den, bin, next_bin).

    ``keys`` sorted, the NaN codes last. Out of line, as :func:`_scan_histogram_nan_left`.
    """
    found = False
    best_bin = -1
    next_bin = -1
    m_values = m
    while m_values > 0 and (keys[m_values - 1] >> 8) == nan:
        m_values -= 1
    left[:] = 0.0
    for i in range(m_values, m):
        _add_gathered(left, lw, lc, keys[i] & 255, regression, n_out)
    for i in range(m_values - 1):
        _add_gathered(left, lw, lc, keys[i] & 255, regression, n_out)
        c = keys[i] >> 8
        nc = keys[i + 1] >> 8
        if c == nc:
            continue
        n_left = m - m_values + i + 1
        if extra:
            better, best, best_den = _candidate_checked(
                left, total, crit, n_left, m, msl, best, best_den, mwl, cst, lo, hi, n_out
            )
        else:
            better, best, best_den = _candidate(left, total, crit, n_left, m, msl, best, best_den)
        if better:
            best_bin = c
            next_bin = nc
            found = True
    return found, best, best_den, best_bin, next_bin


@no_refcount
def _radix_sort(keys, spare, m):
    """Sort ``keys[:m]`` (``code << 8 | position``) by code: two stable passes of 16 buckets.

    The 16 counters sit just past the keys (``keys`` has room: see :func:`_setup`).
    """
    counts = keys[m : m + 16]
    for shift in (8, 12):
        counts[:] = 0
        for i in range(m):
            counts[(keys[i] >> shift) & 15] += 1
        at = 0
        for d in range(16):
            c = counts[d]
            counts[d] = at
            at += c
        for i in range(m):
            d = (keys[i] >> shift) & 15
            spare[counts[d]] = keys[i]
            counts[d] += 1
        for i in range(m):
            keys[i] = spare[i]


@no_refcount
def _scan_checked(
    Xb,
    idx,
    start,
    end,
    f,
    nan,
    lw,
    lc,
    total,
    msl,
    crit,
    regression,
    keys,
    left,
    small,
    hist,
    offs,
    nbins,
    mwl,
    cst,
    lo,
    hi,
    n_out,
):
    """:func:`_scan_sorted` or :func:`_scan_histogram` scoring by :func:`_candidate_checked`: Poisson's
    score, ``min_weight_leaf`` ``mwl``, monotonic constraint ``cst`` within bounds ``[lo, hi]``,
    ``n_out`` outputs.
    The NaN code ``nan`` (or -1) as there: a second pass, NaN left, when the node holds NaN.

    Loops of their own, so that the common ones keep none of these branches (which cost
    a fully grown regression tree about 40% of its fit).
    """
    m = end - start
    left[:] = 0.0
    best = -np.inf
    best_den = 1.0
    best_bin = -1
    next_bin = -1
    if small:
        spare = keys[keys.shape[0] // 2 :]
        for i in range(m):
            keys[i] = (np.int32(Xb[idx[start + i], f]) << 8) | i
        _radix_sort(keys, spare, m)
        if (keys[0] >> 8) == (keys[m - 1] >> 8):
            return -np.inf, 1.0, -1, -1, False, -1
        for i in range(m - 1):
            _add_gathered(left, lw, lc, keys[i] & 255, regression, n_out)
            c = keys[i] >> 8
            nc = keys[i + 1] >> 8
            if c == nc:
                continue
            better, best, best_den = _candidate_checked(
                left, total, crit, i + 1, m, msl, best, best_den, mwl, cst, lo, hi, n_out
            )
            if better:
                best_bin = c
                next_bin = nc
        side = -1
        if nan >= 0 and (keys[m - 1] >> 8) == nan:
            side = 0
            better, best, best_den, c, nc = _scan_sorted_nan_left(
                keys, m, nan, lw, lc, total, msl, crit, regression, left, best, best_den, True, mwl, cst, lo, hi, n_out
            )
            if better:
                best_bin = c
                next_bin = nc
                side = 1
        return best, best_den, best_bin, next_bin, True, side
    n_left = 0.0
    nonempty = 0
    o = offs[f]
    P = hist.shape[1]
    for b in range(nbins[f]):
        c = hist[o + b, 0]
        if c == 0.0:
            continue
        nonempty += 1
        n_left += c
        if n_left >= m:
            break
        for p in range(1, P):
            left[p - 1] += hist[o + b, p]
        better, best, best_den = _candidate_checked(
            left, total, crit, n_left, m, msl, best, best_den, mwl, cst, lo, hi, n_out
        )
        if better:
            best_bin = b
    side = -1
    if nan >= 0 and hist[o + nan, 0] != 0.0:
        side = 0
        better, best, best_den, b = _scan_histogram_nan_left(
            hist, o, nan, m, total, msl, crit, left, best, best_den, True, mwl, cst, lo, hi, n_out
        )
        if better:
            best_bin = b
            side = 1
    if best_bin >= 0:
        for b in range(best_bin + 1, nbins[f]):
            if hist[o + b, 0] != 0.0:
                next_bin = b
                break
    return best, best_den, best_bin, next_bin, nonempty >= 2, side


@njit(nogil=True, cache=True, inline="always")
def _random_cut(lo, hi, draw):
    """Extra trees' cut between a node's codes ``lo < hi``, the last code left of it, drawn
    uniformly among the node's codes; and where in the gap between the two sides' values
    its threshold lies (uniform in [0, 1): see :func:`_split_node`)."""
    cut = lo + np.int64(((draw >> _S32) * np.uint64(hi - lo)) >> _S32)
    return cut, np.float64(_mix(draw ^ _CUT_SALT) >> np.uint64(11)) * 1.1102230246251565e-16


@njit(nogil=True, cache=True, inline="always")
def _add_row(left, s, yc, yr, w, regression, n_out):
    """Add sample ``s`` to the split-search sums ``left``: its class weights, or (w, wy_1..k)."""
    if regression:
        left[0] += w[s]
        for k in range(n_out):
            left[1 + k] += w[s] * yr[s * n_out + k]
    else:
        for k in range(n_out):
            left[yc[s * n_out + k]] += w[s]


@njit(nogil=True, cache=True, inline="always")
def _random_cut_sums(Xb, idx, start, end, f, nan, cut, nan_left, lo, hi, yc, yr, w, regression, left, n_out):
    """:func:`_scan_random`'s pass over the node's samples: the left side's sums, its count,
    the left side's last code and the right side's first."""
    left[:] = 0.0
    n_left = 0
    b = lo
    nb = hi if lo < hi else nan
    for i in range(start, end):
        s = idx[i]
        c = np.int64(Xb[s, f])
        if c <= cut or (nan_left and c == nan):
            n_left += 1
            if c > b and c <= cut:
                b = c
            _add_row(left, s, yc, yr, w, regression, n_out)
        elif c < nb and c != nan:
            nb = c
    return n_left, b, nb


@njit(nogil=True, cache=True, inline="always")
def _scan_random(
    Xb, idx, start, end, f, nan, yc, yr, w, regression, total, msl, crit, left, state, extra, mwl, cst, lower, upper,
    n_out,
):  # fmt: skip
    """Extra trees' cut of feature ``f``: (score num, den, bin, next_bin, non-constant, NaN side, threshold).

    The cut is drawn uniformly among the codes from the node's lowest to below its
    highest (scikit-learn draws a threshold uniformly within the node's range, on
    values; here on bins, :func:`_random_cut`), and scored like any boundary. Two passes over the node's
    samples: their range, then the left side's sums. The NaN code (``nan``, or -1)
    is outside the range; a node holding NaN sends them to a side drawn with the
    cut, as scikit-learn's random splitter does, or, when its values are all one
    code, splits on missingness alone. NaN side as :func:`_scan_histogram`'s.
    """
    lo = np.int64(255)
    hi = np.int64(0)
    n_nan = 0
    for i in range(start, end):
        c = np.int64(Xb[idx[i], f])
        if c == nan:
            n_nan += 1
            continue
        if c < lo:
            lo = c
        if c > hi:
            hi = c
    if n_nan == end - start or (lo >= hi and n_nan == 0):
        return -np.inf, 1.0, -1, -1, False, -1, np.nan
    draw = _mix(state)
    t = 0.0
    if lo >= hi:  # one value code, and NaN: split on missingness
        cut = np.int64(lo)
        nan_left = False
    else:
        cut, t = _random_cut(lo, hi, draw)
        nan_left = n_nan > 0 and (draw & np.uint64(1)) == 1
    if n_out == 1:  # a constant 1 in the loop: the one-output loop is the plain one
        n_left, b, nb = _random_cut_sums(
            Xb, idx, start, end, f, nan, cut, nan_left, lo, hi, yc, yr, w, regression, left, 1
        )
    else:
        n_left, b, nb = _random_cut_sums(
            Xb, idx, start, end, f, nan, cut, nan_left, lo, hi, yc, yr, w, regression, left, n_out
        )
    if extra:
        _, score, den = _candidate_checked(
            left, total, crit, n_left, end - start, msl, -np.inf, 1.0, mwl, cst, lower, upper, n_out
        )
    else:
        _, score, den = _candidate(left, total, crit, n_left, end - start, msl, -np.inf, 1.0)
    return score, den, b, nb, True, 1 if nan_left else (0 if n_nan else -1), t


@no_refcount
def _scan_histogram_random(
    hist, f, offs, nbins, nan, m, total, msl, crit, left, state, extra, mwl, cst, lower, upper, n_out
):
    """:func:`_scan_random` on a node's histogram: the same draw, the left side summed over bins."""
    o = offs[f]
    lo = -1
    hi = -1
    for b in range(nbins[f] if nan < 0 else nan):
        if hist[o + b, 0] != 0.0:
            if lo < 0:
                lo = b
            hi = b
    n_nan = hist[o + nan, 0] if nan >= 0 else 0.0
    if lo < 0 or (lo >= hi and n_nan == 0.0):
        return -np.inf, 1.0, -1, -1, False, -1, np.nan
    draw = _mix(state)
    t = 0.0
    if lo >= hi:  # one value code, and NaN: split on missingness
        cut = np.int64(lo)
        nan_left = False
    else:
        cut, t = _random_cut(np.int64(lo), np.int64(hi), draw)
        nan_left = n_nan > 0.0 and (draw & np.uint64(1)) == 1
    left[:] = 0.0
    n_left = 0.0
    last = lo
    P = hist.shape[1]
    for b in range(lo, cut + 1):
        c = hist[o + b, 0]
        if c == 0.0:
            continue
        last = b
        n_left += c
        for p in range(1, P):
            left[p - 1] += hist[o + b, p]
    if nan_left:
        n_left += n_nan
        for p in range(1, P):
            left[p - 1] += hist[o + nan, p]
    nb = cut + 1
    while hist[o + nb, 0] == 0.0:
        nb += 1
    if extra:
        _, score, den = _candidate_checked(
            left, total, crit, n_left, m, msl, -np.inf, 1.0, mwl, cst, lower, upper, n_out
        )
    else:
        _, score, den = _candidate(left, total, crit, n_left, m, msl, -np.inf, 1.0)
    return score, den, last, nb, True, 1 if nan_left else (0 if n_nan > 0.0 else -1), t


# --------------------------------------------------------------------------- one node


@njit(nogil=True, cache=True, inline="always")
def _record(ints, floats, row, stats, m, crit, regression, n_out):
    """Write node ``row`` as a leaf; return its (weight, impurity)."""
    weight = _weight(stats, regression, n_out)
    impurity = _impurity(stats, crit, n_out)
    ints[row, 0] = LEAF
    ints[row, 1] = LEAF
    ints[row, 2] = UNDEFINED
    ints[row, 3] = m
    ints[row, 4] = 0
    floats[row, 0] = float(UNDEFINED)
    floats[row, 1] = weight
    floats[row, 2] = impurity
    if regression:
        floats[row, 3] = stats[1] / stats[0]
        for k in range(1, n_out):
            floats[row, 3 + k] = stats[1 + k] / stats[0]
    else:
        for k in range(stats.shape[0]):
            floats[row, 3 + k] = stats[k] / weight
    return weight, impurity


@njit(nogil=True, cache=True, inline="always")
def _find_split(
    Xb,
    yc,
    yr,
    w,
    nbins,
    offs,
    nan_code,
    ip,
    idx,
    start,
    end,
    key,
    stats,
    hist,
    has_hist,
    use_sub,
    scratch_hist,
    perm,
    feats,
    keys,
    lw,
    lc,
    left,
    mwl,
    lo,
    hi,
):
    """Best split of a node among its drawn features: (feature, bin, next_bin, NaN side, where in the gap),
    feature -1 if none; the last is where extra trees' threshold lies (:func:`_random_cut`).

    Features are drawn without replacement (Fisher-Yates on a splitmix64 stream
    seeded by the node's key) until ``max_features`` non-constant ones were
    evaluated or none are left, as scikit-learn's splitter does. A node of at
    least ``small`` samples is searched on histograms: its own (``has_hist``) when
    the tree subtracts histograms, else those of each batch of drawn features.
    Extra trees (``P_RANDOM_SPLIT``) score one random cut per feature instead, on
    the node's own histogram when it has one, else read from its samples (a
    histogram summed for one cut would cost more than the cut).
    """
    F = Xb.shape[1]
    m = end - start
    crit = ip[P_CRITERION]
    regression = crit >= SQUARED_ERROR
    msl = ip[P_MIN_LEAF]
    mtry = ip[P_MAX_FEATURES]
    mono = ip[P_MONOTONIC]
    n_out = ip[P_N_OUTPUTS]
    # What only some trees ask is scored in loops of its own (:func:`_scan_checked`).
    extra = mwl > 0.0 or mono > 0 or crit == POISSON or n_out > 1
    random_split = ip[P_RANDOM_SPLIT] != 0
    small = m < ip[P_SMALL]
    # The split-search totals: class weights, or (w, wy_1..k).
    total = stats[: 1 + n_out] if regression else stats
    for f in range(F):
        perm[f] = f
    if small and not random_split:
        _gather_small(idx, start, end, yc, yr, w, regression, lw, lc, n_out)
    state = key
    cut_state = key ^ _CUT_SALT
    drawn = 0
    found = 0
    best = -np.inf
    best_den = 1.0
    best_f = -1
    best_bin = -1
    best_next = -1
    best_side = -1
    best_t = np.nan
    t = np.nan
    while found < mtry and drawn < F:
        # Draw the next batch: as many features as non-constant ones are still wanted.
        want = min(mtry - found, F - drawn)
        for j in range(drawn, drawn + want):
            state = state + _GOLDEN
            # Lemire's multiply-shift: a draw in [0, F - j) without a division.
            r = j + np.int64(((_mix(state) >> _S32) * np.uint64(F - j)) >> _S32)
            swap = perm[j]
            perm[j] = perm[r]
            perm[r] = swap
            feats[j - drawn] = perm[j]
        batch_hist = False
        if not small and not random_split and not (use_sub and has_hist):
            _histogram(scratch_hist, Xb, idx, start, end, feats, want, yc, yr, w, offs, nbins, regression, n_out)
            batch_hist = True
        for j in range(want):
            f = feats[j]
            nan = nan_code[f]
            if random_split:
                cut_state = cut_state + _GOLDEN
                cst = ip[mono + f] if mono > 0 else 0
                if small or not (use_sub and has_hist):
                    score, den, b, nb, nonconstant, side, t = _scan_random(
                        Xb,
                        idx,
                        start,
                        end,
                        f,
                        nan,
                        yc,
                        yr,
                        w,
                        regression,
                        total,
                        msl,
                        crit,
                        left,
                        cut_state,
                        extra,
                        mwl,
                        cst,
                        lo,
                        hi,
                        n_out,
                    )
                else:
                    score, den, b, nb, nonconstant, side, t = _scan_histogram_random(
                        hist, f, offs, nbins, nan, m, total, msl, crit, left, cut_state, extra, mwl, cst, lo, hi,
                        n_out,
                    )  # fmt: skip
            elif extra:
                score, den, b, nb, nonconstant, side = _scan_checked(
                    Xb,
                    idx,
                    start,
                    end,
                    f,
                    nan,
                    lw,
                    lc,
                    total,
                    msl,
                    crit,
                    regression,
                    keys,
                    left,
                    small,
                    scratch_hist if batch_hist else hist,
                    offs,
                    nbins,
                    mwl,
                    ip[mono + f] if mono > 0 else 0,
                    lo,
                    hi,
                    n_out,
                )
            elif small:
                score, den, b, nb, nonconstant, side = _scan_sorted(
                    Xb,
                    idx,
                    start,
                    end,
                    f,
                    nan,
                    lw,
                    lc,
                    total,
                    msl,
                    crit,
                    regression,
                    keys,
                    keys[keys.shape[0] // 2 :],
                    left,
                )
            elif batch_hist:
                score, den, b, nb, nonconstant, side = _scan_histogram(
                    scratch_hist, f, offs, nbins, nan, m, total, msl, crit, left
                )
            else:
                score, den, b, nb, nonconstant, side = _scan_histogram(
                    hist, f, offs, nbins, nan, m, total, msl, crit, left
                )
            if nonconstant:
                found += 1
            if _better(score, den, best, best_den):  # ties keep the feature drawn first
                best = score
                best_den = den
                best_f = f
                best_bin = b
                best_next = nb
                best_side = side
                best_t = t
        drawn += want
    return best_f, best_bin, best_next, best_side, best_t


@njit(nogil=True, cache=True, inline="always")
def _partition(Xb, idx, tmp, start, end, f, b, nan_left, yc, yr, w, regression, lstats, rstats, n_out):
    """Stable in-place partition of ``idx[start:end]``: left the codes ``<= b``, and the NaN code
    ``nan_left`` (-1: NaN goes right); returns the first right position.

    A NaN-free split passes a constant -1, which no code equals: the test then
    folds away and the loop is the plain ``code <= b`` one.
    """
    if n_out > 1:
        return _partition_outputs(
            Xb, idx, tmp, start, end, f, b, nan_left, yc, yr, w, regression, lstats, rstats, n_out
        )
    if nan_left >= 0:
        return _partition_rows(Xb, idx, tmp, start, end, f, b, nan_left, yc, yr, w, regression, lstats, rstats)
    return _partition_rows(Xb, idx, tmp, start, end, f, b, -1, yc, yr, w, regression, lstats, rstats)


@njit(nogil=True, cache=True, inline="always")
def _partition_rows(Xb, idx, tmp, start, end, f, b, nan_left, yc, yr, w, regression, lstats, rstats):
    """:func:`_partition`'s loop. Each child's stats are summed on the way, in its samples' (ascending) order."""
    lstats[:] = 0.0
    rstats[:] = 0.0
    nl = start
    nr = 0
    if regression:
        # Scalars, not the two arrays: sums that stay in registers.
        l0 = l1 = l2 = r0 = r1 = r2 = 0.0
        for i in range(start, end):
            s = idx[i]
            ws = w[s]
            wy = ws * yr[s]
            wyy = wy * yr[s]
            c = Xb[s, f]
            if c <= b or c == nan_left:
                idx[nl] = s
                nl += 1
                l0 += ws
                l1 += wy
                l2 += wyy
            else:
                tmp[nr] = s
                nr += 1
                r0 += ws
                r1 += wy
                r2 += wyy
        lstats[0] = l0
        lstats[1] = l1
        lstats[2] = l2
        rstats[0] = r0
        rstats[1] = r1
        rstats[2] = r2
    else:
        for i in range(start, end):
            s = idx[i]
            c = Xb[s, f]
            if c <= b or c == nan_left:
                idx[nl] = s
                nl += 1
                lstats[yc[s]] += w[s]
            else:
                tmp[nr] = s
                nr += 1
                rstats[yc[s]] += w[s]
    for i in range(nr):
        idx[nl + i] = tmp[i]
    return nl


@no_refcount
def _partition_outputs(Xb, idx, tmp, start, end, f, b, nan_left, yc, yr, w, regression, lstats, rstats, n_out):
    """:func:`_partition_rows` for several outputs: stats (w, wy_1..k, wyy_1..k), or each output's class weights."""
    lstats[:] = 0.0
    rstats[:] = 0.0
    nl = start
    nr = 0
    for i in range(start, end):
        s = idx[i]
        c = np.int64(Xb[s, f])
        if c <= b or c == nan_left:
            idx[nl] = s
            nl += 1
            side = lstats
        else:
            tmp[nr] = s
            nr += 1
            side = rstats
        ws = w[s]
        if regression:
            side[0] += ws
            for k in range(n_out):
                y = yr[s * n_out + k]
                wy = ws * y
                side[1 + k] += wy
                side[1 + n_out + k] += wy * y
        else:
            for k in range(n_out):
                side[yc[s * n_out + k]] += ws
    for i in range(nr):
        idx[nl + i] = tmp[i]
    return nl


@no_refcount
def _split_node(
    Xb,
    yc,
    yr,
    w,
    edges,
    nbins,
    offs,
    nan_code,
    ip,
    fp,
    idx,
    tmp,
    start,
    end,
    key,
    depth,
    stats_all,
    stats_row,
    hists,
    slot,
    use_sub,
    scratch_hist,
    perm,
    feats,
    keys,
    lw,
    lc,
    left,
    ints,
    floats,
    row,
    lstats,
    rstats,
    lower,
    upper,
    cbounds,
):
    """Record node ``row`` and split it if it can be; return the first right position, or -1 for a leaf.

    The node's stats are ``stats_all[stats_row]`` and its histogram ``hists[slot]``
    (``slot`` -1: none), rows taken here rather than by the caller: this kernel runs
    without reference counting, and a view made in the caller's loop costs two
    atomic operations per node. ``lower``, ``upper``: the bounds of the node's value
    under monotonic constraints; a split writes its children's in ``cbounds`` (left,
    right), where a tree without constraints leaves the caller's unbounded ones.
    """
    stats = stats_all[stats_row]
    has_hist = slot >= 0
    hist = hists[slot] if has_hist else scratch_hist
    crit = ip[P_CRITERION]
    regression = crit >= SQUARED_ERROR
    n_out = ip[P_N_OUTPUTS]
    m = end - start
    weight, impurity = _record(ints, floats, row, stats, m, crit, regression, n_out)
    if crit == POISSON:
        impurity = _poisson_impurity(idx, start, end, yr, w, stats, n_out)
        floats[row, 2] = impurity
    if ip[P_MONOTONIC] > 0:
        _clip_value(floats, row, lower, upper, regression)
    max_depth = ip[P_MAX_DEPTH]
    if (
        m < ip[P_MIN_SPLIT]
        or m < 2 * ip[P_MIN_LEAF]
        or (max_depth >= 0 and depth >= max_depth)
        or not impurity > EPSILON
        or weight < 2.0 * fp[F_MIN_WEIGHT_LEAF]
    ):
        return -1
    f, b, nb, side, where = _find_split(
        Xb,
        yc,
        yr,
        w,
        nbins,
        offs,
        nan_code,
        ip,
        idx,
        start,
        end,
        key,
        stats,
        hist,
        has_hist,
        use_sub,
        scratch_hist,
        perm,
        feats,
        keys,
        lw,
        lc,
        left,
        fp[F_MIN_WEIGHT_LEAF],
        lower,
        upper,
    )
    if f < 0:
        return -1
    mid = _partition(
        Xb, idx, tmp, start, end, f, b, nan_code[f] if side == 1 else -1, yc, yr, w, regression, lstats, rstats, n_out
    )
    wl = _weight(lstats, regression, n_out)
    wr = _weight(rstats, regression, n_out)
    il, ir = _children_impurity(idx, start, mid, end, yr, w, lstats, rstats, crit, n_out)
    gain = (weight / fp[F_ROOT_WEIGHT]) * (impurity - wl / weight * il - wr / weight * ir)
    if not gain + EPSILON >= fp[F_MIN_DECREASE]:
        return -1
    ints[row, 2] = f
    # Where the node held no NaN of the feature, NaN at predict goes to the child
    # with more samples (ties right), as scikit-learn sends it.
    ints[row, 4] = side if side >= 0 else mid - start > end - mid
    if ip[P_RANDOM_SPLIT] != 0 and nb != nan_code[f]:
        # Extra trees' threshold lies anywhere in the gap between the two sides' values,
        # the largest of the left side's last bin and the smallest of the right side's
        # first, as scikit-learn's threshold drawn in the node's range does: rows that
        # fall in the gap at predict time go one way or the other from tree to tree.
        below = edges[f, 2, b]
        above = edges[f, 1, nb]
        # Strictly below the right side's smallest value; a gap of no width (bins' ranges not
        # given, :func:`shmforest.tree.growth.edges`) leaves the threshold at the cut.
        threshold = below + (above - below) * where
        floats[row, 0] = min(threshold, np.nextafter(above, -np.inf)) if above > below else below
    else:
        # Midway between the node's two nearest codes' edges, as scikit-learn puts a
        # threshold midway between sample values.
        lo = edges[f, 0, b]
        hi = edges[f, 0, nb - 1]
        floats[row, 0] = min(max(0.5 * lo + 0.5 * hi, lo), hi)
    mono = ip[P_MONOTONIC]
    if mono > 0:
        _children_bounds(ip[mono + f], lower, upper, lstats, rstats, regression, cbounds)
    return mid


@njit(nogil=True, cache=True)
def _unbounded_pair():
    """Two rows of (lower, upper) bounds that bound nothing."""
    out = np.empty((2, 2))
    out[:, 0] = -np.inf
    out[:, 1] = np.inf
    return out


@no_refcount
def _clip_value(floats, row, lower, upper, regression):
    """Clip node ``row``'s value (a binary classifier's first fraction) into its bounds, as scikit-learn does."""
    v = floats[row, 3]
    if v < lower:
        v = lower
    elif v > upper:
        v = upper
    floats[row, 3] = v
    if not regression and floats.shape[1] > 4:
        floats[row, 4] = 1.0 - v


@no_refcount
def _children_bounds(cst, lower, upper, lstats, rstats, regression, cbounds):
    """The children's bounds: the parent's, cut at the middle of their values on a constrained feature."""
    cbounds[:, 0] = lower
    cbounds[:, 1] = upper
    if cst == 0:
        return
    p = 1 if regression else 0
    # One output: constraints are refused on several.
    middle = lstats[p] / (2.0 * _weight(lstats, regression, 1)) + rstats[p] / (2.0 * _weight(rstats, regression, 1))
    if cst > 0:
        cbounds[0, 1] = middle
        cbounds[1, 0] = middle
    else:
        cbounds[0, 0] = middle
        cbounds[1, 1] = middle


@no_refcount
def _children_histograms(Xb, idx, start, mid, end, yc, yr, w, offs, nbins, ip, all_feats, hists, slot_l, slot_r):
    """Histograms of a split node's children that will need one; (left has, right has).

    On entry the larger child's array (the left one on a tie) holds the parent's
    histogram. A child needs one when it has at least ``small`` samples. When the
    larger child does and has ``sub_min`` samples or more, the smaller child is
    summed and the larger one is the parent's minus it, in place. The rule depends
    on the children's sizes alone, so it is the same wherever the node is split.
    The children's histograms are ``hists[slot_l]`` and ``hists[slot_r]``.
    """
    hist_l = hists[slot_l]
    hist_r = hists[slot_r]
    regression = ip[P_CRITERION] >= SQUARED_ERROR
    n_out = ip[P_N_OUTPUTS]
    F = Xb.shape[1]
    small = ip[P_SMALL]
    ml = mid - start
    mr = end - mid
    need_l = ml >= small
    need_r = mr >= small
    left_larger = ml >= mr
    m_large = ml if left_larger else mr
    if m_large >= small and m_large >= ip[P_SUB_MIN]:
        if left_larger:
            _histogram(hist_r, Xb, idx, mid, end, all_feats, F, yc, yr, w, offs, nbins, regression, n_out)
            hist_l -= hist_r
        else:
            _histogram(hist_l, Xb, idx, start, mid, all_feats, F, yc, yr, w, offs, nbins, regression, n_out)
            hist_r -= hist_l
        return need_l, need_r
    if need_l:
        _histogram(hist_l, Xb, idx, start, mid, all_feats, F, yc, yr, w, offs, nbins, regression, n_out)
    if need_r:
        _histogram(hist_r, Xb, idx, mid, end, all_feats, F, yc, yr, w, offs, nbins, regression, n_out)
    return need_l, need_r


# --------------------------------------------------------------------------- tables


@njit(nogil=True, cache=True)
def _grow_rows(a, rows):
    out = np.empty((rows,) + a.shape[1:], dtype=a.dtype)
    out[: a.shape[0]] = a
    return out


@njit(nogil=True, cache=True)
def _grow_1d(a, n):
    out = np.empty(n, dtype=a.dtype)
    out[: a.shape[0]] = a
    return out


@njit(nogil=True, cache=True)
def _setup(Xb, ip, offs, stats):
    """What a growing call derives from its inputs and parameters, and its scratch arrays.

    ``n_out`` is a value row's width (each output's mean, or each output's classes side by side).
    """
    F = Xb.shape[1]
    n_stats = stats.shape[0]
    regression = ip[P_CRITERION] >= SQUARED_ERROR
    n_outputs = ip[P_N_OUTPUTS]
    n_out = n_outputs if regression else n_stats
    n_bins_total = offs[F]
    n_planes = 2 + n_outputs if regression else 1 + n_stats
    small = max(ip[P_SMALL], 1)
    scratch = (
        np.empty((n_bins_total, n_planes)),
        np.empty(F, np.int64),
        np.empty(F, np.int64),
        # Sort keys, then the radix sort's 16 counters, then its spare half.
        np.empty(2 * small + 32, np.int32),
        np.empty((small, 1 + max(n_outputs, 1))),
        np.empty(small * max(n_outputs, 1), np.int64),
        np.empty(n_stats),
    )
    return F, n_stats, regression, n_out, ip[P_USE_SUB] != 0, n_bins_total, n_planes, np.arange(F), scratch


# --------------------------------------------------------------------------- growth


# What _grow_loop returns: the stack is empty, or an array it needs grown first.
_DONE, _NEED_ROWS, _NEED_STACK, _NEED_SLOTS = range(4)
# Its state between calls: (top, count, n_free, n_slots).
_TOP, _COUNT, _N_FREE, _N_SLOTS = range(4)


@njit(nogil=True, cache=True)
def grow(Xb, yc, yr, w, edges, nbins, offs, nan_code, ip, fp, idx, key, depth, stats, hist, bounds):
    """Grow the subtree of the node whose samples are ``idx`` (ascending; permuted in place).

    ``hist`` is the node's histogram when it has one (a tree that subtracts
    histograms, a node of at least ``small`` samples), else an array of 0 rows;
    ``bounds`` its value's (lower, upper) bounds under monotonic constraints.
    Returns the node table ``(ints, floats)`` in preorder, the node first.

    This function allocates; the splitting is :func:`_grow_loop`'s, which runs
    without reference counting and comes back here only when an array must grow.
    """
    n = idx.shape[0]
    F, n_stats, regression, n_out, use_sub, n_bins_total, n_planes, all_feats, scratch = _setup(Xb, ip, offs, stats)
    scratch_hist, perm, feats, keys, lw, lc, left = scratch
    tmp = np.empty(n, np.int64)
    cap = 64
    ints = np.empty((cap, 5), np.int64)
    floats = np.empty((cap, 3 + n_out))
    # Open nodes, a stack: the left child is popped first, so ids come in preorder.
    scap = 64
    st = np.empty((scap, 5), np.int64)  # start, end, depth, parent row, histogram slot
    s_key = np.empty(scap, np.uint64)
    s_stats = np.empty((scap, n_stats))
    s_bounds = np.empty((scap, 2))
    cbounds = _unbounded_pair()
    # Histograms of open nodes, in slots.
    hcap = 4 if use_sub else 0
    hists = np.empty((hcap, n_bins_total, n_planes))
    free = np.empty(hcap, np.int64)
    state = np.zeros(4, np.int64)
    st[0, 0] = 0
    st[0, 1] = n
    st[0, 2] = depth
    s_key[0] = key
    st[0, 3] = -1
    st[0, 4] = -1
    s_stats[0] = stats
    s_bounds[0] = bounds
    if use_sub and n >= ip[P_SMALL]:
        st[0, 4] = 0
        state[_N_SLOTS] = 1
        if hist.shape[0]:
            hists[0] = hist
        else:
            _histogram(
                hists[0], Xb, idx, np.int64(0), n, all_feats, F, yc, yr, w, offs, nbins, regression, ip[P_N_OUTPUTS]
            )
    state[_TOP] = 1
    lstats = np.empty(n_stats)
    rstats = np.empty(n_stats)
    while True:
        need = _grow_loop(
            Xb, yc, yr, w, edges, nbins, offs, nan_code, ip, fp, idx, tmp, use_sub, all_feats, scratch_hist,
            perm, feats, keys, lw, lc, left, ints, floats, st, s_key, s_stats, s_bounds, cbounds, hists, free,
            state, lstats, rstats,
        )  # fmt: skip
        if need == _DONE:
            break
        if need == _NEED_ROWS:
            ints = _grow_rows(ints, 2 * ints.shape[0])
            floats = _grow_rows(floats, 2 * floats.shape[0])
        elif need == _NEED_STACK:
            size = 2 * st.shape[0]
            st = _grow_rows(st, size)
            s_key = _grow_1d(s_key, size)
            s_stats = _grow_rows(s_stats, size)
            s_bounds = _grow_rows(s_bounds, size)
        else:
            hists = _grow_rows(hists, 2 * hists.shape[0])
            free = _grow_1d(free, 2 * free.shape[0])
    count = state[_COUNT]
    return ints[:count].copy(), floats[:count].copy()


@no_refcount
def _grow_loop(
    Xb, yc, yr, w, edges, nbins, offs, nan_code, ip, fp, idx, tmp, use_sub, all_feats, scratch_hist,
    perm, feats, keys, lw, lc, left, ints, floats, st, s_key, s_stats, s_bounds, cbounds, hists, free,
    state, lstats, rstats,
):  # fmt: skip
    """:func:`grow`'s stack of open nodes, split until it is empty or an array is full.

    Before a node is popped, every array it may write must have room (a table row,
    a stack entry, a histogram slot); if one has not, the state is saved and the
    array named, so that the caller grows it and calls again: no node is half done.
    """
    n_stats = s_stats.shape[1]
    top = state[_TOP]
    count = state[_COUNT]
    n_free = state[_N_FREE]
    n_slots = state[_N_SLOTS]
    need = _DONE
    while top:
        slot = st[top - 1, 4]
        if count == ints.shape[0]:
            need = _NEED_ROWS
        elif top + 1 > st.shape[0]:
            need = _NEED_STACK
        elif use_sub and slot >= 0 and n_free == 0 and n_slots == hists.shape[0]:
            need = _NEED_SLOTS
        if need != _DONE:
            break
        top -= 1
        start = st[top, 0]
        end = st[top, 1]
        d = st[top, 2]
        k = s_key[top]
        parent = st[top, 3]
        row = count
        count += 1
        if parent >= 0:
            ints[parent, 0 if ints[parent, 0] == LEAF else 1] = row
        mid = _split_node(
            Xb,
            yc,
            yr,
            w,
            edges,
            nbins,
            offs,
            nan_code,
            ip,
            fp,
            idx,
            tmp,
            start,
            end,
            k,
            d,
            s_stats,
            top,
            hists,
            slot,
            use_sub,
            scratch_hist,
            perm,
            feats,
            keys,
            lw,
            lc,
            left,
            ints,
            floats,
            row,
            lstats,
            rstats,
            s_bounds[top, 0],
            s_bounds[top, 1],
            cbounds,
        )
        if mid < 0:
            if slot >= 0:
                free[n_free] = slot
                n_free += 1
            continue
        slot_l = -1
        slot_r = -1
        if use_sub and slot >= 0:
            # The parent's slot goes to one child; the other takes a free one.
            if n_free == 0:
                other = n_slots
                n_slots += 1
            else:
                n_free -= 1
                other = free[n_free]
            if mid - start >= end - mid:
                slot_l, slot_r = slot, other
            else:
                slot_l, slot_r = other, slot
            has_l, has_r = _children_histograms(
                Xb, idx, start, mid, end, yc, yr, w, offs, nbins, ip, all_feats, hists, slot_l, slot_r
            )
            if not has_l:
                free[n_free] = slot_l
                n_free += 1
                slot_l = -1
            if not has_r:
                free[n_free] = slot_r
                n_free += 1
                slot_r = -1
        # Right first, so that the left child is popped next.
        for side in (1, 0):
            st[top, 0] = mid if side else start
            st[top, 1] = end if side else mid
            st[top, 2] = d + 1
            s_key[top] = child_key(k, side)
            st[top, 3] = row
            st[top, 4] = slot_r if side else slot_l
            for j in range(n_stats):
                s_stats[top, j] = rstats[j] if side else lstats[j]
            s_bounds[top, 0] = cbounds[side, 0]
            s_bounds[top, 1] = cbounds[side, 1]
            top += 1
    state[_TOP] = top
    state[_COUNT] = count
    state[_N_FREE] = n_free
    state[_N_SLOTS] = n_slots
    return need


@njit(nogil=True, cache=True)
def split_node(Xb, yc, yr, w, edges, nbins, offs, nan_code, ip, fp, idx, key, depth, stats, hist, bounds):
    """Record one node and split it: what the branch-parallel driver calls at the top of a tree.

    Returns ``(ints, floats, mid, left_stats, right_stats, left_hist, right_hist, children_bounds)``:
    the node's one-row table, where its samples ``idx`` (permuted in place) are cut
    (-1 for a leaf), the children's stats and histograms (0 rows: none) and their
    bounds (rows left, right).
    """
    n = idx.shape[0]
    F, n_stats, regression, n_out, use_sub, n_bins_total, n_planes, all_feats, scratch = _setup(Xb, ip, offs, stats)
    scratch_hist, perm, feats, keys, lw, lc, left = scratch
    ints = np.empty((1, 5), np.int64)
    floats = np.empty((1, 3 + n_out))
    lstats = np.empty(n_stats)
    rstats = np.empty(n_stats)
    cbounds = np.empty((2, 2))
    cbounds[:] = bounds
    has = use_sub and n >= ip[P_SMALL]
    node_hist = hist
    if has and hist.shape[0] == 0:
        node_hist = np.empty((n_bins_total, n_planes))
        _histogram(
            node_hist, Xb, idx, np.int64(0), n, all_feats, F, yc, yr, w, offs, nbins, regression, ip[P_N_OUTPUTS]
        )
    # One-row arrays for _split_node, which takes a node's rows by index.
    searched = (node_hist if has else scratch_hist).reshape((1, n_bins_total, n_planes))
    slot = np.int64(0) if has else np.int64(-1)
    one_stats = stats.reshape((1, n_stats))
    mid = _split_node(
        Xb,
        yc,
        yr,
        w,
        edges,
        nbins,
        offs,
        nan_code,
        ip,
        fp,
        idx,
        np.empty(n, np.int64),
        np.int64(0),
        n,
        key,
        depth,
        one_stats,
        np.int64(0),
        searched,
        slot,
        use_sub,
        scratch_hist,
        perm,
        feats,
        keys,
        lw,
        lc,
        left,
        ints,
        floats,
        np.int64(0),
        lstats,
        rstats,
        bounds[0],
        bounds[1],
        cbounds,
    )
    hl = np.empty((0, n_planes))
    hr = np.empty((0, n_planes))
    if mid >= 0 and has:
        pair = np.empty((2, n_bins_total, n_planes))
        a = pair[0]
        b = pair[1]
        if mid >= n - mid:
            a[:] = node_hist
        else:
            b[:] = node_hist
        has_l, has_r = _children_histograms(
            Xb, idx, np.int64(0), mid, n, yc, yr, w, offs, nbins, ip, all_feats, pair, np.int64(0), np.int64(1)
        )
        if has_l:
            hl = a
        if has_r:
            hr = b
    return ints, floats, mid, lstats, rstats, hl, hr, cbounds


@njit(nogil=True, cache=True)
def grow_best_first(Xb, yc, yr, w, edges, nbins, offs, nan_code, ip, fp, idx, key, stats, max_leaves):
    """Grow by largest impurity decrease until ``max_leaves`` leaves (scikit-learn's BestFirstTreeBuilder).

    Each node is evaluated (and its samples partitioned) when it is made; the open
    split of largest decrease is taken next, ties to the node made first. Splits
    still open at the end are not made. Histograms are never subtracted here.
    Returns the table in preorder.
    """
    n = idx.shape[0]
    crit = ip[P_CRITERION]
    n_outputs = ip[P_N_OUTPUTS]
    F, n_stats, regression, n_out, _, _, _, _, scratch = _setup(Xb, ip, offs, stats)
    scratch_hist, perm, feats, keys, lw, lc, left = scratch
    tmp = np.empty(n, np.int64)
    cap = 2 * min(max_leaves, n) + 1
    ints = np.empty((cap, 5), np.int64)
    floats = np.empty((cap, 3 + n_out))
    # Per node: samples, depth, key, the split found (mid, feature, NaN side, threshold), its decrease, children stats.
    nodes = np.empty((cap, 6), np.int64)  # start, end, depth, mid, feature, missing_go_to_left
    n_key = np.empty(cap, np.uint64)
    n_threshold = np.empty(cap)
    n_gain = np.empty(cap)
    n_lstats = np.empty((cap, n_stats))
    n_rstats = np.empty((cap, n_stats))
    n_cbounds = np.empty((cap, 2, 2))  # the children's bounds of each open split
    n_cbounds[:] = _unbounded_pair()
    lstats = np.empty(n_stats)
    rstats = np.empty(n_stats)
    count = np.int64(0)
    pending = np.zeros(cap, np.bool_)
    # Make the root, then each chosen node's two children.
    make_start = np.empty(2, np.int64)
    make_end = np.empty(2, np.int64)
    make_stats = np.empty((2, n_stats))
    no_hists = scratch_hist.reshape((1,) + scratch_hist.shape)
    make_start[0] = 0
    make_end[0] = n
    make_stats[0] = stats
    make_bounds = _unbounded_pair()
    n_make = 1
    parent = -1
    leaves = 1
    while True:
        for c in range(n_make):
            row = count
            count += 1
            if parent < 0:
                d = 0
                k = key
            else:
                d = nodes[parent, 2] + 1
                k = child_key(n_key[parent], c)
                ints[parent, c] = row
            start = make_start[c]
            end = make_end[c]
            mid = _split_node(
                Xb,
                yc,
                yr,
                w,
                edges,
                nbins,
                offs,
                nan_code,
                ip,
                fp,
                idx,
                tmp,
                start,
                end,
                k,
                d,
                make_stats,
                c,
                no_hists,
                np.int64(-1),
                np.bool_(False),
                scratch_hist,
                perm,
                feats,
                keys,
                lw,
                lc,
                left,
                ints,
                floats,
                row,
                lstats,
                rstats,
                make_bounds[c, 0],
                make_bounds[c, 1],
                n_cbounds[row],
            )
            nodes[row, 0] = start
            nodes[row, 1] = end
            nodes[row, 2] = d
            n_key[row] = k
            if mid >= 0:
                # Keep the split open: the node stays a leaf unless it is chosen.
                nodes[row, 3] = mid
                nodes[row, 4] = ints[row, 2]
                nodes[row, 5] = ints[row, 4]
                n_threshold[row] = floats[row, 0]
                weight = floats[row, 1]
                il, ir = _children_impurity(idx, start, mid, end, yr, w, lstats, rstats, crit, n_outputs)
                n_gain[row] = (weight / fp[F_ROOT_WEIGHT]) * (
                    floats[row, 2]
                    - _weight(lstats, regression, n_outputs) / weight * il
                    - _weight(rstats, regression, n_outputs) / weight * ir
                )
                n_lstats[row] = lstats
                n_rstats[row] = rstats
                pending[row] = True
                ints[row, 2] = UNDEFINED
                ints[row, 4] = 0
                floats[row, 0] = float(UNDEFINED)
        if leaves >= max_leaves:
            break
        best = -1
        for r in range(count):
            if pending[r] and (best < 0 or n_gain[r] > n_gain[best]):
                best = r
        if best < 0:
            break
        pending[best] = False
        ints[best, 2] = nodes[best, 4]
        ints[best, 4] = nodes[best, 5]
        floats[best, 0] = n_threshold[best]
        make_start[0] = nodes[best, 0]
        make_end[0] = nodes[best, 3]
        make_start[1] = nodes[best, 3]
        make_end[1] = nodes[best, 1]
        make_stats[0] = n_lstats[best]
        make_stats[1] = n_rstats[best]
        make_bounds[:] = n_cbounds[best]
        n_make = 2
        parent = best
        leaves += 1
    order_ = preorder(ints[:count, 0], ints[:count, 1])
    return _renumber(ints[:count], floats[:count], order_)


@njit(nogil=True, cache=True)
def preorder(left, right):
    """Node ids in preorder (each node, then its left subtree, then its right), from node 0."""
    n = left.shape[0]
    out = np.empty(n, np.int64)
    stack = np.empty(n, np.int64)
    top = 1
    stack[0] = 0
    i = 0
    while top:
        top -= 1
        node = stack[top]
        out[i] = node
        i += 1
        if left[node] != LEAF:
            stack[top] = right[node]
            stack[top + 1] = left[node]
            top += 2
    return out[:i]


@njit(nogil=True, cache=True)
def _renumber(ints, floats, order):
    n = order.shape[0]
    new_id = np.empty(ints.shape[0], np.int64)
    for i in range(n):
        new_id[order[i]] = i
    out_i = np.empty((n, ints.shape[1]), np.int64)
    out_f = np.empty((n, floats.shape[1]))
    for i in range(n):
        o = order[i]
        out_i[i] = ints[o]
        out_f[i] = floats[o]
        if out_i[i, 0] != LEAF:
            out_i[i, 0] = new_id[out_i[i, 0]]
            out_i[i, 1] = new_id[out_i[i, 1]]
    return out_i, out_f


@njit(nogil=True, cache=True)
def node_depths(left, right):
    """Depth of every node of a tree whose children have larger ids than their parents."""
    depth = np.zeros(left.shape[0], np.int64)
    for i in range(left.shape[0]):
        if left[i] != LEAF:
            depth[left[i]] = depth[i] + 1
            depth[right[i]] = depth[i] + 1
    return depth


# --------------------------------------------------------------------------- prediction


@njit(nogil=True, cache=True)
def pack_nodes(left, right, feature, threshold, missing_left, value, roots):
    """The node records :func:`walk_forest` walks, from trees concatenated as they are stored.

    ``left``, ``right`` hold children ids local to each tree (``roots[t]`` is tree
    ``t``'s first node). Each tree keeps its span of the arrays but is renumbered
    so that a node's two children sit side by side (right = left + 1), pairs
    numbered depth first, left subtree first. Returns

    * ``nodes`` int32 (n, 4): the offset from a node to its left child, the feature,
      then the threshold's 8 bytes (``nodes.view(np.float64)[:, 1]``): 16 bytes a node;
    * ``value`` rows in the new order;
    * ``local``: each new id's node id in its tree as stored (for ``apply``);
    * ``nan_left`` uint8: 1 where NaN goes left (``missing_left``), in the new order.
      Apart from the records, so that rows without NaN walk the records as they
      are: a flag in the feature word would cost every step a mask (about 4% of
      the walk), NaN or not.

    A leaf has offset -1 and a NaN threshold, which no value is ``<=``: every row
    steps ``-1 + 1`` from a leaf to itself, so rows walk in lockstep without a test.
    """
    n = left.shape[0]
    nodes = np.zeros((n, 4), np.int32)
    thresholds = nodes.view(np.float64)
    packed = np.empty_like(value)
    local = np.empty(n, np.int64)
    nan_left = np.zeros(n, np.uint8)
    new_id = np.empty(n, np.int64)
    stack = np.empty(n + 1, np.int64)
    n_trees = roots.shape[0]
    for t in range(n_trees):
        root = roots[t]
        end = roots[t + 1] if t + 1 < n_trees else n
        new_id[root:end] = -1
        new_id[root] = 0
        free = 1
        stack[0] = 0
        top = 1
        while top > 0:
            top -= 1
            g = root + stack[top]
            if left[g] != LEAF:
                new_id[root + left[g]] = free
                new_id[root + right[g]] = free + 1
                free += 2
                stack[top] = right[g]
                stack[top + 1] = left[g]
                top += 2
        for g in range(root, end):
            if new_id[g] < 0:  # no path from the root reaches it: any place will do
                new_id[g] = free
                free += 1
        for g in range(root, end):
            k = root + new_id[g]
            local[k] = g - root
            packed[k] = value[g]
            if left[g] != LEAF:
                nodes[k, 0] = new_id[root + left[g]] - new_id[g]
                nodes[k, 1] = feature[g]
                thresholds[k, 1] = threshold[g]
                nan_left[k] = missing_left[g] != 0
            else:
                nodes[k, 0] = -1
                thresholds[k, 1] = np.nan
    return nodes, packed, local, nan_left


@njit(nogil=True, cache=True)
def walk_forest(X, nodes, thresholds, nan_left, value, local, roots, group, out, leaves, row_block, batch, nan_rows):
    """Walk each row of ``X`` down every tree; sum leaf values and/or note leaves.

    ``nodes``, ``thresholds`` (its float64 view), ``nan_left``, ``value`` and
    ``local`` are :func:`pack_nodes`' output; ``roots[t]`` is tree ``t``'s first node. With
    ``out`` of ``n_rows`` rows, each row's value rows are summed tree after tree
    in groups of ``group`` trees, then the group sums in order: a fixed order,
    whatever block of rows a call is given. With ``leaves`` of ``n_rows`` rows,
    the leaf of each (row, tree) is written there, as a node id local to its tree
    as stored. Rows go in blocks of ``row_block``, each block through all trees,
    so a tree's nodes stay in cache for a block. Within a block, ``batch`` rows
    step down a tree together, one level per pass, so that their loads are in
    flight at once rather than one row's chain of dependent loads at a time; a
    row goes left when ``X <= threshold``, or when X is NaN and ``nan_left`` (the
    node's ``missing_go_to_left``).

    Only with ``nan_rows`` (X may hold NaN) are rows tested for NaN, by
    :func:`_walk_with_nan`, the same walk with the test; an X without NaN runs
    the step loop of a walk that knows nothing of NaN.
    """
    if nan_rows:
        return _walk_with_nan(X, nodes, thresholds, nan_left, value, local, roots, group, out, leaves, row_block, batch)
    n_rows, n_features = X.shape
    n_trees = roots.shape[0]
    n_out = value.shape[1]
    want_sum = out.shape[0] == n_rows
    want_leaves = leaves.shape[0] == n_rows
    # Flat views and unsigned indices: numba then emits no negative-index wraparound
    # and keeps the step loop's pointers in registers.
    xs, words, thr = X.ravel(), nodes.ravel(), thresholds.ravel()
    four, two, one = np.uint64(4), np.uint64(2), np.uint64(1)
    part = np.zeros((row_block, n_out))
    at = np.empty(batch, np.uint64)
    row_at = np.empty(batch, np.uint64)
    for a in range(0, n_rows, row_block):
        b = min(a + row_block, n_rows)
        if want_sum:
            out[a:b] = 0.0
            part[:] = 0.0
        for t in range(n_trees):
            root = np.uint64(roots[t])
            for s in range(a, b, batch):
                m = min(batch, b - s)
                for i in range(m):
                    at[i] = root
                    row_at[i] = np.uint64((s + i) * n_features)
                moving = True
                while moving:
                    moving = False
                    for i in range(m):
                        node = at[i]
                        x = xs[row_at[i] + np.uint64(words[node * four + one])]
                        step = words[node * four] + (0 if x <= thr[node * two + one] else 1)
                        moving |= step != 0
                        at[i] = np.uint64(np.int64(node) + step)
                _gather_leaves(at, s, a, m, t, local, value, leaves, part, want_leaves, want_sum)
            if want_sum and ((t + 1) % group == 0 or t == n_trees - 1):
                _add_group(out, part, a, b)
    return out


@njit(nogil=True, cache=True)
def _walk_with_nan(X, nodes, thresholds, nan_left, value, local, roots, group, out, leaves, row_block, batch):
    """:func:`walk_forest` for an ``X`` that may hold NaN: a NaN goes left where ``nan_left``."""
    n_rows, n_features = X.shape
    n_trees = roots.shape[0]
    n_out = value.shape[1]
    want_sum = out.shape[0] == n_rows
    want_leaves = leaves.shape[0] == n_rows
    xs, words, thr = X.ravel(), nodes.ravel(), thresholds.ravel()
    four, two, one = np.uint64(4), np.uint64(2), np.uint64(1)
    part = np.zeros((row_block, n_out))
    at = np.empty(batch, np.uint64)
    row_at = np.empty(batch, np.uint64)
    for a in range(0, n_rows, row_block):
        b = min(a + row_block, n_rows)
        if want_sum:
            out[a:b] = 0.0
            part[:] = 0.0
        for t in range(n_trees):
            root = np.uint64(roots[t])
            for s in range(a, b, batch):
                m = min(batch, b - s)
                for i in range(m):
                    at[i] = root
                    row_at[i] = np.uint64((s + i) * n_features)
                moving = True
                while moving:
                    moving = False
                    for i in range(m):
                        node = at[i]
                        x = xs[row_at[i] + np.uint64(words[node * four + one])]
                        # Bitwise, not short-circuit: no branch on a comparison the predictor cannot guess.
                        go_left = (x <= thr[node * two + one]) | ((x != x) & (nan_left[node] != 0))
                        step = words[node * four] + (0 if go_left else 1)
                        moving |= step != 0
                        at[i] = np.uint64(np.int64(node) + step)
                _gather_leaves(at, s, a, m, t, local, value, leaves, part, want_leaves, want_sum)
            if want_sum and ((t + 1) % group == 0 or t == n_trees - 1):
                _add_group(out, part, a, b)
    return out


@njit(nogil=True, cache=True, inline="always")
def _gather_leaves(at, s, a, m, t, local, value, leaves, part, want_leaves, want_sum):
    """Note the leaves ``m`` rows from row ``s`` reached in tree ``t``, and/or add their values to ``part``."""
    for i in range(m):
        node = np.int64(at[i])
        if want_leaves:
            leaves[s + i, t] = local[node]
        if want_sum:
            for k in range(value.shape[1]):
                part[s + i - a, k] += value[node, k]


@njit(nogil=True, cache=True, inline="always")
def _add_group(out, part, a, b):
    """Add a group of trees' sums of rows ``a:b`` to ``out`` and clear them."""
    for r in range(a, b):
        for k in range(out.shape[1]):
            out[r, k] += part[r - a, k]
            part[r - a, k] = 0.0
