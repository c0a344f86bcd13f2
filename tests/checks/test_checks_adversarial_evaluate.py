"""AdversarialRobustness on the ensemble: the same numbers as ``evaluate``, black-box models,
schema-aware search on integer/categorical data, gradient masking, minimal perturbations."""


import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier
from torch import nn

from stalwart import datasets
from stalwart.attacks import ThreatModel, evaluate
from stalwart.checks import Status, get
from stalwart.checks.adversarial import AdversarialRobustness
from stalwart.data.dataset import Dataset
from stalwart.models import wrap


@pytest.fixture(scope="module")
def digits_mlp(digits_mlp_split):
    net, test = digits_mlp_split
    return net, test.subset(np.arange(100))


def test_check_reports_exactly_what_evaluate_measures(digits_mlp):
    net, data = digits_mlp
    eps = [0.03, 0.1, 0.2]
    res = AdversarialRobustness(eps=eps, level="fast", minimal=False, max_samples=1000).run(net, data, seed=4)
    setup = res.tables["evaluation"][0]
    assert setup["access"] == "white-box" and setup["n_samples"] == 100 and res.metrics["white_box"].value == 1
    # max_samples >= len(data): the check attacks every sample, so evaluate on them with its seed must agree
    ev = evaluate(net, data.x, data.y, ThreatModel("linf", 0.1, (0.0, 1.0)), level="fast", eps_curve=eps,
                  seed=setup["seed"])
    ref = res.metrics["robust_accuracy_at_0.1"]
    assert ref.value == ev.robust_accuracy and (ref.low, ref.high) == pytest.approx(ev.robust_accuracy_interval)
    for e in eps:
        assert res.metrics[f"robust_accuracy_at_{e:g}"].value == ev.curve["robust_accuracy"][ev.curve["eps"].index(e)]
    series = res.curves["robust_accuracy_vs_eps"]["series"][0]
    assert series["x"] == [0.0, *eps] and all(a >= b for a, b in zip(series["y"], series["y"][1:]))
    assert res.metrics["clean_accuracy"].value == ev.clean_accuracy
    assert res.metrics["robust_accuracy_ratio"].value == pytest.approx(ev.robust_accuracy / ev.clean_accuracy)
    # every sample broken at the reference eps is counted under exactly one attack
    bars = res.figures["broken_by_attack"]
    assert bars["kind"] == "bars" and sum(bars["values"]) == int((ev.clean_correct & ~ev.robust).sum())
    assert [r["attack"] for r in res.tables["attacks"]][:2] == ["apgd-ce", "apgd-t"]
    assert {r["name"] for r in res.tables["sanity"]} == {s.name for s in ev.sanity}
    assert res.status is Status.PASS or res.status is Status.FAIL  # all sanity checks pass: no WARN
    assert all(r["passed"] for r in res.tables["sanity"])


@pytest.mark.slow
def test_black_box_tree_is_attacked_not_skipped():
    train, test = datasets.load_split("breast_cancer", seed=0)
    tree = wrap(DecisionTreeClassifier(max_depth=4, random_state=0).fit(train.x, train.y))
    res = AdversarialRobustness(eps=[0.05], level="fast", minimal=True, max_samples=40).run(tree, test, seed=0)
    # the fast black-box plan's budget: Square with at most 1,000 queries per sample
    assert all(r["queries"] <= 1000 + 2 for r in res.tables["attacks"]), res.tables["attacks"]
    assert res.status is not Status.SKIP and res.status is not Status.ERROR, res.message
    assert res.message.startswith("black-box attacks only")
    assert res.metrics["white_box"].value == 0
    assert {r["attack"] for r in res.tables["attacks"]} <= {"square", "hopskipjump"}
    assert res.metrics["robust_accuracy_at_0.05"].value < res.metrics["clean_accuracy"].value
    assert res.tables["minimal_perturbation"][0]["method"] == "hopskipjump"
    assert res.figures["minimal_perturbation"]["kind"] == "histogram"


def test_gradient_masking_makes_the_check_warn(digits_mlp):
    net, data = digits_mlp

    class Quantised(nn.Module):  # rounds its input to 4 grey levels: zero gradients almost everywhere
        def forward(self, x):
            return net(torch.round(x * 3) / 3)

    res = AdversarialRobustness(eps=[0.1], level="fast", minimal=False, max_samples=60).run(
        Quantised().eval(), data, seed=0)
    # the default condition passes: the warning comes from the sanity checks alone
    assert res.status is Status.WARN and res.conditions[0]["status"] == "PASS"
    failed = [r for r in res.tables["sanity"] if not r["passed"]]
    assert {"vanishing_gradients", "black_box_after_white_box"} <= {r["name"] for r in failed}
    lines = res.message.split("; sanity check ")
    assert len(lines) == len(failed)  # one message line per failed sanity check, with what was measured
    for r in failed:
        assert f"sanity check {r['name']} failed: {r['detail']}" in res.message
    assert res.tables["attacks"][-1]["attack"] == "square" and res.tables["attacks"][-1]["broken"] > 0


def _linf_minimal_exact(pipe, x, lo, width, y_pos):
    """Smallest linf distance in range-fraction units that flips a linear pipeline inside the box,
    by bisection on the worst-case corner (monotone in the budget)."""
    scaler, lr = pipe[0], pipe[1]
    w = lr.coef_[0] / scaler.scale_  # the pipeline's decision is x @ w + b
    b = lr.intercept_[0] - np.sum(lr.coef_[0] * scaler.mean_ / scaler.scale_)
    z = (x - lo) / width
    push = np.where(y_pos, -1.0, 1.0)[:, None] * np.sign(w)[None, :]
    side = np.where(y_pos, 1.0, -1.0)

    def still_right(t):
        za = np.clip(z + push * t[:, None], 0, 1)
        return side * ((lo + za * width) @ w + b) > 0

    low, high = np.zeros(len(x)), np.ones(len(x))
    for _ in range(40):
        mid = (low + high) / 2
        ok = still_right(mid)
        low, high = np.where(ok, mid, low), np.where(ok, high, mid)
    return high, still_right(np.zeros(len(x)))


def test_minimal_perturbation_is_the_closed_form_in_range_units():
    train, test = datasets.load_split("breast_cancer", seed=0)
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(train.x, train.y)
    data = test.subset(np.arange(80))  # <= 100 samples: the minimal perturbation uses them all
    res = AdversarialRobustness(eps=[0.03], level="fast", minimal=True, max_samples=1000).run(wrap(pipe), data)
    x = data.x.to_numpy(dtype=float)
    lo, hi = data.schema.numeric_bounds()
    lo, hi = np.minimum(lo, x.min(0)), np.maximum(hi, x.max(0))
    exact, correct = _linf_minimal_exact(pipe, x, lo, hi - lo, np.asarray(data.y) == pipe.classes_[1])
    got = res.metrics["median_minimal_perturbation"]
    assert got.n == int(correct.sum())
    assert got.value == pytest.approx(np.median(exact[correct]), rel=0.03)  # DeepFool overshoots by ~2%
    assert res.tables["minimal_perturbation"][0]["method"] == "deepfool"


@pytest.fixture(scope="module")
def mixed_data():
    """An integer column that decides the label (age >= 40), a string category, a boolean, a float."""
    rng = np.random.default_rng(0)
    n = 150
    age = np.concatenate([[20, 72], rng.integers(20, 73, size=n - 2)]).astype(np.int64)  # range 52
    frame = pd.DataFrame({"age": age, "color": rng.choice(["red", "green", "blue"], size=n),
                          "member": rng.random(n) < 0.5, "score": rng.normal(size=n)})
    y = (age >= 40).astype(int)
    pre = make_column_transformer((OneHotEncoder(), ["color"]), remainder="passthrough")
    model = make_pipeline(pre, DecisionTreeClassifier(max_depth=1, random_state=0)).fit(frame, y)
    return model, Dataset.from_arrays(frame, y)


def test_schema_aware_search_keeps_integers_whole(mixed_data):
    model, data = mixed_data
    assert [c.kind for c in data.schema.columns] == ["integer", "categorical", "boolean", "numeric"]
    check = AdversarialRobustness(eps=[0.02, 0.05], level="fast", search_queries=150, max_samples=1000)
    res = check.run(wrap(model), data, seed=0)
    assert res.status is not Status.ERROR, res.message
    assert res.message.startswith("black-box attacks only (schema-aware tabular search")
    assert {r["attack"] for r in res.tables["attacks"]} == {"tabular-search"}
    assert res.tables["evaluation"][0]["queries"] == 150
    age, y = data.x["age"].to_numpy(), np.asarray(data.y)
    assert res.metrics["clean_accuracy"].value == 1.0  # the stump splits at 39.5
    # eps 0.05 of a 52-year range = 2.6 years, but ages are whole: a sample falls iff within 2 years
    # of the other side (a relaxation to real values would also break ages 37 and 42)
    for eps, reach in ((0.02, 1), (0.05, 2)):
        broken = np.where(y == 1, age - reach <= 39, age + reach >= 40)
        assert res.metrics[f"robust_accuracy_at_{eps:g}"].value == pytest.approx(1 - broken.mean())
    assert res.figures["broken_by_attack"]["values"] == [int(np.sum(np.where(y == 1, age <= 41, age >= 38)))]


def test_white_box_integer_columns_are_relaxed_and_said_so():
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"count": rng.integers(0, 50, size=120), "value": rng.normal(size=120)})
    y = (frame["count"] + 10 * frame["value"] > 25).astype(int).to_numpy()
    model = wrap(LogisticRegression().fit(frame, y))
    res = AdversarialRobustness(eps=[0.05], level="fast", minimal=False).run(model, Dataset.from_arrays(frame, y))
    assert res.metrics["white_box"].value == 1
    assert res.message.startswith("integer columns ['count'] were treated as continuous")


def test_params_round_trip_through_yaml():
    check = AdversarialRobustness(eps=[0.1, 0.02], level="fast", minimal=False, attack="evaluate", norm="l2",
                                  max_samples=50, conditions=["auc >= 0.3"])
    params = yaml.safe_load(yaml.safe_dump(check.params()))
    assert params == {"norm": "l2", "eps": [0.02, 0.1], "attack": "evaluate", "level": "fast", "steps": 50,
                      "minimal": False, "search_queries": None, "max_samples": 50, "eps_unit": "range"}
    again = get("adversarial_robustness", **params)
    assert isinstance(again, AdversarialRobustness) and again.params() == check.params()
    assert repr(again) == repr(check)
