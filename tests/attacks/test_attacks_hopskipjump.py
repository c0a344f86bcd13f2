"""HopSkipJump: minimal distances against closed forms, threat compliance, queries, determinism."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import GradientBoostingClassifier

from stalwart.attacks import ATTACKS, ThreatModel
from stalwart.attacks.hopskipjump import HopSkipJump
from stalwart.errors import ConfigError, InputError
from stalwart.models import wrap
from stalwart.models.function import FunctionModel


@lru_cache(maxsize=1)
def breast_cancer_gbm() -> tuple[GradientBoostingClassifier, np.ndarray, np.ndarray, np.ndarray]:
    """A gradient-boosted tree ensemble on breast_cancer scaled to [0, 1]: (model, train x, x, y)."""
    x, y = load_breast_cancer(return_X_y=True)
    x = ((x - x.min(0)) / (x.max(0) - x.min(0))).astype(np.float32)
    order = np.random.default_rng(0).permutation(len(x))
    train, test = order[:400], order[400:440]
    gbm = GradientBoostingClassifier(n_estimators=50, max_depth=3, random_state=0).fit(x[train], y[train])
    return gbm, x[train], x[test], y[test]


def linear_problem(n: int, d: int = 20, labels_only: bool = False):
    """A linear classifier, inputs in [0.3, 0.7]^d and its true labels."""
    rng = np.random.default_rng(0)
    w, b = rng.normal(size=d), 0.1

    def predict(x: np.ndarray) -> np.ndarray:
        z = np.asarray(x, dtype=np.float64) @ w + b
        if labels_only:
            return (z > 0).astype(int)
        p = 1.0 / (1.0 + np.exp(-z))
        return np.stack([1 - p, p], axis=1)

    x = rng.uniform(0.3, 0.7, size=(n, d)).astype(np.float32)
    y = (x.astype(np.float64) @ w + b > 0).astype(int)
    return FunctionModel(predict, classes=[0, 1]), x, y, w, b


# -- minimal distance against the closed form ---------------------------------------------------
@pytest.mark.parametrize("norm,tol", [("l2", 0.10), ("linf", 0.15)])
def test_hsj_finds_the_closed_form_distance_to_a_linear_boundary(norm: str, tol: float) -> None:
    """The nearest point of {w.x + b = 0} is |w.x + b| / ||w||_2 away in l2 and / ||w||_1 in linf."""
    model, x, y, w, b = linear_problem(6, labels_only=True)  # decision-based: labels only
    closed = np.abs(x @ w + b) / (np.linalg.norm(w) if norm == "l2" else np.abs(w).sum())
    # an eps covering everything and wide bounds: a minimal-perturbation run
    res = HopSkipJump(ThreatModel(norm, eps=100.0, bounds=(-10.0, 10.0)), queries=1500).run(model, x, y)
    assert res.success.all()
    ratio = res.distance / closed
    assert (ratio >= 1 - 1e-3).all()  # no adversarial point can be closer than the boundary
    assert (ratio <= 1 + tol).all(), ratio


def test_hsj_counts_only_points_within_eps_as_successes() -> None:
    model, x, y, w, b = linear_problem(6)
    closed = np.abs(x @ w + b) / np.linalg.norm(w)
    eps = float(np.median(closed))
    res = HopSkipJump(ThreatModel("l2", eps=eps, bounds=(-10.0, 10.0)), queries=600).run(model, x, y)
    assert not res.success[closed > eps].any()
    np.testing.assert_array_equal(res.x_adv[~res.success], x[~res.success])  # failures keep x
    assert (res.distance <= eps * (1 + 1e-5)).all()


# -- trees: strength and compliance ---------------------------------------------------------------
@pytest.mark.parametrize("norm,eps", [("linf", 0.5), ("l2", 1.5)])
def test_hsj_breaks_a_tree_ensemble_within_the_threat_model(norm: str, eps: float) -> None:
    gbm, pool, x, y = breast_cancer_gbm()
    mutable = np.ones(30, dtype=bool)
    mutable[-4:] = False
    threat = ThreatModel(norm, eps=eps, bounds=(0.0, 1.0), mutable=mutable)
    res = HopSkipJump(threat, queries=400, starting_points=pool).run(gbm, x, y)
    assert res.clean_accuracy >= 0.95
    assert res.robust_accuracy <= 0.10
    np.testing.assert_array_equal(res.success, gbm.predict(res.x_adv) != y)
    diff = res.x_adv.astype(np.float64) - x
    dist = np.abs(diff).max(axis=1) if norm == "linf" else np.linalg.norm(diff, axis=1)
    assert dist.max() <= eps * (1 + 1e-5)
    assert res.x_adv.min() >= 0.0 and res.x_adv.max() <= 1.0
    np.testing.assert_array_equal(res.x_adv[:, ~mutable], x[:, ~mutable])


def test_hsj_random_start_without_starting_points() -> None:
    gbm, _, x, y = breast_cancer_gbm()
    res = HopSkipJump(ThreatModel("l2", eps=1.5), queries=300).run(gbm, x, y)
    assert res.robust_accuracy <= 0.10


# -- queries, early stop, determinism -------------------------------------------------------------
def test_hsj_respects_the_query_budget_and_reports_exact_counts() -> None:
    gbm, pool, x, y = breast_cancer_gbm()
    model = wrap(gbm)
    res = HopSkipJump(ThreatModel("l2", eps=0.3), queries=150).run(model, x, y)
    assert res.queries.max() <= 151  # + the clean prediction
    assert res.queries.sum() + len(x) == model.n_queries
    # with a pool, its one prediction pass is shared by the attacked samples
    model.reset_queries()
    res = HopSkipJump(ThreatModel("l2", eps=0.3), queries=150, starting_points=pool[:50]).run(model, x, y)
    assert res.queries.max() <= 151
    assert np.isclose(res.queries.sum() + len(x), model.n_queries)


def test_hsj_stop_within_eps_saves_queries() -> None:
    model, x, y, _, _ = linear_problem(6)
    threat = ThreatModel("l2", eps=5.0, bounds=(-10.0, 10.0))
    full = HopSkipJump(threat, queries=600).run(model, x, y)
    quick = HopSkipJump(threat, queries=600, stop_within_eps=True).run(model, x, y)
    assert full.success.all() and quick.success.all()
    assert quick.queries.mean() < 0.5 * full.queries.mean()
    assert (quick.distance >= full.distance).all()


def test_hsj_same_seed_same_result() -> None:
    gbm, _, x, y = breast_cancer_gbm()
    threat = ThreatModel("linf", eps=0.2)
    a = HopSkipJump(threat, queries=120, seed=1).run(gbm, x[:10], y[:10])
    b = HopSkipJump(threat, queries=120, seed=1).run(gbm, x[:10], y[:10])
    c = HopSkipJump(threat, queries=120, seed=2).run(gbm, x[:10], y[:10])
    np.testing.assert_array_equal(a.x_adv, b.x_adv)
    np.testing.assert_array_equal(a.queries, b.queries)
    assert not np.array_equal(a.x_adv, c.x_adv)


def test_hsj_targeted() -> None:
    gbm, pool, x, y = breast_cancer_gbm()
    target = 1 - y
    res = HopSkipJump(ThreatModel("l2", eps=2.0), queries=200, starting_points=pool).run(
        gbm, x, y, targeted=target)
    assert res.success.mean() >= 0.9


# -- registration and validation ------------------------------------------------------------------
def test_hsj_is_registered_as_black_box_and_keeps_the_pool_out_of_params() -> None:
    assert ATTACKS.get("hopskipjump") is HopSkipJump
    attack = HopSkipJump(ThreatModel("l2", 1.0), starting_points=np.zeros((3, 2)))
    assert not HopSkipJump.white_box
    assert "starting_points" not in attack.params()
    assert attack.params()["queries"] == 5000


@pytest.mark.parametrize("kwargs,match", [
    ({"queries": 0}, r"HopSkipJump\(queries=...\) must be an integer > 0; got 0"),
    ({"init_evals": 1}, r"HopSkipJump\(init_evals=...\) must be an integer >= 2"),
    ({"max_evals": 50}, r"HopSkipJump\(max_evals=...\) must be at least init_evals=100; got 50"),
    ({"gamma": -1.0}, r"HopSkipJump\(gamma=...\) must be a number > 0; got -1.0"),
    ({"stop_within_eps": 1}, r"HopSkipJump\(stop_within_eps=...\) must be True or False; got 1"),
])
def test_hsj_rejects_bad_parameters(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        HopSkipJump(ThreatModel("l2", 1.0), **kwargs)


def test_hsj_rejects_other_norms_and_misshaped_starting_points() -> None:
    with pytest.raises(ConfigError, match=r"HopSkipJump\(threat=...\) must be a ThreatModel with norm 'l2' or 'linf'"):
        HopSkipJump(ThreatModel("l1", 1.0))
    model, x, y, _, _ = linear_problem(3)
    attack = HopSkipJump(ThreatModel("l2", 1.0, bounds=None), starting_points=np.zeros((4, 5)))
    with pytest.raises(InputError, match=r"starting_points has samples shaped \(5,\) but x has \(20,\)"):
        attack.run(model, x, y)
