"""What every `stalwart` command shares: the exit-code contract, output checks made before any
work, progress on stderr, and the handling of interrupts and internal errors.

Exit codes, for every command:

====  ==========================================================================================
0     done; every condition passed (a WARN passes, unless ``--strict``)
1     a check failed its condition (FAIL), could not be measured (ERROR), or warned with
      ``--strict``: the report says which and why; JUnit marks the same checks as failures
2     bad input or configuration: the message says what and how to fix it; nothing is written
3     an internal error (a bug in stalwart): one line on stderr, the traceback in a file it names
130   interrupted (Ctrl-C): one line, nothing half-written is left
====  ==========================================================================================
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from stalwart.errors import StalwartError

__all__ = ["out_console", "err_console", "STATUS_STYLE", "EXIT_FAIL", "EXIT_USAGE", "EXIT_INTERNAL",
           "EXIT_INTERRUPTED", "fail", "user_errors", "progress", "check_out_dir", "check_out_file", "exit_code",
           "run_main", "escape", "run_one_check"]

EXIT_FAIL, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 1, 2, 3, 130
#: seconds between "still running" lines when output is not a terminal
HEARTBEAT_S = 30.0

out_console = Console()
err_console = Console(stderr=True)

STATUS_STYLE = {"PASS": "bold green", "WARN": "bold yellow", "FAIL": "bold red", "ERROR": "bold red",
                "SKIP": "dim"}


def fail(message: str) -> None:
    """Print a user error (no traceback; the text is printed as is, brackets included) and exit 2."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_USAGE)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn a :class:`~stalwart.errors.StalwartError` into the exit-2 message."""
    try:
        yield
    except StalwartError as exc:
        fail(str(exc))


def _plain(line: str) -> None:
    sys.stderr.write(f"stalwart: {line}\n")
    sys.stderr.flush()


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m}m {s:02d}s" if m else f"{s}s"


@contextmanager
def progress() -> Iterator[Callable[[str, int, int], None]]:
    """``update(step, i, n)`` for long work, on stderr.

    On a terminal: a rich progress bar. Piped (CI logs): one plain line per step, and a "still
    running" line every :data:`HEARTBEAT_S` seconds while a step takes long, so a log never
    goes silent for minutes.
    """
    if err_console.is_terminal:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                      TimeElapsedColumn(), console=err_console, transient=True) as bar:
            task = bar.add_task("starting", total=None)

            def update_bar(name: str, i: int, n: int) -> None:
                bar.update(task, description=name, completed=i, total=n)
            yield update_bar
        return
    start = time.monotonic()
    state = {"step": "starting", "since": start}
    stop = threading.Event()

    def heartbeat() -> None:
        while not stop.wait(HEARTBEAT_S):
            now = time.monotonic()
            _plain(f"still running {state['step']} ({_clock(now - state['since'])} on it, "
                   f"{_clock(now - start)} in all)")

    thread = threading.Thread(target=heartbeat, name="stalwart-progress", daemon=True)
    thread.start()

    def update_lines(name: str, i: int, n: int) -> None:
        if i >= n:
            state.update(step="the next stage", since=time.monotonic())
            _plain(f"finished {n} step(s) in {_clock(time.monotonic() - start)}")
        else:
            state.update(step=name, since=time.monotonic())
            _plain(f"[{i + 1}/{n}] {name}")

    try:
        yield update_lines
    finally:
        stop.set()
        thread.join()


def _nearest_existing(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _check_parent(path: Path, option: str) -> None:
    """The directory ``path`` would be created in must be (or become) a writable directory."""
    anchor = _nearest_existing(path.parent if path.parent != path else path)
    if not anchor.is_dir():
        fail(f"{option} {str(path)!r} lies under {str(anchor)!r}, which is a file, not a directory; choose "
             "another path")
    if not os.access(anchor, os.W_OK | os.X_OK):
        fail(f"{option} {str(path)!r} cannot be written: {str(anchor)!r} is not writable; choose another path")


def check_out_dir(path: Path, option: str = "--out") -> None:
    """Refuse an output directory that cannot be written, before any work is done."""
    if path.exists():
        if not path.is_dir():
            fail(f"{option} {str(path)!r} is an existing file; pass a directory (it is created when missing)")
        if not os.access(path, os.W_OK | os.X_OK):
            fail(f"{option} {str(path)!r} is not writable; choose another directory")
        return
    _check_parent(path, option)


def check_out_file(path: Path, formats: Mapping[str, str], option: str = "--out",
                   inputs: tuple[str | Path, ...] = ()) -> str:
    """The format of an output file (from its extension), refused up front when it cannot be written.

    ``formats`` maps extensions (".npz", ".csv.gz", ...) to format names; ``inputs`` are files
    the command reads, which the output must not overwrite.
    """
    if path.exists() and path.is_dir():
        fail(f"{option} {str(path)!r} is a directory; pass a file name, e.g. {str(path / ('out' + next(iter(formats))))!r}")
    name = path.name.lower()
    kind = next((k for ext, k in sorted(formats.items(), key=lambda kv: -len(kv[0]))
                 if name.endswith(ext) and len(name) > len(ext)), None)
    if kind is None:
        fail(f"{option} {str(path)!r} must end in one of {', '.join(formats)} (the output's format follows its "
             "extension)")
    for source in inputs:
        if Path(source).exists() and path.exists() and path.resolve() == Path(source).resolve():
            fail(f"{option} {str(path)!r} is the input file; write the output to a new file")
    _check_parent(path, option)
    return str(kind)


def exit_code(status: str, strict: bool = False) -> int:
    """The exit code for a report's status: 1 for FAIL or ERROR, and for WARN with ``--strict``."""
    if status in ("FAIL", "ERROR") or (strict and status == "WARN"):
        return EXIT_FAIL
    return 0


class Interrupted(BaseException):  # noqa: N818 - a signal, like KeyboardInterrupt (which click swallows)
    """Raised by the SIGINT handler; unwinds through ``finally`` blocks (temporary files go)."""


def _on_sigint(signum: int, frame: Any) -> None:
    raise Interrupted()


def _crash_log(exc: BaseException) -> Path:
    fd, name = tempfile.mkstemp(prefix=f"stalwart-crash-{time.strftime('%Y%m%d-%H%M%S')}-", suffix=".txt")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(f"stalwart {' '.join(sys.argv[1:])}\n\n")
        fh.write("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    return Path(name)


def run_main(app: Callable[[], Any]) -> None:
    """Run the typer app with the exit-code contract: 130 on Ctrl-C, 3 with a crash log on a bug."""
    previous = signal.signal(signal.SIGINT, _on_sigint)
    try:
        app()
    except Interrupted:
        sys.stderr.write("stalwart: interrupted\n")
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:  # noqa: BLE001 - anything else reaching here is a bug, reported as one
        log = _crash_log(exc)
        first = " ".join(str(exc).split())[:200]
        sys.stderr.write(f"stalwart: internal error ({type(exc).__name__}: {first}). This is a bug in stalwart, "
                         f"not in your input; the traceback is in {log}. Please include it in a bug report.\n")
        sys.exit(EXIT_INTERNAL)
    finally:
        signal.signal(signal.SIGINT, previous)


def names_option(text: str | None, option: str = "--columns", example: str = "age,income") -> list[str] | None:
    """A comma-separated list of names from the command line (None when the option was not given)."""
    if text is None:
        return None
    names = [c.strip() for c in text.split(",") if c.strip()]
    if not names:
        fail(f"{option} must name at least one, comma-separated (e.g. {option} {example})")
    return names


def run_one_check(check: Any, model: Any, data: Any, seed: int, *, unusable: str) -> tuple[Any, float]:
    """Run ``check`` with a progress line; ``(result, seconds)``. A check that errs or is skipped
    fails the command (exit 2) with its message, prefixed by ``unusable`` for a skip."""
    from stalwart.checks.base import Status

    start = time.perf_counter()
    with progress() as update:
        update(check.name, 0, 1)
        result = check.run(model, data, seed=seed)
        update(check.name, 1, 1)
    if result.status is Status.ERROR:
        fail(result.message.removeprefix("the check failed: "))
    if result.status is Status.SKIP:
        fail(f"{unusable}: {result.message}")
    return result, time.perf_counter() - start
