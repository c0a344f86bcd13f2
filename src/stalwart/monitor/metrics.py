"""Prometheus metrics of the monitoring service (``GET /metrics``) and its Grafana dashboard.

Each app has its own :class:`Metrics` (its own ``CollectorRegistry``, never the global one, so two
apps in one process, as in the tests, count apart). Two kinds of series:

- counted by this process as requests pass (:class:`RequestMetrics`, an ASGI middleware, and the
  ingest and analysis hooks): ingested batches and rows per model, rejected batches by HTTP status,
  request latency per route, ingest latency, analysis pass duration, windows analysed per model;
- read from the database at each scrape (:class:`StoreCollector`): per model, the newest analysed
  window's figures (drift share, prediction drift, realised and estimated accuracy, OOD rate, ...),
  how many windows it has, when the newest ended, and how many of its alert rules are firing.
  Being read from the database, these agree across the processes of ``stalwart serve --workers N``;
  the counters are per process (Prometheus sums them when it scrapes each process, not through one
  port shared by several processes).

Series that name a project are shown only to a key of that project (:meth:`Metrics.exposition`);
the service-wide ones (latency per route template, rejections by status, analysis duration) name no
project or model and are shown to every read key.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from importlib import resources
from typing import Any

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from stalwart.monitor import store as tables
from stalwart.monitor.store import Store, check_store

__all__ = ["Metrics", "RequestMetrics", "StoreCollector", "model_overview", "grafana_dashboard", "metric_names",
           "dashboard_metric_names", "WINDOW_GAUGES", "CONTENT_TYPE", "PREFIX"]

PREFIX = "stalwart_monitor_"
CONTENT_TYPE = CONTENT_TYPE_LATEST
#: window metrics exported as gauges of their own name (the rest, when numeric, as
#: ``stalwart_monitor_window_metric{metric="..."}``)
WINDOW_GAUGES = {
    "drift_share": ("drift_share", "Share of the input columns that drifted in the newest window (0-1)."),
    "n_drifted": ("drifted_columns", "Input columns that drifted in the newest window."),
    "prediction_drift": ("prediction_drift", "1 when the predictions of the newest window drifted, else 0."),
    "accuracy": ("accuracy", "Realised accuracy over the labelled rows of the newest window."),
    "mae": ("mae", "Realised mean absolute error over the labelled rows of the newest window (regression)."),
    "estimated_accuracy": ("estimated_accuracy", "Label-free accuracy estimate of the newest window."),
    "ood_rate": ("ood_rate", "Share of the newest window's rows flagged out-of-distribution (0-1)."),
    "probe_accuracy": ("probe_accuracy", "Robustness probe: accuracy on the newest window's sample under its worst "
                       "natural perturbation."),
    "probe_stability": ("probe_stability", "Robustness probe: share of predictions unchanged under the worst "
                        "natural perturbation."),
    "stream_changes": ("stream_changes", "Alarms of the model's streaming change detectors in the newest window."),
    "n_rows": ("window_rows", "Rows in the newest window."),
    "n_labelled": ("window_labelled_rows", "Rows of the newest window whose labels have arrived."),
}
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_ANALYSIS_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
_INGEST_SUFFIX = "/models/{model}/batches"
_DASHBOARD_FILE = "grafana-dashboard.json"


def model_overview(store: Store, project: str | None = None) -> list[dict[str, Any]]:
    """Every model (of ``project``, or of all projects) with its newest window's metrics, its number
    of windows and of firing alert rules: the per-model gauges and the dashboard's model list.

    Three queries whatever the number of models or windows.
    """
    check_store(store, "model_overview")
    m, p, w, r = tables.models, tables.projects, tables.windows, tables.alert_rules
    models_q = sa.select(m.c.id, m.c.name, m.c.task, p.c.name.label("project")).join(p, p.c.id == m.c.project_id)
    newest = sa.select(w.c.model_id, sa.func.max(w.c.seq).label("seq")).group_by(w.c.model_id)
    firing = (sa.select(r.c.model_id, sa.func.count().label("n")).where(r.c.state == "firing")
              .group_by(r.c.model_id))
    if project is not None:
        models_q = models_q.where(p.c.name == project)
        mine = sa.select(m.c.id).join(p, p.c.id == m.c.project_id).where(p.c.name == project)
        newest = newest.where(w.c.model_id.in_(mine))
        firing = firing.where(r.c.model_id.in_(mine))
    sub = newest.subquery()
    last_q = (sa.select(w.c.model_id, w.c.seq, w.c.end_ts, w.c.metrics)
              .join(sub, sa.and_(sub.c.model_id == w.c.model_id, sub.c.seq == w.c.seq)))
    with store.engine.connect() as conn:
        rows = conn.execute(models_q.order_by(p.c.name, m.c.id)).all()
        last = {row.model_id: row for row in conn.execute(last_q)}
        fires = dict(conn.execute(firing).all())
    out = []
    for row in rows:
        window = last.get(row.id)
        out.append({"model_id": int(row.id), "model": row.name, "project": row.project, "task": row.task,
                    "windows": 0 if window is None else int(window.seq) + 1,
                    "last_end_ts": None if window is None else float(window.end_ts),
                    "metrics": {} if window is None else json.loads(window.metrics),
                    "firing": int(fires.get(row.id, 0))})
    return out


def _value(metric: Any) -> float | None:
    """A stored metric's value when it is a finite number (stored metrics are ``{"value", ...}``)."""
    value = metric.get("value") if isinstance(metric, Mapping) else metric
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


class StoreCollector:
    """Per-model gauges read from the database at each scrape (see the module's docstring)."""

    def __init__(self, store: Store) -> None:
        check_store(store, "StoreCollector")
        self.store = store

    def describe(self) -> list[Metric]:
        return list(self._families())

    def collect(self) -> Iterator[Metric]:
        yield from self._families(model_overview(self.store))

    def _families(self, overview: Iterable[Mapping[str, Any]] = ()) -> Iterator[Metric]:
        labels = ["project", "model"]
        named = {key: GaugeMetricFamily(PREFIX + name, doc, labels=labels) for key, (name, doc) in WINDOW_GAUGES.items()}
        other = GaugeMetricFamily(PREFIX + "window_metric", "Any other numeric metric of the newest window "
                                  "(robustness probes, detectors), by name.", labels=[*labels, "metric"])
        count = GaugeMetricFamily(PREFIX + "windows", "Windows analysed so far.", labels=labels)
        end = GaugeMetricFamily(PREFIX + "last_window_end_timestamp_seconds",
                                "When the newest analysed window's last row was stamped (Unix time).", labels=labels)
        firing = GaugeMetricFamily(PREFIX + "alerts_firing", "Alert rules of the model in state 'firing'.",
                                   labels=labels)
        for row in overview:
            ids = [row["project"], row["model"]]
            count.add_metric(ids, row["windows"])
            firing.add_metric(ids, row["firing"])
            if row["last_end_ts"] is not None:
                end.add_metric(ids, row["last_end_ts"])
            for key, metric in sorted(row["metrics"].items()):
                value = _value(metric)
                if value is None:
                    continue
                if key in named:
                    named[key].add_metric(ids, value)
                else:
                    other.add_metric([*ids, key], value)
        yield from (*named.values(), other, count, end, firing)


class Metrics:
    """The registry of one app, its counters and histograms, and the store's gauges.

    Examples
    --------
    >>> m = Metrics(Store("sqlite:///:memory:"))
    >>> m.batch("shop", "churn", rows=100, stored=True)
    >>> m.registry.get_sample_value("stalwart_monitor_ingest_rows_total", {"project": "shop", "model": "churn"})
    100.0
    """

    def __init__(self, store: Store) -> None:
        check_store(store, "Metrics")
        self.registry = CollectorRegistry(auto_describe=True)
        reg, pm = self.registry, ["project", "model"]
        self.batches = Counter(PREFIX + "ingest_batches", "Batches received, by outcome: stored, or duplicate "
                               "(a retry of a stored batch, acknowledged without storing).", [*pm, "outcome"],
                               registry=reg)
        self.rows = Counter(PREFIX + "ingest_rows", "Rows stored by ingest.", pm, registry=reg)
        self.rejected = Counter(PREFIX + "ingest_rejected", "Batches refused, by HTTP status (401/403 no key "
                                "or scope, 404 unknown model, 409 reused batch id, 413 too large, 422 bad rows).",
                                ["status"], registry=reg)
        self.requests = Histogram(PREFIX + "request_duration_seconds", "Time to answer a request, by route "
                                  "template, method and status.", ["route", "method", "status"],
                                  buckets=_LATENCY_BUCKETS, registry=reg)
        self.ingest = Histogram(PREFIX + "ingest_duration_seconds", "Time to answer a batch (read, check, "
                                "commit), stored or refused.", buckets=_LATENCY_BUCKETS, registry=reg)
        self.analysis = Histogram(PREFIX + "analysis_duration_seconds", "Time of one analysis pass (all models "
                                  "for the worker, one for POST .../analyze).", ["trigger"],
                                  buckets=_ANALYSIS_BUCKETS, registry=reg)
        self.analysis_errors = Counter(PREFIX + "analysis_errors", "Models whose analysis failed in a pass.",
                                       registry=reg)
        self.windows = Counter(PREFIX + "windows_analysed", "Windows cut and judged by this process.", pm,
                               registry=reg)
        self.store = store
        reg.register(StoreCollector(store))

    # -- hooks -------------------------------------------------------------------------------------
    def batch(self, project: str, model: str, *, rows: int, stored: bool) -> None:
        """Count one acknowledged batch (``stored`` False for a duplicate)."""
        self.batches.labels(project, model, "stored" if stored else "duplicate").inc()
        if stored:
            self.rows.labels(project, model).inc(rows)

    def analysed(self, result: Mapping[str, Any], seconds: float, trigger: str) -> None:
        """Record one analysis pass: its duration, the windows it made and the models that failed."""
        self.analysis.labels(trigger).observe(seconds)
        errors = result.get("errors") or {}
        if errors:
            self.analysis_errors.inc(len(errors))
        made = {int(k): len(v) for k, v in (result.get("windows") or {}).items() if v}
        if made:
            m, p = tables.models, tables.projects
            query = (sa.select(m.c.id, m.c.name, p.c.name.label("project")).join(p, p.c.id == m.c.project_id)
                     .where(m.c.id.in_(list(made))))
            with self.store.engine.connect() as conn:
                for row in conn.execute(query):
                    self.windows.labels(row.project, row.name).inc(made[int(row.id)])

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).observe(seconds)
        if method == "POST" and route.endswith(_INGEST_SUFFIX):
            self.ingest.observe(seconds)
            if status >= 400:
                self.rejected.labels(str(status)).inc()

    # -- output ------------------------------------------------------------------------------------
    def exposition(self, project: str | None = None) -> bytes:
        """The text format Prometheus scrapes; only ``project``'s series among those that name one."""
        return generate_latest(_ProjectView(self.registry, project))  # type: ignore[arg-type]

    def names(self) -> set[str]:
        """Every sample name this registry can expose (``_total``, ``_bucket``, ... included)."""
        return metric_names(self.registry)


class _ProjectView:
    """A registry seen by one project's key: samples labelled with another project are left out."""

    def __init__(self, registry: CollectorRegistry, project: str | None) -> None:
        self.registry, self.project = registry, project

    def collect(self) -> Iterator[Metric]:
        for family in self.registry.collect():
            if self.project is not None:
                family.samples = [s for s in family.samples if s.labels.get("project", self.project) == self.project]
            yield family


_SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"),
             "summary": ("", "_sum", "_count", "_created"), "gauge": ("",), "info": ("_info",)}


def metric_names(registry: CollectorRegistry) -> set[str]:
    """The sample names ``registry`` may expose, derived from each family's name and type."""
    out: set[str] = set()
    for family in registry.collect():
        out.update(family.name + s for s in _SUFFIXES.get(family.type, ("",)))
    return out


class RequestMetrics:
    """ASGI middleware timing every HTTP request into :class:`Metrics` by its route template, so
    the label set stays bounded whatever the URLs (an unmatched path counts as ``<unmatched>``)."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), 500

        async def watch(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            route = getattr(scope.get("route"), "path", None) or "<unmatched>"
            self.metrics.request(route, scope.get("method", ""), status, time.perf_counter() - start)


def grafana_dashboard() -> dict[str, Any]:
    """The Grafana dashboard shipped with the package (import it in Grafana and pick a Prometheus
    data source); ``stalwart serve --grafana-dashboard`` prints it.

    >>> grafana_dashboard()["title"]
    'stalwart monitor'
    """
    text = resources.files("stalwart.monitor").joinpath(_DASHBOARD_FILE).read_text(encoding="utf-8")
    return json.loads(text)


_NAME = re.compile(r"\b" + PREFIX + r"[a-z0-9_]+")


def dashboard_metric_names(dashboard: Mapping[str, Any] | None = None) -> set[str]:
    """The ``stalwart_monitor_*`` names that the dashboard's queries (and variables) use."""
    text = json.dumps(grafana_dashboard() if dashboard is None else dashboard)
    return set(_NAME.findall(text))
