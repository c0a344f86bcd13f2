"""DataDrift and MultivariateDrift on tables with known shifts, checked against SciPy and closed forms."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.linear_model import LogisticRegression

from stalwart._stats import wilson_interval
from stalwart.checks.base import Status, build
from stalwart.checks.drift import DataDrift, MultivariateDrift, result_from_drift
from stalwart.data.dataset import Dataset
from stalwart.errors import ConfigError, InputError
from stalwart.models import wrap
from stalwart.shift import detect_drift


def _table(rng, n, shift=False):
    """Five columns; with ``shift`` the numeric b moves by 0.5 sd and categorical d changes its mix."""
    return pd.DataFrame({
        "a": rng.normal(size=n),
        "b": rng.normal(0.5 if shift else 0.0, 1.0, size=n),
        "c": rng.uniform(size=n),
        "d": rng.choice(["x", "y", "z"], n, p=[0.3, 0.3, 0.4] if shift else [0.6, 0.3, 0.1]),
        "e": rng.exponential(size=n),
    })


@pytest.fixture(scope="module")
def shifted():
    rng = np.random.default_rng(0)
    ref, cur = _table(rng, 800), _table(rng, 700, shift=True)
    return ref, cur, DataDrift(reference=ref).run(None, Dataset.from_arrays(cur), seed=0)


def test_exactly_the_shifted_columns_are_flagged_with_scipy_statistics(shifted):
    ref, cur, result = shifted
    rows = {r["column"]: r for r in result.tables["columns"]}
    assert [c for c, r in rows.items() if r["drifted"]] == ["b", "d"]
    # n <= 1000: KS for numbers, chi-square for categories, Bonferroni over the 5 columns
    for col in "abce":
        ks = stats.ks_2samp(ref[col], cur[col])
        assert rows[col]["test"] == "ks"
        assert rows[col]["statistic"] == pytest.approx(ks.statistic)
        assert rows[col]["p_value"] == pytest.approx(ks.pvalue, rel=1e-6, abs=1e-12)
        assert rows[col]["threshold"] == pytest.approx(0.05 / 5)
    table = pd.crosstab(np.r_[np.zeros(len(ref)), np.ones(len(cur))], np.r_[ref["d"], cur["d"]])
    chi2, p, _, _ = stats.chi2_contingency(table.to_numpy(), correction=False)
    assert rows["d"]["test"] == "chi2" and rows["d"]["statistic"] == pytest.approx(chi2)
    assert rows["d"]["p_value"] == pytest.approx(p, abs=1e-300)


def test_share_metric_interval_and_status(shifted):
    _, _, result = shifted
    share = result.metrics["share_drifted"]
    assert share.value == pytest.approx(0.4) and share.n == 5
    assert (share.low, share.high) == pytest.approx(wilson_interval(2, 5))
    assert result.metrics["drifted_columns"].value == 2
    assert result.status is Status.FAIL  # 0.4 > 0.2
    assert result.message.startswith("drifted: b, d;")


def test_figures_compare_the_samples_on_shared_bins(shifted):
    ref, cur, result = shifted
    assert set(result.figures) == {"drift_b", "drift_d"}
    hist = result.figures["drift_b"]
    assert hist["kind"] == "histogram"
    r, c = hist["series"]
    assert r["edges"] == c["edges"] and len(r["edges"]) == len(r["counts"]) + 1
    assert sum(r["counts"]) == pytest.approx(1.0) and sum(c["counts"]) == pytest.approx(1.0)
    # the shifted sample puts more mass in the upper half of the shared range
    mid = len(r["counts"]) // 2
    assert sum(c["counts"][mid:]) > sum(r["counts"][mid:])
    bars = result.figures["drift_d"]
    assert bars["kind"] == "bars"
    values = dict(zip(bars["labels"], bars["values"]))
    assert values["z · ref"] == pytest.approx(np.mean(ref["d"] == "z"))
    assert values["z · cur"] == pytest.approx(np.mean(cur["d"] == "z"))
    k = int(np.sum(cur["d"] == "z"))
    i = bars["labels"].index("z · cur")
    assert (bars["low"][i], bars["high"][i]) == pytest.approx(wilson_interval(k, len(cur)))


def test_no_shift_passes_and_one_of_ten_warns():
    rng = np.random.default_rng(1)
    ref = pd.DataFrame(rng.normal(size=(600, 10)), columns=[f"f{i}" for i in range(10)])
    cur = pd.DataFrame(rng.normal(size=(600, 10)), columns=ref.columns)
    calm = DataDrift(reference=ref).run(None, Dataset.from_arrays(cur))
    assert calm.status is Status.PASS and calm.metrics["share_drifted"].value == 0 and not calm.figures
    cur["f3"] += 1.0
    one = DataDrift(reference=ref).run(None, Dataset.from_arrays(cur))
    assert one.status is Status.WARN and one.metrics["share_drifted"].value == pytest.approx(0.1)


def test_concept_drift_shows_in_accuracy_and_labels_not_predictions():
    rng = np.random.default_rng(2)
    n = 3000
    x_ref, x_cur = rng.normal(size=(n, 3)), rng.normal(size=(n, 3))
    y_ref = (x_ref[:, 0] > 0).astype(int)
    y_cur = (x_cur[:, 0] > 0.5).astype(int)  # same inputs, new rule: the concept moved
    model = wrap(LogisticRegression().fit(x_ref, y_ref))
    ref = Dataset.from_arrays(x_ref, y_ref)
    cur = Dataset.from_arrays(x_cur, y_cur)
    res = DataDrift(reference=ref).run(model, cur)
    m = res.metrics
    assert m["share_drifted"].value == 0.0
    k1 = int(np.sum(model.predict(x_ref) == y_ref))
    k2 = int(np.sum(model.predict(x_cur) == y_cur))
    assert m["accuracy_reference"].value == pytest.approx(k1 / n)
    assert (m["accuracy_current"].low, m["accuracy_current"].high) == pytest.approx(wilson_interval(k2, n))
    # the rule moved by P(0 < x < 0.5) = Phi(0.5) - 1/2 = 0.1915 of the rows
    assert m["accuracy_drop"].value == pytest.approx(0.1915, abs=0.03)
    assert m["accuracy_drop"].low < m["accuracy_drop"].value < m["accuracy_drop"].high
    assert m["label_drift_p_value"].value < 1e-10
    assert m["prediction_drift_p_value"].value > 1e-3
    p1 = np.mean(y_ref)
    p2 = np.mean(y_cur)
    assert m["label_drift_js"].value == pytest.approx(
        np.sqrt((stats.entropy([p1, 1 - p1], [(p1 + p2) / 2, 1 - (p1 + p2) / 2])
                 + stats.entropy([p2, 1 - p2], [(p1 + p2) / 2, 1 - (p1 + p2) / 2])) / 2))


def test_reference_path_with_label_column_and_yaml_build(tmp_path):
    rng = np.random.default_rng(3)
    ref, cur = _table(rng, 500), _table(rng, 500, shift=True)
    ref["label"] = rng.integers(0, 2, 500)
    ref.to_csv(tmp_path / "ref.csv", index=False)
    data = Dataset.from_arrays(cur, rng.integers(0, 2, 500), target="label")
    check = build({"check": "data_drift", "params": {"reference": str(tmp_path / "ref.csv")}})
    res = check.run(None, data)
    assert [r["column"] for r in res.tables["columns"]] == list("abcde")  # label is not a feature
    assert "label_drift_p_value" in res.metrics and res.params["reference"] == str(tmp_path / "ref.csv")


def test_result_from_a_precomputed_drift_result_matches_the_check(shifted):
    ref, cur, result = shifted
    pre = result_from_drift(detect_drift(ref, cur), reference="ref.parquet")
    assert pre.status is result.status and pre.tables == result.tables
    assert pre.metrics["share_drifted"] == result.metrics["share_drifted"]
    assert pre.params["reference"] == "ref.parquet" and not pre.figures


def test_bad_parameters_and_inputs_name_themselves():
    ref = pd.DataFrame({"a": [1.0, 2.0, 3.0]})
    with pytest.raises(ConfigError, match=r"DataDrift\(reference=...\) must be a stalwart Dataset"):
        DataDrift()
    with pytest.raises(ConfigError, match=r"DataDrift\(correction=...\) must be one of"):
        DataDrift(reference=ref, correction="holm")
    with pytest.raises(ConfigError, match=r"DataDrift\(method=...\)"):
        DataDrift(reference=ref, method="t-test")
    with pytest.raises(ConfigError, match=r"DataDrift\(alpha=...\)"):
        DataDrift(reference=ref, alpha=1.5)
    cur = Dataset.from_arrays(pd.DataFrame({"a": [1.0, 2.0], "z": [0.0, 1.0]}))
    with pytest.raises(InputError, match=r"columns \['z'\] are not in the reference"):
        DataDrift(reference=ref).run(None, cur)
    with pytest.raises(InputError, match="does not exist"):
        DataDrift(reference="no/such/file.csv").run(None, cur)
    images = Dataset.from_arrays(np.zeros((4, 1, 2, 2), dtype=np.float32))
    with pytest.raises(ConfigError, match="runs on tabular data"):
        DataDrift(reference=ref).run(None, images)


def _correlated(rng, n, rho):
    cov = np.array([[1.0, rho], [rho, 1.0]])
    x = rng.multivariate_normal([0.0, 0.0], cov, size=n)
    return pd.DataFrame({"u": x[:, 0], "v": x[:, 1], "w": rng.normal(size=n)})


def test_multivariate_drift_sees_a_correlation_change_the_columns_hide():
    rng = np.random.default_rng(4)
    ref, cur = _correlated(rng, 400, 0.8), _correlated(rng, 400, -0.8)
    data = Dataset.from_arrays(cur)
    assert DataDrift(reference=ref).run(None, data).metrics["drifted_columns"].value == 0  # marginals equal
    res = MultivariateDrift(reference=ref, classifier="logistic", n_permutations=50).run(None, data, seed=0)
    assert res.metrics["mmd_p_value"].value == pytest.approx(1 / 51)  # beyond every permutation
    assert res.metrics["mmd2"].n == 800
    assert res.status is Status.WARN  # significant MMD; a linear classifier cannot see a sign flip
    calm = MultivariateDrift(reference=ref, classifier="logistic", n_permutations=50).run(
        None, Dataset.from_arrays(_correlated(rng, 400, 0.8)), seed=0)
    assert calm.metrics["mmd_p_value"].value > 0.05
    # out-of-fold AUC under no change sits at or a little below 0.5 (folds' training sets are
    # tilted against their validation sets), far from the 0.6 warning level
    assert calm.metrics["classifier_auc"].value < 0.55 and calm.status is Status.PASS


def test_multivariate_classifier_finds_the_shifted_column_and_subsamples():
    rng = np.random.default_rng(5)
    ref = _table(rng, 1500)
    cur = _table(rng, 1500)
    cur["e"] = cur["e"] + 1.5
    res = MultivariateDrift(reference=ref, max_samples=500, n_permutations=30).run(None, Dataset.from_arrays(cur))
    assert res.tables["importances"][0]["column"] == "e"
    assert res.metrics["classifier_auc"].value > 0.75 and res.status is Status.FAIL
    assert res.tables["samples"] == [{"sample": "reference", "rows": 1500, "used": 500},
                                     {"sample": "current", "rows": 1500, "used": 500}]
    lo, hi = res.metrics["classifier_auc"].low, res.metrics["classifier_auc"].high
    assert lo < res.metrics["classifier_auc"].value < hi
    with pytest.raises(ConfigError, match=r"MultivariateDrift\(max_samples=...\)"):
        MultivariateDrift(reference=ref, max_samples=2)
    with pytest.raises(ConfigError, match=r"MultivariateDrift\(classifier=...\)"):
        MultivariateDrift(reference=ref, classifier="svm")


# -- a column whose type changed, and samples too small to judge -----------------------------------
@pytest.mark.parametrize("direction", ["numbers to text", "text to numbers"])
def test_a_type_change_is_flagged_and_named_in_the_message(direction):
    rng = np.random.default_rng(6)
    ref, cur = _table(rng, 500), _table(rng, 400)
    if direction == "numbers to text":
        cur["e"] = rng.choice(["low", "mid", "high"], 400)  # e is exponential in the reference
        kinds = ("numeric", "categorical")
    else:
        cur["d"] = rng.normal(size=400)  # d is x / y / z in the reference
        kinds = ("categorical", "numeric")
    column = "e" if direction == "numbers to text" else "d"
    res = DataDrift(reference=ref).run(None, Dataset.from_arrays(cur), seed=0)
    rows = {r["column"]: r for r in res.tables["columns"]}
    assert (rows[column]["test"], rows[column]["drifted"]) == ("type_change", True)
    assert (rows[column]["kind"], rows[column]["current_kind"]) == kinds and rows[column]["statistic"] == 1.0
    assert [c for c, r in rows.items() if r["drifted"]] == [column]  # the other four columns did not move
    assert res.metrics["share_drifted"].value == pytest.approx(1 / 5)
    assert res.status is Status.WARN  # 0.2: above the warning level 0, not above the failing 0.2
    assert res.message.startswith(f"drifted: {column}; column {column!r} changed type: {kinds[0]} in the reference, "
                                  f"{kinds[1]} in the current data (100% of its values, e.g. ")
    assert f"drift_{column}" not in res.figures  # no common scale to draw both on
    # the same from a precomputed (streamed) result
    pre = result_from_drift(detect_drift(ref, cur), reference="ref.parquet")
    assert pre.status is res.status and pre.message == res.message


def test_tiny_reference_or_current_is_not_applicable():
    rng = np.random.default_rng(7)
    big, small = _table(rng, 400), _table(rng, 1)
    for check in (DataDrift(reference=small), MultivariateDrift(reference=small, n_permutations=10)):
        res = check.run(None, Dataset.from_arrays(big))
        assert res.status is Status.SKIP and not res.metrics, check.name
        assert res.message == ("not applicable: the reference has 1 sample(s) and this check needs at least 30 for "
                               "a meaningful 95% interval; pass a larger reference")
    for check in (DataDrift(reference=big), MultivariateDrift(reference=big, n_permutations=10)):
        res = check.run(None, Dataset.from_arrays(small))
        assert res.status is Status.SKIP and res.message.startswith("not applicable: the data has 1 sample(s)")
    # the boundary: 29 rows are too few, 30 are measured
    assert DataDrift(reference=big.iloc[:29]).run(None, Dataset.from_arrays(big)).status is Status.SKIP
    at_30 = DataDrift(reference=big.iloc[:30]).run(None, Dataset.from_arrays(big))
    assert at_30.status is not Status.SKIP and at_30.metrics["share_drifted"].n == 5
    # a streamed result of a 12-row file is not judged either
    pre = result_from_drift(detect_drift(big, big.iloc[:12]), reference="ref.parquet")
    assert pre.status is Status.SKIP and "the data has 12 sample(s)" in pre.message


def test_a_column_with_too_few_values_is_listed_not_judged():
    rng = np.random.default_rng(8)
    ref, cur = _table(rng, 500), _table(rng, 400, shift=True)
    cur.loc[6:, "a"] = np.nan  # 6 values left
    res = DataDrift(reference=ref).run(None, Dataset.from_arrays(cur))
    rows = {r["column"]: r for r in res.tables["columns"]}
    assert (rows["a"]["test"], rows["a"]["statistic"], rows["a"]["drifted"]) == ("too_few_samples", 6.0, False)
    assert [c for c, r in rows.items() if r["drifted"]] == ["b", "d"]
    share = res.metrics["share_drifted"]
    assert share.value == pytest.approx(2 / 4) and share.n == 4  # judged over the four columns tested
    assert (share.low, share.high) == pytest.approx(wilson_interval(2, 4))
    assert "not tested, fewer than 10 non-missing values in a sample: a (500 reference / 6 current)" in res.message


def test_multivariate_drift_warns_of_text_in_a_numeric_column():
    rng = np.random.default_rng(9)
    ref, cur = _table(rng, 300), _table(rng, 300)
    cur["e"] = rng.choice(["low", "high"], 300)
    res = MultivariateDrift(reference=ref, classifier=None, n_permutations=20).run(None, Dataset.from_arrays(cur))
    assert res.status is Status.WARN
    assert "columns ['e'] hold values that are not numbers where the reference has numbers" in res.message
