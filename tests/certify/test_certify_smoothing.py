"""Randomized smoothing against closed forms: for a linear classifier under Gaussian noise the top
class has probability Phi(margin / (sigma ||w||)), so Cohen's radius tends to the exact distance
to the decision boundary and must never exceed it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats
from sklearn.linear_model import LinearRegression, LogisticRegression

from stalwart import certify
from stalwart.certify import RandomizedSmoothing, clopper_pearson_lower, feature_scale
from stalwart.errors import ConfigError, InputError, ModelError, StalwartError

RNG = np.random.default_rng(0)
W = RNG.normal(size=5)
B = 0.3


def linear_net(w: np.ndarray = W, b: float = B) -> torch.nn.Module:
    """Two logits (w.x + b, -(w.x + b)): class 0 exactly where w.x + b > 0."""
    net = torch.nn.Linear(len(w), 2)
    with torch.no_grad():
        net.weight.copy_(torch.tensor(np.stack([w, -w]), dtype=torch.float32))
        net.bias.copy_(torch.tensor([b, -b], dtype=torch.float32))
    return net


def points(n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inputs, their labels under the linear rule, and their exact distance to the boundary."""
    x = np.random.default_rng(seed).normal(scale=0.4, size=(n, len(W))).astype(np.float32)
    margin = x.astype(np.float64) @ W + B
    return x, np.where(margin > 0, 0, 1), np.abs(margin) / np.linalg.norm(W)


@pytest.mark.parametrize("sigma", [0.25, 0.5])
def test_radius_never_exceeds_the_distance_to_the_boundary_and_approaches_it(sigma):
    x, y, dist = points(40)
    res = RandomizedSmoothing(sigma, n=20_000, alpha=0.001).certify(linear_net(), x, y)
    certified = ~res.abstained
    assert certified.sum() >= 25
    assert np.all(res.radius[certified] <= dist[certified] + 1e-6)  # sound
    # where pA is not saturated, the bound is close: the exact pA = Phi(dist / sigma), its
    # Clopper-Pearson bound at the expected count gives the radius to expect
    p_true = stats.norm.cdf(dist / sigma)
    expected = sigma * stats.norm.ppf(np.clip(clopper_pearson_lower(np.round(p_true * 20_000), 20_000, 0.001),
                                              0.5, 1))
    open_ = certified & (p_true < 0.999)
    assert open_.sum() >= 10
    assert np.max(np.abs(res.radius[open_] - expected[open_])) < 0.05 * sigma + 0.02
    assert np.all(res.prediction[certified] == y[certified])
    assert res.certified_accuracy(0.0) == pytest.approx(np.mean(certified))


def test_the_radius_is_cohens_formula_on_the_counts():
    x, y, _ = points(20)
    smooth = RandomizedSmoothing(0.5, n0=50, n=3000, alpha=0.01)
    res = smooth.certify(linear_net(), x, y)
    k = res.details["count_top"]
    p_low = np.array([stats.binomtest(int(ki), 3000).proportion_ci(0.98, method="exact").low for ki in k])
    np.testing.assert_allclose(res.details["p_lower"], p_low, atol=1e-9)
    want = np.where(p_low > 0.5, 0.5 * stats.norm.ppf(np.maximum(p_low, 0.5)), 0.0)
    np.testing.assert_allclose(res.radius, want, atol=1e-9)
    assert np.array_equal(res.abstained, ~(p_low > 0.5))
    assert res.queries == 20 * (50 + 3000)


def test_a_point_on_the_boundary_abstains_and_far_points_do_not():
    w = np.array([1.0, 0.0])
    x = np.array([[0.0, 0.0], [2.0, 0.0], [-2.0, 0.0]], dtype=np.float32)
    smooth = RandomizedSmoothing(0.5, n=4000)
    res = smooth.certify(linear_net(w, 0.0), x, [0, 0, 1])
    assert res.abstained.tolist() == [True, False, False]
    # 2.0 away, but with n = 4000 draws the bound saturates at sigma * Phi^-1(alpha ** (1 / n)) = 1.462
    assert res.radius[0] == 0.0
    assert res.radius[1] == pytest.approx(0.5 * stats.norm.ppf(0.001 ** (1 / 4000)), abs=1e-9)
    labels, abstained = smooth.predict(linear_net(w, 0.0), x)
    assert abstained.tolist() == [True, False, False]
    assert labels[1:].tolist() == [0, 1]


def test_any_model_scikit_learn_gives_the_same_closed_form():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, 3))
    y = (x @ np.array([1.0, -2.0, 0.5]) > 0.2).astype(int)
    clf = LogisticRegression(C=100.0).fit(x, y)
    w, b = clf.coef_[0], clf.intercept_[0]
    xt = x[:30].astype(np.float32)
    dist = np.abs(xt @ w + b) / np.linalg.norm(w)
    res = RandomizedSmoothing(0.3, n=5000, batch_size=4096).certify(clf, xt, y[:30])
    ok = ~res.abstained
    assert ok.sum() >= 15
    # each certificate may fail with probability alpha = 0.001: among 30, two or more failures
    # has probability 4e-4 (here one sample's estimate lies 3.4 sd high and its radius exceeds the
    # distance by 0.0007, which a 1 - alpha guarantee allows)
    over = res.radius[ok] > dist[ok] + 1e-6
    assert over.sum() <= 1
    assert np.all(res.radius[ok] <= dist[ok] + 0.01)


def test_immutable_features_are_never_noised_and_scale_sets_the_unit():
    w = np.array([1.0, 1.0, 1.0])
    scale = np.array([2.0, 1.0, 1.0])
    mutable = np.array([True, True, False])
    x = np.array([[1.0, 1.0, 1.0]], dtype=np.float32)  # margin 3
    # in units of scale over the mutable features, the boundary is 3 / ||(2, 1)|| = 1.342 away
    res = RandomizedSmoothing(1.0, n=50_000, scale=scale, mutable=mutable).certify(linear_net(w, 0.0), x, [0])
    assert 1.2 < res.radius[0] <= 3 / np.sqrt(5)
    seen = []

    def record(xb):
        seen.append(np.array(xb))
        return np.stack([np.ones(len(xb)), np.zeros(len(xb))], axis=1)

    from stalwart.models import FunctionModel

    fn = FunctionModel(record, task="classification", classes=[0, 1], output="probabilities")
    RandomizedSmoothing(1.0, n0=10, n=100, mutable=mutable).certify(fn, x, [0])
    noisy = np.concatenate(seen)[1:]  # the first call may be the class probe
    assert np.all(noisy[:, 2] == 1.0) and np.std(noisy[:, 0]) > 0.5


def test_memory_does_not_grow_with_n():
    x, y, _ = points(1)
    sizes = {}
    for n in (10_000, 100_000):
        res = RandomizedSmoothing(0.25, n=n, batch_size=2048).certify(linear_net(), x, y)
        sizes[n] = res.largest_batch
        assert res.queries == 100 + n
    assert sizes[10_000] == sizes[100_000] == 2048


def test_small_n_packs_several_inputs_into_one_batch():
    x, y, _ = points(30)
    res = RandomizedSmoothing(0.25, n0=10, n=100, batch_size=1000).certify(linear_net(), x, y)
    assert res.largest_batch == 1000  # 3,000 estimation rows in batches of 1,000, not 30 batches of 100


def test_same_seed_same_certificate_and_the_object_keeps_no_state():
    x, y, _ = points(10)
    smooth = RandomizedSmoothing(0.5, n=2000, seed=4)
    before = repr(smooth)
    a, b = smooth.certify(linear_net(), x, y), smooth.certify(linear_net(), x, y)
    assert np.array_equal(a.radius, b.radius) and repr(smooth) == before
    c = RandomizedSmoothing(0.5, n=2000, seed=5).certify(linear_net(), x, y)
    assert not np.array_equal(a.details["counts"], c.details["counts"])


def test_feature_scale_is_the_column_sd_and_refuses_a_constant_column():
    x = np.array([[0.0, 1.0], [2.0, 1.0], [4.0, 1.0]])
    with pytest.raises(InputError, match=r"column\(s\) \[1\] do not vary"):
        feature_scale(x)
    assert feature_scale(x[:, :1]).tolist() == [2.0]


def test_registered_as_a_certifier():
    assert "smoothing" in certify.names(norm="l2")
    assert isinstance(certify.get("smoothing", sigma=0.5), RandomizedSmoothing)
    with pytest.raises(ConfigError, match="unknown parameter"):
        certify.get("smoothing", eps=0.5)


@pytest.mark.parametrize("kwargs, match", [
    ({"sigma": 0.0}, "sigma"), ({"sigma": -1.0}, "sigma"), ({"sigma": float("inf")}, "sigma"),
    ({"n0": 200, "n": 100}, "at least n0"), ({"alpha": 0.0}, "alpha"), ({"alpha": 1.0}, "alpha"),
    ({"batch_size": 0}, "batch_size"), ({"scale": [1.0, -1.0]}, "scale"), ({"mutable": [False, False]}, "mutable"),
])
def test_bad_parameters_say_how_to_fix_them(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        RandomizedSmoothing(**kwargs)


def test_bad_input_is_a_stalwart_error():
    x, y, _ = points(5)
    smooth = RandomizedSmoothing(0.5, n0=10, n=20)
    with pytest.raises(InputError, match="NaN|finite"):
        smooth.certify(linear_net(), np.full((2, 5), np.nan), [0, 1])
    with pytest.raises(StalwartError, match="labels|classes"):
        smooth.certify(linear_net(), x, [7] * 5)
    with pytest.raises(ConfigError, match="does not fit one sample"):
        RandomizedSmoothing(0.5, n0=10, n=20, scale=[1.0, 2.0]).certify(linear_net(), x, y)
    with pytest.raises(ModelError, match="regression"):
        smooth.certify(LinearRegression().fit(x, y.astype(float)), x, y)
    with pytest.raises(InputError, match="one row per sample"):
        smooth.certify(linear_net(), x[0], y[:1])


def test_a_model_with_nan_outputs_is_an_error_not_a_class():
    net = linear_net()
    with torch.no_grad():
        net.bias.fill_(float("nan"))
    x, y, _ = points(3)
    with pytest.raises(ModelError):
        RandomizedSmoothing(0.5, n0=10, n=20).certify(net, x, y)
