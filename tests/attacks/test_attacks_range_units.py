"""One eps unit: ThreatModel(unit="range") budgets are fractions of each feature's range.

The reference for every number is the same problem written out by hand: the data pre-scaled to
[0, 1] per feature and a linear model whose weights absorb the scaling, attacked with
``unit="raw"``; and, for the linear model, the dual-norm closed form
(:func:`stalwart.testing.linear_boundary_distance`) in that scaled space.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from stalwart import Dataset, wrap
from stalwart.attacks import FGSM, PGD, ThreatModel, check_eps_scale, evaluate
from stalwart.checks import AdversarialRobustness
from stalwart.data import Schema
from stalwart.errors import ConfigError
from stalwart.testing import check_attack, linear_boundary_distance

RANGE_TEXT = "fraction of each feature's range"
SCALE = np.array([1e-3, 1e-1, 1.0, 10.0, 1e3, 1e4])  # six features, seven orders of magnitude apart
OFFSET = np.array([0.0, 5.0, -3.0, 100.0, 1e3, 0.0])
IGNORED = 2  # the model gives this feature weight 0


def _linear(w: np.ndarray, b: float) -> torch.nn.Module:
    """A float64 two-logit linear module whose logit difference is ``w . x + b``."""
    net = torch.nn.Linear(len(w), 2).double()
    with torch.no_grad():
        net.weight.copy_(torch.tensor(np.stack([np.zeros(len(w)), w])))
        net.bias.copy_(torch.tensor([0.0, b]))
    return net.eval()


@pytest.fixture(scope="module")
def problem():
    """Raw inputs on wildly different scales, bounds wider than the data (so the eps box never hits
    them), a linear model in raw units and its exact twin on the [0, 1]-scaled inputs."""
    rng = np.random.default_rng(0)
    n = 300
    x = (OFFSET + SCALE * rng.normal(size=(n, len(SCALE)))).astype(np.float32)
    direction = rng.normal(size=len(SCALE))
    direction[IGNORED] = 0.0
    w = direction / SCALE  # every feature matters about as much, per standard deviation
    b = float(0.1 - w @ OFFSET)
    y = (x.astype(np.float64) @ w + b > 0).astype(int)
    y[:15] = 1 - y[:15]  # a few wrong clean answers: they count as not robust
    span = np.ptp(x, axis=0).astype(np.float64)
    lower = x.min(axis=0).astype(np.float64) - 0.5 * span
    upper = x.max(axis=0).astype(np.float64) + 0.5 * span
    width = upper - lower
    z = ((x.astype(np.float64) - lower) / width).astype(np.float32)
    wz, bz = w * width, b + w @ lower
    return {"x": x, "y": y, "lower": lower, "upper": upper, "width": width, "z": z, "w": w, "b": b,
            "wz": wz, "bz": bz, "raw_net": _linear(w, b), "z_net": _linear(wz, bz)}


def _gap_eps(dist: np.ndarray) -> float:
    """An eps in the widest gap between exact distances around their median: no near-ties."""
    d = np.sort(dist)
    mid = slice(len(d) // 4, 3 * len(d) // 4)
    gaps = np.diff(d[mid])
    i = int(np.argmax(gaps))
    return float((d[mid][i] + d[mid][i + 1]) / 2)


def _range_threat(p, eps, norm="linf", mutable=None):
    return ThreatModel(norm, eps, (p["lower"], p["upper"]), mutable, unit="range")


@pytest.mark.parametrize("attack", ["fgsm", "pgd"])
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_range_unit_equals_raw_unit_on_prescaled_data(problem, attack, norm):
    p = problem
    for eps in (0.01, 0.03, 0.1):
        def make(threat):
            return FGSM(threat) if attack == "fgsm" else PGD(threat, steps=20, seed=3)
        ranged = make(_range_threat(p, eps, norm)).run(wrap(p["raw_net"]), p["x"], p["y"])
        scaled = make(ThreatModel(norm, eps, (0.0, 1.0), unit="raw")).run(wrap(p["z_net"]), p["z"], p["y"])
        assert ranged.robust_accuracy == scaled.robust_accuracy, eps
        np.testing.assert_array_equal(ranged.success, scaled.success)
        np.testing.assert_allclose(ranged.distance, scaled.distance, atol=2e-6)
        # and the same samples are broken as the raw attack on x would break at eps * width per feature
        assert ranged.to_dict()["threat"]["eps_unit"] == RANGE_TEXT


@pytest.mark.parametrize("attack", ["fgsm", "pgd"])
def test_linear_closed_form_gives_the_exact_robust_accuracy(problem, attack):
    """Under a per-feature box of half-width eps * width_j, a linear model's margin falls by at most
    eps * sum_j |w_j| width_j: sample i survives iff |w.x_i + b| / sum_j |w_j width_j| > eps."""
    p = problem
    dist = linear_boundary_distance(p["z"], p["wz"], p["bz"], "linf")
    raw_dist = np.abs(p["x"].astype(np.float64) @ p["w"] + p["b"]) / np.sum(np.abs(p["w"]) * p["width"])
    np.testing.assert_allclose(dist, raw_dist, rtol=1e-5, atol=1e-7)  # the same number (float32 z), either space
    eps = _gap_eps(dist)
    correct = (p["x"].astype(np.float64) @ p["w"] + p["b"] > 0).astype(int) == p["y"]
    expected_robust = correct & (dist > eps)
    assert 0.2 < expected_robust.mean() < 0.8  # a real split
    threat = _range_threat(p, eps)
    res = (FGSM(threat) if attack == "fgsm" else PGD(threat, steps=30, seed=0)).run(wrap(p["raw_net"]), p["x"], p["y"])
    assert res.robust_accuracy == pytest.approx(expected_robust.mean(), abs=1e-12)
    np.testing.assert_array_equal(~res.success, expected_robust)
    fooled = res.success & correct
    assert (res.distance[fooled] >= dist[fooled] * (1 - 1e-4)).all()  # never below the exact distance
    assert (res.distance[fooled] <= eps * (1 + 1e-5)).all()


def test_x_adv_is_in_raw_units_inside_bounds_and_the_budget(problem):
    p = problem
    eps = 0.05
    res = PGD(_range_threat(p, eps), steps=20, seed=0).run(wrap(p["raw_net"]), p["x"], p["y"])
    x, x_adv = p["x"].astype(np.float64), res.x_adv.astype(np.float64)
    assert res.x_adv.dtype == np.float32 and res.x_adv.shape == p["x"].shape
    assert (x_adv >= p["lower"].astype(np.float32)).all() and (x_adv <= p["upper"].astype(np.float32)).all()
    moved = np.abs(x_adv - x) / p["width"]
    assert moved.max() <= eps * (1 + 1e-4)  # float32 rounding of raw values only
    assert moved.max() > 0.9 * eps  # the budget was used, in raw units (not left in [0, 1] units)
    # the raw perturbation on the large-scale feature is thousands of units, as eps * width says
    assert np.abs(x_adv[:, 5] - x[:, 5]).max() == pytest.approx(eps * p["width"][5], rel=1e-4)
    # the model's answer on the returned inputs is what the result reports
    pred = wrap(p["raw_net"]).predict(res.x_adv)
    np.testing.assert_array_equal(res.pred_adv, pred)
    np.testing.assert_array_equal(res.success, (pred != p["y"]) | (wrap(p["raw_net"]).predict(p["x"]) != p["y"]))


def test_unmoved_features_keep_their_exact_values(problem):
    """Mapping to [0, 1] and back (lower + z * width) is not exact in floats; a feature the attack
    did not move must come back bit for bit."""
    p = problem
    x = p["x"].copy()
    x[:, 4] = np.float32(1234.5677)  # not representable as lower + z * width in float32 arithmetic
    mutable = np.ones(x.shape[1], dtype=bool)
    mutable[[0, 4]] = False
    res = PGD(_range_threat(p, 0.05, mutable=mutable), steps=10, seed=0).run(wrap(p["raw_net"]), x, p["y"])
    np.testing.assert_array_equal(res.x_adv[:, [0, 4]], x[:, [0, 4]])
    # FGSM never moves a feature with zero gradient (the model ignores it)
    res = FGSM(_range_threat(p, 0.05)).run(wrap(p["raw_net"]), x, p["y"])
    np.testing.assert_array_equal(res.x_adv[:, IGNORED], x[:, IGNORED])
    np.testing.assert_array_equal(res.x_adv[~res.success], x[~res.success])  # failures come back unchanged


def test_evaluate_with_a_range_threat_returns_raw_inputs(problem):
    p = problem
    eps = 0.05
    ev = evaluate(wrap(p["raw_net"]), p["x"], p["y"], _range_threat(p, eps), level="fast", seed=0, sanity=False)
    moved = np.abs(ev.x_adv.astype(np.float64) - p["x"]) / p["width"]
    assert moved.max() <= eps * (1 + 1e-4) and moved.max() > 0.5 * eps
    dist = linear_boundary_distance(p["z"], p["wz"], p["bz"], "linf")
    correct = (p["x"].astype(np.float64) @ p["w"] + p["b"] > 0).astype(int) == p["y"]
    near = np.abs(dist / eps - 1) < 0.02
    # the ensemble finds every example within reach and none beyond (near-ties not judged)
    np.testing.assert_array_equal(ev.robust[~near], (correct & (dist > eps))[~near])
    assert ev.to_dict()["threat"]["eps_unit"] == RANGE_TEXT


def test_range_unit_is_the_raw_unit_on_unit_images():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    x = np.random.default_rng(0).random((60, 1, 8, 8)).astype(np.float32)
    with torch.no_grad():
        y = net(torch.as_tensor(x)).argmax(1).numpy()
    a = PGD(ThreatModel("linf", 0.05, (0.0, 1.0), unit="range"), steps=10, seed=0).run(wrap(net), x, y)
    b = PGD(ThreatModel("linf", 0.05, (0.0, 1.0), unit="raw"), steps=10, seed=0).run(wrap(net), x, y)
    np.testing.assert_array_equal(a.x_adv, b.x_adv)
    np.testing.assert_array_equal(a.distance, b.distance)


# -- refusals --------------------------------------------------------------------------------------
def test_a_constant_data_set_is_refused(problem):
    p = problem
    x = np.tile(p["x"][:1], (40, 1))
    y = np.full(40, p["y"][0])
    schema = Schema.infer(x)
    threat = ThreatModel.from_schema(schema, eps=0.03)
    assert threat.unit == "range"  # the default
    model = wrap(p["raw_net"])
    for run in (lambda: PGD(threat, steps=5).run(model, x, y), lambda: FGSM(threat).run(model, x, y),
                lambda: evaluate(model, x, y, threat, level="fast"), lambda: check_eps_scale(threat, x)):
        with pytest.raises(ConfigError, match="range of 0"):
            run()


def test_a_partly_constant_data_set_attacks_only_the_varying_features(problem):
    p = problem
    x = p["x"][:80].copy()
    x[:, 3] = np.float32(101.5)  # constant: no range to move in
    threat = ThreatModel.from_schema(Schema.infer(x), eps=0.05)
    res = PGD(threat, steps=10, seed=0).run(wrap(p["raw_net"]), x, p["y"][:80])
    np.testing.assert_array_equal(res.x_adv[:, 3], x[:, 3])
    assert res.success.sum() > 0


def test_range_unit_needs_finite_bounds(problem):
    p = problem
    model = wrap(p["raw_net"])
    with pytest.raises(ConfigError, match="needs bounds"):
        FGSM(ThreatModel("linf", 0.1, None, unit="range")).run(model, p["x"], p["y"])
    upper = p["upper"].copy()
    upper[3] = np.inf
    with pytest.raises(ConfigError, match=r"finite range.*features \[3\]"):
        FGSM(ThreatModel("linf", 0.1, (p["lower"], upper), unit="range")).run(model, p["x"], p["y"])
    # an immutable feature needs no range
    mutable = np.ones(len(upper), dtype=bool)
    mutable[3] = False
    res = FGSM(ThreatModel("linf", 0.1, (p["lower"], upper), mutable, unit="range")).run(model, p["x"], p["y"])
    np.testing.assert_array_equal(res.x_adv[:, 3], p["x"][:, 3])
    with pytest.raises(ConfigError, match="unit"):
        ThreatModel("linf", 0.1, (0.0, 1.0), unit="percent")


def test_from_schema_defaults_to_range_and_says_so():
    schema = Schema.infer(np.array([[0.0, 10.0], [1.0, 1000.0], [0.5, 20.0]]))
    assert ThreatModel.from_schema(schema).unit == "range" and ThreatModel.from_schema(schema).eps == 0.03
    assert ThreatModel.from_schema(schema, eps=0.1, unit="raw").to_dict()["eps_unit"] == "input units"
    d = ThreatModel.from_schema(schema, eps=0.1).to_dict()
    assert d["eps_unit"] == RANGE_TEXT and d["eps"] == 0.1


def test_check_attack_accepts_a_correct_attack_under_a_range_threat(problem):
    p = problem
    check_attack(FGSM(_range_threat(p, 0.02)), p["raw_net"], p["x"][:50], p["y"][:50])


# -- the adversarial check carries the unit -------------------------------------------------------
@pytest.fixture(scope="module")
def table_data(problem):
    p = problem
    keep = slice(15, 135)  # rows the model gets right: a model that clearly beats chance
    return Dataset.from_arrays(p["x"][keep], p["y"][keep])


@pytest.mark.parametrize("attack", ["pgd", "evaluate"])
def test_adversarial_check_tables_and_axis_name_the_unit(problem, table_data, attack):
    check = AdversarialRobustness(attack=attack, level="fast", eps=[0.01, 0.03], steps=10,
                                  minimal=attack == "evaluate")
    # float32: DeepFool (the minimal perturbation) fails on float64 modules, see below; float64 rows, as
    # a float32 frame makes torch warn about a read-only array (see test_models_compat.py)
    net32 = copy.deepcopy(problem["raw_net"]).float()
    table_data = Dataset.from_arrays(np.asarray(table_data.x, dtype=np.float64), table_data.y)
    res = check.run(net32, table_data, seed=0)
    assert res.status.value not in ("ERROR", "SKIP"), res.message
    assert res.curves["robust_accuracy_vs_eps"]["x_label"] == f"eps (linf, {RANGE_TEXT})"
    if attack == "evaluate":
        assert res.tables["evaluation"][0]["eps_unit"] == RANGE_TEXT
        assert res.tables["minimal_perturbation"][0]["eps_unit"] == RANGE_TEXT
        assert RANGE_TEXT in res.figures["minimal_perturbation"]["x_label"]
    raw = AdversarialRobustness(attack="pgd", eps=[0.01], steps=10, minimal=False, eps_unit="raw")
    raw_res = raw.run(net32, table_data, seed=0)
    assert raw_res.curves["robust_accuracy_vs_eps"]["x_label"] == "eps (linf, input units)"


def test_adversarial_check_matches_the_closed_form_in_range_units(problem, table_data):
    """The check's bounds are the data's own range (widened to the sample), so rows at its edge cannot
    move outward. For a linear model the worst case in the box is still a corner: each feature moves
    against its weight by min(eps * width_j, room left before the bound)."""
    p = problem
    x = np.asarray(table_data.x, dtype=np.float32).astype(np.float64)
    y = np.asarray(table_data.y)
    lo, hi = x.min(axis=0), x.max(axis=0)
    score = x @ p["w"] + p["b"]
    correct = (score > 0).astype(int) == y
    for eps in (0.01, 0.03, 0.1):
        against = -np.sign(score)[:, None] * np.sign(p["w"])[None, :]  # the direction that lowers |score|
        room = np.where(against > 0, hi - x, x - lo)
        worst = score + np.sum(p["w"] * against * np.minimum(eps * (hi - lo), room), axis=1)
        assert np.min(np.abs(worst) / np.abs(score)) > 1e-4  # no near-ties at these budgets
        expected = float(np.mean(correct & (np.sign(worst) == np.sign(score))))
        res = AdversarialRobustness(attack="fgsm", eps=[eps], minimal=False).run(p["raw_net"], table_data, seed=0)
        assert res.metrics[f"robust_accuracy_at_{eps:g}"].value == pytest.approx(expected, abs=1e-12), eps


def test_minimal_perturbation_runs_on_a_float64_module(problem, table_data):
    check = AdversarialRobustness(attack="evaluate", level="fast", eps=[0.01], minimal=True)
    res = check.run(problem["raw_net"], table_data, seed=0)
    assert res.status.value != "ERROR", res.message


def test_immutable_unbounded_feature_reaches_the_model_unchanged():
    from stalwart.data import Schema

    rng = np.random.default_rng(0)
    x = np.c_[rng.normal(size=200), rng.integers(0, 5, 200)].astype(np.float32)  # a measurement and a category code
    w, b = np.array([1.0, 1.0]), -2.0
    y = (x.astype(np.float64) @ w + b > 0).astype(int)
    model = wrap(_linear(w, b))
    assert (model.predict(x) == y).all()
    threat = ThreatModel.from_schema(Schema.infer(x, kinds={"x1": "categorical"}), eps=0.03)
    assert threat.unit == "range" and np.isinf(threat.bounds[1][1]) and not threat.mutable[1]
    res = PGD(threat, steps=10, seed=0).run(model, x, y)
    assert res.clean_accuracy == 1.0
    # closed form: only x0 moves, by 0.03 of its range
    dist = np.abs(x.astype(np.float64) @ w + b) / (0.03 * np.ptp(x[:, 0]))
    assert res.robust_accuracy == pytest.approx(np.mean(dist > 1), abs=2 / 200)
