"""Wilson and bootstrap intervals against published values and closed forms."""

import numpy as np
import pytest

from stalwart._stats import bootstrap_ci, wilson_interval
from stalwart.errors import ConfigError


@pytest.mark.parametrize(("k", "n", "low", "high"), [
    (0, 10, 0.0, 0.2775),
    (5, 10, 0.2366, 0.7634),
    (10, 10, 0.7225, 1.0),
    # Newcombe (1998), Statistics in Medicine 17:857, Table I, method 3 (score, no correction)
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0, 0.1611),
    (1, 29, 0.0061, 0.1718),
])
def test_wilson_matches_published_values(k, n, low, high):
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(low, abs=6e-5)
    assert hi == pytest.approx(high, abs=6e-5)


def test_wilson_is_symmetric_vectorised_and_widens_with_confidence():
    k = np.array([0, 3, 7, 10])
    lo, hi = wilson_interval(k, 10)
    lo_m, hi_m = wilson_interval(10 - k, 10)
    np.testing.assert_allclose(lo, 1 - hi_m, atol=1e-12)
    np.testing.assert_allclose(hi, 1 - lo_m, atol=1e-12)
    lo99, hi99 = wilson_interval(5, 10, confidence=0.99)
    assert lo99 < 0.2366 and hi99 > 0.7634


def test_wilson_empty_and_invalid():
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ConfigError, match=r"successes <= n"):
        wilson_interval(11, 10)
    with pytest.raises(ConfigError, match=r"confidence"):
        wilson_interval(1, 10, confidence=1.5)


def test_bootstrap_mean_interval_close_to_normal_theory():
    x = np.random.default_rng(1).normal(2.0, 1.0, size=400)
    lo, hi = bootstrap_ci(x, n_boot=2000, seed=0)
    half = 1.96 * x.std(ddof=1) / np.sqrt(len(x))
    assert lo == pytest.approx(x.mean() - half, abs=0.02)
    assert hi == pytest.approx(x.mean() + half, abs=0.02)
    assert bootstrap_ci(x, seed=3) == bootstrap_ci(x, seed=3)


def test_bootstrap_constant_custom_stat_and_empty():
    assert bootstrap_ci(np.full(50, 0.25)) == (0.25, 0.25)
    # a statistic without an axis argument still works (one call per resample)
    lo, hi = bootstrap_ci(np.arange(10.0), stat=lambda v: float(np.max(v)), n_boot=200)
    assert 5 <= lo <= hi == 9
    assert all(np.isnan(bootstrap_ci([])))
    with pytest.raises(ConfigError, match=r"n_boot"):
        bootstrap_ci([1.0], n_boot=0)
