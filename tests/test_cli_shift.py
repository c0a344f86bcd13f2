"""`stalwart drift` and `stalwart ood` end to end on generated CSV / Parquet files."""

import json
import re

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from stalwart.cli import app

runner = CliRunner()
SHIFTED = ["b", "d"]


def _table(rng, n, shift=False):
    df = pd.DataFrame({
        "a": rng.normal(size=n),
        "b": rng.normal(0.6 if shift else 0.0, 1.0, size=n),
        "c": rng.uniform(size=n),
        "d": rng.choice(["x", "y", "z"], n, p=[0.3, 0.3, 0.4] if shift else [0.6, 0.3, 0.1]),
        "e": rng.integers(0, 50, n),
    })
    df["label"] = (df["a"] + df["c"] > 0.5).astype(int)
    return df


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from skops.io import dump

    d = tmp_path_factory.mktemp("shift")
    rng = np.random.default_rng(0)
    ref, same, cur = _table(rng, 600), _table(rng, 600), _table(rng, 600, shift=True)
    for name, df in (("ref", ref), ("same", same), ("cur", cur)):
        df.to_csv(d / f"{name}.csv", index=False)
        df.to_parquet(d / f"{name}.parquet", index=False)
    num = ["a", "b", "c", "e"]
    model = LogisticRegression(max_iter=1000).fit(ref[num], ref["label"])
    dump(model, d / "model.skops")
    ref[num + ["label"]].to_csv(d / "in.csv", index=False)
    cur[num + ["label"]].to_csv(d / "cur_num.csv", index=False)
    far = pd.DataFrame(rng.normal(8.0, 1.0, size=(300, 4)), columns=num)
    far.to_csv(d / "far.csv", index=False)
    same[num].to_csv(d / "near.csv", index=False)
    far[["a", "b"]].to_csv(d / "narrow.csv", index=False)
    return d


def _invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def _flagged(out):
    rep = json.loads((out / "report.json").read_text())
    return [r["column"] for r in rep["results"][0]["tables"]["columns"] if r["drifted"]], rep


def test_drift_flags_exactly_the_shifted_columns_and_exits_1(files, tmp_path):
    out = tmp_path / "rep"
    res = _invoke("drift", files / "ref.csv", files / "cur.csv", "--target", "label", "--out", out)
    assert res.exit_code == 1, res.output
    flagged, rep = _flagged(out)
    assert flagged == SHIFTED
    assert {p.name for p in out.iterdir()} >= {"index.html", "report.json", "report.md"}
    assert rep["results"][0]["check"] == "data_drift" and rep["data"]["reference"]["n_samples"] == 600
    assert "label" not in [r["column"] for r in rep["results"][0]["tables"]["columns"]]
    assert "drifted: b, d" in res.output and "jensen_shannon" not in res.output  # n <= 1000: chi2
    assert "chi2" in res.output and "ks" in res.output


def test_drift_without_a_change_exits_0(files, tmp_path):
    res = _invoke("drift", files / "ref.csv", files / "same.csv", "--target", "label", "--out", tmp_path / "rep")
    assert res.exit_code == 0, res.output
    assert "no column drifted" in res.output


def test_streamed_parquet_and_model_predictions(files, tmp_path):
    res = _invoke("drift", files / "ref.parquet", files / "cur.parquet", "--target", "label", "--stream",
                  "--out", tmp_path / "s")
    assert res.exit_code == 1, res.output
    assert _flagged(tmp_path / "s")[0] == SHIFTED
    res = _invoke("drift", files / "in.csv", files / "cur_num.csv", "--target", "label", "--model",
                  files / "model.skops", "--correction", "bh", "--out", tmp_path / "m")
    assert res.exit_code == 1, res.output
    flagged, rep = _flagged(tmp_path / "m")
    assert flagged == ["b"]
    metrics = rep["results"][0]["metrics"]
    assert {"prediction_drift_p_value", "accuracy_reference", "accuracy_current", "accuracy_drop"} <= set(metrics)
    assert rep["model"]["name"] != "no model (data only)" and "accuracy_drop" in res.output
    # a model that cannot take the table (an extra column) leaves the column drift standing, with a warning
    res = _invoke("drift", files / "ref.csv", files / "cur.csv", "--target", "label", "--model",
                  files / "model.skops", "--out", tmp_path / "w")
    assert res.exit_code == 1 and "could not predict" in res.output


@pytest.mark.parametrize("args, message", [
    (["missing.csv", "cur.csv"], "does not exist"),
    (["ref.csv", "cur.csv", "--columns", "a,zz"], r"columns \['zz'\] are not in the data under test"),
    (["ref.csv", "cur.csv", "--correction", "holm"], "--correction must be bonferroni, bh or none"),
    (["ref.csv", "cur.csv", "--method", "t-test"], r"DataDrift\(method=...\)"),
    (["ref.csv", "cur.csv", "--stream"], "--stream reads Parquet files"),
    (["ref.csv", "cur.csv", "--target", "nope"], "target column 'nope' is not in"),
])
def test_drift_bad_input_exits_2_without_traceback_or_output(files, tmp_path, args, message):
    out = tmp_path / "rep"
    res = _invoke("drift", *[files / a if a.endswith(".csv") else a for a in args], "--out", out)
    assert res.exit_code == 2, res.output
    assert "error:" in res.output and "Traceback" not in res.output
    assert re.search(message, " ".join(res.output.split()))
    assert not out.exists()


def test_ood_with_real_far_data_passes_and_near_data_fails(files, tmp_path):
    out = tmp_path / "far"
    res = _invoke("ood", files / "model.skops", files / "in.csv", files / "far.csv", "--target", "label",
                  "--max-samples", "400", "--out", out)
    assert res.exit_code == 0, res.output
    assert "knn_distance" in res.output and "AUROC" in res.output
    rep = json.loads((out / "report.json").read_text())
    result = rep["results"][0]
    assert result["check"] == "ood_detection" and result["metrics"]["best_auroc"]["value"] > 0.99
    assert result["tables"]["protocol"][0]["ood_source"] == "ood_data (far)"
    res = _invoke("ood", files / "model.skops", files / "in.csv", files / "near.csv", "--target", "label",
                  "--max-samples", "400", "--detectors", "max_softmax,knn_distance", "--out", tmp_path / "near")
    assert res.exit_code == 1, res.output  # the same distribution cannot be told apart: AUROC ~ 0.5


def test_ood_bad_input_exits_2(files, tmp_path):
    out = tmp_path / "rep"
    res = _invoke("ood", files / "model.skops", files / "in.csv", files / "narrow.csv", "--target", "label",
                  "--out", out)
    assert res.exit_code == 2 and "ood_data has columns" in " ".join(res.output.split())
    res = _invoke("ood", files / "model.skops", files / "in.csv", files / "far.csv", "--detectors", "odin",
                  "--out", out)
    assert res.exit_code == 2 and "unknown detector" in res.output
    assert not out.exists()
