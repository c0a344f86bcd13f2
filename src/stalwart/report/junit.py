"""JUnit XML for CI systems: one ``testcase`` per check.

FAIL becomes ``<failure>``, ERROR ``<error>``, SKIP ``<skipped>``; PASS and WARN pass (a WARN's
message goes to ``<system-out>`` so it stays visible). The layout follows the common Ant/Jenkins
schema that GitLab, GitHub actions and Jenkins read.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

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


def _detail(r: Mapping[str, Any]) -> str:
    lines = [f"{c.get('status')}: {c.get('condition')} -- {c.get('message', '')}" for c in r.get("conditions") or []]
    if r.get("headline"):
        lines.append(f"headline: {r['headline']}")
    return "\n".join(lines) or str(r.get("message") or "")


def render_junit(report: Mapping[str, Any]) -> str:
    """JUnit XML text for a report dict (``Report.to_dict()`` or a loaded ``report.json``)."""
    results = list(report.get("results") or [])
    counts = {s: sum(r.get("status") == s for r in results) for s in ("FAIL", "ERROR", "SKIP")}
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

    seen: dict[str, int] = {}
    for r in results:
        check = str(r.get("check"))
        seen[check] = seen.get(check, 0) + 1
        # CI systems key test history on the name, so repeated checks must stay distinct
        case_name = check if seen[check] == 1 else f"{check} ({seen[check]})"
        case = ET.SubElement(suite, "testcase", {"classname": f"stalwart.{r.get('category')}",
                                                 "name": _text(case_name), "time": _seconds(r.get("time_s"))})
        status, message = r.get("status"), _text(r.get("message"))
        if status == "FAIL":
            ET.SubElement(case, "failure", {"message": message, "type": "ConditionFailed"}).text = _text(_detail(r))
        elif status == "ERROR":
            ET.SubElement(case, "error", {"message": message, "type": "CheckError"}).text = message
        elif status == "SKIP":
            ET.SubElement(case, "skipped", {"message": message})
        elif status == "WARN":
            ET.SubElement(case, "system-out").text = _text(f"WARN: {message}\n{_detail(r)}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
