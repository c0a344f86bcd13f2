"""Square attack: threat-model compliance, strength against references, queries, determinism."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import GradientBoostingClassifier

from stalwart.attacks import ATTACKS, PGD, ThreatModel
from stalwart.attacks._common import Feasible
from stalwart.attacks.square import Square, _margin_loss_t, _meta_pattern, _subsets, margin_loss, p_schedule
from stalwart.errors import ConfigError
from stalwart.models import wrap
from stalwart.models.function import FunctionModel


@lru_cache(maxsize=1)
def breast_cancer_gbm() -> tuple[GradientBoostingClassifier, np.ndarray, np.ndarray]:
    """A gradient-boosted tree ensemble (black-box) on breast_cancer scaled to [0, 1]."""
    x, y = load_breast_cancer(return_X_y=True)
    x = ((x - x.min(0)) / (x.max(0) - x.min(0))).astype(np.float32)
    order = np.random.default_rng(0).permutation(len(x))
    train, test = order[:400], order[400:440]
    gbm = GradientBoostingClassifier(n_estimators=50, max_depth=3, random_state=0).fit(x[train], y[train])
    return gbm, x[test], y[test]


def linear_model(d: int, seed: int = 0) -> tuple[FunctionModel, np.ndarray, float]:
    rng = np.random.default_rng(seed)
    w, b = rng.normal(size=d), -0.2

    def predict_proba(x: np.ndarray) -> np.ndarray:
        p = 1.0 / (1.0 + np.exp(-(np.asarray(x, dtype=np.float64) @ w + b)))
        return np.stack([1 - p, p], axis=1)

    return FunctionModel(predict_proba, classes=[0, 1]), w, b


def check_threat(res, x: np.ndarray, threat: ThreatModel) -> None:
    """Every returned input lies in the threat model: eps-ball, bounds, immutable features."""
    diff = (res.x_adv.astype(np.float64) - x).reshape(len(x), -1)
    norm = np.abs(diff).max(axis=1) if threat.norm == "linf" else np.linalg.norm(diff, axis=1)
    assert norm.max() <= threat.eps * (1 + 1e-5) + 1e-6
    np.testing.assert_allclose(res.distance, norm, rtol=1e-5, atol=1e-6)
    if threat.bounds is not None:
        assert res.x_adv.min() >= threat.bounds[0] and res.x_adv.max() <= threat.bounds[1]
    if threat.mutable is not None:
        frozen = ~np.broadcast_to(np.asarray(threat.mutable), x.shape[1:])
        np.testing.assert_array_equal(res.x_adv[:, frozen], x[:, frozen])


# -- strength and compliance ------------------------------------------------------------------
def test_square_linf_breaks_a_tree_ensemble_within_the_threat_model() -> None:
    gbm, x, y = breast_cancer_gbm()
    mutable = np.ones(30, dtype=bool)
    mutable[:5] = False  # five features may not move
    threat = ThreatModel("linf", eps=0.3, bounds=(0.0, 1.0), mutable=mutable)
    res = Square(threat, queries=300).run(gbm, x, y)
    assert res.clean_accuracy >= 0.95
    assert res.robust_accuracy <= 0.10
    check_threat(res, x, threat)
    # success is the model's own verdict on the returned inputs
    np.testing.assert_array_equal(res.success, gbm.predict(res.x_adv) != y)


def test_square_is_not_stronger_than_white_box_pgd_on_a_differentiable_model(digits_mlp) -> None:
    net, x, y = digits_mlp
    x, y = x[:60], y[:60]
    threat = ThreatModel("linf", eps=0.15)
    pgd = PGD(threat, steps=50).run(net, x, y)
    square = Square(threat, queries=300).run(net, x, y)
    n_pgd, n_square = int((~pgd.success).sum()), int((~square.success).sum())
    assert n_square >= n_pgd - 2  # a black-box attack beating PGD would point to a broken PGD
    assert n_square <= n_pgd + 6  # and Square is no pushover: it finds most of PGD's breaks
    check_threat(square, x, threat)


@pytest.mark.parametrize("norm,eps", [("linf", 0.08), ("l2", 0.4)])
def test_square_on_a_linear_model_flips_exactly_the_samples_within_reach(norm: str, eps: float) -> None:
    """Distance to the boundary of w.x + b: |w.x + b| / ||w||_1 (linf) or / ||w||_2 (l2)."""
    model, w, b = linear_model(10)
    x = np.random.default_rng(1).uniform(0, 1, size=(200, 10)).astype(np.float32)
    y = (x.astype(np.float64) @ w + b > 0).astype(int)
    closed = np.abs(x @ w + b) / (np.abs(w).sum() if norm == "linf" else np.linalg.norm(w))
    threat = ThreatModel(norm, eps=eps, bounds=None)
    res = Square(threat, queries=200).run(model, x, y)
    far, near = closed > eps * 1.05, closed < eps / 1.05
    assert far.sum() > 20 and near.sum() > 20
    assert not res.success[far].any()  # soundness: nothing beyond eps is ever reported broken
    assert res.success[near].mean() >= 0.9
    check_threat(res, x, threat)


@pytest.mark.parametrize("norm,eps", [("linf", 0.2), ("l2", 1.5)])
def test_square_uses_square_windows_on_images_and_respects_a_pixel_mask(digits_mlp, norm: str, eps: float) -> None:
    net, x, y = digits_mlp
    x, y = x[:30].reshape(-1, 1, 8, 8), y[:30]

    class OnImages(torch.nn.Module):
        def forward(self, z: torch.Tensor) -> torch.Tensor:
            return net(z.reshape(len(z), -1))

    mask = np.zeros((1, 8, 8), dtype=bool)
    mask[:, 1:7, 1:7] = True  # the border may not change
    threat = ThreatModel(norm, eps=eps, mutable=mask)
    res = Square(threat, queries=200).run(OnImages(), x, y)
    check_threat(res, x, threat)
    assert res.robust_accuracy <= 0.5 * res.clean_accuracy


def test_square_targeted_reaches_the_target_class(digits_mlp) -> None:
    net, x, y = digits_mlp
    x, y = x[:20], y[:20]
    target = (y + 1) % 10
    res = Square(ThreatModel("linf", eps=0.3), queries=300).run(net, x, y, targeted=target)
    assert res.targeted
    pred = net(torch.as_tensor(res.x_adv)).argmax(1).numpy()
    np.testing.assert_array_equal(res.success, (pred == target) | (res.pred_clean != y))
    assert res.success.mean() >= 0.7


# -- queries, determinism -----------------------------------------------------------------------
def test_square_reports_exact_per_sample_queries_within_budget() -> None:
    gbm, x, y = breast_cancer_gbm()
    model = wrap(gbm)
    budget = 40
    res = Square(ThreatModel("linf", eps=0.05), queries=budget).run(model, x, y)
    # one clean prediction per sample, then at most the budget; the final check is not charged
    assert res.queries.max() <= budget + 1
    assert res.queries.sum() + len(x) == model.n_queries
    np.testing.assert_array_equal(res.queries, np.round(res.queries))
    attacked = res.clean_correct
    standing = attacked & ~res.success
    assert standing.any() and (res.success & attacked).any()
    assert (res.queries[standing] == budget + 1).all()  # unfooled samples spend the whole budget
    assert (res.queries[res.success & attacked] < budget + 1).all()  # fooled ones stop early
    assert (res.queries[~attacked] == 1).all()


def test_square_restarts_split_the_budget() -> None:
    gbm, x, y = breast_cancer_gbm()
    model = wrap(gbm)
    res = Square(ThreatModel("linf", eps=0.02), queries=31, restarts=3).run(model, x, y)
    assert res.queries.max() <= 32
    assert res.queries.sum() + len(x) == model.n_queries


def test_square_same_seed_same_result() -> None:
    gbm, x, y = breast_cancer_gbm()
    threat = ThreatModel("l2", eps=0.5)
    a = Square(threat, queries=60, seed=3).run(gbm, x, y)
    b = Square(threat, queries=60, seed=3).run(gbm, x, y)
    c = Square(threat, queries=60, seed=4).run(gbm, x, y)
    np.testing.assert_array_equal(a.x_adv, b.x_adv)
    np.testing.assert_array_equal(a.queries, b.queries)
    assert not np.array_equal(a.x_adv, c.x_adv)


# -- pieces ---------------------------------------------------------------------------------------
def test_p_schedule_halves_at_the_papers_iterations() -> None:
    assert p_schedule(0.8, 10, 10000) == 0.8
    assert p_schedule(0.8, 11, 10000) == 0.4
    assert p_schedule(0.8, 50, 10000) == 0.4
    assert p_schedule(0.8, 201, 10000) == 0.1
    assert p_schedule(0.8, 9000, 10000) == 0.8 / 512
    assert p_schedule(0.8, 1, 100) == 0.8 / 4  # rescaled: iteration 1 of 100 is 100 of 10,000
    assert p_schedule(0.8, 3, 100) == 0.8 / 8


def test_margin_loss_is_the_log_probability_margin() -> None:
    p = np.array([[0.7, 0.2, 0.1], [0.3, 0.5, 0.2]])
    loss, fooled = margin_loss(p, np.array([0, 0]), None)
    np.testing.assert_allclose(loss, [np.log(0.7 / 0.2), np.log(0.3 / 0.5)])
    assert fooled.tolist() == [False, True]
    loss, fooled = margin_loss(p, np.array([0, 0]), np.array([2, 1]))
    np.testing.assert_allclose(loss, [np.log(0.7 / 0.1), np.log(0.3 / 0.5)])
    assert fooled.tolist() == [False, True]
    loss, _ = margin_loss(p, np.array([0, 0]), None, "ce")
    np.testing.assert_allclose(loss, np.log([0.7, 0.3]))


def test_tensor_margin_loss_matches_the_numpy_one() -> None:
    p = np.random.default_rng(0).dirichlet(np.ones(4), size=50)
    y, t = np.arange(50) % 4, (np.arange(50) + 1) % 4
    for target in (None, t):
        for kind in ("margin", "ce"):
            ref, ref_fooled = margin_loss(p, y, target, kind)
            got, fooled = _margin_loss_t(torch.as_tensor(p, dtype=torch.float32), torch.as_tensor(y),
                                         None if target is None else torch.as_tensor(target), kind)
            np.testing.assert_allclose(got.numpy(), ref, rtol=1e-5, atol=1e-5)
            np.testing.assert_array_equal(fooled.numpy(), ref_fooled)


def test_scores_tensor_gives_the_probabilities_and_counts_queries(digits_mlp) -> None:
    net, x, _ = digits_mlp
    torch_model = wrap(net)
    torch_model.batch_size = 7  # several forward passes
    lin, _, _ = linear_model(64)
    xt = torch.as_tensor(x[:20])
    for model in (torch_model, lin):
        ref = model.predict_proba(x[:20])
        q = model.n_queries
        got = model.scores_tensor(xt)
        assert got.dtype == torch.float32 and got.device == xt.device and got.shape == ref.shape
        np.testing.assert_allclose(got.numpy(), ref, rtol=1e-5, atol=1e-6)
        assert model.n_queries - q == 20


@pytest.mark.parametrize("p,side", [(0.8 / 512, 1), (0.2, 4)])
def test_linf_square_proposals_move_one_masked_square_to_the_other_vertex(p: float, side: int) -> None:
    """The batched-candidate linf proposal on images: each sample's change is confined to one
    side x side square, lands on a vertex clip(x -+ eps), never touches frozen pixels, and a
    proposal that changes nothing is rare (all 11 candidates must fail)."""
    m, c, h, w, eps = 400, 2, 8, 8, 0.1
    rng = np.random.default_rng(0)
    x = torch.as_tensor(rng.uniform(0, 1, (m, c, h * w)), dtype=torch.float32)
    x[:, :, :5] = 0.0  # clipped on one side: the -eps vertex equals x
    mask = np.ones((c, h, w), dtype=bool)
    mask[:, 0, :] = False  # the top row is frozen
    threat = ThreatModel("linf", eps, bounds=(0.0, 1.0), mutable=mask)
    cons = Feasible(threat, (c, h, w), x.device, layout=(c, h * w))
    attack = Square(threat)
    gen = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        cur = attack._init(x, cons, gen, (h, w))
        vert = attack._vertices(x, cons)
        prop = attack._propose_squares_linf(cur, vert, p, cons, gen, (h, w))
    assert attack._side(p, (h, w), 1) == side
    moved = (prop != cur).reshape(m, c, h, w)
    assert not moved[:, :, 0, :].any()
    on_vertex = (prop == vert[0]) | (prop == vert[1])
    assert on_vertex.reshape(m, c, h, w)[:, :, 1:].all()
    any_moved = moved.any(dim=1).numpy()  # pixels changed in some channel
    changed = any_moved.reshape(m, -1).any(axis=1)
    for i in np.flatnonzero(changed):  # the changed pixels fit inside one side x side square
        r, q = np.nonzero(any_moved[i])
        assert r.max() - r.min() < side and q.max() - q.min() < side
    # with side 1 a single candidate leaves the point unchanged with probability ~1/4
    assert changed.mean() >= 0.98


def test_square_linf_on_images_is_deterministic_and_reports_its_queries(digits_mlp) -> None:
    net, x, y = digits_mlp
    x, y = x[:40].reshape(-1, 1, 8, 8), y[:40]

    class OnImages(torch.nn.Module):
        def forward(self, z: torch.Tensor) -> torch.Tensor:
            return net(z.reshape(len(z), -1))

    model = wrap(OnImages())
    model.known_classes(x)  # the module declares no output width: one probe query, not charged
    model.reset_queries()
    threat = ThreatModel("linf", eps=0.1)
    a = Square(threat, queries=100, seed=1).run(model, x, y)
    assert a.queries.sum() + len(x) == model.n_queries
    b = Square(threat, queries=100, seed=1).run(model, x, y)
    np.testing.assert_array_equal(a.x_adv, b.x_adv)
    np.testing.assert_array_equal(a.queries, b.queries)
    standing = a.clean_correct & ~a.success
    assert standing.any() and (a.queries[standing] == 101).all()


def test_meta_pattern_has_two_opposite_halves_peaking_at_their_centres() -> None:
    pat = _meta_pattern(6)
    assert pat.shape == (6, 6)
    assert np.isclose(np.linalg.norm(pat), 1.0)
    assert (pat[:3] > 0).all() and (pat[3:] < 0).all()
    np.testing.assert_allclose(pat[:3].sum(), -pat[3:].sum())
    assert pat[1, 3] == pat[:3].max()  # centre of the top 3 x 6 half (row 3 // 2, column 6 // 2)


def test_square_is_registered_as_black_box() -> None:
    assert ATTACKS.get("square") is Square
    assert Square.white_box is False
    assert "p_init=0.8" in repr(Square(ThreatModel("linf", 0.1)))
    assert Square(ThreatModel("l2", 0.1)).p_init == 0.1


@pytest.mark.parametrize("kwargs,match", [
    ({"queries": 0}, r"Square\(queries=...\) must be an integer > 0; got 0"),
    ({"p_init": 1.5}, r"Square\(p_init=...\) must be a number in \(0, 1\]; got 1.5"),
    ({"loss": "hinge"}, r"Square\(loss=...\) must be one of \['margin', 'ce'\]; got 'hinge'"),
    ({"queries": 2, "restarts": 3}, r"Square\(restarts=...\) must be at most queries=2"),
    ({"seed": 1.5}, r"Square\(seed=...\) must be an integer"),
])
def test_square_rejects_bad_parameters(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Square(ThreatModel("linf", 0.1), **kwargs)


def test_square_rejects_other_norms() -> None:
    with pytest.raises(ConfigError, match=r"Square\(threat=...\) must be a ThreatModel with norm 'linf' or 'l2'"):
        Square(ThreatModel("l1", 1.0))


@pytest.mark.parametrize("k,n", [(1, 7), (2, 6), (3, 9), (4, 6)])
def test_random_subsets_are_uniform_and_distinct(k: int, n: int) -> None:
    """Both ways of drawing (few indices with redraws, or the k largest of n keys) give every
    k-subset of range(n) with the same probability."""
    from itertools import combinations

    gen = torch.Generator().manual_seed(0)
    rows = 30000
    sub = _subsets(rows, k, n, gen, torch.device("cpu")).numpy()
    assert sub.shape == (rows, k) and sub.min() >= 0 and sub.max() < n
    srt = np.sort(sub, axis=1)
    assert (np.diff(srt, axis=1) > 0).all()  # distinct within a row
    keys = {c: i for i, c in enumerate(combinations(range(n), k))}
    counts = np.bincount([keys[tuple(r)] for r in srt.tolist()], minlength=len(keys))
    expected = rows / len(keys)
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < len(keys) + 6 * np.sqrt(2 * len(keys))  # far inside the chi-square tail


@pytest.mark.parametrize("p", [0.8, 0.05, 1 / 64])
def test_flat_linf_proposals_move_k_mutable_features_to_a_vertex(p: float) -> None:
    """Flat inputs: a proposal changes at most k = round(p * n_mutable) mutable features, each to
    one of its two vertices; frozen features never move; unchanged proposals are rare."""
    m, size, eps = 2000, 64, 0.1
    rng = np.random.default_rng(0)
    x = torch.as_tensor(rng.uniform(0, 1, (m, 1, size)), dtype=torch.float32)
    x[:, :, :4] = 0.0  # on the lower bound: the -eps vertex equals x
    mask = np.ones(size, dtype=bool)
    mask[40:48] = False
    threat = ThreatModel("linf", eps, bounds=(0.0, 1.0), mutable=mask)
    cons = Feasible(threat, (size,), x.device, layout=(1, size))
    mutable = torch.as_tensor(np.flatnonzero(mask))
    attack = Square(threat)
    gen = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        cur = attack._init(x, cons, gen, None)
        vert = attack._vertices(x, cons)
        prop = attack._propose_flat_linf(cur, vert, p, mutable, gen)
    k = min(max(round(p * mask.sum()), 1), int(mask.sum()))
    moved = (prop != cur)[:, 0].numpy()
    assert not moved[:, ~mask].any()
    assert moved.sum(axis=1).max() <= k
    on_vertex = (prop == vert[0]) | (prop == vert[1])
    assert on_vertex[:, 0, mask].all()
    # one feature, one sign: a single draw changes nothing half the time; eleven draws 1/2048
    assert moved.any(axis=1).mean() >= 0.99
