"""detect_drift / TabularDrift: per-column tests, automatic choice, corrections, errors."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from stalwart.errors import ConfigError, InputError
from stalwart.shift import univariate as uv
from stalwart.shift.base import DETECTORS
from stalwart.shift.drift import TabularDrift, choose_test, detect_drift, multiple_testing


def _table(rng, n, shifts):
    return pd.DataFrame({f"x{j}": rng.normal(s, 1.0, size=n) for j, s in enumerate(shifts)})


def test_multiple_testing_bonferroni_vs_bh_on_constructed_p_values():
    p = [0.01, 0.03, 0.035, 0.5]  # BH thresholds 0.0125, 0.025, 0.0375, 0.05
    bh, cut_bh = multiple_testing(p, 0.05, "bh")
    assert bh.tolist() == [True, True, True, False]  # step-up: p2 > 0.025 but k = 3 qualifies
    assert cut_bh == pytest.approx(0.0375)
    bonf, cut_b = multiple_testing(p, 0.05, "bonferroni")
    assert bonf.tolist() == [True, False, False, False] and cut_b == pytest.approx(0.0125)
    none, _ = multiple_testing(p, 0.05, None)
    assert none.tolist() == [True, True, True, False]
    assert multiple_testing([0.2, 0.3], 0.05, "bh")[0].tolist() == [False, False]
    with pytest.raises(ConfigError, match="correction"):
        multiple_testing(p, 0.05, "holm")


@pytest.mark.parametrize("kind,n,n_unique,want", [
    ("numeric", 500, 400, ("ks", False)), ("numeric", 5000, 4000, ("wasserstein", False)),
    ("categorical", 500, 3, ("chi2", True)), ("categorical", 5000, 3, ("jensen_shannon", True)),
    ("integer", 800, 4, ("chi2", True)), ("boolean", 2000, 2, ("jensen_shannon", True)),
    ("integer", 800, 6, ("ks", False))])
def test_auto_rule_follows_evidently(kind, n, n_unique, want):
    assert choose_test(kind, n, n_unique) == want


def test_per_column_statistics_equal_scipy():
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"a": rng.normal(size=600), "c": rng.choice(list("pqr"), 600),
                        "w": rng.gamma(2.0, size=600)})
    cur = pd.DataFrame({"a": rng.normal(0.2, size=500), "c": rng.choice(list("pqrs"), 500),
                        "w": rng.gamma(2.2, size=500)})
    r = detect_drift(ref, cur, method={"w": "wasserstein"})
    f = {x.feature: x for x in r.features}
    ks = stats.ks_2samp(ref["a"], cur["a"])
    assert f["a"].test == "ks" and f["a"].statistic == pytest.approx(ks.statistic)
    assert f["a"].p_value == pytest.approx(ks.pvalue, rel=1e-6)
    table = pd.crosstab(np.r_[np.zeros(600), np.ones(500)], np.r_[ref["c"], cur["c"]]).to_numpy()
    chi = stats.chi2_contingency(table, correction=False)
    assert f["c"].test == "chi2" and f["c"].p_value == pytest.approx(chi.pvalue)
    assert f["w"].statistic == pytest.approx(stats.wasserstein_distance(ref["w"], cur["w"]) / ref["w"].std(ddof=0))
    # two p-value tests -> Bonferroni cutoff alpha / 2
    assert f["a"].threshold == pytest.approx(0.025) and r.threshold == 0.05


def test_null_false_positive_rate_after_bonferroni():
    rng = np.random.default_rng(1)
    runs, flagged = 200, 0
    for _ in range(runs):
        r = detect_drift(_table(rng, 300, [0] * 5), _table(rng, 300, [0] * 5))
        assert {f.test for f in r.features} == {"ks"}
        flagged += r.drifted
    tolerance = 3 * np.sqrt(0.05 * 0.95 / runs)
    assert flagged / runs <= 0.05 + tolerance


@pytest.mark.parametrize("method", ["auto", "ks", "anderson", "psi"])
def test_known_mean_shift_flags_exactly_the_shifted_columns(method):
    rng = np.random.default_rng(2)
    shifts = [0.0, 0.3, 0.0, 0.3, 0.0]
    r = detect_drift(_table(rng, 2000, [0] * 5), _table(rng, 2000, shifts), method=method,
                     threshold=0.04 if method == "psi" else None)
    assert r.drifted_features == ["x1", "x3"]
    assert r.details["share_drifted"] == pytest.approx(0.4) and r.statistic == pytest.approx(0.4)
    assert r.drifted


def test_corrections_are_ordered_none_bh_bonferroni():
    rng = np.random.default_rng(2)
    ref = _table(rng, 400, [0] * 8)
    cur = _table(rng, 400, [0, 0.15, 0.2, 0.2, 0.25, 0, 0, 0.3])
    results = {c: detect_drift(ref, cur, method="ks", correction=c) for c in (None, "bh", "bonferroni")}
    counts = {c: len(r.drifted_features) for c, r in results.items()}
    assert counts == {None: 5, "bh": 5, "bonferroni": 3}
    # each decision is the correction applied to the same raw p-values
    p = np.array([f.p_value for f in results[None].features])
    for c, r in results.items():
        assert [f.drifted for f in r.features] == multiple_testing(p, 0.05, c)[0].tolist()


def test_missing_values_dropped_and_reported():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=500), rng.normal(0.3, size=400)
    ref, cur = a.copy(), b.copy()
    ref[:50] = np.nan
    cur[::4] = np.nan
    r = detect_drift(pd.DataFrame({"v": ref}), pd.DataFrame({"v": cur}))
    want = stats.ks_2samp(a[50:], b[np.arange(400) % 4 != 0])
    assert r.features[0].statistic == pytest.approx(want.statistic)
    assert r.features[0].p_value == pytest.approx(want.pvalue, rel=1e-6)
    assert r.details["missing_share"]["v"] == {"reference": pytest.approx(0.1), "current": pytest.approx(0.25)}


def test_fit_once_test_many_and_arrays():
    rng = np.random.default_rng(5)
    ref = rng.normal(size=(1500, 3))
    det = TabularDrift(method="ks").fit(ref)
    first = det.test(rng.normal(size=(1500, 3)) + [0, 0, 0.5])
    second = det.test(rng.normal(size=(1200, 3)))
    assert first.drifted_features == ["x2"] and not second.drifted
    assert DETECTORS.get("tabular") is TabularDrift
    assert "TabularDrift(" in repr(det)
    frame = first.to_frame()
    assert list(frame["feature"]) == ["x0", "x1", "x2"]


def test_low_cardinality_numeric_is_categorical_in_auto():
    rng = np.random.default_rng(6)
    ref = pd.DataFrame({"i": rng.integers(0, 3, 3000), "b": rng.random(3000) < 0.3})
    cur = pd.DataFrame({"i": rng.integers(0, 3, 3000), "b": rng.random(3000) < 0.6})
    r = detect_drift(ref, cur)
    f = {x.feature: x for x in r.features}
    assert f["i"].test == "jensen_shannon" and not f["i"].drifted
    assert f["b"].test == "jensen_shannon" and f["b"].drifted and f["b"].kind == "boolean"


def test_bad_input_messages():
    rng = np.random.default_rng(7)
    ref = pd.DataFrame({"a": rng.normal(size=20), "c": list("xy") * 10})
    with pytest.raises(InputError, match=r"columns \['zz'\] are not in the reference"):
        detect_drift(ref, ref, columns=["zz"])
    with pytest.raises(InputError, match=r"current lacks columns \['c'\]"):
        detect_drift(ref, ref[["a"]])
    with pytest.raises(InputError, match="empty"):
        detect_drift(ref.iloc[:0], ref)
    with pytest.raises(InputError, match="only missing values"):
        detect_drift(ref.assign(a=np.nan), ref)
    with pytest.raises(InputError, match="current has only missing values"):
        detect_drift(ref, ref.assign(a=np.nan))
    with pytest.raises(ConfigError, match="method"):
        detect_drift(ref, ref, method="kolmogorov")
    with pytest.raises(ConfigError, match="needs a numeric column"):
        detect_drift(ref, ref, method={"c": "ks"})
    with pytest.raises(ConfigError, match=r"alpha=\.\.\.\) must be a number in \(0, 1\)"):
        TabularDrift(alpha=1.5)
    with pytest.raises(ConfigError, match="call fit"):
        TabularDrift().test(ref)


# -- a column whose type changed -------------------------------------------------------------------
def _typed(rng, n):
    return pd.DataFrame({"x": rng.normal(size=n), "y": rng.normal(size=n)})


@pytest.mark.parametrize("ref_values, cur_values, kinds", [
    (lambda r, n: r.normal(size=n), lambda r, n: r.choice(["low", "high"], n), ("numeric", "categorical")),
    (lambda r, n: r.choice(["low", "high"], n), lambda r, n: r.normal(size=n), ("categorical", "numeric")),
    (lambda r, n: r.integers(0, 50, n), lambda r, n: r.choice(["a", "b"], n), ("integer", "categorical")),
])
def test_numbers_and_text_swapped_are_a_type_change_in_both_directions(ref_values, cur_values, kinds):
    rng = np.random.default_rng(10)
    ref, cur = _typed(rng, 400), _typed(rng, 300)
    ref["t"], cur["t"] = ref_values(rng, 400), cur_values(rng, 300)
    r = detect_drift(ref, cur)
    f = {x.feature: x for x in r.features}
    assert (f["t"].test, f["t"].drifted, f["t"].p_value) == ("type_change", True, None)
    assert (f["t"].kind, f["t"].current_kind) == kinds
    assert f["t"].statistic == 1.0  # every current value is of the other kind
    assert r.drifted and r.drifted_features == ["t"] and list(r.details["type_changes"]) == ["t"]
    # the other columns are tested as usual; the correction counts only the two columns tested
    ks = stats.ks_2samp(ref["x"], cur["x"])
    assert f["x"].statistic == pytest.approx(ks.statistic) and f["x"].p_value == pytest.approx(ks.pvalue, rel=1e-6)
    assert f["x"].threshold == pytest.approx(0.05 / 2) and f["x"].current_kind is None
    assert r.details["share_drifted"] == pytest.approx(1 / 3)


def test_bool_and_int_are_a_type_change_not_equal_categories():
    rng = np.random.default_rng(11)
    flags = rng.random(500) < 0.3
    # True == 1 as a category, so the counts alone said "no drift at all" (chi-square 0, p = 1)
    for ref, cur, kinds in ((flags, flags.astype(int), ("boolean", "integer")),
                            (flags.astype(int), flags, ("integer", "boolean"))):
        f = detect_drift(pd.DataFrame({"b": ref}), pd.DataFrame({"b": cur})).features[0]
        assert (f.test, f.drifted, f.kind, f.current_kind, f.statistic) == ("type_change", True, *kinds, 1.0)


def test_a_few_unreadable_values_give_their_share_and_numbers_as_text_are_no_change():
    rng = np.random.default_rng(12)
    ref = pd.DataFrame({"v": rng.normal(size=500)})
    values = rng.normal(size=500)
    text = values.astype(str).astype(object)
    text[::50] = "N/A"  # 10 of 500
    f = detect_drift(ref, pd.DataFrame({"v": text})).features[0]
    assert (f.test, f.kind, f.current_kind) == ("type_change", "numeric", "categorical")
    assert f.statistic == pytest.approx(10 / 500)
    # numbers stored as text (and integers vs floats) are still numbers: the usual KS test
    as_text = detect_drift(ref, pd.DataFrame({"v": values.astype(str)})).features[0]
    ks = stats.ks_2samp(ref["v"], values.astype(str).astype(float))
    assert as_text.test == "ks" and as_text.statistic == pytest.approx(ks.statistic)
    ints = detect_drift(pd.DataFrame({"i": rng.integers(0, 50, 400)}),
                        pd.DataFrame({"i": rng.integers(0, 50, 400).astype(float)})).features[0]
    assert ints.test == "ks" and ints.current_kind is None


# -- samples too small for their statistic ----------------------------------------------------------
def test_one_row_is_refused_and_a_sparse_column_is_not_tested():
    rng = np.random.default_rng(13)
    ref = _table(rng, 500, [0, 0])
    with pytest.raises(InputError, match=r"too few values to test for drift: every column has fewer than "
                                         r"min_samples=10 non-missing values in a sample \('x0': 500 reference / 1 "
                                         r"current"):
        detect_drift(ref, ref.iloc[:1] + 5.0)
    with pytest.raises(InputError, match=r"the reference is too small to test for drift: no column has "
                                         r"min_samples=10 non-missing values \(most: 5\)"):
        detect_drift(ref.iloc[:5], ref)
    # asked for, one row is tested exactly: KS of one value against 500 is scipy's
    one = detect_drift(ref, ref.iloc[:1] + 5.0, min_samples=1).features[0]
    ks = stats.ks_2samp(ref["x0"], ref["x0"].iloc[:1] + 5.0)
    assert one.statistic == pytest.approx(ks.statistic) and one.p_value == pytest.approx(ks.pvalue, rel=1e-6)
    # a column with 5 current values is not tested; the share counts the columns judged
    cur = _table(rng, 400, [0, 1.0])
    cur.loc[5:, "x0"] = np.nan
    r = detect_drift(ref, cur)
    f = {x.feature: x for x in r.features}
    assert (f["x0"].test, f["x0"].statistic, f["x0"].threshold, f["x0"].drifted) == ("too_few_samples", 5.0, 10.0,
                                                                                      False)
    assert f["x1"].drifted and f["x1"].threshold == pytest.approx(0.05)  # alone in the correction
    assert r.details["share_drifted"] == 1.0 and r.details["too_few_samples"] == {"x0": {"reference": 500,
                                                                                           "current": 5}}
    with pytest.raises(ConfigError, match=r"TabularDrift\(min_samples=...\) must be an integer >= 1"):
        TabularDrift(min_samples=0)


@pytest.mark.parametrize("method", ["psi", "jensen_shannon", "hellinger"])
def test_values_on_a_bin_edge_fall_in_the_same_bin_in_both_samples(method):
    """Integer data put values on the quantile edges: the reference and the current sample must
    bin them alike (both above the edge), so a sample compared with itself shows no drift."""
    x = np.random.default_rng(1).integers(0, 50, 2000).astype(float)
    y = np.random.default_rng(2).integers(0, 52, 1500).astype(float)
    res = TabularDrift(method=method).fit(pd.DataFrame({"a": x})).test(pd.DataFrame({"a": x}))
    assert res.features[0].statistic == 0.0
    got = TabularDrift(method=method).fit(pd.DataFrame({"a": x})).test(pd.DataFrame({"a": y})).features[0].statistic
    assert got == getattr(uv, method)(x, y).statistic
