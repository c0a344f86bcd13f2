"""Keys and projects: what each scope may do, across projects; keys listed without secrets and
revoked (refused at once); no key in a log or in any answer after its creation; and SQL built
only through SQLAlchemy, never formatted from values."""

import ast
import logging
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import stalwart.monitor
import stalwart.monitor.app as app_module
from stalwart.cli import app as cli
from stalwart.monitor import Store
from stalwart.monitor.store import NotFound

from .conftest import auth, register, table_rows

SHOP, BANK = "/v1/projects/shop", "/v1/projects/bank"


def _keys(client, store, admin):
    """The shop's admin, read and ingest keys, and the bank's admin and ingest keys (with a model each)."""
    register(client, admin)
    bank_admin = store.create_key("bank", "admin")
    r = client.post("/v1/projects/bank/models", headers=auth(bank_admin),
                    json={"name": "churn", "columns": {"a": "numeric"}, "classes": [0, 1]})
    assert r.status_code == 201, r.text
    return {"admin": admin, "read": store.create_key("shop", "read"), "ingest": store.create_key("shop", "ingest"),
            "bank_admin": bank_admin, "bank_ingest": store.create_key("bank", "ingest")}


def test_each_scope_reaches_only_its_own_project_and_routes(service):
    client, store, admin = service
    k = _keys(client, store, admin)
    batch = {"batch_id": "b1", "rows": table_rows(np.random.default_rng(0), 5)}
    bank_batch = {"batch_id": "b1", "rows": [{"a": 0.5, "prediction": 1}]}
    expect = [
        # a read key cannot ingest, nor send labels, nor make keys
        ("POST", SHOP + "/models/churn/batches", "read", batch, 403),
        ("POST", SHOP + "/models/churn/labels", "read", {"labels": [{"row_id": "r0", "label": 1}]}, 403),
        ("POST", SHOP + "/keys", "read", {"scope": "read"}, 403),
        ("GET", SHOP + "/models/churn/windows", "read", None, 200),
        # an ingest key writes its own project only, and reads nothing
        ("POST", SHOP + "/models/churn/batches", "ingest", batch, 201),
        ("GET", SHOP + "/models/churn/windows", "ingest", None, 403),
        ("POST", BANK + "/models/churn/batches", "ingest", bank_batch, 403),
        ("GET", BANK + "/models/churn/windows", "ingest", None, 403),
        ("GET", BANK + "/models", "ingest", None, 403),
        # an admin of the shop is nobody at the bank: no keys, no reads, no writes, no revocations
        ("POST", BANK + "/keys", "admin", {"scope": "admin"}, 403),
        ("GET", BANK + "/keys", "admin", None, 403),
        ("GET", BANK + "/models/churn", "admin", None, 403),
        ("POST", BANK + "/models/churn/batches", "admin", bank_batch, 403),
        ("PUT", BANK + "/models/churn/reference", "admin", {"rows": [{"a": 1.0, "prediction": 0}]}, 403),
        ("DELETE", BANK + "/keys/" + k["bank_ingest"].split("_")[1], "admin", None, 403),
        # and the other way round
        ("POST", SHOP + "/models/churn/batches", "bank_ingest", batch, 403),
        ("POST", SHOP + "/keys", "bank_admin", {"scope": "read"}, 403),
        ("POST", BANK + "/models/churn/batches", "bank_ingest", bank_batch, 201),
    ]
    for method, path, who, body, status in expect:
        r = client.request(method, path, json=body, headers=auth(k[who]))
        assert r.status_code == status, (method, path, who, r.status_code, r.text)
        if status == 403:
            assert "another project" in r.json()["detail"] or "scope" in r.json()["detail"]
    # the refused requests changed nothing: one batch each, no new key at the bank
    assert store.batch_count(store.model(store.project_id("bank"), "churn")["id"]) == (1, 1)
    assert store.batch_count(store.model(store.project_id("shop"), "churn")["id"]) == (1, 5)
    assert len(store.keys("bank")) == 2


def test_keys_are_listed_without_secrets_and_a_revoked_key_is_refused_at_once(service):
    client, store, admin = service
    created = client.post(SHOP + "/keys", json={"scope": "ingest"}, headers=auth(admin)).json()["key"]
    ident = created.split("_")[1]
    assert client.get("/v1/whoami", headers=auth(created)).status_code == 200  # now in the key cache
    listed = client.get(SHOP + "/keys", headers=auth(admin))
    assert listed.status_code == 200 and created not in listed.text and created.split("_", 2)[2] not in listed.text
    rows = {k["key_id"]: k for k in listed.json()["keys"]}
    assert set(rows) == {admin.split("_")[1], ident}
    assert rows[ident]["prefix"] == f"sw_{ident}_" and created.startswith(rows[ident]["prefix"])
    assert (rows[ident]["scope"], rows[ident]["revoked"]) == ("ingest", False)
    assert set(rows[ident]) == {"key_id", "prefix", "scope", "created_at", "revoked"}
    read = store.create_key("shop", "read")
    assert client.get(SHOP + "/keys", headers=auth(read)).status_code == 403  # listing is for admins
    assert client.delete(SHOP + f"/keys/{ident}", headers=auth(read)).status_code == 403

    r = client.delete(SHOP + f"/keys/{ident}", headers=auth(admin))
    assert r.status_code == 200 and r.json() == {"key_id": ident, "project": "shop", "scope": "ingest", "revoked": True}
    r = client.get("/v1/whoami", headers=auth(created))
    assert r.status_code == 401 and "revoked" in r.json()["detail"]
    assert store.authenticate(created) is None
    assert {k["key_id"]: k["revoked"] for k in client.get(SHOP + "/keys", headers=auth(admin)).json()["keys"]
            }[ident] is True  # the row stays, marked
    assert client.delete(SHOP + f"/keys/{ident}", headers=auth(admin)).status_code == 200  # again: no change
    r = client.delete(SHOP + "/keys/0123456789", headers=auth(admin))
    assert r.status_code == 404 and "--list-keys" in r.json()["detail"]
    assert client.get("/v1/whoami", headers=auth(admin)).status_code == 200  # other keys unaffected


def test_a_key_revoked_by_another_process_is_refused_within_the_check_interval(service, db_url, monkeypatch):
    client, store, admin = service
    key = store.create_key("shop", "read")
    assert client.get(SHOP + "/models", headers=auth(key)).status_code == 200  # cached for KEY_CACHE_S
    other = Store(db_url)  # another server process, or `stalwart serve --revoke-key`
    other.revoke_key(key.split("_")[1])
    other.close()
    monkeypatch.setattr(app_module, "REVOCATION_CHECK_S", 1e9)
    # within the interval the cache still answers (the price of not looking each key up per request) ...
    assert client.get(SHOP + "/models", headers=auth(key)).status_code == 200
    monkeypatch.setattr(app_module, "REVOCATION_CHECK_S", 0.0)
    # ... and once it has passed, the count of revoked keys moved: the cache is dropped, the key refused
    assert client.get(SHOP + "/models", headers=auth(key)).status_code == 401
    assert client.get(SHOP + "/models", headers=auth(admin)).status_code == 200


def test_store_keys_and_revocation(db_url):
    store = Store(db_url)
    a, b = store.create_key("a", "admin"), store.create_key("b", "read")
    ida, idb = a.split("_")[1], b.split("_")[1]
    assert [k["key_id"] for k in store.keys("a")] == [ida] and store.revoked_count() == 0
    with pytest.raises(NotFound, match="in project 'a'"):
        store.revoke_key(idb, "a")  # a key of b, named under a
    with pytest.raises(NotFound, match="does not exist"):
        store.keys("nobody")
    assert store.revoke_key(idb)["project"] == "b" and store.revoked_count() == 1
    assert store.authenticate(b) is None and store.authenticate(a).project == "a"
    store.close()


def test_no_key_in_any_log_or_any_answer_after_its_creation(service, caplog):
    caplog.set_level(logging.DEBUG)
    client, store, admin = service
    register(client, admin, window_rows=50)
    made = [client.post(SHOP + "/keys", json={"scope": s}, headers=auth(admin)).json()["key"]
            for s in ("read", "ingest")]
    read, ingest = made
    secrets = [admin, read, ingest] + [k.split("_", 2)[2] for k in (admin, read, ingest)]
    answers = []
    rng = np.random.default_rng(4)
    for i in range(2):
        answers.append(client.post(SHOP + "/models/churn/batches", headers=auth(ingest),
                                   json={"batch_id": f"b{i}", "rows": table_rows(rng, 50, start=50 * i)}))
    answers.append(client.post(SHOP + "/models/churn/labels", headers=auth(ingest),
                               json={"labels": [{"row_id": "r1", "label": 1}]}))
    answers.append(client.post(SHOP + "/models/churn/analyze", headers=auth(admin)))
    for path in ("/v1/whoami", SHOP + "/models", SHOP + "/models/churn", SHOP + "/models/churn/windows",
                 SHOP + "/models/churn/rules", SHOP + "/models/churn/alerts", SHOP + "/keys", "/openapi.json"):
        answers.append(client.get(path, headers=auth(read if "keys" not in path else admin)))
    answers.append(client.delete(SHOP + f"/keys/{ingest.split('_')[1]}", headers=auth(admin)))
    answers.append(client.post(SHOP + "/models/churn/batches", headers=auth(ingest), json={"batch_id": "late"}))
    answers.append(client.get("/v1/whoami", headers=auth(ingest[:-1])))  # a wrong key is not echoed either
    assert [a.status_code for a in answers[:4]] == [201, 201, 200, 200]
    assert answers[-2].status_code == 401 and answers[-1].status_code == 401
    for answer in answers:
        assert not any(s in answer.text for s in [*secrets, ingest[:-1]]), answer.request.url
        assert not any(s in str(answer.headers) for s in secrets)
    logged = caplog.text + "".join(str(r.args) for r in caplog.records)
    assert ingest.split("_")[1] in logged  # key ids are logged (created, revoked), never keys
    assert not any(s in logged for s in secrets)


# --- SQL is built by SQLAlchemy, never formatted from values --------------------------------------
_SQL_CALLS = {"text", "execute", "exec_driver_sql", "executemany", "executescript", "literal_column"}


def _formatted(node):
    """Whether an expression builds a string from values: f-string, %, .format, or + with text."""
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(v, ast.FormattedValue) for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mod, ast.Add)):
        return True
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("format", "format_map", "join"))


def _sql_built_from_values(source):
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and node.args:
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in _SQL_CALLS and _formatted(node.args[0]):
                found.append(f"line {node.lineno}: {name}(...)")
    return found


def test_no_module_of_the_service_formats_sql():
    root = Path(stalwart.monitor.__file__).parent
    files = sorted(root.rglob("*.py"))
    assert len(files) >= 10 and root / "store.py" in files and root / "app.py" in files
    offenders = {str(f.relative_to(root)): hits for f in files if (hits := _sql_built_from_values(f.read_text()))}
    assert offenders == {}
    # the scan itself catches what it should, and leaves bound parameters alone
    assert _sql_built_from_values('conn.execute(sa.text(f"SELECT * FROM t WHERE a = {a}"))')
    assert _sql_built_from_values('cursor.execute("PRAGMA synchronous=%s" % mode)')
    assert _sql_built_from_values('conn.exec_driver_sql("DELETE FROM " + table)')
    assert _sql_built_from_values('conn.execute(text("SELECT {}".format(x)))')
    assert not _sql_built_from_values('conn.execute(sa.text("SELECT * FROM t WHERE a = :a"), {"a": a})')
    assert not _sql_built_from_values('conn.execute(t.select().where(t.c.a == a))')


# --- the command line --------------------------------------------------------------------------------
def test_cli_lists_and_revokes_keys(tmp_path):
    runner = CliRunner()
    db = f"sqlite:///{tmp_path / 'm.db'}"
    store = Store(db)
    keep, drop = store.create_key("shop", "admin"), store.create_key("shop", "ingest")
    store.create_key("bank", "read")
    store.close()
    r = runner.invoke(cli, ["serve", "--db", db, "--list-keys", "--project", "shop"])
    assert r.exit_code == 0, r.output
    lines = r.stdout.strip().splitlines()
    assert [line.split()[:2] for line in lines] == [[keep.split("_")[1], "admin"], [drop.split("_")[1], "ingest"]]
    assert all(line.endswith("active") for line in lines) and keep not in r.output and drop not in r.output
    r = runner.invoke(cli, ["serve", "--db", db, "--revoke-key", drop.split("_")[1], "--project", "shop"])
    assert r.exit_code == 0 and f"revoked key {drop.split('_')[1]} (ingest) of project shop" in r.stderr
    r = runner.invoke(cli, ["serve", "--db", db, "--list-keys", "--project", "shop"])
    assert r.stdout.strip().splitlines()[1].endswith("revoked")
    store = Store(db)
    assert store.authenticate(drop) is None and store.authenticate(keep) is not None
    store.close()
    for args, message in ((["--revoke-key", "0123456789"], "no key with id '0123456789'"),
                          (["--revoke-key", keep.split("_")[1], "--project", "bank"], "in project 'bank'"),
                          (["--list-keys"], "--list-keys needs --project"),
                          (["--list-keys", "--project", "nobody"], "does not exist"),
                          (["--list-keys", "--revoke-key", "x", "--project", "shop"], "one at a time")):
        r = runner.invoke(cli, ["serve", "--db", db, *args])
        assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output, (args, r.output)


def test_no_telemetry_even_where_the_process_configures_opentelemetry(monkeypatch):
    # FastAPI (from 0.130 or so) traces and meters every request through OpenTelemetry's global
    # providers once a process configures them; the service keeps that off: its figures are /metrics
    telemetry = pytest.importorskip("fastapi.telemetry._asgi", reason="this FastAPI has no OpenTelemetry hooks")
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    used = []

    class Provider:  # a configured provider (not OpenTelemetry's placeholder) that records its use
        def __getattr__(self, name):
            used.append(name)
            raise RuntimeError("telemetry used")

    monkeypatch.setattr(telemetry.trace, "get_tracer_provider", Provider)
    monkeypatch.setattr(telemetry.metrics, "get_meter_provider", Provider)
    monkeypatch.setattr(telemetry._logs, "get_logger_provider", Provider)

    plain = FastAPI()
    plain.get("/health")(lambda: {"status": "ok"})
    with TestClient(plain, raise_server_exceptions=False) as client:
        client.get("/health")
    assert used, "the check cannot fail: plain FastAPI did not reach the configured providers"
    used.clear()
    service = stalwart.monitor.create_app(stalwart.monitor.Settings(db="sqlite:///:memory:", worker=False))
    with TestClient(service) as client:
        assert client.get("/health").status_code == 200
        assert client.get("/v1/whoami").status_code == 401
    assert used == []
