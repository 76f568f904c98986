"""Per-feature quantile bins: real-valued features to ``uint8`` codes, once per fit.

The tree builder never looks at real values: it histograms small integer codes.
A feature gets at most ``max_bins`` bins, cut at (weighted) quantiles of its
distinct values, and one bin per distinct value when it has few enough, so such
features are split exactly as an exhaustive search would split them.

Codes and thresholds agree by construction: ``code <= c`` exactly when
``x <= thresholds_[f, c]``, because :meth:`Binner.transform` *defines* the code as
the number of thresholds below ``x``. That is what lets a fitted tree keep real
thresholds and predict on raw ``X`` with no binning.

NaN is a code of its own: a feature that holds NaN at fit gets at most
``max_bins - 1`` value bins and its NaN code is the next one, above every value
bin (255 with the default 256 bins and enough distinct values). So ``code <= c``
still means ``x <= thresholds_[f, c]`` for every value bin ``c``, NaN is never
below a cut, the codes stay ``uint8``, and a feature without NaN keeps all
``max_bins`` bins and the codes it had.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Binner", "MAX_BINS", "by_feature", "check_no_infinity", "count_below", "count_below_by_column"]

#: The most bins a ``uint8`` code can tell apart.
MAX_BINS = 256
EMPTY = np.empty(0)


class Binner:
    """Quantile binning of each feature into at most ``max_bins`` ``uint8`` codes.

    Parameters
    ----------
    max_bins : int, default 256
        Bins per feature, 2 to 256.

    Attributes
    ----------
    n_bins_ : ndarray of shape (n_features,)
        Codes used per feature, the NaN code included (at most ``max_bins``; the
        number of distinct values, plus one for NaN, when that is smaller).
    missing_ : ndarray of bool, shape (n_features,)
        Features that held NaN at fit; their NaN code is ``n_bins_[f] - 1``.
    thresholds_ : ndarray of shape (n_features, max_bins - 1), float64
        ``thresholds_[f, c]`` separates bin ``c`` from bin ``c + 1`` of feature
        ``f``: the midpoint between the largest value of bin ``c`` and the smallest
        of bin ``c + 1``. Rows are padded with ``+inf`` past ``n_bins_[f] - 1``.
    bin_ranges_ : ndarray of shape (n_features, max_bins, 2), float64
        The smallest and the largest value of each value bin (NaN past them), as the
        cuts see them: on each side of a cut, the nearest value of positive weight.
        Where extra trees draw their thresholds, as scikit-learn draws them between a
        node's values.

    Examples
    --------
    >>> import numpy as np
    >>> b = Binner().fit(np.array([[0.0], [1.0], [1.0], [5.0]]))
    >>> b.n_bins_.tolist(), b.thresholds_[0, :2].tolist()
    ([3], [0.5, 3.0])
    >>> b.transform(np.array([[-1.0], [0.5], [2.0], [9.0]])).ravel().tolist()
    [0, 0, 1, 2]
    """

    n_bins_: np.ndarray
    missing_: np.ndarray
    thresholds_: np.ndarray
    bin_ranges_: np.ndarray

    def __init__(self, max_bins: int = MAX_BINS) -> None:
        self.max_bins = max_bins

    def fit(self, X: np.ndarray, sample_weight: np.ndarray | None = None) -> Binner:
        """Find each feature's bin thresholds.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Real values or NaN (its own code); infinite values raise.
        sample_weight : array-like of shape (n_samples,), optional
            Weights for the quantiles; samples of weight 0 do not place cuts.

        Returns
        -------
        Binner
            ``self``.
        """
        self._fit(X, sample_weight, codes=False)
        return self

    def _fit(self, X: np.ndarray, sample_weight: np.ndarray | None, codes: bool) -> np.ndarray | None:
        """Thresholds of every feature; with ``codes``, also the codes of ``X`` (C order).

        Each column is sorted once for its thresholds; its codes then come from
        buckets of the column's range (:func:`_count_below_in_range`), whose range
        is known once it is sorted (``benchmarks/test_bench_binning.py`` times it).
        """
        if not isinstance(self.max_bins, (int, np.integer)) or not 2 <= self.max_bins <= MAX_BINS:
            raise ValueError(f"max_bins must be an int in [2, {MAX_BINS}], got {self.max_bins!r}")
        X = _as_2d_float(X, "X")
        n_samples, n_features = X.shape
        if n_samples == 0:
            raise ValueError("X has no samples; Binner needs at least one")
        w = None
        if sample_weight is not None:
            w = np.asarray(sample_weight, dtype=np.float64).ravel()
            if w.shape[0] != n_samples:
                raise ValueError(f"sample_weight has {w.shape[0]} entries; X has {n_samples} samples")
            if not np.all(np.isfinite(w)) or np.any(w < 0):
                raise ValueError("sample_weight must hold finite, non-negative values")
            if np.all(w == w[0]) and w[0] > 0:
                w = None  # uniform weights place the same cuts as none
        thresholds = np.full((n_features, self.max_bins - 1), np.inf)
        ranges = np.full((n_features, self.max_bins, 2), np.nan)
        n_bins = np.empty(n_features, dtype=np.int32)
        missing = np.zeros(n_features, dtype=bool)
        columns = by_feature(X)  # each feature contiguous: sorts and takes run on cached data
        by_column = np.empty(columns.shape, dtype=np.uint8) if codes else None
        for f in range(n_features):
            column = columns[f]
            if w is None:
                xs, ws = np.sort(column), None
            else:
                # Stable: the cumulated weights at each distinct value then never
                # depend on how ties were ordered.
                order = np.argsort(column, kind="stable")
                xs, ws = column.take(order), w.take(order)
            if np.isnan(xs[-1]):  # NaN sorts last: the feature's values are the rest
                missing[f] = True
                n_values = int(np.searchsorted(np.isnan(xs), True))
                xs = xs[:n_values]
                ws = None if ws is None else ws[:n_values]
            value_bins = self.max_bins - int(missing[f])
            cuts, below, above = _sorted_thresholds(xs, ws, value_bins) if xs.size and value_bins > 1 else (EMPTY,) * 3
            thresholds[f, : cuts.size] = cuts
            if xs.size:
                # Bin c runs from the smallest value above cut c - 1 to the largest below cut c.
                ranges[f, 0, 0] = xs[0]
                ranges[f, 1 : cuts.size + 1, 0] = above
                ranges[f, : cuts.size, 1] = below
                ranges[f, cuts.size, 1] = xs[-1]
            n_bins[f] = cuts.size + 1 + missing[f]
            if by_column is not None:
                if missing[f]:
                    _nan_codes(cuts, column, xs, by_column[f])
                else:
                    _count_below_in_range(cuts, column, xs[0], xs[-1], by_column[f])
        self.thresholds_ = thresholds
        self.bin_ranges_ = ranges
        self.n_bins_ = n_bins
        self.missing_ = missing
        return None if by_column is None else np.ascontiguousarray(by_column.T)

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Codes of ``X``: ``uint8`` of shape (n_samples, n_features), C order.

        C (row-major) order because the builder reads a few randomly drawn
        features of each sample of a node: they then sit in one cache line.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of uint8
            ``codes[i, f]`` is the number of ``thresholds_[f]`` below ``X[i, f]``;
            a NaN gets the feature's NaN code (its last value bin's, for a feature
            that held no NaN at fit).
        """
        if not hasattr(self, "thresholds_"):
            raise RuntimeError("this Binner is not fitted yet; call fit(X) first")
        X = _as_2d_float(X, "X")
        if X.shape[1] != self.n_bins_.size:
            raise ValueError(f"X has {X.shape[1]} features; the Binner was fitted on {self.n_bins_.size}")
        cuts = [self.thresholds_[f, : self.n_bins_[f] - 1 - self.missing_[f]] for f in range(X.shape[1])]
        codes = count_below_by_column(X, cuts, np.empty(X.shape, dtype=np.uint8))
        for f in np.flatnonzero(self.missing_):
            codes[np.isnan(X[:, f]), f] = self.n_bins_[f] - 1
        return codes

    def fit_transform(self, X: np.ndarray, sample_weight: np.ndarray | None = None) -> np.ndarray:
        """:meth:`fit`, then :meth:`transform` of the same ``X``, sorting each feature once.

        The same codes as ``fit(X).transform(X)``.
        """
        codes = self._fit(X, sample_weight, codes=True)
        assert codes is not None
        return codes


#: Bytes of ``X`` per block in :func:`by_feature`: a block's rows stay in cache while
#: they are scattered into the columns.
TRANSPOSE_BLOCK_BYTES = 64 << 10


def by_feature(X: np.ndarray) -> np.ndarray:
    """``X`` transposed in C order, each feature's values contiguous; copied in blocks of rows.

    ``np.ascontiguousarray(X.T)`` walks the output column by column through all of
    ``X``, missing the cache at every row; a block of rows at a time reads each
    row's cache lines once (several times faster on tall X; timings in RESULTS.md).
    A view, not a copy, when ``X.T`` is C-contiguous already.
    """
    if X.ndim != 2:
        raise ValueError(f"X must be 2-dimensional, got shape {X.shape}")
    if X.T.flags.c_contiguous:
        return X.T
    out = np.empty(X.shape[::-1], dtype=X.dtype)
    rows = max(1, TRANSPOSE_BLOCK_BYTES // max(1, X.shape[1] * X.dtype.itemsize))
    for start in range(0, X.shape[0], rows):
        out[:, start : start + rows] = X[start : start + rows].T
    return out


def count_below_by_column(X: np.ndarray, cuts: list[np.ndarray], out: np.ndarray) -> np.ndarray:
    """:func:`count_below` for every column ``f`` of ``X`` against ``cuts[f]``, into ``out``.

    ``out`` has ``X``'s shape, C order; the columns are counted from one transposed
    copy of ``X``, so each is contiguous.
    """
    columns = by_feature(X)
    by_column = np.empty(columns.shape, dtype=out.dtype)
    for f, column_cuts in enumerate(cuts):
        count_below(column_cuts, columns[f], out=by_column[f])
    out[...] = by_column.T
    return out


def count_below(cuts: np.ndarray, column: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """How many of the sorted ``cuts`` lie strictly below each value of ``column``.

    ``np.searchsorted(cuts, column, side="left")``, which puts a value equal to a
    cut at or below it, as ``x <= t`` does; NaN counts every cut. Computed without
    a binary search per value: a long column of finite values by buckets of its
    range (:func:`_count_below_in_range`), any other by sorting it (in sorted order
    the counts only step up, at the values where the column passes a cut, so one
    sort and one search per cut do). Bucketing beat both sorting and
    ``searchsorted`` about 2x to 3x on 25,000 values against 255 cuts.

    Parameters
    ----------
    cuts : ndarray, 1-D, sorted ascending
    column : ndarray, 1-D
    out : ndarray, optional
        Where to write the counts (an integer dtype wide enough for ``len(cuts)``).
    """
    out = np.empty(column.shape[0], dtype=np.intp) if out is None else out
    if column.shape[0] >= MIN_BUCKETED_VALUES:
        lo, hi = column.min(), column.max()  # NaN if any value is
        if np.isfinite(lo) and np.isfinite(hi):
            return _count_below_in_range(cuts, column, lo, hi, out)
    return _count_below_by_sorting(cuts, column, out)


#: From this many values, :func:`count_below` buckets the column's range instead of
#: sorting it: below, the bucket table costs more than the sort saves.
MIN_BUCKETED_VALUES = 2048


def _count_below_by_sorting(cuts: np.ndarray, column: np.ndarray, out: np.ndarray) -> np.ndarray:
    order = np.argsort(column)
    return _count_below_sorted(cuts, column.take(order), order, out)


#: Buckets per cut for :func:`_count_below_in_range`: few values share a bucket with a cut.
BUCKETS_PER_CUT = 64
#: ... but at most this many per value: with many cuts (a forest's, some 7,500 per
#: feature on the 75,000 x 20 workload) a larger table costs more to build and to
#: read than the values it keeps from ``searchsorted`` (about 8 per value was the
#: fastest setting tried). Binning (255 cuts, 75,000 values) stays at 64 per cut.
BUCKETS_PER_VALUE = 8


def _count_below_in_range(cuts: np.ndarray, column: np.ndarray, lo: float, hi: float, out: np.ndarray) -> np.ndarray:
    """:func:`count_below` of a finite ``column`` whose values lie in ``[lo, hi]``, by buckets.

    The range is cut into equal buckets and ``bucket(v) = floor((v - lo) * scale)``.
    Each floating-point operation there rounds monotonically, so ``bucket`` never
    decreases as ``v`` grows: a cut in a lower bucket than ``x`` lies below ``x``,
    one in a higher bucket above it. A value whose bucket holds no cut therefore
    gets, exactly, the number of cuts in lower buckets, one table lookup; a value
    sharing its bucket with one cut adds one if it lies above that cut; the few
    values in buckets of several cuts are counted by ``searchsorted``. No sort of
    the column: a few passes over it. Cuts outside ``[lo, hi]`` (a forest's, for rows it did not see) fall
    in the first or last bucket.
    """
    n_cuts = cuts.shape[0]
    if n_cuts == 0:
        out[...] = 0
        return out
    n_buckets = max(1, min(BUCKETS_PER_CUT * n_cuts, BUCKETS_PER_VALUE * column.shape[0]))
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        span = np.float64(hi) - np.float64(lo)
        scale = n_buckets / span
    if not (np.isfinite(span) and np.isfinite(scale) and scale > 0):  # a range too wide or too narrow
        return _count_below_by_sorting(cuts, column, out)

    def bucket(v: np.ndarray) -> np.ndarray:
        b = np.subtract(v, lo)
        np.multiply(b, scale, out=b)
        # astype truncates toward zero, a non-decreasing map like the rest; cuts
        # outside [lo, hi] land in the end buckets (the clip, for the cuts here and
        # the take's mode for the column), where searchsorted settles them.
        return b.astype(np.intp)

    cut_bucket = np.clip(bucket(cuts), 0, n_buckets - 1)
    per_bucket = np.bincount(cut_bucket, minlength=n_buckets)
    below = np.cumsum(per_bucket) - per_bucket  # cuts in lower buckets
    # The cut of a bucket holding one: x is above it exactly when x > cut (+inf: none).
    cut_in = np.full(n_buckets, np.inf)
    cut_in[cut_bucket] = cuts
    b = bucket(column)
    out[...] = below.take(b, mode="clip") + (column > cut_in.take(b, mode="clip"))
    crowded = per_bucket > 1
    if crowded.any():  # a bucket holding several cuts: its values by searchsorted
        shared = np.flatnonzero(crowded.take(b, mode="clip"))
        out[shared] = np.searchsorted(cuts, column.take(shared), side="left")
    return out


def _count_below_sorted(cuts: np.ndarray, xs: np.ndarray, order: np.ndarray, out: np.ndarray) -> np.ndarray:
    """:func:`count_below` of a column given its sort: ``xs = column[order]``, ascending."""
    n = xs.shape[0]
    passes = np.searchsorted(xs, cuts, side="right")
    out[order] = np.cumsum(np.bincount(passes, minlength=n + 1)[:n])
    return out


def _nan_codes(cuts: np.ndarray, column: np.ndarray, values: np.ndarray, out: np.ndarray) -> None:
    """Codes of a ``column`` holding NaN: its values' as any column's, NaN the code after the last bin.

    ``values``: the column's values sorted, NaN left out.
    """
    nan = np.isnan(column)
    if values.size:
        # NaN replaced by a value of the column, so the bucketing sees finite values only.
        _count_below_in_range(cuts, np.where(nan, values[0], column), values[0], values[-1], out)
    out[nan] = cuts.size + 1


def _as_2d_float(X: np.ndarray, name: str) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-dimensional (n_samples, n_features), got shape {X.shape}")
    check_no_infinity(X, name, missing=False)
    return X


def check_no_infinity(X: np.ndarray, name: str = "X", missing: bool = True) -> np.ndarray:
    """Which columns of the 2-d float ``X`` hold NaN; a ``ValueError`` naming the first column holding +-inf.

    One summing pass over ``X`` when it holds neither (a finite sum), cheaper than
    testing every value; the columns are searched only when the sum is not finite.
    Without ``missing`` (predict, which needs the check only) no column is reported.
    """
    none = np.zeros(X.shape[1], dtype=bool)
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(X.sum()):
            return none
    infinite = np.flatnonzero(np.isinf(X).any(axis=0))
    if infinite.size:
        raise ValueError(
            f"Input {name} contains infinity or a value too large for dtype('float64') in column {infinite[0]}; "
            "it takes finite values or NaN (a missing value)."
        )
    return np.isnan(X).any(axis=0) if missing else none


def _sorted_thresholds(
    xs: np.ndarray, ws: np.ndarray | None, max_bins: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut points of one feature, sorted ascending in ``xs`` (weights ``ws`` in the same order),
    and the values each cut falls between: the largest below it, the smallest above.

    Midpoints between chosen consecutive distinct values; samples of weight 0
    place no cuts.
    """
    if ws is not None:
        keep = ws > 0
        if keep.any() and not keep.all():
            xs, ws = xs[keep], ws[keep]
        if np.all(ws == ws[0]):
            ws = None  # uniform weights place the same cuts as none
    # Last position of each distinct value in the sorted column.
    ends = np.append(np.flatnonzero(xs[1:] != xs[:-1]), xs.size - 1)
    if ends.size <= max_bins:
        upper = np.arange(ends.size - 1)  # one bin per distinct value
    else:
        if ws is None:
            # Counts are integers: a count reaches the target t exactly when it reaches
            # ceil(t), so integers are searched, with no float copy of the counts.
            targets = float(xs.size) * np.arange(1, max_bins) / max_bins
            upper = np.searchsorted(ends + 1, np.ceil(targets).astype(np.int64), side="left")
        else:
            cum = np.cumsum(ws)[ends]
            upper = np.searchsorted(cum, cum[-1] * np.arange(1, max_bins) / max_bins, side="left")
        # The distinct value at which each quantile is reached closes its bin.
        upper = np.minimum(upper, ends.size - 2)
        # Ascending already: drop repeats (np.unique would sort again, and its first call
        # in a process imports numpy.ma, ~20 ms in every fresh worker).
        upper = upper[np.append(True, upper[1:] != upper[:-1])]
    lo, hi = xs[ends[upper]], xs[ends[upper + 1]]
    # 0.5*a + 0.5*b cannot overflow and, rounded to nearest, stays within [a, b].
    return np.clip(0.5 * lo + 0.5 * hi, lo, hi), lo, hi
