"""Mergeable summaries: merging is exact and associative, and every statistic from two sketches
lies within the interval it reports around the exact (in-memory) statistic."""

import numpy as np
import pytest

from stalwart.errors import ConfigError, InputError
from stalwart.shift import univariate as uv
from stalwart.shift.sketch import (
    SKETCH_TESTS,
    CategoryCounts,
    NumericSketch,
    binned_sketch,
    bucket_counts,
    ks_sketch,
    sketchable,
    wasserstein_sketch,
)

DISTS = {
    "normal": lambda r, s, n: r.normal(s, 1.0, n),
    "offset": lambda r, s, n: r.normal(300 + 5 * s, 5.0, n),
    "lognormal": lambda r, s, n: r.lognormal(s, 2.0, n),
    "integers": lambda r, s, n: r.integers(0, 40, n) + (r.random(n) < s).astype(int),
    "mixed": lambda r, s, n: np.where(r.random(n) < 0.3, 0.0, r.exponential(1 + s, n)),
}


def _pair(name, seed, shift=0.1, n1=12_000, n2=11_000):  # above 10,000: asymptotic KS p-values (fast)
    rng = np.random.default_rng(seed)
    a = DISTS[name](rng, 0.0, n1).astype(float)
    b = DISTS[name](rng, shift, n2).astype(float)
    return a, b, float(np.median(a[:500]))


@pytest.mark.parametrize("max_buckets", [1 << 15, 64])
@pytest.mark.parametrize("name", sorted(DISTS))
def test_merge_of_parts_equals_the_sketch_of_the_whole_in_any_grouping(name, max_buckets):
    a, _, c = _pair(name, 1)
    rng = np.random.default_rng(2)
    cuts = np.sort(rng.choice(np.arange(1, a.size), 3, replace=False))
    parts = [NumericSketch.of(p, center=c, max_buckets=max_buckets) for p in np.split(a, cuts)]
    whole = NumericSketch.of(a, center=c, max_buckets=max_buckets)
    left = parts[0].merge(parts[1]).merge(parts[2]).merge(parts[3])
    right = parts[3].merge(parts[2].merge(parts[1].merge(parts[0])))
    pairs = parts[0].merge(parts[2]).merge(parts[1].merge(parts[3]))
    assert left == whole and right == whole and pairs == whole
    assert whole.keys.size <= max_buckets and whole.counts.sum() == a.size
    assert (whole.mins.min(), whole.maxs.max()) == (a.min(), a.max())
    for s in (left, right, pairs):
        assert s.mean == pytest.approx(a.mean(), rel=1e-12, abs=1e-12)
        assert s.std == pytest.approx(a.std(), rel=1e-10)
    if max_buckets == 64 and name != "integers":
        assert whole.bits < 10  # the cap coarsened the grid, the same way for every grouping


@pytest.mark.parametrize("seed", range(2))
@pytest.mark.parametrize("name", sorted(DISTS))
def test_ks_and_wasserstein_lie_within_their_reported_intervals(name, seed):
    a, b, c = _pair(name, seed)
    for shift_b in (b, a[::-1][:10_500] + 0.0):  # drifted, and not drifted
        ra, rb = NumericSketch.of(a, center=c), NumericSketch.of(shift_b, center=c)
        exact = uv.ks_test(a, shift_b)
        ks = ks_sketch(ra, rb)
        assert ks.low <= exact.statistic + 1e-12 and exact.statistic <= ks.high + 1e-12
        assert ks.statistic == ks.low and ks.p_value >= exact.p_value - 1e-12  # never more drift than exact
        assert ks.p_low <= exact.p_value + 1e-12 <= ks.p_high + 2e-12
        assert ks.high - ks.low < 0.01
        w = wasserstein_sketch(ra, rb)
        we = uv.wasserstein(a, shift_b).statistic
        assert w.low - 1e-12 <= we <= w.high + 1e-12 and w.low <= w.statistic <= w.high
        assert abs(w.statistic - we) <= 0.01 * max(we, 1e-3)
        if name == "integers":  # one value per bucket: exact
            assert ks.exact and ks.statistic == exact.statistic and ks.p_value == exact.p_value
            assert w.exact and w.statistic == pytest.approx(we, rel=1e-12)


@pytest.mark.parametrize("bits", [10, 3])
@pytest.mark.parametrize("test", ["psi", "jensen_shannon", "hellinger"])
@pytest.mark.parametrize("name", sorted(DISTS))
def test_histogram_measures_are_exact_for_their_bins_and_within_bin_error_of_the_in_memory_bins(name, test, bits):
    a, b, c = _pair(name, 4)
    ra, rb = NumericSketch.of(a, center=c, bits=bits), NumericSketch.of(b, center=c, bits=bits)
    res = binned_sketch(test, ra, rb, n_bins=10)
    stat, edges, err = res.statistic, res.edges, res.bin_error
    got_memory = getattr(uv, test)(a, b).statistic
    exact_edges = uv.quantile_edges(np.sort(a), 10)
    counts = (res.ref_counts, res.cur_counts)
    if err == 0.0:  # the in-memory bins and counts
        assert stat.exact and stat.statistic == pytest.approx(got_memory, rel=1e-12, abs=1e-15)
        assert np.array_equal(np.searchsorted(np.sort(a), edges), np.searchsorted(np.sort(a), exact_edges))
        return
    assert name != "integers" and not stat.exact and err < 0.5
    # at each edge, at most bin_error of either sample lies on another side than in memory
    if edges.size == exact_edges.size:
        for x, per_bin in ((a, counts[0]), (b, counts[1])):
            want = np.searchsorted(np.sort(x), exact_edges, side="left")
            got = np.cumsum(per_bin)[:-1]
            assert np.max(np.abs(got - want)) <= err * x.size + 1e-9
    assert abs(stat.statistic - got_memory) < 0.05
    if stat.high > stat.low:  # the interval from the bounds on each edge holds the in-memory value
        assert stat.low - 1e-12 <= got_memory <= stat.high + 1e-12


def test_integer_columns_give_the_in_memory_histogram_measures_to_the_last_bit():
    a, b, _ = _pair("integers", 5)
    for test in ("psi", "jensen_shannon", "hellinger"):
        stat, edges, _, _, err = binned_sketch(test, NumericSketch.of(a), NumericSketch.of(b))
        assert err == 0.0 and np.array_equal(edges, uv.quantile_edges(np.sort(a), 10))
        assert stat.statistic == getattr(uv, test)(a, b).statistic


@pytest.mark.parametrize("test", ["psi", "jensen_shannon", "hellinger"])
def test_coarse_grids_report_a_bin_error_and_an_interval_around_the_in_memory_value(test):
    a, b, c = _pair("normal", 6, n1=20000, n2=20000)
    stat, _, _, _, err = binned_sketch(test, NumericSketch.of(a, center=c, bits=4),
                                       NumericSketch.of(b, center=c, bits=4))
    want = getattr(uv, test)(a, b).statistic
    assert 0 < err < 0.2 and not stat.exact
    assert stat.low < stat.high and stat.low - 1e-12 <= want <= stat.high + 1e-12


def test_few_distinct_values_are_exact_categories():
    rng = np.random.default_rng(0)
    a, b = rng.choice([0.5, 1.5, 7.0], 500), rng.choice([0.5, 1.5, 7.0, 9.0], 400)
    p, q, exact = bucket_counts(NumericSketch.of(a), NumericSketch.of(b))
    assert exact
    want = uv.chi2_test(a, b)
    got = uv.chi2_from_counts(p, q)
    assert got.statistic == pytest.approx(want.statistic, rel=1e-12) and got.p_value == pytest.approx(want.p_value)
    assert NumericSketch.of(a).n_unique() == 3 and NumericSketch.of(a).exact_values


def test_category_counts_merge_exactly():
    a, b = CategoryCounts(["x", "y", "x"]), CategoryCounts(["y", "z"])
    assert a.merge(b) == CategoryCounts(["x", "y", "x", "y", "z"]) == b.merge(a)
    assert a == CategoryCounts(["x", "y", "x"])  # merge returns a new summary


def test_which_tests_are_sketchable():
    assert {t for t in uv.TESTS if sketchable(t)} == set(uv.TESTS) - {"anderson"}
    assert set(SKETCH_TESTS) == set(uv.TESTS)
    with pytest.raises(ConfigError, match="must be one of"):
        sketchable("kolmogorov")


def test_bad_input_is_refused_with_a_way_out():
    with pytest.raises(InputError, match="finite"):
        NumericSketch.of([1.0, np.inf])
    with pytest.raises(ConfigError, match="bits"):
        NumericSketch.of([1.0], bits=60)
    with pytest.raises(ConfigError, match="same center"):
        NumericSketch.of([1.0], center=1.0).merge(NumericSketch.of([1.0]))
    with pytest.raises(ConfigError, match="NumericSketch"):
        NumericSketch.of([1.0]).merge(CategoryCounts("a"))
    with pytest.raises(InputError, match="at least one value"):
        ks_sketch(NumericSketch.of([]), NumericSketch.of([1.0]))
    with pytest.raises(ConfigError, match="must be one of"):
        binned_sketch("ks", NumericSketch.of([1.0]), NumericSketch.of([1.0]))
