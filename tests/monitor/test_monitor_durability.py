"""A batch is acknowledged only after its commit: kill the server with SIGKILL in the middle of a
stream of ingests, restart it on the same file (or PostgreSQL database), and every acknowledged batch
is there, none twice."""

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

from stalwart.monitor import Store

from .conftest import BACKENDS, COLUMNS, table_rows

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
    batches = [{"batch_id": f"b{i}", "rows": table_rows(rng, 20, start=20 * i)} for i in range(N_BATCHES)]
    headers = {"Authorization": f"Bearer {key}"}
    port = _free_port()
    url = f"http://127.0.0.1:{port}/v1/projects/shop/models/churn/batches"
    server = _start(db, port)
    try:
        httpx.post(f"http://127.0.0.1:{port}/v1/projects/shop/models", headers=headers, timeout=30,
                   json={"name": "churn", "columns": COLUMNS, "classes": [0, 1], "window_rows": 100}
                   ).raise_for_status()
        acked = []

        def stream():
            with httpx.Client(headers=headers, timeout=10) as client:
                for b in batches:
                    try:
                        r = client.post(url, json=b)
                    except httpx.HTTPError:
                        return
                    assert r.status_code == 201
                    acked.append(b["batch_id"])

        sender = threading.Thread(target=stream)
        sender.start()
        for _ in range(2000):  # bounded: kill once a good part of the stream is acknowledged
            if len(acked) >= 30:
                break
            time.sleep(0.01)
        os.kill(server.pid, signal.SIGKILL)
        server.wait()
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
    store.close()
