"""Schema.infer: kinds from dtypes, overrides, immutables, bounds and the errors for bad names."""

import numpy as np
import pandas as pd
import pytest

from stalwart.data import Column, Schema
from stalwart.errors import ConfigError, InputError


@pytest.fixture
def frame():
    return pd.DataFrame({
        "age": np.array([25, 40, 61, 33], dtype=np.int64),
        "income": [1200.5, -30.0, 8800.25, 410.0],
        "smoker": [True, False, False, True],
        "city": ["Oslo", "Lima", "Oslo", "Pune"],
        "grade": pd.Categorical(["b", "a", "c", "a"]),
    })


def test_infer_kinds_ranges_and_categories(frame):
    schema = Schema.infer(frame)
    assert schema.modality == "tabular"
    assert schema.names == ["age", "income", "smoker", "city", "grade"]
    assert [c.kind for c in schema.columns] == ["integer", "numeric", "boolean", "categorical", "categorical"]
    age, income = schema.column("age"), schema.column("income")
    assert (age.lower, age.upper) == (25.0, 61.0)
    assert (income.lower, income.upper) == (-30.0, 8800.25)
    assert schema.column("city").categories == ("Lima", "Oslo", "Pune")
    assert schema.column("grade").categories == ("a", "b", "c")
    assert schema.column("smoker").categories == (False, True)
    assert schema.mutable_mask.tolist() == [True] * 5


def test_numpy_input_gets_positional_names():
    schema = Schema.infer(np.array([[1.0, 5.0], [3.0, -2.0]]))
    assert schema.names == ["x0", "x1"]
    lo, hi = schema.numeric_bounds()
    np.testing.assert_array_equal(lo, [1.0, -2.0])
    np.testing.assert_array_equal(hi, [3.0, 5.0])


def test_overrides_immutable_and_bounds(frame):
    schema = Schema.infer(frame, kinds={"age": "categorical", "income": "integer"},
                          immutable=["age", "city"], bounds={"income": (0, 10_000)})
    assert schema.column("age").kind == "categorical"
    assert schema.column("age").categories == (25, 33, 40, 61)
    income = schema.column("income")
    assert (income.kind, income.lower, income.upper) == ("integer", 0.0, 10_000.0)
    assert schema.mutable_mask.tolist() == [False, True, True, False, True]
    lo, hi = schema.numeric_bounds()
    # categorical columns are unbounded; the boolean column is bounded by its 0/1 form
    np.testing.assert_array_equal(lo, [-np.inf, 0.0, 0.0, -np.inf, -np.inf])
    np.testing.assert_array_equal(hi, [np.inf, 10_000.0, 1.0, np.inf, np.inf])


def test_integer_categories_sort_numerically():
    schema = Schema.infer(pd.DataFrame({"k": [10, 2, 1, 2]}), kinds={"k": "categorical"})
    assert schema.column("k").categories == (1, 2, 10)


def test_with_immutable_and_to_dict(frame):
    schema = Schema.infer(frame).with_immutable(["income"])
    assert schema.column("income").mutable is False
    d = schema.to_dict()
    assert d["modality"] == "tabular"
    assert d["columns"][0] == {"name": "age", "kind": "integer", "mutable": True, "lower": 25.0, "upper": 61.0}
    assert d["columns"][2]["categories"] == [False, True]
    with pytest.raises(InputError, match=r"unknown column 'nope'.*'age'"):
        schema.with_immutable(["nope"])


@pytest.mark.parametrize("arg", ["kinds", "immutable", "bounds"])
def test_unknown_column_names_the_argument(frame, arg):
    value = {"kinds": {"salary": "numeric"}, "immutable": ["salary"], "bounds": {"salary": (0, 1)}}[arg]
    with pytest.raises(InputError, match=rf"{arg} names unknown column\(s\) \['salary'\]; the data has columns"):
        Schema.infer(frame, **{arg: value})


def test_bad_kind_and_bad_bounds(frame):
    with pytest.raises(ConfigError, match=r"kinds\['age'\] must be one of .*'numeric'.*got 'float'"):
        Schema.infer(frame, kinds={"age": "float"})
    with pytest.raises(ConfigError, match=r"bounds\['income'\] must satisfy lower <= upper"):
        Schema.infer(frame, bounds={"income": (5, 1)})
    with pytest.raises(ConfigError, match=r"bounds\['income'\] must be a pair of numbers"):
        Schema.infer(frame, bounds={"income": (0, 1, 2)})
    with pytest.raises(ConfigError, match=r"bounds\['city'\] is set but column 'city' is categorical"):
        Schema.infer(frame, bounds={"city": (0, 1)})


def test_duplicate_columns_and_bad_modality():
    df = pd.DataFrame([[1, 2]], columns=["a", "a"])
    with pytest.raises(InputError, match=r"column names must be unique; \['a'\]"):
        Schema.infer(df)
    with pytest.raises(ConfigError, match=r"Schema\(modality=...\) must be one of .*got 'audio'"):
        Schema("audio")
    with pytest.raises(InputError, match=r"tabular data must be 2-D .*got shape \(3,\)"):
        Schema.infer(np.zeros(3))


def test_column_to_dict_plain_values():
    col = Column("c", "categorical", categories=(np.int64(1), np.int64(2)))
    assert col.to_dict() == {"name": "c", "kind": "categorical", "mutable": True, "categories": [1, 2]}
    assert type(col.to_dict()["categories"][0]) is int
