"""Figures in reports: each kind's HTML structure, the PNG encoder, Markdown, and the JSON round trip."""

import base64
import json
import re
import struct
import zlib

import numpy as np
import pytest

from stalwart.checks.base import CheckResult, Metric, Status
from stalwart.errors import InputError
from stalwart.report import Report, render_html
from stalwart.report.figures import (
    bars_svg,
    colormap,
    heatmap_svg,
    histogram_svg,
    image_examples_html,
    render_figure,
    text_examples_html,
    validate_figure,
    word_diff,
)
from stalwart.report.markdown import figure_markdown
from stalwart.report.png import encode_png, png_data_uri, to_uint8, upscale

MODEL = {"name": "M", "task": "classification", "classes": [0, 1], "fingerprint": "f-model",
         "differentiable": True, "output_kind": "proba"}
DATA = {"name": "D", "modality": "image", "n_samples": 10, "fingerprint": "f-data"}


def decode_png(blob: bytes) -> tuple[int, int, int, np.ndarray]:
    """An independent reader: signature, CRC of every chunk, IHDR, and filter-0 scanlines."""
    assert blob[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, []
    while pos < len(blob):
        (n,) = struct.unpack(">I", blob[pos:pos + 4])
        kind, payload = blob[pos + 4:pos + 8], blob[pos + 8:pos + 8 + n]
        (crc,) = struct.unpack(">I", blob[pos + 8 + n:pos + 12 + n])
        assert crc == zlib.crc32(kind + payload)
        chunks.append((kind, payload))
        pos += 12 + n
    assert [k for k, _ in chunks] == [b"IHDR", b"IDAT", b"IEND"]
    w, h, depth, ctype, comp, filt, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, comp, filt, interlace) == (8, 0, 0, 0)
    channels = {0: 1, 2: 3}[ctype]
    raw = np.frombuffer(zlib.decompress(chunks[1][1]), np.uint8).reshape(h, 1 + w * channels)
    assert (raw[:, 0] == 0).all()
    pixels = raw[:, 1:].reshape(h, w, channels)
    return w, h, ctype, pixels[..., 0] if channels == 1 else pixels


def data_uris(html: str) -> list[bytes]:
    return [base64.b64decode(b) for b in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)]


# -- PNG ------------------------------------------------------------------------------------------
def test_png_grey_and_rgb_decode_to_the_same_pixels():
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    w, h, ctype, pix = decode_png(encode_png(grey))
    assert (w, h, ctype) == (4, 3, 0) and np.array_equal(pix, grey)
    rgb = np.random.default_rng(0).integers(0, 256, (5, 2, 3), dtype=np.uint8)
    w, h, ctype, pix = decode_png(encode_png(rgb))
    assert (w, h, ctype) == (2, 5, 2) and np.array_equal(pix, rgb)
    assert png_data_uri(grey).startswith("data:image/png;base64,")


def test_to_uint8_maps_the_value_range_and_upscale_repeats_pixels():
    assert to_uint8([-1.0, 0.0, 0.5, 1.0, 2.0, None], (0.0, 1.0)).tolist() == [0, 0, 128, 255, 255, 0]
    assert to_uint8([0.0, 127.5, 255.0], (0, 255)).tolist() == [0, 128, 255]
    big = upscale(np.array([[1, 2], [3, 4]], np.uint8), 6)
    assert big.shape == (6, 6) and big[:3, :3].max() == 1 and big[3:, 3:].min() == 4
    assert upscale(np.zeros((100, 50), np.uint8), 64).shape == (100, 50)  # never shrinks


@pytest.mark.parametrize(("pixels", "match"), [
    (np.zeros((2, 2), np.float32), "must be uint8"),
    (np.zeros((2, 2, 4), np.uint8), r"H x W or H x W x 3"),
    (np.zeros((0, 3), np.uint8), "non-empty"),
])
def test_png_rejects_bad_pixels(pixels, match):
    with pytest.raises(InputError, match=match):
        encode_png(pixels)
    with pytest.raises(InputError, match=r"value_range .* hi > lo"):
        to_uint8([0.1], (1.0, 1.0))


# -- heatmap --------------------------------------------------------------------------------------
HEAT = {"kind": "heatmap", "title": "Accuracy <by> severity", "rows": ["noise & co", "blur", "fog"],
        "cols": [1, 2, 3, 4], "values": [[1.0, 0.75, 0.5, None], [0.9, 0.8, 0.7, 0.6], [0.0, 0.25, 0.5, 0.25]],
        "row_label": "perturbation", "col_label": "severity", "value_label": "accuracy", "vmin": 0.0, "vmax": 1.0}


def test_heatmap_cells_values_colours_and_missing_hatch():
    svg = heatmap_svg(HEAT)
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert svg.count('<rect class="cell"') == 11 and svg.count('<rect class="cell missing"') == 1
    assert svg.count('class="hatch"') >= 2
    values = re.findall(r'class="cell-value"[^>]*>([^<]+)<', svg)
    assert values == ["1.00", "0.75", "0.50", "0.90", "0.80", "0.70", "0.60", "0.00", "0.25", "0.50", "0.25"]
    # vmax is the top of viridis, vmin its bottom; dark cells get white ink
    cells = re.findall(r'<rect class="cell" [^>]*fill="(#[0-9a-f]{6})"', svg)
    assert cells[0] == "#fde725" and cells[7] == "#440154"
    assert 'style="fill:#ffffff">0.00<' in svg and 'style="fill:#1f2328">1.00<' in svg
    assert "noise &amp; co" in svg and "Accuracy &lt;by&gt; severity" in svg and "<by>" not in svg
    assert "accuracy" in svg and "missing" in svg and ">perturbation<" in svg and ">severity<" in svg


def test_colormap_is_monotone_in_lightness():
    lum = [0.2126 * r + 0.7152 * g + 0.0722 * b for r, g, b in (colormap(t) for t in np.linspace(0, 1, 11))]
    assert all(b > a for a, b in zip(lum, lum[1:]))
    assert colormap(-3) == colormap(0) == (68, 1, 84) and colormap(7) == (253, 231, 37)


# -- histogram and bars ---------------------------------------------------------------------------
def test_histogram_overlays_one_step_area_per_series():
    fig = {"kind": "histogram", "title": "scores", "x_label": "score",
           "series": [{"name": "in", "edges": [0, 1, 2], "counts": [1, 3]},
                      {"name": "out <x>", "edges": [0.5, 1.5, 2.5], "counts": [2, 0]}]}
    svg = histogram_svg(fig)
    polys = re.findall(r'<polygon class="hist-series" points="([^"]+)"', svg)
    assert len(polys) == 2
    pts = [tuple(map(float, p.split(","))) for p in polys[0].split()]
    assert len(pts) == 2 * 2 + 2
    # y ticks 0..3: count 3 reaches the top of the plot (y = 34), count 0 the axis (y = 34 + 216)
    assert pts[3][1] == pytest.approx(34.0) and pts[0][1] == pytest.approx(250.0)
    assert pts[1][1] == pytest.approx(250.0 - 216.0 / 3)
    assert "out &lt;x&gt;" in svg and ">count<" in svg and ">score<" in svg


def test_bars_lengths_are_proportional_and_whiskers_drawn():
    fig = {"kind": "bars", "title": "sensitivity", "x_label": "drop", "labels": ["a", "b<", "c"],
           "values": [0.2, 0.1, 0.05], "low": [0.15, 0.05, None], "high": [0.25, 0.15, None]}
    svg = bars_svg(fig)
    widths = [float(w) for w in re.findall(r'<rect class="bar" [^>]*width="([\d.]+)"', svg)]
    assert len(widths) == 3
    assert widths[0] / widths[1] == pytest.approx(2.0, rel=0.02) and widths[0] / widths[2] == pytest.approx(4.0, rel=0.02)
    assert svg.count('class="whisker"') == 2 and "b&lt;" in svg and "whiskers: 95% interval" in svg
    neg = bars_svg({"kind": "bars", "labels": ["x", "y"], "values": [-0.1, 0.3]})
    assert neg.count('<rect class="bar"') == 2 and "whisker" not in neg


# -- image examples -------------------------------------------------------------------------------
def test_image_examples_embed_upscaled_pngs_with_exact_pixels():
    rng = np.random.default_rng(0)
    digit = rng.integers(0, 17, (1, 8, 8)) / 16.0
    rgb = rng.uniform(0, 1, (3, 32, 32))
    fig = {"kind": "image_examples", "title": "fooled", "value_range": [0.0, 1.0],
           "items": [{"caption": "7 → 1 <b>", "before": digit.tolist(), "after": digit.tolist()},
                     {"caption": "rgb", "before": rgb.tolist(), "after": np.clip(rgb + 0.03, 0, 1).tolist()}]}
    html = image_examples_html(fig)
    assert html.count("<img") == 6 and "7 → 1 &lt;b&gt;" in html
    pngs = [decode_png(b) for b in data_uris(html)]
    assert [(w, h, t) for w, h, t, _ in pngs] == [(96, 96, 0)] * 3 + [(96, 96, 2)] * 3
    expected = np.repeat(np.repeat(np.round(digit[0] * 255).astype(np.uint8), 12, 0), 12, 1)
    assert np.array_equal(pngs[0][3], expected) and np.array_equal(pngs[1][3], expected)
    assert (pngs[2][3] == 128).all()  # no change: the difference panel is flat grey
    assert np.array_equal(pngs[3][3][::3, ::3], np.round(rgb.transpose(1, 2, 0) * 255).astype(np.uint8))
    # +0.03 everywhere except where clipping at 1 cut it short: those pixels are dimmer than white
    diff = pngs[5][3][::3, ::3].astype(int)
    unclipped = (rgb + 0.03 <= 1).transpose(1, 2, 0)
    assert (diff[unclipped] == 255).all() and (diff[~unclipped] < 255).all()
    assert "max |Δ| = 0.03" in html


# -- text examples --------------------------------------------------------------------------------
def test_word_diff_marks_deleted_and_inserted_words():
    assert word_diff("the good movie", "the goood movie") == [
        ("equal", "the"), ("delete", "good"), ("insert", "goood"), ("equal", "movie")]
    assert word_diff("a b c", "a c d") == [("equal", "a"), ("delete", "b"), ("equal", "c"), ("insert", "d")]


def test_text_examples_are_escaped_and_flips_marked():
    fig = {"kind": "text_examples", "title": "flips", "items": [
        {"original": "<script>x</script> fine & good", "perturbed": "<script>x</script> fine & bad",
         "label": "pos", "pred_before": "pos", "pred_after": "neg"},
        {"original": "same", "perturbed": "same", "label": 1, "pred_before": 1, "pred_after": 1}]}
    html = text_examples_html(fig)
    assert "<script" not in html and "&lt;script&gt;x&lt;/script&gt; fine &amp;" in html
    assert "<del>good</del> <ins>bad</ins>" in html
    assert html.count('<td class="text flip">') == 0 and html.count(' class="flip"') == 1
    assert "pos → neg" in html and "1 → 1" in html


# -- validation and dispatch ----------------------------------------------------------------------
@pytest.mark.parametrize(("fig", "match"), [
    ({"kind": "pie"}, r"unknown figure kind 'pie'"),
    ({**HEAT, "values": [[1.0]]}, r"3 rows x 4 columns"),
    ({"kind": "histogram", "series": [{"name": "s", "edges": [0, 1], "counts": [1, 2]}]},
     r"len\(edges\) == len\(counts\) \+ 1"),
    ({"kind": "histogram", "series": [{"name": "s", "edges": [1, 0], "counts": [1]}]}, "increasing edges"),
    ({"kind": "bars", "labels": ["a"], "values": [1, 2]}, "one value per label"),
    ({"kind": "image_examples", "items": [{"before": [[[0.0]]], "after": [[[0.0, 1.0]]]}]}, "differ in shape"),
    ({"kind": "text_examples", "items": [{"original": "a", "perturbed": None}]}, "'perturbed' as a string"),
    ({"kind": "heatmap", "cols": [1], "values": [[1]]}, r"needs 'rows'"),
])
def test_bad_figures_raise_and_render_as_a_note(fig, match):
    with pytest.raises(InputError, match=match):
        validate_figure(fig)
    note = render_figure(fig, "broken <fig>")
    assert note.startswith('<div class="figure-error">') and "broken &lt;fig&gt;" in note


# -- in a report ----------------------------------------------------------------------------------
def figure_report() -> Report:
    rng = np.random.default_rng(1)
    img = rng.uniform(0, 1, (1, 8, 8))
    figures = {
        "heat": HEAT,
        "hist": {"kind": "histogram", "title": "Score histogram", "x_label": "score",
                 "series": [{"name": "in", "edges": [0, 1, 2], "counts": [4, 1]},
                            {"name": "out", "edges": [0, 1, 2], "counts": [1, 5]}]},
        "rank": {"kind": "bars", "title": "Ranking", "labels": ["a|b", "c"], "values": [0.3, 0.1],
                 "low": [0.2, 0.0], "high": [0.4, 0.2]},
        "imgs": {"kind": "image_examples", "title": "Images", "value_range": [0, 1],
                 "items": [{"caption": "c", "before": img.tolist(), "after": (img * 0.5).tolist()}]},
        "texts": {"kind": "text_examples", "title": "Texts", "items": [
            {"original": "a *great* film", "perturbed": "a *graet* film", "label": 1, "pred_before": 1,
             "pred_after": 0}]},
    }
    results = [CheckResult("natural_robustness", "natural", Status.FAIL,
                           {"accuracy_drop_s3": Metric("accuracy_drop_s3", 0.2, 0.1, 0.3, 50)}, figures=figures,
                           message="too fragile", headline_metric="accuracy_drop_s3"),
               CheckResult("adversarial_robustness", "adversarial", Status.SKIP, message="black-box")]
    return Report(results=results, model=MODEL, data=DATA, suite={"name": "figs"}, seed=3,
                  versions={"python": "3"}, created="2026-01-01T00:00:00+00:00", stalwart_version="0.1.0")


def test_report_html_renders_every_kind_and_is_self_contained():
    rep = figure_report()
    html = rep.to_html()
    assert html.count('<rect class="cell"') == 11 and html.count('class="hist-series"') == 2
    assert html.count('<rect class="bar"') == 2 and html.count("<img") == 3 and "<ins>*graet*</ins>" in html
    # overviews before examples, whatever the (JSON-sorted) order of the names
    order = [html.index(s) for s in ('class="chart heatmap"', 'class="chart bars"', 'class="chart histogram"',
                                     'class="figure examples"', 'class="figure text-examples"')]
    assert order == sorted(order)
    assert "http://" not in html and "https://" not in html and "<script" not in html
    assert re.search(r"\b(src|href)=\"(?!data:image/png;base64,|#)", html) is None  # nothing external


def test_json_round_trip_keeps_figures_and_compliance_and_rerenders_identically():
    rep = figure_report()
    text = rep.to_json()
    d = json.loads(text)
    assert set(d["results"][0]["figures"]) == {"heat", "hist", "rank", "imgs", "texts"}
    assert d["results"][0]["figures"]["heat"]["values"][0][3] is None
    assert d["compliance"]["frameworks"][0]["framework"] == "EU AI Act"
    back = Report.from_json(text)
    assert back.to_json() == text
    assert back.results[0].figures == json.loads(json.dumps(rep.results[0].figures))
    assert render_html(d) == rep.to_html() == back.to_html()


def test_markdown_figures():
    md = figure_report().to_markdown()
    assert "### Accuracy &lt;by&gt; severity (accuracy)" in md
    assert "| perturbation \\ severity | 1 | 2 | 3 | 4 |" in md and "| noise & co | 1.000 | 0.750 | 0.500 | – |" in md
    assert "| score | in | out |" in md and "| [0, 1) | 4 | 1 |" in md
    assert "| label | value | low | high |" in md and "| a\\|b | 0.300 | 0.200 | 0.400 |" in md
    assert "- label 1, prediction 1 → 0: a ~~\\*great\\*~~ **\\*graet\\*** film" in md
    assert "_1 image example(s) omitted in Markdown; see index.html._" in md
    tagged = figure_markdown({"kind": "bars", "x_label": "drop", "labels": ["<b>x</b>"], "values": [0.5]})
    assert "| label | drop | low | high |" in tagged and "| &lt;b>x&lt;/b> | 0.500 | – | – |" in tagged
    many = figure_markdown({"kind": "histogram", "series": [
        {"name": "s", "edges": list(range(31)), "counts": [0] * 10 + [2] + [0] * 19}]}, "h")
    assert "| s | 2 | 0 | 30 | 10.500 | 0.000 |" in many


# -- axis labels: every chart kind names its axes ----------------------------------------------------
def _label_texts(svg: str) -> list[str]:
    return re.findall(r'class="label"[^>]*>([^<]*)</text>', svg)


def test_every_chart_kind_renders_its_axis_labels():
    from stalwart.report.svg import line_chart

    line = line_chart({"title": "t", "x_label": "severity", "y_label": "accuracy",
                       "series": [{"name": "a", "x": [0, 1], "y": [0.9, 0.8]}]})
    assert _label_texts(line) == ["severity", "accuracy"]
    hist = histogram_svg({"kind": "histogram", "title": "t", "x_label": "energy score", "y_label": "share of rows",
                          "series": [{"name": "in", "edges": [0, 1, 2], "counts": [1, 2]}]})
    assert _label_texts(hist) == ["energy score", "share of rows"]
    assert _label_texts(histogram_svg({"kind": "histogram", "series": [{"edges": [0, 1], "counts": [3]}]})) == \
        ["count"]  # the y axis is labelled even when the figure does not say
    bars = bars_svg({"kind": "bars", "title": "t", "x_label": "samples broken", "y_label": "attack",
                     "labels": ["apgd-ce", "square"], "values": [3, 1]})
    assert _label_texts(bars) == ["samples broken", "attack"]
    # the category-axis label sits left of the longest bar label, never on top of it
    x_lab = float(re.search(r'translate\(([\d.]+) [\d.]+\) rotate\(-90\)[^>]*class="label"', bars).group(1))
    first_tick = min(float(x) - 6.4 * len(t) for x, t in re.findall(
        r'<text x="([\d.]+)" y="[\d.]+" text-anchor="end" class="tick">([^<]+)</text>', bars) if t in ("apgd-ce", "square"))
    assert x_lab < first_tick
    heat = heatmap_svg({"kind": "heatmap", "title": "t", "rows": ["a"], "cols": [1, 3], "values": [[0.5, 0.4]],
                        "row_label": "perturbation", "col_label": "severity", "value_label": "accuracy"})
    assert set(_label_texts(heat)) == {"perturbation", "severity"} and ">accuracy</text>" in heat
