"""DeepFool: exact one-step answers on affine classifiers (binary and multi-class, l2 and linf),
query cost, a trained MLP, threat-model invariants, targeted mode and parameter errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stalwart.attacks import ATTACKS, PGD, ThreatModel, get
from stalwart.attacks.deepfool import DeepFool
from stalwart.errors import ConfigError
from stalwart.models import wrap

SLACK = 1e-4  # DeepFool's published push past the linearised boundary, in logit units
DUAL = {"l2": lambda w: np.linalg.norm(w, axis=-1), "linf": lambda w: np.abs(w).sum(axis=-1)}


def _affine(k: int, d: int = 10, n: int = 200, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    net = torch.nn.Linear(d, k)
    with torch.no_grad():
        net.weight.copy_(torch.randn(k, d, generator=gen))
        net.bias.copy_(torch.randn(k, generator=gen))
    x = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    W, c = net.weight.detach().double().numpy(), net.bias.detach().double().numpy()
    y = (x.astype(np.float64) @ W.T + c).argmax(axis=1)
    return net, x, y, W, c


def _deepfool_answer(x, y, W, c, norm: str, overshoot: float, classes=None) -> np.ndarray:
    """Closed form of one DeepFool step on an affine model: (1 + overshoot) times
    min_k (|f_k| + slack) / ||w_k - w_y||_dual over the considered classes k."""
    z = x.astype(np.float64) @ W.T + c
    n, k = z.shape
    rows = np.arange(n)
    f = np.abs(z - z[rows, y][:, None])
    dual = DUAL[norm](W[None, :, :] - W[y][:, None, :])
    cost = (f + SLACK) / np.where(dual > 0, dual, np.inf)
    cost[rows, y] = np.inf
    if classes is not None:
        allowed = np.zeros_like(cost, dtype=bool)
        allowed[rows[:, None], classes] = True
        cost = np.where(allowed, cost, np.inf)
    return (1 + overshoot) * cost.min(axis=1)


@pytest.mark.parametrize("norm", ["l2", "linf"])
@pytest.mark.parametrize("k", [2, 5])
def test_one_step_reaches_the_closest_boundary_of_an_affine_model(norm: str, k: int) -> None:
    """Binary: the exact minimal distance is |w.x + b| / ||w||_dual; DeepFool returns it times
    (1 + overshoot), up to its slack. Multi-class: the nearest of the k - 1 boundaries."""
    net, x, y, W, c = _affine(k)
    model = wrap(net)
    res = DeepFool(ThreatModel(norm, eps=100.0, bounds=None), overshoot=0.02).run(model, x, y)
    assert res.success.all()
    expected = _deepfool_answer(x, y, W, c, norm, 0.02)
    np.testing.assert_allclose(res.distance, expected, rtol=2e-4)
    # independently: the exact minimal distance, and "within overshoot" of it
    z = x.astype(np.float64) @ W.T + c
    dual = DUAL[norm](W[None] - W[y][:, None])  # (n, k)
    other = np.arange(k) != y[:, None]
    exact = np.where(other, np.abs(z - z[np.arange(len(x)), y][:, None]) / np.where(other, dual, 1), np.inf).min(1)
    slack = SLACK / np.where(other, dual, np.inf).min(1)
    assert (res.distance >= exact - 1e-6).all()  # float32 rounding of x + delta
    assert (res.distance <= 1.02 * (exact + slack) + 1e-6).all()
    # one linearisation each: clean + final predict_proba, the candidate ranking, two steps' forwards
    assert model.n_queries == 5 * len(x)


def test_fewer_candidates_can_only_miss_the_closest_boundary() -> None:
    net, x, y, W, c = _affine(10, seed=1)
    z = x.astype(np.float64) @ W.T + c
    top2 = np.argsort(-np.where(np.arange(10) == y[:, None], -np.inf, z), axis=1)[:, :2]
    threat = ThreatModel("l2", eps=100.0, bounds=None)
    full = DeepFool(threat).run(net, x, y)
    two = DeepFool(threat, candidates=2).run(net, x, y)
    assert (two.distance >= full.distance * (1 - 1e-5)).all()
    assert (two.distance > full.distance * 1.01).sum() >= 5  # the most likely class is not always the closest
    # one step to the nearer of the two candidate boundaries
    np.testing.assert_allclose(two.distance, _deepfool_answer(x, y, W, c, "l2", 0.02, classes=top2), rtol=2e-4)


def test_deepfool_on_a_trained_mlp(digits_mlp) -> None:
    net, x, y = digits_mlp
    model = wrap(net)
    res = DeepFool(ThreatModel("l2", eps=100.0)).run(model, x, y)
    ok = res.clean_correct
    assert res.success.all()
    assert 0.2 < np.median(res.distance[ok]) < 1.5
    # clean + final predict_proba, the candidate ranking, and about two linearisations per sample
    # (coordinates pinned at a bound are left out of the linearisation, so the clip eats no step)
    assert model.n_queries <= 3 * len(x) + 3 * ok.sum()
    # DeepFool's distances bound the minimal ones from above: at eps = the median DeepFool distance
    # at least half the samples are reachable, and PGD finds nearly as many
    eps = float(np.median(res.distance[ok]))
    ra = PGD(ThreatModel("l2", eps=eps), steps=50).run(net, x, y).robust_accuracy
    assert ra <= 0.6
    linf = DeepFool(ThreatModel("linf", eps=100.0)).run(net, x, y)
    assert linf.success.all()
    # ||d||_inf <= ||d||_2: the linf perturbation is smaller in its own norm
    assert np.median(linf.distance[ok]) < np.median(res.distance[ok])


@pytest.mark.parametrize("norm,eps", [("l2", 0.6), ("linf", 0.08)])
def test_outputs_stay_in_the_threat_model(digits_mlp, norm: str, eps: float) -> None:
    net, x, y = digits_mlp
    x, y = x[:120], y[:120].copy()
    y[:5] = (y[:5] + 1) % 10
    rng = np.random.default_rng(0)
    mutable = rng.uniform(size=64) < 0.7
    threat = ThreatModel(norm, eps=eps, bounds=(0.0, 1.0), mutable=mutable)
    model = wrap(net)
    res = DeepFool(threat).run(model, x, y)
    assert (res.distance <= eps + 1e-6).all()
    assert (res.x_adv >= 0).all() and (res.x_adv <= 1).all()
    np.testing.assert_array_equal(res.x_adv[:, ~mutable], x[:, ~mutable])
    np.testing.assert_array_equal(res.success, model.predict(res.x_adv) != y)
    assert res.success[:5].all()
    np.testing.assert_array_equal(res.x_adv[~res.success], x[~res.success])
    assert 0.1 < res.success.mean() < 1.0


def test_targeted_deepfool_reaches_the_target(digits_mlp) -> None:
    net, x, y = digits_mlp
    x, y = x[:100], y[:100]
    target = (y + 5) % 10
    res = DeepFool(ThreatModel("l2", eps=100.0)).run(net, x, y, targeted=target)
    ok = res.clean_correct
    assert res.targeted and res.success[ok].mean() > 0.9
    np.testing.assert_array_equal(res.success[ok], res.pred_adv[ok] == target[ok])
    untargeted = DeepFool(ThreatModel("l2", eps=100.0)).run(net, x, y)
    both = res.success & untargeted.success & ok
    assert np.median(res.distance[both]) > np.median(untargeted.distance[both])  # any class is closer


def test_registry_and_params() -> None:
    assert ATTACKS.get("deepfool") is DeepFool
    df = get("deepfool", ThreatModel("l2", eps=1.0), candidates=3)
    assert df.params() == {"seed": 0, "steps": 50, "overshoot": 0.02, "candidates": 3}


@pytest.mark.parametrize("norm", ["l1", "l0"])
def test_deepfool_refuses_l1_and_l0(norm: str) -> None:
    with pytest.raises(ConfigError, match=r"DeepFool\(threat=\.\.\.\) must be a ThreatModel with norm in"):
        DeepFool(ThreatModel(norm, eps=1.0))


@pytest.mark.parametrize("kwargs,param", [
    ({"steps": 0}, "steps"), ({"overshoot": -0.1}, "overshoot"), ({"candidates": 0}, "candidates"),
    ({"candidates": 2.0}, "candidates"), ({"seed": 0.5}, "seed"),
])
def test_deepfool_rejects_bad_parameters(kwargs: dict, param: str) -> None:
    with pytest.raises(ConfigError, match=rf"DeepFool\({param}=\.\.\.\) must be"):
        DeepFool(ThreatModel("l2", eps=1.0), **kwargs)
