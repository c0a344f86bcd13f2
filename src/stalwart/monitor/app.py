"""The HTTP service: :func:`create_app` builds the FastAPI application ``stalwart serve`` runs.

Every route but ``/health`` needs ``Authorization: Bearer <key>``: 401 without a valid key, 403
for a key of another project or without the scope the route needs (``read``, ``ingest`` or
``admin``, which includes both). Routes live under ``/v1/projects/{project}``:

=======================================================  =======  ======================================
route                                                    scope    what
=======================================================  =======  ======================================
``GET /v1/whoami``                                       any      the key's project and scope
``GET /metrics``                                         read     Prometheus text format (own project's series)
``POST .../keys``                                        admin    a new key of the project (shown once)
``GET .../keys``, ``DELETE .../keys/{key_id}``           admin    list keys (no secrets), revoke one
``POST .../models``, ``GET .../models[/{model}]``         admin,   register a model (and its reference),
                                                         read     list them
``PATCH .../models/{model}``                             admin    probe on/off and its sample size
``PUT .../models/{model}/reference``                     admin    replace the reference (JSON or CSV)
``POST .../models/{model}/batches``                      ingest   a batch (JSON or CSV), idempotent
``POST .../models/{model}/labels``                       ingest   labels by row id (JSON or CSV)
``GET .../models/{model}/windows``                       read     analysed windows with their metrics
``POST .../models/{model}/analyze``                      admin    analyse complete windows now
``POST/GET .../models/{model}/rules``, ``GET .../alerts``  admin,   alert rules and their history
                                                         read
=======================================================  =======  ======================================

A batch is answered only after it is committed: 201 when stored, 200 with ``"duplicate": true``
when its ``batch_id`` was stored before with the same body (a retry), 409 when with another body,
413 over the size limits, 422 with what to fix.
Analysis and webhooks run in a worker thread, every ``worker_interval_s`` and as soon as a model has
received a window's worth of rows (not on each batch: a pass costs more than a batch); the thread
hands each analysis pass to a child process (:mod:`stalwart.monitor.analysis_process`), so that it
leaves the interpreter's lock to the ingest path. The HTML dashboard
(``/dashboard``, :mod:`stalwart.monitor.dashboard`) takes a read key once and keeps a signed session
cookie instead.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import inspect
import json
import logging
import math
import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import DataError

from stalwart.errors import ConfigError, InputError, StalwartError
from stalwart.monitor.alerts import AlertRule, deliver_pending
from stalwart.monitor.analysis import MAX_PROBE_SAMPLE, PROBE_SAMPLE, analyze
from stalwart.monitor.analysis_process import AnalysisProcess, can_run_apart
from stalwart.monitor.auth import token_hash
from stalwart.monitor.dashboard import dashboard_router
from stalwart.monitor.ingest import (
    RESERVED,
    TooLarge,
    batch_columns,
    label_pairs,
    parse_body,
    probability_columns,
    reference_columns,
)
from stalwart.monitor.metrics import CONTENT_TYPE, Metrics, RequestMetrics
from stalwart.monitor.settings import Settings
from stalwart.monitor.store import Conflict, NotFound, Principal, Store, check_store
from stalwart.monitor.streams import check_streams

__all__ = ["create_app", "app_from_env", "settings_env", "Worker", "KEY_CACHE_S", "LEASE_S", "SETTINGS_ENV",
           "REVOCATION_CHECK_S", "INGEST_THREADS"]

log = logging.getLogger("stalwart.monitor")


class ModelIn(BaseModel):
    """A model to monitor: its input columns and their kinds, its task and classes."""

    # one path segment of /v1/projects/{p}/models/{model}: a '/' would make the model unreachable
    name: str = Field(min_length=1, max_length=200, pattern=r"^[^/]+$")
    columns: dict[str, Literal["numeric", "integer", "categorical", "boolean"]] = Field(min_length=1)
    task: Literal["classification", "regression"] = "classification"
    classes: list[int | str | bool] | None = None
    window_rows: int | None = Field(default=None, ge=10, le=10_000_000)
    window_seconds: float | None = Field(default=None, gt=0, allow_inf_nan=False,
                                         description="also close a window after this span")
    drift_method: str = "auto"
    alpha: float = Field(default=0.05, gt=0, lt=1)
    correction: Literal["bonferroni", "bh"] | None = "bonferroni"
    reference: list[dict[str, Any]] | None = Field(default=None, description="reference rows (or PUT .../reference)")
    probe: bool = Field(default=True, description="run the robustness probe on each window (with a model file)")
    probe_sample: int = Field(default=PROBE_SAMPLE, ge=10, le=MAX_PROBE_SAMPLE,
                              description="rows of each window the probe perturbs (a seeded sample)")
    streams: list[dict[str, Any]] | None = Field(
        default=None, max_length=100,
        description="streaming change detectors: [{\"on\": \"output\" or an input column, \"detector\": \"adwin\", "
                    "\"params\": {...}}]; default: ADWIN on the model's output", examples=[[
                        {"on": "output", "detector": "adwin"},
                        {"on": "temperature", "detector": "page_hinkley", "params": {"threshold": 25}}]])


class ModelUpdate(BaseModel):
    """The settings of a registered model that may change: the robustness probe's."""

    model_config = ConfigDict(extra="forbid")
    probe: bool | None = Field(default=None, description="run the robustness probe on each window")
    probe_sample: int | None = Field(default=None, ge=10, le=MAX_PROBE_SAMPLE,
                                     description="rows of each window the probe perturbs")


class RuleIn(BaseModel):
    """An alert rule: a condition in the suites' language, hysteresis, an optional webhook."""

    name: str = Field(min_length=1, max_length=200)
    condition: str = Field(min_length=1, max_length=500, examples=["drift_share <= 0.2", "accuracy >= 0.9"])
    for_windows: int = Field(default=1, ge=1, le=1000)
    webhook_url: str | None = Field(default=None, max_length=2000)
    cooldown_s: float = Field(default=0.0, ge=0, le=365 * 86_400, allow_inf_nan=False,
                              description="seconds after a resolution during which the rule may not fire again")


class KeyIn(BaseModel):
    scope: Literal["ingest", "read", "admin"]


_STATUS = ((NotFound, 404), (Conflict, 409), (TooLarge, 413))
#: seconds the analysis lease lasts without renewal (a pass renews it)
LEASE_S = 60.0
#: the environment variable through which `stalwart serve --workers N` hands its settings to each process
SETTINGS_ENV = "STALWART_MONITOR_SETTINGS"
#: seconds a checked key is trusted without a database lookup (a revocation clears it, see below)
KEY_CACHE_S = 30.0
#: seconds between looks at the count of revoked keys, which drop the key cache when it moved: a key
#: revoked through this process is refused at once, through another (or the command line) within this
REVOCATION_CHECK_S = 1.0
#: threads of a server process that check and store batches. Checking holds Python's lock, so
#: more threads only take turns at it, at a cost: with a thread per request in flight (eight
#: clients, Starlette's shared pool) a batch took 10-25% more server CPU than with two; two, so
#: that one checks a batch while the other waits on the database
INGEST_THREADS = 2
_bearer = HTTPBearer(auto_error=False, description="an API key from `stalwart serve --create-key`")


async def _principal(request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
                     ) -> Principal:
    if creds is None:
        raise HTTPException(401, "no API key: send the header 'Authorization: Bearer <key>'",
                            headers={"WWW-Authenticate": "Bearer"})
    # a key checked in the last KEY_CACHE_S seconds is not looked up again (ingest is hot);
    # the cache holds hashes, never keys
    state = request.app.state
    cache, now = state.key_cache, time.monotonic()
    digest = token_hash(creds.credentials)
    hit = cache.get(digest)
    if hit is not None and hit[1] > now:
        count, checked = state.revocations
        if now - checked >= REVOCATION_CHECK_S:
            state.revocations = (await run_in_threadpool(state.store.revoked_count), now)
            if state.revocations[0] != count:  # revoked elsewhere: check every key again
                cache.clear()
                hit = None
        if hit is not None:
            return hit[0]
    found = await run_in_threadpool(request.app.state.store.authenticate, creds.credentials)
    if found is None:
        raise HTTPException(401, "unknown or revoked API key", headers={"WWW-Authenticate": "Bearer"})
    if len(cache) >= 10_000:
        cache.clear()
    cache[digest] = (found, now + KEY_CACHE_S)
    return found


def _need(scope: str) -> Callable[..., Any]:
    async def check(project: str, who: Annotated[Principal, Depends(_principal)]) -> Principal:
        if who.project != project:
            raise HTTPException(403, f"this key belongs to another project than {project!r}")
        if not who.allows(scope):
            raise HTTPException(403, f"this key has scope {who.scope!r}; this route needs {scope!r}")
        return who
    return check


_ingester = _need("ingest")
AnyKey = Annotated[Principal, Depends(_principal)]
Reader = Annotated[Principal, Depends(_need("read"))]
Ingester = Annotated[Principal, Depends(_ingester)]
Admin = Annotated[Principal, Depends(_need("admin"))]


class _ResolvedRoute(APIRoute):
    """A route answered by ``endpoint.resolved``, an ``async (request) -> Response`` that finds the
    endpoint's parameters itself (through the same functions as its dependencies) and calls it.

    The ingest route is one: FastAPI's dependency solving, run afresh on every request, cost it
    about as much as checking the batch's columns. Its OpenAPI entry still comes from the endpoint's
    signature, so the resolver must take exactly the parameters that signature declares.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return self.endpoint.resolved  # type: ignore[attr-defined]


class Worker(threading.Thread):
    """Analyses complete windows and delivers alerts, every ``interval`` seconds or when woken.

    Several server processes may share one database (``stalwart serve --workers N``): only the
    holder of the database lease ``"analysis"`` runs a pass; it renews the lease each pass, and
    another process takes over once it lapses (:data:`LEASE_S` without a pass). The pass itself
    runs in a child process (``apart``, an :class:`AnalysisProcess`) unless
    ``settings.analysis_process`` is off or the database is SQLite in memory.
    """

    def __init__(self, store: Store, settings: Settings, wake: threading.Event, lock: threading.Lock,
                 metrics: Metrics | None = None) -> None:
        super().__init__(name="stalwart-monitor-worker", daemon=True)
        self.store, self.settings, self.wake, self.lock = store, settings, wake, lock
        self.stopping = threading.Event()
        self.metrics = metrics
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        # the passes' work in a child process (see analysis_process), where the database allows it
        self.apart = (AnalysisProcess(store.url, settings.sqlite_synchronous)
                      if settings.analysis_process and can_run_apart(store.url) else None)

    def run(self) -> None:
        try:
            self._loop()
        finally:
            if self.apart is not None:
                self.apart.close()

    def _loop(self) -> None:
        ttl = max(LEASE_S, 10 * self.settings.worker_interval_s)
        while not self.stopping.is_set():
            self.wake.wait(self.settings.worker_interval_s)
            self.wake.clear()
            if self.stopping.is_set():
                break
            try:
                if not self.store.acquire_lease("analysis", self.holder, ttl):
                    continue  # another process analyses
                with self.lock:
                    start = time.perf_counter()
                    result = analyze(self.store) if self.apart is None else self.apart.analyze()
                if self.metrics is not None:
                    self.metrics.analysed(result, time.perf_counter() - start, "worker")
                deliver_pending(self.store, retries=self.settings.webhook_retries,
                                backoff_s=self.settings.webhook_backoff_s, timeout_s=self.settings.webhook_timeout_s,
                                sleep=self.stopping.wait)
            except Exception:  # noqa: BLE001 - the worker must outlive one bad pass; the log says why
                log.exception("a monitoring worker pass failed; retrying on the next pass")

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()
        self.join(timeout=30)


def create_app(settings: Settings | None = None, *, store: Store | None = None) -> FastAPI:
    """The service's FastAPI application over ``settings.db`` (migrated on creation).

    Examples
    --------
    >>> app = create_app(Settings(db="sqlite:///:memory:", worker=False))
    >>> sorted(p for r in app.routes if "/models/{model}/" in (p := getattr(r, "path", "")))[:3]
    ['/v1/projects/{project}/models/{model}/alerts', '/v1/projects/{project}/models/{model}/analyze', '/v1/projects/{project}/models/{model}/artifact']
    """
    settings = Settings() if settings is None else settings
    if not isinstance(settings, Settings):
        raise ConfigError(f"create_app(settings=...) must be a stalwart.monitor.Settings (Settings(db=...)); "
                          f"got {type(settings).__name__}")
    if store is None:
        store = Store(settings.db, synchronous=settings.sqlite_synchronous)
    check_store(store, "create_app")
    wake, lock = threading.Event(), threading.Lock()

    ingest_pool: dict[str, ThreadPoolExecutor] = {}  # made on the first batch, shut down with the app

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        worker = Worker(store, settings, wake, lock, metrics) if settings.worker else None
        if worker is not None:
            worker.start()
        try:
            yield
        finally:
            if worker is not None:
                worker.stop()
            pool = ingest_pool.pop("pool", None)
            if pool is not None:
                pool.shutdown(wait=True)

    from stalwart import __version__

    # no telemetry of any kind: FastAPI's own OpenTelemetry hooks (recent versions) stay off even
    # where the process has a tracer or meter configured; the service's figures are at /metrics
    quiet = ({"telemetry": {"tracing": False, "metrics": False, "logs": False, "auto_configure": False}}
             if "telemetry" in inspect.signature(FastAPI.__init__).parameters else {})
    app = FastAPI(title="stalwart monitor", version=__version__, lifespan=lifespan,
                  description="Drift, accuracy and alerts for deployed models. Every route but /health needs "
                              "'Authorization: Bearer <key>'.", **quiet)
    app.state.store, app.state.settings, app.state.key_cache = store, settings, {}
    app.state.revocations = (store.revoked_count(), time.monotonic())
    metrics = app.state.metrics = Metrics(store)  # Prometheus: this app's own registry
    app.add_middleware(RequestMetrics, metrics=metrics)
    ingest_models: dict[tuple[int, str], dict[str, Any]] = {}  # what ingest reads of a model never changes
    rows_since_wake: dict[int, int] = {}  # rows stored per model since the batches last woke the worker

    @app.exception_handler(StalwartError)
    async def _stalwart_error(_request: Request, exc: StalwartError) -> JSONResponse:
        status = next((code for cls, code in _STATUS if isinstance(exc, cls)), 422)
        return JSONResponse({"detail": str(exc)}, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own 422, except that an echoed input JSON cannot hold (NaN, Infinity, which
        # Python's JSON reader accepts) is sent as text: it made the answer itself fail, a 500
        return JSONResponse({"detail": _json_safe(jsonable_encoder(exc.errors()))}, status_code=422)

    @app.exception_handler(DataError)
    async def _data_error(_request: Request, exc: DataError) -> JSONResponse:
        # a value the database cannot hold (out of its range, text it refuses) that no check above
        # caught: the request's fault, so a 422 that says so rather than a 500
        reason = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else type(exc.orig).__name__
        return JSONResponse({"detail": f"the database refused a value of this request ({reason}); check for "
                                       "numbers out of range and text with NUL characters"}, status_code=422)

    async def body_of(request: Request, limit: int | None = None, fix: str = "send smaller batches") -> bytes:
        limit = settings.max_body_bytes if limit is None else limit
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise TooLarge(f"the body has {int(declared)} bytes, more than the limit of {limit}; {fix}")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise TooLarge(f"the body is larger than the limit of {limit} bytes; {fix}")
            chunks.append(chunk)
        return b"".join(chunks)

    async def ingest(project: str, model: str, request: Request, who: Ingester,
                     batch_id: str | None = None) -> Any:
        body = await body_of(request)

        def work() -> tuple[dict[str, Any], int]:
            found = ingest_models.get((who.project_id, model))
            if found is None:
                found = ingest_models[who.project_id, model] = store.model(who.project_id, model)
            rows, extra = parse_body(body, request.headers.get("content-type", ""), "rows")
            key = extra.get("batch_id", batch_id)
            if key is None:
                raise InputError("the batch has no batch_id; send it in the JSON body or as ?batch_id=, the same "
                                 "on every retry, so a retried batch is stored once")
            if not isinstance(key, str) or not 0 < len(key) <= 200:
                raise InputError(f"batch_id must be text of 1 to 200 characters; got {key!r}")
            columns, n, first, last = batch_columns(rows, found, key, settings.max_batch_rows)
            digest = hashlib.sha256(body).hexdigest()
            stored = store.add_batch(found["id"], key, columns, n, first, last, digest)
            return {"batch_id": key, "rows": n, "stored": stored, "duplicate": not stored}, 201 if stored else 200
        pool = ingest_pool.get("pool") or ingest_pool.setdefault(
            "pool", ThreadPoolExecutor(INGEST_THREADS, thread_name_prefix="stalwart-ingest"))
        answer, status = await asyncio.get_running_loop().run_in_executor(pool, work)
        metrics.batch(who.project, model, rows=answer["rows"], stored=answer["stored"])
        if answer["stored"]:
            # the worker is woken once a window's worth of rows has arrived, not once a batch: a pass
            # costs more than a batch; a time window waits at most for its next interval
            found = ingest_models[who.project_id, model]
            unseen = rows_since_wake.get(found["id"], 0) + answer["rows"]
            if unseen >= int(found["config"].get("window_rows") or settings.window_rows):
                wake.set()
                unseen = 0
            rows_since_wake[found["id"]] = unseen
        return JSONResponse(answer, status_code=status)

    async def resolve_ingest(request: Request) -> Response:
        # the parameters of `ingest`, found as its dependencies would find them (see _ResolvedRoute)
        project = request.path_params["project"]
        who = await _ingester(project, await _principal(request, await _bearer(request)))
        return await ingest(project, request.path_params["model"], request, who, request.query_params.get("batch_id"))

    ingest.resolved = resolve_ingest  # type: ignore[attr-defined]
    # registered first: the router tries routes in order, and this one is the busiest
    app.router.add_api_route(
        "/v1/projects/{project}/models/{model}/batches", ingest, methods=["POST"], status_code=201, tags=["ingest"],
        route_class_override=_ResolvedRoute,
        openapi_extra=_raw_body("{\"batch_id\": \"...\", \"rows\": [{column: value, ..., \"prediction\": ...}]}"
                                " or CSV with ?batch_id="))

    @app.get("/health", tags=["service"])
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/whoami", tags=["service"])
    def whoami(who: AnyKey) -> dict[str, str]:
        return {"project": who.project, "scope": who.scope, "key_id": who.key_id}

    @app.get("/metrics", tags=["service"], response_class=Response,
             responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text format"}})
    def prometheus(who: AnyKey) -> Response:
        """Prometheus metrics; a read (or admin) key sees its project's series and the service-wide ones."""
        if not who.allows("read"):
            raise HTTPException(403, f"this key has scope {who.scope!r}; /metrics needs 'read'")
        return Response(metrics.exposition(who.project), media_type=CONTENT_TYPE)

    @app.post("/v1/projects/{project}/keys", status_code=201, tags=["keys"])
    def new_key(project: str, spec: KeyIn, who: Admin) -> dict[str, str]:
        key = store.create_key(project, spec.scope)
        log.info("key %s created in project %s with scope %s", key.split("_")[1], project, spec.scope)
        return {"project": project, "scope": spec.scope, "key": key}

    @app.get("/v1/projects/{project}/keys", tags=["keys"])
    def list_keys(project: str, who: Admin) -> dict[str, Any]:
        return {"project": project, "keys": store.keys(project)}

    @app.delete("/v1/projects/{project}/keys/{key_id}", tags=["keys"])
    def revoke_key(project: str, key_id: str, who: Admin) -> dict[str, Any]:
        revoked = store.revoke_key(key_id, project)
        for digest, (principal, _) in list(app.state.key_cache.items()):
            if principal.key_id == key_id:  # refused from the next request on
                app.state.key_cache.pop(digest, None)
        log.info("key %s of project %s revoked by key %s", key_id, project, who.key_id)
        return revoked

    @app.get("/v1/projects/{project}/models", tags=["models"])
    def list_models(project: str, who: Reader) -> dict[str, Any]:
        return {"models": store.models(who.project_id)}

    @app.post("/v1/projects/{project}/models", status_code=201, tags=["models"])
    def register(project: str, spec: ModelIn, who: Admin) -> dict[str, Any]:
        from stalwart.shift import TabularDrift

        reserved = [c for c in spec.columns if c in (*RESERVED, "label", *probability_columns(spec.classes))]
        if reserved:
            raise InputError(f"columns {reserved} use reserved names ({', '.join(RESERVED)}, label, and "
                             "probability_<class> for each class); rename them")
        if spec.task == "regression" and spec.classes is not None:
            raise InputError("a regression model has no classes; drop 'classes' or use task 'classification'")
        TabularDrift(method=spec.drift_method, alpha=spec.alpha, correction=spec.correction)  # checks them
        config = {"window_rows": spec.window_rows or settings.window_rows, "window_seconds": spec.window_seconds,
                  "drift_method": spec.drift_method,
                  "alpha": spec.alpha, "correction": spec.correction,
                  "probe": spec.probe, "probe_sample": spec.probe_sample}
        if spec.streams is not None:  # absent: the default streams, and a config as before they existed
            config["streams"] = check_streams(spec.streams, spec.columns, spec.task)
        model = store.add_model(who.project_id, spec.name, spec.task, spec.classes, spec.columns, config)
        # a re-registration leaves the probe settings as they are (PATCH changes them): one that
        # names other values is refused rather than silently ignored
        differ = [k for k in ("probe", "probe_sample") if k in spec.model_fields_set
                  and model["config"].get(k, {"probe": True, "probe_sample": PROBE_SAMPLE}[k]) != getattr(spec, k)]
        if differ:
            raise Conflict(f"model {spec.name!r} is registered with other {', '.join(differ)}; change them with "
                           f"PATCH /v1/projects/{project}/models/{spec.name}")
        if spec.reference is not None:
            columns, n = reference_columns(spec.reference, model, settings.max_reference_rows)
            store.set_reference(model["id"], columns, n)
            model["reference_rows"] = n
        return model

    @app.patch("/v1/projects/{project}/models/{model}", tags=["models"])
    def update_model(project: str, model: str, spec: ModelUpdate, who: Admin) -> dict[str, Any]:
        """Switch the robustness probe on or off, or change its sample size; windows analysed from
        now on use the new settings."""
        changes = spec.model_dump(exclude_none=True)
        if not changes:
            raise InputError("nothing to change; send {\"probe\": false} or {\"probe_sample\": 1000}")
        found = store.update_config(who.project_id, model, changes)
        ingest_models.pop((who.project_id, model), None)
        return found

    @app.get("/v1/projects/{project}/models/{model}", tags=["models"])
    def get_model(project: str, model: str, who: Reader) -> dict[str, Any]:
        found = store.model(who.project_id, model)
        n_batches, n_rows = store.batch_count(found["id"])
        return {**found, "batches": n_batches, "rows": n_rows, "artifact": store.artifact_info(found["id"])}

    @app.put("/v1/projects/{project}/models/{model}/artifact", tags=["models"], openapi_extra={"requestBody": {
        "required": True, "description": "the model file: skops, ONNX, TorchScript or torch.export",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}})
    async def put_artifact(project: str, model: str, request: Request, who: Admin,
                           format: Literal["skops", "onnx", "torchscript", "torch_export"] | None = None
                           ) -> dict[str, Any]:
        """Hand the service the model file, so each window also reports the label-free estimated
        accuracy and the robustness probe. Loaded as `stalwart scan` loads files (no pickles); a
        file that is unsafe, unreadable or does not run on the reference is refused with 422."""
        body = await body_of(request, settings.max_model_bytes,
                             "upload a smaller model file, or start the service with a larger max_model_bytes")

        def work() -> dict[str, Any]:
            from stalwart.monitor.artifacts import check_artifact, digest

            found = store.model(who.project_id, model)
            fmt, _ = check_artifact(body, format, found, store.reference(found["id"]))
            return {"model": model, **store.set_artifact(found["id"], fmt, body, digest(body))}
        answer = await run_in_threadpool(work)
        wake.set()
        return answer

    @app.put("/v1/projects/{project}/models/{model}/reference", tags=["models"],
             openapi_extra=_raw_body("reference rows: {\"rows\": [...]} or CSV with a header"))
    async def put_reference(project: str, model: str, request: Request,
                            who: Admin) -> dict[str, Any]:
        body = await body_of(request)

        def work() -> dict[str, Any]:
            found = store.model(who.project_id, model)
            rows, _ = parse_body(body, request.headers.get("content-type", ""), "rows")
            columns, n = reference_columns(rows, found, settings.max_reference_rows)
            store.set_reference(found["id"], columns, n)
            return {"model": model, "reference_rows": n}
        return await run_in_threadpool(work)

    @app.post("/v1/projects/{project}/models/{model}/labels", tags=["ingest"],
              openapi_extra=_raw_body("{\"labels\": [{\"row_id\": ..., \"label\": ...}]} or CSV row_id,label"))
    async def ingest_labels(project: str, model: str, request: Request,
                            who: Ingester) -> dict[str, Any]:
        body = await body_of(request)

        def work() -> dict[str, Any]:
            found = store.model(who.project_id, model)
            rows, _ = parse_body(body, request.headers.get("content-type", ""), "labels")
            return {"labels": store.add_labels(found["id"], label_pairs(rows, found, settings.max_batch_rows))}
        answer = await run_in_threadpool(work)
        wake.set()
        return answer

    @app.get("/v1/projects/{project}/models/{model}/windows", tags=["analysis"])
    def list_windows(project: str, model: str, who: Reader,
                     after: Annotated[int, Query(ge=-1, le=2**31 - 1, description="windows with seq > after")] = -1,
                     limit: int = 100, drift: bool = True) -> dict[str, Any]:
        found = store.model(who.project_id, model)
        rows = store.windows(found["id"], after=after, limit=max(1, min(limit, 10_000)))
        if not drift:
            rows = [{k: v for k, v in w.items() if k != "drift"} for w in rows]
        return {"model": model, "windows": rows}

    @app.post("/v1/projects/{project}/models/{model}/analyze", tags=["analysis"])
    def analyze_now(project: str, model: str, who: Admin) -> dict[str, Any]:
        found = store.model(who.project_id, model)
        with lock:
            start = time.perf_counter()
            result = analyze(store, found["id"])
        metrics.analysed(result, time.perf_counter() - start, "request")
        return {"windows": result["windows"].get(found["id"], []), "relabelled": result["relabelled"],
                "alerts": result["alerts"]}

    @app.post("/v1/projects/{project}/models/{model}/rules", status_code=201, tags=["alerts"])
    def add_rule(project: str, model: str, spec: RuleIn, who: Admin) -> dict[str, Any]:
        found = store.model(who.project_id, model)
        rule = AlertRule(spec.name, spec.condition, spec.for_windows, spec.webhook_url, spec.cooldown_s)
        return store.add_rule(found["id"], rule.name, str(rule.condition), rule.for_windows, rule.webhook_url,
                              rule.cooldown_s)

    @app.get("/v1/projects/{project}/models/{model}/rules", tags=["alerts"])
    def list_rules(project: str, model: str, who: Reader) -> dict[str, Any]:
        return {"rules": store.rules(store.model(who.project_id, model)["id"])}

    @app.get("/v1/projects/{project}/models/{model}/alerts", tags=["alerts"])
    def list_alerts(project: str, model: str, who: Reader) -> dict[str, Any]:
        return {"alerts": store.alerts(store.model(who.project_id, model)["id"])}

    app.include_router(dashboard_router(store))  # HTML pages under /dashboard (session cookie, not the API key)
    return app


def settings_env(settings: Settings) -> str:
    """``settings`` as the JSON :func:`app_from_env` reads from :data:`SETTINGS_ENV`."""
    return json.dumps(dataclasses.asdict(settings))


def app_from_env() -> FastAPI:
    """The app of one server process of ``stalwart serve --workers N`` (a uvicorn factory): its
    settings come from :data:`SETTINGS_ENV`, set by the parent process."""
    raw = os.environ.get(SETTINGS_ENV)
    if raw is None:
        raise ConfigError(f"{SETTINGS_ENV} is not set; start the service with `stalwart serve`, which sets it")
    return create_app(Settings(**json.loads(raw)))


def _json_safe(value: Any) -> Any:
    """``value`` with every float JSON cannot hold (NaN, infinities) replaced by its text.

    >>> _json_safe({"input": [1.0, float("nan")], "loc": ["body", "alpha"]})
    {'input': [1.0, 'nan'], 'loc': ['body', 'alpha']}
    """
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _raw_body(description: str) -> dict[str, Any]:
    """OpenAPI text for routes that read their body themselves (JSON or CSV, size-checked)."""
    return {"requestBody": {"required": True, "description": description, "content": {
        "application/json": {"schema": {"type": "object"}}, "text/csv": {"schema": {"type": "string"}}}}}
