"""The monitoring service's SQL store: tables, engine, migrations and every query the service runs.

SQLAlchemy 2 Core over any URL: a SQLite file by default (WAL journal, so readers never block the
writer, and a busy timeout so concurrent writers wait instead of failing), PostgreSQL through
``postgresql+psycopg://``. Every statement is built by SQLAlchemy; no SQL is formatted from text.

Rows are stored one blob per batch (float columns as raw float64, the rest as JSON): analysis reads
whole windows, and one insert per batch keeps ingest fast. Labels, which arrive later and one by
one, have their own table keyed by (model, row id).

The schema is owned by the Alembic revisions in ``stalwart/monitor/migrations``; :meth:`Store.upgrade`
applies them at start-up, and a test checks that they build exactly :data:`metadata`.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.exc import ArgumentError, IntegrityError, NoSuchModuleError, OperationalError

from stalwart.errors import ConfigError, InputError
from stalwart.monitor.auth import SCOPES, allows, new_token, same_hash, token_hash, token_id
from stalwart.monitor.settings import DEFAULT_DB

try:  # optional: writes a batch blob's JSON part several times faster than the standard library
    import orjson as _orjson
except ImportError:  # pragma: no cover - depends on the environment
    _orjson = None

__all__ = ["Store", "Principal", "NotFound", "Conflict", "metadata", "check_store", "encode_columns", "decode_columns",
           "SCOPES", "MIGRATIONS", "MUTABLE_CONFIG"]

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_NAME = 200  # longest project, model, batch, row and rule names


class NotFound(InputError):
    """A project, model or rule that does not exist (HTTP 404)."""


class Conflict(InputError):
    """Something that exists already and differs from what was sent (HTTP 409)."""


# every constraint named, so later (batch-mode, on SQLite) migrations can address it
metadata = sa.MetaData(naming_convention={
    "ix": "ix_%(table_name)s_%(column_0_N_name)s", "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s", "pk": "pk_%(table_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s"})

projects = sa.Table(
    "projects", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(_NAME), nullable=False, unique=True),
    sa.Column("created_at", sa.Float, nullable=False),
)
api_keys = sa.Table(
    "api_keys", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    sa.Column("key_id", sa.String(16), nullable=False, index=True),
    sa.Column("key_hash", sa.String(64), nullable=False),
    sa.Column("scope", sa.String(16), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("revoked", sa.Boolean, nullable=False, server_default=sa.false()),
)
models = sa.Table(
    "models", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(_NAME), nullable=False),
    sa.Column("task", sa.String(32), nullable=False),
    sa.Column("classes", sa.Text, nullable=True),  # JSON list
    sa.Column("columns", sa.Text, nullable=False),  # JSON {name: kind}, in order
    sa.Column("config", sa.Text, nullable=False),  # JSON: window_rows, drift method/alpha/correction
    sa.Column("labels_seen", sa.Integer, nullable=False, server_default="0"),  # last label id joined
    sa.Column("created_at", sa.Float, nullable=False),
    sa.UniqueConstraint("project_id", "name"),
)
reference_sets = sa.Table(
    "reference_sets", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id", ondelete="CASCADE"), nullable=False,
              unique=True),
    sa.Column("n_rows", sa.Integer, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)
batches = sa.Table(
    "batches", metadata,
    sa.Column("id", sa.Integer, primary_key=True),  # arrival order: windows are runs of ids
    sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id", ondelete="CASCADE"), nullable=False),
    sa.Column("batch_key", sa.String(_NAME), nullable=False),
    sa.Column("n_rows", sa.Integer, nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),  # SHA-256 of the body as sent: a retry has the same
    sa.Column("first_ts", sa.Float, nullable=False),
    sa.Column("last_ts", sa.Float, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.Column("received_at", sa.Float, nullable=False),
    sa.UniqueConstraint("model_id", "batch_key"),
    sa.Index(None, "model_id", "id"),
)
labels = sa.Table(
    "labels", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id", ondelete="CASCADE"), nullable=False),
    sa.Column("row_id", sa.String(_NAME), nullable=False),
    sa.Column("label", sa.Text, nullable=False),  # JSON scalar
    sa.Column("received_at", sa.Float, nullable=False),
    sa.UniqueConstraint("model_id", "row_id"),
)
windows = sa.Table(
    "windows", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id", ondelete="CASCADE"), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),  # 0, 1, ... per model
    sa.Column("first_batch", sa.Integer, nullable=False),
    sa.Column("last_batch", sa.Integer, nullable=False),
    sa.Column("n_rows", sa.Integer, nullable=False),
    sa.Column("start_ts", sa.Float, nullable=False),
    sa.Column("end_ts", sa.Float, nullable=False),
    sa.Column("n_labelled", sa.Integer, nullable=False, server_default="0"),
    sa.Column("metrics", sa.Text, nullable=False),  # JSON {name: {value, low, high, n}}
    sa.Column("drift", sa.Text, nullable=False),  # JSON per-column drift table
    sa.Column("analysed_at", sa.Float, nullable=False),
    sa.Column("details", sa.Text, nullable=True),  # revision 0003: JSON the analysis keeps (probe, online FDR)
    sa.UniqueConstraint("model_id", "seq"),
)
alert_rules = sa.Table(
    "alert_rules", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(_NAME), nullable=False),
    sa.Column("condition", sa.String(500), nullable=False),
    sa.Column("for_windows", sa.Integer, nullable=False),
    sa.Column("webhook_url", sa.String(2000), nullable=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("breaches", sa.Integer, nullable=False),  # consecutive violating windows
    sa.Column("clears", sa.Integer, nullable=False),  # consecutive passing windows while firing
    sa.Column("last_window", sa.Integer, nullable=False),  # seq of the last window judged, -1 before any
    sa.Column("created_at", sa.Float, nullable=False),
    # seconds after a resolution during which the rule may not fire again (revision 0004)
    sa.Column("cooldown_s", sa.Float, nullable=False, server_default=sa.text("0")),
    sa.UniqueConstraint("model_id", "name"),
)
alerts = sa.Table(
    "alerts", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("rule_id", sa.Integer, sa.ForeignKey("alert_rules.id", ondelete="CASCADE"), nullable=False),
    sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id", ondelete="CASCADE"), nullable=False),
    sa.Column("window_seq", sa.Integer, nullable=False),
    sa.Column("from_state", sa.String(16), nullable=False),
    sa.Column("to_state", sa.String(16), nullable=False),
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("idempotency_key", sa.String(64), nullable=False, unique=True),
    sa.Column("delivery", sa.String(16), nullable=False),  # none, pending, delivered, failed
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("delivered_at", sa.Float, nullable=True),
    sa.Index(None, "model_id", "id"),
)
# revision 0002: who runs the analysis worker when several server processes share the database
leases = sa.Table(
    "leases", metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("holder", sa.String(200), nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
)
# revision 0003: the model file a service holds (one per model; skops, ONNX or TorchScript)
model_artifacts = sa.Table(
    "model_artifacts", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id", ondelete="CASCADE"), nullable=False,
              unique=True),
    sa.Column("format", sa.String(16), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("n_bytes", sa.Integer, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)


_INSERT_BATCH = batches.insert()
# SWB2: float arrays, then the JSON; SWB1 (still read): the JSON, then the arrays
_MAGIC, _MAGIC_V1 = b"SWB2", b"SWB1"


def encode_columns(columns: Mapping[str, Any]) -> bytes:
    """A batch's (or reference's) columns as one blob: float arrays as raw float64 bytes, the rest
    (text, class labels, row ids) as JSON. Nested dicts (``inputs``) are kept.

    >>> import numpy as np
    >>> back = decode_columns(encode_columns({"inputs": {"a": np.array([1.5, np.nan])}, "b": ["x", None]}))
    >>> back["inputs"]["a"].tolist()[0], back["b"]
    (1.5, ['x', None])
    """
    arrays: list[np.ndarray] = []
    layout: list[list[Any]] = []

    def split(value: Any, path: list[str]) -> Any:
        if isinstance(value, np.ndarray):
            arr = np.ascontiguousarray(value, dtype="<f8")
            layout.append([path, len(arr)])
            arrays.append(arr)
            return None
        if isinstance(value, (list, str)):  # most values; the Mapping check below is slower
            return value
        if isinstance(value, Mapping):
            return {k: split(v, [*path, k]) for k, v in value.items()}
        return value

    rest = split(columns, [])
    header = _header_json({"arrays": layout, "rest": rest}, len(arrays))
    # the arrays before the JSON: PostgreSQL tries to compress a large value and gives up after its
    # first kilobyte when nothing in it repeats (measured float data), where a JSON start (row ids,
    # categories) kept it compressing the whole blob, to store it uncompressed all the same
    return b"".join([_MAGIC, len(header).to_bytes(4, "little"), *(a.tobytes() for a in arrays), header])


def _header_json(doc: dict[str, Any], placeholders: int) -> bytes:
    """``doc`` as compact JSON: by orjson (when installed) when it wrote no ``null`` beyond the
    ``placeholders`` of the arrays (another may be a NaN or an infinity it turned into one, or a
    None); else, and for anything orjson refuses, by the standard library, which refuses non-finite
    numbers. Both read back alike."""
    if _orjson is not None:
        try:
            out = _orjson.dumps(doc)
        except TypeError:  # orjson.JSONEncodeError: a type or key it does not take
            out = None
        if out is not None and out.count(b"null") == placeholders:
            return out
    return json.dumps(doc, separators=(",", ":"), allow_nan=False).encode("utf-8")


def _loads(text: bytes) -> Any:
    """JSON by orjson when installed (three times faster on a window's batches), else, and for what
    it does not read (integers beyond 64 bits), by the standard library: the same values either way."""
    if _orjson is not None:
        try:
            return _orjson.loads(text)
        except _orjson.JSONDecodeError:
            pass
    return json.loads(text)


def decode_columns(blob: bytes) -> dict[str, Any]:
    """The inverse of :func:`encode_columns` (float columns come back as float64 arrays)."""
    magic = bytes(blob[:4])
    if magic not in (_MAGIC, _MAGIC_V1):
        raise InputError("a stored batch is not in the format this version reads; was the database written by a "
                         "newer stalwart?")
    size = int.from_bytes(blob[4:8], "little")
    if magic == _MAGIC:
        doc, offset = _loads(blob[len(blob) - size:]), 8
    else:
        doc, offset = _loads(blob[8:8 + size]), 8 + size
    out = doc["rest"]
    for path, n in doc["arrays"]:
        node = out
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = np.frombuffer(blob, dtype="<f8", count=n, offset=offset)
        offset += 8 * n
    return out


@dataclass(frozen=True)
class Principal:
    """Who a request is from: the project and scope of its key (never the key itself)."""

    project: str
    project_id: int
    scope: str
    key_id: str

    def allows(self, needed: str) -> bool:
        return allows(self.scope, needed)


# the two statements, written out: no SQL is built from a value, not even a checked one
_SYNCHRONOUS = {"NORMAL": "PRAGMA synchronous=NORMAL", "FULL": "PRAGMA synchronous=FULL"}


def make_engine(url: str, synchronous: str = "NORMAL") -> sa.Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys and a busy timeout on every connection."""
    if synchronous not in _SYNCHRONOUS:
        raise ConfigError(f"synchronous must be 'NORMAL' or 'FULL'; got {synchronous!r}")
    try:
        parsed = sa.make_url(url)
    except ArgumentError:
        raise ConfigError(f"--db {url!r} is not a database URL; use e.g. 'sqlite:///monitor.db' or "
                          "'postgresql+psycopg://user:password@host/dbname'") from None
    try:
        if parsed.get_backend_name() != "sqlite":
            return _server_engine(parsed)
        memory = parsed.database in (None, "", ":memory:")
        engine = sa.create_engine(parsed, connect_args={"check_same_thread": False, "timeout": 30},
                                  **({"poolclass": sa.StaticPool} if memory else {}))
    except (NoSuchModuleError, ImportError) as exc:
        raise ConfigError(f"--db {parsed.render_as_string(hide_password=True)!r} needs a database driver "
                          f"that is not installed ({exc}); PostgreSQL works with 'postgresql+psycopg://', "
                          "installed by pip install 'stalwart[monitor]'") from None

    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        if not memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(_SYNCHRONOUS[synchronous])
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    return engine


#: seconds a pooled connection to a database server may sit unused before its next checkout pings it
PING_IDLE_S = 1.0
#: connections to a database server each server process keeps for ingest (opened as needed, then
#: reused); more concurrent batches wait for one rather than open (and authenticate) another
INGEST_POOL_SIZE = 10


def _server_engine(url: sa.URL, *, autocommit: bool = False) -> sa.Engine:
    """An engine for a database server (PostgreSQL) whose pooled connections are pinged before
    they are handed out only after :data:`PING_IDLE_S` seconds unused (one that died, say with a
    server restart, is replaced), not when in steady use: a ping per request is a round trip per
    request. ``autocommit`` (the ingest engine): each statement commits on its own, so ``begin()``
    sends no BEGIN and no COMMIT; and its pool holds :data:`INGEST_POOL_SIZE` connections and no
    more, so a burst of batches reuses them instead of opening a connection per batch."""
    engine = sa.create_engine(url, **({"isolation_level": "AUTOCOMMIT", "pool_size": INGEST_POOL_SIZE,
                                       "max_overflow": 0} if autocommit else {}))

    @sa.event.listens_for(engine, "checkin")
    def _idle_from(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @sa.event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")  # None: connected for this checkout
        if since is None or time.monotonic() - since < PING_IDLE_S:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # noqa: BLE001 - whatever the driver raises, the connection is not usable
            raise sa.exc.DisconnectionError(f"a pooled connection failed its ping ({exc})") from exc

    return engine


def check_store(store: Any, owner: str) -> None:
    """ConfigError unless ``store`` is a :class:`Store`."""
    if not isinstance(store, Store):
        raise ConfigError(f"{owner}(store=...) must be a stalwart.monitor.Store (Store('sqlite:///monitor.db')); "
                          f"got {type(store).__name__}")


def _now() -> float:
    return time.time()


def _check_name(what: str, name: Any) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > _NAME:
        raise InputError(f"{what} must be a non-empty string of at most {_NAME} characters; got {name!r}")
    if "\x00" in name:  # PostgreSQL cannot store it, and no name needs it
        raise InputError(f"{what} must not contain NUL characters (\\x00); got {name!r}")
    return name


class Store:
    """The service's database. ``Store(url)`` connects and brings the schema up to date.

    Parameters
    ----------
    url : SQLAlchemy URL (default ``sqlite:///stalwart-monitor.db``)
    synchronous : SQLite's ``PRAGMA synchronous``, ``"NORMAL"`` or ``"FULL"``
    migrate : apply the Alembic migrations now (default True)

    Examples
    --------
    >>> store = Store("sqlite:///:memory:")
    >>> key = store.create_key("shop", "admin")
    >>> store.authenticate(key).scope, store.authenticate(key + "x")
    ('admin', None)
    """

    def __init__(self, url: str = DEFAULT_DB, *, synchronous: str = "NORMAL", migrate: bool = True) -> None:
        if synchronous not in ("NORMAL", "FULL"):
            raise ConfigError(f"Store(synchronous=...) must be 'NORMAL' or 'FULL'; got {synchronous!r}")
        self.url = url
        self.engine = make_engine(url, synchronous)
        # SQLite has one writer at a time, and a writer that finds the file locked polls it in sleeps
        # of up to 100 ms: ingest threads of this process queue on a lock instead
        self._ingest_lock = threading.Lock() if self.engine.dialect.name == "sqlite" else contextlib.nullcontext()
        # batches go in one statement each: on a database server in autocommit, through a pool of
        # its own (switching a pooled connection in and out of autocommit costs more than the insert);
        # SQLite's transactions cost no round trip, and an in-memory database has one connection
        self._ingest_engine = self.engine if self.engine.dialect.name == "sqlite" else _server_engine(
            self.engine.url, autocommit=True)
        if migrate:
            self.upgrade()

    def __repr__(self) -> str:
        return f"Store({self.engine.url.render_as_string(hide_password=True)!r})"

    def upgrade(self) -> None:
        """Apply the Alembic migrations shipped in the package (idempotent)."""
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        try:
            with self.engine.begin() as conn:
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
        except OperationalError as exc:
            raise ConfigError(f"cannot open the database {self!r}: {exc.orig}. Check the URL, that the "
                              "server runs and that the directory of a SQLite file exists.") from None

    def close(self) -> None:
        self.engine.dispose()
        self._ingest_engine.dispose()

    # -- projects and keys -------------------------------------------------------------------------
    def project_id(self, name: str, *, create: bool = False) -> int:
        """The id of project ``name``; created when ``create`` (else NotFound)."""
        _check_name("project", name)
        with self.engine.begin() as conn:
            found = conn.execute(sa.select(projects.c.id).where(projects.c.name == name)).scalar()
            if found is not None:
                return int(found)
            if not create:
                raise NotFound(f"project {name!r} does not exist; create it with "
                               f"`stalwart serve --create-key --project {name} --scope admin`")
            return int(conn.execute(projects.insert().values(name=name, created_at=_now())).inserted_primary_key[0])

    def create_key(self, project: str, scope: str) -> str:
        """A new key for ``project`` (created if new) with ``scope``; the token is returned only here."""
        if scope not in SCOPES:
            raise InputError(f"scope must be one of {list(SCOPES)}; got {scope!r}")
        pid = self.project_id(project, create=True)
        token, ident = new_token()
        with self.engine.begin() as conn:
            conn.execute(api_keys.insert().values(project_id=pid, key_id=ident, key_hash=token_hash(token),
                                                  scope=scope, created_at=_now()))
        return token

    def authenticate(self, token: str) -> Principal | None:
        """The principal of ``token``, or None when it is unknown, malformed or revoked."""
        ident = token_id(token) if isinstance(token, str) else None
        if ident is None:
            return None
        query = (sa.select(api_keys.c.key_hash, api_keys.c.scope, api_keys.c.project_id, projects.c.name)
                 .join(projects, projects.c.id == api_keys.c.project_id)
                 .where(api_keys.c.key_id == ident, api_keys.c.revoked == sa.false()))
        with self.engine.connect() as conn:
            for row in conn.execute(query):
                if same_hash(row.key_hash, token):
                    return Principal(row.name, int(row.project_id), row.scope, ident)
        return None

    def keys(self, project: str) -> list[dict[str, Any]]:
        """The keys of ``project``, oldest first, without their secrets: id (and the ``sw_<id>_``
        prefix every token of it starts with), scope, creation time, whether revoked."""
        pid = self.project_id(project)
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(api_keys.c.key_id, api_keys.c.scope, api_keys.c.created_at,
                                          api_keys.c.revoked).where(api_keys.c.project_id == pid)
                                .order_by(api_keys.c.id))
            return [{"key_id": r.key_id, "prefix": f"sw_{r.key_id}_", "scope": r.scope, "created_at": r.created_at,
                     "revoked": bool(r.revoked)} for r in rows]

    def revoke_key(self, key_id: str, project: str | None = None) -> dict[str, Any]:
        """Revoke key ``key_id`` (of ``project`` when given): it no longer authenticates, and its row
        stays, marked, for the record. Revoking a revoked key changes nothing. NotFound when no key
        has that id (in that project)."""
        where = [api_keys.c.key_id == key_id]
        if project is not None:
            where.append(api_keys.c.project_id == self.project_id(project))
        query = (sa.select(api_keys.c.id, api_keys.c.scope, projects.c.name)
                 .join(projects, projects.c.id == api_keys.c.project_id).where(*where))
        with self.engine.begin() as conn:
            found = conn.execute(query).all() if isinstance(key_id, str) and "\x00" not in key_id else []
            if len(found) > 1:  # ids are 40 random bits: two keys sharing one is (nearly) impossible
                raise Conflict(f"keys of several projects have the id {key_id!r}; name the project")
            if not found:
                where_ = f" in project {project!r}" if project is not None else ""
                raise NotFound(f"no key with id {key_id!r}{where_}; list the keys (GET /v1/projects/<project>/keys "
                               "or `stalwart serve --list-keys --project NAME`) for their ids")
            conn.execute(api_keys.update().where(api_keys.c.id == found[0].id).values(revoked=True))
        return {"key_id": key_id, "project": found[0].name, "scope": found[0].scope, "revoked": True}

    def revoked_count(self) -> int:
        """How many keys are revoked: a server process compares it to notice revocations made by
        another process (or the command line) and drops its cache of checked keys."""
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(api_keys)
                                    .where(api_keys.c.revoked == sa.true())).scalar())

    # -- models and references ---------------------------------------------------------------------
    def add_model(self, project_id: int, name: str, task: str, classes: list[Any] | None,
                  columns: Mapping[str, str], config: Mapping[str, Any]) -> dict[str, Any]:
        """Register a model; the same spec again is a no-op, a different one a Conflict."""
        _check_name("model name", name)
        values = {"task": task, "classes": None if classes is None else json.dumps(classes),
                  "columns": json.dumps(dict(columns)), "config": json.dumps(dict(config), sort_keys=True)}
        with self.engine.begin() as conn:
            found = conn.execute(sa.select(models).where(models.c.project_id == project_id,
                                                         models.c.name == name)).first()
            if found is None:
                try:
                    conn.execute(models.insert().values(project_id=project_id, name=name, created_at=_now(),
                                                        **values))
                except IntegrityError:  # registered concurrently: judged below as a re-registration
                    found = conn.execute(sa.select(models).where(models.c.project_id == project_id,
                                                                 models.c.name == name)).first()
            if found is not None and (any(getattr(found, k) != v for k, v in values.items() if k != "config")
                                      or _fixed_config(json.loads(found.config)) != _fixed_config(config)):
                raise Conflict(f"model {name!r} is registered with another task, classes, columns or "
                               "config; register the new version under a new name")
        return self.model(project_id, name)

    def update_config(self, project_id: int, name: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Change the settings of a registered model that may change (:data:`MUTABLE_CONFIG`: the
        robustness probe's switch and sample size); the next windows use them."""
        bad = sorted(set(changes) - set(MUTABLE_CONFIG))
        if bad:
            raise InputError(f"{bad} cannot change after registration (only {list(MUTABLE_CONFIG)} can); "
                             "register the new version under a new name")
        found = self.model(project_id, name)  # NotFound with its message
        with self.engine.begin() as conn:  # read and write in one transaction: no update is lost
            current = conn.execute(sa.select(models.c.config).where(models.c.id == found["id"])
                                   .with_for_update()).scalar_one()
            config = {**json.loads(current), **changes}
            conn.execute(models.update().where(models.c.id == found["id"])
                         .values(config=json.dumps(config, sort_keys=True)))
        return self.model(project_id, name)

    def model(self, project_id: int, name: str) -> dict[str, Any]:
        _check_name("model name", name)
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(models).where(models.c.project_id == project_id,
                                                       models.c.name == name)).first()
            ref = None if row is None else conn.execute(
                sa.select(reference_sets.c.n_rows).where(reference_sets.c.model_id == row.id)).scalar()
        if row is None:
            raise NotFound(f"model {name!r} is not registered in this project; register it first "
                           "(POST /v1/projects/<project>/models)")
        return _model_dict(row, ref)

    def models(self, project_id: int) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(models).where(models.c.project_id == project_id).order_by(models.c.id))
            refs = dict(conn.execute(sa.select(reference_sets.c.model_id, reference_sets.c.n_rows)).all())
            return [_model_dict(r, refs.get(r.id)) for r in rows]

    def model_ids(self) -> list[int]:
        with self.engine.connect() as conn:
            return [int(i) for i in conn.execute(sa.select(models.c.id).order_by(models.c.id)).scalars()]

    def model_by_id(self, model_id: int) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(models).where(models.c.id == model_id)).first()
            ref = conn.execute(sa.select(reference_sets.c.n_rows).where(
                reference_sets.c.model_id == model_id)).scalar()
        if row is None:
            raise NotFound(f"no model with id {model_id!r}; use one of Store.model_ids() {self.model_ids()}")
        return _model_dict(row, ref)

    def set_reference(self, model_id: int, columns: Mapping[str, list[Any]], n_rows: int) -> None:
        """Store (or replace) the model's reference set; later windows are judged against it."""
        blob = encode_columns(columns)
        with self.engine.begin() as conn:
            conn.execute(reference_sets.delete().where(reference_sets.c.model_id == model_id))
            conn.execute(reference_sets.insert().values(model_id=model_id, n_rows=n_rows, data=blob,
                                                        created_at=_now()))

    def reference_stamp(self, model_id: int) -> int | None:
        """An id that changes whenever the model's reference is replaced (None without one)."""
        with self.engine.connect() as conn:
            return conn.execute(sa.select(reference_sets.c.id).where(reference_sets.c.model_id == model_id)).scalar()

    def set_artifact(self, model_id: int, fmt: str, data: bytes, sha256: str) -> dict[str, Any]:
        """Store (or replace) the model's file; the analysis loads it lazily on its next pass."""
        with self.engine.begin() as conn:
            conn.execute(model_artifacts.delete().where(model_artifacts.c.model_id == model_id))
            conn.execute(model_artifacts.insert().values(model_id=model_id, format=fmt, sha256=sha256,
                                                         n_bytes=len(data), data=data, created_at=_now()))
        return self.artifact_info(model_id)  # type: ignore[return-value]

    def artifact_info(self, model_id: int) -> dict[str, Any] | None:
        """Format, SHA-256, size and time of the model's stored file (None without one)."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(model_artifacts.c.format, model_artifacts.c.sha256, model_artifacts.c.n_bytes,
                                         model_artifacts.c.created_at)
                               .where(model_artifacts.c.model_id == model_id)).first()
        return None if row is None else dict(row._mapping)

    def artifact_data(self, model_id: int) -> bytes | None:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(model_artifacts.c.data).where(model_artifacts.c.model_id == model_id)).scalar()

    def reference(self, model_id: int) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            blob = conn.execute(sa.select(reference_sets.c.data).where(
                reference_sets.c.model_id == model_id)).scalar()
        return None if blob is None else decode_columns(blob)

    # -- ingest -----------------------------------------------------------------------------------
    def add_batch(self, model_id: int, batch_key: str, columns: Mapping[str, Any], n_rows: int,
                  first_ts: float, last_ts: float, digest: str) -> bool:
        """Store one batch; False (nothing stored) when ``batch_key`` was stored before for this
        model with the same ``digest`` (a retry), Conflict when with another (a reused id).

        Returns after the commit, so a True or False answer means the batch is durable.
        """
        _check_name("batch_id", batch_key)
        blob = encode_columns(columns)
        values = {"model_id": model_id, "batch_key": batch_key, "n_rows": n_rows, "digest": digest,
                  "first_ts": first_ts, "last_ts": last_ts, "data": blob, "received_at": _now()}
        try:
            # on a server, one round trip (not BEGIN, INSERT, COMMIT): in autocommit the insert is
            # committed before its answer comes back, so returning from here means the batch is durable
            with self._ingest_lock, self._ingest_engine.begin() as conn:
                conn.execute(_INSERT_BATCH, values)  # compiled once
        except IntegrityError:
            with self.engine.connect() as conn:
                seen = conn.execute(sa.select(batches.c.digest).where(batches.c.model_id == model_id,
                                                                      batches.c.batch_key == batch_key)).first()
            if seen is None:
                raise
            if seen.digest != digest:
                raise Conflict(f"batch_id {batch_key!r} was stored before with other content; a retry must send "
                               "the same body, and a new batch needs a new batch_id") from None
            return False
        return True

    def batch_count(self, model_id: int) -> tuple[int, int]:
        """(batches, rows) stored for a model."""
        with self.engine.connect() as conn:
            n, rows = conn.execute(sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(batches.c.n_rows), 0))
                                   .where(batches.c.model_id == model_id)).one()
        return int(n), int(rows)

    def batches_after(self, model_id: int, after: int, limit: int = 10_000) -> list[Any]:
        """Batches of a model with id > ``after``, in arrival order (id, n_rows, first_ts, last_ts,
        received_at)."""
        with self.engine.connect() as conn:
            return list(conn.execute(
                sa.select(batches.c.id, batches.c.n_rows, batches.c.first_ts, batches.c.last_ts, batches.c.received_at)
                .where(batches.c.model_id == model_id, batches.c.id > after).order_by(batches.c.id).limit(limit)))

    def batch_data(self, model_id: int, first: int, last: int) -> list[dict[str, Any]]:
        """The decoded columns of batches ``first..last`` (ids, inclusive) of a model, in order."""
        with self.engine.connect() as conn:
            blobs = conn.execute(sa.select(batches.c.data).where(
                batches.c.model_id == model_id, batches.c.id >= first, batches.c.id <= last).order_by(batches.c.id))
            return [decode_columns(b) for b in blobs.scalars()]

    def add_labels(self, model_id: int, pairs: Sequence[tuple[str, Any]]) -> int:
        """Store labels by row id; a row id labelled again keeps its newest label. Returns the count."""
        if not pairs:
            return 0
        now = _now()
        rows = [{"model_id": model_id, "row_id": str(r), "label": json.dumps(v), "received_at": now} for r, v in pairs]
        ids = [r["row_id"] for r in rows]
        bad = next((r for r in ids if "\x00" in r), None)
        if bad is not None:
            raise InputError(f"row_id {bad!r} contains a NUL character (\\x00), which the database cannot store; "
                             "use row ids without it")
        with self.engine.begin() as conn:
            # a delete then insert is portable (SQLite and PostgreSQL alike) and gives relabelled
            # rows a new id, so the worker's "labels after id N" sees them as new
            for chunk in _chunks(ids, 500):
                conn.execute(labels.delete().where(labels.c.model_id == model_id, labels.c.row_id.in_(chunk)))
            conn.execute(labels.insert(), rows)
        return len(rows)

    def last_label_id(self, model_id: int) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(labels.c.id), 0))
                                    .where(labels.c.model_id == model_id)).scalar())

    def labels_for(self, model_id: int, row_ids: Iterable[str]) -> dict[str, Any]:
        """Labels known for ``row_ids`` (row id -> label)."""
        out: dict[str, Any] = {}
        with self.engine.connect() as conn:
            if conn.execute(sa.select(labels.c.id).where(labels.c.model_id == model_id).limit(1)).first() is None:
                return out  # no label yet: skip the lookups
            # a row id with NUL never has a label (add_labels refuses it; PostgreSQL cannot compare it)
            for chunk in _chunks([str(r) for r in row_ids if "\x00" not in str(r)], 2000):
                for row_id, label in conn.execute(sa.select(labels.c.row_id, labels.c.label).where(
                        labels.c.model_id == model_id, labels.c.row_id.in_(chunk))):
                    out[row_id] = json.loads(label)
        return out

    def set_labels_seen(self, model_id: int, label_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(models.update().where(models.c.id == model_id).values(labels_seen=label_id))

    # -- windows ----------------------------------------------------------------------------------
    def last_window(self, model_id: int) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(windows).where(windows.c.model_id == model_id)
                                .order_by(windows.c.seq.desc()).limit(1)).first()

    def add_window(self, model_id: int, **values: Any) -> int:
        values = {**values, "metrics": json.dumps(values["metrics"], allow_nan=False),
                  "drift": json.dumps(values["drift"], allow_nan=False),
                  "details": None if values.get("details") is None else json.dumps(values["details"], allow_nan=False)}
        with self.engine.begin() as conn:
            return int(conn.execute(windows.insert().values(model_id=model_id, analysed_at=_now(), **values))
                       .inserted_primary_key[0])

    def update_window(self, window_id: int, metrics: Mapping[str, Any], n_labelled: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(windows.update().where(windows.c.id == window_id).values(
                metrics=json.dumps(metrics, allow_nan=False), n_labelled=n_labelled))

    def window_details(self, window_id: int) -> dict[str, Any]:
        """What the analysis kept beside a window's metrics (``{}`` for windows analysed before 0003)."""
        with self.engine.connect() as conn:
            raw = conn.execute(sa.select(windows.c.details).where(windows.c.id == window_id)).scalar()
        return {} if raw is None else json.loads(raw)

    def windows(self, model_id: int, *, after: int = -1, limit: int = 1000, incomplete_labels: bool = False,
                newest: bool = False) -> list[dict[str, Any]]:
        """Windows of a model with seq > ``after``, oldest first (the ``limit`` newest when ``newest``)."""
        query = sa.select(windows).where(windows.c.model_id == model_id, windows.c.seq > after)
        if incomplete_labels:
            query = query.where(windows.c.n_labelled < windows.c.n_rows)
        order = windows.c.seq.desc() if newest else windows.c.seq
        with self.engine.connect() as conn:
            rows = [_window_dict(r) for r in conn.execute(query.order_by(order).limit(limit))]
        return rows[::-1] if newest else rows

    # -- alerts -----------------------------------------------------------------------------------
    def add_rule(self, model_id: int, name: str, condition: str, for_windows: int, webhook_url: str | None,
                 cooldown_s: float = 0.0) -> dict[str, Any]:
        _check_name("rule name", name)
        with self.engine.begin() as conn:
            try:
                conn.execute(alert_rules.insert().values(
                    model_id=model_id, name=name, condition=condition, for_windows=for_windows,
                    webhook_url=webhook_url, state="ok", breaches=0, clears=0, last_window=-1, created_at=_now(),
                    cooldown_s=float(cooldown_s)))
            except IntegrityError:
                raise Conflict(f"an alert rule named {name!r} exists for this model; pick another name") from None
        return next(r for r in self.rules(model_id) if r["name"] == name)

    def rules(self, model_id: int) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(alert_rules).where(alert_rules.c.model_id == model_id)
                                .order_by(alert_rules.c.id))
            return [dict(r._mapping) for r in rows]

    def save_rule_state(self, rule_id: int, state: str, breaches: int, clears: int, last_window: int,
                        event: Mapping[str, Any] | None) -> None:
        """The rule's new state and, on a transition, its alert event, in one transaction."""
        with self.engine.begin() as conn:
            conn.execute(alert_rules.update().where(alert_rules.c.id == rule_id).values(
                state=state, breaches=breaches, clears=clears, last_window=last_window))
            if event is not None:
                conn.execute(alerts.insert().values(rule_id=rule_id, created_at=_now(), **event))

    def alerts(self, model_id: int, limit: int = 1000) -> list[dict[str, Any]]:
        query = (sa.select(alerts, alert_rules.c.name.label("rule"), alert_rules.c.condition)
                 .join(alert_rules, alert_rules.c.id == alerts.c.rule_id)
                 .where(alerts.c.model_id == model_id).order_by(alerts.c.id.desc()).limit(limit))
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def pending_deliveries(self) -> list[dict[str, Any]]:
        query = (sa.select(alerts, alert_rules.c.webhook_url, alert_rules.c.name.label("rule"),
                           alert_rules.c.condition, models.c.name.label("model"), projects.c.name.label("project"))
                 .join(alert_rules, alert_rules.c.id == alerts.c.rule_id)
                 .join(models, models.c.id == alerts.c.model_id)
                 .join(projects, projects.c.id == models.c.project_id)
                 .where(alerts.c.delivery == "pending").order_by(alerts.c.id))
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def set_delivery(self, alert_id: int, delivery: str, attempts: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(alerts.update().where(alerts.c.id == alert_id).values(
                delivery=delivery, attempts=attempts, delivered_at=_now() if delivery == "delivered" else None))

    # -- leases -----------------------------------------------------------------------------------
    def acquire_lease(self, name: str, holder: str, ttl_s: float, now: float | None = None) -> bool:
        """Take or renew lease ``name`` for ``holder`` for ``ttl_s`` seconds; False while another
        holder's lease runs. One row per lease, changed in one statement, so two processes never
        both hold it."""
        now = _now() if now is None else now
        with self.engine.begin() as conn:
            taken = conn.execute(leases.update().where(
                leases.c.name == name, sa.or_(leases.c.holder == holder, leases.c.expires_at < now)
            ).values(holder=holder, expires_at=now + ttl_s)).rowcount
            if taken:
                return True
        try:
            with self.engine.begin() as conn:
                conn.execute(leases.insert().values(name=name, holder=holder, expires_at=now + ttl_s))
        except IntegrityError:  # the lease exists and is another holder's
            return False
        return True


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


#: model settings that may change after registration (``Store.update_config``, ``PATCH .../models/{model}``);
#: a re-registration leaves them as they are
MUTABLE_CONFIG = ("probe", "probe_sample")


def _fixed_config(config: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k not in MUTABLE_CONFIG}


def _model_dict(row: Any, reference_rows: int | None) -> dict[str, Any]:
    return {"id": int(row.id), "name": row.name, "task": row.task,
            "classes": None if row.classes is None else json.loads(row.classes),
            "columns": json.loads(row.columns), "config": json.loads(row.config),
            "labels_seen": int(row.labels_seen), "reference_rows": reference_rows}


def _window_dict(row: Any) -> dict[str, Any]:
    return {"id": int(row.id), "seq": int(row.seq), "first_batch": int(row.first_batch),
            "last_batch": int(row.last_batch), "n_rows": int(row.n_rows), "start_ts": row.start_ts,
            "end_ts": row.end_ts, "n_labelled": int(row.n_labelled), "metrics": json.loads(row.metrics),
            "drift": json.loads(row.drift), "analysed_at": row.analysed_at}
