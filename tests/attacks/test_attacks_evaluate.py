"""The ensemble evaluation: exact on linear models, never weaker than its parts, honest sanity checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import stalwart
from stalwart import attacks
from stalwart.attacks import ThreatModel, check_eps_scale, evaluate, minimal_perturbation
from stalwart.errors import ConfigError


def _linear_problem(seed=0, n=120, d=10):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=d)
    b = 0.1
    x = rng.uniform(0.3, 0.7, size=(n, d)).astype(np.float32)
    z = x @ w + b - np.median(x @ w + b)
    net = nn.Linear(d, 2)
    with torch.no_grad():
        net.weight.copy_(torch.tensor(np.stack([np.zeros(d), w]), dtype=torch.float32))
        net.bias.copy_(torch.tensor([0.0, b - np.median(x @ w + b)], dtype=torch.float32))
    y = (z > 0).astype(int)
    return net, x, y, np.abs(z), w


@pytest.mark.parametrize("norm, dual", [("linf", 1), ("l2", 2)])
def test_robust_accuracy_matches_the_closed_form_on_a_linear_model(norm, dual):
    net, x, y, margin, w = _linear_problem()
    dist = margin / np.linalg.norm(w, ord=dual)
    eps = float(np.median(dist))
    ev = evaluate(net, x, y, ThreatModel(norm, eps, None), level="fast", sanity=False, eps_curve=[eps])
    clear = (dist < eps / 1.05) | (dist > eps * 1.05)
    assert ev.clean_accuracy == 1.0
    np.testing.assert_array_equal(ev.robust[clear], dist[clear] > eps)
    broken = ~ev.robust
    adv_dist = ThreatModel(norm, eps, None).distance(ev.x_adv[broken], x[broken])
    assert np.all(adv_dist <= eps * (1 + 1e-5) + 1e-6)
    assert np.all(adv_dist >= dist[broken] * (1 - 1e-4))  # nothing closer than the true boundary


@pytest.fixture(scope="module")
def mlp_digits():
    train, test = stalwart.datasets.load_split("digits", seed=0)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    xt = torch.as_tensor(train.x)
    yt = torch.as_tensor(np.asarray(train.y), dtype=torch.long)
    for _ in range(150):
        opt.zero_grad()
        nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()
    net.eval()
    return net, test.x[:120], np.asarray(test.y)[:120]


def test_ensemble_is_never_weaker_than_pgd_and_its_curve_is_monotone(mlp_digits):
    net, x, y = mlp_digits
    threat = ThreatModel("linf", 0.1, (0.0, 1.0))
    ev = evaluate(net, x, y, threat, level="fast", eps_curve=[0.02, 0.05, 0.1, 0.2])
    pgd = attacks.PGD(threat, steps=50).run(net, x, y)
    assert ev.robust.sum() <= (~pgd.success).sum() + 1
    ra = ev.curve["robust_accuracy"]
    assert ev.curve["eps"][0] == 0.0 and ra[0] == pytest.approx(ev.clean_accuracy)
    assert all(a >= b for a, b in zip(ra, ra[1:]))
    assert ra[ev.curve["eps"].index(0.1)] == pytest.approx(ev.robust_accuracy)
    assert ra[-1] <= 0.05  # eps 0.2 on an undefended MLP
    # broken samples really are misclassified, inside eps and bounds
    broken = ~ev.robust & ev.clean_correct
    pred = net(torch.as_tensor(ev.x_adv[broken])).argmax(1).numpy()
    assert np.all(pred != y[broken])
    assert np.abs(ev.x_adv - x).max() <= 0.1 + 1e-6 and ev.x_adv.min() >= 0 and ev.x_adv.max() <= 1
    assert set(ev.broken_by[broken]) <= {"apgd-ce", "apgd-t", "square"} | {
        b for b in ev.broken_by if "@" in b}
    assert {s.name for s in ev.sanity} == {"large_eps", "more_steps", "black_box_after_white_box",
                                          "vanishing_gradients"}
    assert all(s.passed for s in ev.sanity), ev.warnings
    lo, hi = ev.robust_accuracy_interval
    assert lo <= ev.robust_accuracy <= hi


def test_black_box_model_gets_black_box_attacks_only_and_never_beats_white_box(mlp_digits):
    net, x, y = mlp_digits
    x, y = x[:60], y[:60]

    def predict(batch):
        with torch.no_grad():
            return torch.softmax(net(torch.as_tensor(batch, dtype=torch.float32)), 1).numpy()

    threat = ThreatModel("linf", 0.1, (0.0, 1.0))
    black = evaluate(stalwart.wrap(predict, classes=np.arange(10)), x, y, threat, level="fast", eps_curve=[0.1])
    white = evaluate(net, x, y, threat, level="fast", eps_curve=[0.1], sanity=False)
    assert not black.white_box and {a["attack"] for a in black.attacks} <= {"square", "hopskipjump"}
    assert any("black-box model" in n for n in black.notes)
    assert "black-box" in black.to_dict()["access"]
    assert black.robust.sum() >= white.robust.sum() - 1


class _Quantised(nn.Module):
    """Rounds its input to 4 grey levels first: gradients are zero almost everywhere."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(torch.round(x * 3) / 3)


def test_gradient_masking_is_flagged_by_the_sanity_checks(mlp_digits):
    net, x, y = mlp_digits
    masked = _Quantised(net).eval()
    ev = evaluate(masked, x[:80], y[:80], ThreatModel("linf", 0.2, (0.0, 1.0)), level="fast", eps_curve=[0.2])
    failed = {s.name for s in ev.sanity if not s.passed}
    assert "vanishing_gradients" in failed
    assert "black_box_after_white_box" in failed  # Square breaks what APGD cannot
    assert (ev.broken_by == "square").sum() > 0


def test_probability_outputs_are_noted(mlp_digits):
    net, x, y = mlp_digits
    soft = nn.Sequential(net, nn.Softmax(dim=1)).eval()
    ev = evaluate(soft, x[:30], y[:30], ThreatModel("linf", 0.05, (0.0, 1.0)), level="fast", sanity=False,
                  eps_curve=[0.05])
    assert any("probabilities, not logits" in n for n in ev.notes)


def test_meaningless_eps_is_refused_with_a_fix():
    x = np.random.default_rng(0).uniform(0, 255, size=(4, 1, 8, 8)).astype(np.float32)
    with pytest.raises(ConfigError, match=r"under 0.1% of the data's value range .* eps \* 255"):
        check_eps_scale(ThreatModel("linf", 8 / 255, (0.0, 255.0)), x)
    with pytest.raises(ConfigError, match="covers the whole input range"):
        check_eps_scale(ThreatModel("linf", 255.0, (0.0, 255.0)), x)
    with pytest.raises(ConfigError, match="covers the whole input range"):
        check_eps_scale(ThreatModel("l2", 255.0 * 8 + 1, (0.0, 255.0)), x)
    check_eps_scale(ThreatModel("linf", 8.0, (0.0, 255.0)), x)  # fine
    with pytest.raises(ConfigError, match="level"):
        evaluate(nn.Linear(64, 2), x.reshape(4, -1) / 255, [0, 1, 0, 1], ThreatModel("linf", 0.1), level="slow")


def test_minimal_perturbation_finds_the_closed_form_distance():
    net, x, y, margin, w = _linear_problem(seed=3, n=40)
    mp = minimal_perturbation(net, x, y, norm="l2", bounds=None)
    exact = margin / np.linalg.norm(w)
    assert np.all(np.isfinite(mp.distance))
    np.testing.assert_allclose(mp.distance, exact, rtol=0.05)
    summary = mp.to_dict()
    assert summary["found"] == 40 and sum(summary["histogram"]["counts"]) == 40
    assert summary["quantiles"]["p50"] == pytest.approx(np.median(mp.distance), rel=0.2)


@pytest.mark.slow
def test_square_escalates_to_the_full_budget_only_on_signs_of_masking(mlp_digits):
    net, x, y = mlp_digits
    threat = ThreatModel("linf", 0.05, (0.0, 1.0))
    clean = evaluate(net, x[:40], y[:40], threat, level="standard", sanity=False, eps_curve=[0.05])
    square = [a for a in clean.attacks if a["attack"] == "square"]
    assert square[-1]["params"]["escalated"] is False and "not escalated" in square[-1]["note"]
    masked_threat = ThreatModel("linf", 0.1, (0.0, 1.0))
    masked = evaluate(_Quantised(net).eval(), x[:40], y[:40], masked_threat, level="standard", sanity=False,
                      eps_curve=[0.1])
    escalated = [a for a in masked.attacks if a["params"].get("escalated")]
    assert escalated and escalated[0]["attacked"] > 0 and escalated[0]["params"]["queries"] == 4000
    full = evaluate(_Quantised(net).eval(), x[:40], y[:40], masked_threat, level="standard", sanity=False,
                    eps_curve=[0.1], escalate_square=False)
    assert masked.robust.sum() <= full.robust.sum() + 1  # escalation loses nothing against 5,000 always


# -- the eps curve: reuses what the ensemble found, never over-reports --------------------------
def test_the_curve_is_never_above_a_direct_evaluation_at_its_eps(mlp_digits):
    """Every point of the curve (fast plan, reusing the perturbations found) is at most the
    robust accuracy of a direct evaluation at that eps on the same samples."""
    net, x, y = mlp_digits
    eps_values = [0.02, 0.05, 0.1, 0.2]
    ev = evaluate(net, x, y, ThreatModel("linf", 0.1, (0.0, 1.0)), level="fast", eps_curve=eps_values,
                  sanity=False)
    for eps, point in zip(ev.curve["eps"], ev.curve["robust_accuracy"]):
        if eps == 0:
            assert point == pytest.approx(ev.clean_accuracy)
            continue
        direct = evaluate(net, x, y, ThreatModel("linf", eps, (0.0, 1.0)), level="fast", eps_curve=[],
                          sanity=False)
        assert point <= direct.robust_accuracy, f"the curve over-reports at eps={eps}"


@pytest.mark.parametrize("norm, dual", [("linf", 1), ("l2", 2)])
def test_the_curve_matches_the_closed_form_on_a_linear_model(norm, dual):
    net, x, y, margin, w = _linear_problem(seed=1)
    dist = margin / np.linalg.norm(w, ord=dual)
    eps = float(np.median(dist))
    factors = [0.25, 0.5, 1.0, 2.0]
    ev = evaluate(net, x, y, ThreatModel(norm, eps, None), level="fast", sanity=False,
                  eps_curve=[eps * f for f in factors])
    for e, point in zip(ev.curve["eps"][1:], ev.curve["robust_accuracy"][1:]):
        clear = (dist < e / 1.05) | (dist > e * 1.05)
        robust_clear = (dist > e * 1.05).sum() / len(y)
        unclear = (~clear).sum() / len(y)
        assert robust_clear <= point <= robust_clear + unclear, f"eps={e}"


def test_the_curve_attacks_only_where_a_point_can_change(mlp_digits, monkeypatch):
    """Above eps only the samples still standing are attacked; below it only those broken at
    the next larger eps whose perturbation, projected onto the smaller ball, no longer fools."""
    import importlib

    evaluate_module = importlib.import_module("stalwart.attacks.evaluate")  # the module, not the function
    net, x, y = mlp_digits
    calls: list[tuple[float, np.ndarray]] = []
    original = evaluate_module._run_plan

    def recording(model, xs, ys, threat, plan, seed, todo, x_adv, broken_by, record, step=None):
        calls.append((float(threat.eps), np.flatnonzero(todo & (broken_by == ""))))
        return original(model, xs, ys, threat, plan, seed, todo, x_adv, broken_by, record, step)

    monkeypatch.setattr(evaluate_module, "_run_plan", recording)
    threat = ThreatModel("linf", 0.1, (0.0, 1.0))
    ev = evaluate(net, x, y, threat, level="fast", eps_curve=[0.025, 0.05, 0.2], sanity=False)
    main_calls = [c for c in calls if c[0] == 0.1]
    assert len(main_calls) == 1 and main_calls[0][1].size == ev.clean_correct.sum()
    standing = set(np.flatnonzero(ev.robust).tolist())
    broken = set(np.flatnonzero(~ev.robust & ev.clean_correct).tolist())
    above = [c for c in calls if c[0] == 0.2]
    assert len(above) == 1 and set(above[0][1].tolist()) <= standing
    half = [c for c in calls if c[0] == 0.05]
    assert len(half) <= 1 and (not half or set(half[0][1].tolist()) < broken)  # some fell to the projection
    quarter = [c for c in calls if c[0] == 0.025]
    broken_half = ev.curve["robust_accuracy"][ev.curve["eps"].index(0.05)]
    assert not quarter or quarter[0][1].size < (1 - broken_half) * len(y)
    # and without a curve nothing runs but the ensemble
    calls.clear()
    plain = evaluate(net, x, y, threat, level="fast", eps_curve=[], sanity=False)
    assert {c[0] for c in calls} == {0.1} and plain.curve["eps"] == [0.0, 0.1]
    assert plain.robust_accuracy == ev.robust_accuracy
