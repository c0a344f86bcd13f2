"""The SQL store: migrations build exactly the tables the code uses, SQLite runs in WAL mode,
batches are idempotent by id and round-trip, labels join by row id."""

import numpy as np
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from stalwart.monitor.store import MIGRATIONS, Conflict, Store, metadata


@pytest.fixture
def store(db_url):
    opened = Store(db_url)
    yield opened
    opened.close()


def test_migrations_ship_in_the_package_and_build_the_model_tables(store, db_url):
    assert MIGRATIONS.parent.name == "monitor" and (MIGRATIONS / "env.py").is_file()
    with store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
        if db_url.startswith("sqlite"):
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == "0004"
    store.upgrade()  # a second start-up changes nothing
    again = Store(store.url)
    assert again.model_ids() == []
    again.close()


def test_a_batch_is_stored_once_and_reads_back(store):
    pid = store.project_id("p", create=True)
    mid = store.add_model(pid, "m", "classification", [0, 1], {"a": "numeric"}, {"window_rows": 10})["id"]
    cols = {"row_id": ["r0", "r1"], "timestamp": [1.0, 2.0], "prediction": [0, 1], "inputs": {"a": [0.5, None]}}
    assert store.add_batch(mid, "b1", cols, 2, 1.0, 2.0, "d1") is True
    assert store.add_batch(mid, "b1", cols, 2, 1.0, 2.0, "d1") is False
    with pytest.raises(Conflict, match="other content"):
        store.add_batch(mid, "b1", cols, 2, 1.0, 2.0, "d2")
    assert store.batch_count(mid) == (1, 2)
    (row,) = store.batches_after(mid, 0)
    assert store.batch_data(mid, row.id, row.id) == [cols]
    assert store.add_labels(mid, [("r1", 1), ("r0", 1)]) == 2
    assert store.add_labels(mid, [("r0", 0)]) == 1  # relabelled: the newest label wins
    assert store.labels_for(mid, ["r0", "r1", "r9"]) == {"r0": 0, "r1": 1}


def test_keys_are_stored_hashed_and_scoped(store):
    key = store.create_key("p", "read")
    with store.engine.connect() as conn:
        stored = [tuple(r) for r in conn.execute(sa.text("SELECT key_id, key_hash, scope FROM api_keys"))]
    assert len(stored) == 1 and key not in stored[0] and stored[0][2] == "read"
    assert store.authenticate(key).project == "p"
    assert store.authenticate(key[:-1]) is None and store.authenticate("Bearer nonsense") is None


def test_a_lease_has_one_holder_until_it_expires(store):
    assert store.acquire_lease("analysis", "p1", 30, now=100.0)
    assert not store.acquire_lease("analysis", "p2", 30, now=110.0)
    assert store.acquire_lease("analysis", "p1", 30, now=125.0)  # renewed: runs to 155
    assert not store.acquire_lease("analysis", "p2", 30, now=150.0)
    assert store.acquire_lease("analysis", "p2", 30, now=156.0)  # p1 stopped renewing
    assert not store.acquire_lease("analysis", "p1", 30, now=160.0)


def test_migrations_run_in_order_from_an_older_database(db_url):
    from alembic import command
    from alembic.config import Config

    old = Store(db_url, migrate=False)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with old.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
    with old.engine.connect() as conn:
        assert "leases" not in sa.inspect(conn).get_table_names()
    old.upgrade()  # what a start-up of the newer version does
    with old.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    old.close()


def test_stored_columns_read_back_exactly_also_beyond_what_orjson_reads():
    from stalwart.monitor.store import decode_columns, encode_columns

    columns = {"inputs": {"a": np.array([0.1, 1e-300, np.nan])}, "prediction": [2 ** 70, -3, "x"],
               "row_id": ["r0", "r1", "é"], "timestamp": np.array([1.5, 2.5, 3.5])}
    back = decode_columns(encode_columns(columns))
    assert back["prediction"] == [2 ** 70, -3, "x"] and back["row_id"] == ["r0", "r1", "é"]
    assert back["inputs"]["a"].tobytes() == columns["inputs"]["a"].tobytes()
    assert back["timestamp"].tolist() == [1.5, 2.5, 3.5]
