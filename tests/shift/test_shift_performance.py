"""Label-free accuracy estimates against true accuracy under no shift and a covariate shift.

The synthetic problem: ``p(y=1 | x) = sigmoid(3 x1)`` (x2 is noise), so a logistic model is well
specified. Reference inputs have ``x1 ~ N(1.5, 1)`` (mostly far from the boundary x1 = 0); the
shifted inputs ``x1 ~ N(0.2, 1)`` crowd the boundary, where the model is often wrong. Same
variance in both, so the log density ratio is linear and a logistic domain classifier is exact.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from stalwart.errors import ConfigError, InputError
from stalwart.shift.performance import (
    ConfidenceEstimator,
    ImportanceWeightedEstimator,
    expected_calibration_error,
    fit_temperature,
)


def _inputs(n: int, mean: float, rng: np.random.Generator) -> np.ndarray:
    return np.c_[rng.normal(mean, 1.0, n), rng.normal(0.0, 1.0, n)]


def _labels(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return (rng.random(len(x)) < 1.0 / (1.0 + np.exp(-3.0 * x[:, 0]))).astype(int)


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    parts = {}
    for name, n, mean in [("train", 1000, 1.5), ("ref", 2000, 1.5), ("same", 2000, 1.5), ("shift", 2000, 0.2)]:
        x = _inputs(n, mean, rng)
        parts[name] = (x, _labels(x, rng))
    model = LogisticRegression().fit(*parts["train"])
    true = {k: float((model.predict(parts[k][0]) == parts[k][1]).mean()) for k in ("ref", "same", "shift")}
    return model, parts, true


def test_ece_by_hand():
    # bins 0.9: accuracy 1 vs confidence 0.9 (2 samples); 0.6: accuracy 0.5 vs 0.6 (2 samples)
    assert expected_calibration_error([0.9, 0.9, 0.6, 0.6], [1, 1, 1, 0], n_bins=10) == pytest.approx(0.1)
    assert expected_calibration_error([1.0, 0.0], [1, 0], n_bins=15) == 0.0
    with pytest.raises(InputError, match="confidence has 2 samples but correct has 1"):
        expected_calibration_error([0.5, 0.5], [1])


def test_temperature_closed_form_and_recovery():
    z = np.array([[4.0, 0.0], [4.0, 0.0], [4.0, 0.0], [0.0, 4.0]])
    # 3 of 4 right with one logit gap g=4: the NLL optimum has sigmoid(g / T) = 3/4, T = 4 / ln 3
    assert fit_temperature(z, [0, 0, 1, 1]) == pytest.approx(4 / np.log(3), rel=1e-5)
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(20000, 3)) * 2.0
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = (rng.random(20000)[:, None] > np.cumsum(p, axis=1)).sum(axis=1)
    # a model five times overconfident needs T = 5
    assert fit_temperature(5.0 * logits, y) == pytest.approx(5.0, rel=0.03)


def test_no_shift_estimates_match_true_accuracy(problem):
    model, parts, true = problem
    est = ConfidenceEstimator(model).fit(*parts["ref"])
    assert est.estimate(parts["same"][0])["calibration"] == "temperature"  # LR has a torch mirror
    out = est.estimate(parts["same"][0])
    iw = ImportanceWeightedEstimator(model).fit(*parts["ref"]).estimate(parts["same"][0])
    # measured: true 0.936; confidence 0.933, ATC 0.934, importance weighting 0.936
    for value in (out["accuracy_confidence"], out["accuracy_atc"], iw["accuracy"]):
        assert value == pytest.approx(true["same"], abs=0.03)
    assert out["reliable"] and out["ece_reference"] < 0.03 and out["ks_distance"] < 0.1
    lo, hi = out["interval"]
    assert lo < out["accuracy"] < hi and hi - lo < 0.03
    # no shift: the domain classifier is at chance, and almost every reference sample counts
    assert iw["domain_auc"] == pytest.approx(0.5, abs=0.05)
    assert iw["effective_sample_size"] > 0.9 * len(parts["ref"][0])


def test_covariate_shift_estimates_move_to_true_accuracy(problem):
    model, parts, true = problem
    gap = abs(true["ref"] - true["shift"])
    assert gap > 0.08  # the shift really costs accuracy (measured 0.939 -> 0.833)
    conf = ConfidenceEstimator(model).fit(*parts["ref"]).estimate(parts["shift"][0])
    iw = ImportanceWeightedEstimator(model).fit(*parts["ref"]).estimate(parts["shift"][0])
    # measured: confidence 0.828, ATC 0.791, importance weighting 0.853 (true 0.833)
    assert abs(conf["accuracy_confidence"] - true["shift"]) < min(0.04, gap / 2)
    assert abs(iw["accuracy"] - true["shift"]) < min(0.04, gap / 2)
    assert abs(conf["accuracy_atc"] - true["shift"]) < gap
    lo, hi = iw["interval"]
    assert lo <= true["shift"] <= hi
    assert iw["domain_auc"] > 0.75 and iw["effective_sample_size"] < 0.5 * len(parts["ref"][0])


def test_black_box_model_uses_isotonic(problem):
    _, parts, _ = problem
    model = RandomForestClassifier(n_estimators=50, min_samples_leaf=20, random_state=0).fit(*parts["train"])
    est = ConfidenceEstimator(model).fit(*parts["ref"])
    for split in ("same", "shift"):
        x, y = parts[split]
        truth = (model.predict(x) == y).mean()
        out = est.estimate(x)
        assert out["calibration"] == "isotonic"
        # measured errors: 0.003 (no shift), 0.020 (shift; true 0.827)
        assert out["accuracy"] == pytest.approx(truth, abs=0.03)


def test_atc_reproduces_reference_accuracy_with_tied_scores(problem):
    _, parts, _ = problem
    # a depth-2 tree has four distinct confidences: the tie fraction makes ATC exact on the reference
    tree = DecisionTreeClassifier(max_depth=2, random_state=0).fit(*parts["train"])
    est = ConfidenceEstimator(tree, calibration=None, method="atc").fit(*parts["ref"])
    out = est.estimate(parts["ref"][0])
    assert out["accuracy"] == pytest.approx(est.reference_accuracy_, abs=1e-12)


def test_reliable_flag_under_extreme_shift(problem):
    model, parts, _ = problem
    # everything on the boundary: confidences near 0.5 where the reference has almost none
    x = np.c_[np.random.default_rng(1).normal(0.0, 0.05, 500), np.zeros(500)]
    out = ConfidenceEstimator(model).fit(*parts["ref"]).estimate(x)
    assert out["ks_distance"] > 0.5 and not out["reliable"]


def test_errors(problem):
    model, parts, _ = problem
    with pytest.raises(ConfigError, match=r"ConfidenceEstimator\(calibration=\.\.\.\) must be one of "
                                          r"\['auto', 'temperature', 'isotonic', None\]; got 'platt'"):
        ConfidenceEstimator(model, calibration="platt")
    with pytest.raises(ConfigError, match="ConfidenceEstimator is not fitted"):
        ConfidenceEstimator(model).estimate(parts["same"][0])
    with pytest.raises(InputError, match=r"y_ref contains labels the model does not know: \[7\]"):
        ConfidenceEstimator(model).fit(parts["ref"][0][:20], np.full(20, 7))
    with pytest.raises(ConfigError, match=r"ImportanceWeightedEstimator\(domain_classifier=\.\.\.\) must be "
                                          r"'logistic', 'hgb' or a scikit-learn classifier"):
        ImportanceWeightedEstimator(model, domain_classifier=42)
    iw = ImportanceWeightedEstimator(model).fit(*parts["ref"])
    with pytest.raises(InputError, match="x_current has 3 features but x_ref had 2"):
        iw.estimate(np.zeros((50, 3)))
