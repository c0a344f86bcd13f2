"""Reports: the data model (JSON with a versioned schema), HTML with inline SVG charts and figures,
Markdown, JUnit XML, the compliance evidence map, and what every page says in words: headlines
that name the cause (:mod:`~stalwart.report.summaries`), a glossary of the metrics
(:mod:`~stalwart.report.glossary`) and what to do next (:mod:`~stalwart.report.advice`)."""

from stalwart.report.advice import Advice, register_advice, report_advice
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
from stalwart.report.summaries import headline, register_headline, verdict

__all__ = ["Advice", "Report", "SCHEMA_VERSION", "TIMING_KEYS", "compliance_map", "drop_timings", "headline",
           "json_safe", "package_versions", "register_advice", "register_headline", "render_html", "render_junit",
           "render_markdown", "report_advice", "verdict"]
