"""Univariate drift statistics against SciPy's reference implementations and closed forms."""

import math
import warnings

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from stalwart.errors import ConfigError, InputError
from stalwart.shift.univariate import (
    anderson_test,
    chi2_from_counts,
    chi2_test,
    hellinger,
    hellinger_from_counts,
    jensen_shannon,
    ks_pvalue,
    ks_test,
    psi,
    psi_from_counts,
    wasserstein,
)


@pytest.mark.parametrize("n1,n2", [(3, 4), (50, 50), (37, 61), (300, 200), (999, 1000), (1200, 2500),
                                   (11000, 12000)])
@pytest.mark.parametrize("shift", [0.0, 0.15, 0.6])
def test_ks_matches_scipy(n1, n2, shift):
    rng = np.random.default_rng(n1 * 7 + n2)
    a, b = rng.normal(size=n1), rng.normal(shift, size=n2)
    got, want = ks_test(a, b), stats.ks_2samp(a, b)
    assert got.statistic == pytest.approx(want.statistic, abs=1e-12)
    assert got.p_value == pytest.approx(want.pvalue, rel=1e-6, abs=1e-14)


def test_ks_with_ties_and_forced_methods():
    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 5, 300).astype(float), rng.integers(0, 6, 200).astype(float)
    for method in ("exact", "asymp"):
        got, want = ks_test(a, b, method=method), stats.ks_2samp(a, b, method=method)
        assert got.statistic == pytest.approx(want.statistic)
        assert got.p_value == pytest.approx(want.pvalue, rel=1e-6)
    assert ks_pvalue(0.0, 10, 12) == 1.0


def test_ks_vectorised_over_columns_equals_per_column_scipy():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(400, 6)), rng.normal(size=(350, 6)) + np.linspace(0, 0.4, 6)
    got = ks_test(x, y)
    want = [stats.ks_2samp(x[:, j], y[:, j]) for j in range(6)]
    np.testing.assert_allclose(got.statistic, [w.statistic for w in want], atol=1e-12)
    np.testing.assert_allclose(got.p_value, [w.pvalue for w in want], rtol=1e-6, atol=1e-14)


@pytest.mark.parametrize("shift,rounding", [(0.0, None), (0.15, None), (0.5, None), (0.1, 1)])
def test_anderson_matches_scipy(shift, rounding):
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=300), rng.normal(shift, size=250)
    if rounding is not None:  # ties exercise the midrank formula
        a, b = a.round(rounding), b.round(rounding)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns when its p-value hits the [0.001, 0.25] caps
        want = stats.anderson_ksamp([a, b], variant="midrank")
    got = anderson_test(a, b)
    assert got.statistic == pytest.approx(want.statistic, rel=1e-10)
    assert got.p_value == pytest.approx(want.pvalue, rel=1e-10)
    assert 0.001 <= got.p_value <= 0.25


def test_chi2_matches_contingency_without_yates_and_z_test():
    rng = np.random.default_rng(4)
    a = rng.choice(list("abcd"), 400, p=[0.4, 0.3, 0.2, 0.1])
    b = rng.choice(list("abcde"), 300, p=[0.35, 0.3, 0.2, 0.1, 0.05])
    table = np.array([[np.sum(x == c) for c in "abcde"] for x in (a, b)])
    want = stats.chi2_contingency(table, correction=False)
    got = chi2_test(a, b)
    assert got.statistic == pytest.approx(want.statistic)
    assert got.p_value == pytest.approx(want.pvalue)
    # two categories: equals the pooled two-proportion z-test
    k1, n1, k2, n2 = 30, 100, 45, 110
    pooled = (k1 + k2) / (n1 + n2)
    z = (k1 / n1 - k2 / n2) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    r = chi2_from_counts([k1, n1 - k1], [k2, n2 - k2])
    assert r.statistic == pytest.approx(z * z)
    assert r.p_value == pytest.approx(2 * stats.norm.sf(abs(z)))
    assert chi2_from_counts([5, 0], [7, 0]) == (0.0, 1.0)


def test_wasserstein_matches_scipy_over_reference_std():
    rng = np.random.default_rng(5)
    a, b = rng.exponential(size=500), rng.exponential(1.3, size=700)
    assert wasserstein(a, b, normalize=False).statistic == pytest.approx(stats.wasserstein_distance(a, b))
    assert wasserstein(a, b).statistic == pytest.approx(stats.wasserstein_distance(a, b) / a.std())
    x, y = rng.normal(size=(300, 3)), rng.normal(size=(200, 3))
    np.testing.assert_allclose(wasserstein(x, y, normalize=False).statistic,
                               [stats.wasserstein_distance(x[:, j], y[:, j]) for j in range(3)])


def _quantile_hist(ref, x, n_bins=10):
    edges = np.unique(np.quantile(ref, np.arange(1, n_bins) / n_bins))
    counts, _ = np.histogram(x, bins=np.r_[-np.inf, edges, np.inf])
    return counts


def test_histogram_measures_match_independent_binning():
    rng = np.random.default_rng(6)
    a, b = rng.normal(size=1000), rng.normal(0.3, 1.2, size=800)
    p, q = _quantile_hist(a, a), _quantile_hist(a, b)
    assert p.sum() == 1000 and q.sum() == 800
    assert jensen_shannon(a, b).statistic == pytest.approx(jensenshannon(p / p.sum(), q / q.sum()))
    assert jensen_shannon(a, b, base=2).statistic == pytest.approx(
        jensenshannon(p / p.sum(), q / q.sum(), base=2))
    pp, qq = p / p.sum(), q / q.sum()
    assert psi(a, b).statistic == pytest.approx(np.sum((qq - pp) * np.log(qq / pp)))
    assert hellinger(a, b).statistic == pytest.approx(np.sqrt(1 - np.sum(np.sqrt(pp * qq))))
    ca, cb = np.array(["x", "y", "y", "z"]), np.array(["y", "z", "z", "w"])
    want = jensenshannon(np.array([1, 2, 1, 0]) / 4, np.array([0, 1, 2, 1]) / 4)
    assert jensen_shannon(ca, cb).statistic == pytest.approx(want)


def test_count_measures_closed_forms():
    assert psi_from_counts([50, 50], [25, 75]) == pytest.approx(0.25 * math.log(2) + 0.25 * math.log(1.5))
    assert hellinger_from_counts([1, 0], [0, 1]) == pytest.approx(1.0)
    assert hellinger_from_counts([3, 1], [6, 2]) == pytest.approx(0.0, abs=1e-7)
    assert hellinger_from_counts([1, 1], [1, 3]) == pytest.approx(
        math.sqrt(1 - math.sqrt(0.125) - math.sqrt(0.375)))
    # an empty bin takes eps = 1e-4 instead of making PSI infinite
    assert np.isfinite(psi_from_counts([10, 0], [5, 5]))


def test_bad_inputs_name_the_problem():
    with pytest.raises(InputError, match="NaN"):
        ks_test([1.0, np.nan, 2.0], [1.0, 2.0])
    with pytest.raises(InputError, match="numeric"):
        ks_test(["a", "b"], ["a", "c"])
    with pytest.raises(InputError, match="empty"):
        wasserstein([], [1.0])
    with pytest.raises(InputError, match="same number of columns"):
        ks_test(np.zeros((5, 2)), np.zeros((5, 3)))
    with pytest.raises(ConfigError, match="n_bins"):
        psi([1.0, 2.0, 3.0], [1.0, 2.0], n_bins=1)
    with pytest.raises(ConfigError, match="method"):
        ks_test([1.0, 2.0], [1.0, 3.0], method="fast")
    with pytest.raises(InputError, match="constant"):
        anderson_test([1.0, 1.0, 1.0], [1.0, 1.0])
