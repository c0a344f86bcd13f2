"""The monitoring service: ``stalwart serve`` watches deployed models for drift and falling accuracy.

A FastAPI app (:func:`create_app`) over a SQL store (:class:`Store`: SQLite with WAL by default,
any SQLAlchemy URL such as PostgreSQL otherwise, schema kept by Alembic migrations shipped here),
API keys with scopes per project, windows analysed off the request path with stalwart's drift
tests, alert rules in the suites' condition language with webhook delivery, and an HTTP
:class:`Client`. See docs/monitoring.md.

It needs the ``monitor`` extra (FastAPI, uvicorn, SQLAlchemy, Alembic, httpx); without it,
importing this package raises :class:`~stalwart.errors.MissingDependencyError` (a
:class:`~stalwart.errors.StalwartError`, so the command line prints it and exits 2).
"""

from stalwart._lazy import lazy_module
from stalwart.errors import require

for _module in ("fastapi", "sqlalchemy", "alembic", "httpx", "python_multipart", "prometheus_client"):
    require(_module, "monitor")

_EXPORTS = {
    "Settings": ".settings",
    **dict.fromkeys(("Store", "SCOPES"), ".store"),
    "analyze": ".analysis",
    **dict.fromkeys(("AlertRule", "deliver_pending", "next_state"), ".alerts"),
    "create_app": ".app",
    "Client": ".client",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_module(__name__, _EXPORTS, globals())
