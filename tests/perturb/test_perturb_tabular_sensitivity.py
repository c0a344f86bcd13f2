"""column_sensitivity: one column perturbed at a time, harm measured against independent recomputation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline

from stalwart import perturb
from stalwart.data.dataset import Dataset
from stalwart.errors import ConfigError, InputError
from stalwart.perturb.sensitivity import column_sensitivity


def data(n: int = 300, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame({"signal": rng.normal(size=n), "weak": rng.normal(size=n), "unused": rng.normal(size=n),
                      "color": rng.choice(["r", "g"], n), "id": np.arange(n)})
    y = (x["signal"] + 0.3 * x["weak"] + 0.2 * rng.normal(size=n) > 0).astype(int).to_numpy()
    return Dataset.from_arrays(x, y, immutable=["id"])


def model(d: Dataset):
    # reads only signal and weak: perturbing any other column cannot change a prediction
    pipe = make_pipeline(ColumnTransformer([("num", "passthrough", ["signal", "weak"])]), LogisticRegression())
    return pipe.fit(d.x, d.y)


def test_ranks_columns_by_harm_and_matches_a_recount():
    d = data()
    pipe = model(d)
    rows = column_sensitivity(pipe, d, severity=5, seed=1)
    assert [r["column"] for r in rows][:2] == ["signal", "weak"]
    assert {r["column"] for r in rows} == {"signal", "weak", "unused", "color"}  # id is immutable
    clean = pipe.predict(d.x)
    noise = perturb.get("feature_noise")
    for r in rows:
        only = d.schema.with_immutable([n for n in d.schema.names if n != r["column"]])
        pred = pipe.predict(noise.apply(d.x, 5, rng=1, schema=only))
        assert r["flip_rate"] == pytest.approx(np.mean(pred != clean))
        assert r["accuracy_drop"] == pytest.approx(np.mean(clean == d.y) - np.mean(pred == d.y))
        assert r["flip_low"] <= r["flip_rate"] <= r["flip_high"]
    by = {r["column"]: r for r in rows}
    assert by["signal"]["accuracy_drop"] > by["weak"]["accuracy_drop"] > 0
    # all but the extremes pushed past the range and clipped back onto themselves
    assert by["unused"]["flip_rate"] == 0.0 and 290 < by["unused"]["changed_rows"] < 300
    assert by["color"]["changed_rows"] == 0 and by["color"]["flip_rate"] == 0.0  # noise skips categories


def test_other_perturbations_regression_and_unlabelled_data():
    d = data()
    pipe = model(d)
    rows = column_sensitivity(pipe, d, perturbation="category_swap", severity=5)
    assert {r["column"]: r["changed_rows"] > 0 for r in rows}["color"]
    assert all(r["flip_rate"] == 0.0 for r in rows)  # the model ignores color
    reg = make_pipeline(ColumnTransformer([("num", "passthrough", ["signal"])]), LinearRegression())
    target = d.x["signal"].to_numpy() * 2.0
    reg.fit(d.x, target)
    dr = Dataset.from_arrays(d.x, target, immutable=["id"])
    rows = column_sensitivity(reg, dr, severity=3)
    assert rows[0]["column"] == "signal" and rows[0]["rmse_increase"] > 0 and rows[0]["flip_rate"] > 0.98
    unlabelled = Dataset.from_arrays(d.x, None, immutable=["id"])
    rows = column_sensitivity(pipe, unlabelled)
    assert "accuracy_drop" not in rows[0] and rows[0]["column"] == "signal"


def test_bad_arguments():
    d = data()
    pipe = model(d)
    with pytest.raises(InputError, match=r"data=\.\.\.\) must be a stalwart Dataset; got DataFrame"):
        column_sensitivity(pipe, d.x)
    with pytest.raises(ConfigError, match=r"perturbation=\.\.\.\) must be a tabular perturbation"):
        column_sensitivity(pipe, d, perturbation="gaussian_noise")
    with pytest.raises(ConfigError, match="unknown perturbation 'nope'"):
        column_sensitivity(pipe, d, perturbation="nope")
