"""`stalwart drift` and `stalwart ood` end to end on generated CSV / Parquet files."""

import json
import re
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
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
    assert "0 of 5 columns drifted PASS" in res.output


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
    # the table has a column the model was not fitted on: drift tests it, the model gets its own columns by name
    res = _invoke("drift", files / "ref.csv", files / "cur.csv", "--target", "label", "--model",
                  files / "model.skops", "--out", tmp_path / "w")
    assert res.exit_code == 1, res.output
    flagged, rep = _flagged(tmp_path / "w")
    assert flagged == SHIFTED and "accuracy_current" in rep["results"][0]["metrics"]
    # a table that lacks one of the model's columns is refused up front, nothing written
    res = _invoke("drift", files / "in.csv", files / "narrow.csv", "--model", files / "model.skops",
                  "--out", tmp_path / "n")
    assert res.exit_code == 2 and "missing ['c', 'e']" in res.output and not (tmp_path / "n").exists()


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


class _DigitCNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 8, 3, padding=1)
        self.pool = torch.nn.MaxPool2d(2)
        self.fc1 = torch.nn.Linear(8 * 4 * 4, 32)
        self.head = torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Linear(32, 10))

    def forward(self, x):
        return self.head(self.fc1(torch.flatten(self.pool(torch.relu(self.conv(x))), 1)))


@pytest.fixture(scope="module")
def torchscript_files(tmp_path_factory):
    """A digits CNN saved scripted and traced; held-out digits and the same digits inverted as .npz."""
    from stalwart.datasets import load_split

    d = tmp_path_factory.mktemp("ts")
    train, test = load_split("digits")
    torch.manual_seed(0)
    net = _DigitCNN()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    xt, yt = torch.as_tensor(train.x), torch.as_tensor(train.y)
    for _ in range(100):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()
    net.eval()
    with warnings.catch_warnings():  # TorchScript is deprecated in torch 2.13 but still what users ship
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(net), d / "scripted.pt")
        torch.jit.save(torch.jit.trace(net, xt[:2]), d / "traced.pt")
    np.savez(d / "in.npz", x=test.x, y=np.asarray(test.y))
    np.savez(d / "inverted.npz", x=1.0 - test.x)
    return d


@pytest.mark.parametrize("kind", ["scripted", "traced"])
def test_ood_layer_on_torchscript_models(torchscript_files, tmp_path, kind):
    d = torchscript_files
    out = tmp_path / "rep"
    res = _invoke("ood", d / f"{kind}.pt", d / "in.npz", d / "inverted.npz", "--layer", "head.0",
                  "--detectors", "mahalanobis,knn_distance", "--max-samples", "400", "--out", out)
    assert res.exit_code == 0, res.output
    result = json.loads((out / "report.json").read_text())["results"][0]
    assert result["params"]["layer"] == "head.0"
    rows = {r["detector"]: r for r in result["tables"]["detectors"]}
    # the post-ReLU penultimate layer: inverted digits are far from every class mean (measured
    # AUROC 1.0, FPR95 0.0; k-NN 0.99)
    assert rows["mahalanobis"]["status"] == "ok" and rows["mahalanobis"]["auroc"] >= 0.99
    assert rows["mahalanobis"]["fpr95"] <= 0.05 and rows["knn_distance"]["auroc"] >= 0.95
    assert result["tables"]["protocol"][0]["in_distribution_rows"] == 200


def test_ood_unknown_layer_lists_the_names_and_exits_2(torchscript_files, tmp_path):
    d = torchscript_files
    out = tmp_path / "rep"
    res = _invoke("ood", d / "scripted.pt", d / "in.npz", d / "inverted.npz", "--layer", "fc9", "--out", out)
    assert res.exit_code == 2, res.output
    text = " ".join(res.output.split())
    assert "got 'fc9'. Available: ['conv', 'pool', 'fc1', 'head', 'head.0', 'head.1']" in text
    assert "Traceback" not in res.output and not out.exists()
    res = _invoke("ood", d / "scripted.pt", d / "in.npz", d / "inverted.npz", "--layer", "fc1", "--detectors",
                  "max_softmax", "--out", out)
    assert res.exit_code == 2 and "runs neither" in " ".join(res.output.split())


def test_drift_names_a_column_whose_type_changed(files, tmp_path):
    cur = pd.read_csv(files / "same.csv")
    cur["c"] = np.where(cur["c"] > 0.5, "high", "low")  # numbers in the reference, text now
    cur.to_csv(tmp_path / "typed.csv", index=False)
    cur.to_parquet(tmp_path / "typed.parquet", index=False)
    for ref, typed, extra in (("ref.csv", "typed.csv", []), ("ref.parquet", "typed.parquet", ["--stream"])):
        out = tmp_path / f"rep-{typed}"
        res = _invoke("drift", files / ref, tmp_path / typed, "--target", "label", "--out", out, *extra)
        # one drifted column of five is a warning (exit 0); --strict makes it exit 1, as for every command
        assert res.exit_code == 0 and "drifted: c WARN" in res.output, res.output
        strict = _invoke("drift", files / ref, tmp_path / typed, "--target", "label", "--out", out, "--strict", *extra)
        assert strict.exit_code == 1, strict.output
        junit = (out / "junit.xml").read_text()
        assert 'failures="1"' in junit  # --strict: the warning is a JUnit failure too
        flagged, rep = _flagged(out)
        assert flagged == ["c"]
        row = next(r for r in rep["results"][0]["tables"]["columns"] if r["column"] == "c")
        assert (row["test"], row["kind"], row["current_kind"]) == ("type_change", "numeric", "categorical")
        text = " ".join(res.output.split())
        assert "drifted: c; column 'c' changed type: numeric in the reference, categorical in the current data" in text


# -- streaming: from STREAM_ROWS rows on, with the in-memory results --------------------------------
def _drift_result(out):
    rep = json.loads((out / "report.json").read_text())
    return rep["data"], {k: v for k, v in rep["results"][0].items() if k != "time_s"}


@pytest.mark.parametrize("extra", [[], ["--columns", "a,b,d"]])
def test_a_file_of_exactly_stream_rows_streams_with_the_in_memory_results(files, tmp_path, monkeypatch, extra):
    """The threshold applies at >= STREAM_ROWS (lowered here to the fixture's 600 rows rather than
    writing a million-row file), and the streamed report equals the in-memory one: the column
    table, the label drift and the figures, to the last bit."""
    import stalwart._cli_shift as cli_shift

    args = ["drift", files / "ref.parquet", files / "cur.parquet", "--target", "label", *extra]
    monkeypatch.setattr(cli_shift, "STREAM_ROWS", 601)  # 600 rows: below the threshold, in memory
    res = _invoke(*args, "--out", tmp_path / "memory")
    assert res.exit_code == 1, res.output
    data, in_memory = _drift_result(tmp_path / "memory")
    assert "streamed" not in data
    monkeypatch.setattr(cli_shift, "STREAM_ROWS", 600)  # exactly the threshold: streamed
    res = _invoke(*args, "--out", tmp_path / "streamed")
    assert res.exit_code == 1, res.output
    data, streamed = _drift_result(tmp_path / "streamed")
    assert data["streamed"] and data["n_samples"] == 600
    assert streamed == in_memory
    assert {"label_drift_p_value", "label_drift_js"} <= set(streamed["metrics"])
    assert set(streamed["figures"]) == {"drift_b", "drift_d"}


def test_stream_and_anderson_on_a_large_column_names_the_way_out(files, tmp_path, monkeypatch):
    import stalwart.shift._chunked as chunked

    monkeypatch.setattr(chunked, "WINDOW", 1000)  # 600 + 600 rows: more than a window
    res = _invoke("drift", files / "ref.parquet", files / "cur.parquet", "--target", "label", "--stream",
                  "--method", "anderson", "--out", tmp_path / "rep")
    assert res.exit_code == 2 and "needs every value at once" in " ".join(res.output.split()), res.output
    res = _invoke("drift", files / "ref.parquet", files / "cur.parquet", "--target", "label", "--stream",
                  "--out", tmp_path / "rep")
    assert res.exit_code == 1 and _flagged(tmp_path / "rep")[0] == SHIFTED


def _python(code):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


def test_tabular_drift_imports_no_torch():
    """What `stalwart drift` imports for tables -- the CLI, the drift check, the tests, the report
    renderers -- leaves torch and the attack and model packages unloaded."""
    code = ("import sys, stalwart.cli, stalwart._cli_shift, stalwart.checks.drift, stalwart.shift.drift, "
            "stalwart.shift._chunked, stalwart.shift.univariate, stalwart.shift.multivariate, stalwart.report.html, "
            "stalwart.report.markdown, stalwart.report.junit\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch' "
            "or m.startswith(('stalwart.attacks', 'stalwart.models'))))")
    assert _python(code) == "[]"


def test_a_streamed_drift_run_imports_no_torch(files, tmp_path):
    code = ("import sys\nfrom stalwart.cli import main\n"
            f"sys.argv = ['stalwart', 'drift', {str(files / 'ref.parquet')!r}, {str(files / 'cur.parquet')!r}, "
            f"'--target', 'label', '--stream', '--out', {str(tmp_path / 'rep')!r}]\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))")
    assert _python(code) == "[]"
