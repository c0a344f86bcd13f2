"""The clean-performance gate (checks/performance.py): a model must beat a constant guess first.

Expectations come from SciPy (exact binomial test, paired t-test) and scikit-learn (accuracy,
RMSE, R^2) on the same predictions, never from stalwart itself.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from sklearn.datasets import load_diabetes, load_digits
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, mean_squared_error, r2_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from stalwart import Dataset, wrap
from stalwart.checks import AdversarialRobustness, NaturalRobustness, Status
from stalwart.checks.corruption import CorruptionRobustness
from stalwart.checks.performance import CHANCE_ALPHA, CleanPerformance, chance_p_value, chance_reason
from stalwart.datasets import load_split
from stalwart.errors import ConfigError
from stalwart.suite import PRESETS, Suite


# -- the p-value ----------------------------------------------------------------------------------
def _hand_made(counts, correct_per_class, seed=0):
    """Labels with ``counts[c]`` samples of class c, of which ``correct_per_class[c]`` are predicted right
    (the others get the next class), shuffled."""
    rng = np.random.default_rng(seed)
    k = len(counts)
    y = np.concatenate([np.full(n, c) for c, n in enumerate(counts)])
    pred = np.concatenate([np.where(np.arange(n) < r, c, (c + 1) % k) for c, (n, r)
                           in enumerate(zip(counts, correct_per_class))])
    order = rng.permutation(len(y))
    return y[order], pred[order]


CASES = {
    "binary 60/40, 70 right": ((60, 40), (45, 25)),
    "binary 60/40, at the majority rate": ((60, 40), (40, 20)),
    "binary 60/40, below it": ((60, 40), (30, 10)),
    "three classes": ((50, 30, 20), (40, 20, 10)),
    "tied majority": ((30, 30, 30), (25, 20, 10)),
    "all right": ((52, 48), (52, 48)),
    "small sample": ((7, 5), (6, 4)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_chance_p_value_is_scipys_exact_binomial_test(case):
    counts, right = CASES[case]
    y, pred = _hand_made(counts, right)
    n, k = len(y), int(sum(right))
    majority = max(counts) / n
    expected = stats.binomtest(k, n, majority, alternative="greater").pvalue
    p, acc, base = chance_p_value(y, pred)
    assert p == pytest.approx(expected, rel=1e-9, abs=1e-300)
    assert acc == k / n and base == majority


@pytest.mark.parametrize("case", list(CASES))
def test_the_gate_reports_the_same_numbers_from_a_model(case):
    counts, right = CASES[case]
    y, pred = _hand_made(counts, right)
    n, k = len(y), int(sum(right))
    majority = max(counts) / n
    p = stats.binomtest(k, n, majority, alternative="greater").pvalue
    index = np.arange(n, dtype=float)[:, None]
    model = wrap(lambda x: pred[np.asarray(x)[:, 0].astype(int)], classes=list(range(len(counts))))
    result = CleanPerformance().run(model, Dataset.from_arrays(index, y))
    m = result.metrics
    assert m["clean_accuracy"].value == pytest.approx(k / n)
    assert m["majority_rate"].value == pytest.approx(majority)
    assert m["accuracy_lift"].value == pytest.approx(k / n - majority)
    assert m["chance_p_value"].value == pytest.approx(p, rel=1e-9, abs=1e-300)
    # the accuracy's interval is Wilson's (score interval, z = 1.959964)
    z = stats.norm.ppf(0.975)
    centre = (k / n + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(k / n * (1 - k / n) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert m["clean_accuracy"].low == pytest.approx(max(0.0, centre - half), abs=1e-12)
    assert m["clean_accuracy"].high == pytest.approx(1.0 if k == n else centre + half, abs=1e-12)
    # fail exactly when the binomial test does not reject chance at 1%
    failed = result.status == Status.FAIL
    assert failed == (p > CHANCE_ALPHA)
    if n >= 30 and p <= CHANCE_ALPHA:
        assert result.status == Status.PASS


def test_chance_p_value_with_one_class_only_is_one():
    y = np.zeros(50, dtype=int)
    assert chance_p_value(y, y)[0] == 1.0  # always right, but so is a constant
    assert chance_p_value(y, np.ones(50, dtype=int))[0] == 1.0


# -- models at chance fail the gate; the robustness checks say their numbers mean nothing ------------
@pytest.fixture(scope="module")
def cancer():
    train, test = load_split("breast_cancer", seed=0)
    return train, test


def _robustness_checks(modality, attack="fgsm"):
    adversarial = AdversarialRobustness(attack=attack, level="fast", eps=[0.01, 0.03], minimal=False)
    if modality == "image":
        return [NaturalRobustness(perturbations=["gaussian_noise", "contrast"], severities=(1, 3)),
                CorruptionRobustness(perturbations=["gaussian_noise", "contrast"], severities=(1, 3)), adversarial]
    return [NaturalRobustness(perturbations=["feature_noise", "rounding"], severities=(1, 3),
                              column_sensitivity=False), adversarial]


def _assert_gate_fails_and_rest_not_meaningful(report, y, pred):
    results = {r.check: r for r in report.results}
    gate = results.pop("clean_performance")
    p = stats.binomtest(int(np.sum(pred == y)), len(y), np.bincount(y).max() / len(y), alternative="greater").pvalue
    assert p > 0.05  # the expectation: no evidence of learning, by SciPy's test
    assert gate.status == Status.FAIL
    assert gate.metrics["chance_p_value"].value == pytest.approx(p, rel=1e-9)
    assert "not significantly above the majority-class rate" in gate.message
    for name, r in results.items():
        assert r.status == Status.SKIP, (name, r.status, r.message)
        assert r.message.startswith("not meaningful"), (name, r.message)
        assert r.metrics["clean_accuracy"].value == pytest.approx(accuracy_score(y, pred)), name  # kept
        assert all(c["status"] == "SKIP" for c in r.conditions), name


@pytest.mark.parametrize("strategy", ["most_frequent", "stratified"])
def test_dummy_classifier_fails_the_gate_and_robustness_is_not_meaningful(cancer, strategy):
    train, test = cancer
    dummy = DummyClassifier(strategy=strategy, random_state=0).fit(train.x, train.y)
    data = test.subset(np.arange(120))
    report = Suite(_robustness_checks("tabular", attack="evaluate")).run(dummy, data, seed=0)
    _assert_gate_fails_and_rest_not_meaningful(report, np.asarray(data.y), dummy.predict(data.x))


@pytest.fixture(scope="module")
def digits_images():
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))[:150]
    return (x[order] / 16.0).reshape(-1, 1, 8, 8).astype(np.float32), y[order]


def test_untrained_cnn_on_digits_fails_the_gate(digits_images):
    x, y = digits_images
    torch.manual_seed(0)
    cnn = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                              torch.nn.Linear(4 * 6 * 6, 10)).eval()
    with torch.no_grad():
        pred = cnn(torch.as_tensor(x)).argmax(1).numpy()
    report = Suite(_robustness_checks("image")).run(cnn, Dataset.from_arrays(x, y, value_range=(0.0, 1.0)), seed=0)
    _assert_gate_fails_and_rest_not_meaningful(report, y, pred)


def test_a_good_model_passes_and_its_robustness_is_measured(cancer):
    train, test = cancer
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(train.x, train.y)
    report = Suite(_robustness_checks("tabular")).run(pipe, test, seed=0)
    results = {r.check: r for r in report.results}
    y, pred = np.asarray(test.y), pipe.predict(test.x)
    k, n = int(np.sum(pred == y)), len(y)
    p = stats.binomtest(k, n, np.bincount(y).max() / n, alternative="greater").pvalue
    assert p < 1e-20
    gate = results["clean_performance"]
    assert gate.status == Status.PASS and gate.metrics["chance_p_value"].value == pytest.approx(p, rel=1e-6)
    assert gate.metrics["clean_accuracy"].value == pytest.approx(accuracy_score(y, pred))
    for name in ("natural_robustness", "adversarial_robustness"):
        assert results[name].status in (Status.PASS, Status.WARN, Status.FAIL), results[name].message


def test_one_row_fails_the_gate_with_the_reason(cancer):
    train, test = cancer
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(train.x, train.y)
    one = test.subset(np.array([0]))
    assert pipe.predict(one.x)[0] == one.y[0]  # even a right answer proves nothing
    report = Suite(_robustness_checks("tabular")).run(pipe, one, seed=0)
    results = {r.check: r for r in report.results}
    gate = results["clean_performance"]
    assert gate.status == Status.FAIL
    assert "only 1 sample(s)" in gate.message and gate.metrics["chance_p_value"].value == 1.0
    for name in ("natural_robustness", "adversarial_robustness"):
        r = results[name]
        assert r.status == Status.SKIP and "the data has 1 sample(s)" in r.message and "at least 30" in r.message


# -- regression ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def diabetes():
    x, y = load_diabetes(return_X_y=True, as_frame=True)
    order = np.random.default_rng(0).permutation(len(x))
    train, test = order[:300], order[300:]
    data = Dataset.from_arrays(x.iloc[test].reset_index(drop=True), y.to_numpy()[test])
    return x.iloc[train], y.to_numpy()[train], data


def test_ridge_on_diabetes_passes_with_sklearns_numbers(diabetes):
    x_train, y_train, data = diabetes
    ridge = Ridge(alpha=1.0).fit(x_train, y_train)
    y, pred = np.asarray(data.y, dtype=float), ridge.predict(data.x)
    result = CleanPerformance().run(ridge, data)
    m = result.metrics
    assert result.status == Status.PASS and result.headline_metric == "clean_rmse"
    assert m["clean_rmse"].value == pytest.approx(math.sqrt(mean_squared_error(y, pred)))
    assert m["baseline_rmse"].value == pytest.approx(float(np.std(y)))  # predicting the mean of y
    assert m["r2"].value == pytest.approx(r2_score(y, pred))
    paired = stats.ttest_rel((y - y.mean()) ** 2, (pred - y) ** 2, alternative="greater").pvalue
    assert m["chance_p_value"].value == pytest.approx(paired, rel=1e-9)
    assert m["chance_p_value"].value < CHANCE_ALPHA
    assert m["clean_rmse"].low < m["clean_rmse"].value < m["clean_rmse"].high


def test_dummy_regressor_fails(diabetes):
    x_train, y_train, data = diabetes
    dummy = DummyRegressor().fit(x_train, y_train)
    y, pred = np.asarray(data.y, dtype=float), dummy.predict(data.x)
    result = CleanPerformance().run(dummy, data)
    paired = stats.ttest_rel((y - y.mean()) ** 2, (pred - y) ** 2, alternative="greater").pvalue
    assert paired > 0.05
    assert result.status == Status.FAIL
    assert result.metrics["chance_p_value"].value == pytest.approx(paired, rel=1e-9)
    assert result.metrics["r2"].value == pytest.approx(r2_score(y, pred)) and result.metrics["r2"].value < 0
    assert chance_reason(y, pred, "regression").startswith("the model's RMSE")


def test_dummy_regressor_makes_natural_robustness_not_meaningful(diabetes):
    x_train, y_train, data = diabetes
    dummy = DummyRegressor().fit(x_train, y_train)
    result = NaturalRobustness(perturbations=["feature_noise"], column_sensitivity=False).run(dummy, data)
    assert result.status == Status.SKIP and result.message.startswith("not meaningful")


# -- conditions and switching the gate off ---------------------------------------------------------
def test_min_accuracy_adds_a_condition(cancer):
    train, test = cancer
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(train.x, train.y)
    acc = accuracy_score(test.y, pipe.predict(test.x))
    assert 0.9 < acc < 0.99
    strict = CleanPerformance(min_accuracy=0.99).run(pipe, test)
    lenient = CleanPerformance(min_accuracy=0.9).run(pipe, test)
    assert [c["condition"] for c in strict.conditions] == ["chance_p_value <= 0.01", "clean_accuracy >= 0.99"]
    assert strict.status == Status.FAIL and [c["status"] for c in strict.conditions] == ["PASS", "FAIL"]
    assert lenient.status == Status.PASS
    # explicit conditions replace the defaults entirely
    assert CleanPerformance(min_accuracy=0.99, conditions=[]).run(pipe, test).status == Status.PASS


def test_max_rmse_applies_to_regression_and_min_accuracy_does_not(diabetes):
    x_train, y_train, data = diabetes
    ridge = Ridge(alpha=1.0).fit(x_train, y_train)
    rmse = math.sqrt(mean_squared_error(data.y, ridge.predict(data.x)))
    tight = CleanPerformance(max_rmse=rmse * 0.9, min_accuracy=0.99).run(ridge, data)
    assert [c["condition"] for c in tight.conditions] == ["chance_p_value <= 0.01", f"clean_rmse <= {rmse * 0.9:g}"]
    assert tight.status == Status.FAIL
    assert CleanPerformance(max_rmse=rmse * 1.1).run(ridge, data).status == Status.PASS


@pytest.mark.parametrize("bad", [0, 1.5, -0.1, True, "0.9", float("nan")])
def test_min_accuracy_is_validated(bad):
    with pytest.raises(ConfigError, match="min_accuracy"):
        CleanPerformance(min_accuracy=bad)


def test_gate_opens_every_suite_and_can_be_turned_off(cancer):
    checks = _robustness_checks("tabular")
    assert [c.name for c in Suite(checks).checks] == ["clean_performance", "natural_robustness",
                                                      "adversarial_robustness"]
    off = Suite(_robustness_checks("tabular"), gate=False)
    assert [c.name for c in off.checks] == ["natural_robustness", "adversarial_robustness"]
    # a suite that already has the gate keeps its own (with its parameters), not a second one
    own = Suite([*checks, CleanPerformance(min_accuracy=0.95)])
    assert [c.name for c in own.checks].count("clean_performance") == 1
    # gate=False runs no gate, even for a dummy model
    train, test = cancer
    dummy = DummyClassifier().fit(train.x, train.y)
    report = off.run(dummy, test.subset(np.arange(60)))
    assert [r.check for r in report.results] == ["natural_robustness", "adversarial_robustness"]


YAML = """
name: no-gate
gate: {gate}
checks:
  - check: natural_robustness
    params: {{perturbations: [feature_noise], severities: [1], column_sensitivity: false}}
"""


def test_yaml_gate_false_turns_it_off_and_round_trips():
    off = Suite.from_yaml(YAML.format(gate="false"))
    assert [c.name for c in off.checks] == ["natural_robustness"]
    again = Suite.from_yaml(off.to_yaml())
    assert [c.name for c in again.checks] == ["natural_robustness"] and again.gate is False
    on = Suite.from_yaml(YAML.format(gate="true"))
    assert [c.name for c in on.checks] == ["clean_performance", "natural_robustness"]
    default = Suite.from_yaml(YAML.replace("gate: {gate}\n", "").format())
    assert default.checks[0].name == "clean_performance"
    with pytest.raises(ConfigError, match="gate"):
        Suite.from_yaml(YAML.format(gate="'no'"))


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("modality", ["tabular", "image", "text"])
def test_every_preset_starts_with_the_gate(preset, modality):
    checks = Suite.preset(preset, modality).checks
    assert checks[0].name == "clean_performance"
    assert [c.name for c in checks].count("clean_performance") == 1
