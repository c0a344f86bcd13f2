"""Markdown rendering of a report dict: the scorecard, each check's metrics, tables and figures,
then the compliance evidence map."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from itertools import zip_longest
from typing import Any

from stalwart.checks.base import ordered
from stalwart.report._text import notes_of, require_report
from stalwart.report.advice import report_advice
from stalwart.report.compliance import compliance_map
from stalwart.report.figures import ordered_figures, validate_figure, word_diff
from stalwart.report.glossary import CONDITION_SYNTAX, entries_for, format_value, metric_names
from stalwart.report.html import cell, fmt, table_columns
from stalwart.report.summaries import condition_detail, headline, report_title, verdict

__all__ = ["render_markdown", "figure_markdown"]

_MD_SPECIAL = re.compile(r"([\\`*_~\[\]|#])")
_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")
MAX_BINS = 20


def _cell(value: Any, column: str = "") -> str:
    # "<b" could open raw HTML in GitHub's renderer; "<= 0.1" in a condition is left readable
    text = cell(column, value) if column else fmt(value)
    return _TAG_START.sub("&lt;", text.replace("|", "\\|").replace("\n", " "))


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], columns: Sequence[str] = ()) -> list[str]:
    cols = list(columns) or [""] * len(header)
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(v, c) for v, c in zip(row, cols)) + " |" for row in rows]
    return lines + [""]


def _code(text: str) -> str:
    """Advice text for Markdown: code spans kept, everything else made inert (spaces around the
    spans kept, so they stay separate words)."""
    parts = str(text).split("`")
    inert = (_MD_SPECIAL.sub(r"\\\1", p).replace("<", "&lt;").replace(">", "&gt;") for p in parts[::2])
    spans = (f"`{p}`" for p in parts[1::2])
    merged = [x for pair in zip_longest(inert, spans, fillvalue="") for x in pair]
    return " ".join("".join(merged).split())


def render_markdown(report: Mapping[str, Any]) -> str:
    """GitHub-flavoured Markdown for a report dict (``Report.to_dict()`` or a loaded JSON)."""
    require_report(report, "render_markdown")
    model, data = report.get("model", {}), report.get("data", {})
    out = [f"# {report_title(report)}: **{report.get('status', '?')}**", "",
           f"{model.get('name')} on {data.get('name')} · suite {report.get('suite', {}).get('name', 'custom')} · "
           f"seed {report.get('seed')} · stalwart {report.get('stalwart_version')}", "", "## Scorecard", ""]
    results = [ordered(r) for r in report.get("results", [])]
    cards = report.get("scorecard") or {}
    cats = list(dict.fromkeys([r["category"] for r in results if r["category"] in cards] + list(cards)))
    rows = []
    for cat in cats:
        status = cards[cat]["status"]
        members = [r for r in results if r["category"] == cat]
        lead = next((r for r in members if r["status"] == status), members[0] if members else None)
        text = headline(lead) if lead is not None else cards[cat].get("headline")
        rows.append([cat, status, text or "–", ", ".join(cards[cat].get("checks", []))])
    out += _table(["category", "status", "headline", "checks"], rows)
    out += _table(["check", "category", "status", "headline", "verdict"],
                  [[r["check"], r["category"], r["status"], headline(r) or "–", verdict(r) or "–"] for r in results])
    todo = report_advice(report)
    if todo:
        out += ["## What to do next", ""]
        for _, r, items in todo:
            out += [f"### {_text(r.get('check'))}: {r.get('status')}", ""]
            out += [f"- {_code(a.text)}" for a in items] + [""]
    for r in results:
        head = headline(r)
        out += [f"## {r['check']}: {r['status']}", "", f"**{_text(head or r.get('message', ''))}**", ""]
        notes = notes_of(r, head)
        if notes:
            out += [_text(notes), ""]
        if r.get("conditions"):
            out += _table(["condition", "status", "detail"],
                          [[f"`{c['condition']}`", c["status"], condition_detail(r, c)] for c in r["conditions"]])
        if r.get("metrics"):
            out += _table(["metric", "value", "low", "high", "n"],
                          [[k, format_value(k, m.get("value")),
                            format_value(k, m.get("low")) if m.get("low") is not None else None,
                            format_value(k, m.get("high")) if m.get("high") is not None else None, m.get("n")]
                           for k, m in r["metrics"].items()])
        for name, table_rows in (r.get("tables") or {}).items():
            cols = table_columns(table_rows or [])
            if not table_rows or not cols:
                continue
            out += [f"### {name.replace('_', ' ')}", ""]
            out += _table(cols, [[row.get(c) for c in cols] for row in table_rows], cols)
        for name, fig in ordered_figures(r.get("figures")):
            out += figure_markdown(fig, name)
    out += _glossary(report, results)
    out += _compliance(report)
    out += ["## Run", ""]
    meta = [["model fingerprint", model.get("fingerprint")], ["data fingerprint", data.get("fingerprint")],
            ["seed", report.get("seed")], ["created", report.get("created")]]
    meta += [[k, v] for k, v in sorted((report.get("versions") or {}).items())]
    out += _table(["", ""], meta)
    return "\n".join(out).rstrip() + "\n"


def _glossary(report: Mapping[str, Any], results: list[Mapping[str, Any]]) -> list[str]:
    columns = [c for r in results for rows in (r.get("tables") or {}).values() for c in table_columns(rows or [])]
    entries = entries_for(metric_names(results), columns)
    # no code spans: GitHub shows "&lt;" literally inside one, and family keys hold "<...>"
    rows = [[_text(e.key), e.meaning + (f" Here: {', '.join(names)}." if names != [e.key] else ""),
             e.better or "–"] for e, names in entries]
    if any(r.get("conditions") for r in results):
        rows.append(["condition", CONDITION_SYNTAX.meaning, "–"])
    if not rows:
        return []
    return ["## Glossary", "", *_table(["term", "meaning", "better"], rows)]


def _text(value: Any) -> str:
    """Plain text made inert in Markdown: specials backslash-escaped, angle brackets as entities."""
    text = _MD_SPECIAL.sub(r"\\\1", str(value)).replace("<", "&lt;").replace(">", "&gt;")
    return " ".join(text.split())


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v) if math.isfinite(v) else None


def figure_markdown(fig: Mapping[str, Any], name: str = "") -> list[str]:
    """Markdown lines for one figure: heatmaps as tables, histograms and bars as compact tables,
    text examples as a list with ``~~deleted~~ **inserted**`` words; images are left to the HTML."""
    title = str(fig.get("title") or name.replace("_", " ")) if isinstance(fig, Mapping) else name
    out = [f"### {_text(title)}", ""]
    try:
        validate_figure(fig)
    except Exception as exc:  # noqa: BLE001 - a bad figure is reported, never fatal
        return out + [f"_figure {_text(name)} could not be drawn: {_text(exc)}_", ""]
    kind = fig["kind"]
    if kind == "heatmap":
        corner = " \\ ".join(_text(v) for v in (fig.get("row_label"), fig.get("col_label")) if v) or ""
        label = f" ({_text(fig['value_label'])})" if fig.get("value_label") else ""
        out[0] = f"### {_text(title)}{label}"
        return out + _table([corner, *map(str, fig["cols"])],
                            [[str(row), *vals] for row, vals in zip(fig["rows"], fig["values"])])
    if kind == "bars":
        n = len(fig["labels"])
        low, high = fig.get("low") or [None] * n, fig.get("high") or [None] * n
        return out + _table([str(fig.get("y_label") or "label"), str(fig.get("x_label") or "value"), "low", "high"],
                            [[str(lb), v, lo, hi] for lb, v, lo, hi in zip(fig["labels"], fig["values"], low, high)])
    if kind == "histogram":
        return out + _histogram(fig)
    if kind == "text_examples":
        for item in fig["items"]:
            words = []
            for op, text in word_diff(item["original"], item["perturbed"]):
                t = _text(text)
                words.append(t if op == "equal" else f"~~{t}~~" if op == "delete" else f"**{t}**")
            preds = f"{_text(fmt(item.get('pred_before')))} → {_text(fmt(item.get('pred_after')))}"
            out.append(f"- label {_text(fmt(item.get('label')))}, prediction {preds}: {' '.join(words)}")
        return out + [""]
    n = len(fig.get("items") or [])
    return out + [f"_{n} image example(s) omitted in Markdown; see index.html._", ""]


def _histogram(fig: Mapping[str, Any]) -> list[str]:
    series = list(fig["series"])
    names = [str(s.get("name", f"series {i + 1}")) for i, s in enumerate(series)]
    edges = [list(s["edges"]) for s in series]
    if series and all(e == edges[0] for e in edges) and len(edges[0]) - 1 <= MAX_BINS:
        e = edges[0]
        rows = [[f"[{e[k]:.4g}, {e[k + 1]:.4g})", *(s["counts"][k] for s in series)] for k in range(len(e) - 1)]
        return _table([str(fig.get("x_label") or "bin"), *names], rows)
    # many or unequal bins: one summary row per series, moments from the bin midpoints
    rows = []
    for name, s in zip(names, series):
        e = [float(v) for v in s["edges"]]
        c = [_num(v) or 0.0 for v in s["counts"]]
        mids = [(a + b) / 2 for a, b in zip(e, e[1:])]
        n = sum(c)
        mean = sum(m * w for m, w in zip(mids, c)) / n if n else None
        sd = math.sqrt(sum(w * (m - mean) ** 2 for m, w in zip(mids, c)) / n) if n else None
        total = sum(v for v in s["counts"] if _num(v) is not None)  # ints stay ints in the table
        rows.append([name, total, s["edges"][0], s["edges"][-1], mean, sd])
    return _table(["series", "n", "min edge", "max edge", "mean (binned)", "sd (binned)"], rows)


def _compliance(report: Mapping[str, Any]) -> list[str]:
    comp = report.get("compliance") or compliance_map(report.get("results", []))
    out = ["## Compliance evidence", "", f"_{comp['disclaimer']}_", ""]
    for fw in comp["frameworks"]:
        out += [f"### {fw['framework']} ({fw['scope']})", ""]
        rows = []
        for req in fw["requirements"]:
            evidence = ", ".join(f"{e['check']} ({e['status']})" for e in req["evidence"]) or "–"
            rows.append([req["id"], req["title"], evidence,
                         req["status"] if req["covered"] else "not covered by this report"])
        out += _table(["requirement", "what it asks", "evidence", "status"], rows)
    return out
