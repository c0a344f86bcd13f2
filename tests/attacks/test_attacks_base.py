"""ThreatModel, project_ball, norm_of, AttackResult and the fixed steps of Attack.run."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest
import torch

from stalwart.attacks import ATTACKS, Attack, AttackResult, ThreatModel, norm_of, project_ball
from stalwart.errors import ConfigError, InputError, ModelError
from stalwart.models import wrap

RNG = np.random.default_rng(0)


# -- numpy references, written independently of the torch code ----------------------------------
def l1_projection_bisection(v: np.ndarray, eps: float) -> np.ndarray:
    """Projection of one vector onto the L1 ball by bisection on the soft threshold."""
    a = np.abs(v)
    if a.sum() <= eps:
        return v.copy()
    lo, hi = 0.0, a.max()
    for _ in range(200):
        theta = (lo + hi) / 2
        if np.maximum(a - theta, 0).sum() > eps:
            lo = theta
        else:
            hi = theta
    return np.sign(v) * np.maximum(a - (lo + hi) / 2, 0)


def random_in_l1_ball(rng: np.random.Generator, d: int, eps: float, n: int) -> np.ndarray:
    e = rng.exponential(size=(n, d + 1))
    return rng.choice([-1.0, 1.0], size=(n, d)) * eps * e[:, :d] / e.sum(axis=1, keepdims=True)


# -- norm_of ------------------------------------------------------------------------------------
def test_norm_of_matches_numpy_on_image_batches() -> None:
    d = RNG.normal(size=(5, 3, 4, 4))
    d[0, 1] = 0.0
    flat = d.reshape(5, -1)
    t = torch.as_tensor(d)
    np.testing.assert_allclose(norm_of(t, "linf").numpy(), np.abs(flat).max(axis=1))
    np.testing.assert_allclose(norm_of(t, "l2").numpy(), np.linalg.norm(flat, axis=1))
    np.testing.assert_allclose(norm_of(t, "l1").numpy(), np.abs(flat).sum(axis=1))
    np.testing.assert_array_equal(norm_of(t, "l0").numpy(), (flat != 0).sum(axis=1))
    assert norm_of(t, "l0")[0].item() == 48 - 16


# -- project_ball -------------------------------------------------------------------------------
@pytest.mark.parametrize("norm,eps", [("linf", 0.3), ("l2", 1.5), ("l1", 2.0), ("l0", 5)])
def test_project_ball_lands_in_ball_and_keeps_inside_points(norm: str, eps: float) -> None:
    rng = np.random.default_rng(1)
    v = torch.as_tensor(rng.normal(size=(64, 20)) * np.logspace(-2, 1, 64)[:, None])
    p = project_ball(v, norm, eps)
    assert p.shape == v.shape
    assert (norm_of(p, norm) <= eps * (1 + 1e-9)).all()
    inside = norm_of(v, norm) <= eps
    assert 0 < int(inside.sum()) < 64 or norm == "l0"
    # points already inside are returned unchanged
    small = {"linf": v.clamp(-eps, eps), "l2": v * 0.5 / v.norm(dim=1, keepdim=True),
             "l1": v * 0.5 / v.abs().sum(dim=1, keepdim=True), "l0": v * (torch.arange(20) < 5)}[norm]
    assert torch.equal(project_ball(small, norm, eps), small)
    # idempotent
    torch.testing.assert_close(project_ball(p, norm, eps), p)


def test_project_ball_linf_and_l2_closed_forms() -> None:
    v = torch.tensor([[3.0, -4.0, 0.5], [0.1, 0.2, -0.1]], dtype=torch.float64)
    torch.testing.assert_close(project_ball(v, "linf", 1.0),
                               torch.tensor([[1.0, -1.0, 0.5], [0.1, 0.2, -0.1]], dtype=torch.float64))
    # l2: radial scaling onto the sphere for the outside point only (|v0| = sqrt(25.25))
    expect = v.clone()
    expect[0] = v[0] * 2.0 / np.sqrt(25.25)
    torch.testing.assert_close(project_ball(v, "l2", 2.0), expect)


def test_project_l1_matches_bisection_reference_and_kkt() -> None:
    v = RNG.normal(size=(50, 30)) * RNG.uniform(0.1, 3.0, size=(50, 1))
    v[0, :] = 0.0
    v[1, :5] = 4.0  # ties in magnitude
    eps = 3.0
    p = project_ball(torch.as_tensor(v), "l1", eps).numpy()
    ref = np.stack([l1_projection_bisection(row, eps) for row in v])
    np.testing.assert_allclose(p, ref, atol=1e-9)
    outside = np.abs(v).sum(axis=1) > eps
    # KKT: p = sign(v) * max(|v| - theta, 0) with one theta per row and sum |p| = eps
    np.testing.assert_allclose(np.abs(p[outside]).sum(axis=1), eps, rtol=1e-12)
    for row, proj in zip(v[outside], p[outside]):
        support = proj != 0
        theta = np.abs(row[support]) - np.abs(proj[support])
        np.testing.assert_allclose(theta, theta[0], atol=1e-12)
        assert (np.abs(row[~support]) <= theta[0] + 1e-12).all()
        assert np.array_equal(np.sign(proj[support]), np.sign(row[support]))


def test_project_l1_is_the_nearest_point_of_the_ball() -> None:
    v = RNG.normal(size=(1, 12)) * 2
    p = project_ball(torch.as_tensor(v), "l1", 1.0).numpy()[0]
    q = random_in_l1_ball(np.random.default_rng(1), 12, 1.0, 20000)
    assert np.linalg.norm(v[0] - p) <= np.linalg.norm(v[0] - q, axis=1).min()


def test_project_l1_zero_radius_and_float32() -> None:
    v = torch.as_tensor(RNG.normal(size=(4, 10)), dtype=torch.float32)
    assert torch.equal(project_ball(v, "l1", 0.0), torch.zeros_like(v))
    p = project_ball(v * 10, "l1", 1.0)
    assert p.dtype == torch.float32
    np.testing.assert_allclose(p.abs().sum(dim=1).numpy(), 1.0, rtol=1e-5)


def test_project_l0_keeps_the_largest_coordinates() -> None:
    v = torch.tensor([[0.1, -5.0, 2.0, 0.3, -3.0]])
    torch.testing.assert_close(project_ball(v, "l0", 2), torch.tensor([[0.0, -5.0, 0.0, 0.0, -3.0]]))
    assert torch.equal(project_ball(v, "l0", 0), torch.zeros_like(v))
    assert torch.equal(project_ball(v, "l0", 9), v)


# -- ThreatModel --------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs,param", [
    ({"eps": -0.1}, "eps"), ({"eps": float("nan")}, "eps"), ({"eps": True}, "eps"),
    ({"norm": "l3"}, "norm"), ({"bounds": (1.0, 0.0)}, "bounds"), ({"bounds": (0.0, 1.0, 2.0)}, "bounds"),
    ({"bounds": 1.0}, "bounds"), ({"bounds": ([0.0, 2.0], [1.0, 1.0])}, "bounds"),
    ({"bounds": (0.0, "high")}, "bounds"), ({"bounds": ([0.0, 0.0], [1.0, 1.0, 1.0])}, "bounds"),
    ({"mutable": [1, 0]}, "mutable"),
])
def test_threat_model_rejects_bad_parameters(kwargs: dict, param: str) -> None:
    with pytest.raises(ConfigError, match=rf"ThreatModel\({param}=\.\.\.\) must be"):
        ThreatModel(**kwargs)


def test_threat_model_keeps_its_constraint_tensors_per_shape_and_never_for_another_eps() -> None:
    """The tensors are built once per sample shape (an attack asks at every step), a model made by
    ``replace`` or copied to another process builds its own, and results do not depend on the memo."""
    import copy
    import pickle
    from dataclasses import replace

    threat = ThreatModel("linf", 0.1, (0.0, 1.0), mutable=np.array([True, False, True]))
    x = torch.rand(4, 3)
    first = threat.constraints(x)
    assert threat.constraints(torch.rand(9, 3)) is first  # the batch size does not matter
    assert threat.constraints(torch.rand(2, 3), layout=(3, 1)) is not first
    wider = replace(threat, eps=0.3)
    assert wider.constraints(x).eps == pytest.approx(0.3) and first.eps == pytest.approx(0.1)
    for other in (pickle.loads(pickle.dumps(threat)), copy.copy(threat), copy.deepcopy(threat)):
        assert "_feasible" not in vars(other) or vars(other)["_feasible"] is not vars(threat)["_feasible"]
        moved = other.constraints(x)
        assert moved is not first
        torch.testing.assert_close(moved.project(x + 0.5, x), first.project(x + 0.5, x))
    assert "_feasible" not in pickle.loads(pickle.dumps(threat)).__dict__
    assert threat.to_dict() == pickle.loads(pickle.dumps(threat)).to_dict()


def test_threat_model_project_respects_mask_ball_and_per_feature_bounds() -> None:
    threat = ThreatModel("l2", eps=1.0, bounds=([0.0, 0.0, -1.0], [1.0, 0.5, 1.0]),
                         mutable=np.array([True, True, False]))
    x = torch.tensor([[0.5, 0.25, 0.0]])
    out = threat.project(x + torch.tensor([[3.0, 4.0, 7.0]]), x)
    # masked delta (3, 4, 0) -> l2 ball (0.6, 0.8, 0) -> clipped to bounds
    torch.testing.assert_close(out, torch.tensor([[1.0, 0.5, 0.0]]))
    assert threat.distance(out, x)[0] <= 1.0
    d = threat.to_dict()
    assert d == {"norm": "l2", "eps": 1.0, "bounds": [("per-feature", 3), ("per-feature", 3)],
                 "immutable_features": 1, "eps_unit": "input units"}
    assert ThreatModel().to_dict()["bounds"] == [0.0, 1.0]


# -- AttackResult -------------------------------------------------------------------------------
def test_attack_result_metrics() -> None:
    y = np.array([0, 1, 1, 0, 1])
    res = AttackResult(
        attack="x", threat=ThreatModel(), x_adv=np.zeros((5, 2)), y=y,
        pred_clean=np.array([0, 1, 0, 0, 1]), pred_adv=np.array([1, 1, 0, 1, 0]),
        success=np.array([True, False, True, True, True]), distance=np.array([0.1, 0, 0, 0.3, 0.2]),
        queries=np.array([1.0, 2, 3, 4, 5]), time_s=0.5)
    assert res.clean_accuracy == pytest.approx(0.8)
    assert res.robust_accuracy == pytest.approx(0.2)
    assert res.attack_success_rate == pytest.approx(0.75)  # 3 of the 4 clean-correct samples
    d = res.to_dict()
    assert d["median_distance"] == pytest.approx(0.2)  # over fooled clean-correct samples only
    assert d["queries_mean"] == pytest.approx(3.0) and d["n_samples"] == 5


# -- Attack.run: the fixed steps every attack gets ------------------------------------------------
class _Shift(Attack):
    """Test double: returns x + shift (however large); the base must enforce the threat model."""

    name: ClassVar[str] = "_test_shift"

    def __init__(self, threat: ThreatModel, *, shift: float = 10.0, seed: int = 0) -> None:
        super().__init__(threat, seed=seed)
        self.shift = shift

    def _attack(self, model, x, y, target):
        return x + self.shift


def _threshold_net() -> torch.nn.Module:
    """Two features; logits (0, x0 + x1 - 1): class 1 iff x0 + x1 > 1."""
    net = torch.nn.Linear(2, 1)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[1.0, 1.0]]))
        net.bias.fill_(-1.0)
    return net


def test_run_projects_candidates_and_recomputes_success() -> None:
    x = np.array([[0.2, 0.2], [0.46, 0.46], [0.7, 0.7], [0.1, 0.1]], dtype=np.float32)
    y = np.array([0, 0, 1, 1])  # the last one is misclassified clean
    threat = ThreatModel("linf", eps=0.1, bounds=(0.0, 1.0), mutable=np.array([True, False]))
    res = _Shift(threat).run(_threshold_net(), x, y)
    # only feature 0 moves, by at most eps: x0 + x1 > 1 reachable only for row 1 (0.56 + 0.46)
    np.testing.assert_array_equal(res.success, [False, True, False, True])
    np.testing.assert_allclose(res.x_adv[1], [0.56, 0.46], atol=1e-7)
    np.testing.assert_array_equal(res.x_adv[[0, 2, 3]], x[[0, 2, 3]])  # failures and clean errors keep x
    np.testing.assert_array_equal(res.pred_clean, [0, 0, 1, 0])
    np.testing.assert_array_equal(res.pred_adv, [0, 1, 1, 0])
    np.testing.assert_allclose(res.distance, [0.0, 0.1, 0.0, 0.0], atol=1e-7)
    assert res.robust_accuracy == 0.5 and res.params == {"seed": 0, "shift": 10.0}


def test_run_targeted_success_means_the_target() -> None:
    net = torch.nn.Linear(3, 3, bias=False)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 0.0]]))
    x = np.array([[0.5, 0.0, 0.0], [0.5, 0.0, 0.0]], dtype=np.float32)
    # the shift moves logits from (0.5, 0, 0) to (1.1, 1.2, 0): both become class 1
    attack = _Shift(ThreatModel("linf", eps=0.6, bounds=None), shift=0.6)
    res = attack.run(net, x, np.array([0, 0]))
    np.testing.assert_array_equal(res.success, [True, True])
    res = attack.run(net, x, np.array([0, 0]), targeted=np.array([1, 2]))
    assert res.targeted
    np.testing.assert_array_equal(res.success, [True, False])  # class 1 is not target 2
    np.testing.assert_array_equal(res.x_adv[1], x[1])
    # pred_adv is the prediction on the returned input: the failed row returns x, predicted 0 (its
    # discarded candidate was predicted 1)
    np.testing.assert_array_equal(res.pred_adv, [1, 0])
    np.testing.assert_array_equal(res.pred_adv, wrap(net).predict(res.x_adv))


def test_run_input_errors() -> None:
    attack = _Shift(ThreatModel("linf", eps=0.1))
    net = _threshold_net()
    x = np.full((3, 2), 0.5, dtype=np.float32)
    with pytest.raises(InputError, match="y contains labels the model does not know: \\[7\\]"):
        attack.run(net, x, np.array([0, 1, 7]))
    bad = x.copy()
    bad[1, 0] = np.nan
    with pytest.raises(InputError, match="x contains 1 NaN"):
        attack.run(net, bad, np.array([0, 1, 1]))
    with pytest.raises(InputError, match="x has 3 samples but y has 2"):
        attack.run(net, x, np.array([0, 1]))
    with pytest.raises(InputError, match="outside the threat model's bounds"):
        attack.run(net, x + 1.0, np.array([0, 1, 1]))
    with pytest.raises(InputError, match="targeted contains labels"):
        attack.run(net, x, np.array([0, 1, 1]), targeted=np.array([0, 1, 5]))
    with pytest.raises(InputError, match=r"targeted equals y for 1 sample\(s\) \(first: \[2\]\)"):
        attack.run(net, x, np.array([0, 1, 1]), targeted=np.array([1, 0, 1]))
    with pytest.raises(InputError, match="x has 3 samples but targeted has 1"):
        attack.run(net, x, np.array([0, 1, 1]), targeted=np.array([0]))


def test_run_refuses_black_box_models_for_white_box_attacks() -> None:
    model = wrap(lambda a: np.stack([1 - a[:, 0], a[:, 0]], axis=1))
    assert not model.differentiable
    with pytest.raises(ModelError, match="black-box"):
        _Shift(ThreatModel("linf", eps=0.1)).run(model, np.full((2, 2), 0.5), np.array([0, 1]))


def test_attack_constructor_and_registry() -> None:
    with pytest.raises(ConfigError, match=r"_Shift\(threat=\.\.\.\) must be a ThreatModel"):
        _Shift("linf")
    assert {"fgsm", "pgd"} <= set(ATTACKS.names())
    assert repr(_Shift(ThreatModel("l2", eps=0.5))) == "_Shift(l2, eps=0.5, seed=0, shift=10.0)"
