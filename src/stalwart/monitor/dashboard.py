"""The service's HTML dashboard under ``/dashboard``: server-rendered pages with the report's inline
SVG charts, no script, no font or file from elsewhere.

- ``/dashboard/login`` takes an API key (read or admin scope) once, in a POST form, and answers with a
  session cookie; the key itself is never stored in the browser nor put in a URL. The cookie
  (HttpOnly, SameSite=Strict, Secure over HTTPS, path ``/dashboard``, 8 hours) reads
  ``<key id>.<expiry>.<HMAC-SHA256>`` signed with the key's stored hash: no session table, the same
  cookie works on every process of ``stalwart serve --workers N``, and a revoked or unknown key
  ends its sessions at once. Logging out deletes the cookie (a copied cookie stays valid until it
  expires or its key is revoked).
- ``/dashboard`` lists the project's models with their newest window and firing alerts;
  ``/dashboard/models/{model}`` shows a model's alert rules (state, condition, since when), its
  windows over time (drift share, prediction drift, realised and estimated accuracy or MAE, OOD
  rate, robustness probes and any other numeric metric the windows hold), the newest window's
  metrics and per-column drift table, and the recent windows.

Every user string (model, column, rule names, messages) is HTML-escaped; the pages are sent with a
Content-Security-Policy that allows no script at all.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import time
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any
from urllib.parse import quote, urlsplit

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from stalwart.monitor import store as tables
from stalwart.monitor.auth import token_hash
from stalwart.monitor.metrics import model_overview
from stalwart.monitor.store import NotFound, Principal, Store, check_store

__all__ = ["dashboard_router", "sign_session", "session_principal", "COOKIE", "SESSION_S", "CHART_WINDOWS"]

#: the session cookie's name
COOKIE = "stalwart_session"
#: seconds a session lasts
SESSION_S = 8 * 3600
#: windows drawn on the model page's charts unless ``?windows=N`` asks for another number
CHART_WINDOWS = 200
_MAX_WINDOWS = 5000
_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # no-referrer would make Chrome send "Origin: null"
    "X-Frame-Options": "DENY",
}
# metrics charted by name; everything else numeric gets a chart of its own (probes grouped)
_KNOWN = {"drift_share", "prediction_drift", "accuracy", "estimated_accuracy", "mae", "ood_rate", "drift_p_value",
          "online_level", "probe_accuracy", "probe_stability", "probe_accuracy_clean", "ood_baseline",
          "probe_shift", "probe_mae", "probe_mae_clean", "probe_mae_change", "stream_changes"}
_NOT_CHARTED = {"n_rows", "n_labelled", "n_drifted", "drifted", "prediction_drift_statistic", "drift_error",
                "drifted_online", "n_drifted_online", "estimated_accuracy_reliable"}
_MAX_OTHER_CHARTS = 4
_MAX_SERIES = 8


# -- sessions -------------------------------------------------------------------------------------
def sign_session(key_id: str, key_hash: str, expires: int) -> str:
    """The cookie value of a session of key ``key_id`` until Unix time ``expires``.

    >>> sign_session("0123456789", "ab" * 32, 1_700_000_000)[:22]
    '0123456789.1700000000.'
    """
    mac = hmac.new(key_hash.encode("ascii"), f"stalwart-dashboard|{key_id}|{expires}".encode("ascii"),
                   hashlib.sha256).hexdigest()
    return f"{key_id}.{expires}.{mac}"


def session_principal(store: Store, cookie: str | None, now: float | None = None) -> Principal | None:
    """Who a session cookie belongs to: None when it is missing, malformed, expired, forged, or its
    key is unknown or revoked."""
    check_store(store, "session_principal")
    parts = cookie.split(".") if isinstance(cookie, str) and len(cookie) < 200 else []
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    ident, expires = parts[0], int(parts[1])
    if expires < (time.time() if now is None else now):
        return None
    k, p = tables.api_keys, tables.projects
    query = (sa.select(k.c.key_hash, k.c.scope, k.c.project_id, p.c.name).join(p, p.c.id == k.c.project_id)
             .where(k.c.key_id == ident, k.c.revoked == sa.false()))
    with store.engine.connect() as conn:
        for row in conn.execute(query):
            if hmac.compare_digest(sign_session(ident, row.key_hash, expires).encode("ascii"), cookie.encode("ascii")):
                return Principal(row.name, int(row.project_id), row.scope, ident)
    return None


# -- HTML pieces ----------------------------------------------------------------------------------
def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _num(value: Any, digits: int = 3) -> str:
    if value is None or isinstance(value, bool):
        return "–" if value is None else ("yes" if value else "no")
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "–"
        if value.is_integer() and abs(value) >= 2:  # a count stored as a float
            return f"{value:,.0f}"
        if value != 0 and abs(value) < 1e-3:
            return f"{value:.{digits}g}"  # a small p-value: significant digits, not 0.000
        return f"{value:.{digits}f}"
    return _e(value)


def _when(ts: Any) -> str:
    if not isinstance(ts, (int, float)) or not math.isfinite(ts):
        return "–"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


def _value(metric: Any) -> float | None:
    # stored metrics are JSON: plain dicts, floats, ints, bools (exact type checks: this runs per point)
    value = metric.get("value") if type(metric) is dict else metric
    kind = type(value)
    if kind is float:
        return value if math.isfinite(value) else None
    return float(value) if kind is int or kind is bool else None


def _bound(metric: Any, key: str) -> float | None:
    return _value(metric.get(key)) if type(metric) is dict else None


def _interval(metric: Any) -> str:
    low, high = _bound(metric, "low"), _bound(metric, "high")
    return "–" if low is None or high is None else f"{_num(low)} – {_num(high)}"


_CSS = """
:root { color-scheme: light; --fg: #1f2328; --muted: #57606a; --line: #d0d7de; --bg2: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       color: var(--fg); }
header { display: flex; align-items: center; gap: 16px; padding: 10px 24px; border-bottom: 1px solid var(--line);
         background: var(--bg2); }
header .brand { font-weight: 600; } header .grow { flex: 1; } header a { color: var(--fg); }
main { padding: 16px 24px 48px; max-width: 1280px; }
h1 { font-size: 24px; margin: 8px 0 4px; overflow-wrap: anywhere; } h2 { font-size: 18px; margin: 28px 0 8px; }
.muted { color: var(--muted); } .small { font-size: 12px; }
table { border-collapse: collapse; margin: 6px 0; } th, td { text-align: left; padding: 4px 10px;
        border-bottom: 1px solid var(--line); vertical-align: top; } th { background: var(--bg2); font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600;
         color: #fff; background: #6e7781; }
.state-firing { background: #cf222e; } .state-pending { background: #bf8700; } .state-resolved { background: #0969da; }
.state-ok { background: #1a7f37; } .yes { color: #cf222e; font-weight: 600; }
.charts { display: flex; flex-wrap: wrap; gap: 8px 24px; }
.chart { font-family: inherit; } .chart .grid { stroke: #eaeef2; } .chart .axis { stroke: #8c959f; }
.chart .tick, .chart .legend { font-size: 11px; fill: var(--fg); } .chart .chart-title { font-size: 13px;
  font-weight: 600; } .chart .label { font-size: 12px; } .chart .legend-note { fill: var(--muted);
  font-style: italic; font-size: 11px; } .chart .chart-empty { fill: var(--muted); }
form.inline { display: inline; } button { font: inherit; padding: 4px 12px; cursor: pointer; }
.login { max-width: 420px; margin: 10vh auto; padding: 24px; border: 1px solid var(--line); border-radius: 8px; }
.login input { width: 100%; font: inherit; padding: 6px; margin: 6px 0 12px; }
.error { color: #cf222e; } details { margin: 8px 0; }
"""


def _layout(title: str, body: str, who: Principal | None = None) -> str:
    head = ""
    if who is not None:
        head = (f'<header><span class="brand">stalwart monitor</span><span class="muted">project '
                f'{_e(who.project)}</span><a href="/dashboard">Models</a><span class="grow"></span>'
                '<form class="inline" method="post" action="/dashboard/logout"><button type="submit" '
                'id="logout">Log out</button></form></header>')
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
            f'content="width=device-width, initial-scale=1"><meta name="referrer" content="same-origin">'
            f'<title>{_e(title)} · stalwart monitor</title><style>{_CSS}</style></head>'
            f'<body>{head}<main>{body}</main></body></html>')


def _page(html: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(html, status_code=status, headers=_HEADERS)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], cls: str = "") -> str:
    """``rows`` hold HTML already escaped."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(cell if cell.startswith("<td") else f"<td>{cell}</td>" for cell in row)
                   + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _badge(state: str) -> str:
    return f'<span class="badge state-{_e(state)}">{_e(state)}</span>'


def _login_page(message: str = "", status: int = 200) -> HTMLResponse:
    error = f'<p class="error" id="login-error">{_e(message)}</p>' if message else ""
    body = ('<div class="login"><h1>stalwart monitor</h1><p class="muted">Log in with an API key of scope '
            '<b>read</b> or <b>admin</b> (from <code>stalwart serve --create-key</code>). The browser keeps a '
            f'signed session cookie for {SESSION_S // 3600} hours, never the key.</p>{error}'
            '<form method="post" action="/dashboard/login"><label for="key">API key</label>'
            '<input id="key" name="key" type="password" autocomplete="off" required maxlength="200">'
            '<button type="submit" id="login">Log in</button></form></div>')
    return _page(_layout("Log in", body), status)


# -- pages ----------------------------------------------------------------------------------------
def _models_page(store: Store, who: Principal) -> str:
    rows = []
    for m in model_overview(store, who.project):
        metrics = m["metrics"]
        accuracy = _value(metrics.get("accuracy"))
        estimated = _value(metrics.get("estimated_accuracy"))
        firing = _badge("firing") + f" {m['firing']}" if m["firing"] else '<span class="muted">none</span>'
        rows.append([f'<a href="/dashboard/models/{quote(m["model"], safe="")}">{_e(m["model"])}</a>',
                     _e(m["task"]), f'<td class="num">{m["windows"]:,}</td>',
                     f'<td class="num">{_num(_value(metrics.get("drift_share")))}</td>',
                     f'<td class="num">{_num(accuracy)}</td>', f'<td class="num">{_num(estimated)}</td>',
                     firing, _when(m["last_end_ts"])])
    table = (_table(["model", "task", "windows", "drift share", "accuracy", "estimated accuracy", "firing alerts",
                     "newest window ended"], rows, "models") if rows else
             '<p class="muted">No model registered in this project yet (POST /v1/projects/&lt;project&gt;/models, '
             'or Client.register).</p>')
    return _layout("Models", f"<h1>Models</h1><p class='muted'>The newest analysed window of each model.</p>{table}",
                   who)


def _windows(store: Store, model_id: int, last: int) -> tuple[list[dict[str, Any]], int, list[Any]]:
    """The newest ``last`` windows (oldest first, without their drift tables), how many there are,
    and the newest one's drift table."""
    w = tables.windows
    with store.engine.connect() as conn:
        total = int(conn.execute(sa.select(sa.func.count()).where(w.c.model_id == model_id)).scalar() or 0)
        rows = conn.execute(sa.select(w.c.seq, w.c.start_ts, w.c.end_ts, w.c.n_rows, w.c.n_labelled, w.c.metrics)
                            .where(w.c.model_id == model_id).order_by(w.c.seq.desc()).limit(last)).all()
        drift = conn.execute(sa.select(w.c.drift).where(w.c.model_id == model_id).order_by(w.c.seq.desc())
                             .limit(1)).scalar()
    out = [{"seq": int(r.seq), "start_ts": r.start_ts, "end_ts": r.end_ts, "n_rows": int(r.n_rows),
            "n_labelled": int(r.n_labelled), "metrics": json.loads(r.metrics)} for r in reversed(rows)]
    return out, total, [] if drift is None else json.loads(drift)


def _since(store: Store, model_id: int) -> dict[tuple[int, str], float]:
    """When each rule last entered each state: (rule id, state) -> time."""
    a = tables.alerts
    query = (sa.select(a.c.rule_id, a.c.to_state, sa.func.max(a.c.created_at)).where(a.c.model_id == model_id)
             .group_by(a.c.rule_id, a.c.to_state))
    with store.engine.connect() as conn:
        return {(int(r), s): float(t) for r, s, t in conn.execute(query)}


def _series(windows: list[dict[str, Any]], key: str, name: str) -> dict[str, Any] | None:
    x, y, low, high = [], [], [], []
    for w in windows:
        metric = w["metrics"].get(key)
        x.append(w["seq"])
        y.append(_value(metric))
        low.append(_bound(metric, "low"))
        high.append(_bound(metric, "high"))
    if all(v is None for v in y):
        return None
    if all(v is None for v in low) or all(v is None for v in high):
        return {"name": name, "x": x, "y": y}  # no interval stored: no band, no "shaded" note
    return {"name": name, "x": x, "y": y, "low": low, "high": high}


_P_FLOOR = 1e-8


def _floored(series: dict[str, Any] | None) -> dict[str, Any] | None:
    """p-values below the floor drawn at it (a log axis down to 1e-143 has no room for ticks)."""
    if series is not None:
        series["y"] = [None if v is None else max(v, _P_FLOOR) for v in series["y"]]
    return series


def _charts(windows: list[dict[str, Any]], task: str) -> list[str]:
    from stalwart.report.svg import line_chart

    def chart(title: str, y_label: str, series: list[dict[str, Any] | None], **extra: Any) -> str | None:
        drawn = [s for s in series if s is not None][:_MAX_SERIES]
        if not drawn:
            return None
        return line_chart({"title": title, "x_label": "window", "y_label": y_label, "series": drawn, **extra},
                          width=600, height=280)

    out = [
        chart("Drift", "share of columns", [_series(windows, "drift_share", "drift share"),
                                            _series(windows, "prediction_drift", "prediction drift (0/1)")]),
        chart("Accuracy", "accuracy", [_series(windows, "accuracy", "realised"),
                                       _series(windows, "estimated_accuracy", "estimated (label-free)")])
        if task != "regression" else chart("Error", "mean absolute error", [_series(windows, "mae", "realised MAE")]),
        chart("Out-of-distribution inputs", "share of rows", [_series(windows, "ood_rate", "OOD rate"),
                                                              _series(windows, "ood_baseline", "on the reference")]),
        chart("Robustness probe (window sample)", "accuracy / stability", [
            _series(windows, "probe_accuracy_clean", "accuracy, clean"),
            _series(windows, "probe_accuracy", "accuracy, worst"),
            _series(windows, "probe_stability", "stability, worst")])
        if task != "regression" else chart("Robustness probe (window sample)", "prediction units", [
            _series(windows, "probe_mae_clean", "MAE, clean"),
            _series(windows, "probe_mae", "MAE, worst"),
            _series(windows, "probe_shift", "mean |prediction shift|, worst")]),
        chart("Drift across windows (online test)", f"p-value (floored at {_P_FLOOR:g})", [
            _floored(_series(windows, "drift_p_value", "window p-value")),
            _floored(_series(windows, "online_level", "online level"))], y_scale="log"),
    ]
    keys = sorted({k for w in windows for k, v in w["metrics"].items() if _value(v) is not None}
                  - _KNOWN - _NOT_CHARTED)
    per_stream = [k for k in keys if k.startswith("stream_changes_")]
    out.append(chart("Streaming change detectors", "alarms in the window", [
        _series(windows, k, k.removeprefix("stream_changes_").replace("_", " ")) for k in per_stream]))
    keys = [k for k in keys if k not in per_stream]
    per_probe = [k for k in keys if k.startswith("probe_")]
    kinds = ("accuracy", "stability", "mae_change", "mae", "shift")
    for kind in kinds:
        named = [k for k in per_probe if k.startswith(f"probe_{kind}_")
                 and not (kind == "mae" and k.startswith("probe_mae_change_"))]
        out.append(chart(f"Probe {kind.replace('_', ' ')} per perturbation", kind.replace("_", " "),
                         [_series(windows, k, k.removeprefix(f"probe_{kind}_").replace("_", " ")) for k in named]))
    rest = [k for k in per_probe if not k.startswith(tuple(f"probe_{kind}_" for kind in kinds))]
    for k in [k for k in keys if k not in per_probe or k in rest][:_MAX_OTHER_CHARTS]:
        out.append(chart(k.replace("_", " "), k, [_series(windows, k, k)]))
    return [c for c in out if c is not None]


def _model_page(store: Store, who: Principal, name: str, last: int) -> str:
    model = store.model(who.project_id, name)
    mid = model["id"]
    n_batches, n_rows = store.batch_count(mid)
    windows, total, drift = _windows(store, mid, last)
    rules = store.rules(mid)
    since = _since(store, mid)
    events = store.alerts(mid, limit=30)
    config = model["config"]
    facts = [model["task"]]
    if model.get("classes"):
        facts.append("classes " + ", ".join(_e(c) for c in model["classes"]))
    facts += [f"{len(model['columns'])} input columns", f"windows of {int(config.get('window_rows', 0)):,} rows"
              + (f" or {_num(config['window_seconds'])} s" if config.get("window_seconds") else ""),
              f"reference of {model['reference_rows']:,} rows" if model.get("reference_rows") else "no reference yet",
              f"{n_batches:,} batches, {n_rows:,} rows received"]
    parts = [f'<h1 id="model-name">{_e(model["name"])}</h1><p class="muted">{" · ".join(facts)}</p>']

    # alerts
    parts.append('<h2 id="alerts">Alerts</h2>')
    if rules:
        rows = []
        for r in rules:
            when = since.get((int(r["id"]), r["state"]), r["created_at"])
            rows.append([_e(r["name"]), f"<code>{_e(r['condition'])}</code>", _badge(r["state"]), _e(_when(when)),
                         f'<td class="num">{r["for_windows"]}</td>',
                         "–" if r["last_window"] < 0 else f'<td class="num">{r["last_window"]}</td>'])
        parts.append(_table(["rule", "condition", "state", "since", "for windows", "last window judged"], rows,
                            "rules"))
    else:
        parts.append('<p class="muted">No alert rule (POST .../rules with a condition such as '
                     '<code>drift_share &lt;= 0.2</code>).</p>')
    if events:
        rows = [[_e(_when(e["created_at"])), _e(e["rule"]), f"{_badge(e['from_state'])} → {_badge(e['to_state'])}",
                 f'<td class="num">{e["window_seq"]}</td>', f'<td class="num">{_num(e["value"])}</td>',
                 _e(e["message"]), _e(e.get("delivery", ""))] for e in events]
        parts.append(f"<details open><summary>Recent transitions ({len(events)})</summary>"
                     + _table(["time", "rule", "transition", "window", "value", "message", "webhook"], rows,
                              "transitions") + "</details>")

    # windows over time
    parts.append('<h2 id="windows">Windows over time</h2>')
    if not windows:
        parts.append('<p class="muted">No window analysed yet: windows close once enough rows have arrived '
                     f'({int(config.get("window_rows", 0)):,} per window), and need a reference.</p>')
    else:
        shown = (f"all {total:,} windows" if len(windows) == total else
                 f'the newest {len(windows):,} of {total:,} windows (<a href="?windows={min(total, _MAX_WINDOWS)}">'
                 f"show {min(total, _MAX_WINDOWS):,}</a>)")
        parts.append(f'<p class="muted">{shown}, from {_e(_when(windows[0]["start_ts"]))} to '
                     f'{_e(_when(windows[-1]["end_ts"]))}; shaded bands are 95% intervals.</p>')
        parts.append('<div class="charts">' + "".join(_charts(windows, model["task"])) + "</div>")

        newest = windows[-1]
        parts.append(f'<h2 id="newest">Newest window: #{newest["seq"]}</h2><p class="muted">'
                     f'{newest["n_rows"]:,} rows ({newest["n_labelled"]:,} labelled), {_e(_when(newest["start_ts"]))}'
                     f' to {_e(_when(newest["end_ts"]))}</p>')
        rows = []
        for key, metric in sorted(newest["metrics"].items()):
            value = metric.get("value") if isinstance(metric, Mapping) else metric
            note = metric.get("message", "") if isinstance(metric, Mapping) else ""
            rows.append([_e(key), f'<td class="num">{_num(value)}</td>', _interval(metric),
                         _num(metric.get("n")) if isinstance(metric, Mapping) else "–", _e(note)])
        parts.append(_table(["metric", "value", "95% interval", "n", "note"], rows, "metrics"))
        if drift:
            keys = [k for k in ("feature", "kind", "test", "statistic", "p_value", "threshold", "drifted")
                    if any(k in f for f in drift)]
            rows = []
            for f in drift:
                rows.append([(f'<td class="yes">{_num(f.get(k))}</td>' if k == "drifted" and f.get(k) else
                              _num(f.get(k)) if k == "drifted" else
                              f'<td class="num">{_num(f.get(k))}</td>' if k in ("statistic", "p_value", "threshold")
                              else _e(f.get(k, "–"))) for k in keys])
            parts.append('<h3>Drift per column</h3>' + _table([k.replace("_", " ") for k in keys], rows, "drift"))

        recent = windows[-20:][::-1]
        cols = [k for k in ("drift_share", "prediction_drift", "accuracy", "estimated_accuracy", "mae", "ood_rate")
                if any(k in w["metrics"] for w in recent)]
        rows = [[f'<td class="num">{w["seq"]}</td>', _e(_when(w["start_ts"])), _e(_when(w["end_ts"])),
                 f'<td class="num">{w["n_rows"]:,}</td>', f'<td class="num">{w["n_labelled"]:,}</td>',
                 *(f'<td class="num">{_num(_value(w["metrics"].get(k)))}</td>' for k in cols)] for w in recent]
        parts.append('<h2 id="recent">Recent windows</h2>'
                     + _table(["window", "start", "end", "rows", "labelled", *[k.replace("_", " ") for k in cols]],
                              rows, "windows"))
    return _layout(model["name"], "".join(parts), who)


# -- routes ---------------------------------------------------------------------------------------
def _same_origin(request: Request) -> bool:
    """A form POST from this site: no Origin header (not a browser) or one naming this host."""
    origin = request.headers.get("origin")
    return origin is None or urlsplit(origin).netloc == request.headers.get("host", "")


def dashboard_router(store: Store) -> APIRouter:
    """The dashboard's routes over ``store`` (kept out of the OpenAPI schema: they answer HTML)."""
    check_store(store, "dashboard_router")
    router = APIRouter(prefix="/dashboard", include_in_schema=False)

    def who_of(request: Request) -> Principal | None:
        found = session_principal(store, request.cookies.get(COOKIE))
        return found if found is not None and found.allows("read") else None

    def to_login() -> Response:
        return RedirectResponse("/dashboard/login", status_code=303, headers=_HEADERS)

    @router.get("/login")
    async def login_form(request: Request) -> Response:
        if await run_in_threadpool(who_of, request) is not None:
            return RedirectResponse("/dashboard", status_code=303, headers=_HEADERS)
        return _login_page()

    @router.post("/login")
    async def login(request: Request) -> Response:
        if not _same_origin(request):
            return _login_page("This form was sent from another site; open the dashboard and log in there.", 403)
        form = await request.form(max_files=0, max_fields=5)
        key = form.get("key")
        if not isinstance(key, str) or not key.strip():
            return _login_page("Enter an API key.", 422)
        key = key.strip()
        found = await run_in_threadpool(store.authenticate, key)
        if found is None:
            return _login_page("Unknown or revoked API key.", 401)
        if not found.allows("read"):
            return _login_page(f"This key has scope {found.scope!r}; the dashboard needs a read or admin key.", 403)
        expires = int(time.time()) + SESSION_S
        response = RedirectResponse("/dashboard", status_code=303, headers=_HEADERS)
        response.set_cookie(COOKIE, sign_session(found.key_id, token_hash(key), expires), max_age=SESSION_S,
                            path="/dashboard", httponly=True, samesite="strict",
                            secure=request.url.scheme == "https")
        return response

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        if not _same_origin(request):
            return _page(_layout("Log out", "<p>This form was sent from another site.</p>"), 403)
        response = RedirectResponse("/dashboard/login", status_code=303, headers=_HEADERS)
        response.delete_cookie(COOKIE, path="/dashboard", httponly=True, samesite="strict",
                               secure=request.url.scheme == "https")
        return response

    @router.get("")
    async def models_page(request: Request) -> Response:
        who = await run_in_threadpool(who_of, request)
        if who is None:
            return to_login()
        return _page(await run_in_threadpool(_models_page, store, who))

    @router.get("/models/{model:path}")
    async def model_page(request: Request, model: str, windows: int = CHART_WINDOWS) -> Response:
        who = await run_in_threadpool(who_of, request)
        if who is None:
            return to_login()
        last = max(1, min(int(windows), _MAX_WINDOWS))
        try:
            html = await run_in_threadpool(_model_page, store, who, model, last)
        except NotFound as exc:
            return _page(_layout("Not found", f'<h1>Not found</h1><p class="error">{_e(exc)}</p>'
                                 '<p><a href="/dashboard">All models</a></p>', who), 404)
        return _page(html)

    return router
