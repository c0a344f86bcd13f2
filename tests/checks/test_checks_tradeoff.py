"""The hardening_tradeoff check: the table and the clean-vs-robust chart in the report, the baseline
marked, the Pareto front drawn; models it cannot harden are skipped with the way to do it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

import stalwart
from stalwart import checks
from stalwart.checks.tradeoff import tradeoff_measurement
from stalwart.defend import TradeoffResult
from stalwart.errors import ConfigError
from stalwart.report import Report


def _table(n=300, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    s = 2.0 * y - 1
    x = np.column_stack([100 * (0.5 + 0.25 * s + rng.normal(0, 0.15, n)),
                         0.5 + 0.03 * s[:, None] + rng.normal(0, 0.01, (n, 3))]).astype(np.float32)
    return pd.DataFrame(x, columns=["area", "a", "b", "c"]), y


@pytest.fixture(scope="module")
def fitted():
    frame, y = _table()
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    x = torch.as_tensor(frame.to_numpy() / np.array([100, 1, 1, 1], dtype=np.float32))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(150):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), torch.as_tensor(y)).backward()
        opt.step()
    with torch.no_grad():
        net[0].weight[:, 0] /= 100  # the network takes the raw table
    return net.eval(), stalwart.Dataset.from_arrays(frame, y)


def test_the_check_measures_every_option_on_held_out_rows(fitted, tmp_path):
    net, data = fitted
    res = checks.get("hardening_tradeoff", options=["pgd", "noise"], eps=0.1, epochs=3, steps=3, lr=1e-2,
                     batch_size=64).run(net, data)
    assert res.status.value == "PASS", res.message
    rows = res.tables["tradeoff"]
    assert [r["option"] for r in rows] == ["baseline (undefended)", "pgd", "noise"]
    assert res.tables["evaluation"][0]["n_test"] == 90  # 30% of 300 rows
    best = max(rows[1:], key=lambda r: (r["robust_accuracy"], r["clean_accuracy"]))
    m = res.metrics
    assert m["best_robust_accuracy"].value == best["robust_accuracy"] and m["best_robust_accuracy"].n == 90
    assert m["robust_gain"].value == pytest.approx(best["robust_accuracy"] - rows[0]["robust_accuracy"])
    assert m["clean_cost"].value == pytest.approx(rows[0]["clean_accuracy"] - best["clean_accuracy"])
    lo, hi = m["baseline_robust_accuracy"].low, m["baseline_robust_accuracy"].high
    assert lo <= rows[0]["robust_accuracy"] <= hi
    # the chart: one point per row, the baseline named, the front joined when it has two or more rows
    series = res.curves["tradeoff"]["series"]
    assert series[0]["name"].startswith("baseline (undefended)")
    assert [(s["x"], s["y"]) for s in series[:3]] == [([r["clean_accuracy"]], [r["robust_accuracy"]]) for r in rows]
    on_front = [r for r in rows if r["pareto"] == "yes"]
    assert on_front and (len(on_front) < 2) == (series[-1]["name"] != "Pareto front")
    # in the report: the chart inline, the table, the numbers in the JSON
    rep = Report.from_run(model=stalwart.wrap(net), data=data, results=[res], suite={"name": "t", "checks": []},
                          seed=0, total_s=1.0)
    rep.save(tmp_path / "rep")
    html = (tmp_path / "rep" / "index.html").read_text()
    assert 'aria-label="Clean vs robust accuracy per hardening option' in html and "baseline (undefended)" in html
    saved = json.loads((tmp_path / "rep" / "report.json").read_text())["results"][0]
    assert saved["check"] == "hardening_tradeoff" and saved["tables"]["tradeoff"][1]["option"] == "pgd"


def test_tradeoff_measurement_marks_the_front_of_constructed_rows():
    rows = [{"option": "baseline", "method": "none", "baseline": True, "clean_accuracy": 0.95,
             "robust_accuracy": 0.20, "time_s": 0.0, "pareto": True},
            {"option": "pgd", "method": "pgd", "baseline": False, "clean_accuracy": 0.90, "robust_accuracy": 0.70,
             "time_s": 5.0, "pareto": True},
            {"option": "noise", "method": "noise", "baseline": False, "clean_accuracy": 0.85,
             "robust_accuracy": 0.40, "time_s": 1.0, "pareto": False}]
    res = TradeoffResult(rows=rows, threat={"norm": "linf", "eps": 0.1, "eps_unit": "input units"}, level="fast",
                         n_test=100, seed=0)
    m = tradeoff_measurement(res)
    assert m.metrics["robust_gain"].value == pytest.approx(0.5) and m.metrics["clean_cost"].value == pytest.approx(0.05)
    front = m.curves["tradeoff"]["series"][-1]
    assert front["name"] == "Pareto front" and front["x"] == [0.90, 0.95] and front["y"] == [0.70, 0.20]
    assert [r["pareto"] for r in m.tables["tradeoff"]] == ["yes", "yes", ""]
    with pytest.raises(ConfigError, match="TradeoffResult"):
        tradeoff_measurement(rows)
    from stalwart.checks import CheckResult, Status
    from stalwart.report import headline

    result = CheckResult("hardening_tradeoff", "adversarial", Status.PASS, m.metrics, tables=m.tables,
                         curves=m.curves, headline_metric="best_robust_accuracy")
    assert headline(result.to_dict()) == ("pgd is the most robust option: robust accuracy 0.200 → 0.700, clean "
                                          "accuracy 0.950 → 0.900")


def test_models_it_cannot_harden_are_skipped_and_bad_parameters_refused(fitted):
    from sklearn.linear_model import LogisticRegression

    _, data = fitted
    lr = LogisticRegression(max_iter=500).fit(data.x, data.y)
    res = checks.get("hardening_tradeoff", options=["pgd"], epochs=1).run(lr, data)
    assert res.status.value == "SKIP" and "AugmentedClassifier" in res.message
    with pytest.raises(ConfigError, match="options"):
        checks.get("hardening_tradeoff", options=[])
    with pytest.raises(ConfigError, match="eps"):
        checks.get("hardening_tradeoff", eps=2.0)
    with pytest.raises(ConfigError, match="test_size"):
        checks.get("hardening_tradeoff", test_size=1.0)
    with pytest.raises(ConfigError, match="names and dicts only"):  # a callable cannot go into report.json
        checks.get("hardening_tradeoff", options=[("mine", lambda net, *_: net)])
