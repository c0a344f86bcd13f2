"""TabularSearch: every returned row is valid data under the schema; exact reach on known models."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier

from stalwart.attacks import ATTACKS, ThreatModel
from stalwart.attacks.tabular import TabularSearch
from stalwart.data import Schema
from stalwart.data.schema import Column
from stalwart.errors import ConfigError, InputError
from stalwart.models import wrap
from stalwart.models.function import FunctionModel

REGIONS = (0, 1, 2, 7)  # categorical codes, deliberately not 0..k-1


@lru_cache(maxsize=1)
def mixed_forest() -> tuple[RandomForestClassifier, Schema, np.ndarray, np.ndarray]:
    """A random forest on numeric, integer, boolean, categorical-code and immutable columns."""
    rng = np.random.default_rng(0)
    n = 460
    df = pd.DataFrame({
        "income": rng.uniform(0, 100, n),
        "visits": rng.integers(0, 21, n),
        "member": rng.random(n) < 0.5,
        "region": rng.choice(REGIONS, n),
        "age": rng.integers(18, 91, n),
    })
    score = (df.income / 25 + df.visits / 5 + 1.5 * df.member + np.where(df.region == 7, 1.5, 0)
             + (df.age - 50) / 20)
    y = (score + rng.normal(0, 0.3, n) > np.median(score)).astype(int).to_numpy()
    schema = Schema.infer(df, kinds={"region": "categorical"}, immutable=["age"],
                          bounds={"income": (0.0, 100.0), "visits": (0, 20), "age": (18, 90)})
    x = df.to_numpy(dtype=np.float64)
    forest = RandomForestClassifier(n_estimators=30, max_depth=6, random_state=0).fit(x[:400], y[:400])
    return forest, schema, x[400:], y[400:]


def threshold_model(column: int, cut: float) -> FunctionModel:
    """Predicts 1 exactly when x[:, column] >= cut (a labels-only black box)."""
    return FunctionModel(lambda x: (np.asarray(x)[:, column] >= cut).astype(int), classes=[0, 1])


# -- validity and strength on a tree ensemble -----------------------------------------------------
def test_every_returned_row_satisfies_every_schema_constraint_exactly() -> None:
    forest, schema, x, y = mixed_forest()
    eps = 0.3
    attack = TabularSearch(ThreatModel("linf", eps, bounds=None, unit="range"), schema=schema, queries=200,
                           max_discrete_changes=1)
    res = attack.run(forest, x, y)
    a, x32 = res.x_adv, x.astype(np.float32)
    assert res.clean_accuracy >= 0.85
    assert res.robust_accuracy <= 0.4  # a majority of the correctly classified rows is broken
    assert res.attack_success_rate >= 0.6
    # ranges, integers, booleans, codes, immutables: exactly
    assert a[:, 0].min() >= 0.0 and a[:, 0].max() <= 100.0
    assert np.array_equal(a[:, 1], np.round(a[:, 1])) and a[:, 1].min() >= 0 and a[:, 1].max() <= 20
    assert set(np.unique(a[:, 2])) <= {0.0, 1.0}
    assert set(np.unique(a[:, 3])) <= set(map(float, REGIONS))
    np.testing.assert_array_equal(a[:, 4], x32[:, 4])
    # eps is a fraction of each continuous column's range (100 for income, 20 for visits)
    moved = np.abs(a.astype(np.float64) - x32)
    assert moved[:, 0].max() <= eps * 100.0 and moved[:, 1].max() <= eps * 20.0
    np.testing.assert_allclose(res.distance, np.maximum(moved[:, 0] / 100.0, moved[:, 1] / 20.0))
    # at most one discrete column changed per row, and the search did use that freedom
    discrete_changes = (a[:, 2:4] != x32[:, 2:4]).sum(axis=1)
    assert discrete_changes.max() <= 1 and discrete_changes.sum() > 0
    np.testing.assert_array_equal(res.success, forest.predict(a) != y)


def test_discrete_columns_stay_fixed_by_default() -> None:
    forest, schema, x, y = mixed_forest()
    res = TabularSearch(ThreatModel("linf", 0.3, bounds=None, unit="range"), schema=schema, queries=100).run(forest, x, y)
    np.testing.assert_array_equal(res.x_adv[:, 2:], x[:, 2:].astype(np.float32))
    assert res.success[res.clean_correct].any()


def test_threat_mask_and_bounds_narrow_the_schema() -> None:
    forest, schema, x, y = mixed_forest()
    lo, hi = schema.numeric_bounds()
    hi = hi.copy()
    hi[0] = 60.0  # income may not exceed 60 ...
    x = x[x[:, 0] <= 60]
    mutable = np.array([True, False, True, True, True])  # ... and visits may not move
    threat = ThreatModel("linf", 0.3, bounds=(lo, hi), mutable=mutable, unit="range")
    res = TabularSearch(threat, schema=schema, queries=60).run(forest, x, forest.predict(x))
    assert res.success.any()
    assert res.x_adv[:, 0].max() <= 60.0
    np.testing.assert_array_equal(res.x_adv[:, 1], x[:, 1].astype(np.float32))


# -- exact reach on models with a known answer ----------------------------------------------------
@pytest.mark.parametrize("eps,reachable", [(0.1, True), (0.05, False), (0.099, False)])
def test_integer_reach_matches_the_closed_form(eps: float, reachable: bool) -> None:
    """visits = 10 in range [0, 20]: eps allows +-20 * eps whole steps; the model flips at 12."""
    schema = Schema("tabular", (Column("income", "numeric", 0.0, 100.0), Column("visits", "integer", 0.0, 20.0)))
    x = np.array([[50.0, 10.0]])
    res = TabularSearch(ThreatModel("linf", eps, bounds=None, unit="range"), schema=schema, queries=100).run(
        threshold_model(1, 12.0), x, [0])
    assert bool(res.success[0]) is reachable
    if reachable:
        assert res.x_adv[0, 1] == 12.0  # the only whole number within reach at or above the cut


def test_categorical_reach_needs_a_discrete_change() -> None:
    schema = Schema("tabular", (Column("income", "numeric", 0.0, 100.0),
                                Column("region", "categorical", categories=REGIONS)))
    model = threshold_model(1, 7.0)  # flips only for region code 7
    x = np.array([[50.0, 1.0], [20.0, 2.0]])
    fixed = TabularSearch(ThreatModel("linf", 1.0, bounds=None, unit="range"), schema=schema, queries=50).run(model, x, [0, 0])
    assert not fixed.success.any()
    free = TabularSearch(ThreatModel("linf", 0.01, bounds=None, unit="range"), schema=schema, queries=50,
                         max_discrete_changes=1).run(model, x, [0, 0])
    assert free.success.all()
    np.testing.assert_array_equal(free.x_adv[:, 1], [7.0, 7.0])


# -- queries and determinism ----------------------------------------------------------------------
def test_query_budget_and_exact_counts() -> None:
    forest, schema, x, y = mixed_forest()
    model = wrap(forest)
    res = TabularSearch(ThreatModel("linf", 0.02, bounds=None, unit="range"), schema=schema, queries=25).run(model, x, y)
    assert res.queries.max() <= 26
    assert res.queries.sum() + len(x) == model.n_queries
    standing = res.clean_correct & ~res.success
    assert standing.any() and (res.queries[standing] == 26).all()


def test_same_seed_same_result() -> None:
    forest, schema, x, y = mixed_forest()
    threat = ThreatModel("linf", 0.1, bounds=None, unit="range")
    a = TabularSearch(threat, schema=schema, queries=40, max_discrete_changes=1, seed=5).run(forest, x, y)
    b = TabularSearch(threat, schema=schema, queries=40, max_discrete_changes=1, seed=5).run(forest, x, y)
    c = TabularSearch(threat, schema=schema, queries=40, max_discrete_changes=1, seed=6).run(forest, x, y)
    np.testing.assert_array_equal(a.x_adv, b.x_adv)
    assert not np.array_equal(a.x_adv, c.x_adv)


# -- registration and validation ------------------------------------------------------------------
def test_registered_and_reports_its_units() -> None:
    forest, schema, _, _ = mixed_forest()
    attack = TabularSearch(ThreatModel("linf", 0.1, bounds=None, unit="range"), schema=schema)
    assert ATTACKS.get("tabular-search") is TabularSearch
    assert not TabularSearch.white_box
    assert attack.schema is schema and "schema" not in attack.params()
    d = attack.threat.to_dict()
    assert d["eps_unit"] == "fraction of each feature's range" and d["immutable_features"] == 1


def test_rejects_bad_configuration() -> None:
    _, schema, _, _ = mixed_forest()
    with pytest.raises(ConfigError, match=r"TabularSearch\(threat=...\) must be a ThreatModel with norm 'linf'"):
        TabularSearch(ThreatModel("l2", 0.1), schema=schema)
    with pytest.raises(ConfigError, match=r"TabularSearch\(schema=...\) must be a tabular stalwart.data.Schema"):
        TabularSearch(ThreatModel("linf", 0.1, unit="range"), schema=Schema("image", value_range=(0.0, 1.0)))
    with pytest.raises(ConfigError, match=r"TabularSearch\(max_discrete_changes=...\) must be an integer >= 0"):
        TabularSearch(ThreatModel("linf", 0.1, bounds=None, unit="range"), schema=schema, max_discrete_changes=-1)
    words = Schema("tabular", (Column("colour", "categorical", categories=("red", "blue")),))
    with pytest.raises(ConfigError, match=r"categorical column 'colour' encoded as numeric codes"):
        TabularSearch(ThreatModel("linf", 0.1, bounds=None, unit="range"), schema=words)
    open_ended = Schema("tabular", (Column("amount", "numeric", 0.0, None),))
    with pytest.raises(ConfigError, match=r"finite range for numeric column 'amount'"):
        TabularSearch(ThreatModel("linf", 0.1, bounds=None, unit="range"), schema=open_ended)
    with pytest.raises(ConfigError, match=r"bounds that overlap the schema's ranges .* columns \['income'"):
        TabularSearch(ThreatModel("linf", 0.1, bounds=(200.0, 300.0), unit="range"), schema=schema)


def test_rejects_rows_that_violate_the_schema() -> None:
    forest, schema, x, y = mixed_forest()
    attack = TabularSearch(ThreatModel("linf", 0.1, bounds=None, unit="range"), schema=schema, queries=5)
    bad = x[:3].copy()
    bad[1, 1] = 2.5
    with pytest.raises(InputError, match=r"integer column 'visits': 1 row\(s\) \(first rows \[1\]"):
        attack.run(forest, bad, y[:3])
    bad = x[:3].copy()
    bad[2, 3] = 3.0
    with pytest.raises(InputError, match=r"categorical column 'region'.* not one of the codes \[0.0, 1.0, 2.0, 7.0\]"):
        attack.run(forest, bad, y[:3])
    with pytest.raises(InputError, match=r"x has 4 columns but the schema describes 5"):
        attack.run(forest, x[:3, :4], y[:3])
