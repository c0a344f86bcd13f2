"""What one ingested batch costs the database: one statement, no transaction round trips, no ping
on a connection in steady use, and no new connection per request under concurrency; and what the
ping on an idle connection buys (a connection the server dropped is replaced, not failed); and a
stored blob's layout (float arrays first, so PostgreSQL does not try to compress it end to end)."""

import threading

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from stalwart.monitor import Store
from stalwart.monitor import store as store_module

COLS = {"row_id": ["r0", "r1"], "timestamp": [1.0, 2.0], "prediction": [0, 1], "inputs": {"a": [0.5, None]}}


def _model(store):
    pid = store.project_id("p", create=True)
    return store.add_model(pid, "m", "classification", [0, 1], {"a": "numeric"}, {"window_rows": 10})["id"]


@pytest.fixture
def statements():
    """Every statement any engine sends, with whether its DBAPI connection was in autocommit."""
    seen = []

    def record(conn, _cursor, statement, _params, _context, _many):
        seen.append((statement.split()[0].upper(), bool(getattr(conn.connection.dbapi_connection, "autocommit",
                                                                 False))))
    sa.event.listen(sa.engine.Engine, "before_cursor_execute", record)
    yield seen
    sa.event.remove(sa.engine.Engine, "before_cursor_execute", record)


@pytest.fixture
def pg_store(postgres_url):
    engine = sa.create_engine(postgres_url, poolclass=sa.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()
    store = Store(postgres_url)
    yield store
    store.close()


def _drop_other_connections(url):
    """What a database restart does to the pool: every server connection but this one is closed."""
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.begin() as conn:
        dropped = conn.execute(sa.text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
                                       "datname = current_database() AND pid <> pg_backend_pid()")).scalar()
    engine.dispose()
    return dropped


def test_a_batch_is_one_insert_and_on_a_server_commits_without_begin_or_commit(db_url, statements):
    store = Store(db_url)
    try:
        mid = _model(store)
        statements.clear()
        for i in range(5):
            assert store.add_batch(mid, f"b{i}", COLS, 2, 1.0, 2.0, "d") is True
        assert [s for s, _ in statements] == ["INSERT"] * 5
        if store.engine.dialect.name != "sqlite":  # one round trip each: no BEGIN before, no COMMIT after
            assert all(autocommit for _, autocommit in statements)
        assert store.add_batch(mid, "b0", COLS, 2, 1.0, 2.0, "d") is False  # a retry is still told apart
        assert store.batch_count(mid) == (5, 10)
    finally:
        store.close()


def test_a_connection_in_steady_use_is_not_pinged_and_an_idle_one_is(pg_store, monkeypatch):
    mid = _model(pg_store)
    pings = []
    dialect = type(pg_store.engine.dialect)
    ping = dialect.do_ping
    monkeypatch.setattr(dialect, "do_ping", lambda self, conn: pings.append(1) or ping(self, conn))
    for i in range(20):
        pg_store.add_batch(mid, f"b{i}", COLS, 2, 1.0, 2.0, "d")
    assert pings == []
    monkeypatch.setattr(store_module, "PING_IDLE_S", 0.0)  # every connection now counts as idle
    for i in range(20, 25):
        pg_store.add_batch(mid, f"b{i}", COLS, 2, 1.0, 2.0, "d")
    assert len(pings) == 5


def test_a_connection_the_server_dropped_is_replaced_once_it_has_idled(pg_store, postgres_url, monkeypatch):
    mid = _model(pg_store)
    pg_store.add_batch(mid, "b0", COLS, 2, 1.0, 2.0, "d")
    # without the ping (a connection used a moment ago), the dropped connection fails the request
    monkeypatch.setattr(store_module, "PING_IDLE_S", 1e9)
    assert _drop_other_connections(postgres_url) >= 1
    with pytest.raises(OperationalError):
        pg_store.add_batch(mid, "b1", COLS, 2, 1.0, 2.0, "d")
    # with it (idle long enough), the pool replaces the dropped connection and the batch is stored
    pg_store.add_batch(mid, "b1", COLS, 2, 1.0, 2.0, "d")  # the failure above emptied the pool
    monkeypatch.setattr(store_module, "PING_IDLE_S", 0.0)
    assert _drop_other_connections(postgres_url) >= 1
    assert pg_store.add_batch(mid, "b2", COLS, 2, 1.0, 2.0, "d") is True
    assert pg_store.batch_count(mid) == (3, 6)


def test_concurrent_ingests_reuse_pooled_connections_instead_of_opening_new_ones(pg_store):
    mid = _model(pg_store)
    connects, lock = [], threading.Lock()

    def count(*_):
        with lock:
            connects.append(1)
    sa.event.listen(sa.pool.Pool, "connect", count)
    threads, rounds = 12, 4
    opened = []
    try:
        for r in range(rounds):
            barrier = threading.Barrier(threads)

            def ingest(k, r=r, barrier=barrier):
                barrier.wait(timeout=30)
                pg_store.add_batch(mid, f"b{r}-{k}", COLS, 2, 1.0, 2.0, "d")
            workers = [threading.Thread(target=ingest, args=(k,)) for k in range(threads)]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            opened.append(len(connects))
    finally:
        sa.event.remove(sa.pool.Pool, "connect", count)
    assert pg_store.batch_count(mid) == (threads * rounds, 2 * threads * rounds)
    assert 1 <= opened[0] <= threads  # the first burst opens what it needs...
    assert opened[-1] == opened[0]  # ...and the later ones reuse them


def test_a_blob_holds_its_float_arrays_before_its_json_and_the_older_layout_still_reads():
    import json

    import numpy as np

    from stalwart.monitor.store import decode_columns, encode_columns

    cols = {"inputs": {"a": np.array([0.5, np.nan, -2.0]), "c": ["x", None, "y"]}, "row_id": ["r0", "r1", "r2"],
            "timestamp": np.array([1.0, 2.0, 3.0])}
    blob = encode_columns(cols)
    floats = np.array([0.5, np.nan, -2.0, 1.0, 2.0, 3.0], dtype="<f8").tobytes()
    # PostgreSQL gives up compressing a value whose first kilobyte does not repeat: floats first
    assert blob[4 + 4:4 + 4 + len(floats)] == floats
    header = {"arrays": [[["inputs", "a"], 3], [["timestamp"], 3]],
              "rest": {"inputs": {"a": None, "c": ["x", None, "y"]}, "row_id": ["r0", "r1", "r2"], "timestamp": None}}
    assert json.loads(blob[8 + len(floats):]) == header
    # a blob written before (SWB1: the JSON, then the arrays) reads back the same
    text = json.dumps(header, separators=(",", ":")).encode()
    older = b"SWB1" + len(text).to_bytes(4, "little") + text + floats
    for back in (decode_columns(blob), decode_columns(older)):
        assert back["inputs"]["a"].tolist()[::2] == [0.5, -2.0] and np.isnan(back["inputs"]["a"][1])
        assert back["inputs"]["c"] == ["x", None, "y"] and back["row_id"] == ["r0", "r1", "r2"]
        assert back["timestamp"].tolist() == [1.0, 2.0, 3.0]


@pytest.mark.parametrize("accelerated", [True, False])
def test_a_blob_reads_back_the_same_whoever_wrote_its_json_and_never_holds_a_nan(accelerated, monkeypatch):
    import numpy as np

    from stalwart.monitor.store import decode_columns, encode_columns

    if accelerated:
        pytest.importorskip("orjson")
    else:
        monkeypatch.setattr(store_module, "_orjson", None)
    cols = {"inputs": {"a": np.array([0.5, -2.0]), "c": ["é\u2603", "x"], "f": [True, False]},
            "prediction": [1, "one"], "row_id": ["r0", "r1"], "probabilities": [[0.25, 0.75], [1, 0]]}
    blob = encode_columns(cols)
    # orjson writes text as UTF-8, the standard library escapes it: each wrote this one
    assert ("é".encode() in blob) is accelerated and (b"\\u00e9" in blob) is not accelerated
    back = decode_columns(blob)
    assert back["inputs"]["a"].tolist() == [0.5, -2.0] and back["inputs"]["c"] == ["é\u2603", "x"]
    assert back["inputs"]["f"] == [True, False]
    assert {k: v for k, v in back.items() if k != "inputs"} == {k: v for k, v in cols.items() if k != "inputs"}
    # what orjson refuses or may have changed goes to the standard library
    assert decode_columns(encode_columns({"big": [2 ** 70, 1], 3: ["x"]})) == {"big": [2 ** 70, 1], "3": ["x"]}
    assert decode_columns(encode_columns({"c": [None, "null"]})) == {"c": [None, "null"]}
    for bad in (float("nan"), float("inf")):  # refused, not written as null
        with pytest.raises(ValueError, match="JSON compliant"):
            encode_columns({"c": ["x", bad]})
