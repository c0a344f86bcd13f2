"""Shared set-up of the monitoring tests: an app over a temporary SQLite file, keys, a model."""

import warnings

import numpy as np
import pytest

from stalwart.monitor import Settings, create_app

with warnings.catch_warnings():
    # this Starlette asks for the httpx2 package, which the monitor extra does not pin yet
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

COLUMNS = {"a": "numeric", "b": "numeric", "c": "categorical", "d": "integer"}


def table_rows(rng, n, *, shift_b=0.0, start=0, classes=(0, 1)):
    """Rows of the test model: b is the column a test may shift; the prediction is a's sign."""
    a, b = rng.normal(size=n), rng.normal(shift_b, 1.0, size=n)
    c, d = rng.choice(["x", "y", "z"], n), rng.integers(0, 30, n)
    return [{"a": float(a[i]), "b": float(b[i]), "c": str(c[i]), "d": int(d[i]),
             "prediction": classes[int(a[i] > 0)], "row_id": f"r{start + i}"} for i in range(n)]


@pytest.fixture
def service(tmp_path):
    """(client, store, admin key of project 'shop') over a fresh database file, no worker thread."""
    app = create_app(Settings(db=f"sqlite:///{tmp_path / 'monitor.db'}", worker=False, max_batch_rows=2000,
                              max_body_bytes=2_000_000, webhook_backoff_s=0.0))
    store = app.state.store
    with TestClient(app) as client:
        yield client, store, store.create_key("shop", "admin")


def auth(key):
    return {"Authorization": f"Bearer {key}"}


def register(client, key, name="churn", window_rows=500, reference_n=1000, seed=0, **extra):
    rng = np.random.default_rng(seed)
    ref = [{k: v for k, v in r.items() if k != "row_id"} for r in table_rows(rng, reference_n)]
    body = {"name": name, "columns": COLUMNS, "task": "classification", "classes": [0, 1],
            "window_rows": window_rows, "reference": ref, **extra}
    r = client.post("/v1/projects/shop/models", json=body, headers=auth(key))
    assert r.status_code == 201, r.text
    return r.json()
