"""The inline SVG chart helper."""

import re

import pytest

from stalwart.report.svg import line_chart, nice_ticks


@pytest.mark.parametrize(("lo", "hi", "ticks"), [
    (0, 5, [0, 1, 2, 3, 4, 5]),
    (0, 0.2, [0, 0.05, 0.1, 0.15, 0.2]),
    (0.013, 0.97, [0, 0.2, 0.4, 0.6, 0.8, 1.0]),
    (3, 3, [2.4, 2.6, 2.8, 3.0, 3.2, 3.4, 3.6]),
    (-0.3, 1.7, [-0.5, 0, 0.5, 1.0, 1.5, 2.0]),
])
def test_nice_ticks(lo, hi, ticks):
    assert nice_ticks(lo, hi) == pytest.approx(ticks)


def test_chart_has_axes_legend_band_and_escapes_text():
    curve = {"title": "A <b> chart", "x_label": "severity", "y_label": "accuracy",
             "series": [{"name": "noise & co", "x": [0, 1, 2], "y": [0.9, None, 0.5],
                         "low": [0.8, None, 0.4], "high": [0.95, None, 0.6]},
                        {"name": "blur", "x": [0, 1, 2], "y": [0.9, 0.8, 0.7]}]}
    svg = line_chart(curve)
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "A &lt;b&gt; chart" in svg and "noise &amp; co" in svg and "<b>" not in svg
    assert svg.count("<polygon") == 1  # only the series with an interval is shaded
    assert svg.count("<polyline") == 2
    assert len(re.findall(r"<circle", svg)) == 2 + 3  # the missing point is left out
    assert "shaded: 95% interval" in svg and "http" not in svg


def test_empty_chart_says_so():
    assert "no data" in line_chart({"title": "t", "series": []})
