"""Tabular faults and rare events: the shared contract, and closed-form checks per perturbation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stalwart import perturb
from stalwart.data.schema import Schema
from stalwart.errors import ConfigError, InputError
from stalwart.perturb.tabular import (
    CategorySwapFrequency,
    ColumnSwap,
    MissingNotAtRandom,
    RareEvent,
    StuckSensor,
    UnitScale,
)

NEW = ["missing_not_at_random", "category_swap_frequency", "unit_scale", "stuck_sensor", "column_swap",
       "rare_event"]
DETERMINISTIC: set[str] = set()
UNCLIPPED = {"unit_scale", "column_swap"}  # faults that leave the range on purpose
MISSING = {"missing_not_at_random"}


def mixed(n: int = 400, seed: int = 0) -> tuple[pd.DataFrame, Schema]:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "income": rng.lognormal(10.0, 0.5, n),
        "score": rng.normal(0.0, 1.0, n).astype(np.float32),
        "score2": rng.normal(0.2, 1.1, n),
        "visits": rng.integers(0, 40, n),
        "member": rng.random(n) < 0.5,
        "city": pd.Series(rng.choice(["paris", "rome", "oslo", "kyiv"], n, p=[0.55, 0.25, 0.15, 0.05])),
        "plan": pd.Categorical(rng.choice(["free", "pro"], n)),
        "age": rng.integers(18, 90, n),
        "region": pd.Series(rng.choice(["n", "s"], n)),
    })
    schema = Schema.infer(df, immutable=["age", "region"], bounds={"score": (-1.5, 1.5), "visits": (0.5, 30.5)})
    return df, schema


def change(x: pd.DataFrame, out: pd.DataFrame) -> float:
    """Mean per-cell change: |diff| / std for numbers, 1 for a new value or a new NaN."""
    cells = []
    for col in x.columns:
        b, a = x[col], out[col]
        new_nan = a.isna().to_numpy() & ~b.isna().to_numpy()
        if pd.api.types.is_numeric_dtype(b) and not pd.api.types.is_bool_dtype(b):
            d = np.abs(np.nan_to_num(a.to_numpy(dtype=float) - b.to_numpy(dtype=float))) / (b.std() or 1.0)
            cells.append(np.where(new_nan, 1.0, d))
        else:
            cells.append((b.astype(object).to_numpy() != a.astype(object).to_numpy()).astype(float))
    return float(np.mean(cells))


# -- shared contract --------------------------------------------------------------------------------------
def test_registered_as_tabular_perturbations():
    assert set(NEW) <= set(perturb.names("tabular"))


@pytest.mark.parametrize("name", NEW)
def test_attributes_repr_round_trip_and_keyword_only(name):
    p = perturb.get(name)
    cls = type(p)
    assert cls.name == name and cls.modality == "tabular"
    assert len(cls.description) > 10 and "severity" in cls.__doc__
    assert repr(cls(**p.params())) == repr(p)
    with pytest.raises(TypeError):
        cls(1)


@pytest.mark.parametrize("name", NEW)
def test_pure_deterministic_graded_and_type_preserving(name):
    df, schema = mixed()
    snapshot = df.copy()
    p = perturb.get(name)
    out = p.apply(df, 3, rng=11, schema=schema)
    pd.testing.assert_frame_equal(df, snapshot)
    pd.testing.assert_frame_equal(out, p.apply(df, 3, rng=np.random.default_rng(11), schema=schema))
    other = p.apply(df, 3, rng=12, schema=schema)
    assert out.equals(other) == (name in DETERMINISTIC)
    assert list(out.columns) == list(df.columns) and out.index.equals(df.index)
    if name not in MISSING:
        assert out.dtypes.to_dict() == df.dtypes.to_dict()
    sizes = [change(df, p.apply(df, s, rng=0, schema=schema)) for s in perturb.SEVERITIES]
    assert all(b >= a for a, b in zip(sizes, sizes[1:])) and sizes[-1] > sizes[0] > 0, sizes


@pytest.mark.parametrize("name", NEW)
@pytest.mark.parametrize("seed", [0, 1])
def test_schema_is_respected(name, seed):
    df, schema = mixed(seed=seed)
    p = perturb.get(name)
    for severity in perturb.SEVERITIES:
        out = p.apply(df, severity, rng=seed, schema=schema)
        for col in ("age", "region"):
            pd.testing.assert_series_equal(out[col], df[col])
        for col in schema.columns:
            s = out[col.name].dropna()
            if col.is_numeric:
                values = s.to_numpy(dtype=float)
                if col.kind == "integer":
                    assert np.array_equal(values, np.round(values))
                if name not in UNCLIPPED:
                    moved = s[s != df.loc[s.index, col.name]]
                    lower, upper = col.lower, col.upper
                    if col.kind == "integer":
                        lower, upper = np.ceil(lower), np.floor(upper)
                    assert moved.between(lower, upper).all(), (col.name, moved.min(), moved.max())
            else:
                cats = {False, True} if col.kind == "boolean" else set(col.categories)
                assert set(s.tolist()) <= cats
        if name not in MISSING:
            assert not out.isna().any().any()


@pytest.mark.parametrize("name", NEW)
def test_array_in_array_out_and_bad_severity(name):
    x = np.random.default_rng(0).normal(size=(60, 3))
    out = perturb.get(name).apply(x, 2, rng=0)
    assert isinstance(out, np.ndarray) and out.shape == x.shape
    with pytest.raises(ConfigError, match=r"severity=\.\.\.\) must be an integer 1\.\.5"):
        perturb.get(name).apply(x, 0)
    with pytest.raises(InputError, match="empty"):
        perturb.get(name).apply(pd.DataFrame({"a": []}), 1)


# -- missing not at random --------------------------------------------------------------------------------
@pytest.mark.parametrize(("severity", "q"), [(1, 0.05), (3, 0.2), (5, 0.5)])
@pytest.mark.parametrize("side", ["high", "low"])
def test_mnar_blanks_exactly_the_top_q_values(severity, q, side):
    df, schema = mixed()
    out = MissingNotAtRandom(side=side).apply(df, severity, schema=schema)
    for col in ("income", "score", "score2", "visits"):
        v = df[col].to_numpy(dtype=float)
        k = int(round(q * len(v)))
        ranked = np.sort(v)
        threshold = ranked[-k] if side == "high" else ranked[k - 1]
        expect = v >= threshold if side == "high" else v <= threshold
        blank = out[col].isna().to_numpy()
        if col != "visits":  # continuous: no ties at the threshold
            assert expect.sum() == k and np.array_equal(blank, expect)
        assert blank.sum() == k
        kept = out[col].dropna().to_numpy(dtype=float)
        assert (kept.max() <= v[blank].min()) if side == "high" else (kept.min() >= v[blank].max())
    for col in ("member", "city", "plan", "age", "region"):
        pd.testing.assert_series_equal(out[col], df[col])
    assert out["visits"].dtype == np.float64


def test_mnar_breaks_ties_at_random_and_columns_param():
    df = pd.DataFrame({"a": [5.0, 9.0, 9.0, 9.0, 1.0, np.nan, 2.0, 3.0, 4.0, 0.0, 8.0], "b": np.arange(11.0)})
    picks = set()
    for seed in range(30):
        out = MissingNotAtRandom(columns=["a"]).apply(df, 3, rng=seed)  # q = 0.2 of 10 finite cells: 2
        blank = out["a"].isna().to_numpy().copy()
        blank[5] = False  # already missing
        picks.add(tuple(np.flatnonzero(blank)))
        pd.testing.assert_series_equal(out["b"], df["b"])
    assert picks == {(1, 2), (1, 3), (2, 3)}  # two of the three 9s, each pair seen


def test_mnar_bad_parameters():
    df, schema = mixed()
    with pytest.raises(ConfigError, match=r"MissingNotAtRandom\(side=\.\.\.\) must be one of \['high', 'low'\]"):
        MissingNotAtRandom(side="top")
    with pytest.raises(ConfigError, match=r"MissingNotAtRandom\(columns=\.\.\.\) must be None"):
        MissingNotAtRandom(columns="income")
    with pytest.raises(InputError, match="unknown column 'nope'"):
        MissingNotAtRandom(columns=["nope"]).apply(df, 1, schema=schema)
    with pytest.raises(InputError, match="'age', which the schema marks immutable"):
        MissingNotAtRandom(columns=["age"]).apply(df, 1, schema=schema)
    with pytest.raises(InputError, match="'city', a categorical column"):
        MissingNotAtRandom(columns=["city"]).apply(df, 1, schema=schema)


# -- category swap by frequency ------------------------------------------------------------------------------
def test_category_swap_frequency_draws_other_categories_by_frequency():
    n = 20000
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"c": rng.choice(["a", "b", "c"], n, p=[0.7, 0.2, 0.1])})
    out = CategorySwapFrequency().apply(df, 5, rng=2)
    before, after = df["c"].to_numpy(), out["c"].to_numpy()
    swapped = before != after
    rate = 0.5
    assert abs(swapped.mean() - rate) < 4 * np.sqrt(rate * (1 - rate) / n)
    freq = pd.Series(before).value_counts(normalize=True)
    for cat in ("a", "b", "c"):
        new = after[swapped & (before == cat)]
        others = [o for o in ("a", "b", "c") if o != cat]
        expected = freq[others[0]] / (freq[others[0]] + freq[others[1]])
        share = np.mean(new == others[0])
        assert abs(share - expected) < 4 * np.sqrt(expected * (1 - expected) / len(new)) + 1e-9, (cat, share)


def test_category_swap_frequency_falls_back_to_uniform_when_others_never_occur():
    df = pd.DataFrame({"c": pd.Categorical(["x"] * 4000, categories=["x", "y", "z"])})
    schema = Schema.infer(df)
    # the schema lists only the observed categories; widen it by hand
    from dataclasses import replace

    schema = replace(schema, columns=(replace(schema.columns[0], categories=("x", "y", "z")),))
    out = CategorySwapFrequency().apply(df, 5, rng=0, schema=schema)["c"].astype(str)
    swapped = out[out != "x"]
    assert abs(len(swapped) / 4000 - 0.5) < 0.04
    assert abs((swapped == "y").mean() - 0.5) < 0.05


# -- unit scale ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("factor", [10.0, 1000.0, 0.01])
def test_unit_scale_multiplies_picked_rows_by_exactly_the_factor(factor):
    df, schema = mixed()
    out = UnitScale(factor=factor, columns=["income", "score2"]).apply(df, 4, rng=0, schema=schema)
    for col in ("income", "score2"):
        a, b = df[col].to_numpy(), out[col].to_numpy()
        picked = a != b
        assert np.array_equal(b[picked], a[picked] * factor)
        assert abs(picked.mean() - 0.2) < 4 * np.sqrt(0.2 * 0.8 / len(a))
    pd.testing.assert_frame_equal(out.drop(columns=["income", "score2"]), df.drop(columns=["income", "score2"]))


def test_unit_scale_leaves_the_range_and_keeps_integers():
    df, schema = mixed()
    out = UnitScale(factor=1000.0).apply(df, 5, rng=0, schema=schema)
    assert out["visits"].dtype == df["visits"].dtype
    picked = out["visits"] != df["visits"]
    assert np.array_equal(out["visits"][picked], df["visits"][picked] * 1000)
    assert out["income"].max() > schema.column("income").upper  # not clipped: a unit fault
    factors = set()
    for seed in range(10):
        o = UnitScale().apply(df, 5, rng=seed, schema=schema)
        m = o["income"] != df["income"]
        factors |= set(np.round(o["income"][m] / df["income"][m], 6).tolist())
    assert factors == {10.0, 1000.0, 0.01}


@pytest.mark.parametrize("bad", [0, -10, 1, float("nan"), True, "10"])
def test_unit_scale_bad_factor(bad):
    with pytest.raises(ConfigError, match=r"UnitScale\(factor=\.\.\.\) must be None"):
        UnitScale(factor=bad)


# -- stuck sensor ---------------------------------------------------------------------------------------------
def test_stuck_sensor_freezes_one_contiguous_block_per_column():
    n = 500
    df = pd.DataFrame({"t": np.linspace(0.0, 1.0, n), "u": np.sin(np.arange(n) / 7.0)})  # no repeats
    blocks = {}
    for severity, share in zip(perturb.SEVERITIES, (0.05, 0.1, 0.2, 0.35, 0.5)):
        out = StuckSensor().apply(df, severity, rng=4)
        length = round(share * n)
        for col in ("t", "u"):
            v, orig = out[col].to_numpy(), df[col].to_numpy()
            diff = np.flatnonzero(v != orig)
            stuck = np.unique(v[diff])
            assert stuck.size == 1  # one constant
            r = int(np.flatnonzero(orig == stuck[0])[0])  # the row whose reading froze
            s0, s1 = StuckSensor.block(n, r, length)
            assert s1 - s0 == length and s0 <= r < s1
            assert set(diff.tolist()) == set(range(s0, s1)) - {r}  # exactly the block, contiguous
            blocks.setdefault(col, []).append((s0, s1))
    for spans in blocks.values():  # one seed: each block contains the previous one
        assert all(a0 >= b0 and a1 <= b1 for (a0, a1), (b0, b1) in zip(spans, spans[1:]))


def test_stuck_sensor_block_helper_stays_inside():
    assert StuckSensor.block(100, 0, 10) == (0, 10)
    assert StuckSensor.block(100, 99, 10) == (90, 100)
    assert StuckSensor.block(100, 50, 10) == (45, 55)
    assert StuckSensor.block(100, 50, 1) == (50, 51)


# -- column swap -----------------------------------------------------------------------------------------------
def test_column_swap_picks_the_most_compatible_pair_and_swaps_exactly():
    df, schema = mixed()
    out = ColumnSwap().apply(df, 5, rng=0, schema=schema)
    a, b = df["score"].to_numpy(dtype=float), df["score2"].to_numpy()
    a2, b2 = out["score"].to_numpy(dtype=float), out["score2"].to_numpy()
    swapped = b2 != b
    assert abs(swapped.mean() - 0.5) < 4 * np.sqrt(0.25 / len(b))
    assert np.array_equal(b2[swapped], a[swapped])  # float32 -> float64 is exact
    np.testing.assert_allclose(a2[swapped], b[swapped].astype(np.float32), rtol=0)
    assert np.array_equal(a2[~swapped], a[~swapped]) and np.array_equal(b2[~swapped], b[~swapped])
    untouched = ["income", "visits", "member", "city", "plan", "age", "region"]
    pd.testing.assert_frame_equal(out[untouched], df[untouched])
    assert out["score"].max() > schema.column("score").upper  # the destination range is not enforced


def test_column_swap_named_pair_and_no_pair():
    df = pd.DataFrame({"a": np.arange(10.0) * 3, "b": np.arange(10.0) + 100, "k": np.arange(10)})
    out = ColumnSwap(columns=["a", "k"]).apply(df, 5, rng=0)
    swapped = out["k"].to_numpy() != df["k"].to_numpy()
    assert swapped.any() and out["k"].dtype == df["k"].dtype
    assert np.array_equal(out["a"].to_numpy()[swapped], df["k"].to_numpy()[swapped].astype(float))
    lone = pd.DataFrame({"a": np.arange(10.0), "k": np.arange(10)})  # different kinds: no pair
    pd.testing.assert_frame_equal(ColumnSwap().apply(lone, 5, rng=0), lone)
    with pytest.raises(ConfigError, match=r"ColumnSwap\(columns=\.\.\.\) must be None or a list of exactly 2"):
        ColumnSwap(columns=["a"])


def test_column_swap_pair_choice():
    rng = np.random.default_rng(0)
    v = np.column_stack([rng.normal(0, 1, 200), rng.normal(50, 1, 200), rng.normal(0.1, 1.2, 200)])
    assert ColumnSwap.pick_pair(v, ["numeric"] * 3) == (0, 2)
    assert ColumnSwap.pick_pair(v, ["numeric", "numeric", "integer"]) == (0, 1)
    assert ColumnSwap.pick_pair(v, ["numeric", "integer", "boolean"]) is None


# -- rare event --------------------------------------------------------------------------------------------------
def test_rare_event_rows_are_convex_mixes_of_segment_rows():
    df, schema = mixed()
    p = RareEvent(segment=0.1)
    seg = p.segment_rows(df, schema)
    assert len(seg) == 40
    out = p.apply(df, 4, rng=0, schema=schema)
    assert len(out) == len(df) and out.index.equals(df.index)
    replaced = np.flatnonzero((out != df).any(axis=1).to_numpy())
    assert not set(replaced) & set(seg)
    outside = len(df) - len(seg)
    assert abs(len(replaced) / outside - 0.3) < 4 * np.sqrt(0.3 * 0.7 / outside)
    for col in ("income", "score2"):  # unclipped numeric columns: inside the segment's hull
        lo, hi = df[col].iloc[seg].min(), df[col].iloc[seg].max()
        assert out[col].iloc[replaced].between(lo, hi).all()
    for col in ("city", "plan", "member"):  # categories come from segment rows
        assert set(out[col].iloc[replaced]) <= set(df[col].iloc[seg])
    pd.testing.assert_frame_equal(out[["age", "region"]], df[["age", "region"]])


def test_rare_event_segment_by_category_and_by_numeric_column():
    df, schema = mixed()
    rarest = df["city"].value_counts().idxmin()
    p = RareEvent(column="city")
    seg = p.segment_rows(df, schema)
    assert np.array_equal(seg, np.flatnonzero(df["city"] == rarest))
    out = p.apply(df, 5, rng=0, schema=schema)
    assert (out["city"] == rarest).mean() > 0.5 * (1 - len(seg) / len(df))  # half the others became rare
    q = RareEvent(column="income", segment=0.05)
    seg = q.segment_rows(df, schema)
    z = np.abs(df["income"] - df["income"].median()) / df["income"].std(ddof=0)
    assert np.array_equal(seg, np.sort(np.argsort(-z.to_numpy(), kind="stable")[:20]))


def test_rare_event_bad_parameters():
    with pytest.raises(ConfigError, match=r"RareEvent\(segment=\.\.\.\) must be a number in \(0, 0\.5\]"):
        RareEvent(segment=0.9)
    with pytest.raises(ConfigError, match=r"RareEvent\(k_neighbors=\.\.\.\) must be an integer >= 1"):
        RareEvent(k_neighbors=0)
    df, schema = mixed()
    with pytest.raises(InputError, match="unknown column 'nope'"):
        RareEvent(column="nope").apply(df, 1, schema=schema)
