"""A small inline-SVG line chart: axes, ticks, legend and shaded confidence bands. No JavaScript."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

__all__ = ["line_chart", "nice_ticks", "PALETTE"]

#: colour-blind-friendly (Okabe-Ito), then greys for long lists
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000",
           "#999999", "#666666")


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """Round tick values covering [lo, hi] with about ``n`` intervals (steps of 1, 2, 2.5 or 5 x 10^k)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0, 1.0]
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.floor(lo / step + 1e-9)
    last = max(math.ceil(hi / step - 1e-9), first + 1)
    return [round(k * step, 12) for k in range(first, last + 1)]


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def line_chart(curve: Mapping[str, Any], *, width: int = 600, height: int = 330) -> str:
    """SVG markup for ``curve`` = ``{"title", "x_label", "y_label", "series": [{"name", "x", "y",
    "low", "high"}]}``; the band between ``low`` and ``high`` is shaded. Missing points (None) are
    left out. ``"x_scale": "log"`` / ``"y_scale": "log"`` draw that axis in powers of ten (points
    at or below 0 are left out). All text is escaped.
    """
    log_x, log_y = curve.get("x_scale") == "log", curve.get("y_scale") == "log"
    series = [_logged(s, log_x, log_y) for s in curve.get("series") or []]
    title = escape(str(curve.get("title") or ""))
    x_label = escape(str(curve.get("x_label") or ""))
    y_label = escape(str(curve.get("y_label") or ""))
    left, right, top, bottom = 58, 170, 34, 48
    # grow to fit the legend (one 18 px line per series, plus the interval note)
    height = max(height, top + 8 + 18 * len(series) + 24)
    pw, ph = width - left - right, height - top - bottom

    xs = [x for s in series for x in s.get("x", []) if _finite(x)]
    ys = [v for s in series for key in ("y", "low", "high") for v in (s.get(key) or []) if _finite(v)]
    if not xs or not ys:
        return (f'<svg class="chart" width="{width}" height="60" role="img">'
                f'<title>{title}</title><text x="8" y="30" class="chart-empty">{title}: no data</text></svg>')
    x_ticks = _decades(xs) if log_x else nice_ticks(min(xs), max(xs))
    # rates live in [0, 1]: show the full scale so charts are comparable
    if log_y:
        y_ticks = _decades(ys)
    elif min(ys) >= 0 and max(ys) <= 1:
        y_ticks = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    else:
        y_ticks = nice_ticks(min(ys), max(ys))
    x_text = (lambda t: _fmt(10 ** t)) if log_x else _fmt  # noqa: E731 - tick labels in the data's units
    y_text = (lambda t: _fmt(10 ** t)) if log_y else _fmt  # noqa: E731
    x0, x1, y0, y1 = x_ticks[0], x_ticks[-1], y_ticks[0], y_ticks[-1]

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * pw

    def py(y: float) -> float:
        return top + ph - (y - y0) / (y1 - y0) * ph

    out = [f'<svg class="chart" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="{title}">', f"<title>{title}</title>",
           f'<text x="{left}" y="20" class="chart-title">{title}</text>']
    for t in y_ticks:
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{py(t):.1f}" y2="{py(t):.1f}" class="grid"/>')
        out.append(f'<text x="{left - 6}" y="{py(t) + 4:.1f}" text-anchor="end" class="tick">{y_text(t)}</text>')
    for t in x_ticks:
        out.append(f'<line x1="{px(t):.1f}" x2="{px(t):.1f}" y1="{top + ph}" y2="{top + ph + 5}" class="axis"/>')
        out.append(f'<text x="{px(t):.1f}" y="{top + ph + 18}" text-anchor="middle" class="tick">{x_text(t)}</text>')
    out.append(f'<line x1="{left}" x2="{left + pw}" y1="{top + ph}" y2="{top + ph}" class="axis"/>')
    out.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + ph}" class="axis"/>')
    out.append(f'<text x="{left + pw / 2:.1f}" y="{height - 8}" text-anchor="middle" class="label">{x_label}</text>')
    out.append(f'<text transform="translate(14 {top + ph / 2:.1f}) rotate(-90)" text-anchor="middle" '
               f'class="label">{y_label}</text>')

    for i, s in enumerate(series):
        color = PALETTE[i % len(PALETTE)]
        pts = _points(s.get("x"), s.get("y"))
        band = [(x, lo, hi) for x, lo, hi in zip(s.get("x") or [], s.get("low") or [], s.get("high") or [])
                if _finite(x) and _finite(lo) and _finite(hi)]
        if len(band) >= 2:
            upper = " ".join(f"{px(x):.1f},{py(hi):.1f}" for x, _, hi in band)
            lower = " ".join(f"{px(x):.1f},{py(lo):.1f}" for x, lo, _ in reversed(band))
            out.append(f'<polygon points="{upper} {lower}" fill="{color}" fill-opacity="0.14" stroke="none"/>')
        if len(pts) >= 2:
            line = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
            out.append(f'<polyline points="{line}" fill="none" stroke="{color}" stroke-width="2"/>')
        for x, y in pts:
            out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{color}">'
                       f"<title>{escape(str(s.get('name', '')))}: {x_text(x)} → {y_text(y)}</title></circle>")
        ly = top + 8 + i * 18
        lx = left + pw + 16
        out.append(f'<line x1="{lx}" x2="{lx + 18}" y1="{ly}" y2="{ly}" stroke="{color}" stroke-width="3"/>')
        out.append(f'<text x="{lx + 24}" y="{ly + 4}" class="legend">{escape(str(s.get("name", "")))}</text>')
    if any(s.get("low") for s in series):
        ly = top + 8 + len(series) * 18 + 6
        out.append(f'<text x="{left + pw + 16}" y="{ly + 4}" class="legend-note">shaded: 95% interval</text>')
    out.append("</svg>")
    return "\n".join(out)


def _logged(s: Mapping[str, Any], log_x: bool, log_y: bool) -> dict[str, Any]:
    """The series with log10 taken on the log axes; values at or below 0 become None (left out)."""
    def lg(values: Any) -> Any:
        return None if values is None else [math.log10(v) if _finite(v) and v > 0 else None for v in values]

    out = dict(s)
    if log_x:
        out["x"] = lg(s.get("x"))
    if log_y:
        for key in ("y", "low", "high"):
            out[key] = lg(s.get(key))
    return out


def _decades(values: list[float]) -> list[float]:
    """Tick positions (log10) at whole powers of ten covering the values."""
    lo, hi = math.floor(min(values)), math.ceil(max(values))
    return [float(k) for k in range(lo, max(hi, lo + 1) + 1)]


def _points(x: Sequence[Any] | None, y: Sequence[Any] | None) -> list[tuple[float, float]]:
    return [(a, b) for a, b in zip(x or [], y or []) if _finite(a) and _finite(b)]
