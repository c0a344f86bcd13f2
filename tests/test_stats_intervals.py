"""Newcombe's paired-difference interval (method 10) and the bootstrap's refusal of one value.

References: Newcombe RG (1998), "Improved confidence intervals for the difference between binomial
proportions based on paired data", Statistics in Medicine 17:2635-2650; the worked example of
Fagerland, Lydersen & Laake (2017), Statistical Analysis of Contingency Tables, chapter 8 (Cavo et
al., 2012: complete response before and after consolidation therapy).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from stalwart import Dataset, wrap
from stalwart._stats import bootstrap_ci, paired_difference_interval
from stalwart.checks import NaturalRobustness


def _pairs(a: int, b: int, c: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Outcome vectors with a (yes, yes), b (yes, no), c (no, yes) and d (no, no) pairs."""
    first = np.array([True] * a + [True] * b + [False] * c + [False] * d)
    second = np.array([True] * a + [False] * b + [True] * c + [False] * d)
    return first, second


def _wilson(k: int, n: int, z: float) -> tuple[float, float]:
    p = k / n
    centre = (2 * n * p + z * z) / (2 * (n + z * z))
    half = z * math.sqrt(z * z + 4 * n * p * (1 - p)) / (2 * (n + z * z))
    return centre - half, centre + half


def _method10(a: int, b: int, c: int, d: int, confidence: float = 0.95) -> tuple[float, float]:
    """Newcombe's method 10, written from the paper: Wilson limits of both margins, combined with
    the continuity-corrected phi (A = ad - bc: phi = (A - n/2)/sqrt(...) if A > n/2, 0 if
    0 <= A <= n/2, A/sqrt(...) if A < 0; 0 when a margin is empty)."""
    n = a + b + c + d
    z = stats.norm.ppf(0.5 + confidence / 2)
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = _wilson(a + b, n, z)
    l2, u2 = _wilson(a + c, n, z)
    margins = (a + b) * (c + d) * (a + c) * (b + d)
    big_a = a * d - b * c
    if margins == 0 or 0 <= big_a <= n / 2:
        phi = 0.0
    elif big_a > n / 2:
        phi = (big_a - n / 2) / math.sqrt(margins)
    else:
        phi = big_a / math.sqrt(margins)
    delta = math.sqrt((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2)
    eps = math.sqrt((p2 - l2) ** 2 - 2 * phi * (p2 - l2) * (u1 - p1) + (u1 - p1) ** 2)
    return max(-1.0, p1 - p2 - delta), min(1.0, p1 - p2 + eps)


def test_published_worked_example_cavo_2012():
    """Fagerland et al. (2017), table 8.x: 59 / 6 / 16 / 80 pairs, estimate -0.0621,
    Newcombe square-and-add 95% CI -0.1186 to -0.0046."""
    lo, hi = paired_difference_interval(*_pairs(59, 6, 16, 80))
    assert lo == pytest.approx(-0.1186, abs=6e-5)
    assert hi == pytest.approx(-0.0046, abs=6e-5)
    assert lo < -10 / 161 < hi


TABLES = [
    (59, 6, 16, 80), (1, 1, 7, 12), (12, 9, 2, 1), (50, 0, 0, 0), (0, 0, 0, 50), (30, 0, 0, 20),
    (0, 25, 25, 0), (10, 5, 5, 10), (40, 10, 0, 0), (0, 1, 0, 0), (3, 0, 1, 0), (20, 7, 1, 2),
    (100, 3, 11, 6), (2, 0, 0, 1),
]


@pytest.mark.parametrize("table", TABLES, ids=lambda t: "-".join(map(str, t)))
@pytest.mark.parametrize("confidence", [0.95, 0.9])
def test_matches_method_10_computed_by_hand(table, confidence):
    lo, hi = paired_difference_interval(*_pairs(*table), confidence=confidence)
    e_lo, e_hi = _method10(*table, confidence=confidence)
    assert lo == pytest.approx(e_lo, abs=1e-12)
    assert hi == pytest.approx(e_hi, abs=1e-12)


@pytest.mark.parametrize("table", TABLES, ids=lambda t: "-".join(map(str, t)))
def test_never_zero_width_and_contains_the_estimate(table):
    a, b, c, d = table
    lo, hi = paired_difference_interval(*_pairs(*table))
    estimate = (b - c) / (a + b + c + d)
    assert hi - lo > 0.02
    assert -1.0 <= lo <= estimate <= hi <= 1.0


def test_no_change_on_fifty_samples():
    """A model no perturbation changes: the drop is 0, the interval is +-(1 - Wilson low of 50/50)."""
    lo, hi = paired_difference_interval(np.ones(50, bool), np.ones(50, bool))
    z = stats.norm.ppf(0.975)
    expected = 1 - _wilson(50, 50, z)[0]
    assert (lo, hi) == (pytest.approx(-expected, abs=1e-12), pytest.approx(expected, abs=1e-12))
    assert expected == pytest.approx(0.0713, abs=1e-4)
    assert all(math.isnan(v) for v in paired_difference_interval([], []))


@pytest.mark.parametrize(("probs", "n"), [
    ((0.60, 0.10, 0.05, 0.25), 60),   # positively correlated pairs, difference 0.05
    ((0.25, 0.25, 0.25, 0.25), 40),   # independent outcomes, no difference
    ((0.85, 0.08, 0.02, 0.05), 100),  # accuracies near 1, as robust accuracies often are
])
def test_coverage_near_95_percent(probs, n):
    rng = np.random.default_rng(12345)
    draws = 3000
    truth = probs[1] - probs[2]
    tables = rng.multinomial(n, probs, size=draws)
    covered = 0
    for a, b, c, d in tables:
        lo, hi = paired_difference_interval(*_pairs(int(a), int(b), int(c), int(d)))
        covered += lo <= truth <= hi
    coverage = covered / draws
    assert 0.93 <= coverage <= 0.99, coverage


def test_natural_check_reports_the_newcombe_interval_for_its_drop():
    """A model reading only an immutable column: no perturbation changes it, so the drop is 0 and its
    interval is method 10 on (k, 0, 0, n - k), not a zero-width bootstrap."""
    rng = np.random.default_rng(0)
    n = 80
    x = pd.DataFrame({"id": rng.normal(size=n), "noise": rng.normal(size=n)})
    y = (x["id"] > 0).astype(int).to_numpy().copy()
    y[:6] = 1 - y[:6]  # six clean errors
    data = Dataset.from_arrays(x, y, immutable=["id"])
    model = wrap(lambda f: np.c_[np.asarray(f)[:, 0] <= 0, np.asarray(f)[:, 0] > 0].astype(float), classes=[0, 1])
    res = NaturalRobustness(perturbations=["feature_noise"], severities=(1, 3), column_sensitivity=False).run(
        model, data, seed=0)
    drop = res.metrics["accuracy_drop_s3"]
    assert drop.value == 0.0
    e_lo, e_hi = _method10(n - 6, 0, 0, 6)
    assert (drop.low, drop.high) == (pytest.approx(e_lo, abs=1e-12), pytest.approx(e_hi, abs=1e-12))
    assert drop.high - drop.low > 0.05


# -- bootstrap ------------------------------------------------------------------------------------
@pytest.mark.parametrize("values", [[], [0.7], np.array(0.7), np.array([[1.0, 2.0]])])
def test_bootstrap_of_fewer_than_two_values_is_nan(values):
    lo, hi = bootstrap_ci(values)
    assert math.isnan(lo) and math.isnan(hi)


def test_bootstrap_of_two_values_is_an_interval():
    lo, hi = bootstrap_ci([0.0, 1.0], n_boot=2000, seed=0)
    # the resampled mean takes 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4
    assert (lo, hi) == (0.0, 1.0)
    lo, hi = bootstrap_ci([0.0, 1.0], n_boot=2000, seed=0, confidence=0.4)
    assert lo == hi == 0.5
