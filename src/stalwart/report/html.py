"""HTML rendering of a report dict: one self-contained page (inline CSS, SVG and PNG data URIs; no
scripts, no URLs). The page is a pure function of the dict, so re-rendering a saved
``report.json`` gives the same bytes."""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from stalwart.checks.base import ordered
from stalwart.report._text import ERROR_COLUMNS, mend_cut, notes_of, require_report
from stalwart.report.advice import model_family, report_advice
from stalwart.report.compliance import compliance_map
from stalwart.report.figures import ordered_figures, render_figure
from stalwart.report.glossary import CONDITION_SYNTAX, entries_for, format_value, lookup, metric_names, term
from stalwart.report.summaries import condition_detail, headline, number, report_title, verdict
from stalwart.report.svg import line_chart

__all__ = ["render_html", "fmt", "cell", "table_columns", "code_spans"]

TEMPLATES = Path(__file__).parent / "templates"
STATUSES = ("PASS", "WARN", "FAIL", "ERROR", "SKIP")


@lru_cache(maxsize=1)
def _env():
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True)
    env.filters["fmt"] = fmt
    env.filters["category"] = category_label
    env.filters["code"] = code_spans
    return env


_CATEGORY_LABELS = {"ood": "OOD", "natural": "Natural", "adversarial": "Adversarial", "drift": "Drift",
                    "subgroup": "Subgroup", "stability": "Stability", "certified": "Certified", "security": "Security"}


def category_label(category: str) -> str:
    """Display name of a check category (``ood`` -> ``OOD``)."""
    return _CATEGORY_LABELS.get(category, str(category).replace("_", " ").capitalize())


def fmt(value: Any, digits: int = 3) -> str:
    """A value for a table cell: fixed digits for floats, yes/no for booleans, "–" for missing values."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "–" if not math.isfinite(value) else f"{value:.{digits}f}"
    return str(value)


def table_columns(rows: list[Mapping[str, Any]]) -> list[str]:
    """The columns of a table in first-seen order; keys starting with "_" are internal and never shown."""
    cols: dict[str, None] = {}
    for r in rows:
        cols.update(dict.fromkeys(k for k in r if not str(k).startswith("_")))
    return list(cols)


def cell(column: str, value: Any) -> str:
    """A table cell as text: :func:`fmt`; a column the glossary writes its own way (p-values keep
    their significant digits) that way; error texts a check cut mid-word ended at a whole word."""
    if isinstance(value, str) and column in ERROR_COLUMNS:
        return mend_cut(value)
    if isinstance(value, float):
        entry = term(column)
        if entry is not None and entry.style in ("pvalue", "eps"):
            return format_value(column, value)
    return fmt(value)


def code_spans(text: Any) -> Any:
    """Escaped text with its backtick-quoted spans as ``<code>`` (advice names APIs that way)."""
    from markupsafe import Markup, escape

    parts = str(text).split("`")
    return Markup("".join(str(escape(p)) if i % 2 == 0 else f"<code>{escape(p)}</code>"
                          for i, p in enumerate(parts)))


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def interval_bar(value: Any, low: Any, high: Any, width: int = 110) -> str:
    """A one-line SVG of a rate on [0, 1]: the track, the interval and a tick at the value."""
    if not all(_finite(v) and 0.0 <= v <= 1.0 for v in (value, low, high)):
        return ""
    x = [4 + v * (width - 8) for v in (value, low, high)]
    return (f'<svg class="ci" width="{width}" height="12" viewBox="0 0 {width} 12" aria-hidden="true">'
            f'<rect x="4" y="5" width="{width - 8}" height="2" rx="1" fill="#d0d7de"/>'
            f'<rect x="{x[1]:.1f}" y="2" width="{max(x[2] - x[1], 1.5):.1f}" height="8" rx="2" fill="#0072B2" '
            f'fill-opacity="0.3"/><rect x="{x[0] - 1:.1f}" y="1" width="2" height="10" fill="#0072B2"/></svg>')


def _interval(result: Mapping[str, Any], name: str | None, text: str) -> dict[str, Any] | None:
    """The headline metric's interval for a card (a small bar for rates on [0, 1]); only when the
    headline ``text`` shows that metric's value (a drift headline counts columns instead)."""
    m = (result.get("metrics") or {}).get(name or "")
    if not isinstance(m, Mapping) or m.get("low") is None or m.get("high") is None \
            or number(result, name or "") not in text:
        return None
    return {"text": f"95% CI [{format_value(name or '', m['low'])}, {format_value(name or '', m['high'])}]",
            "bar": interval_bar(m.get("value"), m.get("low"), m.get("high"))}


def _cards(report: Mapping[str, Any], results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One card per category: its status and the headline of the check that set the status."""
    cards = report.get("scorecard") or {}
    cats = list(dict.fromkeys([item["r"]["category"] for item in results] + list(cards)))
    out = []
    for cat in cats:
        members = [item for item in results if item["r"]["category"] == cat]
        card = cards.get(cat) or {}
        status = card.get("status") or (members[0]["r"]["status"] if members else "SKIP")
        lead = next((m for m in members if m["r"]["status"] == status), members[0] if members else None)
        # derived from the result, not the stored card: older reports get today's wording
        text = lead["headline"] if lead is not None else (card.get("headline") or "")
        ci = _interval(lead["r"], lead["r"].get("headline_metric"), text) if lead is not None else None
        out.append({"category": cat, "status": status, "headline": text, "ci": ci,
                    "checks": [{"name": m["r"]["check"], "status": m["r"]["status"], "index": m["index"]}
                               for m in members]})
    return out


def _metric_rows(r: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for name, m in (r.get("metrics") or {}).items():
        entry = lookup(name)
        low, high = m.get("low"), m.get("high")
        rows.append({"name": name, "value": format_value(name, m.get("value")),
                     "interval": f"[{format_value(name, low)}, {format_value(name, high)}]"
                     if low is not None and high is not None else "–",
                     "n": fmt(m.get("n")), "better": entry.better if entry is not None else "",
                     "meaning": entry.meaning if entry is not None else ""})
    return rows


def _glossary(report: Mapping[str, Any], results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    columns = [c for item in results for t in item["tables"] for c in t["columns"]]
    out = [{"key": e.key, "names": names if names != [e.key] else [], "meaning": e.meaning, "better": e.better}
           for e, names in entries_for(metric_names(item["r"] for item in results), columns)]
    if any(item["r"].get("conditions") for item in results):
        out.append({"key": "condition", "names": [], "meaning": CONDITION_SYNTAX.meaning, "better": ""})
    return out


def render_html(report: Mapping[str, Any]) -> str:
    """The report page for a report dict (``Report.to_dict()`` or a loaded ``report.json``)."""
    from markupsafe import Markup

    require_report(report, "render_html")
    results = []
    for i, r in enumerate(report.get("results", []), start=1):
        r = ordered(r)
        charts = [Markup(line_chart(curve)) for _, curve in sorted((r.get("curves") or {}).items())]
        figures = [Markup(render_figure(fig, name)) for name, fig in ordered_figures(r.get("figures"))]
        tables = []
        for name, rows in (r.get("tables") or {}).items():
            cols = table_columns(rows or [])
            if rows and cols:
                tables.append({"name": name, "columns": cols,
                               "rows": [{"error": row.get("status") == "error",
                                         "cells": [(cell(c, row.get(c)), isinstance(row.get(c), str)) for c in cols]}
                                        for row in rows]})
        conditions = [{**c, "detail": condition_detail(r, c)} for c in r.get("conditions") or []]
        results.append({"r": r, "index": i, "charts": charts, "figures": figures, "tables": tables,
                        "headline": (head := headline(r)), "verdict": verdict(r), "notes": notes_of(r, head),
                        "conditions": conditions, "metrics": _metric_rows(r)})
    counts = [(s, sum(item["r"]["status"] == s for item in results)) for s in STATUSES]
    # reports written before schema 1.1 have no compliance map: derive it from their results
    compliance = report.get("compliance") or compliance_map(report.get("results", []))
    todo = [{"index": i, "check": r.get("check"), "status": r.get("status"), "advice": [a.text for a in items]}
            for i, r, items in report_advice(report)]
    return _env().get_template("report.html.j2").render(
        report=report, title=report_title(report), results=results, family=model_family(report.get("model")),
        cards=[{**c, "bar": Markup(c["ci"]["bar"]) if c["ci"] else ""} for c in _cards(report, results)],
        counts=[(s, n) for s, n in counts if n], compliance=compliance, todo=todo,
        glossary=_glossary(report, results))
