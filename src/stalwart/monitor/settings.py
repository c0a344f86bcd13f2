"""The service's settings: where the data lives, size limits, windows, the worker and webhooks."""

from __future__ import annotations

from dataclasses import dataclass

from stalwart._validation import check_param, check_positive

__all__ = ["Settings", "DEFAULT_DB"]

#: the SQLite file used when no ``--db`` is given (in the working directory)
DEFAULT_DB = "sqlite:///stalwart-monitor.db"


@dataclass(frozen=True)
class Settings:
    """What :func:`stalwart.monitor.create_app` needs.

    Parameters
    ----------
    db : SQLAlchemy URL; ``sqlite:///path.db`` (WAL mode) by default, ``postgresql+psycopg://...``
    max_body_bytes : requests larger than this are refused with 413
    max_batch_rows : rows per ingested batch above which it is refused with 413
    max_reference_rows : rows of a reference set above which it is refused with 413
    max_model_bytes : an uploaded model file larger than this is refused with 413
    window_rows : default rows per analysis window of a newly registered model
    worker : run the analysis and webhook worker in a background thread (off in tests, which call
        :func:`stalwart.monitor.analyze` themselves)
    worker_interval_s : seconds between worker passes when no batch wakes it earlier
    analysis_process : run the worker's analysis passes in a child process (started on the first
        pass, kept for the next), so that they do not take turns with the ingest path for the
        server's interpreter lock; ``False``: in the worker thread. SQLite in memory, which no other
        process can open, is always analysed in the thread
    webhook_retries, webhook_backoff_s, webhook_timeout_s : a webhook is tried ``1 + retries``
        times, waiting ``backoff * 2**attempt`` seconds between tries
    sqlite_synchronous : ``NORMAL`` (an acknowledged batch survives a crash of the process, as WAL
        commits are in the log before the reply) or ``FULL`` (also a crash of the machine)

    Examples
    --------
    >>> Settings(db="sqlite:///:memory:").window_rows
    1000
    """

    db: str = DEFAULT_DB
    max_body_bytes: int = 16 * 1024 * 1024
    max_batch_rows: int = 10_000
    max_reference_rows: int = 1_000_000
    max_model_bytes: int = 64 * 1024 * 1024
    window_rows: int = 1000
    worker: bool = True
    worker_interval_s: float = 2.0
    analysis_process: bool = True
    webhook_retries: int = 3
    webhook_backoff_s: float = 0.5
    webhook_timeout_s: float = 5.0
    sqlite_synchronous: str = "NORMAL"

    def __post_init__(self) -> None:
        check_param(self, "db", self.db, isinstance(self.db, str) and "://" in self.db,
                    "a SQLAlchemy URL such as 'sqlite:///monitor.db' or 'postgresql+psycopg://user@host/db'")
        for name in ("max_body_bytes", "max_batch_rows", "max_reference_rows", "max_model_bytes", "window_rows"):
            check_positive(self, name, getattr(self, name), integer=True)
        check_positive(self, "worker_interval_s", self.worker_interval_s)
        for name in ("worker", "analysis_process"):
            check_param(self, name, getattr(self, name), isinstance(getattr(self, name), bool), "True or False")
        check_positive(self, "webhook_backoff_s", self.webhook_backoff_s, strict=False)
        check_positive(self, "webhook_timeout_s", self.webhook_timeout_s)
        check_param(self, "webhook_retries", self.webhook_retries, isinstance(self.webhook_retries, int)
                    and not isinstance(self.webhook_retries, bool) and 0 <= self.webhook_retries <= 10,
                    "an integer in 0..10")
        check_param(self, "sqlite_synchronous", self.sqlite_synchronous,
                    self.sqlite_synchronous in ("NORMAL", "FULL"), "'NORMAL' or 'FULL'")
