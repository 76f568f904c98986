"""Binner: exact bins for few distinct values, quantile bins otherwise, codes that agree with thresholds."""

from __future__ import annotations

import numpy as np
import pytest

from shmforest.tree import MAX_BINS, Binner


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_few_distinct_values_get_one_bin_each(rng):
    values = np.array([-3.0, 0.0, 0.5, 7.0, 100.0])
    x = rng.choice(values, size=(500, 1))
    b = Binner().fit(x)
    assert b.n_bins_.tolist() == [5]
    # Cuts sit midway between consecutive distinct values.
    assert b.thresholds_[0, :4].tolist() == [-1.5, 0.25, 3.75, 53.5]
    assert np.all(np.isinf(b.thresholds_[0, 4:]))
    codes = b.transform(x)
    assert np.array_equal(codes[:, 0], np.searchsorted(values, x[:, 0]))


def test_many_values_get_quantile_bins(rng):
    x = rng.normal(size=(20_000, 2))
    b = Binner().fit(x)
    assert b.n_bins_.tolist() == [MAX_BINS, MAX_BINS]
    counts = np.bincount(b.transform(x)[:, 0], minlength=MAX_BINS)
    # Quantile cuts: every bin holds about n / 256 samples.
    assert counts.min() > 0.8 * x.shape[0] / MAX_BINS
    assert counts.max() < 1.2 * x.shape[0] / MAX_BINS


@pytest.mark.parametrize("max_bins", [2, 7, 64, 256])
def test_codes_agree_with_thresholds(rng, max_bins):
    # Heavy ties and a long tail, so quantiles fall on repeated values.
    x = np.column_stack([rng.integers(0, 40, 3000).astype(float), rng.exponential(size=3000), np.zeros(3000)])
    b = Binner(max_bins).fit(x)
    codes = b.transform(x)
    assert codes.dtype == np.uint8 and codes.flags.c_contiguous
    assert np.all(b.n_bins_ <= max_bins)
    for f in range(x.shape[1]):
        assert codes[:, f].max() < b.n_bins_[f]
        for c in range(b.n_bins_[f] - 1):
            assert np.array_equal(codes[:, f] <= c, x[:, f] <= b.thresholds_[f, c])


def test_constant_feature_has_one_bin():
    b = Binner().fit(np.full((10, 1), 3.0))
    assert b.n_bins_.tolist() == [1]
    assert np.all(b.transform(np.array([[-1.0], [3.0], [9.0]])) == 0)


def test_unseen_values_fall_in_the_end_bins():
    b = Binner().fit(np.array([[1.0], [2.0], [3.0]]))
    assert b.transform(np.array([[-50.0], [1.0], [2.9], [50.0]])).ravel().tolist() == [0, 0, 2, 2]


def test_sample_weight_moves_the_cuts(rng):
    x = np.arange(1000, dtype=float)[:, None]
    w = np.where(x[:, 0] < 100, 100.0, 1.0)
    plain = Binner(8).fit(x).thresholds_[0, :7]
    weighted = Binner(8).fit(x, w).thresholds_[0, :7]
    # Weight piled on the first 100 values pulls most cuts into them.
    assert (plain < 100).sum() == 0
    assert (weighted < 100).sum() >= 5


def test_zero_weight_samples_place_no_cuts():
    x = np.array([[0.0], [1.0], [2.0], [50.0]])
    b = Binner().fit(x, sample_weight=[1.0, 1.0, 1.0, 0.0])
    assert b.n_bins_.tolist() == [3]
    assert b.thresholds_[0, :2].tolist() == [0.5, 1.5]


@pytest.mark.parametrize("weights", ["none", "counts", "real", "uniform"])
@pytest.mark.parametrize("max_bins", [2, 16, 256])
def test_fit_transform_is_fit_then_transform(rng, weights, max_bins):
    """One sort per feature in fit_transform; the same thresholds and codes as the two steps."""
    n = 3000
    x = np.column_stack(
        [
            rng.normal(size=n),  # distinct values: quantile cuts
            np.round(rng.normal(size=n) * 4),  # ties: few distinct values
            np.where(rng.random(n) < 0.5, -0.0, 0.0),  # one value, two signs
            rng.exponential(size=n) ** 4,  # skewed
        ]
    )
    w = {
        "none": None,
        "counts": rng.integers(0, 3, size=n).astype(float),  # zeros place no cuts
        "real": rng.random(n),
        "uniform": np.full(n, 2.5),
    }[weights]
    one, two = Binner(max_bins), Binner(max_bins).fit(x, w)
    codes = one.fit_transform(x, w)
    np.testing.assert_array_equal(one.thresholds_, two.thresholds_)
    np.testing.assert_array_equal(one.n_bins_, two.n_bins_)
    np.testing.assert_array_equal(codes, two.transform(x))
    assert codes.dtype == np.uint8 and codes.flags.c_contiguous


@pytest.mark.parametrize(
    ("kwargs", "X", "match"),
    [
        ({"max_bins": 1}, [[0.0]], "max_bins"),
        ({"max_bins": 257}, [[0.0]], "max_bins"),
        ({}, [[np.inf]], "infinity.*column 0"),
        ({}, [[0.0, -np.inf]], "infinity.*column 1"),
        ({}, [0.0, 1.0], "2-dimensional"),
        ({}, np.empty((0, 2)), "no samples"),
    ],
)
def test_bad_input_raises(kwargs, X, match):
    with pytest.raises(ValueError, match=match):
        Binner(**kwargs).fit(np.asarray(X, dtype=float))


def test_bad_weights_and_shapes_raise():
    x = np.zeros((3, 2))
    with pytest.raises(ValueError, match="sample_weight"):
        Binner().fit(x, sample_weight=[1.0, -1.0, 1.0])
    with pytest.raises(ValueError, match="sample_weight has 2"):
        Binner().fit(x, sample_weight=[1.0, 1.0])
    with pytest.raises(RuntimeError, match="not fitted"):
        Binner().transform(x)
    with pytest.raises(ValueError, match="3 features"):
        Binner().fit(x).transform(np.zeros((2, 3)))


@pytest.mark.parametrize("n_cuts", [0, 1, 7, 255, 3000])
def test_count_below_is_searchsorted_left(n_cuts):
    from shmforest.tree.binning import count_below

    rng = np.random.default_rng(n_cuts)
    cuts = np.unique(rng.normal(size=n_cuts))
    column = np.concatenate([rng.normal(size=500), cuts, np.nextafter(cuts, np.inf), [np.nan, np.inf, -np.inf]])
    rng.shuffle(column)
    np.testing.assert_array_equal(count_below(cuts, column), np.searchsorted(cuts, column, side="left"))
    out = np.zeros(column.size, dtype=np.uint16)
    assert count_below(cuts, column, out=out) is out
    np.testing.assert_array_equal(out, np.searchsorted(cuts, column, side="left"))
    assert count_below(cuts, column[:0]).shape == (0,)


@pytest.mark.parametrize("n_cuts", [1, 255, 3000])
@pytest.mark.parametrize("spread", [0.1, 1.0, 10.0])
def test_count_below_of_a_long_finite_column_is_searchsorted_left(n_cuts, spread):
    """Bucketed (the column is long and finite), with cuts inside, below and above its range."""
    from shmforest.tree.binning import MIN_BUCKETED_VALUES, count_below

    rng = np.random.default_rng(n_cuts)
    cuts = np.unique(rng.normal(size=n_cuts))  # mostly outside the column's range for small spread
    column = rng.normal(size=2 * MIN_BUCKETED_VALUES) * spread
    inside = cuts[(cuts >= column.min()) & (cuts <= column.max())]
    column = np.concatenate([column, inside, np.nextafter(inside, np.inf), np.nextafter(inside, -np.inf)])
    column = np.clip(column, column.min(), column.max())
    rng.shuffle(column)
    np.testing.assert_array_equal(count_below(cuts, column), np.searchsorted(cuts, column, side="left"))
    # Equal values throughout: an empty range, counted by sorting.
    flat = np.full(MIN_BUCKETED_VALUES, cuts[0])
    np.testing.assert_array_equal(count_below(cuts, flat), np.searchsorted(cuts, flat, side="left"))


@pytest.mark.parametrize("n_rows", [10, 5000])
def test_count_below_by_column_is_searchsorted_left_in_every_column(n_rows):
    """Long finite columns (bucketed) and odd ones (sorted), side by side."""
    from shmforest.tree.binning import count_below_by_column

    rng = np.random.default_rng(n_rows)
    X = rng.normal(size=(n_rows, 9))
    X[:, 1] *= 1e-3  # most cuts outside its range
    X[:, 2] = 4.0  # constant: an empty range
    X[3 % n_rows, 3] = np.nan
    X[5 % n_rows, 4] = np.inf
    X[:, 6] = np.round(X[:, 6] * 2)  # ties, on the cuts themselves
    cuts = [np.unique(rng.normal(size=k)) for k in (255, 255, 3, 255, 8, 0, 255, 3000, 1)]
    cuts[6] = np.unique(np.round(rng.normal(size=20) * 2))
    X[:, 7] = np.concatenate([cuts[7], rng.normal(size=n_rows)])[:n_rows]  # values exactly at cuts
    expected = np.stack([np.searchsorted(c, X[:, f], side="left") for f, c in enumerate(cuts)], axis=1)
    out = np.zeros(X.shape, dtype=np.uint16)
    assert count_below_by_column(X, cuts, out) is out
    np.testing.assert_array_equal(out, expected)


def _columns_and_cuts(rng):
    """Columns with the cuts ``Binner`` would place, and adversarial values around them."""
    cases = []
    for scale in (1.0, 1e-300, 1e300, 5e-324 * 1e3):
        x = rng.normal(size=2000) * scale
        cases.append(x)
    x = rng.normal(size=3000)
    cases.append(x)
    cases.append(np.round(x * 3))  # ties
    cases.append(np.concatenate([[-1.7e308, 1.7e308], x]))  # a span that overflows
    cases.append(np.concatenate([x, np.nextafter(x, np.inf), np.nextafter(x, -np.inf)]))
    cases.append(np.where(x > 0, 0.0, -0.0) + (x > 1))  # signed zeros
    out = []
    for column in cases:
        for max_bins in (2, 17, 256):
            cuts = Binner(max_bins).fit(column[:, None]).thresholds_[0]
            cuts = cuts[np.isfinite(cuts)]
            # Values exactly at the cuts and at their neighbours, inside the column's range.
            extra = np.concatenate([cuts, np.nextafter(cuts, np.inf), np.nextafter(cuts, -np.inf)])
            extra = extra[(extra >= column.min()) & (extra <= column.max())]
            out.append((np.concatenate([column, extra]), cuts))
    return out


def test_bucketed_counts_are_searchsorted_left(rng):
    from shmforest.tree.binning import _count_below_in_range

    for column, cuts in _columns_and_cuts(rng):
        got = np.empty(column.size, dtype=np.uint16)
        _count_below_in_range(cuts, column, column.min(), column.max(), got)
        np.testing.assert_array_equal(got, np.searchsorted(cuts, column, side="left"))


@pytest.mark.parametrize("shape", [(0, 3), (1, 5), (5000, 20), (300, 2000), (7, 1)])
@pytest.mark.parametrize("layout", ["C", "F", "strided", "uint8"])
def test_by_feature_is_x_transposed_with_each_feature_contiguous(shape, layout, monkeypatch):
    from shmforest.tree import binning

    monkeypatch.setattr(binning, "TRANSPOSE_BLOCK_BYTES", 4096)  # several blocks, a short last one
    rng = np.random.default_rng(shape[0])
    X = rng.normal(size=(shape[0], 2 * shape[1]))[:, ::2] if layout == "strided" else rng.normal(size=shape)
    X = np.asfortranarray(X) if layout == "F" else X.astype(np.uint8) if layout == "uint8" else X
    columns = binning.by_feature(X)
    assert columns.flags.c_contiguous and columns.dtype == X.dtype
    np.testing.assert_array_equal(columns, X.T)
    with pytest.raises(ValueError, match="2-dimensional"):
        binning.by_feature(X.ravel())


def test_a_bucket_holding_one_cut_and_one_holding_several_are_both_counted_exactly():
    from shmforest.tree.binning import _count_below_in_range

    column = np.linspace(0.0, 1.0, 4097)
    lone = np.array([0.25, 0.5000001])  # one cut per bucket: counted by comparing with it
    crowded = np.array([0.25, 0.7, 0.7 + 1e-12, 0.7 + 2e-12])  # three cuts in one bucket: searched
    for cuts in (lone, crowded):
        values = np.concatenate([column, cuts, np.nextafter(cuts, 2.0), np.nextafter(cuts, -1.0)])
        got = np.empty(values.size, dtype=np.intp)
        _count_below_in_range(cuts, values, 0.0, 1.0, got)
        np.testing.assert_array_equal(got, np.searchsorted(cuts, values, side="left"))


def test_bin_ranges_hold_each_bins_smallest_and_largest_value(rng):
    few = rng.integers(0, 5, size=300).astype(float)  # one bin per value
    many = rng.normal(size=300)  # quantile bins of several values
    X = np.column_stack([few, many])
    X[::7, 1] = np.nan
    b = Binner(max_bins=16).fit(X)
    codes = b.transform(X)
    assert b.bin_ranges_.shape == (2, 16, 2)
    for f in range(2):
        values = X[:, f]
        for c in range(b.n_bins_[f] - b.missing_[f]):
            inside = values[(codes[:, f] == c) & ~np.isnan(values)]
            assert b.bin_ranges_[f, c].tolist() == [inside.min(), inside.max()]
        assert np.isnan(b.bin_ranges_[f, b.n_bins_[f] - b.missing_[f] :]).all()
    np.testing.assert_array_equal(b.bin_ranges_[0, :5, 0], np.arange(5.0))
