"""`stalwart scan --sensitive`: per-group metrics and robustness join the suite."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.tree import DecisionTreeClassifier
from skops.io import dump
from typer.testing import CliRunner

from stalwart.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("groups")
    rng = np.random.default_rng(2)
    n = 1200
    grp = rng.choice([0, 1], size=n)
    x1 = np.where(grp == 1, rng.normal(0, 0.15, n), rng.normal(0, 1.5, n))
    x = pd.DataFrame({"x1": x1, "x2": rng.normal(size=n), "grp": grp})
    y = (x1 > 0).astype(int)
    dump(DecisionTreeClassifier(max_depth=3, random_state=0).fit(x[:800], y[:800]), d / "tree.skops")
    x[800:].assign(label=y[800:]).to_csv(d / "test.csv", index=False)
    return d


def test_scan_with_sensitive_columns_reports_groups(files):
    out = files / "rep"
    res = runner.invoke(app, ["scan", str(files / "tree.skops"), str(files / "test.csv"), "--target", "label",
                              "--sensitive", "grp", "--out", str(out)])
    assert res.exit_code in (0, 1), res.output
    report = json.loads((out / "report.json").read_text())
    by_name = {r["check"]: r for r in report["results"]}
    assert {"group_metrics", "group_robustness"} <= set(by_name)
    assert by_name["group_robustness"]["metrics"]["accuracy_drop_gap"]["value"] > 0.1


def test_an_unknown_sensitive_column_is_refused(files):
    res = runner.invoke(app, ["scan", str(files / "tree.skops"), str(files / "test.csv"), "--target", "label",
                              "--sensitive", "sex", "--out", str(files / "never")])
    assert res.exit_code == 2, res.output
    assert "sex" in res.output and "Traceback" not in res.output and not (files / "never").exists()


def test_a_sensitive_column_the_model_does_not_take_stays_beside_the_data(files, tmp_path):
    """The model is fitted without the group column; the scan moves it out of the inputs and the
    group checks still read it."""
    data = pd.read_csv(files / "test.csv")
    model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(data[["x1", "x2"]], data["label"])
    dump(model, tmp_path / "nogrp.skops")
    out = tmp_path / "rep"
    res = runner.invoke(app, ["scan", str(tmp_path / "nogrp.skops"), str(files / "test.csv"), "--target", "label",
                              "--sensitive", "grp", "--out", str(out)])
    assert res.exit_code in (0, 1), res.output
    report = json.loads((out / "report.json").read_text())
    by_name = {r["check"]: r for r in report["results"]}
    assert by_name["group_metrics"]["status"] != "ERROR" and by_name["natural_robustness"]["status"] != "ERROR"
    assert {r["group"] for r in by_name["group_metrics"]["tables"]["groups"]} == {"0", "1"}


def test_the_side_table_follows_the_rows():
    import stalwart

    x = pd.DataFrame({"a": np.arange(10.0), "g": list("aabbbccccd")})
    ds = stalwart.Dataset.from_arrays(x, np.arange(10) % 2).with_sensitive(["g"])
    assert list(ds.x.columns) == ["a"] and [c.name for c in ds.schema.columns] == ["a"]
    sub = ds.subset(np.array([9, 0, 5]))
    assert sub.sensitive_column("g").tolist() == ["d", "a", "c"] and sub.x["a"].tolist() == [9.0, 0.0, 5.0]
