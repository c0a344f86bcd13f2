"""Column identity on the command line: `stalwart scan` and `stalwart attack` match a CSV's columns
to the model's by name, refuse near misses with exit 2, and agree with each other.

Expected numbers are scikit-learn's own predictions on the data in its original column order.
"""

from __future__ import annotations

import json
import unicodedata

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from typer.testing import CliRunner

from stalwart.cli import app

runner = CliRunner()
N_ROWS = 90

SUITE = """
name: columns
checks:
  - check: natural_robustness
    params: {perturbations: [feature_noise, rounding], severities: [1, 3], column_sensitivity: false}
  - check: adversarial_robustness
    params: {attack: pgd, eps: [0.03], steps: 50, minimal: false, max_samples: 500}
"""


def _csv(path, frame, y):
    table = frame.copy()
    table["label"] = y
    table.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A DataFrame-fitted breast-cancer pipeline (.skops), 90 held-out rows as CSV in several column
    orders and spellings, and a small model with non-ASCII column names."""
    from skops.io import dump

    from stalwart import datasets

    d = tmp_path_factory.mktemp("cols")
    train, test = datasets.load_split("breast_cancer", seed=0)
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(train.x, train.y)
    dump(pipe, d / "pipe.skops")
    x = test.x.iloc[:N_ROWS].reset_index(drop=True)
    y = np.asarray(test.y)[:N_ROWS]
    cols = list(x.columns)
    _csv(d / "original.csv", x, y)
    _csv(d / "reversed.csv", x[cols[::-1]], y)
    _csv(d / "shuffled.csv", x[[cols[i] for i in np.random.default_rng(3).permutation(len(cols))]], y)
    _csv(d / "missing.csv", x.drop(columns=["mean area"]), y)
    _csv(d / "extra.csv", x.assign(hospital=1.0), y)
    _csv(d / "renamed.csv", x.rename(columns={"worst symmetry": "worst symmetry index"}), y)
    _csv(d / "space.csv", x.rename(columns={"mean area": "mean area "}), y)
    _csv(d / "nbsp.csv", x.rename(columns={"mean area": "mean\u00a0area"}), y)
    # a repeated header: pandas alone would silently read it as "mean area" and "mean area.1"
    dup = x.copy()
    dup.columns = ["mean area" if c == "mean radius" else c for c in cols]
    _csv(d / "duplicate.csv", dup, y)
    np.savez(d / "table.npz", x=x.to_numpy(), y=y)

    rng = np.random.default_rng(0)
    nfc = unicodedata.normalize("NFC", "café")
    small = pd.DataFrame({nfc: rng.normal(size=120), "size": rng.normal(size=120)})
    small_y = (small[nfc] + 0.5 * small["size"] > 0).astype(int).to_numpy()
    dump(LogisticRegression().fit(small, small_y), d / "cafe.skops")
    _csv(d / "cafe_nfc.csv", small, small_y)
    _csv(d / "cafe_nfd.csv", small.rename(columns={nfc: unicodedata.normalize("NFD", nfc)}), small_y)
    (d / "suite.yaml").write_text(SUITE)

    def closed_form(eps):
        """Exact robust accuracy of the linear pipeline under a linf box of eps * range per column."""
        raw = x.to_numpy(dtype=np.float64)
        w = pipe[-1].coef_[0] / pipe[0].scale_
        score = raw @ w + pipe[-1].intercept_[0] - w @ pipe[0].mean_
        lo, hi = raw.min(axis=0), raw.max(axis=0)
        against = -np.sign(score)[:, None] * np.sign(w)[None, :]  # each column moved to lower |score|
        room = np.where(against > 0, hi - raw, raw - lo)
        worst = score + np.sum(w * against * np.minimum(eps * (hi - lo), room), axis=1)
        assert np.min(np.abs(worst)) > 1e-3  # no near-ties
        return float(np.mean(((score > 0).astype(int) == y) & (np.sign(worst) == np.sign(score))))
    return {"dir": d, "expected": float(accuracy_score(y, pipe.predict(x))), "n": N_ROWS, "closed_form": closed_form}


def _scan(files, data, out, model="pipe.skops"):
    d = files["dir"]
    return runner.invoke(app, ["scan", str(d / model), str(d / data), "--target", "label",
                               "--suite", str(d / "suite.yaml"), "--out", str(out)])


def _attack(files, data, out, *extra, model="pipe.skops"):
    d = files["dir"]
    return runner.invoke(app, ["attack", str(d / model), str(d / data), "--target", "label", *extra,
                               "--out", str(out)])


@pytest.mark.parametrize("data", ["original.csv", "reversed.csv", "shuffled.csv"])
def test_scan_in_any_column_order_gives_sklearns_accuracy_in_every_check(files, tmp_path, data):
    out = tmp_path / "rep"
    result = _scan(files, data, out)
    assert result.exit_code in (0, 1), result.output
    rep = json.loads((out / "report.json").read_text())
    results = {r["check"]: r for r in rep["results"]}
    assert list(results) == ["clean_performance", "natural_robustness", "adversarial_robustness"]
    for name, r in results.items():
        assert r["status"] in ("PASS", "WARN", "FAIL"), (name, r["message"])
        assert r["metrics"]["clean_accuracy"]["value"] == pytest.approx(files["expected"], abs=1e-12), name
        assert r["metrics"]["clean_accuracy"]["n"] == files["n"], name
    if data != "original.csv":
        assert rep["data"]["column_matching"].startswith("by name")


def test_attack_gives_the_same_numbers_in_any_column_order(files, tmp_path):
    summaries = []
    for data in ("original.csv", "reversed.csv", "shuffled.csv"):
        out = tmp_path / f"{data}.npz"
        result = _attack(files, data, out, "--attack", "fgsm", "--eps", "0.03")
        assert result.exit_code == 0, result.output
        summaries.append(json.loads(out.with_suffix(".json").read_text()))
        # the adversarial rows come back in the model's column order, in raw units
        x_adv = np.load(out)["x_adv"]
        assert x_adv.shape == (files["n"], 30)
    for s in summaries:
        assert s["clean_accuracy"] == pytest.approx(files["expected"], abs=1e-12)
        assert s["robust_accuracy"] == summaries[0]["robust_accuracy"]
        assert s["threat"]["eps_unit"] == "fraction of each feature's range"
    assert summaries[0]["robust_accuracy"] < summaries[0]["clean_accuracy"]  # the attack did something
    # one FGSM step to the corner of the box is exact for a linear model
    assert summaries[0]["robust_accuracy"] == pytest.approx(files["closed_form"](0.03), abs=1e-12)


def test_attack_and_scan_agree_on_robust_accuracy(files, tmp_path):
    """Same model, same 90 rows, same eps (range unit), same attack (PGD, 50 steps): the numbers may
    differ only by the random starts (a couple of samples)."""
    adv = tmp_path / "adv.npz"
    result = _attack(files, "original.csv", adv, "--attack", "pgd", "--eps", "0.03")
    assert result.exit_code == 0, result.output
    summary = json.loads(adv.with_suffix(".json").read_text())
    out = tmp_path / "rep"
    assert _scan(files, "original.csv", out).exit_code in (0, 1)
    check = next(r for r in json.loads((out / "report.json").read_text())["results"]
                 if r["check"] == "adversarial_robustness")
    scan_robust = check["metrics"]["robust_accuracy_at_0.03"]["value"]
    assert summary["n_samples"] == check["metrics"]["robust_accuracy_at_0.03"]["n"] == files["n"]
    assert summary["robust_accuracy"] < summary["clean_accuracy"] - 0.05  # eps 0.03 of the range matters here
    assert abs(summary["robust_accuracy"] - scan_robust) * files["n"] <= 2, (summary["robust_accuracy"], scan_robust)
    # both against the closed form: the pipeline is linear in the raw inputs (w = coef / scale), the box is
    # eps * (max - min) of each column, clipped at the data's own range; the worst case is its corner
    expected = files["closed_form"](0.03)
    assert abs(summary["robust_accuracy"] - expected) * files["n"] <= 1, (summary["robust_accuracy"], expected)
    assert abs(scan_robust - expected) * files["n"] <= 1, (scan_robust, expected)


REFUSED = {
    "missing.csv": ["'mean area'"],
    "extra.csv": ["'hospital'"],
    "renamed.csv": ["'worst symmetry'", "'worst symmetry index'"],
    "space.csv": ["'mean area '", "whitespace"],
    "nbsp.csv": ["'mean\\xa0area'", "Unicode"],
    "duplicate.csv": ["mean area", "repeats"],
}


def _assert_refused(result, words, outputs):
    text = " ".join(result.output.split())  # rich may wrap long lines
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for word in words:
        assert word in text, (word, result.output)
    for path in outputs:
        assert not path.exists(), path


@pytest.mark.parametrize("data", list(REFUSED))
def test_scan_refuses_mismatched_columns_with_exit_2(files, tmp_path, data):
    out = tmp_path / "rep"
    _assert_refused(_scan(files, data, out), REFUSED[data], [out])


@pytest.mark.parametrize("data", list(REFUSED))
def test_attack_refuses_mismatched_columns_with_exit_2(files, tmp_path, data):
    out = tmp_path / "adv.npz"
    _assert_refused(_attack(files, data, out, "--attack", "fgsm"), REFUSED[data], [out, out.with_suffix(".json")])


def test_unicode_normal_form_is_refused_and_explained(files, tmp_path):
    nfc, nfd = unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café")
    out = tmp_path / "rep"
    _assert_refused(_scan(files, "cafe_nfd.csv", out, model="cafe.skops"), [ascii(nfd), ascii(nfc), "Unicode"], [out])
    adv = tmp_path / "adv.npz"
    _assert_refused(_attack(files, "cafe_nfd.csv", adv, "--attack", "fgsm", model="cafe.skops"),
                    [ascii(nfd), "Unicode"], [adv])
    ok = _attack(files, "cafe_nfc.csv", adv, "--attack", "fgsm", model="cafe.skops")
    assert ok.exit_code == 0, ok.output


def test_a_named_model_takes_an_npz_table_by_position(files, tmp_path):
    """An NPZ array carries no column names (stalwart's x0, x1, ... are positions): a model fitted
    on named columns takes it by position, and the report says so; a width that differs is refused."""
    import json

    out = tmp_path / "rep"
    d = files["dir"]
    result = runner.invoke(app, ["scan", str(d / "pipe.skops"), str(d / "table.npz"), "--suite",
                                 str(d / "suite.yaml"), "--out", str(out)])
    assert result.exit_code in (0, 1), result.output
    rep = json.loads((out / "report.json").read_text())
    assert rep["data"]["column_matching"] == "by position (the data has no column names)"
    accuracies = {r["metrics"]["clean_accuracy"]["value"] for r in rep["results"] if "clean_accuracy" in r["metrics"]}
    assert len(accuracies) == 1 and accuracies.pop() == pytest.approx(files["expected"], abs=1e-12)
