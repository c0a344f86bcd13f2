"""Sequential randomized-smoothing certification: the same decisions as the fixed-n procedure on
clear inputs with far fewer draws, a certified-wrong rate that stays within alpha although the
bound is looked at several times, and coin-flip inputs given up early."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from stalwart.certify import RandomizedSmoothing, clopper_pearson_lower, clopper_pearson_upper
from stalwart.errors import ConfigError
from stalwart.models import FunctionModel

from .test_certify_smoothing import linear_net, points


def bernoulli_model(p: float, seed: int) -> FunctionModel:
    """A base classifier that says class 0 with probability ``p`` whatever its input: under
    smoothing the top class's probability is exactly ``p``."""
    rng = np.random.default_rng(seed)

    def predict(xb):
        zero = rng.random(len(xb)) < p
        return np.stack([zero, ~zero], axis=1).astype(np.float64)

    return FunctionModel(predict, classes=[0, 1], task="classification", output="probabilities")


def test_the_schedule_doubles_up_to_n():
    assert RandomizedSmoothing(n=10_000, sequential=True).schedule() == [625, 1250, 2500, 5000, 10_000]
    assert RandomizedSmoothing(n=10_000, sequential=True, looks=1).schedule() == [10_000]
    assert RandomizedSmoothing(n=10_000).schedule() == [10_000]
    assert RandomizedSmoothing(n0=2, n=3, alpha=0.5, sequential=True, looks=5).schedule() == [1, 2, 3]


def test_same_decisions_as_fixed_n_on_clear_inputs_with_far_fewer_draws():
    x, y, dist = points(60)
    sigma, n = 0.5, 20_000
    fixed = RandomizedSmoothing(sigma, n=n).certify(linear_net(), x, y)
    seq = RandomizedSmoothing(sigma, n=n, sequential=True).certify(linear_net(), x, y)
    p_true = stats.norm.cdf(dist / sigma)
    clear = (p_true > 0.6) | (p_true < 0.5 + 1e-3)
    assert clear.sum() >= 40
    assert np.array_equal(seq.abstained[clear], fixed.abstained[clear])
    assert np.array_equal(seq.prediction[~seq.abstained], y[~seq.abstained])
    ok = ~seq.abstained
    assert np.all(seq.radius[ok] <= dist[ok] + 1e-6)  # sound
    used = seq.details["n_used"]
    # an input whose top class has pA > 0.9 is decided at the first look (n / 16 draws), one
    # with pA > 0.6 by the second
    assert (p_true > 0.9).sum() >= 5 and np.all(used[p_true > 0.9] == n // 16)
    assert (p_true > 0.6).sum() >= 40 and np.all(used[p_true > 0.6] <= n // 8)
    assert used.mean() < 0.15 * n
    assert np.all(fixed.details["n_used"] == n)
    assert seq.queries == len(x) * 100 + int(used.sum())
    # the bound is Clopper-Pearson on the counts actually drawn, at alpha / looks
    k = seq.details["count_top"]
    np.testing.assert_allclose(seq.details["p_lower"], clopper_pearson_lower(k, used, 0.001 / 5), atol=1e-12)
    want = np.where(seq.abstained, 0.0, sigma * stats.norm.ppf(np.clip(seq.details["p_lower"], 0.5, 1)))
    np.testing.assert_allclose(seq.radius, want, atol=1e-12)


def test_a_target_radius_draws_until_it_is_certified():
    x, y, dist = points(60)
    sigma, n, target = 0.5, 20_000, 0.4
    seq = RandomizedSmoothing(sigma, n=n, sequential=True, target_radius=target).certify(linear_net(), x, y)
    fixed = RandomizedSmoothing(sigma, n=n).certify(linear_net(), x, y)
    used = seq.details["n_used"]
    ok = ~seq.abstained
    assert np.all(seq.radius[ok] <= dist[ok] + 1e-6)
    # clearly beyond the target: certified at it, as the fixed-n procedure does, and early
    far = dist > 1.5 * target
    assert far.sum() >= 5
    assert np.all(seq.radius[far] >= target) and np.all(fixed.radius[far] >= target)
    assert np.all(used[far] < n)
    # clearly inside it: given up before the end (futility), never certified at the target
    near = dist < 0.5 * target
    assert near.sum() >= 10
    assert np.all(seq.radius[near] < target) and np.mean(used[near] < n) >= 0.8


def test_a_coin_flip_input_abstains_early():
    x = np.zeros((40, 3), dtype=np.float32)
    n = 10_000
    res = RandomizedSmoothing(0.25, n=n, sequential=True).certify(bernoulli_model(0.5, seed=0), x)
    used = res.details["n_used"]
    assert res.abstained.all()
    assert used.mean() <= 0.5 * n and np.mean(used < n) >= 0.75
    # with futility=0 it stops only when no outcome of the remaining draws could certify, which a
    # coin flip never reaches before the last look (at n / 2 half the draws could still all agree)
    strict = RandomizedSmoothing(0.25, n=n, sequential=True, futility=0.0).certify(bernoulli_model(0.5, seed=0), x)
    assert strict.abstained.all() and np.all(strict.details["n_used"] == n)


def _wrong_rate(alpha: float, seed: int) -> float:
    """Share of inputs whose reported bound exceeds the true pA = 0.7, when the target (pA 0.72)
    is just above the truth, so the early stop fires only on a bound that is wrong: the worst case
    for repeated looks."""
    sigma = 1.0
    target = sigma * stats.norm.ppf(0.72)
    x = np.zeros((4000, 1), dtype=np.float32)
    res = RandomizedSmoothing(sigma, n0=50, n=400, alpha=alpha, sequential=True, target_radius=target,
                              futility=0.0, batch_size=20_000, seed=seed).certify(bernoulli_model(0.7, seed), x)
    p_true = np.where(res.prediction == 0, 0.7, 0.3)  # the top class is picked on n0 draws: rarely 1
    return float(np.mean(res.details["p_lower"] > p_true))


@pytest.mark.parametrize("seed", [1, 2])
def test_the_certified_wrong_rate_stays_within_alpha(seed):
    alpha, trials = 0.05, 4000
    mc = 3 * np.sqrt(alpha * (1 - alpha) / trials)
    assert _wrong_rate(alpha, seed) <= alpha + mc
    # the test can fail: a procedure that looks at the fixed-n level each time (alpha per look,
    # what alpha * looks gives here) certifies wrongly far more often than alpha
    assert _wrong_rate(alpha * 5, seed) > alpha + mc


def test_clopper_pearson_upper_mirrors_the_lower_bound():
    k, n = np.array([0, 3, 10]), 10
    np.testing.assert_allclose(clopper_pearson_upper(k, n, 0.05), 1 - clopper_pearson_lower(n - k, n, 0.05))
    assert clopper_pearson_upper(10, 10, 0.05) == 1.0


@pytest.mark.parametrize("kwargs, match", [
    ({"sequential": "yes"}, "sequential"), ({"target_radius": -0.1}, "target_radius"),
    ({"target_radius": float("nan")}, "target_radius"), ({"looks": 0}, "looks"), ({"looks": 40}, "looks"),
    ({"futility": 1.0}, "futility"), ({"futility": -0.1}, "futility"),
])
def test_bad_sequential_parameters_say_how_to_fix_them(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        RandomizedSmoothing(**kwargs)
    # n = 1,000 all-agreeing copies bound pA at (0.001 / 5) ** (1 / 1000): radius 0.25 * Phi^-1 of it
    top = 0.25 * stats.norm.ppf((0.001 / 5) ** (1 / 1000))
    RandomizedSmoothing(0.25, n=1000, sequential=True, target_radius=0.99 * top)
    with pytest.raises(ConfigError, match=rf"largest radius n copies can certify is {top:.4g}"):
        RandomizedSmoothing(0.25, n=1000, sequential=True, target_radius=top)
