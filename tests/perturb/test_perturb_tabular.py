"""Tabular perturbations: the schema is respected, and each one does what its table says."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stalwart import perturb
from stalwart.data.schema import Column, Schema
from stalwart.errors import ConfigError, InputError
from stalwart.perturb.tabular import CategorySwap, FeatureNoise, MissingValues, Outliers, Rounding

TABULAR = ["category_swap", "feature_noise", "missing_values", "outliers", "rounding"]


def mixed(n: int = 400, seed: int = 0) -> tuple[pd.DataFrame, Schema]:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "income": rng.lognormal(10.0, 0.5, n),
        "score": rng.normal(0.0, 1.0, n).astype(np.float32),
        "visits": rng.integers(0, 40, n),
        "member": rng.random(n) < 0.5,
        "city": pd.Series(rng.choice(["paris", "rome", "oslo", "kyiv"], n)),
        "plan": pd.Categorical(rng.choice(["free", "pro"], n)),
        "age": rng.integers(18, 90, n),
        "region": pd.Series(rng.choice(["n", "s"], n)),
    })
    # a range narrower than the data for score, fractional bounds for the integer column
    schema = Schema.infer(df, immutable=["age", "region"], bounds={"score": (-1.5, 1.5), "visits": (0.5, 30.5)})
    return df, schema


@pytest.mark.parametrize("name", TABULAR)
@pytest.mark.parametrize("seed", [0, 1])
def test_schema_is_respected_at_every_severity(name, seed):
    df, schema = mixed(seed=seed)
    p = perturb.get(name)
    for severity in perturb.SEVERITIES:
        out = p.apply(df, severity, rng=seed, schema=schema)
        for col in ("age", "region"):  # immutable
            pd.testing.assert_series_equal(out[col], df[col])
        for col in schema.columns:
            s = out[col.name].dropna()
            if col.is_numeric:
                lower, upper = col.lower, col.upper
                if col.kind == "integer":
                    lower, upper = np.ceil(lower), np.floor(upper)
                    assert np.array_equal(s.to_numpy(dtype=float), np.round(s.to_numpy(dtype=float)))
                # values already outside the range are clipped only where a perturbation touches them
                moved = s[s != df.loc[s.index, col.name]]
                assert moved.between(lower, upper).all(), (col.name, moved.min(), moved.max())
            else:
                cats = {False, True} if col.kind == "boolean" else set(col.categories)
                assert set(s.tolist()) <= cats
        if name != "missing_values":
            assert out.dtypes.to_dict() == df.dtypes.to_dict()
            assert not out.isna().any().any()


def test_numeric_array_in_array_out():
    x = np.random.default_rng(0).normal(size=(50, 3))
    out = perturb.get("feature_noise").apply(x, 2, rng=0)
    assert isinstance(out, np.ndarray) and out.shape == x.shape
    assert np.all(out.min(axis=0) >= x.min(axis=0)) and np.all(out.max(axis=0) <= x.max(axis=0))


def test_schema_column_missing_from_data_is_an_input_error():
    df, schema = mixed()
    with pytest.raises(InputError, match=r"columns \['income'\] of the schema are not in x"):
        perturb.get("feature_noise").apply(df.drop(columns="income"), 1, schema=schema)


def test_non_numeric_values_in_a_numeric_column_are_an_input_error():
    df = pd.DataFrame({"a": ["1.5", "oops", "2"]})
    schema = Schema("tabular", (Column("a", "numeric", 0.0, 3.0),))
    with pytest.raises(InputError, match="column 'a' is declared numeric.*declare it categorical"):
        perturb.get("rounding").apply(df, 3, schema=schema)


def test_columns_outside_the_schema_are_left_alone():
    df, _ = mixed()
    schema = Schema.infer(df[["income"]])
    out = perturb.get("missing_values").apply(df, 5, rng=0, schema=schema)
    pd.testing.assert_frame_equal(out.drop(columns="income"), df.drop(columns="income"))
    assert out["income"].isna().any()


# -- feature_noise --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("severity", [1, 3, 5])
def test_feature_noise_std_is_c_times_spread(severity):
    n = 20_000
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"a": rng.normal(5.0, 3.0, n), "b": rng.uniform(-1.0, 1.0, n)})
    schema = Schema.infer(df, bounds={"a": (-1e6, 1e6), "b": (-1e6, 1e6)})
    out = perturb.get("feature_noise").apply(df, severity, rng=2, schema=schema)
    c = FeatureNoise.levels[severity - 1]
    for col in ("a", "b"):
        noise = out[col] - df[col]
        expected = c * df[col].std(ddof=0)
        assert noise.std() == pytest.approx(expected, rel=0.03)  # sd of the sd estimate ~ 0.5 %
        assert abs(noise.mean()) < 4 * expected / np.sqrt(n)


def test_feature_noise_on_a_constant_column_uses_the_range():
    df = pd.DataFrame({"k": np.full(20_000, 5.0)})
    schema = Schema.infer(df, bounds={"k": (-1e3, 1e3)})
    out = perturb.get("feature_noise").apply(df, 1, rng=0, schema=schema)
    expected = 0.1 * 2e3 / np.sqrt(12.0)  # ~58, far from the bounds: no clipping
    assert (out["k"] - 5.0).std() == pytest.approx(expected, rel=0.03)
    # a constant column with no usable range cannot be scaled: it stays as it is
    same = perturb.get("feature_noise").apply(df, 5, rng=0)
    pd.testing.assert_frame_equal(same, df)


def test_feature_noise_fraction_of_rows():
    n = 10_000
    df = pd.DataFrame({"a": np.random.default_rng(0).normal(size=n)})
    out = FeatureNoise(fraction=0.25).apply(df, 3, rng=1, schema=Schema.infer(df, bounds={"a": (-50, 50)}))
    changed = (out["a"] != df["a"]).mean()
    assert abs(changed - 0.25) < 4 * np.sqrt(0.25 * 0.75 / n)


def test_feature_noise_integer_columns_round_and_keep_dtype():
    df = pd.DataFrame({"i": np.arange(1000) % 50, "j": pd.array(list(range(999)) + [None], dtype="Int64")})
    out = perturb.get("feature_noise").apply(df, 5, rng=0)
    assert out["i"].dtype == np.int64 and out["j"].dtype == "Int64"
    assert out["j"].isna().sum() == 1 and pd.isna(out["j"].iloc[-1])
    assert (out["i"] != df["i"]).mean() > 0.5  # c = 0.8 of spread ~14: most values move


@pytest.mark.parametrize("fraction", [0, -0.1, 1.5, True, "half", None])
def test_feature_noise_bad_fraction(fraction):
    with pytest.raises(ConfigError, match=r"FeatureNoise\(fraction=\.\.\.\) must be a number in \(0, 1\]"):
        FeatureNoise(fraction=fraction)


# -- missing_values ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("severity", [1, 4])
def test_missing_values_rate_within_binomial_tolerance(severity):
    df, schema = mixed(n=5000)
    out = MissingValues().apply(df, severity, rng=3, schema=schema)
    mutable = [c.name for c in schema.columns if c.mutable]
    rate = MissingValues.levels[severity - 1]
    cells = len(df) * len(mutable)
    observed = out[mutable].isna().to_numpy().mean()
    assert abs(observed - rate) < 4 * np.sqrt(rate * (1 - rate) / cells)
    assert not out[["age", "region"]].isna().any().any()
    # documented dtype changes: ints -> float64, bools -> object; others keep their dtype
    assert out["visits"].dtype == np.float64 and out["member"].dtype == object
    assert out["plan"].dtype == df["plan"].dtype and out["city"].dtype == df["city"].dtype
    kept = out["visits"].notna()
    assert np.array_equal(out.loc[kept, "visits"].to_numpy(), df.loc[kept, "visits"].to_numpy(dtype=float))


def test_missing_values_higher_severity_blanks_a_superset():
    df, schema = mixed()
    low = MissingValues().apply(df, 2, rng=5, schema=schema).isna().to_numpy()
    high = MissingValues().apply(df, 4, rng=5, schema=schema).isna().to_numpy()
    assert np.all(high[low]) and high.sum() > low.sum()


# -- category_swap ---------------------------------------------------------------------------------------------
def test_category_swap_changes_every_picked_cell_at_the_rate():
    n = 6000
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"c": pd.Series(rng.choice(["x", "y", "z"], n)), "b": rng.random(n) < 0.5})
    out = CategorySwap().apply(df, 3, rng=1)
    rate = CategorySwap.levels[2]
    for col in ("c", "b"):
        changed = (out[col] != df[col]).mean()
        # every picked cell changes (never to itself), so the change rate equals the pick rate
        assert abs(changed - rate) < 4 * np.sqrt(rate * (1 - rate) / n)
    # replacements are uniform over the other categories
    from_x = out.loc[(df["c"] == "x") & (out["c"] != "x"), "c"]
    share_y = (from_x == "y").mean()
    assert abs(share_y - 0.5) < 4 * np.sqrt(0.25 / len(from_x))


def test_category_swap_leaves_missing_cells_and_single_category_columns():
    df = pd.DataFrame({"c": pd.Series(["a", None, "b", None] * 50), "one": pd.Series(["k"] * 200)})
    out = CategorySwap().apply(df, 5, rng=0)
    assert out["c"].isna().sum() == 100 and out["c"].isna().equals(df["c"].isna())
    assert (out["one"] == "k").all()


def test_category_swap_maps_unseen_values_into_the_schema_categories():
    df = pd.DataFrame({"c": pd.Series(["a", "b", "zzz"] * 400)})
    schema = Schema("tabular", (Column("c", "categorical", categories=("a", "b")),))
    out = CategorySwap().apply(df, 5, rng=0, schema=schema)
    swapped_unseen = out.loc[(df["c"] == "zzz") & (out["c"] != "zzz"), "c"]
    assert len(swapped_unseen) > 0 and set(swapped_unseen) <= {"a", "b"}


def test_category_swap_with_integer_codes_and_categories_beyond_the_dtype():
    df = pd.DataFrame({"code": np.array([1, 2, 3] * 100), "cat": pd.Categorical(["u", "v"] * 150)})
    schema = Schema("tabular", (Column("code", "categorical", categories=(1, 2, 3)),
                                Column("cat", "categorical", categories=("u", "v", "w"))))
    out = CategorySwap().apply(df, 5, rng=0, schema=schema)
    assert out["code"].dtype == np.int64 and set(out["code"]) <= {1, 2, 3}
    assert set(out["cat"]) <= {"u", "v", "w"} and "w" in set(out["cat"])
    assert list(out["cat"].cat.categories) == ["u", "v", "w"]


# -- outliers ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("severity", [2, 5])
def test_outliers_land_beyond_the_quartile_fences(severity):
    n = 5000
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.normal(0.0, 1.0, n), "b": rng.exponential(2.0, n)})
    schema = Schema.infer(df, bounds={"a": (-1e9, 1e9), "b": (-1e9, 1e9)})
    out = Outliers().apply(df, severity, rng=1, schema=schema)
    fraction, k = Outliers.levels[severity - 1]
    rows = (out != df).any(axis=1)
    assert abs(rows.mean() - fraction) < 4 * np.sqrt(fraction * (1 - fraction) / n)
    assert (out[rows] != df[rows]).all().all()  # all numeric columns of a picked row (n_columns=None)
    for col in ("a", "b"):
        q1, q3 = np.quantile(df[col], [0.25, 0.75])
        iqr = q3 - q1
        new = out.loc[rows, col]
        above = new > q3
        assert np.all(new[above] >= q3 + k * iqr - 1e-9) and np.all(new[above] < q3 + 2 * k * iqr)
        assert np.all(new[~above] <= q1 - k * iqr + 1e-9) and np.all(new[~above] > q1 - 2 * k * iqr)
        assert 0.4 < above.mean() < 0.6


def test_outliers_are_bounded_by_the_schema_range():
    df, _ = mixed(n=2000)
    schema = Schema.infer(df)  # range = observed min..max
    out = Outliers().apply(df, 5, rng=0, schema=schema)
    moved = out["income"] != df["income"]
    assert moved.any()
    edges = {df["income"].min(), df["income"].max()}
    assert set(out.loc[moved, "income"]) <= edges


def test_outliers_n_columns_limits_cells_per_row():
    df = pd.DataFrame(np.random.default_rng(0).normal(size=(3000, 4)), columns=list("abcd"))
    schema = Schema.infer(df, bounds={c: (-100, 100) for c in "abcd"})
    out = Outliers(n_columns=1).apply(df, 5, rng=0, schema=schema)
    per_row = (out != df).sum(axis=1)
    assert set(per_row) == {0, 1}
    assert abs((per_row == 1).mean() - 0.2) < 0.04
    # each column is picked about equally often
    assert ((out != df).sum(axis=0) / (per_row == 1).sum()).between(0.15, 0.35).all()


def test_outliers_ignore_missing_cells_and_zero_iqr_columns_fall_back_to_std():
    a = np.zeros(4000)
    a[:400] = np.random.default_rng(0).normal(size=400)  # IQR 0, std > 0
    df = pd.DataFrame({"a": a, "m": np.where(np.arange(4000) % 2, np.nan, 1.0)})
    schema = Schema.infer(df, bounds={"a": (-1e3, 1e3), "m": (-1e3, 1e3)})
    out = Outliers().apply(df, 5, rng=0, schema=schema)
    assert out["m"].isna().equals(df["m"].isna())
    moved = out["a"] != df["a"]
    spread = 1.349 * df["a"].std(ddof=0)
    assert moved.any() and np.all(np.abs(out.loc[moved, "a"]) >= 6 * spread - 1e-9)


@pytest.mark.parametrize("n_columns", [0, -1, 1.5, True, "all"])
def test_outliers_bad_n_columns(n_columns):
    with pytest.raises(ConfigError, match=r"Outliers\(n_columns=\.\.\.\) must be an integer >= 1 or None"):
        Outliers(n_columns=n_columns)


# -- rounding ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("severity", "step"), [(1, 0.1), (2, 0.2), (3, 0.5), (4, 1.0), (5, 2.0)])
def test_rounding_step_is_a_nice_multiple_of_the_spread(severity, step):
    z = np.random.default_rng(0).normal(size=1000)
    df = pd.DataFrame({"a": 2.0 * (z - z.mean()) / z.std() + 7.3})  # std exactly 2
    out = Rounding().apply(df, severity, schema=Schema.infer(df, bounds={"a": (-100, 100)}))
    ratio = out["a"].to_numpy() / step
    assert np.allclose(ratio, np.round(ratio), atol=1e-9)
    assert np.all(np.abs(out["a"] - df["a"]) <= step / 2 + 1e-9)
    assert not np.any(np.signbit(out["a"].to_numpy()) & (out["a"].to_numpy() == 0))  # no -0.0


def test_rounding_integer_columns_need_a_step_of_two_to_change():
    df = pd.DataFrame({"i": np.arange(-50, 50)})  # std ~ 28.9
    schema = Schema.infer(df, bounds={"i": (-1000, 1000)})
    mild = Rounding().apply(df, 1, schema=schema)  # step nice(0.05 * 28.9) = 1
    pd.testing.assert_frame_equal(mild, df)
    strong = Rounding().apply(df, 5, schema=schema)  # step nice(28.9) = 20
    assert strong["i"].dtype == np.int64 and set(strong["i"] % 20) == {0}
