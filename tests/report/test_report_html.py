"""Rendering: tables read cleanly, headlines replace raw verdicts, drift reports say so."""

import json
import re

import pytest

from stalwart.checks import CheckResult, Metric, Status
from stalwart.report import Report, render_html, render_markdown
from stalwart.report._text import mend_cut, notes_of, shorten
from stalwart.report.html import cell, fmt, table_columns

MODEL = {"name": "SklearnModel[Pipeline]", "family": "sklearn", "task": "classification", "classes": [0, 1],
         "fingerprint": "f-model", "differentiable": True, "output_kind": "probabilities"}
NO_MODEL = {"name": "no model (data only)", "task": "none", "classes": None, "fingerprint": "none",
            "differentiable": False, "output_kind": None}
DATA = {"name": "D", "modality": "tabular", "n_samples": 100, "fingerprint": "f-data"}

CUT = ("ValueError: Input X contains NaN. LogisticRegression does not accept missing values encoded as NaN "
       "natively. For supervised learning, you might want to consider sklearn.ensemble.HistGradientBoosting"
       "Classifier and Regressor which accept missing values encoded as NaNs natively. Alternatively, it is "
       "possible to preprocess the data")[:300]  # as a check stores it: cut at 300 characters, mid-word


def natural_result(status=Status.FAIL) -> CheckResult:
    rows = [{"perturbation": "unit_scale", "severity": 3, "accuracy": 0.556, "drop": 0.4035, "status": "ok",
             "changed": True},
            {"perturbation": "missing_values", "severity": 3, "accuracy": None, "drop": None, "status": "error",
             "changed": False, "error": CUT}]
    return CheckResult(
        "natural_robustness", "natural", status,
        {"accuracy_drop_s3": Metric("accuracy_drop_s3", 0.4035, 0.333, 0.485, 171)},
        conditions=[{"condition": "accuracy_drop_s3 <= 0.1 warn 0.05", "status": status.value,
                     "message": "accuracy_drop_s3 = 0.4035 violates <= 0.1"}],
        tables={"perturbations": rows,
                "notes": [{"note": "shown first", "_in_message": True}, {"note": "kept aside", "_in_message": False}]},
        message="the model could not handle 1 perturbation(s): missing_values (ValueError: Input X contains NaN); "
                "accuracy_drop_s3 = 0.4035 violates <= 0.1",
        headline_metric="accuracy_drop_s3")


def drift_result(drifted=("a", "b"), n=30) -> CheckResult:
    cols = ["a", "b", *(f"c{i}" for i in range(n - 2))]
    rows = [{"column": c, "kind": "numeric", "test": "ks", "statistic": 0.5 if c in drifted else 0.05,
             "p_value": 1e-30 if c in drifted else 0.5, "threshold": 0.0017, "drifted": c in drifted} for c in cols]
    share = len(drifted) / n
    return CheckResult("data_drift", "drift", Status.WARN,
                       {"share_drifted": Metric("share_drifted", share, 0.018, 0.213, n),
                        "drifted_columns": Metric("drifted_columns", float(len(drifted)), n=n)},
                       conditions=[{"condition": "share_drifted <= 0.2 warn 0", "status": "WARN",
                                    "message": f"share_drifted = {share:.4g} is within <= 0.2 but not <= 0"}],
                       tables={"columns": rows},
                       message=f"drifted: a, b; share_drifted = {share:.4g} is within <= 0.2 but not <= 0",
                       headline_metric="share_drifted")


def test_fmt_and_cells():
    assert (fmt(True), fmt(False), fmt(None), fmt(0.12345), fmt(3)) == ("yes", "no", "–", "0.123", "3")
    assert table_columns([{"note": "x", "_in_message": True}, {"other": 1}]) == ["note", "other"]
    assert cell("error", CUT).endswith("Alternatively, it is…")
    assert cell("perturbation", CUT) == CUT  # only error-like columns are mended


def test_text_helpers_never_cut_mid_word():
    assert shorten("Input X contains NaN values everywhere", 24) == "Input X contains NaN…"
    assert shorten("one two", 100) == "one two"
    assert mend_cut(CUT).endswith("it is…") and not mend_cut(CUT).endswith("po…")
    assert mend_cut("short text") == "short text"
    r = natural_result().to_dict()
    assert notes_of(r) == "the model could not handle 1 perturbation(s): missing_values (ValueError: Input X " \
                          "contains NaN)"
    assert notes_of(r, said="the model could not handle 1 perturbation(s): missing_values (ValueError: Input X "
                            "contains NaN) and more") == ""


@pytest.fixture(scope="module")
def natural_report():
    return Report(results=[natural_result()], model=MODEL, data=DATA)


def test_tables_render_booleans_as_yes_no_and_hide_internal_columns(natural_report):
    html, md = natural_report.to_html(), natural_report.to_markdown()
    for text in (html, md):
        assert "_in_message" not in text and "in message" not in text
        assert not re.search(r"[>|] ?(True|False) ?[<|]", text)  # no cell says True or False
    assert re.search(r"<td>yes</td>", html) and re.search(r"<td>no</td>", html)
    assert "| unit_scale | 3 | 0.556 | 0.404 | ok | yes | – |" in md
    assert "shown first" in html and "kept aside" in html  # the visible column stays


def test_error_texts_end_at_a_word(natural_report):
    html, md = natural_report.to_html(), natural_report.to_markdown()
    for text in (html, md):
        assert "Alternatively, it is…" in text and "it is po" not in text


def test_scorecard_shows_the_headline_and_the_number_once(natural_report):
    html = natural_report.to_html()
    card = html[html.index('<div class="card FAIL">'):html.index("</div>\n</div>")]
    assert "accuracy drop 0.404 under unit_scale, severity 3 (lower is better)" in card
    assert "95% CI [0.333, 0.485]" in card
    # the check's own four-digit verdict is not repeated anywhere: conditions are re-read at one precision
    assert "0.4035" not in html and "0.4035" not in natural_report.to_markdown()
    assert "0.404 violates &lt;= 0.1" in html and "| FAIL | 0.404 violates <= 0.1 |" in natural_report.to_markdown()
    assert "fails accuracy_drop_s3 &lt;= 0.1 warn 0.05" in html  # the verdict column
    # the check's own warning stays visible, once
    assert html.count("could not handle 1 perturbation(s)") == 1


def test_drift_report_is_titled_as_one():
    rep = Report(results=[drift_result()], model=NO_MODEL, data=DATA)
    html, md = rep.to_html(), rep.to_markdown()
    assert "<h1>Drift report" in html and "<title>stalwart drift report:" in html and "Robustness report" not in html
    assert md.startswith("# Drift report: **WARN**")
    assert '<p class="headline">2 of 30 columns drifted: a, b</p>' in html
    assert "95% CI" not in html[:html.index('<h2 id="next">')]  # the share's interval without the share: no
    assert "| drift | WARN | 2 of 30 columns drifted: a, b | data_drift |" in md
    assert rep.scorecard["drift"]["headline"] == "2 of 30 columns drifted: a, b"
    assert "<dd>no model (data only)</dd>" in html  # no "black-box" for a report without a model
    assert "<td>1e-30</td>" in html and "| 1e-30 |" in md  # p-values keep their digits, not "0.000"
    mixed = Report(results=[drift_result(), natural_result()], model=MODEL, data=DATA)
    assert "<h1>Robustness report" in mixed.to_html() and mixed.to_markdown().startswith("# Robustness report")


def test_pages_are_pure_functions_of_the_dict(natural_report):
    d = json.loads(natural_report.to_json())
    assert render_html(d) == natural_report.to_html() and render_markdown(d) == natural_report.to_markdown()


def test_an_older_report_renders_with_todays_wording():
    d = json.loads(Report(results=[natural_result()], model=MODEL, data=DATA).to_json())
    d["schema_version"] = "1.1"
    d["model"].pop("family")
    d["scorecard"]["natural"]["headline"] = "accuracy_drop_s3 = 0.404 [0.333, 0.485]"
    html = render_html(d)
    assert "accuracy drop 0.404 under unit_scale" in html and "accuracy_drop_s3 = 0.404 [" not in html
    assert "sklearn.impute.SimpleImputer" in html  # the family read from the model's name


def test_junit_marks_warnings_as_failures_only_when_strict():
    import xml.etree.ElementTree as ET

    rep = Report(results=[drift_result()], model=NO_MODEL, data=DATA)
    lenient = ET.fromstring(rep.to_junit())
    assert lenient.get("failures") == "0" and lenient.find(".//failure") is None
    assert "WARN: 2 of 30 columns drifted: a, b" in lenient.find(".//system-out").text
    strict = ET.fromstring(rep.to_junit(strict=True))
    failure = strict.find(".//failure")
    assert strict.get("failures") == "1" and failure.get("type") == "ConditionWarned"
    assert failure.get("message") == "2 of 30 columns drifted: a, b" and "what to do: Start with the drifted " \
        "columns: a, b." in failure.text


def test_save_strict_writes_the_strict_junit(tmp_path):
    rep = Report(results=[drift_result()], model=NO_MODEL, data=DATA)
    out = rep.save(tmp_path / "out", strict=True)
    assert (out / "junit.xml").read_text() == rep.to_junit(strict=True) != rep.to_junit()
