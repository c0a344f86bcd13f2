"""The HTTP service: the auth matrix, idempotent ingest, limits, labels."""

import io

import numpy as np
import pandas as pd

from .conftest import auth, register, table_rows

BATCHES = "/v1/projects/shop/models/churn/batches"


def test_health_is_open_and_everything_else_needs_a_key(service):
    client, store, admin = service
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/v1/projects/shop/models").status_code == 401
    assert client.get("/v1/projects/shop/models", headers=auth("sw_0123456789_nope")).status_code == 401
    assert client.get("/v1/whoami", headers=auth(admin)).json()["scope"] == "admin"


def test_auth_matrix(service, caplog):
    caplog.set_level("DEBUG")
    client, store, admin = service
    register(client, admin)
    read = client.post("/v1/projects/shop/keys", json={"scope": "read"}, headers=auth(admin)).json()["key"]
    ingest = store.create_key("shop", "ingest")
    other = store.create_key("bank", "admin")
    rows = table_rows(np.random.default_rng(1), 5)
    batch = {"batch_id": "b1", "rows": rows}
    assert client.post(BATCHES, json=batch, headers=auth(read)).status_code == 403
    assert client.post(BATCHES, json=batch, headers=auth(other)).status_code == 403
    assert client.post(BATCHES, json=batch, headers=auth(ingest)).status_code == 201
    assert client.get("/v1/projects/shop/models", headers=auth(read)).status_code == 200
    assert client.get("/v1/projects/shop/models", headers=auth(ingest)).status_code == 403
    assert client.get("/v1/projects/shop/models", headers=auth(other)).status_code == 403
    assert client.get("/v1/projects/bank/models", headers=auth(read)).status_code == 403
    assert client.post("/v1/projects/shop/keys", json={"scope": "read"}, headers=auth(ingest)).status_code == 403
    # a key is never returned after creation
    listed = client.get("/v1/projects/shop/models/churn", headers=auth(read)).text
    assert read not in listed and admin not in listed
    assert read.split("_")[1] in caplog.text  # the key's id is logged, never the key
    assert not any(k in caplog.text for k in (read, admin, ingest, other))


def test_a_retried_batch_is_acknowledged_and_stored_once(service):
    client, store, admin = service
    model = register(client, admin)
    rows = table_rows(np.random.default_rng(2), 50)
    first = client.post(BATCHES, json={"batch_id": "b-7", "rows": rows}, headers=auth(admin))
    again = client.post(BATCHES, json={"batch_id": "b-7", "rows": rows}, headers=auth(admin))
    assert (first.status_code, first.json()["duplicate"]) == (201, False)
    assert (again.status_code, again.json()["duplicate"]) == (200, True)
    assert store.batch_count(model["id"]) == (1, 50)
    reused = client.post(BATCHES, json={"batch_id": "b-7", "rows": rows[:10]}, headers=auth(admin))
    assert reused.status_code == 409 and "other content" in reused.json()["detail"]
    csv = "a,b,c,d,prediction\n0.1,0.2,x,3,1\n-0.5,1.5,y,4,0\n"
    r = client.post(BATCHES + "?batch_id=csv-1", content=csv, headers={**auth(admin), "Content-Type": "text/csv"})
    assert r.status_code == 201 and r.json()["rows"] == 2
    buf = io.BytesIO()
    pd.DataFrame(rows[:30]).to_parquet(buf)
    r = client.post(BATCHES + "?batch_id=pq-1", content=buf.getvalue(),
                    headers={**auth(admin), "Content-Type": "application/vnd.apache.parquet"})
    assert r.status_code == 201 and r.json()["rows"] == 30
    assert store.batch_count(model["id"]) == (3, 82)
    (*_, last) = store.batches_after(model["id"], 0)
    (stored,) = store.batch_data(model["id"], last.id, last.id)
    assert np.array_equal(stored["inputs"]["b"], [r["b"] for r in rows[:30]])
    assert stored["inputs"]["c"] == [r["c"] for r in rows[:30]] and stored["row_id"] == [r["row_id"] for r in rows[:30]]


def test_bad_and_oversized_batches_are_refused_with_the_reason(service):
    client, store, admin = service
    register(client, admin)
    rows = table_rows(np.random.default_rng(3), 3)
    r = client.post(BATCHES, json={"batch_id": "x", "rows": [{**rows[0], "a": "high"}]}, headers=auth(admin))
    assert r.status_code == 422 and "'a' is numeric" in r.json()["detail"]
    r = client.post(BATCHES, json={"batch_id": "x", "rows": [{**rows[0], "zz": 1}]}, headers=auth(admin))
    assert r.status_code == 422 and "unknown column(s) ['zz']" in r.json()["detail"]
    r = client.post(BATCHES, json={"rows": rows}, headers=auth(admin))
    assert r.status_code == 422 and "batch_id" in r.json()["detail"]
    r = client.post(BATCHES, json={"batch_id": "big", "rows": rows * 700}, headers=auth(admin))
    assert r.status_code == 413 and "limit of 2000" in r.json()["detail"]
    r = client.post(BATCHES, content=b"x" * 2_000_001, headers={**auth(admin), "Content-Type": "application/json"})
    assert r.status_code == 413
    r = client.post(BATCHES, json={"batch_id": "x", "rows": [{**rows[0], "prediction": 7}]}, headers=auth(admin))
    assert r.status_code == 422 and "not one of the model's classes" in r.json()["detail"]
    assert client.get("/v1/projects/shop/models/nope", headers=auth(admin)).status_code == 404


def test_a_model_name_with_a_slash_is_refused_at_registration(service):
    client, _, admin = service
    r = client.post("/v1/projects/shop/models", json={"name": "fraud/v2", "columns": {"a": "numeric"}},
                    headers=auth(admin))
    assert r.status_code == 422 and "fraud/v2" in r.text
    assert client.get("/v1/projects/shop/models", headers=auth(admin)).json() in ([], {"models": []})


def test_the_ingest_route_finds_its_parameters_as_the_dependency_solved_routes_do(service):
    # the batches route resolves its own key and parameters (app._ResolvedRoute); the labels route
    # takes the same ones through FastAPI's dependencies: every refusal must read the same
    client, store, admin = service
    register(client, admin)
    rows = table_rows(np.random.default_rng(4), 3)
    keys = {"none": {}, "basic": {"Authorization": "Basic YTpi"}, "empty": {"Authorization": "Bearer"},
            "unknown": auth("sw_0123456789_nope"), "read": auth(store.create_key("shop", "read")),
            "other project": auth(store.create_key("bank", "admin"))}
    for name, headers in keys.items():
        got = client.post(BATCHES + "?batch_id=k", json=rows, headers=headers)
        want = client.post(BATCHES.replace("batches", "labels"), json={"labels": [{"row_id": "r0", "label": 1}]},
                           headers=headers)
        assert got.status_code in (401, 403), name
        assert (got.status_code, got.json(), got.headers.get("www-authenticate")) == \
            (want.status_code, want.json(), want.headers.get("www-authenticate")), name
    # a repeated query parameter: the last one, as FastAPI takes it
    r = client.post(BATCHES + "?batch_id=first&batch_id=last", json=rows, headers=auth(admin))
    assert (r.status_code, r.json()["batch_id"]) == (201, "last")
    # its OpenAPI entry still comes from its signature: the same key and path parameters as labels
    route = client.app.openapi()["paths"]
    batches, labels = (route[f"/v1/projects/{{project}}/models/{{model}}/{p}"]["post"] for p in ("batches", "labels"))
    assert batches["security"] == labels["security"] == [{"HTTPBearer": []}]
    assert batches["parameters"][:2] == labels["parameters"]
    assert [(p["in"], p["name"]) for p in batches["parameters"][2:]] == [("query", "batch_id")]
