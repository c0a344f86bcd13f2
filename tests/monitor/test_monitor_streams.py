"""Streaming detectors per window: fed the rows in order, their state carried from window to window
and across a restart of the service, so the alarms are those of one detector run over the whole
stream; time windows that nothing reaches close by the service's clock."""

import re

import numpy as np
import pytest

from stalwart.monitor import Settings, create_app
from stalwart.monitor.analysis import analyze
from stalwart.shift import ADWIN, PageHinkley

from .conftest import TestClient, auth, register, table_rows

MODEL = "/v1/projects/shop/models/churn"
STREAMS = [{"on": "b", "detector": "adwin"},
           {"on": "a", "detector": "page_hinkley", "params": {"threshold": 75.0}},
           {"on": "output", "detector": "adwin"}]


def _send(client, key, rows, batch_id):
    r = client.post(MODEL + "/batches", json={"batch_id": batch_id, "rows": rows}, headers=auth(key))
    assert r.status_code == 201, r.text


def _app(db_url):
    return create_app(Settings(db=db_url, worker=False, max_batch_rows=2000, max_body_bytes=2_000_000))


def test_streams_run_on_across_windows_and_a_restart_as_one_detector_over_the_stream(db_url):
    rng = np.random.default_rng(3)
    # b's mean moves by 1.5 sd at row 900 and a's by 1 sd at row 1500: 2,400 rows in 24 batches
    rows = table_rows(rng, 900) + table_rows(rng, 600, shift_b=1.5, start=900)
    late = table_rows(rng, 900, shift_b=1.5, start=1500)
    for r in late:
        r["a"] += 1.0
        r["prediction"] = int(r["a"] > 0)
    rows += late
    app = _app(db_url)
    with TestClient(app) as client:
        key = app.state.store.create_key("shop", "admin")
        register(client, key, window_rows=300, streams=STREAMS)
        for i in range(12):
            _send(client, key, rows[100 * i:100 * (i + 1)], f"b{i}")
        assert client.post(MODEL + "/analyze", headers=auth(key)).json()["windows"] == [0, 1, 2, 3]
    app.state.store.close()  # the service stops; a new one starts on the same database
    app = _app(db_url)
    with TestClient(app) as client:
        for i in range(12, 24):
            _send(client, key, rows[100 * i:100 * (i + 1)], f"b{i}")
        assert client.post(MODEL + "/analyze", headers=auth(key)).json()["windows"] == [4, 5, 6, 7]
        windows = client.get(MODEL + "/windows", headers=auth(key)).json()["windows"]
        model_id = client.get(MODEL, headers=auth(key)).json()["id"]
        details = [app.state.store.window_details(w["id"]) for w in app.state.store.windows(model_id)]
    app.state.store.close()

    # the independent expectation: each detector run once over the whole column, in row order
    a, b = np.array([r["a"] for r in rows]), np.array([r["b"] for r in rows])
    output = np.array([float(r["prediction"] == 1) for r in rows])
    expected = {"stream_changes_b_adwin": ADWIN().run(b),
                "stream_changes_a_page_hinkley": PageHinkley(threshold=75.0).run(a),
                "stream_changes_output_adwin": ADWIN().run(output)}
    assert expected["stream_changes_b_adwin"] and expected["stream_changes_b_adwin"][0] >= 900  # found, after the shift
    assert expected["stream_changes_a_page_hinkley"] and expected["stream_changes_a_page_hinkley"][0] >= 1500
    for metric, hits in expected.items():
        found = [c["index"] for d in details for s in d["streams"] if s["metric"] == metric for c in s["changes"]]
        assert found == hits, metric
        # each alarm is placed on its window's row, and the window counts it
        for w, d in zip(windows, details):
            (seen,) = [s for s in d["streams"] if s["metric"] == metric]
            assert w["metrics"][metric]["value"] == len(seen["changes"])
            assert [c["row_id"] for c in seen["changes"]] == [f"r{i}" for i in seen_indices(seen)]
    for w, d in zip(windows, details):
        assert w["metrics"]["stream_changes"]["value"] == sum(len(s["changes"]) for s in d["streams"])
        assert w["metrics"]["stream_changes"]["n"] == 3 * 300
    assert details[-1]["streams"][0]["n_seen"] == 2400
    assert abs(details[-1]["streams"][0]["estimation"] - 1.5) < 0.2  # ADWIN's window holds the new regime of b


def seen_indices(stream):
    return [c["index"] for c in stream["changes"]]  # one value per row: the stream index is the row number


def test_default_stream_watches_the_output_and_a_ddm_that_refuses_a_value_keeps_its_state(service):
    client, store, admin = service
    register(client, admin, window_rows=200, streams=[{"on": "d", "detector": "ddm"},
                                                      {"on": "output", "detector": "adwin"}])
    register(client, admin, name="plain", window_rows=200)
    rng = np.random.default_rng(0)
    rows = table_rows(rng, 400)
    for i in range(2):
        _send(client, admin, rows[200 * i:200 * (i + 1)], f"b{i}")
        r = client.post("/v1/projects/shop/models/plain/batches", json={"batch_id": f"b{i}",
                                                                        "rows": rows[200 * i:200 * (i + 1)]},
                        headers=auth(admin))
        assert r.status_code == 201
    analyze(store)
    w0, w1 = client.get(MODEL + "/windows", headers=auth(admin)).json()["windows"]
    # d holds integers 0..29: DDM takes 0/1 errors only, says so, and the output stream goes on
    note = w0["metrics"]["stream_note_d_ddm"]
    assert note["value"] is None and "DDM expects a 0/1 error stream" in note["message"]
    assert "stream_changes_d_ddm" not in w1["metrics"]
    assert w1["metrics"]["stream_changes_output_adwin"]["n"] == 200
    plain = client.get("/v1/projects/shop/models/plain/windows", headers=auth(admin)).json()["windows"]
    assert [w["metrics"]["stream_changes_output_adwin"]["n"] for w in plain] == [200, 200]
    hits = ADWIN().run([float(r["prediction"] == 1) for r in rows])
    assert sum(w["metrics"]["stream_changes"]["value"] for w in plain) == len(hits)


@pytest.mark.parametrize("streams, message", [
    ([{"on": "zip"}], r"streams\[0\] watches 'zip', which is neither .output. nor an input column; use one of "
                      r"\['output', 'a', 'b', 'd'\]"),
    ([{"on": "c"}], r"streams\[0\] watches 'c', a categorical column; a stream detector watches numbers"),
    ([{"on": "a", "detector": "mahalanobis"}], r"'mahalanobis' is not a streaming detector; use one of "
                                               r"\['adwin', 'ddm', 'kswin', 'page_hinkley'\]"),
    ([{"on": "a", "params": {"delta": 2}}], r"ADWIN\(delta=\.\.\.\) must be a number in \(0, 1\)"),
    ([{"on": "a", "params": {"window": 5}}], r"detector 'adwin' got unknown parameter\(s\) \['window'\]"),
    ([{"on": "a"}, {"on": "a", "detector": "adwin"}], r"streams\[1\] repeats 'a' with 'adwin'"),
    ([{"on": "a", "every": 3}], r"streams\[0\] has unknown field\(s\) \['every'\]"),
])
def test_registration_refuses_streams_it_cannot_run(service, streams, message):
    client, store, admin = service
    body = {"name": "churn", "columns": {"a": "numeric", "b": "numeric", "c": "categorical", "d": "integer"},
            "classes": [0, 1], "streams": streams}
    r = client.post("/v1/projects/shop/models", json=body, headers=auth(admin))
    assert r.status_code == 422
    assert re.search(message, r.json()["detail"]), r.json()["detail"]
    assert client.get("/v1/projects/shop/models", headers=auth(admin)).json()["models"] == []


def test_a_time_window_closes_when_nothing_arrives_for_its_span(service):
    client, store, admin = service
    register(client, admin, window_rows=1000, window_seconds=60)
    _send(client, admin, table_rows(np.random.default_rng(1), 150), "only")
    model = store.model(store.project_id("shop"), "churn")
    (batch,) = store.batches_after(model["id"], -1)
    assert analyze(store, now=batch.received_at + 59.0)["windows"] == {}  # still open
    assert analyze(store, now=batch.received_at + 60.0)["windows"] == {model["id"]: [0]}
    (w,) = store.windows(model["id"])
    assert w["n_rows"] == 150
    assert analyze(store, now=batch.received_at + 600.0)["windows"] == {}  # judged once


def test_stream_alarms_reach_the_dashboard_chart_and_the_prometheus_gauge(service):
    from prometheus_client.parser import text_string_to_metric_families

    client, store, admin = service
    register(client, admin, window_rows=300, streams=[{"on": "b", "detector": "adwin"}])
    rng = np.random.default_rng(3)
    rows = table_rows(rng, 600) + table_rows(rng, 600, shift_b=2.0, start=600)
    for i in range(4):
        _send(client, admin, rows[300 * i:300 * (i + 1)], f"b{i}")
    analyze(store)
    windows = client.get(MODEL + "/windows", headers=auth(admin)).json()["windows"]
    counts = [w["metrics"]["stream_changes_b_adwin"]["value"] for w in windows]
    assert sum(counts) == len(ADWIN().run([r["b"] for r in rows])) >= 1
    client.post("/dashboard/login", data={"key": admin}, headers={"Origin": "http://testserver"})
    html = client.get("/dashboard/models/churn").text
    chart = html[html.index("Streaming change detectors"):]
    assert "b adwin" in chart[:chart.index("</svg>")]  # the per-stream series, labelled
    text = client.get("/metrics", headers=auth(admin)).text
    gauges = {tuple(sorted(s.labels.items())): s.value for f in text_string_to_metric_families(text)
              for s in f.samples if s.name == "stalwart_monitor_stream_changes"}
    assert gauges == {(("model", "churn"), ("project", "shop")): counts[-1]}
