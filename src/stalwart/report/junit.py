"""JUnit XML for CI systems: one ``testcase`` per check.

FAIL becomes ``<failure>``, ERROR ``<error>``, SKIP ``<skipped>``; PASS and WARN pass (a WARN's
finding goes to ``<system-out>`` so it stays visible), unless ``strict``: then a WARN is a failure
too, as the command line's ``--strict`` counts it. A failure's message is the check's headline
(what failed and why); its text adds each condition's verdict and what to do next. The layout follows the common Ant/Jenkins
schema that GitLab, GitHub actions and Jenkins read.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

from stalwart.report._text import notes_of, require_report
from stalwart.report.advice import Advice, advice, context_of
from stalwart.report.summaries import condition_detail, headline

__all__ = ["render_junit"]

# characters XML 1.0 cannot carry at all, even escaped
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _text(value: Any) -> str:
    return _INVALID_XML.sub("\ufffd", "" if value is None else str(value))


def _seconds(value: Any) -> str:
    try:
        return f"{float(value or 0.0):.3f}"
    except (TypeError, ValueError):
        return "0.000"


def _detail(r: Mapping[str, Any], todo: list[Advice]) -> str:
    """The failure text: what was found, each condition's verdict, the check's notes, what to do."""
    head = headline(r)
    lines = [head]
    lines += [f"{c.get('status')}: {c.get('condition')} -- {condition_detail(r, c)}" for c in r.get("conditions") or []]
    notes = notes_of(r, head)
    if notes:
        lines.append(f"notes: {notes}")
    lines += [f"what to do: {a.text.replace('`', '')}" for a in todo]
    return "\n".join(line for line in lines if line) or str(r.get("message") or "")


def render_junit(report: Mapping[str, Any], *, strict: bool = False) -> str:
    """JUnit XML text for a report dict (``Report.to_dict()`` or a loaded ``report.json``)."""
    require_report(report, "render_junit")
    results = list(report.get("results") or [])
    failing = ("FAIL", "WARN") if strict else ("FAIL",)
    counts = {s: sum(r.get("status") == s for r in results) for s in ("ERROR", "SKIP")}
    counts["FAIL"] = sum(r.get("status") in failing for r in results)
    total = _seconds(sum(float(r.get("time_s") or 0.0) for r in results))
    model, data = report.get("model") or {}, report.get("data") or {}
    name = f"stalwart: {model.get('name', 'model')} on {data.get('name', 'data')}"
    attrs = {"name": name, "tests": str(len(results)), "failures": str(counts["FAIL"]),
             "errors": str(counts["ERROR"]), "skipped": str(counts["SKIP"]), "time": total}
    root = ET.Element("testsuites", {k: v for k, v in attrs.items() if k != "skipped"})
    suite = ET.SubElement(root, "testsuite", attrs)
    if report.get("created"):
        suite.set("timestamp", _text(report["created"]))
    props = ET.SubElement(suite, "properties")
    for key, value in (("model_fingerprint", model.get("fingerprint")), ("data_fingerprint", data.get("fingerprint")),
                       ("seed", report.get("seed")), ("suite", (report.get("suite") or {}).get("name")),
                       ("stalwart_version", report.get("stalwart_version"))):
        if value is not None:
            ET.SubElement(props, "property", {"name": key, "value": _text(value)})

    ctx = context_of(report)
    seen: dict[str, int] = {}
    for r in results:
        check = str(r.get("check"))
        seen[check] = seen.get(check, 0) + 1
        # CI systems key test history on the name, so repeated checks must stay distinct
        case_name = check if seen[check] == 1 else f"{check} ({seen[check]})"
        case = ET.SubElement(suite, "testcase", {"classname": f"stalwart.{r.get('category')}",
                                                 "name": _text(case_name), "time": _seconds(r.get("time_s"))})
        status, message = r.get("status"), _text(r.get("message"))
        if status in failing:
            # CI systems show the message attribute as the one-line reason: the headline names the cause
            kind = "ConditionFailed" if status == "FAIL" else "ConditionWarned"
            ET.SubElement(case, "failure", {"message": _text(headline(r)), "type": kind}).text = \
                _text(_detail(r, advice(r, ctx)))
        elif status == "ERROR":
            ET.SubElement(case, "error", {"message": message, "type": "CheckError"}).text = \
                _text("\n".join([str(r.get("message") or ""), *(f"what to do: {a.text.replace('`', '')}"
                                                                 for a in advice(r, ctx))]))
        elif status == "SKIP":
            ET.SubElement(case, "skipped", {"message": message})
        elif status == "WARN":
            ET.SubElement(case, "system-out").text = _text(f"WARN: {_detail(r, advice(r, ctx))}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
