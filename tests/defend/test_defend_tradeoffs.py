"""The trade-off of hardening options: rows are real measurements on held-out data, the Pareto flag
matches an independent sweep, and bad options are refused with a stalwart error."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stalwart import attacks, defend
from stalwart.errors import ConfigError, InputError, ModelError

THREAT = attacks.ThreatModel("linf", 0.1, (0.0, 1.0))


def _problem(n=400, seed=0):
    """Feature 0 separates the classes by 0.5 (noisy: robust at eps 0.1); features 1-7 by 0.06
    each, nearly without noise (perfectly predictive, but any eps-0.1 step flips them): standard
    training leans on the fragile features, adversarial training has to use feature 0."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    s = 2.0 * y - 1
    x0 = 0.5 + 0.25 * s + rng.normal(0, 0.15, n)
    fragile = 0.5 + 0.03 * s[:, None] + rng.normal(0, 0.01, (n, 7))
    return np.clip(np.column_stack([x0, fragile]), 0, 1).astype(np.float32), y


@pytest.fixture(scope="module")
def problem():
    x, y = _problem()
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(200):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(torch.as_tensor(x[:300])), torch.as_tensor(y[:300])).backward()
        opt.step()
    return net.eval(), x, y


def _sweep_front(clean, robust):
    """The Pareto front by a sort-and-sweep (not the pairwise test the library uses)."""
    order = sorted(range(len(clean)), key=lambda i: (-clean[i], -robust[i]))
    on, best, i = [False] * len(clean), -np.inf, 0
    while i < len(order):  # rows with the same clean accuracy form one group
        j = i
        while j < len(order) and clean[order[j]] == clean[order[i]]:
            j += 1
        top = max(robust[k] for k in order[i:j])
        for k in order[i:j]:
            on[k] = robust[k] == top and robust[k] > best
        best = max(best, top)
        i = j
    return on


def test_pareto_front_on_constructed_rows():
    clean = [0.95, 0.90, 0.90, 0.80, 0.80, 0.70, 0.95]
    robust = [0.30, 0.50, 0.40, 0.60, 0.60, 0.55, 0.20]
    # 0: most accurate; 1 beats 2; 3 and 4 tie and are both on it; 5 is beaten by 3; 6 by 0
    assert defend.pareto_front(clean, robust).tolist() == [True, True, False, True, True, False, False]
    rng = np.random.default_rng(1)
    for _ in range(50):
        c, r = rng.integers(0, 6, 12) / 5, rng.integers(0, 6, 12) / 5  # many ties
        assert defend.pareto_front(c, r).tolist() == _sweep_front(list(c), list(r))
    assert defend.pareto_front([0.5], [0.5]).tolist() == [True]


def test_rows_are_real_measurements(problem):
    net, x, y = problem
    before = [p.detach().clone() for p in net.parameters()]
    res = defend.tradeoff(net, x[:300], y[:300], x[300:], y[300:], THREAT,
                          options=["pgd", ("same", lambda n, *_: n)], epochs=6, steps=5, lr=1e-2, batch_size=64)
    base, pgd, same = res.rows
    assert [r["option"] for r in res.rows] == ["baseline", "pgd", "same"] and base["baseline"] and res.n_test == 100
    # the net itself is untouched; the baseline row is its accuracy, measured independently here
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))
    with torch.no_grad():
        clean = float((net(torch.as_tensor(x[300:])).argmax(1).numpy() == y[300:]).mean())
    assert base["clean_accuracy"] == pytest.approx(clean)
    ev = attacks.evaluate(net, x[300:], y[300:], THREAT, level="fast", eps_curve=[], seed=0, sanity=False)
    assert base["robust_accuracy"] == pytest.approx(ev.robust_accuracy)
    # a copy hardened by PGD-AT: more robust than the baseline on this problem (measured: 0.58 -> 0.74)
    assert pgd["robust_accuracy"] >= base["robust_accuracy"] + 0.1, res.rows
    hardened = res.models["pgd"]
    with torch.no_grad():
        assert pgd["clean_accuracy"] == pytest.approx(
            float((hardened(torch.as_tensor(x[300:])).argmax(1).numpy() == y[300:]).mean()))
    assert pgd["time_s"] > 0 and base["time_s"] == 0 and len(res.training["pgd"].history) == 6
    # an option that returns the network unchanged measures exactly the baseline, and ties on the front
    assert (same["clean_accuracy"], same["robust_accuracy"]) == (base["clean_accuracy"], base["robust_accuracy"])
    assert same["pareto"] == base["pareto"]
    assert [r["pareto"] for r in res.rows] == _sweep_front([r["clean_accuracy"] for r in res.rows],
                                                          [r["robust_accuracy"] for r in res.rows])
    assert res.to_dict()["rows"][1]["option"] == "pgd" and "models" not in res.to_dict()


def test_range_units_train_and_measure_where_each_range_is_one(problem):
    """A table whose first feature is in the hundreds: eps as a fraction of each range means the
    same threat as the [0, 1] problem, and the baseline row equals evaluate's own range handling."""
    net, x, y = problem
    scale = np.array([100.0] + [1.0] * 7, dtype=np.float32)
    raw_net = torch.nn.Sequential(torch.nn.Linear(8, 8, bias=False), net)
    with torch.no_grad():
        raw_net[0].weight.copy_(torch.diag(torch.as_tensor(1 / scale)))
    threat = attacks.ThreatModel("linf", 0.1, (np.zeros(8), scale), unit="range")
    res = defend.tradeoff(raw_net, x[:300] * scale, y[:300], x[300:] * scale, y[300:], threat, options=["noise"],
                          epochs=2, lr=1e-2)
    ev = attacks.evaluate(raw_net, x[300:] * scale, y[300:], threat, level="fast", eps_curve=[], seed=0,
                          sanity=False)
    assert res.rows[0]["robust_accuracy"] == pytest.approx(ev.robust_accuracy)
    # the hardened model is returned in the data's own units: it takes the raw table
    assert res.models["noise"](torch.as_tensor(x[300:305] * scale)).shape == (5, 2)


@pytest.mark.parametrize("options, error, match", [
    ([], ConfigError, r"options=.*non-empty list"),
    (["madry"], ConfigError, r"options=.*one of \['pgd'"),
    ([{"method": "trades", "gamma": 1}], ConfigError, r"unknown parameter.*\['gamma'\]"),
    (["pgd", "pgd"], ConfigError, r"unique.*\['pgd'\]"),
    ([("custom", "not callable")], ConfigError, r"one entry is"),
    (["squeeze"], None, None),
])
def test_bad_options_are_refused(problem, options, error, match):
    net, x, y = problem
    if error is None:  # squeezing needs one value range: per-feature bounds are refused
        threat = attacks.ThreatModel("linf", 0.1, (np.zeros(8), np.ones(8) * 2), unit="range")
        with pytest.raises(ConfigError, match="one value range"):
            defend.tradeoff(net, x[:40] * 2, y[:40], x[40:80] * 2, y[40:80], threat, options=options, epochs=1)
        return
    with pytest.raises(error, match=match):
        defend.tradeoff(net, x[:40], y[:40], x[40:80], y[40:80], THREAT, options=options)
    with pytest.raises(error, match=match):
        defend.option_names(options)


def test_bad_models_data_and_threats_are_refused(problem):
    from sklearn.linear_model import LogisticRegression

    net, x, y = problem
    with pytest.raises(ModelError, match="torch network.*AugmentedClassifier"):
        defend.tradeoff(LogisticRegression().fit(x, y), x, y, x, y, THREAT)
    with pytest.raises(ConfigError, match="norm 'linf' or 'l2'"):
        defend.tradeoff(net, x, y, x, y, attacks.ThreatModel("l1", 1.0, (0.0, 1.0)))
    with pytest.raises(InputError, match="class indices"):
        defend.tradeoff(net, x, y * 2 - 1, x, y, THREAT)
    with pytest.raises(InputError, match="one shape"):
        defend.tradeoff(net, x, y, x[:, :4], y, THREAT)
    with pytest.raises(ConfigError, match="level"):
        defend.tradeoff(net, x, y, x, y, THREAT, level="max")
