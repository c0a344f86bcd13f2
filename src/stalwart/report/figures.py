"""HTML for a check result's ``figures``: heatmaps, histograms and ranked bars as inline SVG,
example images as embedded PNG data URIs, text examples with a word-level diff.

Every function is a pure function of the figure dict, so a page re-rendered from ``report.json``
is byte-identical. All text is HTML-escaped; nothing refers to anything outside the page.
The figure kinds are documented on :class:`stalwart.checks.base.CheckResult`.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping, Sequence
from html import escape
from typing import Any

import numpy as np

from stalwart.errors import InputError
from stalwart.report.png import chw_to_hwc, png_data_uri, to_uint8, upscale
from stalwart.report.svg import PALETTE, nice_ticks

__all__ = ["FIGURE_KINDS", "render_figure", "validate_figure", "heatmap_svg", "histogram_svg", "bars_svg",
           "image_examples_html", "text_examples_html", "word_diff", "colormap", "ordered_figures"]

#: order in which a check's figures appear (then by name): overview first, examples last
KIND_ORDER = ("heatmap", "bars", "histogram", "image_examples", "text_examples")
MAX_EXAMPLES = 24
IMAGE_SIDE = 96
_CHAR_W = 6.4  # average glyph width of the 11 px sans-serif used in charts

# viridis, sampled at nine points: perceptually uniform and readable in greyscale
_VIRIDIS = np.array([[68, 1, 84], [71, 45, 123], [59, 82, 139], [44, 114, 142], [33, 145, 140],
                     [40, 174, 128], [94, 201, 98], [173, 220, 48], [253, 231, 37]], dtype=float)


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def _e(v: Any) -> str:
    return escape("" if v is None else str(v))


def _g(v: float) -> str:
    return f"{v:.4g}"


def _text_w(s: str) -> float:
    return len(s) * _CHAR_W


def colormap(t: float) -> tuple[int, int, int]:
    """RGB of the viridis colour map at ``t`` in [0, 1] (clipped), linearly interpolated."""
    t = min(max(float(t), 0.0), 1.0) * (len(_VIRIDIS) - 1)
    i = min(int(t), len(_VIRIDIS) - 2)
    rgb = _VIRIDIS[i] + (t - i) * (_VIRIDIS[i + 1] - _VIRIDIS[i])
    return int(round(rgb[0])), int(round(rgb[1])), int(round(rgb[2]))


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def _light_text(rgb: tuple[int, int, int]) -> bool:
    # relative luminance (sRGB weights, no gamma: plenty for a black-or-white choice)
    return (0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]) / 255 < 0.55


def _svg_open(width: float, height: float, title: str, cls: str) -> list[str]:
    return [f'<svg class="chart {cls}" width="{width:.0f}" height="{height:.0f}" viewBox="0 0 {width:.0f} '
            f'{height:.0f}" role="img" aria-label="{title}">', f"<title>{title}</title>",
            f'<text x="8" y="18" class="chart-title">{title}</text>']


# -- validation ---------------------------------------------------------------------------------
def _require(fig: Mapping[str, Any], key: str, what: str) -> Any:
    value = fig.get(key)
    if value is None:
        raise InputError(f"a {fig.get('kind')} figure needs {key!r} ({what}); got none")
    return value


def _seq(fig: Mapping[str, Any], key: str, what: str) -> list[Any]:
    value = _require(fig, key, what)
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise InputError(f"a {fig.get('kind')} figure's {key!r} must be a list ({what}); got {type(value).__name__}")
    return list(value)


def validate_figure(fig: Mapping[str, Any]) -> None:
    """Raise :class:`~stalwart.errors.InputError` when ``fig`` does not match its kind's layout.

    Check authors can call this in their tests; the renderer calls it and shows the message in
    place of a figure it cannot draw, so one bad figure never breaks a whole report.
    """
    if not isinstance(fig, Mapping):
        raise InputError(f"a figure must be a dict with a 'kind'; got {type(fig).__name__}")
    kind = fig.get("kind")
    if kind not in FIGURE_KINDS:
        raise InputError(f"unknown figure kind {kind!r}; use one of {list(FIGURE_KINDS)}")
    if kind == "heatmap":
        rows, cols = _seq(fig, "rows", "row labels"), _seq(fig, "cols", "column labels")
        values = _seq(fig, "values", "one list per row")
        shape = [len(v) if isinstance(v, Sequence) else -1 for v in values]
        if len(values) != len(rows) or any(n != len(cols) for n in shape):
            raise InputError(f"a heatmap's 'values' must be {len(rows)} rows x {len(cols)} columns to match "
                             f"'rows' and 'cols'; got {len(values)} rows of lengths {shape}")
    elif kind == "histogram":
        for i, s in enumerate(_seq(fig, "series", "[{name, edges, counts}]")):
            edges, counts = _seq(s, "edges", "bin edges"), _seq(s, "counts", "bin counts")
            if len(edges) != len(counts) + 1:
                raise InputError(f"histogram series {i} ({s.get('name')!r}) needs len(edges) == len(counts) + 1; "
                                 f"got {len(edges)} edges and {len(counts)} counts")
            e = [_num(x) for x in edges]
            if None in e or any(b <= a for a, b in zip(e, e[1:])):
                raise InputError(f"histogram series {i} ({s.get('name')!r}) needs finite, increasing edges")
    elif kind == "bars":
        labels, values = _seq(fig, "labels", "bar labels"), _seq(fig, "values", "bar lengths")
        if len(values) != len(labels):
            raise InputError(f"a bars figure needs one value per label; got {len(labels)} labels and "
                             f"{len(values)} values")
        for key in ("low", "high"):
            if fig.get(key) is not None and len(_seq(fig, key, "interval ends")) != len(labels):
                raise InputError(f"a bars figure's {key!r} must have one entry per label ({len(labels)})")
    elif kind == "image_examples":
        for i, item in enumerate(_seq(fig, "items", "[{caption, before, after}]")):
            shapes = [np.shape(chw_to_hwc(np.asarray(_require(item, k, "a C x H x W image"), dtype=object)))
                      for k in ("before", "after")]
            if shapes[0] != shapes[1]:
                raise InputError(f"image example {i}: 'before' and 'after' differ in shape ({shapes[0]} vs "
                                 f"{shapes[1]})")
    elif kind == "text_examples":
        for i, item in enumerate(_seq(fig, "items", "[{original, perturbed, label, pred_before, pred_after}]")):
            for key in ("original", "perturbed"):
                if not isinstance(item.get(key), str):
                    raise InputError(f"text example {i} needs {key!r} as a string; got {item.get(key)!r}")


# -- heatmap ------------------------------------------------------------------------------------
def heatmap_svg(fig: Mapping[str, Any]) -> str:
    """A grid of coloured cells with the value printed in each, row and column labels and a
    colour-scale legend. Missing (None) cells are grey and hatched."""
    rows = [str(r) for r in fig["rows"]]
    cols = [str(c) for c in fig["cols"]]
    values = [[_num(v) for v in row] for row in fig["values"]]
    title, value_label = _e(fig.get("title") or ""), str(fig.get("value_label") or "")
    finite = [v for row in values for v in row if v is not None]
    vmin, vmax = _num(fig.get("vmin")), _num(fig.get("vmax"))
    vmin = vmin if vmin is not None else (min(finite) if finite else 0.0)
    vmax = vmax if vmax is not None else (max(finite) if finite else 1.0)
    if vmax <= vmin:
        vmax = vmin + 1.0
    digits = ".2f" if all(abs(v) < 10 for v in finite) else ".3g"

    cw = min(max(480 / max(len(cols), 1), 36.0), 64.0)
    ch = 24.0 if len(rows) <= 30 else 16.0
    rotate = max((_text_w(c) for c in cols), default=0) > cw - 4
    col_h = min(max(_text_w(c) for c in cols) * 0.72 + 8, 110) if rotate and cols else 16
    left = 12 + min(max((_text_w(r) for r in rows), default=0), 220) + 8
    row_label, col_label = _e(fig.get("row_label") or ""), _e(fig.get("col_label") or "")
    top = 30 + (16 if col_label else 0) + col_h + (14 if row_label else 0)
    pw, ph = cw * len(cols), ch * len(rows)
    lx = left + pw + 22
    leg_h = min(max(ph, 60.0), 180.0)
    width = lx + 14 + 8 + max(_text_w(_g(vmax)), _text_w(_g(vmin))) + 8
    width = max(width, lx + _text_w(value_label) + 8, lx + 21 + _text_w("missing") + 8,
                8 + _text_w(str(fig.get("title") or "")) * 1.15)
    height = top + max(ph, leg_h + 18) + 10

    out = _svg_open(width, height, title, "heatmap")
    if col_label:
        out.append(f'<text x="{left + pw / 2:.1f}" y="42" text-anchor="middle" class="label">{col_label}</text>')
    if row_label:
        out.append(f'<text x="{left - 8:.1f}" y="{top - 6:.1f}" text-anchor="end" class="label">{row_label}</text>')
    for j, c in enumerate(cols):
        x = left + (j + 0.5) * cw
        y = top - (14 if row_label else 0) - 6
        if rotate:
            out.append(f'<text transform="translate({x:.1f} {y:.1f}) rotate(-45)" class="tick">{_e(c)}</text>')
        else:
            out.append(f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="middle" class="tick">{_e(c)}</text>')
    for i, r in enumerate(rows):
        y = top + i * ch
        out.append(f'<text x="{left - 8:.1f}" y="{y + ch / 2 + 4:.1f}" text-anchor="end" class="tick">{_e(r)}</text>')
        for j, v in enumerate(values[i]):
            x = left + j * cw
            tip = f"{_e(r)} × {_e(cols[j])}: "
            if v is None:
                out.append(f'<rect class="cell missing" x="{x:.1f}" y="{y:.1f}" width="{cw:.1f}" height="{ch:.1f}" '
                           f'fill="#eeeeee" stroke="#ffffff"><title>{tip}missing</title></rect>')
                out.extend(_hatch(x, y, cw, ch))
                continue
            rgb = colormap((v - vmin) / (vmax - vmin))
            out.append(f'<rect class="cell" x="{x:.1f}" y="{y:.1f}" width="{cw:.1f}" height="{ch:.1f}" '
                       f'fill="{_hex(rgb)}" stroke="#ffffff"><title>{tip}{v:.4g}</title></rect>')
            ink = "#ffffff" if _light_text(rgb) else "#1f2328"
            out.append(f'<text x="{x + cw / 2:.1f}" y="{y + ch / 2 + 4:.1f}" text-anchor="middle" '
                       f'class="cell-value" style="fill:{ink}">{format(v, digits)}</text>')
    # colour scale: stacked bands (no gradient ids, so many heatmaps can share one page)
    steps = 32
    if value_label:
        out.append(f'<text x="{lx:.1f}" y="{top - 8:.1f}" class="legend">{_e(value_label)}</text>')
    for k in range(steps):
        y = top + leg_h * (1 - (k + 1) / steps)
        out.append(f'<rect x="{lx:.1f}" y="{y:.2f}" width="14" height="{leg_h / steps + 0.5:.2f}" '
                   f'fill="{_hex(colormap((k + 0.5) / steps))}"/>')
    for v in (vmin, (vmin + vmax) / 2, vmax):
        y = top + leg_h * (1 - (v - vmin) / (vmax - vmin))
        out.append(f'<line x1="{lx + 14:.1f}" x2="{lx + 18:.1f}" y1="{y:.1f}" y2="{y:.1f}" class="axis"/>')
        out.append(f'<text x="{lx + 21:.1f}" y="{y + 4:.1f}" class="tick">{_g(v)}</text>')
    if any(v is None for row in values for v in row):
        out.append(f'<rect x="{lx:.1f}" y="{top + leg_h + 8:.1f}" width="14" height="10" fill="#eeeeee"/>')
        out.append(f'<text x="{lx + 21:.1f}" y="{top + leg_h + 17:.1f}" class="tick">missing</text>')
    out.append("</svg>")
    return "\n".join(out)


def _hatch(x: float, y: float, w: float, h: float, step: float = 6.0) -> list[str]:
    """Diagonal lines x' + y' = k clipped to the cell by hand (a <pattern> would need a page-unique id)."""
    lines = []
    k = step
    while k < w + h:
        x1, y1 = x + max(0.0, k - h), y + min(k, h)
        x2, y2 = x + min(k, w), y + max(0.0, k - w)
        lines.append(f'<line class="hatch" x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
                     f'stroke="#b5b5b5" stroke-width="1"/>')
        k += step
    return lines


# -- shared axes --------------------------------------------------------------------------------
class _Axes:
    """A plot area with linear x and y scales, drawn with grid lines and tick labels."""

    def __init__(self, left: float, top: float, pw: float, ph: float, xt: list[float], yt: list[float] | None):
        self.left, self.top, self.pw, self.ph, self.xt, self.yt = left, top, pw, ph, xt, yt

    def px(self, x: float) -> float:
        return self.left + (x - self.xt[0]) / (self.xt[-1] - self.xt[0]) * self.pw

    def py(self, y: float) -> float:
        yt = self.yt or [0.0, 1.0]
        return self.top + self.ph - (y - yt[0]) / (yt[-1] - yt[0]) * self.ph

    def draw(self, x_label: str, y_label: str = "", vertical_grid: bool = False) -> list[str]:
        out, base = [], self.top + self.ph
        for t in self.yt or []:
            out.append(f'<line x1="{self.left}" x2="{self.left + self.pw:.1f}" y1="{self.py(t):.1f}" '
                       f'y2="{self.py(t):.1f}" class="grid"/>')
            out.append(f'<text x="{self.left - 6}" y="{self.py(t) + 4:.1f}" text-anchor="end" class="tick">{_g(t)}</text>')
        for t in self.xt:
            if vertical_grid:
                out.append(f'<line x1="{self.px(t):.1f}" x2="{self.px(t):.1f}" y1="{self.top}" y2="{base:.1f}" '
                           f'class="grid"/>')
            out.append(f'<line x1="{self.px(t):.1f}" x2="{self.px(t):.1f}" y1="{base:.1f}" y2="{base + 5:.1f}" '
                       f'class="axis"/>')
            out.append(f'<text x="{self.px(t):.1f}" y="{base + 17:.1f}" text-anchor="middle" class="tick">{_g(t)}</text>')
        out.append(f'<line x1="{self.left}" x2="{self.left + self.pw:.1f}" y1="{base:.1f}" y2="{base:.1f}" class="axis"/>')
        if x_label:
            out.append(f'<text x="{self.left + self.pw / 2:.1f}" y="{base + 34:.1f}" text-anchor="middle" '
                       f'class="label">{x_label}</text>')
        if y_label:
            out.append(f'<text transform="translate(14 {self.top + self.ph / 2:.1f}) rotate(-90)" '
                       f'text-anchor="middle" class="label">{y_label}</text>')
        return out


# -- histogram ----------------------------------------------------------------------------------
def histogram_svg(fig: Mapping[str, Any], *, width: int = 600, height: int = 300) -> str:
    """Overlaid histograms, one translucent step-filled area per series, with axes and a legend."""
    series = list(fig["series"])
    title = _e(fig.get("title") or "")
    left, right, top, bottom = 58, 170, 34, 50
    pw, ph = width - left - right, height - top - bottom
    edges = [_num(e) for s in series for e in s["edges"]]
    counts = [_num(c) or 0.0 for s in series for c in s["counts"]]
    if not series or not edges:
        return _empty(title, width)
    ax = _Axes(left, top, pw, ph, nice_ticks(min(edges), max(edges)), nice_ticks(0.0, max(max(counts), 1e-12)))
    out = _svg_open(width, height, title, "histogram")
    out += ax.draw(_e(fig.get("x_label") or ""), _e(fig.get("y_label") or "count"))
    for i, s in enumerate(series):
        color = PALETTE[i % len(PALETTE)]
        e = [float(v) for v in s["edges"]]
        c = [_num(v) or 0.0 for v in s["counts"]]
        pts = [(e[0], 0.0)]
        for k, cnt in enumerate(c):
            pts += [(e[k], cnt), (e[k + 1], cnt)]
        pts.append((e[-1], 0.0))
        path = " ".join(f"{ax.px(x):.1f},{ax.py(y):.1f}" for x, y in pts)
        name = _e(s.get("name", f"series {i + 1}"))
        out.append(f'<polygon class="hist-series" points="{path}" fill="{color}" fill-opacity="0.28" '
                   f'stroke="{color}" stroke-width="1.5"><title>{name}: n = {_g(sum(c))}</title></polygon>')
        ly, lx = top + 8 + i * 18, left + pw + 16
        out.append(f'<rect x="{lx}" y="{ly - 6}" width="18" height="12" fill="{color}" fill-opacity="0.28" '
                   f'stroke="{color}"/>')
        out.append(f'<text x="{lx + 24}" y="{ly + 4}" class="legend">{name}</text>')
    out.append("</svg>")
    return "\n".join(out)


def _empty(title: str, width: int) -> str:
    return (f'<svg class="chart" width="{width}" height="60" role="img"><title>{title}</title>'
            f'<text x="8" y="30" class="chart-empty">{title}: no data</text></svg>')


# -- bars ---------------------------------------------------------------------------------------
def bars_svg(fig: Mapping[str, Any], *, plot_width: int = 380) -> str:
    """Horizontal bars in the given order (rankings), with optional interval whiskers.

    ``x_label`` names the value axis (along the bars), ``y_label`` the category axis (the labels)."""
    labels = [str(v) for v in fig["labels"]]
    values = [_num(v) for v in fig["values"]]
    n = len(labels)
    lows = [_num(v) for v in (fig.get("low") or [None] * n)]
    highs = [_num(v) for v in (fig.get("high") or [None] * n)]
    title = _e(fig.get("title") or "")
    span = [v for v in values + lows + highs if v is not None]
    if not span:
        return _empty(title, 600)
    bar_h, gap, top = 16, 6, 34
    # the category axis gets its own label (``y_label``) in a strip left of the bar labels
    y_label = _e(fig.get("y_label") or "")
    left = 12 + (18 if y_label else 0) + min(max(_text_w(lb) for lb in labels), 240) + 10
    ph = n * (bar_h + gap)
    ax = _Axes(left, top, plot_width, ph, nice_ticks(min(0.0, *span), max(0.0, *span)), None)
    width, height = left + plot_width + 64, top + ph + 46
    out = _svg_open(width, height, title, "bars")
    out += ax.draw(_e(fig.get("x_label") or ""), y_label, vertical_grid=True)
    x0 = ax.px(0.0)
    for i, (lb, v) in enumerate(zip(labels, values)):
        y = top + i * (bar_h + gap) + gap / 2
        cy = y + bar_h / 2
        out.append(f'<text x="{left - 8:.1f}" y="{cy + 4:.1f}" text-anchor="end" class="tick">{_e(lb)}</text>')
        if v is None:
            out.append(f'<text x="{x0 + 4:.1f}" y="{cy + 4:.1f}" class="tick">–</text>')
            continue
        lo, hi = lows[i], highs[i]
        tip = f"{_e(lb)}: {v:.4g}" + (f" [{lo:.4g}, {hi:.4g}]" if lo is not None and hi is not None else "")
        xa, xb = sorted((x0, ax.px(v)))
        out.append(f'<rect class="bar" x="{xa:.1f}" y="{y:.1f}" width="{max(xb - xa, 0.5):.1f}" height="{bar_h}" '
                   f'fill="{PALETTE[0]}" fill-opacity="0.85"><title>{tip}</title></rect>')
        end = xb
        if lo is not None and hi is not None:
            a, b = ax.px(lo), ax.px(hi)
            out.append(f'<line class="whisker" x1="{a:.1f}" x2="{b:.1f}" y1="{cy:.1f}" y2="{cy:.1f}" '
                       f'stroke="#1f2328" stroke-width="1.2"/>')
            for xw in (a, b):
                out.append(f'<line x1="{xw:.1f}" x2="{xw:.1f}" y1="{cy - 4:.1f}" y2="{cy + 4:.1f}" '
                           f'stroke="#1f2328" stroke-width="1.2"/>')
            end = max(end, a, b)
        out.append(f'<text x="{end + 5:.1f}" y="{cy + 4:.1f}" class="tick">{v:.3g}</text>')
    if any(lo is not None for lo in lows):
        out.append(f'<text x="{left}" y="{height - 4}" class="legend-note">whiskers: 95% interval</text>')
    out.append("</svg>")
    return "\n".join(out)


# -- image examples -----------------------------------------------------------------------------
def _img(pixels: np.ndarray, alt: str) -> str:
    big = upscale(pixels, IMAGE_SIDE)
    return (f'<img class="px" src="{png_data_uri(big)}" width="{big.shape[1]}" height="{big.shape[0]}" '
            f'alt="{_e(alt)}">')


def image_examples_html(fig: Mapping[str, Any]) -> str:
    """Before / after / difference triples as embedded PNGs, upscaled so small images stay visible.

    The difference panel shows ``after - before`` per channel around mid-grey, stretched so the
    largest change in that example reaches black or white: adversarial changes are invisible at
    their true scale, and an L-inf attack's |difference| alone would be a flat square.
    """
    value_range = fig.get("value_range") or [0.0, 1.0]
    lo, hi = float(value_range[0]), float(value_range[1])
    items = list(fig["items"])
    out = [f'<div class="figure examples"><div class="figure-title">{_e(fig.get("title") or "")}</div>',
           '<p class="muted">difference = after − before, stretched to each example\'s largest change; '
           'grey = no change.</p>', '<div class="example-grid">']
    for item in items[:MAX_EXAMPLES]:
        before = chw_to_hwc(np.asarray(item["before"], dtype=object))
        after = chw_to_hwc(np.asarray(item["after"], dtype=object))
        delta = _floats(after) - _floats(before)
        peak = float(np.abs(delta).max()) if delta.size else 0.0
        diff = to_uint8(delta, (-peak, peak)) if peak > 0 else np.full(delta.shape, 128, np.uint8)
        out.append('<figure class="example"><div class="triple">')
        for pix, label in ((to_uint8(before, (lo, hi)), "before"), (to_uint8(after, (lo, hi)), "after"),
                           (diff, "difference")):
            out.append(f"<figure>{_img(pix, label)}<figcaption>{label}</figcaption></figure>")
        caption = _e(item.get("caption") or "")
        note = f"max |Δ| = {peak:.3g}" if peak > 0 else "no change"
        out.append(f'</div><figcaption>{caption}<span class="muted"> · {note}</span></figcaption></figure>')
    out.append("</div>")
    if len(items) > MAX_EXAMPLES:
        out.append(f'<p class="muted">{len(items) - MAX_EXAMPLES} more example(s) in report.json.</p>')
    out.append("</div>")
    return "\n".join(out)


def _floats(a: np.ndarray) -> np.ndarray:
    return np.nan_to_num(np.where(np.equal(a, None), np.nan, a).astype(float))


# -- text examples ------------------------------------------------------------------------------
def word_diff(original: str, perturbed: str) -> list[tuple[str, str]]:
    """``[(op, text)]`` with op ``"equal"``, ``"delete"`` or ``"insert"``, word by word.

    Words are whitespace-separated tokens and a segment's words are joined by single spaces,
    so every segment is clean to mark up (``~~old~~`` needs no space inside its delimiters).
    """
    a, b = original.split(), perturbed.split()
    out: list[tuple[str, str]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            out.append(("equal", " ".join(a[i1:i2])))
            continue
        if i2 > i1:
            out.append(("delete", " ".join(a[i1:i2])))
        if j2 > j1:
            out.append(("insert", " ".join(b[j1:j2])))
    return out


def diff_html(original: str, perturbed: str) -> str:
    """The word diff as HTML: deletions in ``<del>``, insertions in ``<ins>``, all escaped."""
    tags = {"equal": "{}", "delete": "<del>{}</del>", "insert": "<ins>{}</ins>"}
    return " ".join(tags[op].format(escape(text)) for op, text in word_diff(original, perturbed))


def text_examples_html(fig: Mapping[str, Any]) -> str:
    """A table of text examples: the word diff, the true label and the prediction before → after."""
    items = list(fig["items"])
    out = [f'<div class="figure text-examples"><div class="figure-title">{_e(fig.get("title") or "")}</div>',
           '<table class="examples"><tr><th class="text">text (<del>deleted</del> <ins>inserted</ins>)</th>'
           '<th class="text">label</th><th class="text">prediction</th></tr>']
    for item in items[:MAX_EXAMPLES]:
        before, after = item.get("pred_before"), item.get("pred_after")
        flip = ' class="flip"' if before != after else ""
        out.append(f'<tr><td class="text diff">{diff_html(item["original"], item["perturbed"])}</td>'
                   f'<td class="text">{_e(_dash(item.get("label")))}</td>'
                   f'<td class="text"{flip}>{_e(_dash(before))} → {_e(_dash(after))}</td></tr>')
    out.append("</table>")
    if len(items) > MAX_EXAMPLES:
        out.append(f'<p class="muted">{len(items) - MAX_EXAMPLES} more example(s) in report.json.</p>')
    out.append("</div>")
    return "\n".join(out)


def _dash(v: Any) -> Any:
    return "–" if v is None else v


# -- dispatch -----------------------------------------------------------------------------------
FIGURE_KINDS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "heatmap": heatmap_svg, "histogram": histogram_svg, "bars": bars_svg,
    "image_examples": image_examples_html, "text_examples": text_examples_html,
}


def ordered_figures(figures: Mapping[str, Any] | None) -> list[tuple[str, Mapping[str, Any]]]:
    """Figures by kind (overviews before examples), then by name: JSON sorts keys, so the order
    must not depend on the order a check inserted them."""
    rank = {k: i for i, k in enumerate(KIND_ORDER)}
    items = list((figures or {}).items())
    return sorted(items, key=lambda kv: (rank.get(kv[1].get("kind") if isinstance(kv[1], Mapping) else None,
                                                  len(rank)), kv[0]))


def render_figure(fig: Mapping[str, Any], name: str = "") -> str:
    """HTML for one figure; a figure that cannot be drawn becomes a visible note, not an exception."""
    try:
        validate_figure(fig)
        return FIGURE_KINDS[fig["kind"]](fig)
    except (InputError, KeyError, TypeError, ValueError, IndexError) as exc:
        return f'<div class="figure-error">figure {_e(name)} could not be drawn: {_e(exc)}</div>'
