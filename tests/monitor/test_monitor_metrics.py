"""Prometheus /metrics: who may scrape it, the counters and histograms of ingest and analysis, the
per-model gauges read from the store, one registry per app, and the Grafana dashboard's queries."""

import json

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from stalwart.cli import app as cli_app
from stalwart.monitor import Settings, create_app
from stalwart.monitor.metrics import Metrics, dashboard_metric_names, grafana_dashboard

from .conftest import TestClient, auth, register, table_rows

BATCHES = "/v1/projects/shop/models/churn/batches"
INGEST_ROUTE = "/v1/projects/{project}/models/{model}/batches"


def scrape(client, key):
    r = client.get("/metrics", headers=auth(key))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(r.text) for s in family.samples}


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))))


def test_metrics_need_a_read_or_admin_key(service):
    client, store, admin = service
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=auth(store.create_key("shop", "ingest"))).status_code == 403
    assert client.get("/metrics", headers=auth(store.create_key("shop", "read"))).status_code == 200
    assert client.get("/metrics", headers=auth(admin)).status_code == 200


def test_ingest_counters_rejections_and_latency(service):
    client, store, admin = service
    register(client, admin)
    read = store.create_key("shop", "read")
    rng = np.random.default_rng(4)
    sizes = [50, 70, 30]
    for i, n in enumerate(sizes):
        assert client.post(BATCHES, json={"batch_id": f"b{i}", "rows": table_rows(rng, n, start=100 * i)},
                           headers=auth(admin)).status_code == 201
    reused = client.post(BATCHES, json={"batch_id": "b0", "rows": table_rows(rng, 5)}, headers=auth(admin))
    assert reused.status_code == 409
    bad = client.post(BATCHES, json={"batch_id": "x", "rows": [{"a": "high"}]}, headers=auth(admin))
    assert bad.status_code == 422
    assert client.post(BATCHES, json={"batch_id": "y", "rows": []}, headers=auth(read)).status_code == 403
    assert client.post("/v1/projects/shop/models/nope/batches", json={"batch_id": "z", "rows": []},
                       headers=auth(admin)).status_code == 404
    again = table_rows(np.random.default_rng(4), 50)  # b0's rows exactly: a retry
    dup = client.post(BATCHES, json={"batch_id": "b0", "rows": again}, headers=auth(admin))
    assert dup.status_code == 200 and dup.json()["duplicate"]

    s = scrape(client, read)
    assert value(s, "stalwart_monitor_ingest_batches_total", project="shop", model="churn", outcome="stored") == 3
    assert value(s, "stalwart_monitor_ingest_batches_total", project="shop", model="churn", outcome="duplicate") == 1
    assert value(s, "stalwart_monitor_ingest_rows_total", project="shop", model="churn") == sum(sizes)
    rejected = {k[1][0][1]: v for k, v in s.items() if k[0] == "stalwart_monitor_ingest_rejected_total"}
    assert rejected == {"409": 1, "422": 1, "403": 1, "404": 1}
    # every POST to the batches route was timed, refused or not
    assert value(s, "stalwart_monitor_ingest_duration_seconds_count") == 8
    assert value(s, "stalwart_monitor_request_duration_seconds_count", route=INGEST_ROUTE, method="POST",
                 status="201") == 3
    # a histogram's buckets are cumulative and end with every observation
    assert value(s, "stalwart_monitor_ingest_duration_seconds_bucket", le="+Inf") == 8
    # the route template, never the URL: the unknown model's name is no label value
    assert not any("nope" in str(k) for k in s)


def test_gauges_follow_the_newest_window_and_the_alerts(service):
    client, store, admin = service
    model = register(client, admin, window_rows=200)
    client.post("/v1/projects/shop/models/churn/rules", json={"name": "drift", "condition": "drift_share <= 0.2"},
                headers=auth(admin))
    rng = np.random.default_rng(5)
    client.post(BATCHES, json={"batch_id": "calm", "rows": table_rows(rng, 200)}, headers=auth(admin))
    client.post("/v1/projects/shop/models/churn/analyze", headers=auth(admin))
    client.post(BATCHES, json={"batch_id": "shifted", "rows": table_rows(rng, 200, shift_b=3.0, start=200)},
                headers=auth(admin))
    assert client.post("/v1/projects/shop/models/churn/analyze", headers=auth(admin)).json()["windows"] == [1]

    windows = client.get("/v1/projects/shop/models/churn/windows", headers=auth(admin)).json()["windows"]
    newest = windows[-1]["metrics"]
    s = scrape(client, admin)
    ids = {"project": "shop", "model": "churn"}
    assert newest["drift_share"]["value"] > 0.2
    assert value(s, "stalwart_monitor_drift_share", **ids) == newest["drift_share"]["value"]
    assert value(s, "stalwart_monitor_drifted_columns", **ids) == newest["n_drifted"]["value"]
    assert value(s, "stalwart_monitor_prediction_drift", **ids) == newest["prediction_drift"]["value"]
    assert value(s, "stalwart_monitor_window_rows", **ids) == 200
    assert value(s, "stalwart_monitor_windows", **ids) == 2
    assert value(s, "stalwart_monitor_last_window_end_timestamp_seconds", **ids) == windows[-1]["end_ts"]
    assert value(s, "stalwart_monitor_alerts_firing", **ids) == 1
    assert [r["state"] for r in client.get("/v1/projects/shop/models/churn/rules", headers=auth(admin)).json()["rules"]
            ] == ["firing"]
    assert value(s, "stalwart_monitor_accuracy", **ids) is None  # no label yet: no realised accuracy
    assert value(s, "stalwart_monitor_analysis_duration_seconds_count", trigger="request") == 2
    assert value(s, "stalwart_monitor_windows_analysed_total", **ids) == 2

    # labels, and metrics a later analysis adds (an estimate, a probe), show up by their names
    rows = table_rows(np.random.default_rng(5), 200)  # the first window's rows again: its predictions
    client.post("/v1/projects/shop/models/churn/labels",
                json={"labels": [{"row_id": r["row_id"], "label": r["prediction"]} for r in rows[:150]]
                      + [{"row_id": r["row_id"], "label": 1 - r["prediction"]} for r in rows[150:]]},
                headers=auth(admin))
    last = store.windows(model["id"])[-1]
    store.update_window(last["id"], {**last["metrics"], "estimated_accuracy": {"value": 0.81, "low": 0.7,
                                     "high": 0.9, "n": 200}, "probe_gaussian_noise": {"value": 0.64}}, 0)
    client.post("/v1/projects/shop/models/churn/analyze", headers=auth(admin))
    s = scrape(client, admin)
    first = client.get("/v1/projects/shop/models/churn/windows", headers=auth(admin)).json()["windows"][0]
    assert first["metrics"]["accuracy"]["value"] == 0.75  # 150 of 200 right
    assert value(s, "stalwart_monitor_estimated_accuracy", **ids) == 0.81
    assert value(s, "stalwart_monitor_window_metric", **ids, metric="probe_gaussian_noise") == 0.64


def test_a_key_sees_only_its_projects_series(service):
    client, store, admin = service
    register(client, admin)
    client.post(BATCHES, json={"batch_id": "b", "rows": table_rows(np.random.default_rng(6), 20)},
                headers=auth(admin))
    bank = store.create_key("bank", "read")
    text = client.get("/metrics", headers=auth(bank)).text
    assert "churn" not in text and 'project="shop"' not in text
    assert "stalwart_monitor_request_duration_seconds_count" in text  # service-wide series: no project named
    assert 'model="churn"' in client.get("/metrics", headers=auth(admin)).text


def test_each_app_has_its_own_registry(tmp_path):
    apps = [create_app(Settings(db=f"sqlite:///{tmp_path / f'{i}.db'}", worker=False)) for i in range(2)]
    with TestClient(apps[0]) as one, TestClient(apps[1]) as two:
        key = apps[0].state.store.create_key("shop", "admin")
        register(one, key)
        one.post(BATCHES, json={"batch_id": "b", "rows": table_rows(np.random.default_rng(7), 10)}, headers=auth(key))
        counts = [a.state.metrics.registry.get_sample_value(
            "stalwart_monitor_ingest_rows_total", {"project": "shop", "model": "churn"}) for a in apps]
        assert counts == [10.0, None]
        assert two.get("/health").status_code == 200
    for a in apps:
        a.state.store.close()


def test_the_grafana_dashboard_queries_only_metrics_that_exist(service):
    _, store, _ = service
    names = dashboard_metric_names()
    exists = Metrics(store).names()
    assert len(names) >= 15  # the panels query the metrics, not one name
    assert names <= exists, f"the dashboard queries metrics that do not exist: {sorted(names - exists)}"
    dash = grafana_dashboard()
    exprs = [t["expr"] for p in dash["panels"] if p["type"] != "row" for t in p["targets"]]
    assert exprs and all("stalwart_monitor_" in e for e in exprs)
    assert len({p["id"] for p in dash["panels"]}) == len(dash["panels"])
    printed = CliRunner().invoke(cli_app, ["serve", "--grafana-dashboard"])
    assert printed.exit_code == 0 and json.loads(printed.output) == dash


@pytest.mark.parametrize("bad", ["sqlite:///x.db", None])
def test_metrics_needs_a_store(bad):
    from stalwart.errors import ConfigError

    with pytest.raises(ConfigError, match=r"Metrics\(store=...\) must be a stalwart.monitor.Store"):
        Metrics(bad)
