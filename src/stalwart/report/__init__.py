"""Reports: the data model (JSON with a versioned schema), HTML with inline SVG charts, Markdown."""

from stalwart.report.core import (
    SCHEMA_VERSION,
    TIMING_KEYS,
    Report,
    drop_timings,
    json_safe,
    package_versions,
)
from stalwart.report.html import render_html
from stalwart.report.markdown import render_markdown

__all__ = ["Report", "SCHEMA_VERSION", "TIMING_KEYS", "drop_timings", "json_safe", "package_versions",
           "render_html", "render_markdown"]
