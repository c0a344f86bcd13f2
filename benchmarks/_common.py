"""Helpers shared by the benchmark scripts: timing, peak memory, and writing docs/benchmarks.md.

Each benchmark script owns one section of docs/benchmarks.md (a ``## Title`` heading up to the
next ``## ``); :func:`write_section` replaces that section and leaves the others untouched.
"""

from __future__ import annotations

import os
import platform
import re
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
HEADER = """# Benchmarks

Measured side by side with the peers in one process on the same models and data; each section
names the command that produced it. Ratios are from one run on the machine named in the section,
not averages. Reproduce everything with `make bench` (peers are installed into `.venv-bench`).
"""


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def versions(*modules: str) -> str:
    """``name version`` of stalwart and each imported module (peers first-class in every table)."""
    import importlib

    import numpy as np

    import stalwart

    parts = [f"stalwart {stalwart.__version__}"]
    for name in modules:
        mod = importlib.import_module(name)
        parts.append(f"{getattr(mod, '__name__', name).split('.')[0]} {mod.__version__}")
    return ", ".join([*parts, f"numpy {np.__version__}"])


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def peak_memory(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """(result, seconds, peak MiB allocated by Python/numpy during the call, via tracemalloc)."""
    tracemalloc.start()
    try:
        out, seconds = timed(fn)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return out, seconds, peak / 2 ** 20


def markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"
        return str(v)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_section(title: str, body: str) -> None:
    """Replace (or append) the ``## title`` section of docs/benchmarks.md."""
    DOC.parent.mkdir(parents=True, exist_ok=True)
    text = DOC.read_text() if DOC.exists() else HEADER
    section = f"## {title}\n\n{body.strip()}\n\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section
    DOC.write_text(text.rstrip() + "\n")
