"""Compliance evidence map and JUnit XML."""

import json
import xml.etree.ElementTree as ET

import pytest

from stalwart.checks.base import CheckResult, Metric, Status
from stalwart.report import Report
from stalwart.report.compliance import CATEGORIES, DISCLAIMER, FRAMEWORKS, compliance_map
from stalwart.report.junit import render_junit

MODEL = {"name": "M", "task": "classification", "classes": [0, 1], "fingerprint": "fm",
         "differentiable": False, "output_kind": "proba"}
DATA = {"name": "D", "modality": "tabular", "n_samples": 5, "fingerprint": "fd"}


def make_report(results):
    return Report(results=results, model=MODEL, data=DATA, suite={"name": "s"}, seed=1,
                  versions={"python": "3"}, created="2026-01-01T00:00:00+00:00", stalwart_version="0.1.0")


RESULTS = [
    CheckResult("natural_robustness", "natural", Status.PASS, {"m": Metric("m", 0.1, 0.0, 0.2, 9)},
                headline_metric="m", time_s=1.5),
    CheckResult("pgd", "adversarial", Status.FAIL, message="robust accuracy 0.1 < 0.5",
                conditions=[{"condition": "robust_accuracy >= 0.5", "status": "FAIL",
                             "message": "robust_accuracy = 0.1 violates >= 0.5"}], time_s=2.25),
    CheckResult("drift", "drift", Status.ERROR, message="the check failed: boom \x07 <&>"),
    CheckResult("subgroups", "subgroup", Status.SKIP, message="no group column"),
    CheckResult("pgd", "adversarial", Status.WARN, message="close to the limit"),
    CheckResult("privacy", "membership", Status.PASS),
]


def requirement(comp, fid):
    return next(r for fw in comp["frameworks"] for r in fw["requirements"] if r["id"] == fid)


def test_every_category_is_mapped_and_every_requirement_has_a_category():
    mapped = {c for fw in FRAMEWORKS for req in fw.requirements for c in req.categories}
    assert mapped == set(CATEGORIES)
    assert all(set(req.categories) <= set(CATEGORIES) for fw in FRAMEWORKS for req in fw.requirements)
    ids = [req.id for fw in FRAMEWORKS for req in fw.requirements]
    assert {"Art. 15(1)", "Art. 15(3)", "Art. 15(4)", "Art. 15(5)", "Annex IV(3)", "MEASURE 2.5", "MEASURE 2.6",
            "MEASURE 2.7", "MEASURE 2.11", "MANAGE 4.1", "A.6.2.4", "A.6.2.6", "A.7.4"} == set(ids)


def test_evidence_status_is_the_worst_of_the_checks_that_ran():
    comp = compliance_map(RESULTS)
    assert comp["disclaimer"] == DISCLAIMER and "not a conformity assessment" in DISCLAIMER
    art155 = requirement(comp, "Art. 15(5)")
    assert [(e["check"], e["index"], e["status"]) for e in art155["evidence"]] == [("pgd", 2, "FAIL"), ("pgd", 5, "WARN")]
    assert art155["covered"] and art155["status"] == "FAIL"
    art154 = requirement(comp, "Art. 15(4)")  # natural PASS + drift ERROR
    assert art154["status"] == "ERROR" and {e["category"] for e in art154["evidence"]} == {"natural", "drift"}
    # subgroup only skipped: listed, but no evidence
    fair = requirement(comp, "MEASURE 2.11")
    assert fair["evidence"][0]["status"] == "SKIP" and not fair["covered"] and fair["status"] is None
    assert comp["unmapped_categories"] == ["membership"]


def test_absent_categories_are_not_covered_and_the_page_says_so():
    rep = make_report(RESULTS[:1])  # natural only
    comp = rep.to_dict()["compliance"]
    covered = {r["id"] for fw in comp["frameworks"] for r in fw["requirements"] if r["covered"]}
    assert covered == {"Art. 15(1)", "Art. 15(3)", "Art. 15(4)", "MEASURE 2.5", "MEASURE 2.6", "A.6.2.4"}
    html = rep.to_html()
    assert html.count("not covered by this report") == 13 - len(covered)
    assert DISCLAIMER in html and 'id="compliance"' in html and 'href="#compliance"' in html
    assert "none; evidence would come from subgroup checks" in html
    md = rep.to_markdown()
    assert "## Compliance evidence" in md and md.count("not covered by this report") == 13 - len(covered)
    assert "| MEASURE 2.11 | Fairness and bias are evaluated and results are documented | – | " \
           "not covered by this report |" in md


def test_compliance_survives_json_and_old_reports_get_one_derived():
    rep = make_report(RESULTS)
    d = json.loads(rep.to_json())
    assert d["compliance"] == json.loads(json.dumps(compliance_map(RESULTS)))
    del d["compliance"]
    d["schema_version"] = "1.0"
    old = Report.from_dict(d)
    assert old.to_dict()["compliance"] == rep.to_dict()["compliance"]
    assert "Compliance evidence" in old.to_html()


# -- JUnit ----------------------------------------------------------------------------------------
def test_junit_counts_and_elements():
    rep = make_report(RESULTS)
    text = rep.to_junit()
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    root = ET.fromstring(text.encode())
    suite = root.find("testsuite")
    assert root.tag == "testsuites" and suite is not None
    assert {k: suite.get(k) for k in ("tests", "failures", "errors", "skipped")} == \
        {"tests": "6", "failures": "1", "errors": "1", "skipped": "1"}
    assert suite.get("time") == "3.750" and suite.get("timestamp") == "2026-01-01T00:00:00+00:00"
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["natural_robustness", "pgd", "drift", "subgroups", "pgd (2)", "privacy"]
    assert [c.get("classname") for c in cases][:2] == ["stalwart.natural", "stalwart.adversarial"]
    assert [c.get("time") for c in cases][:2] == ["1.500", "2.250"]
    assert len(cases[0]) == 0 and len(cases[5]) == 0  # PASS: no children
    failure = cases[1].find("failure")
    assert failure.get("message") == "robust accuracy 0.1 < 0.5"
    assert "FAIL: robust_accuracy >= 0.5 -- robust_accuracy = 0.1 violates >= 0.5" in failure.text
    error = cases[2].find("error")
    assert error.get("message") == "the check failed: boom \ufffd <&>"  # the bell cannot live in XML
    assert cases[3].find("skipped").get("message") == "no group column"
    assert cases[4].find("system-out").text.startswith("WARN: close to the limit")
    props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert props == {"model_fingerprint": "fm", "data_fingerprint": "fd", "seed": "1", "suite": "s",
                     "stalwart_version": "0.1.0"}


def test_junit_from_json_matches_and_empty_report_is_valid():
    rep = make_report(RESULTS)
    assert render_junit(json.loads(rep.to_json())) == rep.to_junit()
    root = ET.fromstring(make_report([]).to_junit().encode())
    assert root.find("testsuite").get("tests") == "0" and root.get("failures") == "0"


def test_save_is_atomic_when_junit_fails(tmp_path, monkeypatch):
    from stalwart.report import junit

    monkeypatch.setattr(junit, "render_junit", lambda d, **kw: (_ for _ in ()).throw(RuntimeError("junit broke")))
    with pytest.raises(RuntimeError, match="junit broke"):
        make_report(RESULTS).save(tmp_path / "out")
    assert list(tmp_path.iterdir()) == []
