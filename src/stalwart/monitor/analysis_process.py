"""The worker's analysis passes in a child process, so that they leave the server's interpreter lock
to the ingest path.

A window's analysis is mostly Python and numpy work that holds the lock for long stretches; in the
server process, the threads that check and store batches wait for it in turns (with two server
processes on two cores, ingest while analysing fell to 65-76% of what it was without analysis on
this machine; docs/benchmarks.md, "What moved the figures (stop 23)"). :class:`AnalysisProcess` runs :func:`analyze` in one child
process, started on the first pass and kept for the next (so the imports, the fitted OOD detectors
and the loaded models are paid once), which the operating system schedules beside the server's.
The worker thread keeps everything else: the database lease, the lock that serialises passes in its
process, the metrics and the webhooks.

The child dies with its parent: on Linux it asks the kernel for SIGKILL when the thread that started
it ends (``PR_SET_PDEATHSIG``), and it checks at start that its parent is still the process that
started it. A pass that the child does not finish (killed, out of memory) raises
:class:`concurrent.futures.process.BrokenProcessPool` in the worker, which logs it; the next pass
starts a new child. A database that only its own process can open (SQLite in memory) is analysed
in the worker thread instead (:func:`can_run_apart`).
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import sqlalchemy as sa

__all__ = ["AnalysisProcess", "can_run_apart"]

_PR_SET_PDEATHSIG = 1
#: what the child holds between passes: its Store
_CHILD: dict[str, Any] = {}


def can_run_apart(url: str) -> bool:
    """Whether another process can open the database at ``url`` (not SQLite in memory).

    >>> can_run_apart("sqlite:///monitor.db"), can_run_apart("sqlite:///:memory:"), can_run_apart("sqlite://")
    (True, False, False)
    """
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return True
    return parsed.database not in (None, "", ":memory:") and parsed.query.get("mode") != "memory"


class AnalysisProcess:
    """:func:`stalwart.monitor.analyze` over the database at ``url``, run in one child process.

    ``analyze()`` runs one pass there and returns its result; ``pid`` is the child's (``None``
    before the first pass); ``close()`` ends the child (after the pass it is running).
    """

    def __init__(self, url: str, synchronous: str = "NORMAL") -> None:
        self.url, self.synchronous = url, synchronous
        self._pool: ProcessPoolExecutor | None = None
        self.pid: int | None = None

    def analyze(self) -> dict[str, Any]:
        if self._pool is None:
            # spawn, not fork: the server has threads (a fork copies locks they hold) and an event loop
            self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_start, initargs=(self.url, self.synchronous, os.getpid()))
        try:
            result, self.pid = self._pool.submit(_pass).result()
        except BrokenProcessPool:
            self.close()  # the next pass starts a new child
            raise
        return result

    def close(self) -> None:
        pool, self._pool, self.pid = self._pool, None, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _start(url: str, synchronous: str, parent: int) -> None:
    """The child's set-up: die with the parent, leave Ctrl-C to it, open the database."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the request above took effect
        os._exit(0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C reaches the whole group; the parent stops us
    from stalwart.monitor.store import Store

    _CHILD["store"] = Store(url, synchronous=synchronous, migrate=False)


def _pass() -> tuple[dict[str, Any], int]:
    from stalwart.monitor.analysis import analyze

    return analyze(_CHILD["store"]), os.getpid()
