"""The online test across windows takes honest p-values whatever drift test judged a column: KS or
a chi-square with rare cells pooled. Checked against what a p-value must do under the null (be
uniform, or conservative with ties) over 1,250 null windows, the family-wise rate of LOND over
the streams against its bound, and a planted shift."""

import math

import numpy as np
import pytest

from stalwart.monitor.analysis import lond, lond_gamma, online_p_values, online_reference, pooled_chi2
from stalwart.shift.drift import choose_test

KINDS = {"t": "numeric", "n": "integer", "c": "categorical", "r": "categorical", "b": "boolean"}
CATS = np.array(list("abcdefghij"))
CAT_P = np.array([0.3, 0.2, 0.15, 0.1, 0.1, 0.05, 0.05, 0.03, 0.015, 0.005])


def _draw(rng, n, shift=0.0):
    """Heavy tails, ties (a Poisson count), ten categories down to 0.5%, a category seen once in a
    thousand rows, a boolean: the cases where an asymptotic p-value is most easily wrong."""
    return {"t": rng.standard_t(3, n) + shift, "n": rng.poisson(4, n).astype(float),
            "c": [str(v) for v in rng.choice(CATS, n, p=CAT_P)],
            "r": [str(v) for v in rng.choice(["x", "y", "z"], n, p=[0.98, 0.019, 0.001])],
            "b": [bool(v) for v in rng.random(n) < 0.3]}


def _binomial_high(t, n, z=4.0):
    return t + z * math.sqrt(t * (1 - t) / n)


def _binomial_low(t, n, z=4.0):
    return t - z * math.sqrt(t * (1 - t) / n)


@pytest.mark.slow
def test_online_p_values_are_uniform_under_the_null_and_lond_keeps_its_bound():
    from scipy import stats

    rng = np.random.default_rng(2026)
    streams, per_stream, alpha = 250, 5, 0.5  # a large alpha so the family-wise rate is measurable
    p_cols = {k: [] for k in KINDS}
    p_window, any_rejection = [], []
    for _ in range(streams):
        n_ref = int(rng.integers(1200, 2500))
        reference = _draw(rng, n_ref)
        # above 1,000 reference rows `auto` judges every column by a distance, without a p-value
        assert choose_test("numeric", n_ref, 100)[0] == "wasserstein"
        fitted = online_reference({"inputs": reference}, KINDS)
        stream = []
        for _ in range(per_stream):
            out = online_p_values(fitted, _draw(rng, int(rng.integers(200, 1200))))
            assert {k: v["test"] for k, v in out.items()} == {"t": "ks", "n": "ks", "c": "chi2", "r": "chi2",
                                                               "b": "chi2"}
            for k, v in out.items():
                p_cols[k].append(v["p_value"])
            stream.append(min(1.0, len(out) * min(v["p_value"] for v in out.values())))
        p_window += stream
        any_rejection.append(bool(lond(stream, alpha)[0].any()))
    n = streams * per_stream
    assert n >= 1000
    levels = (0.001, 0.01, 0.05, 0.2, 0.5)
    for k in ("t", "c", "r", "b"):  # continuous KS and the chi-squares: uniform
        p = np.array(p_cols[k])
        for t in levels:
            share = float(np.mean(p <= t))
            assert _binomial_low(t, n) <= share <= _binomial_high(t, n), (k, t, share)
        if k == "t":
            assert stats.kstest(p, "uniform").pvalue > 1e-3
    # KS on a column with ties is conservative: never more small p-values than a uniform gives
    p = np.array(p_cols["n"])
    assert all(np.mean(p <= t) <= _binomial_high(t, n) for t in levels)
    # the window's Bonferroni p-value: at most uniform
    p = np.array(p_window)
    assert all(np.mean(p <= t) <= _binomial_high(t, n) for t in levels)
    # LOND's family-wise rate over the null streams (= its false discovery rate here) within its bound
    bound = 1 - np.prod(1 - alpha * lond_gamma(np.arange(1, per_stream + 1)))
    assert np.mean(any_rejection) <= _binomial_high(bound, streams)


def test_a_planted_shift_is_found_and_its_column_named():
    rng = np.random.default_rng(5)
    fitted = online_reference({"inputs": _draw(rng, 2000)}, KINDS)
    null = online_p_values(fitted, _draw(rng, 1000))
    moved = online_p_values(fitted, _draw(rng, 1000, shift=0.3))  # 0.3 of a unit on a t(3) column
    assert moved["t"]["p_value"] < 1e-6 and null["t"]["p_value"] > 1e-3
    assert min(v["p_value"] for k, v in moved.items() if k != "t") > 1e-3
    # the same shift goes through LOND: rejected at the second window's level, the first not
    p = [min(1.0, 5 * min(v["p_value"] for v in out.values())) for out in (null, moved)]
    assert lond(p, 0.05)[0].tolist() == [False, True]


def test_pooled_chi2_pools_rare_cells_and_equals_pearson_without_them():
    from scipy.stats import chi2_contingency

    ref, cur = [400, 300, 200, 100], [180, 160, 90, 70]
    stat, p, cells = pooled_chi2(ref, cur)
    expected = chi2_contingency(np.array([ref, cur]), correction=False)
    assert cells == 4 and stat == pytest.approx(expected[0]) and p == pytest.approx(expected[1])
    # a category seen once in the reference and once in the window joins its rarest neighbour
    ref, cur = [600, 390, 9, 1], [300, 195, 4, 1]
    stat, p, cells = pooled_chi2(ref, cur)
    assert cells == 3
    # pooled by hand: the two rare cells (expected 4.3 and 0.7 in the window) become one
    by_hand = chi2_contingency(np.array([[600, 390, 10], [300, 195, 5]]), correction=False)
    assert stat == pytest.approx(by_hand[0]) and p == pytest.approx(by_hand[1])
    assert pooled_chi2([5, 0], [0, 0]) == (0.0, 1.0, 1)  # one sample empty: nothing to compare


def test_the_drift_tests_ks_statistics_are_reused_and_equal_a_fresh_computation():
    from stalwart.monitor.analysis import window_metrics

    rng = np.random.default_rng(8)
    reference, window = _draw(rng, 2000), _draw(rng, 800, shift=0.1)
    model = {"columns": KINDS, "config": {}, "task": "classification"}
    ks = {}
    _, table = window_metrics({"inputs": reference, "prediction": [0] * 2000},
                              {"inputs": window, "prediction": [0] * 800}, model, ks=ks)
    assert {row["feature"]: row["test"] for row in table}["t"] == "wasserstein"
    assert set(ks) == {"t", "n"}  # the columns compared by their CDFs; the others are counted
    fitted = online_reference({"inputs": reference}, KINDS)
    assert online_p_values(fitted, window, ks=ks) == online_p_values(fitted, window)


def test_category_counts_keep_first_appearance_order_and_leave_missing_values_out():
    from stalwart.monitor.analysis import _category_counts

    values = ["x", None, "y", "x", float("nan"), np.float64(1.0), 1.0, True, np.float64("nan"), "y", "x"]
    counts = _category_counts(values)
    assert counts == {"x": 3, "y": 2, 1.0: 3} and list(counts) == ["x", "y", 1.0]
    assert all(type(k) is float for k in counts if not isinstance(k, str))
