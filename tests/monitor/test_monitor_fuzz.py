"""Schemathesis over the service's OpenAPI schema: whatever a client sends, the answer is never a
5xx, and every 4xx is JSON that says what was wrong.

Bounded: EXAMPLES generated cases per operation (plus schemathesis' own coverage cases, such as
unsupported methods), sent with an admin key; most go to a registered model so that generated
bodies and query strings reach the handlers, the rest to generated projects and models."""

import warnings
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from stalwart.monitor import Settings, create_app

from .conftest import BACKENDS, auth, register, table_rows

schemathesis = pytest.importorskip("schemathesis")

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

#: generated cases per operation and pass
EXAMPLES = 15
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module", params=BACKENDS)
def fuzzed(request, tmp_path_factory):
    """(app, admin key of 'shop') with model 'churn' registered, on SQLite or PostgreSQL (which
    refuses some values SQLite takes, such as NUL characters in text)."""
    if request.param == "sqlite":
        db = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'monitor.db'}"
    else:
        db = request.getfixturevalue("postgres_databases")("fuzz")
    app = create_app(Settings(db=db, worker=False, max_batch_rows=500, max_body_bytes=200_000))
    admin = app.state.store.create_key("shop", "admin")
    with TestClient(app) as client:
        register(client, admin, window_rows=10, reference_n=50)
    yield app, admin
    app.state.store.close()


def _openapi():
    """The schema as the service publishes it (an app over an in-memory database, only to render it)."""
    app = create_app(Settings(db="sqlite:///:memory:", worker=False))
    try:
        return app.openapi()
    finally:
        app.state.store.close()


# loaded from the document, the fixture's app given to each call (schemathesis' lazy fixture loader
# does not run under this pytest)
schema = schemathesis.openapi.from_dict(_openapi())


def _message(response):
    """The text a 4xx gives its client: FastAPI's ``detail`` string, or each validation error's ``msg``."""
    kind = {k.lower(): v for k, v in response.headers.items()}.get("content-type", "")
    kind = kind[0] if isinstance(kind, list) else kind  # schemathesis keeps a list per header
    assert kind.startswith("application/json"), (response.status_code, kind, response.text)
    detail = response.json().get("detail")
    if isinstance(detail, list):
        assert detail and all(isinstance(d, dict) and d.get("msg") for d in detail), detail
        return "; ".join(d["msg"] for d in detail)
    assert isinstance(detail, str) and detail.strip(), detail
    return detail


def _check(response):
    assert response.status_code < 500, (response.status_code, response.text)
    if 400 <= response.status_code < 500:
        _message(response)


@schema.parametrize()
@FUZZ
def test_no_5xx_and_every_4xx_says_why(case, fuzzed):
    app, admin = fuzzed
    # by a stable hash of the generated path: three cases in four go to the registered model, so
    # bodies and query strings reach the handlers; the rest keep their generated project and model
    params = case.path_parameters or {}
    if params and zlib.crc32(repr(sorted(params.items())).encode()) % 4:
        fixed = {"project": "shop", "model": "churn"}
        case.path_parameters = {k: fixed.get(k, v) for k, v in params.items()}
    _check(case.call(app=app, headers=auth(admin)))


def test_the_fuzz_reaches_the_handlers(fuzzed):
    """Not only 401/403/404: a generated-looking but valid batch is stored through the same app."""
    app, admin = fuzzed
    with TestClient(app) as client:
        rows = table_rows(np.random.default_rng(0), 5)
        r = client.post("/v1/projects/shop/models/churn/batches", json={"batch_id": "fz", "rows": rows},
                        headers=auth(admin))
        assert r.status_code in (200, 201), r.text
        r = client.post("/v1/projects/shop/models/churn/batches", json={"batch_id": 5, "rows": rows},
                        headers=auth(admin))
        assert r.status_code == 422 and "batch_id" in _message(r)


def test_values_a_database_refuses_get_a_422_that_says_why(service, monkeypatch):
    """What the fuzz did not reach, found by hand: numbers beyond the integer columns and NUL
    characters (PostgreSQL refuses them in text) were 500s; each is now a 422 naming the value."""
    client, store, admin = service
    register(client, admin, window_rows=10, reference_n=50)
    model = "/v1/projects/shop/models/churn"
    rows = table_rows(np.random.default_rng(1), 3)
    cases = [
        ("GET", model + "/windows?after=99999999999999999999", None, "less than or equal to 2147483647"),
        ("GET", model + "/windows?after=-5", None, "greater than or equal to -1"),
        ("GET", "/v1/projects/shop/models/a%00b", None, "model name must not contain NUL"),
        ("POST", "/v1/projects/shop/models", {"name": "x\x00", "columns": {"a": "numeric"}},
         "model name must not contain NUL"),
        ("POST", model + "/batches", {"batch_id": "b\x00", "rows": rows}, "batch_id must not contain NUL"),
        ("POST", model + "/labels", {"labels": [{"row_id": "r\x00", "label": 1}]}, "contains a NUL character"),
        ("POST", model + "/rules", {"name": "r\x00", "condition": "drift_share <= 0.2"}, "rule name must not"),
        ("POST", model + "/rules", {"name": "r", "condition": "drift_share <= 0.2", "webhook_url": "http://h/\x00"},
         "without spaces or control characters"),
    ]
    r = client.post("/v1/projects/shop/models", headers={**auth(admin), "Content-Type": "application/json"},
                    content='{"name": "inf", "columns": {"a": "numeric"}, "window_seconds": Infinity}')
    assert r.status_code == 422 and "finite number" in _text(r)  # was stored as no time window at all
    # an invalid NaN or Infinity is echoed back as text: FastAPI's own answer could not encode it (a 500)
    r = client.post("/v1/projects/shop/models", headers={**auth(admin), "Content-Type": "application/json"},
                    content='{"name": "nan", "columns": {"a": "numeric"}, "alpha": NaN}')
    assert r.status_code == 422 and r.json()["detail"][0]["input"] == "nan" and "alpha" in r.json()["detail"][0]["loc"]
    for method, path, body, message in cases:
        r = client.request(method, path, json=body, headers=auth(admin))
        assert r.status_code == 422 and message in _text(r), (path, body, r.status_code, r.text)
    # a batch whose row ids hold NUL is stored (they travel in its blob) and its window still analyses
    odd = [{**row, "row_id": f"odd\x00{i}"} for i, row in enumerate(table_rows(np.random.default_rng(2), 10))]
    assert client.post(model + "/batches", json={"batch_id": "odd", "rows": odd}, headers=auth(admin)).status_code == 201
    assert client.post(model + "/labels", json={"labels": [{"row_id": "r0", "label": 1}]},
                       headers=auth(admin)).status_code == 200
    assert client.post(model + "/analyze", headers=auth(admin)).json()["windows"] == [0]

    # the safety net: any other value the database refuses is a 422 with the database's reason
    import sqlalchemy as sa

    def refuse(*args, **kwargs):
        raise sa.exc.DataError("SELECT 1", {}, ValueError("integer out of range"))

    monkeypatch.setattr(store, "model", refuse)
    r = client.get(model, headers=auth(admin))
    assert r.status_code == 422 and "refused a value of this request (integer out of range)" in r.json()["detail"]


def _text(response):
    return _message(_Wrapped(response))


class _Wrapped:
    """A Starlette test response seen as schemathesis' (headers as lists)."""

    def __init__(self, response):
        self.status_code, self.text, self.json = response.status_code, response.text, response.json
        self.headers = {k: [v] for k, v in response.headers.items()}
