"""End-to-end runs of the `stalwart` command line on built-in data and saved models."""

import json
import pickle
import warnings

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from stalwart import __version__
from stalwart.cli import app

runner = CliRunner()

FAST_SUITE = """
name: fast
checks:
  - check: natural_robustness
    params: {severities: [1, 5], max_samples: 120}
  - check: adversarial_robustness
    params: {eps: [0.02, 0.1], level: fast, minimal: false, max_samples: 60}
"""


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A breast_cancer CSV with its skops/ONNX/pickle pipeline, digits NPZ with a TorchScript CNN."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from skops.io import dump

    from stalwart import datasets
    from stalwart.demo import train_image_model

    d = tmp_path_factory.mktemp("cli")
    train, test = datasets.load_split("breast_cancer", seed=0)
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(train.x.to_numpy(), train.y)
    table = test.x.copy()
    table["label"] = test.y
    table.to_csv(d / "test.csv", index=False)
    dump(pipe, d / "pipe.skops")
    with open(d / "pipe.pkl", "wb") as fh:
        pickle.dump(pipe, fh)

    from skl2onnx import to_onnx

    onx = to_onnx(pipe, train.x.to_numpy()[:1].astype(np.float32), options={"zipmap": False})
    (d / "pipe.onnx").write_bytes(onx.SerializeToString())

    net, img_test = train_image_model(seed=0, epochs=3)
    with warnings.catch_warnings():  # TorchScript is deprecated in torch 2.13 but still what users ship
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(net), d / "cnn.pt")
    np.savez(d / "digits.npz", x=img_test.x[:150], y=np.asarray(img_test.y)[:150])
    (d / "fast.yaml").write_text(FAST_SUITE)

    from sklearn.feature_extraction.text import TfidfVectorizer

    text_train, text_test = datasets.load_split("sentiment", seed=0)
    text_pipe = make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=1000)).fit(text_train.x, text_train.y)
    dump(text_pipe, d / "text.skops")
    import pandas as pd

    pd.DataFrame({"text": text_test.x, "label": text_test.y}).to_csv(d / "text.csv", index=False)
    return d


def _report(out):
    return json.loads((out / "report.json").read_text())


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and __version__ in result.stdout


def test_scan_skops_pipeline_on_csv(files, tmp_path):
    out = tmp_path / "rep"
    result = runner.invoke(app, ["scan", str(files / "pipe.skops"), str(files / "test.csv"), "--target", "label",
                                 "--suite", str(files / "fast.yaml"), "--out", str(out)])
    assert result.exit_code in (0, 1), result.output
    rep = _report(out)
    assert rep["data"]["n_samples"] == 171 and rep["seed"] == 0
    statuses = {r["check"]: r["status"] for r in rep["results"]}
    assert statuses["natural_robustness"] in ("PASS", "WARN", "FAIL")
    assert statuses["adversarial_robustness"] in ("PASS", "WARN", "FAIL")  # white-box through the mirror
    assert (result.exit_code == 0) == all(s in ("PASS", "WARN", "SKIP") for s in statuses.values())
    html = (out / "index.html").read_text()
    assert html.count("<svg") >= 2 and "http://" not in html and "https://" not in html
    assert (out / "report.md").exists()


def test_scan_onnx_model(files, tmp_path):
    out = tmp_path / "rep"
    result = runner.invoke(app, ["scan", str(files / "pipe.onnx"), str(files / "test.csv"), "--target", "label",
                                 "--suite", str(files / "fast.yaml"), "--out", str(out)])
    assert result.exit_code in (0, 1), result.output
    results = {r["check"]: r for r in _report(out)["results"]}
    assert results["natural_robustness"]["status"] != "ERROR"
    adversarial = results["adversarial_robustness"]  # ONNX is black-box: black-box attacks run
    assert adversarial["status"] in ("PASS", "WARN", "FAIL") and "black-box attacks only" in adversarial["message"]


def test_scan_torchscript_on_npz(files, tmp_path):
    out = tmp_path / "rep"
    result = runner.invoke(app, ["scan", str(files / "cnn.pt"), str(files / "digits.npz"),
                                 "--suite", str(files / "fast.yaml"), "--out", str(out)])
    assert result.exit_code in (0, 1), result.output
    rep = _report(out)
    assert rep["data"]["modality"] == "image"
    adv = next(r for r in rep["results"] if r["check"] == "adversarial_robustness")
    assert adv["status"] != "ERROR" and adv["status"] != "SKIP"


@pytest.mark.slow
def test_same_seed_same_json_apart_from_timings(files, tmp_path):
    args = ["scan", str(files / "pipe.skops"), str(files / "test.csv"), "--target", "label",
            "--suite", str(files / "fast.yaml"), "--seed", "3"]
    for name in ("a", "b"):
        runner.invoke(app, [*args, "--out", str(tmp_path / name)])

    def strip(obj):
        if isinstance(obj, dict):
            return {k: strip(v) for k, v in obj.items() if k not in ("timings", "time_s", "created")}
        if isinstance(obj, list):
            return [strip(v) for v in obj]
        return obj
    assert strip(_report(tmp_path / "a")) == strip(_report(tmp_path / "b"))


def test_pickle_refused_without_trust_and_accepted_with_it(files, tmp_path):
    args = ["scan", str(files / "pipe.pkl"), str(files / "test.csv"), "--target", "label",
            "--suite", str(files / "fast.yaml"), "--out", str(tmp_path / "rep")]
    refused = runner.invoke(app, args)
    assert refused.exit_code == 2
    assert "trust" in refused.output and "Traceback" not in refused.output
    assert not (tmp_path / "rep").exists()
    accepted = runner.invoke(app, [*args, "--trust"])
    assert accepted.exit_code in (0, 1), accepted.output


@pytest.mark.parametrize("argv, message", [
    (["scan", "{d}/missing.skops", "{d}/test.csv", "--target", "label"], "missing.skops"),
    (["scan", "{d}/pipe.skops", "{d}/test.csv", "--target", "nope"], "nope"),
    (["scan", "{d}/pipe.skops", "{d}/test.csv", "--target", "label", "--suite", "nonsense"], "nonsense"),
    (["scan", "{d}/pipe.skops", "{d}/test.csv", "--target", "label", "--modality", "audio"], "audio"),
    (["scan", "{d}/pipe.skops", "{d}/test.csv"], "target"),
])
def test_bad_input_exits_2_with_a_message_and_no_traceback(files, tmp_path, argv, message):
    argv = [a.format(d=files) for a in argv] + ["--out", str(tmp_path / "rep")]
    result = runner.invoke(app, argv)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "rep").exists()


def test_report_render_rebuilds_html_from_json(files, tmp_path):
    out = tmp_path / "rep"
    runner.invoke(app, ["scan", str(files / "pipe.skops"), str(files / "test.csv"), "--target", "label",
                        "--suite", str(files / "fast.yaml"), "--out", str(out)])
    original = (out / "index.html").read_text()
    (out / "index.html").unlink()
    result = runner.invoke(app, ["report", "render", str(out / "report.json")])
    assert result.exit_code == 0, result.output
    assert (out / "index.html").read_text() == original
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    result = runner.invoke(app, ["report", "render", str(bad)])
    assert result.exit_code == 2 and "bad.json" in result.output


@pytest.mark.slow
def test_demo_writes_two_reports_with_both_charts(tmp_path):
    result = runner.invoke(app, ["demo", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for name, modality in (("breast_cancer", "tabular"), ("digits", "image")):
        rep = _report(tmp_path / name)
        assert rep["data"]["modality"] == modality
        checks = {r["check"]: r for r in rep["results"]}
        assert set(checks) == {"clean_performance", "natural_robustness", "adversarial_robustness"}
        assert checks["clean_performance"]["status"] == "PASS"  # the demo models beat chance
        assert checks["adversarial_robustness"]["status"] in ("PASS", "WARN", "FAIL")  # ran, white-box
        html = (tmp_path / name / "index.html").read_text()
        assert "Accuracy vs severity" in html and "Robust accuracy vs eps" in html
        assert name in result.output
    # the models and their test data are saved beside the reports, so `stalwart scan` can repeat them
    again = runner.invoke(app, ["scan", str(tmp_path / "breast_cancer" / "model.skops"),
                                str(tmp_path / "breast_cancer" / "test.csv"), "--target", "label",
                                "--out", str(tmp_path / "again")])
    assert again.exit_code in (0, 1), again.output
    assert _report(tmp_path / "again")["results"][0]["metrics"]["clean_accuracy"]["value"] == \
        _report(tmp_path / "breast_cancer")["results"][0]["metrics"]["clean_accuracy"]["value"]
    assert (tmp_path / "digits" / "model.pt").is_file() and (tmp_path / "digits" / "test.npz").is_file()


def test_attack_saves_adversarial_examples_within_eps(files, tmp_path):
    out = tmp_path / "adv" / "adv.npz"
    result = runner.invoke(app, ["attack", str(files / "cnn.pt"), str(files / "digits.npz"), "--attack", "pgd",
                                 "--eps", "0.1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    with np.load(out) as saved, np.load(files / "digits.npz") as original:
        x_adv, success, clean = saved["x_adv"], saved["success"], original["x"]
    assert np.abs(x_adv - clean).max() <= 0.1 + 1e-6
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    summary = json.loads(out.with_suffix(".json").read_text())
    assert summary["robust_accuracy"] == pytest.approx(1 - success.mean())
    assert summary["robust_accuracy"] < summary["clean_accuracy"]


@pytest.mark.parametrize("extra, message", [
    (["--eps", "0.00001"], "under 0.1% of the data's value range"),
    (["--eps", "1.5"], "covers the whole input range"),
    (["--attack", "nope"], "unknown attack 'nope'"),
    (["--norm", "l7"], "norm"),
])
def test_attack_bad_configuration_exits_2(files, tmp_path, extra, message):
    out = tmp_path / "adv.npz"
    result = runner.invoke(app, ["attack", str(files / "cnn.pt"), str(files / "digits.npz"), *extra, "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_attack_on_text_writes_perturbed_sentences(files, tmp_path):
    out = tmp_path / "adv.csv"
    result = runner.invoke(app, ["attack", str(files / "text.skops"), str(files / "text.csv"), "--target", "label",
                                 "--max-change", "0.3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    import pandas as pd

    table = pd.read_csv(out)
    summary = json.loads(out.with_suffix(".json").read_text())
    assert len(table) == summary["n_samples"] and table["success"].mean() == pytest.approx(1 - summary["robust_accuracy"])
    changed = table[table["words_changed"] > 0]
    assert len(changed) > 0 and (changed["text"] != changed["perturbed"]).all()
    refused = runner.invoke(app, ["attack", str(files / "text.skops"), str(files / "text.csv"), "--target", "label",
                                  "--attack", "pgd", "--out", str(tmp_path / "x.csv")])
    assert refused.exit_code == 2 and "does not apply to text data" in refused.output


def test_schema_aware_tabular_attack_from_the_cli(files, tmp_path):
    out = tmp_path / "adv.npz"
    result = runner.invoke(app, ["attack", str(files / "pipe.skops"), str(files / "test.csv"), "--target", "label",
                                 "--attack", "tabular-search", "--eps", "0.2", "--max-samples", "40",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads(out.with_suffix(".json").read_text())
    assert summary["n_samples"] == 40 and summary["robust_accuracy"] <= summary["clean_accuracy"]
