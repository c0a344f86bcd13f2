"""Weak-slice discovery: planted slices are found and named, nothing is found on data with no
weak slice, and each number equals an independent computation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from stalwart.datasets import make_planted_slices
from stalwart.errors import ConfigError, InputError
from stalwart.groups import Predicate, find_slices, text_features


def jaccard(a, b):
    return (a & b).sum() / max((a | b).sum(), 1)


@pytest.fixture(scope="module")
def planted():
    p = make_planted_slices(40_000, 20, seed=3)
    return p, find_slices(p.x, p.error, n_boot=0, seed=0)


def test_every_planted_slice_is_found_and_nothing_else(planted):
    p, res = planted
    masks = [s.mask(p.x) for s in res.slices]
    for name, truth in zip(p.descriptions, p.masks):
        assert max(jaccard(m, truth) for m in masks) >= 0.8, name
    for s, m in zip(res.slices, masks):
        assert max(jaccard(m, truth) for truth in p.masks) >= 0.5, f"false discovery: {s.description}"
    assert len(res.slices) == len(p.masks)


def test_refined_boundaries_land_near_the_planted_ones(planted):
    p, res = planted
    by_text = {s.description: s for s in res.slices}
    x7 = next(s for t, s in by_text.items() if t.startswith("x7 <"))
    assert x7.predicates[0].high == pytest.approx(4.1, abs=0.15)
    x3 = next(s for t, s in by_text.items() if "x3 >=" in t)
    assert x3.predicates[0].low == pytest.approx(1.28, abs=0.05) and "c1 = 'b'" in x3.description


def test_slices_are_ordered_by_effect_and_carry_consistent_numbers(planted):
    p, res = planted
    effects = [s.effect for s in res.slices]
    assert effects == sorted(effects, reverse=True)
    for s in res.slices:
        m = s.mask(p.x)
        inside, outside = p.error[m], p.error[~m]
        assert s.n == m.sum() and s.support == pytest.approx(m.mean())
        assert s.metric == pytest.approx(inside.mean()) and s.complement == pytest.approx(outside.mean())
        assert s.metric_low < s.metric < s.metric_high and s.effect_low < s.effect < s.effect_high
        assert s.p_value <= res.p_cutoff and s.residual_p_value <= res.p_cutoff


def test_binary_p_value_is_the_one_sided_likelihood_ratio_test(planted):
    """G-test on the 2x2 table (scipy), halved for one side: an independent closed form."""
    p, res = planted
    s = res.slices[-1]
    m = s.mask(p.x)
    table = np.array([[p.error[m].sum(), (1 - p.error[m]).sum()], [p.error[~m].sum(), (1 - p.error[~m]).sum()]])
    g, _, _, _ = stats.chi2_contingency(table, correction=False, lambda_="log-likelihood")
    assert s.p_value == pytest.approx(0.5 * stats.chi2.sf(g, 1), rel=1e-6)


def test_bh_cutoff_counts_every_slice_examined():
    """Two categorical columns (4 and 3 values), no numeric column, no tree: 7 single conditions
    and 12 pairs are every hypothesis, so m = 19 and the cutoff is k alpha / 19."""
    rng = np.random.default_rng(0)
    n = 12_000
    x = pd.DataFrame({"a": rng.choice(list("pqrs"), n), "b": rng.choice(list("uvw"), n)})
    err = (rng.random(n) < np.where((x.a == "p") & (x.b == "u"), 0.3, 0.05)).astype(int)
    res = find_slices(x, err, tree=False, n_boot=0)
    assert res.n_examined == 19
    assert [s.description for s in res.slices] == ["a = 'p' and b = 'u'"]
    k = round(res.p_cutoff * 19 / 0.05)
    assert res.p_cutoff == pytest.approx(k * 0.05 / 19) and 1 <= k <= 19


@pytest.mark.parametrize("seed", range(6))
def test_no_weak_slice_means_none_reported(seed):
    """On data where the error does not depend on any column, every report is a false discovery:
    Benjamini-Hochberg keeps them rare (over 6 seeds at most one run may report one)."""
    p = make_planted_slices(8000, 16, n_slices=0, seed=seed)
    res = find_slices(p.x, p.error, n_boot=0, seed=seed)
    assert len(res.slices) <= 1
    if seed:
        assert not res.slices or res.slices[0].p_value <= res.p_cutoff


def test_null_false_discoveries_are_rare_over_many_runs():
    reported = sum(len(find_slices(*(lambda p: (p.x, p.error))(make_planted_slices(3000, 16, n_slices=0, seed=s)),
                                   n_boot=0, tree=False).slices) for s in range(10, 22))
    assert reported <= 1


def test_a_slice_weak_only_because_it_holds_a_weaker_one_is_merged():
    """'age >= 70' has a raised error rate only through 'age >= 70 and region = n': explained away."""
    rng = np.random.default_rng(1)
    n = 20_000
    x = pd.DataFrame({"age": rng.integers(18, 90, n), "region": rng.choice(list("nsew"), n)})
    weak = (x.age >= 70) & (x.region == "n")
    err = (rng.random(n) < np.where(weak, 0.5, 0.05)).astype(int)
    res = find_slices(x, err, n_boot=0)
    assert [s.description for s in res.slices] == ["age >= 70 and region = 'n'"]


def test_three_conditions_through_the_beam_and_missing_values_as_a_condition():
    rng = np.random.default_rng(3)
    n = 20_000
    x = pd.DataFrame({"a": rng.normal(size=n), "b": rng.choice(list("pqr"), n), "c": rng.uniform(size=n)})
    x.loc[rng.random(n) < 0.05, "a"] = np.nan
    weak = (x.a > 0.5) & (x.b == "q") & (x.c < 0.4)
    err = (rng.random(n) < np.where(weak, 0.4, 0.05)).astype(int)
    res = find_slices(x, err, max_predicates=3, n_boot=0)
    assert len(res.slices) == 1 and jaccard(res.slices[0].mask(x), weak.to_numpy()) > 0.9
    assert len(res.slices[0].predicates) == 3
    weak2 = x.a.isna() & (x.b == "p")
    err2 = (rng.random(n) < np.where(weak2, 0.5, 0.05)).astype(int)
    res2 = find_slices(x, err2, n_boot=0)
    assert [s.description for s in res2.slices] == ["a is missing and b = 'p'"]


def test_a_continuous_target_uses_welch_z():
    rng = np.random.default_rng(4)
    n = 10_000
    x = pd.DataFrame({"g": rng.choice(list("abcde"), n), "v": rng.uniform(size=n)})
    loss = rng.exponential(size=n) + np.where(x.g == "c", 0.5, 0.0)
    res = find_slices(x, loss, n_boot=0)
    s = res.slices[0]
    assert s.description == "g = 'c'"
    m = s.mask(x)
    a, b = loss[m], loss[~m]
    z = (a.mean() - b.mean()) / math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    assert s.p_value == pytest.approx(stats.norm.sf(z), rel=1e-6)


def test_stability_is_high_for_a_real_slice_and_absent_without_resamples(planted):
    p, res = planted
    assert all(s.stability is None for s in res.slices)
    rng = np.random.default_rng(5)
    n = 6000
    x = pd.DataFrame({"age": rng.integers(18, 90, n), "region": rng.choice(list("nsew"), n)})
    err = (rng.random(n) < np.where((x.age >= 70) & (x.region == "n"), 0.5, 0.05)).astype(int)
    found = find_slices(x, err, n_boot=8)
    assert found.n_boot == 8 and found.slices[0].stability >= 0.75


def test_constant_target_and_bad_input():
    x = pd.DataFrame({"a": np.arange(200.0)})
    res = find_slices(x, np.zeros(200))
    assert res.slices == () and any("every row" in t for t in res.notes)
    with pytest.raises(InputError, match="at least 60"):
        find_slices(x.iloc[:50], np.zeros(50))
    with pytest.raises(InputError, match="infinite"):
        find_slices(pd.DataFrame({"a": np.r_[np.inf, np.arange(199.0)]}), np.r_[1, np.zeros(199)])
    with pytest.raises(InputError, match="duplicate"):
        find_slices(pd.DataFrame(np.ones((100, 2)), columns=["a", "a"]), np.zeros(100))
    with pytest.raises(ConfigError, match="min_support"):
        find_slices(x, np.zeros(200), min_support=2.5)


def test_predicates_read_as_conditions_and_match_rows():
    v = pd.Series([1.0, 5.0, np.nan, 9.0])
    assert str(Predicate("age", True, low=2.0)) == "age >= 2"
    assert str(Predicate("age", True, low=2.0, high=6.0)) == "2 <= age < 6"
    assert str(Predicate("age", True, high=6.0, missing=True)) == "(age < 6 or age is missing)"
    assert Predicate("age", True, low=2.0, high=6.0).mask(v).tolist() == [False, True, False, False]
    assert Predicate("age", True, finite=False, missing=True).mask(v).tolist() == [False, False, True, False]
    c = pd.Series(["n", "s", None, "e"])
    assert str(Predicate("r", False, values=("n",))) == "r = 'n'"
    assert Predicate("r", False, values=("n", "e"), negate=True).mask(c).tolist() == [False, True, False, False]


def test_text_features_give_length_and_keyword_columns():
    f = text_features(["the food was bad", "great food", "bad bad service"], top_k=2)
    assert list(f.columns) == ["n_chars", "n_words", "has_bad", "has_food"]
    assert f.n_words.tolist() == [4, 2, 3] and f.has_bad.tolist() == [True, False, True]
