"""HTML rendering of a report dict: one self-contained page (inline CSS and SVG, no scripts, no URLs)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from stalwart.checks.base import ordered
from stalwart.report.svg import line_chart

__all__ = ["render_html", "fmt"]

TEMPLATES = Path(__file__).parent / "templates"


@lru_cache(maxsize=1)
def _env():
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True)
    env.filters["fmt"] = fmt
    return env


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


def render_html(report: Mapping[str, Any]) -> str:
    """The report page for a report dict (``Report.to_dict()`` or a loaded ``report.json``)."""
    from markupsafe import Markup

    results = []
    for r in report.get("results", []):
        r = ordered(r)
        charts = [Markup(line_chart(curve)) for _, curve in sorted((r.get("curves") or {}).items())]
        tables = [{"name": name, "columns": _table_columns(rows), "rows": rows}
                  for name, rows in (r.get("tables") or {}).items() if rows]
        results.append({"r": r, "charts": charts, "tables": tables})
    cards = report.get("scorecard") or {}
    categories = list(dict.fromkeys(item["r"]["category"] for item in results))
    scorecard = [(c, cards[c]) for c in categories if c in cards] + [(c, v) for c, v in cards.items()
                                                                      if c not in categories]
    return _env().get_template("report.html.j2").render(report=report, results=results, scorecard=scorecard)
