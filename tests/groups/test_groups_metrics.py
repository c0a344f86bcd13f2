"""Group metrics and disparities against hand-computed values, interval coverage by simulation,
intersections, missing values as their own group, and refused input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stalwart import groups
from stalwart.errors import ConfigError, InputError

# two groups, hand-made: group a has 6 rows, group b 4
Y = np.array([1, 1, 0, 0, 1, 0, 1, 0, 1, 0])
P = np.array([1, 0, 0, 1, 1, 0, 1, 1, 0, 0])
S = np.array(["a", "a", "a", "a", "a", "a", "b", "b", "b", "b"])
# a: y=[1,1,0,0,1,0] p=[1,0,0,1,1,0] -> tp 2, fn 1, fp 1, tn 2: tpr 2/3, fpr 1/3, sel 3/6, acc 4/6, ppv 2/3
# b: y=[1,0,1,0]     p=[1,1,0,0]     -> tp 1, fn 1, fp 1, tn 1: tpr 1/2, fpr 1/2, sel 2/4, acc 2/4, ppv 1/2


def test_per_group_values_by_hand():
    res = groups.group_metrics(Y, P, S, metrics=["accuracy", "tpr", "fpr", "selection_rate", "precision", "f1",
                                                 "error", "fnr", "tnr"], n_boot=200)
    a, b = res.by_group
    assert (a["group"], a["n"], b["group"], b["n"]) == ("a", 6, "b", 4)
    want_a = {"accuracy": 4 / 6, "tpr": 2 / 3, "fpr": 1 / 3, "selection_rate": 0.5, "precision": 2 / 3,
              "f1": 2 / 3, "error": 2 / 6, "fnr": 1 / 3, "tnr": 2 / 3}
    want_b = {"accuracy": 0.5, "tpr": 0.5, "fpr": 0.5, "selection_rate": 0.5, "precision": 0.5, "f1": 0.5,
              "error": 0.5, "fnr": 0.5, "tnr": 0.5}
    for m in want_a:
        assert a[m] == pytest.approx(want_a[m]) and b[m] == pytest.approx(want_b[m]), m
        assert a[f"{m}_low"] <= a[m] <= a[f"{m}_high"]
    assert res.overall["accuracy"]["value"] == pytest.approx(6 / 10)
    assert res.spread["accuracy"]["difference"] == pytest.approx(4 / 6 - 0.5)
    assert res.spread["accuracy"]["ratio"] == pytest.approx(0.5 / (4 / 6))
    assert res.spread["accuracy"]["difference_low"] <= res.spread["accuracy"]["difference_high"]
    assert res.worst("accuracy")["group"] == "b"


def test_disparities_by_hand():
    kw = {"sensitive_features": S}
    assert groups.demographic_parity_difference(Y, P, **kw) == pytest.approx(0.0)
    assert groups.demographic_parity_ratio(Y, P, **kw) == pytest.approx(1.0)
    assert groups.equalized_odds_difference(Y, P, **kw) == pytest.approx(max(2 / 3 - 1 / 2, 1 / 2 - 1 / 3))
    assert groups.equalized_odds_ratio(Y, P, **kw) == pytest.approx(min(0.5 / (2 / 3), (1 / 3) / 0.5))
    kw_p = {"sensitive_features": S, "privileged": "a"}
    assert groups.statistical_parity_difference(Y, P, **kw_p) == pytest.approx(0.0)
    assert groups.disparate_impact(Y, P, **kw_p) == pytest.approx(1.0)
    assert groups.equal_opportunity_difference(Y, P, **kw_p) == pytest.approx(0.5 - 2 / 3)
    assert groups.average_odds_difference(Y, P, **kw_p) == pytest.approx(((0.5 - 1 / 3) + (0.5 - 2 / 3)) / 2)
    assert groups.predictive_parity_difference(Y, P, **kw_p) == pytest.approx(0.5 - 2 / 3)


def test_a_known_disparity_in_selection():
    rng = np.random.default_rng(0)
    s = rng.choice(["f", "m"], size=4000)
    p = (rng.random(4000) < np.where(s == "f", 0.3, 0.5)).astype(int)  # planted: 0.3 vs 0.5
    y = rng.integers(0, 2, 4000)
    assert groups.demographic_parity_difference(y, p, sensitive_features=s) == pytest.approx(0.2, abs=0.03)
    assert groups.disparate_impact(y, p, sensitive_features=s, privileged="m") == pytest.approx(0.6, abs=0.06)
    res = groups.group_metrics(y, p, s, metrics=["selection_rate"], n_boot=300)
    sp = res.spread["selection_rate"]
    assert sp["difference_low"] <= 0.2 <= sp["difference_high"]


def test_rate_intervals_cover_the_true_rate_about_95_percent():
    """A group's accuracy interval is Wilson's on its counts; over 10,000 simulated groups of 60
    rows with true accuracy 0.8 it covers 0.8 in 93-97% of them."""
    from stalwart._stats import wilson_interval

    res = groups.group_metrics(Y, P, S, metrics=["accuracy"], n_boot=10)
    assert (res.by_group[0]["accuracy_low"], res.by_group[0]["accuracy_high"]) == pytest.approx(wilson_interval(4, 6))
    k = np.random.default_rng(1).binomial(60, 0.8, size=10_000)
    lo, hi = wilson_interval(k, 60)
    assert 0.93 <= np.mean((lo <= 0.8) & (0.8 <= hi)) <= 0.97


def test_intersections_and_missing_values():
    frame = pd.DataFrame({"sex": ["f", "f", "m", "m", None, "f"], "age": ["old", "young", "old", "young", "old",
                                                                           "old"]})
    y = np.array([1, 0, 1, 0, 1, 1])
    res = groups.group_metrics(y, y, frame, metrics=["accuracy"], n_boot=50)
    names = [r["group"] for r in res.by_group]
    assert "f & old" in names and "missing & old" in names and len(names) == 5
    assert res.sensitive == ("sex", "age")
    assert any("'missing'" in n and "sex" in n for n in res.notes)


def test_refused_input():
    with pytest.raises(InputError, match="one value"):
        groups.group_metrics(Y, P, np.array(["a"] * 10))
    with pytest.raises(InputError, match="min_group_size=5"):
        groups.group_metrics(Y, P, S, min_group_size=5)
    with pytest.raises(ConfigError, match="unknown metric"):
        groups.group_metrics(Y, P, S, metrics=["accuracyy"])
    with pytest.raises(ConfigError, match="y_score"):
        groups.group_metrics(Y, P, S, metrics=["mean_score"])
    with pytest.raises(InputError, match="rows but y has"):
        groups.group_metrics(Y, P, S[:5])
    with pytest.raises(ConfigError, match="privileged group 'c'"):
        groups.disparate_impact(Y, P, sensitive_features=S, privileged="c")
    with pytest.raises(ConfigError, match="compare two groups"):
        groups.disparate_impact(Y, P, sensitive_features=np.r_[S[:8], ["c", "c"]], privileged="a")


def test_calibration_error_by_hand_and_per_group():
    """Ten-bin expected calibration error: |positive rate - mean score| per bin, weighted by the
    bin's share. Group a: scores 0.05 (2 rows, 1 positive) and 0.95 (2 rows, 2 positive):
    (2/4)|0.5 - 0.05| + (2/4)|1 - 0.95| = 0.25. Group b: perfectly calibrated at 0.5: 0."""
    y = np.array([0, 1, 1, 1, 0, 1, 0, 1])
    s = np.array([0.05, 0.05, 0.95, 0.95, 0.5, 0.5, 0.5, 0.5])
    g = np.array(["a"] * 4 + ["b"] * 4)
    res = groups.group_metrics(y, (s > 0.5).astype(int), g, metrics=["calibration_error"], y_score=s, n_boot=50)
    by = {r["group"]: r for r in res.by_group}
    assert by["a"]["calibration_error"] == pytest.approx(0.25) and by["b"]["calibration_error"] == pytest.approx(0.0)
    assert res.spread["calibration_error"]["difference"] == pytest.approx(0.25)
    with pytest.raises(ConfigError, match="need y_score"):
        groups.group_metrics(y, y, g, metrics=["calibration_error"])
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        groups.group_metrics(y, y, g, metrics=["calibration_error"], y_score=s * 2)
