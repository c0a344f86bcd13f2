"""detect_drift / TabularDrift: per-column tests, automatic choice, corrections, errors."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from stalwart.errors import ConfigError, InputError
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
