"""`stalwart slices`: the weak slices of a saved model on a CSV, and the exit-2 contract."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from skops.io import dump
from typer.testing import CliRunner

from stalwart.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("slices")
    rng = np.random.default_rng(0)
    n = 3000
    x = pd.DataFrame({"age": rng.integers(18, 90, n).astype(float), "income": rng.normal(50, 10, n),
                      "region": rng.choice(list("nsew"), n)})
    y = (x.income > 50).astype(int).to_numpy()
    y = np.where((x.age >= 70).to_numpy() & (x.region == "n").to_numpy() & (rng.random(n) < 0.4), 1 - y, y)
    dump(LogisticRegression().fit(x[["age", "income"]], y), d / "lr.skops")
    x.assign(label=y).to_csv(d / "data.csv", index=False)
    return d


def test_slices_names_the_planted_slice_and_writes_a_report(files):
    out = files / "rep"
    res = runner.invoke(app, ["slices", str(files / "lr.skops"), str(files / "data.csv"), "--target", "label",
                              "--sensitive", "region", "--n-boot", "3", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "slices examined" in res.output
    report = json.loads((out / "report.json").read_text())
    (result,) = report["results"]
    assert result["check"] == "weak_slices"
    assert "age >= 70 and region = 'n'" in [r["slice"] for r in result["tables"]["slices"]]
    assert "weak slice" in (out / "index.html").read_text()


@pytest.mark.parametrize("args, words", [
    (["--by", "accuracy"], "by="),
    (["--columns", "zz"], "zz"),
    (["--sensitive", "sex"], "sex"),
    (["--min-support", "0"], "min_support"),
])
def test_bad_options_exit_2_with_the_fix_and_write_nothing(files, args, words):
    out = files / "never"
    res = runner.invoke(app, ["slices", str(files / "lr.skops"), str(files / "data.csv"), "--target", "label",
                              "--sensitive", "region", "--out", str(out), *args])
    assert res.exit_code == 2, res.output
    assert words in res.output and "Traceback" not in res.output and not out.exists()
