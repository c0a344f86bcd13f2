"""`stalwart serve` (the monitoring service) and `stalwart monitor push`; they register on the app
in :mod:`stalwart.cli`.

- ``stalwart serve [--db URL] [--host 127.0.0.1] [--port 8000]`` runs the service with uvicorn
  (no line per request unless ``--access-log``: at hundreds of batches a second it cost CPU);
  ``stalwart serve --create-key --project P --scope admin`` prints a new API key once and exits;
  ``--list-keys --project P`` lists a project's keys (ids, never secrets), ``--revoke-key ID``
  revokes one (a running server refuses it within a second).
- ``stalwart monitor push FILE --model NAME`` sends a CSV or Parquet file of rows as batches.

Both need the ``monitor`` extra; without it they print how to install it and exit 2.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Annotated

import typer

from stalwart._cli_app import app
from stalwart._cli_support import err_console, escape, fail, out_console, user_errors

monitor_app = typer.Typer(no_args_is_help=True, help="Send data to a running monitoring service (stalwart serve).")
app.add_typer(monitor_app, name="monitor")

KEY_ENV = "STALWART_MONITOR_KEY"
URL_ENV = "STALWART_MONITOR_URL"


@app.command("serve")
def serve(
    db: Annotated[str, typer.Option(help="Database URL: a SQLite file (WAL mode) or "
                                         "postgresql+psycopg://user:password@host/dbname.")
                  ] = "sqlite:///stalwart-monitor.db",
    host: Annotated[str, typer.Option(help="Address to listen on (127.0.0.1: this machine only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    window_rows: Annotated[int, typer.Option(min=10, help="Rows per analysis window of newly registered models "
                                                          "(a model may set its own).")] = 1000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Server processes sharing the database (one of "
                                                            "them runs the analysis at a time).")] = 1,
    create_key: Annotated[bool, typer.Option("--create-key", help="Print a new API key for --project and "
                                                                   "--scope, then exit (the key is shown once).")
                          ] = False,
    project: Annotated[str | None, typer.Option(help="Project of the new key (created if new), of the keys to "
                                                     "list, or of the key to revoke.")] = None,
    scope: Annotated[str, typer.Option(help="Scope of the new key: ingest, read or admin.")] = "admin",
    list_keys: Annotated[bool, typer.Option("--list-keys", help="List the keys of --project (id, scope, "
                                                               "created, revoked; never the secrets) and exit.")
                         ] = False,
    revoke_key: Annotated[str | None, typer.Option("--revoke-key", metavar="ID",
                                                   help="Revoke the key with this id (see --list-keys) and exit; a "
                                                        "running server refuses it within a second.",
                                                   show_default=False)] = None,
    grafana_dashboard: Annotated[bool, typer.Option("--grafana-dashboard", help="Print the Grafana dashboard "
                                                    "(JSON, over the service's /metrics) and exit.")] = False,
    access_log: Annotated[bool, typer.Option("--access-log", help="Log a line per request (uvicorn's access "
                                                                  "log: client, method, path, status).")] = False,
    analysis_process: Annotated[bool, typer.Option(
        "--analysis-process/--analysis-in-thread",
        help="Analyse windows in a child process of the server (it leaves the interpreter's lock to the ingest "
             "path), or in the worker thread (one process less, ingest slower while a window is analysed).")
    ] = True,
) -> None:
    """Run the monitoring service: ingest batches and labels, analyse windows, raise alerts."""
    with user_errors():
        from stalwart.monitor import Settings, Store, create_app

        if grafana_dashboard:
            import json

            from stalwart.monitor.metrics import grafana_dashboard as dashboard

            out_console.print(json.dumps(dashboard(), indent=1), highlight=False, soft_wrap=True, markup=False)
            return
        if create_key:
            if not project:
                fail("--create-key needs --project NAME (the project the key belongs to)")
            if scope not in ("ingest", "read", "admin"):
                fail(f"--scope must be ingest, read or admin; got {scope!r}")
            store = Store(db)
            try:
                key = store.create_key(project, scope)
            finally:
                store.close()
            out_console.print(key, highlight=False, soft_wrap=True)
            err_console.print(f"new {scope} key for project {escape(project)}: store it now, it is not shown again",
                              highlight=False)
            return
        if list_keys or revoke_key is not None:
            _manage_keys(Store, db, project, list_keys, revoke_key)
            return
        if project is not None:
            fail("--project only goes with --create-key, --list-keys or --revoke-key")
        settings = Settings(db=db, window_rows=window_rows, analysis_process=analysis_process)
        store = Store(db)  # migrates once, before any server process starts
        where = store.engine.url.render_as_string(hide_password=True)
        application = create_app(settings, store=store) if workers == 1 else None
        if workers > 1:
            store.close()
    import uvicorn

    err_console.print(f"stalwart monitor on http://{escape(host)}:{port} (API docs at /docs), data in "
                      f"{escape(where)}{f', {workers} processes' if workers > 1 else ''}", highlight=False)
    if application is not None:
        uvicorn.run(application, host=host, port=port, log_level="info", access_log=access_log)
        return
    from stalwart.monitor.app import SETTINGS_ENV, settings_env

    os.environ[SETTINGS_ENV] = settings_env(settings)
    uvicorn.run("stalwart.monitor.app:app_from_env", factory=True, host=host, port=port, workers=workers,
                log_level="info", access_log=access_log)


def _manage_keys(store_class, db: str, project: str | None, list_keys: bool, revoke_key: str | None) -> None:
    import time

    from stalwart.monitor.auth import token_id

    if list_keys and revoke_key is not None:
        fail("--list-keys and --revoke-key go one at a time")
    if list_keys and not project:
        fail("--list-keys needs --project NAME (the project whose keys to list)")
    store = store_class(db)
    try:
        if list_keys:
            for key in store.keys(project):
                created = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(key["created_at"]))
                out_console.print(f"{key['key_id']}  {key['scope']:<6}  {created}  "
                                  f"{'revoked' if key['revoked'] else 'active'}", highlight=False)
            return
        # a whole key pasted by mistake still names its id; the secret goes no further
        ident = token_id(revoke_key) or revoke_key
        done = store.revoke_key(ident, project)
    finally:
        store.close()
    err_console.print(f"revoked key {escape(ident)} ({done['scope']}) of project {escape(done['project'])}",
                      highlight=False)


@monitor_app.command("push")
def push(
    file: Annotated[Path, typer.Argument(help="CSV or Parquet file: input columns, prediction, optional row_id, "
                                              "timestamp, score.")],
    model: Annotated[str, typer.Option(help="Registered model to send the rows to.")],
    url: Annotated[str, typer.Option(envvar=URL_ENV, help="The service's URL.")] = "http://127.0.0.1:8000",
    key: Annotated[str | None, typer.Option(envvar=KEY_ENV, help=f"An ingest key (or set {KEY_ENV}).",
                                            show_default=False)] = None,
    batch_rows: Annotated[int, typer.Option(min=1, help="Rows per batch.")] = 1000,
) -> None:
    """Send FILE's rows as batches; pushing the same file again (same --batch-rows) stores nothing twice."""
    if not key:
        fail(f"no API key: pass --key or set {KEY_ENV} (create one with `stalwart serve --create-key "
             "--project NAME --scope ingest`)")
    if not file.is_file():
        fail(f"{file} is not a file; pass a CSV or Parquet file of rows")
    with user_errors():
        from stalwart.monitor import Client

        table = _read_table(file)
        digest = hashlib.sha256(file.read_bytes()).hexdigest()[:16]  # same file, same batch ids
        stored = duplicates = 0
        with Client(url, key) as client:
            for i, start in enumerate(range(0, len(table), batch_rows)):
                answer = client.log_batch(model, table.iloc[start:start + batch_rows],
                                          batch_id=f"{file.name[:120]}-{digest}-{batch_rows}-{i}")
                stored += answer["stored"]
                duplicates += answer["duplicate"]
    out_console.print(f"{len(table)} rows of {escape(file.name)} sent to {escape(model)}: {stored} batch(es) stored, "
                      f"{duplicates} already there", highlight=False)


def _read_table(path: Path):
    import pandas as pd

    from stalwart.data.loaders import file_kind
    from stalwart.errors import InputError

    kind = file_kind(path)
    if kind not in ("csv", "parquet"):
        raise InputError(f"{path.name} is neither CSV nor Parquet (by its extension); convert it to one of them")
    try:
        return pd.read_csv(path) if kind == "csv" else pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's problem to fix
        raise InputError(f"could not read {path} as {kind}: {exc}") from None
