"""NaturalRobustness on real models: numbers checked against independent recomputation."""

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from stalwart import datasets
from stalwart._stats import wilson_interval
from stalwart.checks import NaturalRobustness, Status
from stalwart.data.dataset import Dataset
from stalwart.errors import ConfigError
from stalwart.models import wrap


@pytest.fixture(scope="module")
def breast_cancer():
    train, test = datasets.load_split("breast_cancer", seed=0)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(train.x, train.y)
    return wrap(model), test


@pytest.fixture(scope="module")
def result(breast_cancer):
    model, test = breast_cancer
    check = NaturalRobustness(perturbations=["feature_noise", "missing_values", "category_swap"],
                              severities=[1, 3, 5], max_samples=1000)
    return check.run(model, test, seed=0)


def test_clean_accuracy_and_intervals_match_independent_computation(breast_cancer, result):
    model, test = breast_cancer
    correct = model.predict(test.x) == test.y  # max_samples >= len(test): the whole split is used
    k, n = int(correct.sum()), len(test)
    clean = result.metrics["clean_accuracy"]
    assert clean.value == pytest.approx(k / n) and clean.n == n
    assert (clean.low, clean.high) == pytest.approx(wilson_interval(k, n))


def test_noise_lowers_accuracy_and_rows_are_consistent(result):
    rows = {(r["perturbation"], r["severity"]): r for r in result.tables["perturbations"]}
    clean = result.metrics["clean_accuracy"].value
    assert rows[("feature_noise", 5)]["accuracy"] < clean
    for r in rows.values():
        if r["status"] != "ok":
            continue
        assert 0 <= r["flip_rate"] <= 1
        assert r["low"] <= r["accuracy"] <= r["high"]
        assert r["flip_low"] <= r["flip_rate"] <= r["flip_high"]
        assert r["drop"] == pytest.approx(clean - r["accuracy"])
        # accuracy can only change where a prediction changed
        assert abs(r["drop"]) <= r["flip_rate"] + 1e-12
    drops = [r["drop"] for r in rows.values() if r["status"] == "ok"]
    s3 = [r["drop"] for (p, s), r in rows.items() if r["status"] == "ok" and s <= 3]
    assert result.metrics["max_accuracy_drop"].value == pytest.approx(max(drops))
    assert result.metrics["accuracy_drop_s3"].value == pytest.approx(max(s3))
    m = result.metrics["accuracy_drop_s3"]
    assert m.low <= m.value <= m.high


def test_model_that_rejects_nan_gives_error_rows_and_warn(result):
    errors = [r for r in result.tables["perturbations"] if r["perturbation"] == "missing_values"]
    assert len(errors) == 3 and all(r["status"] == "error" and r["accuracy"] is None for r in errors)
    # the error text is stated once, whole, in its own table; the rows only mark the missing cells
    assert "error" not in errors[0]
    (entry,) = result.tables["errors"]
    assert entry["perturbation"] == "missing_values" and "NaN" in entry["error"] and "…" not in entry["error"]
    assert result.status in (Status.WARN, Status.FAIL)
    assert "could not handle 1 perturbation(s): missing_values" in result.message
    # category_swap has no categorical column to act on: reported as not applicable, not as 0 drop
    assert result.tables["not_applicable"][0]["perturbation"] == "category_swap"
    assert all(r["perturbation"] != "category_swap" for r in result.tables["perturbations"])


def test_curve_starts_at_clean_and_skips_error_points(result):
    curve = result.curves["accuracy_vs_severity"]
    series = {s["name"]: s for s in curve["series"]}
    assert set(series) == {"feature_noise", "missing_values"}
    noise = series["feature_noise"]
    assert noise["x"] == [0, 1, 3, 5]
    assert noise["y"][0] == pytest.approx(result.metrics["clean_accuracy"].value)
    assert series["missing_values"]["x"] == [0]


def test_same_seed_same_result_and_seed_matters(breast_cancer):
    model, test = breast_cancer
    check = NaturalRobustness(perturbations=["feature_noise"], severities=[4], max_samples=60)
    a, b = check.run(model, test, seed=1).to_dict(), check.run(model, test, seed=1).to_dict()
    a.pop("time_s"), b.pop("time_s")
    assert a == b
    c = check.run(model, test, seed=2).to_dict()
    assert c["tables"] != a["tables"]


def test_constant_model_never_flips():
    x = np.random.default_rng(0).normal(size=(40, 3))
    data = Dataset.from_arrays(x, np.array([0, 1] * 20))
    model = wrap(lambda a: np.tile([0.9, 0.1], (len(a), 1)), classes=[0, 1])
    res = NaturalRobustness(perturbations=["feature_noise", "outliers"], severities=[5]).run(model, data)
    # it never flips because it is never informed: that is not robustness, and the check says so
    assert res.status is Status.SKIP and res.message.startswith("not meaningful: clean accuracy 0.500")
    assert "majority-class rate 0.500" in res.message
    assert res.metrics["clean_accuracy"].value == 0.5 and "max_accuracy_drop" not in res.metrics
    assert [c["status"] for c in res.conditions] == ["SKIP"]


def test_regression_uses_rmse():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 3))
    y = x @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=120)
    data = Dataset.from_arrays(x, y)
    model = wrap(LinearRegression().fit(data.x, y))
    res = NaturalRobustness(perturbations=["feature_noise"], severities=[1, 5]).run(model, data)
    clean = np.sqrt(np.mean((model.predict(data.x) - y) ** 2))
    assert res.metrics["clean_rmse"].value == pytest.approx(clean)
    rows = res.tables["perturbations"]
    assert rows[1]["rmse"] > rows[0]["rmse"] > clean
    assert res.metrics["max_rmse_increase"].value == pytest.approx(rows[1]["rmse"] / clean - 1)
    assert [c["condition"] for c in res.conditions] == ["rmse_increase_s3 <= 0.25 warn 0.1"]
    assert res.headline.startswith("rmse_increase_s3 = ")


def test_bad_parameters_name_themselves(breast_cancer):
    with pytest.raises(ConfigError, match=r"unknown perturbation\(s\) \[.no_such_noise.\]"):
        NaturalRobustness(perturbations=["no_such_noise"])
    with pytest.raises(ConfigError, match=r"NaturalRobustness\(severities=\.\.\.\) must be a non-empty list"):
        NaturalRobustness(severities=[0, 6])
    with pytest.raises(ConfigError, match=r"NaturalRobustness\(max_samples=\.\.\.\) must be an integer > 0"):
        NaturalRobustness(max_samples=0)
    model, test = breast_cancer
    with pytest.raises(ConfigError, match=r"\['gaussian_blur'\] do not apply to tabular data"):
        NaturalRobustness(perturbations=["gaussian_blur"]).run(model, test)


def test_text_model_under_typos():
    data = datasets.load("sentiment")
    positive = ("love", "great", "excellent", "wonderful", "amazing", "good", "fantastic")

    def keyword_model(texts):
        s = np.array([any(w in t.lower() for w in positive) for t in texts], dtype=float)
        return np.stack([1 - s, s], axis=1)

    model = wrap(keyword_model, classes=[0, 1])
    res = NaturalRobustness(perturbations=["keyboard_typos", "case_change"], severities=[5]).run(model, data)
    rows = {r["perturbation"]: r for r in res.tables["perturbations"]}
    assert rows["case_change"]["flip_rate"] == 0.0  # the model lower-cases its input
    assert rows["keyboard_typos"]["flip_rate"] > 0.0  # typos break keywords
