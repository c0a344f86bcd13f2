"""The Python client and `stalwart monitor push`, against the app in-process and against a real
uvicorn server on 127.0.0.1 with its worker thread."""

import socket
import threading
import time

import numpy as np
import pandas as pd
import pytest
import uvicorn
from typer.testing import CliRunner

from stalwart.cli import app as cli
from stalwart.errors import ConfigError, InputError
from stalwart.monitor import Client, Settings, create_app

from .conftest import table_rows


def test_client_registers_logs_and_reads_back(service):
    http, store, admin = service
    client = Client("http://testserver", admin, http=http)
    rng = np.random.default_rng(0)
    ref = pd.DataFrame(table_rows(rng, 300)).drop(columns="row_id")
    model = client.register("churn", ref, classes=[0, 1], window_rows=100)
    assert model["columns"] == {"a": "numeric", "b": "numeric", "c": "categorical", "d": "integer"}
    assert model["reference_rows"] == 300
    batch = pd.DataFrame(table_rows(rng, 100))
    batch.loc[3, "a"] = np.nan  # a missing value travels as null
    first, again = client.log_batch("churn", batch), client.log_batch("churn", batch)
    assert (first["stored"], again["duplicate"]) == (True, True) and first["batch_id"] == again["batch_id"]
    truth = {f"r{i}": int(batch["prediction"][i]) if i % 4 else 1 - int(batch["prediction"][i]) for i in range(100)}
    assert client.log_labels("churn", truth) == {"labels": 100}
    assert client.analyze("churn")["windows"] == [0]
    (w,) = client.windows("churn")
    assert w["metrics"]["accuracy"]["value"] == 0.75  # every fourth label disagrees
    with pytest.raises(InputError, match="not registered"):
        client.log_batch("nope", batch)
    with pytest.raises(ConfigError, match="401"):
        Client("http://testserver", "sw_0123456789_wrong", http=http).windows("churn")
    assert "sw_" not in repr(client)


@pytest.fixture
def live(tmp_path):
    """A real server (uvicorn, worker thread on) on a free port of 127.0.0.1."""
    settings = Settings(db=f"sqlite:///{tmp_path / 'live.db'}", worker_interval_s=0.2)
    application = create_app(settings)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(application, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(200):  # bounded wait for start-up
        if server.started:
            break
        time.sleep(0.05)
    assert server.started
    yield f"http://127.0.0.1:{sock.getsockname()[1]}", application.state.store
    server.should_exit = True
    thread.join(timeout=30)
    sock.close()


def test_push_sends_a_file_once_and_the_worker_analyses_it(live, tmp_path):
    url, store = live
    admin = store.create_key("shop", "admin")
    rng = np.random.default_rng(1)
    with Client(url, admin) as client:
        client.register("churn", pd.DataFrame(table_rows(rng, 500)).drop(columns="row_id"), classes=[0, 1],
                        window_rows=250)
    path = tmp_path / "today.csv"
    pd.DataFrame(table_rows(rng, 600, shift_b=2.0)).to_csv(path, index=False)
    ingest = store.create_key("shop", "ingest")
    runner = CliRunner()
    r = runner.invoke(cli, ["monitor", "push", str(path), "--model", "churn", "--url", url, "--batch-rows", "100"],
                      env={"STALWART_MONITOR_KEY": ingest})
    assert r.exit_code == 0, r.output
    assert "6 batch(es) stored, 0 already there" in r.stdout
    r = runner.invoke(cli, ["monitor", "push", str(path), "--model", "churn", "--url", url, "--batch-rows", "100"],
                      env={"STALWART_MONITOR_KEY": ingest})
    assert "0 batch(es) stored, 6 already there" in r.stdout
    windows = []
    with Client(url, admin) as client:
        for _ in range(100):  # bounded wait for the worker thread
            windows = client.windows("churn")
            if len(windows) == 2:
                break
            time.sleep(0.1)
    assert [w["n_rows"] for w in windows] == [300, 300]
    assert all("b" in [f["feature"] for f in w["drift"] if f["drifted"]] for w in windows)
    r = runner.invoke(cli, ["monitor", "push", str(path), "--model", "churn", "--url", url])
    assert r.exit_code == 2 and "STALWART_MONITOR_KEY" in r.output
