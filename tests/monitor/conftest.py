"""Shared set-up of the monitoring tests: an app over a temporary SQLite file (and over PostgreSQL
too when STALWART_TEST_POSTGRES names an empty database, as CI will), keys, a model."""

import os
import warnings

import numpy as np
import pytest

from stalwart.monitor import Settings, create_app

with warnings.catch_warnings():
    # this Starlette asks for the httpx2 package, which the monitor extra does not pin yet
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

#: a PostgreSQL URL to run the store and service tests against as well, e.g.
#: postgresql+psycopg://postgres:pw@127.0.0.1:5432/postgres (.ci/run starts a throwaway server and
#: sets it). Its user needs CREATEDB: each pytest process (each xdist worker) creates a database of
#: its own from it, empties it before each test and drops it at the end; the named one is not touched.
POSTGRES_ENV = "STALWART_TEST_POSTGRES"
BACKENDS = ["sqlite", "postgresql"]

COLUMNS = {"a": "numeric", "b": "numeric", "c": "categorical", "d": "integer"}


def table_rows(rng, n, *, shift_b=0.0, start=0, classes=(0, 1)):
    """Rows of the test model: b is the column a test may shift; the prediction is a's sign."""
    a, b = rng.normal(size=n), rng.normal(shift_b, 1.0, size=n)
    c, d = rng.choice(["x", "y", "z"], n), rng.integers(0, 30, n)
    return [{"a": float(a[i]), "b": float(b[i]), "c": str(c[i]), "d": int(d[i]),
             "prediction": classes[int(a[i] > 0)], "row_id": f"r{start + i}"} for i in range(n)]


@pytest.fixture(scope="session")
def postgres_databases():
    """``make(suffix)``: the URL of a new, empty PostgreSQL database of this test process (all are
    dropped at the end); skips when STALWART_TEST_POSTGRES is unset."""
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(f"{POSTGRES_ENV} is not set (.ci/run sets it to a throwaway PostgreSQL server)")
    import sqlalchemy as sa

    base = sa.make_url(url)
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    # xdist workers run at once: a name per worker and process, so no two runs share a database
    prefix = f"stalwart_test_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{os.getpid()}"
    made = []

    def make(suffix=""):
        quoted = admin.dialect.identifier_preparer.quote(f"{prefix}_{suffix}" if suffix else prefix)
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {quoted}"))
            conn.execute(sa.text(f"CREATE DATABASE {quoted}"))
        made.append(quoted)
        return base.set(database=quoted.strip('"')).render_as_string(hide_password=False)

    yield make
    with admin.connect() as conn:
        for quoted in made:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))
    admin.dispose()


@pytest.fixture(scope="session")
def postgres_url(postgres_databases):
    """This test process's PostgreSQL database, emptied by :func:`db_url` before each test."""
    return postgres_databases()


@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path):
    """A fresh, empty database: a SQLite file, or this process's PostgreSQL database emptied."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'monitor.db'}"
    import sqlalchemy as sa

    url = request.getfixturevalue("postgres_url")
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()
    return url


@pytest.fixture
def service(db_url):
    """(client, store, admin key of project 'shop') over a fresh database, no worker thread."""
    app = create_app(Settings(db=db_url, worker=False, max_batch_rows=2000,
                              max_body_bytes=2_000_000, webhook_backoff_s=0.0))
    store = app.state.store
    with TestClient(app) as client:
        yield client, store, store.create_key("shop", "admin")
    store.close()


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
