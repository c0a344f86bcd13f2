"""AdversarialRobustness: budgets in fractions of the input range, checked against the exact
worst case of linear models (where linf PGD, FGSM and the ensemble reach the optimal corner)."""

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from stalwart import datasets
from stalwart.checks import AdversarialRobustness, Status
from stalwart.data.dataset import Dataset
from stalwart.errors import ConfigError
from stalwart.models import wrap

EPS = [0.01, 0.03, 0.1]


@pytest.fixture(scope="module")
def breast_cancer():
    train, test = datasets.load_split("breast_cancer", seed=0)
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(train.x, train.y)
    return pipe, test


def exact_linear_robust(decision, w, x, y_pos, eps_abs, lo, hi):
    """Robust mask of a linear binary classifier under linf with per-feature budgets eps_abs,
    inside the box [lo, hi]: push every feature against the true class, as far as allowed."""
    direction = np.where(y_pos, -1.0, 1.0)[:, None] * np.sign(w)[None, :]
    x_adv = np.clip(x + direction * eps_abs, lo, hi)
    clean_ok = (decision(x) > 0) == y_pos
    return clean_ok & ((decision(x_adv) > 0) == y_pos)


@pytest.mark.parametrize("attack", ["pgd", "fgsm", "evaluate"])
def test_tabular_budget_is_fraction_of_each_feature_range(breast_cancer, attack):
    pipe, test = breast_cancer
    check = AdversarialRobustness(eps=EPS, steps=20, attack=attack, level="fast", minimal=False, max_samples=1000)
    res = check.run(wrap(pipe), test, seed=0)
    assert res.status is Status.PASS, res.message  # no sanity warning on an exact linear mirror
    x = test.x.to_numpy(dtype=float)
    lo, hi = test.schema.numeric_bounds()
    lo, hi = np.minimum(lo, x.min(0)), np.maximum(hi, x.max(0))
    scaler, lr = pipe[0], pipe[1]
    w = lr.coef_[0] / scaler.scale_
    decision = lambda a: pipe.decision_function(pd.DataFrame(a, columns=test.x.columns))  # noqa: E731
    y_pos = np.asarray(test.y) == lr.classes_[1]
    for eps in EPS:
        exact = exact_linear_robust(decision, w, x, y_pos, eps * (hi - lo), lo, hi).mean()
        got = res.metrics[f"robust_accuracy_at_{eps:g}"].value
        assert got == pytest.approx(exact, abs=1.5 / len(x)), eps  # float32 ties: at most one sample


def test_curve_is_monotone_and_metrics_consistent(breast_cancer):
    pipe, test = breast_cancer
    res = AdversarialRobustness(eps=[0.2, 0.05, 0.01], level="fast", minimal=False, max_samples=80).run(
        wrap(pipe), test, seed=3)
    series = res.curves["robust_accuracy_vs_eps"]["series"][0]
    assert series["x"] == [0.0, 0.01, 0.05, 0.2]
    ys = series["y"]
    assert ys[0] == res.metrics["clean_accuracy"].value
    assert all(a >= b for a, b in zip(ys, ys[1:]))
    assert all(lo <= y <= hi for y, lo, hi in zip(ys, series["low"], series["high"]))
    ratio = res.metrics["robust_accuracy_at_0.05"].value / ys[0]
    assert res.metrics["robust_accuracy_ratio"].value == pytest.approx(ratio)
    auc = (0.01 * (ys[0] + ys[1]) + 0.04 * (ys[1] + ys[2]) + 0.15 * (ys[2] + ys[3])) / 2 / 0.2
    assert res.metrics["auc"].value == pytest.approx(auc)
    assert [c["condition"] for c in res.conditions] == ["robust_accuracy_ratio >= 0.5"]
    assert res.tables["robust_accuracy"][-1]["eps"] == 0.2


@pytest.mark.parametrize("attack", ["pgd", "evaluate"])
def test_image_budget_scales_with_value_range(attack):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 1))
    x = np.random.default_rng(0).uniform(0, 255, size=(150, 1, 4, 4)).astype(np.float32)
    with torch.no_grad():
        net[1].bias -= float(np.median(net(torch.as_tensor(x)).numpy()))  # balanced classes
        z = net(torch.as_tensor(x)).numpy()[:, 0]
    y = (z > 0).astype(int)  # the model's own labels: clean accuracy 1
    data = Dataset.from_arrays(x, y, value_range=(0.0, 255.0))
    check = AdversarialRobustness(eps=[0.002, 0.01], steps=20, attack=attack, level="fast", minimal=False,
                                  max_samples=1000)
    res = check.run(wrap(net), data)
    w = net[1].weight.detach().numpy()[0]
    decision = lambda a: a.reshape(len(a), -1) @ w + float(net[1].bias.detach()[0])  # noqa: E731
    flat = x.reshape(len(x), -1).astype(np.float64)
    for eps in (0.002, 0.01):
        exact = exact_linear_robust(decision, w, flat, y == 1, eps * 255.0, 0.0, 255.0).mean()
        assert res.metrics[f"robust_accuracy_at_{eps:g}"].value == pytest.approx(exact, abs=1.5 / len(x))
    assert res.metrics["clean_accuracy"].value == 1.0
    assert res.metrics["robust_accuracy_at_0.01"].value < 1.0


def test_skips_say_why(breast_cancer):
    _, test = breast_cancer
    tree = wrap(DecisionTreeClassifier(max_depth=2, random_state=0).fit(test.x, test.y))
    res = AdversarialRobustness(attack="pgd").run(tree, test)
    assert res.status is Status.SKIP and "attack='pgd' needs gradients" in res.message
    texts = Dataset.from_arrays(["good", "bad", "fine", "awful"] * 10, [1, 0, 1, 0] * 10)
    res = AdversarialRobustness().run(wrap(lambda t: np.tile([0.5, 0.5], (len(t), 1)), classes=[0, 1]), texts)
    assert res.status is Status.SKIP and "text_adversarial_robustness" in res.message
    frame = pd.DataFrame({"a": [0.1, 0.5, 0.9, 0.3] * 10, "color": ["r", "g", "r", "b"] * 10})
    mixed = Dataset.from_arrays(frame, [0, 1, 1, 0] * 10)
    by_a = wrap(lambda a: np.stack([a["a"] <= 0.4, a["a"] > 0.4], axis=1).astype(float), classes=[0, 1])
    res = AdversarialRobustness(norm="l2").run(by_a, mixed)
    assert res.status is Status.SKIP and "schema-aware tabular search measures linf" in res.message


def test_bad_parameters_name_themselves():
    with pytest.raises(ConfigError, match=r"AdversarialRobustness\(eps=\.\.\.\) must be a non-empty list"):
        AdversarialRobustness(eps=[0.1, -1])
    with pytest.raises(ConfigError, match=r"AdversarialRobustness\(norm=\.\.\.\) must be one of"):
        AdversarialRobustness(norm="l3")
    with pytest.raises(ConfigError, match=r"AdversarialRobustness\(attack=\.\.\.\) names unknown attack\(s\) "
                                          r"\['pgdd'\]; known \(modalities='tabular'\): \[.*'cw'.*'pgd'"):
        AdversarialRobustness(attack="pgdd")
    with pytest.raises(ConfigError, match=r"attack=\.\.\.\) must be 'evaluate' \(which runs the schema-aware"):
        AdversarialRobustness(attack="tabular-search")
    with pytest.raises(ConfigError, match=r"unknown attack\(s\) \['word_substitution'\]"):
        AdversarialRobustness(attack="word_substitution")  # a text attack: text_adversarial_robustness runs it
    with pytest.raises(ConfigError, match=r"AdversarialRobustness\(level=\.\.\.\) must be one of"):
        AdversarialRobustness(level="slow")
    with pytest.raises(ConfigError, match=r"AdversarialRobustness\(norm=\.\.\.\) must be 'linf' or 'l2' with "
                                          r"attack='evaluate' \(for l1 use attack='pgd'\)"):
        AdversarialRobustness(norm="l1")
    AdversarialRobustness(norm="l1", attack="pgd")  # fine
    with pytest.raises(ConfigError, match=r"AdversarialRobustness\(minimal=\.\.\.\) must be True or False"):
        AdversarialRobustness(minimal="yes")
