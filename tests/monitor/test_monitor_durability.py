"""A batch is acknowledged only after its commit: kill the server with SIGKILL in the middle of a
stream of ingests, restart it on the same file (or PostgreSQL database), and every acknowledged batch
is there, none twice; the windows, stream detector alarms and alert history are those of a service
that never stopped."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import numpy as np
import pytest

from stalwart.monitor import Settings, Store, create_app
from stalwart.monitor.analysis import analyze

from .conftest import BACKENDS, COLUMNS, TestClient, table_rows

N_BATCHES = 150


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(db, port):
    proc = subprocess.Popen([sys.executable, "-m", "stalwart.cli", "serve", "--db", db, "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):  # bounded wait for start-up
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError("the server did not start")


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_sigkill_loses_no_acknowledged_batch_and_a_resend_stores_nothing_twice(tmp_path, request, backend):
    # on PostgreSQL the database server lives on: what is tested is that the service answers only
    # after the commit
    db = (f"sqlite:///{tmp_path / 'monitor.db'}" if backend == "sqlite"
          else request.getfixturevalue("postgres_databases")("durability"))
    store = Store(db)
    key = store.create_key("shop", "admin")
    rng = np.random.default_rng(0)
    # b's mean moves by 1.5 sd from batch 75 on: the stream detector and the drift rule see it
    batches = [{"batch_id": f"b{i}", "rows": table_rows(rng, 20, start=20 * i, shift_b=1.5 * (i >= 75))}
               for i in range(N_BATCHES)]
    reference = [{k: v for k, v in r.items() if k != "row_id"} for r in table_rows(np.random.default_rng(1), 500)]
    spec = {"name": "churn", "columns": COLUMNS, "classes": [0, 1], "window_rows": 100, "reference": reference,
            "streams": [{"on": "b", "detector": "adwin"}]}
    rules = [{"name": "drift", "condition": "drift_share <= 0.2"},
             {"name": "change", "condition": "stream_changes < 1", "for_windows": 1}]
    headers = {"Authorization": f"Bearer {key}"}
    port = _free_port()
    url = f"http://127.0.0.1:{port}/v1/projects/shop/models/churn/batches"
    server = _start(db, port)
    try:
        httpx.post(f"http://127.0.0.1:{port}/v1/projects/shop/models", headers=headers, timeout=30,
                   json=spec).raise_for_status()
        for rule in rules:
            httpx.post(f"http://127.0.0.1:{port}/v1/projects/shop/models/churn/rules", headers=headers, timeout=30,
                       json=rule).raise_for_status()
        acked, analysed = [], threading.Event()

        def stream():
            with httpx.Client(headers=headers, timeout=10) as client:
                for i, b in enumerate(batches):
                    if i == 40:  # (the analysis child's first pass loads its libraries: seconds)
                        analysed.wait(120)
                    try:
                        r = client.post(url, json=b)
                    except httpx.HTTPError:
                        return
                    assert r.status_code == 201
                    acked.append(b["batch_id"])
                    time.sleep(0.02)  # a steady stream, so the worker analyses windows before the kill

        sender = threading.Thread(target=stream)
        sender.start()
        windows_url = url.replace("/batches", "/windows")
        for _ in range(2400):  # bounded: 120 s until windows of the first 40 batches are analysed
            if len(acked) >= 30 and len(httpx.get(windows_url, headers=headers, timeout=10).json()["windows"]) >= 2:
                break
            time.sleep(0.05)
        analysed.set()
        for _ in range(400):  # then kill in the middle of the resumed stream
            if len(acked) >= 45:
                break
            time.sleep(0.01)
        os.kill(server.pid, signal.SIGKILL)
        server.wait()
        killed_at = time.time()
        sender.join(timeout=60)
        assert 30 <= len(acked) < N_BATCHES
    finally:
        server.kill()
        server.wait()

    server = _start(db, port)
    try:
        with httpx.Client(headers=headers, timeout=30) as client:
            answers = {b["batch_id"]: client.post(url, json=b).json() for b in batches}
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    assert all(answers[b]["duplicate"] for b in acked)  # every acknowledged batch was on disk
    model = store.model(store.project_id("shop"), "churn")
    assert store.batch_count(model["id"]) == (N_BATCHES, 20 * N_BATCHES)  # and none is stored twice
    analyze(store)  # what the stopped worker had not reached yet
    killed = _history(store, model["id"])
    analysed = [w["analysed_at"] for w in store.windows(model["id"])]
    # the killed server's worker had analysed windows, and the later ones went on from the state they left
    assert min(analysed) < killed_at < max(analysed)
    store.close()

    # the same batches through a service that never stopped
    app = create_app(Settings(db=f"sqlite:///{tmp_path / 'straight.db'}", worker=False))
    with TestClient(app) as client:
        key = app.state.store.create_key("shop", "admin")
        auth = {"Authorization": f"Bearer {key}"}
        client.post("/v1/projects/shop/models", json=spec, headers=auth).raise_for_status()
        for rule in rules:
            client.post("/v1/projects/shop/models/churn/rules", json=rule, headers=auth).raise_for_status()
        for b in batches:
            client.post("/v1/projects/shop/models/churn/batches", json=b, headers=auth).raise_for_status()
        analyze(app.state.store)
        straight = _history(app.state.store, app.state.store.model_ids()[0])
    app.state.store.close()
    assert len(straight["windows"]) == 30 and any(w[2] for w in straight["windows"])  # the change was seen
    assert ("ok", "firing") in [a[2:] for a in straight["alerts"]]
    assert killed == straight


def _history(store, model_id):
    """Windows (seq, rows, stream alarms with their row ids, drift share) and alert transitions."""
    windows = [(w["seq"], w["n_rows"], w["metrics"]["stream_changes"]["value"],
                [c["row_id"] for s in store.window_details(w["id"])["streams"] for c in s["changes"]],
                w["metrics"]["drift_share"]["value"]) for w in store.windows(model_id)]
    alerts = sorted((a["rule"], a["window_seq"], a["from_state"], a["to_state"]) for a in store.alerts(model_id))
    return {"windows": windows, "alerts": alerts}
