"""Model extraction: a linear model is recovered from its answers, fidelity grows with the budget,
and adversarial examples crafted on the copy transfer."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from stalwart.errors import ConfigError, InputError, ModelError
from stalwart.security.extraction import model_extraction


@pytest.fixture(scope="module")
def linear():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 5)).astype(np.float32)
    w = np.array([1.5, -2.0, 0.5, 0.0, 1.0])
    y = (x @ w + 0.3 * rng.normal(size=4000) > 0).astype(int)
    model = LogisticRegression().fit(x[:1000], y[:1000])
    return model, x[1000:3500], x[3500:], y[3500:]


def test_a_linear_model_is_recovered_with_enough_queries(linear):
    model, pool, test, y_test = linear
    res = model_extraction(model, pool, test, y_test, budgets=(20, 200, 2000), queries="random", output="labels")
    assert res.fidelity[-1] >= 0.97 and res.fidelity_low[-1] > 0.95
    assert res.fidelity[-1] >= res.fidelity[0]
    assert res.queries == 2000 + len(test)  # every row sent to the target is counted
    assert res.accuracy is not None and abs(res.accuracy[-1] - res.target_accuracy) < 0.05
    assert [r["queries"] for r in res.table()] == [20, 200, 2000]


def test_adversarial_examples_from_the_copy_transfer_to_the_target(linear):
    model, pool, test, y_test = linear
    res = model_extraction(model, pool, test, budgets=(1000,), queries="natural", output="scores", transfer_eps=0.1)
    assert res.transfer_n > 50 and res.transfer_rate > 0.5
    assert res.transfer_low < res.transfer_rate < res.transfer_high


def test_same_seed_same_curve(linear):
    model, pool, test, _ = linear
    a = model_extraction(model, pool, test, budgets=(50, 100), transfer_eps=None, seed=3)
    b = model_extraction(model, pool, test, budgets=(50, 100), transfer_eps=None, seed=3)
    assert a.fidelity == b.fidelity


def test_bad_input(linear):
    model, pool, test, y_test = linear
    with pytest.raises(ConfigError, match="budgets"):
        model_extraction(model, pool, test, budgets=(0, 10))
    with pytest.raises(ConfigError, match="budgets"):
        model_extraction(model, pool, test, budgets=(100, 10))
    with pytest.raises(ConfigError, match="queries"):
        model_extraction(model, pool, test, queries="smart")
    with pytest.raises(ConfigError, match="larger pool"):
        model_extraction(model, pool[:10], test, budgets=(100,))
    with pytest.raises(InputError, match="same kind"):
        model_extraction(model, pool, test[:, :3])
    with pytest.raises(InputError):
        model_extraction(model, np.full_like(pool, np.nan), test)
    from sklearn.linear_model import LinearRegression

    with pytest.raises(ModelError, match="regressor"):
        model_extraction(LinearRegression().fit(pool, pool[:, 0]), pool, test)
