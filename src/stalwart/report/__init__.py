"""Reports: the data model (JSON with a versioned schema), HTML with inline SVG charts and figures,
Markdown, JUnit XML, and the compliance evidence map."""

from stalwart.report.compliance import compliance_map
from stalwart.report.core import (
    SCHEMA_VERSION,
    TIMING_KEYS,
    Report,
    drop_timings,
    json_safe,
    package_versions,
)
from stalwart.report.html import render_html
from stalwart.report.junit import render_junit
from stalwart.report.markdown import render_markdown

__all__ = ["Report", "SCHEMA_VERSION", "TIMING_KEYS", "compliance_map", "drop_timings", "json_safe",
           "package_versions", "render_html", "render_junit", "render_markdown"]
