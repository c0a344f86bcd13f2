"""Carlini-Wagner L2: closed forms on linear models (with and without the tanh box), confidence,
the eps cap, a trained MLP, targeted mode and parameter errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stalwart.attacks import ATTACKS, ThreatModel, get
from stalwart.attacks.cw import CW
from stalwart.attacks.deepfool import DeepFool
from stalwart.errors import ConfigError
from stalwart.models import wrap

FAST = {"binary_steps": 6}  # c = 0.01, 0.1, 1, 10, then two bisections: enough for these problems


def _boxed_linear_problem(n: int = 100, d: int = 10):
    """A binary linear classifier whose boundary crosses the centre of [0, 1]^d, inputs in
    [0.25, 0.75]^d; returns (net, x, y, w, b) with score w.x + b = z_1 - z_0."""
    gen = torch.Generator().manual_seed(0)
    net = torch.nn.Linear(d, 2)
    with torch.no_grad():
        net.weight.copy_(torch.randn(2, d, generator=gen))
        w = (net.weight[1] - net.weight[0]).double()
        net.bias.copy_(torch.tensor([0.0, float(-0.5 * w.sum())]))
    w = w.numpy()
    b = float((net.bias[1] - net.bias[0]).detach())
    x = np.random.default_rng(0).uniform(0.25, 0.75, size=(n, d)).astype(np.float32)
    y = (x.astype(np.float64) @ w + b > 0).astype(int)
    return net, x, y, w, b


def test_cw_finds_the_closed_form_l2_distance_inside_the_box() -> None:
    """The nearest boundary point x - f w / ||w||^2 lies inside the box for every sample here, so
    the box does not bind and the minimal L2 distance is |w.x + b| / ||w||_2."""
    net, x, y, w, b = _boxed_linear_problem()
    f = x.astype(np.float64) @ w + b
    exact = np.abs(f) / np.linalg.norm(w)
    nearest = x - (f / (w @ w))[:, None] * w
    assert ((nearest > 0.01) & (nearest < 0.99)).all()
    res = CW(ThreatModel("l2", eps=100.0, bounds=(0.0, 1.0)), **FAST).run(net, x, y)
    assert res.success.all()
    assert (res.distance >= exact * (1 - 1e-4)).all()  # nothing beats the exact minimum
    assert (res.distance <= exact * 1.05).all()
    assert ((res.x_adv >= 0) & (res.x_adv <= 1)).all()


def test_cw_without_bounds_optimises_the_input_directly() -> None:
    """bounds=None: no tanh; Adam's steps of about lr per coordinate limit the precision to a few
    lr * sqrt(d), so only distances well above that are judged to 5%."""
    net, x, y, w, b = _boxed_linear_problem()
    exact = np.abs(x.astype(np.float64) @ w + b) / np.linalg.norm(w)
    res = CW(ThreatModel("l2", eps=100.0, bounds=None), **FAST).run(net, x, y)
    assert res.success.all()
    assert (res.distance >= exact * (1 - 1e-4)).all()
    far = exact > 0.1
    assert far.sum() > 20
    assert (res.distance[far] <= exact[far] * 1.05).all()


def test_confidence_buys_a_logit_margin_at_its_exact_price() -> None:
    """With confidence kappa the nearest point with margin > kappa is at (|f| + kappa) / ||w||."""
    net, x, y, w, b = _boxed_linear_problem(n=40)
    kappa = 0.5
    exact = (np.abs(x.astype(np.float64) @ w + b) + kappa) / np.linalg.norm(w)
    res = CW(ThreatModel("l2", eps=100.0, bounds=(0.0, 1.0)), confidence=kappa, **FAST).run(net, x, y)
    assert res.success.all()
    score = res.x_adv.astype(np.float64) @ w + b
    assert (np.where(y == 1, -score, score) > kappa * (1 - 1e-3)).all()
    assert (res.distance >= exact * (1 - 1e-3)).all()
    assert (res.distance <= exact * 1.05).all()


def test_eps_caps_the_result_and_success_is_recomputed() -> None:
    net, x, y, w, b = _boxed_linear_problem()
    exact = np.abs(x.astype(np.float64) @ w + b) / np.linalg.norm(w)
    eps = float(np.median(exact))
    model = wrap(net)
    res = CW(ThreatModel("l2", eps=eps, bounds=(0.0, 1.0)), **FAST).run(model, x, y)
    assert (res.distance <= eps + 1e-6).all()
    np.testing.assert_array_equal(res.success, model.predict(res.x_adv) != y)
    assert not res.success[exact > eps * 1.001].any()  # beyond eps: out of reach
    assert res.success[exact < eps / 1.05].all()


def test_cw_on_a_trained_mlp_fools_nearly_all_and_leaves_the_model_untouched(digits_mlp) -> None:
    net, x, y = digits_mlp
    x, y = x[:100], y[:100]
    grads = [None if p.grad is None else p.grad.clone() for p in net.parameters()]
    res = CW(ThreatModel("l2", eps=100.0), **FAST).run(net, x, y)
    fooled = res.success & res.clean_correct
    assert res.success.mean() > 0.95
    for p, g in zip(net.parameters(), grads):  # no gradients leaked into the module
        assert (p.grad is None and g is None) or torch.equal(p.grad, g)
    # CW ignores eps while optimising; the base cuts the same candidates to a smaller eps, so
    # every sample fooled within eps in the large-eps run stays fooled
    eps = float(np.median(res.distance[fooled]))
    small = CW(ThreatModel("l2", eps=eps), **FAST).run(net, x, y)
    assert small.success[fooled & (res.distance <= eps)].all()
    assert (small.distance <= eps + 1e-5).all()
    assert small.robust_accuracy >= 0.3  # about half of the clean-correct samples survive


def test_cw_without_bounds_matches_deepfool_on_a_relu_mlp(digits_mlp) -> None:
    """Unboxed, CW's distances are comparable to DeepFool's (near-exact on a piecewise-linear net):
    neither may be much better than the other."""
    net, x, y = digits_mlp
    x, y = x[:100], y[:100]
    threat = ThreatModel("l2", eps=100.0, bounds=None)
    cw = CW(threat, **FAST).run(net, x, y)
    df = DeepFool(threat).run(net, x, y)
    both = cw.success & df.success & cw.clean_correct
    assert both.mean() > 0.9
    ratio = cw.distance[both] / df.distance[both]
    assert 0.8 < np.median(ratio) < 1.1
    assert (cw.distance[both] <= df.distance[both]).mean() > 0.5


def test_targeted_cw_reaches_the_target(digits_mlp) -> None:
    """lr=0.1: pixels that sit on a bound start in tanh's flat tail, and at lr=0.01 Adam needs
    about atanh(1 - 1e-6) / 0.01 = 725 steps to free them (see the module docstring)."""
    net, x, y = digits_mlp
    x, y = x[:50], y[:50]
    target = (y + 3) % 10
    res = CW(ThreatModel("l2", eps=100.0), lr=0.1, steps=50, binary_steps=6).run(net, x, y, targeted=target)
    ok = res.clean_correct
    assert res.targeted and res.success[ok].mean() > 0.9
    np.testing.assert_array_equal(res.success[ok], res.pred_adv[ok] == target[ok])


def test_registry_and_params() -> None:
    assert ATTACKS.get("cw") is CW
    cw = get("cw", ThreatModel("l2", eps=1.0), steps=7)
    assert cw.params() == {"seed": 0, "confidence": 0.0, "c_init": 0.01, "binary_steps": 9, "steps": 7,
                           "lr": 0.01}


@pytest.mark.parametrize("norm", ["linf", "l1", "l0"])
def test_cw_refuses_norms_other_than_l2(norm: str) -> None:
    with pytest.raises(ConfigError, match=r"CW\(threat=\.\.\.\) must be a ThreatModel with norm 'l2'"):
        CW(ThreatModel(norm, eps=1.0))


@pytest.mark.parametrize("kwargs,param", [
    ({"confidence": -1.0}, "confidence"), ({"c_init": 0.0}, "c_init"), ({"binary_steps": 0}, "binary_steps"),
    ({"steps": 1.5}, "steps"), ({"lr": -0.1}, "lr"), ({"seed": None}, "seed"),
])
def test_cw_rejects_bad_parameters(kwargs: dict, param: str) -> None:
    with pytest.raises(ConfigError, match=rf"CW\({param}=\.\.\.\) must be"):
        CW(ThreatModel("l2", eps=1.0), **kwargs)
