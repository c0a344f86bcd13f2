"""`stalwart probe`: the security probes from the command line, and the exit-2 contract."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.tree import DecisionTreeClassifier
from skops.io import dump
from typer.testing import CliRunner

from stalwart.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("probe")
    bunch = load_breast_cancer(as_frame=True)
    df = bunch.data.assign(label=bunch.target)
    idx = np.random.default_rng(0).permutation(len(df))
    train, test = df.iloc[idx[:300]], df.iloc[idx[300:]]
    dump(DecisionTreeClassifier(random_state=0).fit(train.drop(columns="label"), train["label"]), d / "tree.skops")
    train.to_csv(d / "train.csv", index=False)
    test.to_csv(d / "test.csv", index=False)
    return d


@pytest.mark.parametrize("probe, metric", [("membership", "membership_auc"), ("poisoning", "attack_success"),
                                           ("extraction", "fidelity")])
def test_each_probe_writes_its_report(files, probe, metric):
    out = files / f"rep-{probe}"
    res = runner.invoke(app, ["probe", str(files / "tree.skops"), str(files / "test.csv"), "--target", "label",
                              "--probe", probe, "--train", str(files / "train.csv"), "--budgets", "30,100",
                              "--out", str(out)])
    assert res.exit_code == 0, res.output
    (result,) = json.loads((out / "report.json").read_text())["results"]
    assert result["category"] == "security" and metric in result["metrics"]
    assert "Security" in (out / "index.html").read_text()


@pytest.mark.parametrize("args, words", [
    (["--probe", "steal"], "--probe must be one of"),
    (["--probe", "membership"], "needs --train"),
    (["--probe", "extraction", "--budgets", "ten"], "--budgets"),
    (["--probe", "membership", "--train", "missing.csv"], "missing.csv"),
])
def test_bad_options_exit_2_with_the_fix_and_write_nothing(files, args, words):
    out = files / "never"
    res = runner.invoke(app, ["probe", str(files / "tree.skops"), str(files / "test.csv"), "--target", "label",
                              "--out", str(out), *args])
    assert res.exit_code == 2, res.output
    assert words in res.output and "Traceback" not in res.output and not out.exists()
