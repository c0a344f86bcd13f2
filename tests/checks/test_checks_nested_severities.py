"""Nested severities, seen through the checks: every severity of a perturbation makes the same draws.

The model is a recording callable, so what is measured is exactly what the check sent to the model:
one clean batch, then one batch per severity. How far each batch is from the clean one must not
fall as the severity rises (tabular: the share of changed cells and the mean absolute change in
standard deviations of the column; images: the mean absolute pixel change), and for the random
tabular perturbations the cells changed at one severity are changed at every higher one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from stalwart import Dataset, perturb, wrap
from stalwart.checks import NaturalRobustness
from stalwart.checks.corruption import CorruptionRobustness

SEVERITIES = (1, 2, 3, 4, 5)


def _recorded(check, fn_model, data, n, **wrap_kw):
    """Run ``check``; return the full-size batches the model received (clean first, then one per severity)."""
    batches = []

    def fn(x):
        batches.append(x.copy())
        return fn_model(x)

    result = check.run(wrap(fn, **wrap_kw), data, seed=0)
    full = [b for b in batches if len(b) == n]
    return result, full


def _non_decreasing(values):
    return all(b >= a - 1e-12 for a, b in zip(values, values[1:]))


# -- tabular -------------------------------------------------------------------------------------
NUMERIC = ["mean radius", "mean texture", "mean perimeter", "mean area", "mean smoothness", "mean compactness"]


@pytest.fixture(scope="module")
def mixed_table():
    """150 rows: six breast-cancer measurements, an integer count, a colour and a flag."""
    x, y = load_breast_cancer(return_X_y=True, as_frame=True)
    rng = np.random.default_rng(0)
    df = x[NUMERIC].copy()
    df["count"] = rng.integers(0, 20, len(df))
    df["colour"] = rng.choice(["red", "green", "blue"], len(df))
    df["flag"] = rng.random(len(df)) < 0.4
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(df[NUMERIC + ["count"]], y)
    rows = rng.permutation(len(df))[:150]
    data = Dataset.from_arrays(df.iloc[rows].reset_index(drop=True), y.to_numpy()[rows])

    def model(frame):  # answers for missing cells too, so every severity is measured
        return pipe.predict_proba(frame[NUMERIC + ["count"]].astype(float).fillna(0.0))
    return data, model


def _changed(a: pd.DataFrame, clean: pd.DataFrame) -> np.ndarray:
    return (~((a == clean) | (a.isna() & clean.isna()))).to_numpy()


def _z_change(a: pd.DataFrame, clean: pd.DataFrame) -> float:
    cols = NUMERIC + ["count"]
    ref = clean[cols].to_numpy(float)
    diff = np.abs(a[cols].to_numpy(float) - ref) / ref.std(axis=0)
    return float(np.nanmean(np.where(np.isnan(diff), 0.0, diff)))  # a blanked cell: counted by share only


TABULAR = perturb.names("tabular")


def test_every_tabular_perturbation_is_covered():
    assert len(TABULAR) >= 11 and {"feature_noise", "missing_values", "unit_scale", "rounding"} <= set(TABULAR)


@pytest.mark.parametrize("name", TABULAR)
def test_tabular_change_grows_with_severity_through_the_check(mixed_table, name):
    data, model = mixed_table
    check = NaturalRobustness(perturbations=[name], severities=SEVERITIES, column_sensitivity=False)
    result, batches = _recorded(check, model, data, len(data), classes=[0, 1])
    assert result.status.value != "ERROR", result.message
    assert len(batches) == 1 + len(SEVERITIES)  # the clean batch, then one per severity, nothing else
    clean, perturbed = batches[0], batches[1:]
    share = [float(_changed(b, clean).mean()) for b in perturbed]
    z = [_z_change(b, clean) for b in perturbed]
    assert share[-1] > 0, f"{name} changed nothing at severity 5"
    assert _non_decreasing(share), (name, share)
    assert _non_decreasing(z), (name, z)


@pytest.mark.parametrize("name", [n for n in TABULAR if n != "rounding"])
def test_random_tabular_perturbations_change_a_superset_at_each_higher_severity(mixed_table, name):
    """The draws do not depend on the severity (perturb/tabular.py): a cell hit at severity s is hit
    at s + 1. (``rounding`` draws nothing: it is deterministic, and a value that is a multiple of a
    coarser step but not of a finer one changes at the lower severity only.)"""
    data, model = mixed_table
    check = NaturalRobustness(perturbations=[name], severities=SEVERITIES, column_sensitivity=False)
    _, batches = _recorded(check, model, data, len(data), classes=[0, 1])
    masks = [_changed(b, batches[0]) for b in batches[1:]]
    for s, (low, high) in enumerate(zip(masks, masks[1:]), start=1):
        assert not (low & ~high).any(), f"{name}: {int((low & ~high).sum())} cells changed at {s} but not at {s + 1}"


def test_rounding_is_deterministic_but_not_nested(mixed_table):
    """The exception above, shown: the same rounding whatever the seed, yet some cells rounded at one
    severity come back to their own value at the next (0.5 is off a 0.2 grid but on a 0.5 grid)."""
    data, model = mixed_table
    p = perturb.get("rounding")
    assert p.apply(data.x, 3, rng=0, schema=data.schema).equals(p.apply(data.x, 3, rng=99, schema=data.schema))
    check = NaturalRobustness(perturbations=["rounding"], severities=SEVERITIES, column_sensitivity=False)
    _, batches = _recorded(check, model, data, len(data), classes=[0, 1])
    masks = [_changed(b, batches[0]) for b in batches[1:]]
    assert any((low & ~high).any() for low, high in zip(masks, masks[1:]))


def test_ridge_rmse_under_unit_scale_does_not_fall_with_severity():
    x, y = load_diabetes(return_X_y=True, as_frame=True)
    order = np.random.default_rng(0).permutation(len(x))
    ridge = Ridge(alpha=1.0).fit(x.iloc[order[:300]], y.iloc[order[:300]])
    data = Dataset.from_arrays(x.iloc[order[300:]].reset_index(drop=True), y.to_numpy()[order[300:]])
    check = NaturalRobustness(perturbations=["unit_scale"], severities=SEVERITIES, column_sensitivity=False)
    result, batches = _recorded(check, ridge.predict, data, len(data), task="regression")
    rows = sorted((r for r in result.tables["perturbations"] if r["perturbation"] == "unit_scale"),
                  key=lambda r: r["severity"])
    rmse = [r["rmse"] for r in rows]
    # the expectation, independently: scikit-learn's RMSE on the very batches the check sent
    y_true = np.asarray(data.y, dtype=float)
    expected = [float(np.sqrt(np.mean((ridge.predict(b) - y_true) ** 2))) for b in batches[1:]]
    np.testing.assert_allclose(rmse, expected, rtol=1e-9)
    assert _non_decreasing(rmse), rmse
    assert rmse[-1] > 2 * rmse[0]
    masks = [_changed(b, batches[0]) for b in batches[1:]]
    assert all(not (low & ~high).any() for low, high in zip(masks, masks[1:]))  # the same rows, and more


# -- images ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def digits_rgb():
    """60 tinted 8 x 8 digits as RGB images in [0, 1] (colour, so saturate applies) and a classifier."""
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    tint = np.random.default_rng(0).uniform(0.3, 1.0, size=(len(x), 3, 1, 1)).astype(np.float32)
    rgb = np.clip(x * tint, 0.0, 1.0)
    flat = rgb[:1000].reshape(1000, -1)
    centroids = np.stack([flat[y[:1000] == c].mean(axis=0) for c in range(10)])  # nearest-centroid classifier
    data = Dataset.from_arrays(rgb[1000:1060], y[1000:1060], value_range=(0.0, 1.0))

    def model(batch):  # logits: minus the squared distance to each class centroid
        batch = np.asarray(batch, dtype=np.float64).reshape(len(batch), -1)
        return -((batch[:, None, :] - centroids[None]) ** 2).sum(axis=2)
    return data, model


IMAGE = perturb.names("image")
_PIXELATION = pytest.mark.xfail(
    strict=True, reason="pixelation on 8 px images: cells 7, 6, 5, 4, 3 (capped at side - severity), but box "
    "down / nearest up at non-integer ratios changes an image less at 5 cells (8/5) than at 6 (8/6): mean change "
    "0.124, 0.150, 0.130, 0.154, 0.225 on digits; stated in the Pixelation docstring")
_SATURATE = ("saturate", "its docstring: severities 1-2 wash colours out (a = 0.3, 0.1), 3-5 exaggerate them "
             "(a = 2, 5, 20): two directions, so the change from 2 to 3 may fall")


def _image_params():
    out = []
    for name in IMAGE:
        if name == "pixelation":
            out.append(pytest.param(name, marks=_PIXELATION))
        elif name != _SATURATE[0]:
            out.append(name)
    return out


def test_every_image_perturbation_is_covered():
    assert len(IMAGE) >= 20 and "pixelation" in IMAGE and "saturate" in IMAGE


@pytest.mark.parametrize("check_cls", [NaturalRobustness, CorruptionRobustness])
@pytest.mark.parametrize("name", _image_params())
def test_image_change_grows_with_severity_through_the_check(digits_rgb, check_cls, name):
    data, model = digits_rgb
    result, batches = _recorded(check_cls(perturbations=[name], severities=SEVERITIES), model, data, len(data),
                                classes=list(range(10)))
    assert result.status.value != "ERROR", result.message
    assert len(batches) == 1 + len(SEVERITIES)
    change = [float(np.abs(b - batches[0]).mean()) for b in batches[1:]]
    assert change[-1] > 0, f"{name} changed nothing at severity 5"
    assert _non_decreasing(change), (name, np.round(change, 5).tolist())


@pytest.mark.parametrize("check_cls", [NaturalRobustness, CorruptionRobustness])
def test_saturate_is_monotone_within_each_of_its_two_directions(digits_rgb, check_cls):
    data, model = digits_rgb
    _, batches = _recorded(check_cls(perturbations=["saturate"], severities=SEVERITIES), model, data, len(data),
                           classes=list(range(10)))
    assert len(batches) == 6
    change = [float(np.abs(b - batches[0]).mean()) for b in batches[1:]]
    assert _non_decreasing(change[:2]) and _non_decreasing(change[2:]), change

