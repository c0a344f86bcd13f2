"""FGSM and PGD: closed forms on linear models, monotonicity on a trained MLP, threat-model
invariants, per-sample early stopping, targeted mode and parameter errors."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from stalwart.attacks import ATTACKS, FGSM, PGD, ThreatModel, get
from stalwart.errors import ConfigError, InputError, ModelError
from stalwart.models import wrap
from stalwart.testing import check_linear_closed_form, linear_boundary_distance, linear_problem

MARGIN = 1.05  # samples within 5% of eps of their exact distance are near-ties and not judged


# -- linear models: the exact minimal perturbation is known ---------------------------------------
def _sklearn_lr_problem() -> tuple[object, np.ndarray, np.ndarray, np.ndarray, float]:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 10)).astype(np.float32)
    labels = (x @ rng.normal(size=10) + 0.5 * rng.normal(size=300) > 0).astype(int)
    lr = LogisticRegression().fit(x, labels)
    y = lr.predict(x)  # attack the model's own decisions: every sample has an exact distance
    return lr, x, y, lr.coef_[0].astype(np.float64), float(lr.intercept_[0])


def _attacks_for(norm: str, eps: float) -> list:
    threat = ThreatModel(norm, eps=eps, bounds=None)
    out = [PGD(threat), PGD(threat, loss="margin", random_start=False), PGD(threat, steps=20, restarts=2)]
    return out + [FGSM(threat)]  # one linearisation is exact on a linear model, for every norm


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
def test_linear_torch_model_flips_exactly_the_samples_within_eps(norm: str) -> None:
    net, x, y, w, b = linear_problem()
    eps = float(np.median(linear_boundary_distance(x, w, b, norm)))
    for attack in _attacks_for(norm, eps):
        check_linear_closed_form(attack, wrap(net), x, y, w, b, margin=MARGIN, min_side=31)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_linear_sklearn_logistic_regression_through_its_torch_mirror(norm: str) -> None:
    lr, x, y, w, b = _sklearn_lr_problem()
    model = wrap(lr)
    if not model.differentiable:  # the mirror lives in stalwart.models.mirrors
        pytest.skip("wrap(LogisticRegression) has no torch mirror in this build")
    eps = float(np.median(linear_boundary_distance(x, w, b, norm)))
    for attack in _attacks_for(norm, eps):
        check_linear_closed_form(attack, model, x, y, w, b, margin=MARGIN, min_side=31)


def test_pgd_early_stop_keeps_the_first_point_that_fools_and_spends_no_more_queries() -> None:
    """Sign steps of size a from x (no random start): along w the score moves a * ||w||_1 per
    step, so a sample at exact linf distance d is fooled at step ceil(d / a) with
    ||delta||_inf = a * ceil(d / a), after ceil(d / a) + 1 forward passes."""
    net, x, y, w, b = linear_problem()
    dist = linear_boundary_distance(x, w, b, "linf")
    steps, eps = 40, 10.0
    a = float(np.median(dist)) / 25  # about 70% of the samples are reachable within 40 steps
    model = wrap(net)
    res = PGD(ThreatModel("linf", eps=eps, bounds=None), steps=steps, step_size=a,
              random_start=False).run(model, x, y)
    need = np.ceil(dist / a)
    reach = need <= steps
    assert reach.sum() > 50 and (~reach).sum() > 50
    np.testing.assert_array_equal(res.success, reach)
    np.testing.assert_allclose(res.distance[reach], a * need[reach], rtol=1e-4)
    forwards = np.where(reach, need + 1, steps + 1).sum()
    assert model.n_queries == 2 * len(x) + forwards  # + the clean and the final predict_proba


# -- a small trained MLP ------------------------------------------------------------------------
def test_fgsm_makes_one_gradient_pass_and_one_check_pass_whatever_the_batch_size() -> None:
    """FGSM's budget: one forward pass with gradients on the whole batch (also the clean
    prediction), one backward, and one forward pass without gradients that checks the returned
    inputs, in one call as the gradient pass was, not in ``batch_size`` pieces."""
    import torch

    net, x, y, *_ = linear_problem()
    calls: list[tuple[int, bool]] = []
    net.register_forward_hook(lambda _m, args, _out: calls.append((len(args[0]), torch.is_grad_enabled())))
    model = wrap(net, batch_size=16)
    assert len(x) > 16
    res = FGSM(ThreatModel("linf", eps=0.1, bounds=None)).run(model, x, y)
    assert calls == [(len(x), True), (len(x), False)]
    assert model.n_queries == 2 * len(x)
    np.testing.assert_array_equal(res.success, wrap(net).predict(res.x_adv) != y)


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
def test_fgsm_returns_misclassified_rows_unchanged_and_never_the_callers_array(norm: str) -> None:
    """Rows the model already gets wrong are not attacked: they come back exactly as given, with the
    clean prediction, although FGSM computes its step for every row in one pass. A batch that is all
    misclassified comes back as a copy."""
    net, x, y, w, b = linear_problem()
    wrong = np.zeros(len(y), dtype=bool)
    wrong[::3] = True
    y_given = np.where(wrong, 1 - y, y)  # the model's decision is wrong on every third row
    before = x.copy()
    eps = float(np.median(linear_boundary_distance(x, w, b, norm)))
    res = FGSM(ThreatModel(norm, eps=eps, bounds=None)).run(wrap(net), x, y_given)
    np.testing.assert_array_equal(x, before)  # the caller's array is not written
    assert not np.shares_memory(res.x_adv, x)
    np.testing.assert_array_equal(res.x_adv[wrong], x[wrong])
    assert res.success[wrong].all() and np.all(res.distance[wrong] == 0)
    np.testing.assert_array_equal(res.pred_adv[wrong], y[wrong])
    attacked = ~wrong & res.success
    assert attacked.sum() > 30 and np.all(res.distance[attacked] > 0)  # the others were attacked
    np.testing.assert_array_equal(res.pred_adv, wrap(net).predict(res.x_adv))
    none = FGSM(ThreatModel(norm, eps=eps, bounds=None)).run(wrap(net), x, 1 - y)
    assert none.success.all() and not np.shares_memory(none.x_adv, x)
    np.testing.assert_array_equal(none.x_adv, x)


def test_robust_accuracy_falls_monotonically_with_eps(digits_mlp) -> None:
    net, x, y = digits_mlp
    model = wrap(net)
    eps_grid = [0.0, 0.02, 0.05, 0.1, 0.2, 0.5]
    ra = [PGD(ThreatModel("linf", eps=e), steps=20).run(model, x, y).robust_accuracy for e in eps_grid]
    clean = float((model.predict(x) == y).mean())
    assert ra[0] == pytest.approx(clean) and clean > 0.9
    assert all(b <= a for a, b in zip(ra, ra[1:])), ra
    assert ra[3] < clean - 0.3  # a modest linf budget already hurts an undefended MLP
    assert ra[-1] < 0.05


@pytest.mark.parametrize("norm,eps", [("linf", 0.1), ("l2", 0.5), ("l1", 2.0)])
def test_more_steps_and_pgd_over_fgsm_never_help_the_model(digits_mlp, norm: str, eps: float) -> None:
    net, x, y = digits_mlp
    threat = ThreatModel(norm, eps=eps)
    ra10 = PGD(threat, steps=10, seed=3).run(net, x, y).robust_accuracy
    ra50 = PGD(threat, steps=50, seed=3).run(net, x, y).robust_accuracy
    ra_fgsm = FGSM(threat).run(net, x, y).robust_accuracy
    one = 1 / len(x)
    assert ra50 <= ra10 + one + 1e-12
    assert ra10 <= ra_fgsm + 2 * one + 1e-12
    assert ra50 < ra_fgsm  # iterating is strictly stronger here
    # restarts only add successes
    ra_restart = PGD(threat, steps=10, restarts=3, seed=3).run(net, x, y).robust_accuracy
    assert ra_restart <= ra10 + 1e-12


@pytest.mark.parametrize("attack_cls", [FGSM, PGD])
@pytest.mark.parametrize("norm,eps", [("linf", 0.1), ("l2", 1.0), ("l1", 3.0)])
def test_outputs_stay_in_the_threat_model(digits_mlp, attack_cls, norm: str, eps: float) -> None:
    net, x, y = digits_mlp
    x, y = x[:150], y[:150].copy()
    y[:5] = (y[:5] + 1) % 10  # five samples misclassified "clean"
    rng = np.random.default_rng(0)
    hi = np.where(rng.uniform(size=64) < 0.5, 1.0, 0.9).astype(np.float32)
    hi = np.maximum(hi, x.max(axis=0))
    lo = np.zeros(64, dtype=np.float32)
    mutable = rng.uniform(size=64) < 0.7
    threat = ThreatModel(norm, eps=eps, bounds=(lo, hi), mutable=mutable)
    model = wrap(net)
    res = (attack_cls(threat, steps=15) if attack_cls is PGD else attack_cls(threat)).run(model, x, y)
    tol = 1e-6 + (1e-6 * eps if norm == "l1" else 0.0)  # float32 rounding summed over coordinates
    assert (res.distance <= eps + tol).all()
    assert (res.x_adv >= lo).all() and (res.x_adv <= hi).all()
    np.testing.assert_array_equal(res.x_adv[:, ~mutable], x[:, ~mutable])
    np.testing.assert_array_equal(res.success, model.predict(res.x_adv) != y)  # recomputed
    assert res.success[:5].all()
    np.testing.assert_array_equal(res.x_adv[:5], x[:5])
    np.testing.assert_array_equal(res.x_adv[~res.success], x[~res.success])
    assert 0.1 < res.success.mean() < 1.0  # the attack did something, and the mask/bounds bite


def test_targeted_pgd_reaches_the_target(digits_mlp) -> None:
    net, x, y = digits_mlp
    x, y = x[:100], y[:100]
    target = (y + 1) % 10
    threat = ThreatModel("linf", eps=0.3)
    for loss in ("ce", "margin"):
        res = PGD(threat, steps=30, loss=loss).run(net, x, y, targeted=target)
        ok = res.clean_correct
        assert res.targeted
        assert res.success[ok].mean() > 0.9
        np.testing.assert_array_equal(res.success[ok], res.pred_adv[ok] == target[ok])
    # a small budget: fewer targets reached than untargeted flips, since any class will do there
    small = ThreatModel("linf", eps=0.05)
    hit = PGD(small, steps=30).run(net, x, y, targeted=target).success.mean()
    flip = PGD(small, steps=30).run(net, x, y).success.mean()
    assert hit < flip
    fgsm = FGSM(threat).run(net, x, y, targeted=target)
    np.testing.assert_array_equal(fgsm.success[fgsm.clean_correct],
                                  fgsm.pred_adv[fgsm.clean_correct] == target[fgsm.clean_correct])


def test_same_seed_same_result_and_seed_matters(digits_mlp) -> None:
    net, x, y = digits_mlp
    threat = ThreatModel("l2", eps=0.6)
    a = PGD(threat, steps=5, seed=1).run(net, x[:60], y[:60])
    b = PGD(threat, steps=5, seed=1).run(net, x[:60], y[:60])
    c = PGD(threat, steps=5, seed=2).run(net, x[:60], y[:60])
    np.testing.assert_array_equal(a.x_adv, b.x_adv)
    assert not np.array_equal(a.x_adv, c.x_adv)
    assert a.params == {"seed": 1, "steps": 5, "step_size": None, "random_start": True, "restarts": 1,
                        "loss": "ce", "l1_sparsity": 0.05}


def test_registry_and_repr() -> None:
    assert ATTACKS.get("pgd") is PGD and ATTACKS.get("fgsm") is FGSM
    pgd = get("pgd", ThreatModel("linf", eps=0.03), steps=7)
    assert isinstance(pgd, PGD) and pgd.steps == 7
    assert repr(FGSM(ThreatModel("l2", eps=0.5))) == "FGSM(l2, eps=0.5, seed=0, loss='ce')"


# -- errors -------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs,param", [
    ({"steps": 0}, "steps"), ({"steps": 2.5}, "steps"), ({"step_size": -0.1}, "step_size"),
    ({"step_size": 0.0}, "step_size"), ({"restarts": 0}, "restarts"), ({"loss": "hinge"}, "loss"),
    ({"random_start": 1}, "random_start"), ({"l1_sparsity": 0.0}, "l1_sparsity"),
    ({"l1_sparsity": 1.5}, "l1_sparsity"), ({"seed": 1.5}, "seed"),
])
def test_pgd_rejects_bad_parameters(kwargs: dict, param: str) -> None:
    with pytest.raises(ConfigError, match=rf"PGD\({param}=\.\.\.\) must be"):
        PGD(ThreatModel(), **kwargs)


def test_fgsm_and_pgd_reject_l0_and_bad_loss() -> None:
    for cls in (FGSM, PGD):
        with pytest.raises(ConfigError, match=rf"{cls.__name__}\(threat=\.\.\.\) must be .*norm in"):
            cls(ThreatModel("l0", eps=3))
    with pytest.raises(ConfigError, match=r"FGSM\(loss=\.\.\.\) must be one of \['ce', 'margin'\]"):
        FGSM(ThreatModel(), loss="mse")


def test_white_box_attacks_refuse_black_box_models() -> None:
    model = wrap(lambda a: np.stack([1 - a.mean(axis=1), a.mean(axis=1)], axis=1))
    for attack in (PGD(ThreatModel()), FGSM(ThreatModel())):
        with pytest.raises(ModelError, match="black-box"):
            attack.run(model, np.full((3, 4), 0.5), np.array([0, 1, 0]))


def test_gradient_attacks_validate_inputs(digits_mlp) -> None:
    net, x, y = digits_mlp
    pgd = PGD(ThreatModel("linf", eps=0.1), steps=2)
    with pytest.raises(InputError, match="outside the threat model's bounds"):
        pgd.run(net, x[:4] * 2 + 0.5, y[:4])
    with pytest.raises(InputError, match="labels the model does not know"):
        pgd.run(net, x[:4], np.array([0, 1, 2, 11]))
    nan = x[:4].copy()
    nan[2, 3] = np.nan
    with pytest.raises(InputError, match="NaN"):
        pgd.run(net, nan, y[:4])
    with pytest.raises(InputError, match="x has 4 samples but y has 3"):
        pgd.run(net, x[:4], y[:3])
