"""`stalwart perturb`: perturbed copies in the input's format, labels kept, bad input exits 2."""

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from stalwart import datasets, perturb
from stalwart.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("perturb")
    bc = datasets.load("breast_cancer")
    table = bc.x.iloc[:60].copy()
    table["label"] = bc.y[:60]
    table.to_csv(d / "bc.csv", index=False)
    table.to_parquet(d / "bc.parquet", index=False)
    digits = datasets.load("digits")
    np.savez(d / "dg.npz", images=digits.x[:30], labels=digits.y[:30], extra=np.arange(3))
    s = datasets.load("sentiment")
    pd.DataFrame({"text": s.x[:40], "label": s.y[:40]}).to_csv(d / "s.csv", index=False)
    return d


def run(*args):
    return runner.invoke(app, ["perturb", *map(str, args)])


@pytest.mark.parametrize("ext", ["csv", "parquet"])
def test_table_keeps_target_and_format(files, ext):
    out = files / f"noisy.{ext}"
    res = run(files / f"bc.{ext}", "--perturbation", "feature_noise", "--severity", 3, "--out", out,
              "--target", "label", "--seed", 1)
    assert res.exit_code == 0, res.output
    read = pd.read_csv if ext == "csv" else pd.read_parquet
    before, after = read(files / f"bc.{ext}"), read(out)
    assert list(after.columns) == list(before.columns)
    assert (after["label"] == before["label"]).all()
    # the same perturbation through the library gives the same numbers
    data = datasets.load("breast_cancer")
    features = before.drop(columns="label")
    expected = perturb.get("feature_noise").apply(features, 3, 1)
    np.testing.assert_allclose(after.drop(columns="label").to_numpy(), expected.to_numpy(), rtol=1e-9)
    changed = int((np.abs(after.drop(columns="label").to_numpy() - features.to_numpy()) > 0).sum())
    assert "values changed" in res.output and str(changed) in res.output
    assert "rows changed" in res.output and len(data.x.columns) == features.shape[1]


def test_npz_keeps_keys_and_labels(files):
    out = files / "blur.npz"
    res = run(files / "dg.npz", "--perturbation", "gaussian_noise", "--severity", 5, "--out", out, "--seed", 3)
    assert res.exit_code == 0, res.output
    with np.load(files / "dg.npz") as a, np.load(out) as b:
        assert sorted(a.files) == sorted(b.files)
        np.testing.assert_array_equal(a["labels"], b["labels"])
        np.testing.assert_array_equal(a["extra"], b["extra"])
        assert b["images"].shape == a["images"].shape and b["images"].dtype == a["images"].dtype
        expected = perturb.get("gaussian_noise").apply(a["images"], 5, 3)
        np.testing.assert_allclose(b["images"], expected)
        diff = np.abs(expected.astype(float) - a["images"])
        mean_abs = float(diff[diff > 0].mean())  # over the values that changed (clipped ones may not)
    assert f"{mean_abs:.4g}" in res.output
    assert "images changed" in res.output and "30" in res.output


def test_text_csv(files):
    out = files / "typos.csv"
    res = run(files / "s.csv", "--perturbation", "keyboard_typos", "--out", out, "--target", "label")
    assert res.exit_code == 0, res.output
    before, after = pd.read_csv(files / "s.csv"), pd.read_csv(out)
    assert (before["label"] == after["label"]).all()
    n_changed = int((before["text"] != after["text"]).sum())
    assert 0 < n_changed < 40
    assert f"rows changed {n_changed}" in " ".join(res.output.replace("│", " ").split())


def test_list(files):
    res = runner.invoke(app, ["perturb", "--list", "--modality", "image"])
    assert res.exit_code == 0
    assert "gaussian_noise" in res.output and "ImageNet-C" in res.output and "feature_noise" not in res.output
    res = runner.invoke(app, ["perturb", "--list"])
    assert "feature_noise" in res.output and "keyboard_typos" in res.output


@pytest.mark.parametrize(("args", "match"), [
    (["--perturbation", "no_such", "--out", "x.csv", "--target", "label"],
     "'no_such' is not registered; tabular perturbations: category_swap"),
    (["--perturbation", "gaussian_noise", "--out", "x.csv", "--target", "label"],
     "'gaussian_noise' is for image data; tabular perturbations"),
    (["--perturbation", "feature_noise", "--severity", "6", "--out", "x.csv"], "--severity must be an integer 1..5"),
    (["--perturbation", "feature_noise", "--out", "x.npz"], r"--out 'x.npz' must end in one of .csv, .csv.gz"),
    (["--perturbation", "feature_noise"], "missing --out"),
    (["--perturbation", "feature_noise", "--out", "x.csv", "--target", "lable"], "Did you mean 'label'"),
])
def test_bad_input_exits_2(files, args, match):
    res = run(files / "bc.csv", *args)
    assert res.exit_code == 2
    assert match in " ".join(res.output.split()), res.output
    assert not (files / "x.csv").exists()
