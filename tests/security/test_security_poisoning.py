"""Poisoning sensitivity: rate 0 is the clean model, label noise costs accuracy, a backdoor is
learnt from a few rows while clean accuracy stays."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from stalwart.errors import ConfigError, InputError, ModelError
from stalwart.security.poisoning import plant_trigger, poisoning_sensitivity


@pytest.fixture(scope="module")
def data():
    x, y = load_breast_cancer(return_X_y=True)
    idx = np.random.default_rng(0).permutation(len(x))
    return x[idx[:400]], y[idx[:400]], x[idx[400:]], y[idx[400:]]


def test_rate_zero_is_the_clean_model(data):
    xt, yt, xs, ys = data
    forest = RandomForestClassifier(n_estimators=30, random_state=0)
    res = poisoning_sensitivity(forest, xt, yt, xs, ys, kind="random", rates=(0.0,), seed=4)
    clean = RandomForestClassifier(n_estimators=30, random_state=4).fit(xt.astype(np.float32), yt)
    assert res.at(0.0)["accuracy"] == pytest.approx(np.mean(clean.predict(xs.astype(np.float32)) == ys))
    assert res.at(0.0)["n_poisoned"] == 0


def test_label_flips_cost_a_linear_model_accuracy(data):
    xt, yt, xs, ys = data
    lr = LogisticRegression(max_iter=5000)
    res = poisoning_sensitivity(lr, xt, yt, xs, ys, kind="random", rates=(0.0, 0.4))
    assert res.at(0.4)["n_poisoned"] == 160
    assert res.at(0.4)["accuracy"] < res.at(0.0)["accuracy"] - 0.05


def test_a_backdoor_is_learnt_from_few_rows_while_clean_accuracy_stays(data):
    xt, yt, xs, ys = data
    forest = RandomForestClassifier(n_estimators=50, random_state=0)
    res = poisoning_sensitivity(forest, xt, yt, xs, ys, kind="backdoor", rates=(0.0, 0.05), target_class=0)
    assert res.at(0.0)["attack_success"] < 0.2  # without poison, a trigger alone does not flip the forest
    assert res.at(0.05)["attack_success"] > 0.8
    assert res.at(0.05)["accuracy"] >= res.at(0.0)["accuracy"] - 0.03
    assert set(res.trigger) == {23, 3}  # the two widest columns (worst area, mean area)


def test_targeted_flips_raise_the_target_class(data):
    xt, yt, xs, ys = data
    res = poisoning_sensitivity(LogisticRegression(max_iter=5000), xt, yt, xs, ys, kind="targeted",
                                rates=(0.0, 0.3), target_class=1)
    assert res.at(0.3)["attack_success"] > res.at(0.0)["attack_success"] + 0.1


def test_image_trigger_is_a_corner_patch():
    x = np.zeros((2, 1, 8, 8), dtype=np.float32)
    out, used = plant_trigger(x, None, np.ones((1, 1, 8, 8)))
    assert used == {"patch": 1.0} and out[:, :, -3:, -3:].min() == 1.0 and out[:, :, :5].max() == 0.0


def test_bad_input(data):
    xt, yt, xs, ys = data
    lr = LogisticRegression()
    with pytest.raises(ConfigError, match="rates"):
        poisoning_sensitivity(lr, xt, yt, xs, ys, rates=(1.5,))
    with pytest.raises(ConfigError, match="kind"):
        poisoning_sensitivity(lr, xt, yt, xs, ys, kind="sneaky")
    with pytest.raises(ConfigError, match="target_class"):
        poisoning_sensitivity(lr, xt, yt, xs, ys, kind="targeted", target_class=7)
    with pytest.raises(InputError, match="labels"):
        poisoning_sensitivity(lr, xt, yt, xs, ys + 5)
    with pytest.raises(ModelError, match="fit=lambda"):
        poisoning_sensitivity(lambda v: v, xt, yt, xs, ys)
