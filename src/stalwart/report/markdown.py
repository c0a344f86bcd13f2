"""Markdown rendering of a report dict: the scorecard, then each check's metrics and tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from stalwart.checks.base import ordered
from stalwart.report.html import fmt

__all__ = ["render_markdown"]


def _cell(value: Any) -> str:
    return fmt(value).replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return lines + [""]


def render_markdown(report: Mapping[str, Any]) -> str:
    """GitHub-flavoured Markdown for a report dict (``Report.to_dict()`` or a loaded JSON)."""
    model, data = report.get("model", {}), report.get("data", {})
    out = [f"# Robustness report: **{report.get('status', '?')}**", "",
           f"{model.get('name')} on {data.get('name')} · suite {report.get('suite', {}).get('name', 'custom')} · "
           f"seed {report.get('seed')} · stalwart {report.get('stalwart_version')}", "", "## Scorecard", ""]
    cards = report.get("scorecard") or {}
    cats = list(dict.fromkeys([r["category"] for r in report.get("results", []) if r["category"] in cards]
                              + list(cards)))
    out += _table(["category", "status", "headline", "checks"],
                  [[cat, cards[cat]["status"], cards[cat].get("headline") or "–",
                    ", ".join(cards[cat].get("checks", []))] for cat in cats])
    out += _table(["check", "category", "status", "headline", "message"],
                  [[r["check"], r["category"], r["status"], r.get("headline") or "–", r.get("message", "")]
                   for r in report.get("results", [])])
    results = [ordered(r) for r in report.get("results", [])]
    for r in results:
        out += [f"## {r['check']}: {r['status']}", "", r.get("message", ""), ""]
        if r.get("conditions"):
            out += _table(["condition", "status", "detail"],
                          [[f"`{c['condition']}`", c["status"], c.get("message", "")] for c in r["conditions"]])
        if r.get("metrics"):
            out += _table(["metric", "value", "low", "high", "n"],
                          [[k, m.get("value"), m.get("low"), m.get("high"), m.get("n")]
                           for k, m in r["metrics"].items()])
        for name, rows in (r.get("tables") or {}).items():
            if not rows:
                continue
            cols = list(dict.fromkeys(k for row in rows for k in row))
            out += [f"### {name.replace('_', ' ')}", ""]
            out += _table(cols, [[row.get(c) for c in cols] for row in rows])
    out += ["## Run", ""]
    meta = [["model fingerprint", model.get("fingerprint")], ["data fingerprint", data.get("fingerprint")],
            ["seed", report.get("seed")], ["created", report.get("created")]]
    meta += [[k, v] for k, v in sorted((report.get("versions") or {}).items())]
    out += _table(["", ""], meta)
    return "\n".join(out).rstrip() + "\n"
