"""Reports: the data model (JSON with a versioned schema), HTML with inline SVG charts and figures,
Markdown, JUnit XML, the compliance evidence map, and what every page says in words: headlines
that name the cause (:mod:`~stalwart.report.summaries`), a glossary of the metrics
(:mod:`~stalwart.report.glossary`) and what to do next (:mod:`~stalwart.report.advice`).
Members are imported on first use."""

from stalwart._lazy import lazy_module

_EXPORTS = {
    **dict.fromkeys(("Advice", "register_advice", "report_advice"), ".advice"),
    "compliance_map": ".compliance",
    **dict.fromkeys(("SCHEMA_VERSION", "TIMING_KEYS", "Report", "drop_timings", "json_safe", "package_versions"),
                    ".core"),
    "render_html": ".html",
    "render_junit": ".junit",
    "render_markdown": ".markdown",
    **dict.fromkeys(("headline", "register_headline", "verdict"), ".summaries"),
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_module(__name__, _EXPORTS, globals())
