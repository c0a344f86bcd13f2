"""The worker's analysis passes in a child process: the same windows as a pass in the thread, one
child kept across passes, a new one after a crash, none left behind; and the worker of a served
app analyses windows that way while the server ingests."""

import os
import signal
import threading
import time
from concurrent.futures.process import BrokenProcessPool

import numpy as np
import pytest

from stalwart.errors import ConfigError
from stalwart.monitor import Settings, Store, create_app
from stalwart.monitor.analysis import analyze
from stalwart.monitor.analysis_process import AnalysisProcess, can_run_apart

from .conftest import TestClient, auth, register, table_rows


def _ingest(client, key, n_batches, seed=0, shift_b=0.0):
    rng = np.random.default_rng(seed)
    for i in range(n_batches):
        body = {"batch_id": f"s{seed}-{i}", "rows": table_rows(rng, 100, start=100 * i + 10_000 * seed,
                                                                shift_b=shift_b)}
        r = client.post("/v1/projects/shop/models/churn/batches", json=body, headers=auth(key))
        assert r.status_code == 201, r.text


def _ends(pid, seconds=5.0):
    """Whether process ``pid`` is gone (and reaped) within ``seconds`` (bounded polling)."""
    for _ in range(int(seconds / 0.05)):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def _windows(store):
    model = store.model(store.project_id("shop"), "churn")
    return [(w["seq"], w["n_rows"], round(w["metrics"]["drift_share"]["value"], 12))
            for w in store.windows(model["id"])]


@pytest.mark.slow  # each starts a child that imports the analysis libraries
def test_a_pass_in_the_child_makes_the_windows_a_pass_in_the_thread_makes(tmp_path):
    made = {}
    for where in ("thread", "child"):
        db = f"sqlite:///{tmp_path / f'{where}.db'}"
        app = create_app(Settings(db=db, worker=False))
        store = app.state.store
        with TestClient(app) as client:
            key = store.create_key("shop", "admin")
            register(client, key, window_rows=500)
            _ingest(client, key, 10, shift_b=1.0)  # two windows, b shifted by one sd
            if where == "thread":
                result = analyze(store)
            else:
                apart = AnalysisProcess(db)
                try:
                    result = apart.analyze()
                    assert apart.pid is not None and apart.pid != os.getpid()
                finally:
                    apart.close()
            assert sorted(result["windows"].values()) == [[0, 1]] and not result["errors"]
            made[where] = _windows(store)
        store.close()
    assert made["child"] == made["thread"]
    assert [n for _, n, _ in made["child"]] == [500, 500]
    assert all(share > 0 for _, _, share in made["child"])  # b drifted in both windows


@pytest.mark.slow  # each starts a child that imports the analysis libraries
def test_one_child_serves_every_pass_and_a_killed_one_is_replaced(tmp_path):
    db = f"sqlite:///{tmp_path / 'monitor.db'}"
    Store(db).close()
    apart = AnalysisProcess(db)
    try:
        assert apart.analyze()["windows"] == {}
        first = apart.pid
        apart.analyze()
        assert apart.pid == first  # kept between passes
        os.kill(first, signal.SIGKILL)
        with pytest.raises(BrokenProcessPool):
            apart.analyze()
        assert apart.pid is None
        assert apart.analyze()["windows"] == {}  # the next pass starts a new child
        assert apart.pid not in (None, first)
        second = apart.pid
    finally:
        apart.close()
    assert _ends(second), "the child outlived close()"


@pytest.mark.slow  # each starts a child that imports the analysis libraries
def test_a_served_app_analyses_in_a_child_while_it_ingests(tmp_path):
    db = f"sqlite:///{tmp_path / 'monitor.db'}"
    app = create_app(Settings(db=db, worker=True, worker_interval_s=0.1))
    store = app.state.store
    with TestClient(app) as client:
        key = store.create_key("shop", "admin")
        register(client, key, window_rows=500)
        _ingest(client, key, 10)
        for _ in range(1200):  # bounded: 120 s (the child imports the analysis stack once)
            if len(_windows(store)) == 2:
                break
            time.sleep(0.1)
        worker = next(t for t in threading.enumerate() if t.name == "stalwart-monitor-worker")
        child = worker.apart.pid
        assert child is not None and child != os.getpid()
    assert len(_windows(store)) == 2
    store.close()
    assert _ends(child), "the analysis child outlived the app"  # the app's shutdown ends it


def test_memory_databases_stay_in_the_thread_and_the_setting_is_checked():
    assert not can_run_apart("sqlite:///:memory:") and not can_run_apart("sqlite://")
    assert not can_run_apart("sqlite:///file:shared?mode=memory&uri=true")
    assert can_run_apart("sqlite:///monitor.db") and can_run_apart("postgresql+psycopg://u@127.0.0.1/db")
    with pytest.raises(ConfigError, match="analysis_process"):
        Settings(analysis_process="yes")
