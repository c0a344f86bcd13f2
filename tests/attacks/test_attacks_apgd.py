"""APGD: the published step-size schedule, the DLR losses, closed forms on linear models, strength
against PGD on a trained MLP, threat-model invariants, early stopping and parameter errors."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from stalwart.attacks import ATTACKS, PGD, ThreatModel, get
from stalwart.attacks.apgd import APGD, APGDCE, APGDDLR, APGDT, apgd_checkpoints
from stalwart.attacks.losses import cross_entropy, dlr, margin, targeted_dlr
from stalwart.errors import ConfigError
from stalwart.models import wrap
from stalwart.testing import check_linear_closed_form, linear_boundary_distance, linear_problem

MARGIN = 1.05  # samples within 5% of eps of their exact distance are near-ties and not judged


# -- the step-size schedule ---------------------------------------------------------------------
def _reference_checkpoints(steps: int) -> list[int]:
    """The paper's recurrence in exact rationals: p_0 = 0, p_1 = 0.22,
    p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06); w_j = ceil(p_j * steps)."""
    p = [Fraction(0), Fraction(22, 100)]
    while True:
        nxt = p[-1] + max(p[-1] - p[-2] - Fraction(3, 100), Fraction(6, 100))
        if nxt > 1:
            break
        p.append(nxt)
    out: list[int] = []
    for pj in p:
        w = math.ceil(pj * steps)
        if not out or w > out[-1]:
            out.append(w)
    return out


def test_checkpoints_follow_the_published_recurrence() -> None:
    got = apgd_checkpoints(100)
    assert got[:3] == [0, 22, 41]  # the first checkpoints as published
    assert got == _reference_checkpoints(100) == [0, 22, 41, 57, 70, 80, 87, 93, 99]
    for steps in (1, 5, 20, 37, 250, 1000):
        assert apgd_checkpoints(steps) == _reference_checkpoints(steps), steps
    assert apgd_checkpoints(5) == [0, 2, 3, 4, 5]  # repeats dropped when steps are few


def _state(n_up, loss_best, best_at_check, halved_last) -> dict:
    n = len(n_up)
    return {"idx": torch.arange(n), "xa": torch.zeros(n, 2), "x_best": torch.ones(n, 2),
            "grad": torch.zeros(n, 2), "g_best": torch.full((n, 2), 5.0),
            "loss": torch.zeros(n), "loss_best": torch.tensor(loss_best),
            "eta": torch.full((n,), 0.4), "n_up": torch.tensor(n_up),
            "best_at_check": torch.tensor(best_at_check), "halved_last": torch.tensor(halved_last)}


def test_checkpoint_halves_on_either_published_condition_and_restarts_from_the_best() -> None:
    """Window of 22 steps, rho = 0.75: condition 1 needs fewer than 16.5 increasing steps;
    condition 2: no halving at the last checkpoint and no better loss since it."""
    attack = APGD(ThreatModel("linf", eps=0.2))
    s = _state(n_up=[16.0, 17.0, 17.0, 17.0, 16.0],
               loss_best=[1.0, 2.0, 1.0, 1.0, 3.0], best_at_check=[1.0, 1.0, 1.0, 1.0, 2.0],
               halved_last=[False, False, False, True, True])
    attack._checkpoint(s, 22)
    halved = np.array([True, False, True, False, True])
    np.testing.assert_allclose(s["eta"].numpy(), np.where(halved, 0.2, 0.4))
    np.testing.assert_array_equal(s["xa"].numpy(), np.where(halved[:, None], 1.0, 0.0) * np.ones((5, 2)))
    np.testing.assert_array_equal(s["grad"].numpy(), np.where(halved[:, None], 5.0, 0.0) * np.ones((5, 2)))
    np.testing.assert_array_equal(s["loss"].numpy(), np.where(halved, s["loss_best"].numpy(), 0.0))
    np.testing.assert_array_equal(s["halved_last"].numpy(), halved)
    np.testing.assert_array_equal(s["best_at_check"].numpy(), s["loss_best"].numpy())
    assert (s["n_up"] == 0).all()


def test_step_size_halves_at_every_checkpoint_when_the_loss_cannot_rise(monkeypatch) -> None:
    """On a linear model the first linf step (size 2 eps) reaches the optimal corner; the loss never
    rises again, so condition 1 halves the step size at every checkpoint before the last step."""
    net, x, y, w, b = linear_problem(n=40)
    eps = float(linear_boundary_distance(x, w, b, "linf").min()) / 2  # nobody flips: all samples run on
    seen: list[float] = []
    original = APGD._checkpoint

    def spy(self, s, window):
        original(self, s, window)
        seen.append(float(s["eta"].max()))

    monkeypatch.setattr(APGD, "_checkpoint", spy)
    res = APGDCE(ThreatModel("linf", eps=eps, bounds=None)).run(net, x, y)
    assert not res.success.any()
    n_checks = len([w for w in apgd_checkpoints(100)[1:] if w < 100])
    np.testing.assert_allclose(seen, [2 * eps / 2 ** k for k in range(1, n_checks + 1)], rtol=1e-6)


# -- losses -------------------------------------------------------------------------------------
def test_dlr_losses_match_their_formulas_and_ignore_logit_scale() -> None:
    z = torch.tensor([[4.0, 1.0, 3.0, 0.0], [0.5, 2.0, -1.0, 1.5]])
    y, t = torch.tensor([0, 0]), torch.tensor([2, 3])
    # row 0: sorted 4, 3, 1, 0; row 1: sorted 2, 1.5, 0.5, -1
    np.testing.assert_allclose(dlr(z, y).numpy(), [-(4 - 3) / (4 - 1), -(0.5 - 2) / (2 - 0.5)], rtol=1e-6)
    np.testing.assert_allclose(targeted_dlr(z, y, t).numpy(),
                               [-(4 - 3) / (4 - 0.5), -(0.5 - 1.5) / (2 - (0.5 - 1) / 2)], rtol=1e-6)
    np.testing.assert_allclose(margin(z, y).numpy(), [1.0, -1.5])
    np.testing.assert_allclose(cross_entropy(z, y).numpy(),
                               -torch.log_softmax(z, dim=1)[:, 0].numpy(), rtol=1e-6)
    affine = 7.0 * z - 3.0
    np.testing.assert_allclose(dlr(affine, y).numpy(), dlr(z, y).numpy(), rtol=1e-5)
    np.testing.assert_allclose(targeted_dlr(affine, y, t).numpy(), targeted_dlr(z, y, t).numpy(), rtol=1e-5)
    with pytest.raises(ValueError, match="at least 3 classes"):
        dlr(z[:, :2], y)
    with pytest.raises(ValueError, match="at least 4 classes"):
        targeted_dlr(z[:, :3], y, t % 3)


# -- linear models: the exact minimal perturbation is known ---------------------------------------
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_linear_binary_model_flips_exactly_the_samples_within_eps(norm: str) -> None:
    """Two classes: APGD-DLR and APGD-T fall back to the logit margin."""
    net, x, y, w, b = linear_problem()
    eps = float(np.median(linear_boundary_distance(x, w, b, norm)))
    threat = ThreatModel(norm, eps=eps, bounds=None)
    for attack in (APGDCE(threat, steps=30), APGDDLR(threat, steps=30), APGDT(threat, steps=30)):
        check_linear_closed_form(attack, wrap(net), x, y, w, b, margin=MARGIN, min_side=31)


def test_linear_sklearn_logistic_regression_through_its_torch_mirror() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 10)).astype(np.float32)
    labels = (x @ rng.normal(size=10) + 0.5 * rng.normal(size=300) > 0).astype(int)
    lr = LogisticRegression().fit(x, labels)
    y = lr.predict(x)
    w, b = lr.coef_[0].astype(np.float64), float(lr.intercept_[0])
    model = wrap(lr)
    assert model.differentiable
    eps = float(np.median(linear_boundary_distance(x, w, b, "linf")))
    for attack in (APGDCE(ThreatModel("linf", eps=eps, bounds=None), steps=30),
                   APGDDLR(ThreatModel("linf", eps=eps, bounds=None), steps=30)):
        check_linear_closed_form(attack, model, x, y, w, b, margin=MARGIN, min_side=31)


# -- a small trained MLP ------------------------------------------------------------------------
@pytest.mark.parametrize("norm,eps", [("linf", 0.05), ("l2", 0.5)])
def test_apgd_is_at_least_as_strong_as_pgd_and_apgd_t_as_apgd_ce(digits_mlp, norm: str, eps: float) -> None:
    net, x, y = digits_mlp
    threat = ThreatModel(norm, eps=eps)
    one = 1 / len(x)
    ra_pgd = PGD(threat, steps=50).run(net, x, y).robust_accuracy
    ra_ce = APGDCE(threat).run(net, x, y).robust_accuracy
    ra_ce20 = APGDCE(threat, steps=20).run(net, x, y).robust_accuracy
    ra_t = APGDT(threat, steps=50).run(net, x, y).robust_accuracy
    clean = float((wrap(net).predict(x) == y).mean())
    assert ra_ce < clean - 0.1  # the budget bites
    assert ra_ce <= ra_pgd + one + 1e-12
    assert ra_t <= ra_ce + 2 * one + 1e-12
    assert ra_ce <= ra_ce20 + 1e-12  # more steps never help the model


def test_robust_accuracy_vanishes_at_a_large_budget(digits_mlp) -> None:
    net, x, y = digits_mlp
    for attack in (APGDCE(ThreatModel("linf", eps=0.5), steps=20),
                   APGDDLR(ThreatModel("l2", eps=4.0), steps=20)):
        assert attack.run(net, x, y).robust_accuracy <= 2 / len(x)


@pytest.mark.parametrize("cls", [APGDCE, APGDDLR, APGDT])
@pytest.mark.parametrize("norm,eps", [("linf", 0.1), ("l2", 1.0)])
def test_outputs_stay_in_the_threat_model(digits_mlp, cls, norm: str, eps: float) -> None:
    net, x, y = digits_mlp
    x, y = x[:120], y[:120].copy()
    y[:5] = (y[:5] + 1) % 10  # five samples misclassified "clean"
    rng = np.random.default_rng(0)
    hi = np.maximum(np.where(rng.uniform(size=64) < 0.5, 1.0, 0.9), x.max(axis=0)).astype(np.float32)
    lo = np.zeros(64, dtype=np.float32)
    mutable = rng.uniform(size=64) < 0.7
    threat = ThreatModel(norm, eps=eps, bounds=(lo, hi), mutable=mutable)
    model = wrap(net)
    kwargs = {"targeted_classes": 3} if cls is APGDT else {}
    res = cls(threat, steps=15, **kwargs).run(model, x, y)
    assert (res.distance <= eps + 1e-6).all()
    assert (res.x_adv >= lo).all() and (res.x_adv <= hi).all()
    np.testing.assert_array_equal(res.x_adv[:, ~mutable], x[:, ~mutable])
    np.testing.assert_array_equal(res.success, model.predict(res.x_adv) != y)  # recomputed
    assert res.success[:5].all()
    np.testing.assert_array_equal(res.x_adv[:5], x[:5])
    np.testing.assert_array_equal(res.x_adv[~res.success], x[~res.success])
    assert 0.1 < res.success.mean() < 1.0


def test_fooled_samples_leave_the_batch_and_restarts_cost_nothing_once_all_are_fooled(digits_mlp) -> None:
    net, x, y = digits_mlp
    x, y = x[:100], y[:100]
    threat = ThreatModel("linf", eps=0.5)
    counts = []
    for attack in (APGDCE(threat, steps=50), APGDCE(threat, steps=50, restarts=4),
                   APGDT(threat, steps=50, targeted_classes=1), APGDT(threat, steps=50)):
        model = wrap(net)
        res = attack.run(model, x, y)
        assert res.success.all()
        counts.append(model.n_queries)
    assert counts[0] == counts[1]  # nobody left for restarts 2-4
    assert counts[2] == counts[3]  # nobody left for targets 2-9
    correct = int((wrap(net).predict(x) == y).sum())
    # every sample falls within a few steps: far fewer forwards than 51 per sample
    assert counts[0] < 2 * len(x) + 10 * correct


def test_targeted_run_reaches_the_given_targets(digits_mlp) -> None:
    net, x, y = digits_mlp
    x, y = x[:100], y[:100]
    target = (y + 1) % 10
    for loss in ("ce", "dlr"):
        res = APGD(ThreatModel("linf", eps=0.3), loss=loss, steps=30).run(net, x, y, targeted=target)
        ok = res.clean_correct
        assert res.targeted and res.success[ok].mean() > 0.9
        np.testing.assert_array_equal(res.success[ok], res.pred_adv[ok] == target[ok])


def test_three_class_model_runs_apgd_t_with_the_margin_fallback() -> None:
    """Targeted DLR needs four classes; with three APGD-T uses the targeted margin."""
    gen = torch.Generator().manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
    x = np.random.default_rng(2).normal(size=(80, 5)).astype(np.float32)
    y = net(torch.as_tensor(x)).argmax(1).numpy()
    assert np.bincount(y, minlength=3).min() >= 10  # all three classes present
    threat = ThreatModel("linf", eps=0.3, bounds=None)
    ra_t = APGDT(threat, steps=30).run(net, x, y).robust_accuracy
    ra_dlr = APGDDLR(threat, steps=30).run(net, x, y).robust_accuracy
    assert ra_t < 0.7 and ra_dlr < 0.7
    assert ra_t <= ra_dlr + 2 / len(x)


def test_same_seed_same_result_and_seed_matters(digits_mlp) -> None:
    net, x, y = digits_mlp
    threat = ThreatModel("l2", eps=0.6)
    a = APGDCE(threat, steps=5, seed=1).run(net, x[:60], y[:60])
    b = APGDCE(threat, steps=5, seed=1).run(net, x[:60], y[:60])
    c = APGDCE(threat, steps=5, seed=2).run(net, x[:60], y[:60])
    np.testing.assert_array_equal(a.x_adv, b.x_adv)
    assert not np.array_equal(a.x_adv, c.x_adv)
    assert a.params == {"seed": 1, "steps": 5, "restarts": 1, "rho": 0.75}  # the name fixes the loss
    for attack in (APGDCE(threat, steps=5), APGDT(threat, targeted_classes=3), APGD(threat, loss="dlr")):
        again = type(attack)(threat, **attack.params())  # the config round-trips
        assert again.params() == attack.params() and repr(again) == repr(attack)
    assert APGD(threat, loss="dlr").params()["loss"] == "dlr"


def test_registry_names() -> None:
    assert ATTACKS.get("apgd") is APGD and ATTACKS.get("apgd-ce") is APGDCE
    assert ATTACKS.get("apgd-dlr") is APGDDLR and ATTACKS.get("apgd-t") is APGDT
    t = get("apgd-t", ThreatModel("linf", eps=0.03), steps=7)
    assert isinstance(t, APGDT) and (t.steps, t.loss, t.targeted_classes) == (7, "dlr", 9)
    assert get("apgd", ThreatModel("l2", eps=0.5), loss="dlr").loss == "dlr"


# -- errors -------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs,param", [
    ({"steps": 0}, "steps"), ({"steps": 2.5}, "steps"), ({"restarts": 0}, "restarts"),
    ({"loss": "margin"}, "loss"), ({"rho": 0.0}, "rho"), ({"rho": 1.5}, "rho"),
    ({"targeted_classes": 0}, "targeted_classes"), ({"seed": "a"}, "seed"),
])
def test_apgd_rejects_bad_parameters(kwargs: dict, param: str) -> None:
    with pytest.raises(ConfigError, match=rf"APGD\({param}=\.\.\.\) must be"):
        APGD(ThreatModel(), **kwargs)


@pytest.mark.parametrize("norm", ["l1", "l0"])
def test_apgd_refuses_l1_and_l0_and_names_the_attacks_that_do_l1(norm: str) -> None:
    with pytest.raises(ConfigError, match=r"APGDCE\(threat=\.\.\.\) must be .*\['linf', 'l2'\].*PGD or FGSM"):
        APGDCE(ThreatModel(norm, eps=1.0))
