"""The weak_slices check: what a slice is weak at (error, loss, flips, attacks), where it reads
its columns, and how bad input is refused."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression

from stalwart import Dataset
from stalwart.checks import WeakSlices, get
from stalwart.errors import ConfigError


@pytest.fixture(scope="module")
def planted():
    """A model fitted on clean labels, scored on labels flipped in 40% of one slice."""
    rng = np.random.default_rng(0)
    n = 4000
    x = pd.DataFrame({"age": rng.integers(18, 90, n).astype(float), "income": rng.normal(50, 10, n),
                      "score": rng.uniform(0, 1, n)})
    y = (x.income + 20 * x.score > 60).astype(int).to_numpy()
    weak = (x.age >= 70).to_numpy() & (x.score < 0.5).to_numpy()
    y_seen = np.where(weak & (rng.random(n) < 0.4), 1 - y, y)
    model = LogisticRegression(max_iter=1000).fit(x, y)
    return model, Dataset.from_arrays(x, y_seen, modality="tabular"), weak


def _first(result):
    return result.tables["slices"][0]["slice"]


@pytest.mark.parametrize("by", ["error", "loss"])
def test_the_planted_slice_is_the_worst(planted, by):
    model, data, weak = planted
    r = WeakSlices(by=by, n_boot=0).run(model, data, seed=0)
    assert r.status.value == "PASS", r.message
    assert re.fullmatch(r"age >= 70 and score < 0\.(49|50)\d*", _first(r)), _first(r)
    assert r.metrics["n_weak_slices"].value >= 1
    row = r.tables["slices"][0]
    assert r.metrics["worst_slice_effect"].value == pytest.approx(row["effect"])
    if by == "error":  # the slice's error equals the share of wrong predictions on its rows
        pred = model.predict(data.x)
        assert row["metric"] == pytest.approx(np.mean(pred[weak] != data.y[weak]), abs=0.02)
    assert r.figures["slices"]["labels"][0] == "all rows"


def test_a_condition_on_the_effect_fails_the_check(planted):
    model, data, _ = planted
    r = get("weak_slices", n_boot=0, conditions=["worst_slice_effect <= 0.05"]).run(model, data, seed=0)
    assert r.status.value == "FAIL"


def test_flips_under_noise_concentrate_near_the_decision_boundary(planted):
    """Feature noise flips a linear model's predictions where the score is near 0: the slice
    found is a band of the most weighted feature, not the label-noise slice."""
    model, data, _ = planted
    r = WeakSlices(by="flip:feature_noise", n_boot=0).run(model, data, seed=0)
    assert r.metrics["n_weak_slices"].value >= 1
    assert "income" in _first(r) or "score" in _first(r)
    assert "flip rate under feature_noise" in r.tables["search"][0]["target"]


def test_attack_success_is_sliced_among_correct_rows(planted):
    model, data, _ = planted
    r = WeakSlices(by="attack", n_boot=0, max_samples=400, eps=0.05).run(model, data, seed=0)
    assert r.status.value == "PASS", r.message
    search = r.tables["search"][0]
    assert "attack success rate" in search["target"] and search["rows"] < 400


def test_a_regressor_is_sliced_by_squared_error():
    rng = np.random.default_rng(1)
    n = 3000
    x = pd.DataFrame({"a": rng.normal(size=n), "g": rng.choice(list("pqrs"), n)})
    y = 2 * x.a.to_numpy() + rng.normal(0, 0.1, n) + np.where(x.g == "q", rng.normal(0, 2, n), 0)
    model = LinearRegression().fit(x[["a"]], y)
    data = Dataset.from_arrays(x, y, modality="tabular").with_sensitive(["g"])
    r = WeakSlices(n_boot=0).run(model, data, seed=0)
    assert _first(r) == "g = 'q'" and r.tables["search"][0]["target"] == "squared error"


def test_bad_parameters_and_columns_are_refused(planted):
    model, data, _ = planted
    with pytest.raises(ConfigError, match="zz"):
        WeakSlices(columns=["zz"]).run(model, data)
    with pytest.raises(ConfigError, match="by="):
        WeakSlices(by="flips")
    with pytest.raises(ConfigError, match="needs labels"):
        WeakSlices().run(model, Dataset.from_arrays(data.x, None, modality="tabular"))
