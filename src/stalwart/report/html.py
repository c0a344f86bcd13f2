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
from stalwart.report.compliance import compliance_map
from stalwart.report.figures import ordered_figures, render_figure
from stalwart.report.svg import line_chart

__all__ = ["render_html", "fmt"]

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
    return env


_CATEGORY_LABELS = {"ood": "OOD", "natural": "Natural", "adversarial": "Adversarial", "drift": "Drift",
                    "subgroup": "Subgroup", "stability": "Stability", "certified": "Certified", "security": "Security"}


def category_label(category: str) -> str:
    """Display name of a check category (``ood`` -> ``OOD``)."""
    return _CATEGORY_LABELS.get(category, str(category).replace("_", " ").capitalize())


def fmt(value: Any, digits: int = 3) -> str:
    """A number for a table cell: fixed digits for floats, "–" for missing values."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "–" if not math.isfinite(value) else f"{value:.{digits}f}"
    return str(value)


def _table_columns(rows: list[Mapping[str, Any]]) -> list[str]:
    cols: dict[str, None] = {}
    for r in rows:
        cols.update(dict.fromkeys(r))
    return list(cols)


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


def _cards(report: Mapping[str, Any], results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One card per category: status, the headline metric of the check that set the status."""
    cards = report.get("scorecard") or {}
    cats = list(dict.fromkeys([item["r"]["category"] for item in results] + list(cards)))
    out = []
    for cat in cats:
        members = [item for item in results if item["r"]["category"] == cat]
        card = cards.get(cat) or {}
        status = card.get("status") or (members[0]["r"]["status"] if members else "SKIP")
        lead = next((m for m in members if m["r"]["status"] == status), members[0] if members else None)
        metric = None
        if lead is not None:
            m = (lead["r"].get("metrics") or {}).get(lead["r"].get("headline_metric") or "")
            if m is not None:
                metric = {"name": m.get("name") or lead["r"]["headline_metric"], "value": m.get("value"),
                          "low": m.get("low"), "high": m.get("high"),
                          "bar": interval_bar(m.get("value"), m.get("low"), m.get("high"))}
        out.append({"category": cat, "status": status, "metric": metric, "headline": card.get("headline") or "",
                    "checks": [{"name": m["r"]["check"], "status": m["r"]["status"], "index": m["index"]}
                               for m in members]})
    return out


def render_html(report: Mapping[str, Any]) -> str:
    """The report page for a report dict (``Report.to_dict()`` or a loaded ``report.json``)."""
    from markupsafe import Markup

    results = []
    for i, r in enumerate(report.get("results", []), start=1):
        r = ordered(r)
        charts = [Markup(line_chart(curve)) for _, curve in sorted((r.get("curves") or {}).items())]
        figures = [Markup(render_figure(fig, name)) for name, fig in ordered_figures(r.get("figures"))]
        tables = [{"name": name, "columns": _table_columns(rows), "rows": rows}
                  for name, rows in (r.get("tables") or {}).items() if rows]
        results.append({"r": r, "index": i, "charts": charts, "figures": figures, "tables": tables})
    counts = [(s, sum(item["r"]["status"] == s for item in results)) for s in STATUSES]
    # reports written before schema 1.1 have no compliance map: derive it from their results
    compliance = report.get("compliance") or compliance_map(report.get("results", []))
    return _env().get_template("report.html.j2").render(
        report=report, results=results, cards=[{**c, "bar": Markup(c["metric"]["bar"]) if c["metric"] else ""}
                                               for c in _cards(report, results)],
        counts=[(s, n) for s, n in counts if n], compliance=compliance)
