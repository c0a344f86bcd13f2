"""The group_metrics check on data with a planted disparity: the worst group is found, its gap
carries an interval, conditions judge it, and bad sensitive columns are refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.tree import DecisionTreeClassifier

import stalwart
from stalwart import checks, groups
from stalwart.errors import ConfigError


@pytest.fixture(scope="module")
def planted():
    """Group 'b' has noisier labels: any model is less accurate on it (about 0.95 vs 0.75)."""
    rng = np.random.default_rng(0)
    n = 3000
    x1 = rng.normal(size=n)
    grp = rng.choice(["a", "b"], size=n, p=[0.7, 0.3])
    y = (x1 > 0).astype(int)
    flip = rng.random(n) < np.where(grp == "b", 0.25, 0.03)
    y = np.where(flip, 1 - y, y)
    x = pd.DataFrame({"x1": x1, "x2": rng.normal(size=n), "grp": (grp == "b").astype(int)})
    model = DecisionTreeClassifier(max_depth=2, random_state=0).fit(x[:2000], y[:2000])
    return model, stalwart.Dataset.from_arrays(x[2000:].reset_index(drop=True), y[2000:]), grp[2000:]


def test_the_worst_group_and_its_gap(planted):
    model, ds, grp = planted
    res = checks.get("group_metrics", sensitive=["grp"], conditions=["accuracy_difference <= 0.1"]).run(model, ds)
    assert res.status.value == "FAIL"
    worst = res.metrics["worst_group_accuracy"]
    assert worst.value == pytest.approx(0.75, abs=0.06) and worst.low < worst.value < worst.high
    gap = res.metrics["accuracy_difference"]
    assert gap.value == pytest.approx(0.2, abs=0.06) and gap.low > 0.1  # the interval excludes no gap
    rows = {r["group"]: r for r in res.tables["groups"]}
    pred = model.predict(ds.x)
    for g, code in (("0", 0), ("1", 1)):
        mask = ds.x["grp"].to_numpy() == code
        assert rows[g]["accuracy"] == pytest.approx(np.mean(pred[mask] == np.asarray(ds.y)[mask]))
    want = groups.equalized_odds_difference(np.asarray(ds.y), pred, sensitive_features=ds.x["grp"])
    assert res.metrics["equalized_odds_difference"].value == pytest.approx(want)
    assert "accuracy_by_group" in res.figures


def test_unknown_sensitive_column_and_bad_parameters(planted):
    model, ds, _ = planted
    with pytest.raises(ConfigError, match=r"\['sex'\] are not in the data"):
        checks.get("group_metrics", sensitive=["sex"]).run(model, ds)
    with pytest.raises(ConfigError, match="sensitive"):
        checks.get("group_metrics", sensitive="grp")
    with pytest.raises(ConfigError, match="metrics"):
        checks.get("group_metrics", sensitive=["grp"], metrics=["mean_score"])


def test_a_group_below_the_minimum_size_is_an_error_not_a_number(planted):
    model, ds, _ = planted
    res = checks.get("group_metrics", sensitive=["grp"], min_group_size=500).run(model, ds)
    assert res.status.value == "ERROR" and "min_group_size=500" in res.message


@pytest.fixture(scope="module")
def brittle_group():
    """Group 'b' sits close to the decision boundary (x1 ~ N(0, 0.15) against N(0, 1.5) for 'a'):
    feature noise flips its predictions far more often."""
    rng = np.random.default_rng(2)
    n = 4000
    grp = rng.choice(["a", "b"], size=n)
    x1 = np.where(grp == "b", rng.normal(0, 0.15, n), rng.normal(0, 1.5, n))
    x = pd.DataFrame({"x1": x1, "x2": rng.normal(size=n), "grp": (grp == "b").astype(int)})
    y = (x1 > 0).astype(int)
    model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(x[:2000], y[:2000])
    return model, stalwart.Dataset.from_arrays(x[2000:].reset_index(drop=True), y[2000:])


def test_group_robustness_finds_the_group_noise_hurts(brittle_group):
    model, ds = brittle_group
    res = checks.get("group_robustness", sensitive=["grp"], perturbations=["feature_noise"],
                     conditions=["accuracy_drop_gap <= 0.05"]).run(model, ds)
    assert res.status.value == "FAIL"
    rows = {r["group"]: r for r in res.tables["drops"]}
    assert rows["1"]["drop"] > rows["0"]["drop"] + 0.1
    gap = res.metrics["accuracy_drop_gap"]
    assert gap.value == pytest.approx(rows["1"]["drop"] - rows["0"]["drop"]) and gap.low > 0.05
    worst = res.metrics["worst_group_accuracy_drop"]
    assert worst.value == rows["1"]["drop"] and worst.low < worst.value < worst.high
    # the same draws for every group: the per-group drops recombine into the overall drop
    n0, n1 = rows["0"]["n"], rows["1"]["n"]
    overall = (rows["0"]["drop"] * n0 + rows["1"]["drop"] * n1) / (n0 + n1)
    assert 0 < overall < rows["1"]["drop"]


def test_group_robustness_refuses_unknown_perturbations_and_columns(brittle_group):
    model, ds = brittle_group
    with pytest.raises(ConfigError, match="unknown perturbation"):
        checks.get("group_robustness", sensitive=["grp"], perturbations=["gaussian_blur"])
    with pytest.raises(ConfigError, match=r"\['sex'\] are not in the data"):
        checks.get("group_robustness", sensitive=["sex"]).run(model, ds)


def test_stability_check_on_a_refittable_model():
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier

    bc = load_breast_cancer(as_frame=True)
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(bc.data, bc.target)
    ds = stalwart.Dataset.from_arrays(bc.data, bc.target.to_numpy())
    res = checks.get("stability", cv=5, seeds=[0, 1, 2], conditions=["churn <= 0.001"]).run(model, ds)
    assert res.status.value == "FAIL"  # five trees refitted with other seeds disagree on some rows
    m = res.metrics
    assert m["cv_accuracy"].low < m["cv_accuracy"].value < m["cv_accuracy"].high
    assert len(res.tables["folds"]) == 5 and m["cv_accuracy_spread"].value >= 0
    with pytest.raises(ConfigError, match="seeds"):
        checks.get("stability", seeds=[0])


def test_stability_check_skips_a_model_it_cannot_refit(planted):
    import torch

    _, ds, _ = planted
    net = torch.nn.Sequential(torch.nn.Linear(3, 2))
    res = checks.get("stability").run(net, ds)
    assert res.status.value == "SKIP" and "fit(x, y, seed)" in res.message


def test_robust_accuracy_per_group_matches_the_linear_closed_form():
    """A linear model: a row is robust at linf budget eps (per feature: eps times its range) iff it
    is classified correctly and its margin |w.x + b| exceeds sum_j |w_j| eps range_j. The group
    whose rows sit near the boundary is the one an adversary hurts; the attack must not
    over-report robustness (never above the closed form) and must not be weak (close to it)."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(2)
    n = 1600
    grp = rng.choice(["near", "far"], size=n)
    x1 = np.where(grp == "near", rng.normal(0, 0.3, n), rng.normal(0, 2.0, n))
    x = pd.DataFrame({"x1": x1, "x2": rng.normal(size=n)})
    y = (x1 + 0.1 * rng.normal(size=n) > 0).astype(int)
    model = LogisticRegression().fit(x, y)
    data = stalwart.Dataset.from_arrays(x.assign(grp=grp), y, modality="tabular").with_sensitive(["grp"])
    eps = 0.03
    r = checks.GroupRobustness(sensitive=["grp"], eps=eps, max_samples=n, perturbations=["feature_noise"]).run(
        model, data, seed=0)
    assert r.status.value == "PASS", r.message
    lo, hi = data.schema.numeric_bounds()
    w, b = model.coef_[0], model.intercept_[0]
    margin = x.to_numpy() @ w + b
    budget = np.sum(np.abs(w) * eps * (hi - lo))
    robust = (model.predict(x) == y) & (np.abs(margin) > budget)
    by_group = {row["group"]: row for row in r.tables["robust_by_group"]}
    for g in ("near", "far"):
        expected = robust[grp == g].mean()
        assert by_group[g]["robust_accuracy"] <= expected + 1e-9
        assert by_group[g]["robust_accuracy"] >= expected - 0.03
    assert r.metrics["worst_group_robust_accuracy"].value == by_group["near"]["robust_accuracy"]
    gap = r.metrics["robust_accuracy_gap"]
    assert gap.value > 0.3 and gap.low < gap.value < gap.high


def test_calibration_error_per_group_reads_the_positive_probability():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(3)
    n = 2000
    grp = rng.choice(["a", "b"], size=n)
    x = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n)})
    y = (x.x1 + rng.normal(0, 0.5, n) > 0).astype(int).to_numpy()
    y = np.where((grp == "b") & (rng.random(n) < 0.3), 1 - y, y)  # group b's labels noisier: miscalibrated there
    model = LogisticRegression().fit(x[grp == "a"], y[grp == "a"])
    data = stalwart.Dataset.from_arrays(x.assign(grp=grp), y, modality="tabular").with_sensitive(["grp"])
    r = checks.GroupPerformance(sensitive=["grp"], metrics=["calibration_error", "accuracy"]).run(model, data, seed=0)
    direct = groups.group_metrics(y, model.predict(x), grp, metrics=["calibration_error"],
                                  y_score=model.predict_proba(x)[:, 1], n_boot=10)
    worst = max(direct.by_group, key=lambda row: row["calibration_error"])
    assert worst["group"] == "b"
    assert r.metrics["worst_group_calibration_error"].value == pytest.approx(worst["calibration_error"])


@pytest.mark.parametrize("method", ["reweighing", "thresholds:demographic_parity", "thresholds:equalized_odds"])
def test_mitigation_shows_the_disparity_before_and_after_on_the_same_rows(method):
    """Historical labels favour group m; the model is not given the group (side table). Each
    mitigation lowers its targeted disparity, with an interval on the reduction that excludes 0;
    the numbers equal the public disparity functions on the out-of-fold predictions."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    n = 4000
    sex = rng.choice(["f", "m"], size=n)
    skill = rng.normal(size=n)
    y = (skill + np.where(sex == "m", 0.8, -0.8) + rng.normal(0, 0.5, n) > 0).astype(int)
    proxy = np.where(sex == "m", 1.0, 0.0) + rng.normal(0, 0.3, n)  # the model sees a proxy of the group
    x = pd.DataFrame({"skill": skill, "proxy": proxy})
    model = LogisticRegression().fit(x, y)
    data = stalwart.Dataset.from_arrays(x.assign(sex=sex), y, modality="tabular").with_sensitive(["sex"])
    r = checks.Mitigation(sensitive="sex", method=method, n_boot=200).run(model, data, seed=0)
    assert r.status.value == "PASS", r.message
    m = r.metrics
    assert m["disparity_after"].value < m["disparity_before"].value
    assert m["disparity_reduction"].low > 0
    before, after = r.tables["before_after"]
    assert before["model"] == "before (plain)" and after["model"].startswith("after")
    assert 0.5 < m["accuracy_after"].value <= m["accuracy_before"].value + 0.02


def test_mitigation_skips_a_model_it_cannot_refit():
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"a": rng.normal(size=200), "g": rng.choice(["p", "q"], 200)})
    y = (x.a > 0).astype(int).to_numpy()
    data = stalwart.Dataset.from_arrays(x, y, modality="tabular")
    r = checks.Mitigation(sensitive="g").run(lambda v: np.c_[1 - (v.a > 0), v.a > 0].astype(float), data)
    assert r.status.value == "SKIP" and "scikit-learn" in r.message


def test_mitigation_disparities_equal_the_public_functions():
    from stalwart.checks.groups import _dp, _eodds  # noqa: PLC2701 - the check's fast bootstrap path

    rng = np.random.default_rng(5)
    y, p = rng.integers(0, 2, 500), rng.integers(0, 2, 500)
    g = rng.integers(0, 3, 500)
    assert _dp(y, p, g, 1) == pytest.approx(groups.demographic_parity_difference(y, p, sensitive_features=g))
    assert _eodds(y, p, g, 1) == pytest.approx(groups.equalized_odds_difference(y, p, sensitive_features=g))
