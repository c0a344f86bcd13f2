"""Report: the result of running a suite, with everything needed to reproduce it.

The dict form (:meth:`Report.to_dict`) is the contract: JSON, HTML, Markdown and the service all
read it. Wall-clock values live only under keys named ``created``, ``timings`` and ``time_s``,
so two runs with the same seed give the same JSON once those keys are dropped.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from stalwart._io import TMP_MARK, remove_stale, temp_prefix
from stalwart.checks.base import CheckResult, Status, plain, worst_status
from stalwart.errors import InputError
from stalwart.report._text import report_problem
from stalwart.report.compliance import compliance_map
from stalwart.report.summaries import headline

__all__ = ["Report", "SCHEMA_VERSION", "TIMING_KEYS", "json_safe", "package_versions", "drop_timings",
           "model_family_of", "TMP_MARK"]

# 1.1: results carry "figures"; the report carries "compliance" (readers of 1.0 ignore both)
# 1.2: the model carries "family"; scorecard headlines name the cause (see report.summaries)
SCHEMA_VERSION = "1.2"
#: keys whose values depend on the clock, not on the seed
TIMING_KEYS: frozenset[str] = frozenset({"created", "timings", "time_s"})


def json_safe(value: Any) -> Any:
    """Plain JSON values: numpy to Python, tuples to lists, NaN and infinities to None.

    Anything else (an object, a set, bytes) raises :class:`~stalwart.errors.InputError` naming
    where it sits: JSON cannot hold it, and a silent ``str()`` would not read back as the value.
    """
    return _json_safe(plain(value), "value")


def _json_safe(value: Any, where: str) -> Any:
    if isinstance(value, dict):
        return {k: _json_safe(plain(v), f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(plain(v), f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (str, int, float)):  # bool is an int
        return value
    raise InputError(f"json_safe: {where} is of type {type(value).__name__}, which JSON cannot hold; convert it to a "
                     "number, string, list or dict first (e.g. str(x) or x.tolist()).")


def drop_timings(d: Any) -> Any:
    """``d`` without the clock-dependent keys (for comparing two runs)."""
    if isinstance(d, Mapping):
        return {k: drop_timings(v) for k, v in d.items() if k not in TIMING_KEYS}
    if isinstance(d, list):
        return [drop_timings(v) for v in d]
    return d


def package_versions() -> dict[str, str]:
    """Versions of Python and the libraries a result depends on."""
    from importlib import metadata

    out = {"python": platform.python_version()}
    for dist, key in (("numpy", "numpy"), ("torch", "torch"), ("scikit-learn", "sklearn"), ("pandas", "pandas")):
        try:
            out[key] = metadata.version(dist)
        except metadata.PackageNotFoundError:  # pragma: no cover - all are dependencies
            out[key] = "not installed"
    return out


#: wrapped-model classes and the family a report names them by (class names, so that the optional
#: ONNX runtime need not be imported to recognise an ONNX model)
_FAMILY_CLASSES = {"SklearnModel": "sklearn", "TorchModel": "torch", "OnnxModel": "onnx",
                   "FunctionModel": "function"}


def model_family_of(model: Any) -> str:
    """``"sklearn"``, ``"torch"``, ``"onnx"`` or ``"function"`` for a wrapped model; ``"none"`` for None.

    A wrapper that holds another model in ``base`` (range scaling, decoding) takes the family of
    the model inside; any other Model subclass counts as ``"function"`` (an opaque callable).
    """
    if model is None:
        return "none"
    for _ in range(8):  # wrappers nest a few deep at most; never loop on a cycle
        for cls in type(model).__mro__:
            if cls.__name__ in _FAMILY_CLASSES:
                return _FAMILY_CLASSES[cls.__name__]
        inner = getattr(model, "base", None)
        if inner is None:
            break
        model = inner
    return "function"


def _stalwart_version() -> str:
    from stalwart import __version__

    return __version__


@dataclass(frozen=True)
class Report:
    """Everything one suite run produced.

    Build one with :meth:`from_run` (``Suite.run`` does) or :meth:`from_dict` / :meth:`load`.
    """

    results: list[CheckResult]
    model: dict[str, Any]
    data: dict[str, Any]
    suite: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    versions: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    created: str = ""
    stalwart_version: str = ""
    schema_version: str = SCHEMA_VERSION

    @classmethod
    def from_run(cls, *, model: Any, data: Any, results: list[CheckResult], suite: Mapping[str, Any],
                 seed: int, total_s: float) -> Report:
        """A report for ``results`` of running ``suite`` on a wrapped model and a Dataset."""
        model_info = {
            "name": model.name, "family": model_family_of(model), "task": model.task,
            "classes": None if model.classes is None else plain(np.asarray(model.classes)),
            "fingerprint": model.fingerprint(), "differentiable": bool(model.differentiable),
            "output_kind": model.output_kind,
        }
        return cls(results=list(results), model=model_info, data=json_safe(data.describe()),
                   suite=json_safe(dict(suite)), seed=int(seed), versions=package_versions(),
                   timings={"total_s": float(total_s)},
                   created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                   stalwart_version=_stalwart_version())

    # -- summaries -----------------------------------------------------------------------------
    @property
    def status(self) -> Status:
        """Worst status over the checks that ran; SKIP only when every check was skipped."""
        ran = [r.status for r in self.results if r.status is not Status.SKIP]
        if not ran:
            return Status.SKIP if self.results else Status.PASS
        return worst_status(ran)

    @property
    def passed(self) -> bool:
        """True when no check failed or errored."""
        return all(r.status not in (Status.FAIL, Status.ERROR) for r in self.results)

    @property
    def scorecard(self) -> dict[str, dict[str, Any]]:
        """Per category: status, the headline of its worst check, and the checks in it."""
        cards: dict[str, dict[str, Any]] = {}
        for cat in dict.fromkeys(r.category for r in self.results):
            members = [r for r in self.results if r.category == cat]
            ran = [r.status for r in members if r.status is not Status.SKIP]
            status = worst_status(ran) if ran else Status.SKIP
            lead = next((r for r in members if r.status is status), members[0])
            cards[cat] = {"status": status.value, "headline": headline(lead.to_dict()),
                          "checks": [r.check for r in members]}
        return cards

    # -- dict / JSON ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe dict; ``compliance`` is derived from the results each time."""
        return json_safe({
            "schema_version": self.schema_version, "stalwart_version": self.stalwart_version,
            "created": self.created, "model": self.model, "data": self.data, "suite": self.suite,
            "seed": self.seed, "versions": self.versions, "timings": self.timings,
            "status": self.status.value, "passed": self.passed, "scorecard": self.scorecard,
            "results": [r.to_dict() for r in self.results],
            "compliance": compliance_map(self.results),
        })

    def to_json(self) -> str:
        """JSON text: sorted keys, indent 2, NaN written as null."""
        return json.dumps(self.to_dict(), sort_keys=True, indent=2, allow_nan=False) + "\n"

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Report:
        """The report of a report dict (:meth:`to_dict`, or a loaded ``report.json``)."""
        return cls._from_dict(d, "this")

    @classmethod
    def _from_dict(cls, d: Any, source: str) -> Report:
        problem = report_problem(d)
        if problem:
            raise InputError(f"{source} is not a stalwart report: it is {problem}; pass a report.json written by "
                             "stalwart (or Report.to_dict()).")
        version = str(d.get("schema_version", ""))
        major = SCHEMA_VERSION.split(".")[0]
        if version.split(".")[0] != major:
            raise InputError(f"report schema_version {version!r} is not readable by this stalwart (reads {major}.x); "
                             "re-run the scan with this stalwart, or install the stalwart version that wrote it.")
        return cls(results=[CheckResult.from_dict(r) for r in d["results"]], model=dict(d["model"]),
                   data=dict(d.get("data") or {}), suite=dict(d.get("suite") or {}), seed=int(d.get("seed", 0)),
                   versions=dict(d.get("versions") or {}), timings=dict(d.get("timings") or {}),
                   created=str(d.get("created") or ""), stalwart_version=str(d.get("stalwart_version") or ""),
                   schema_version=version)

    @classmethod
    def from_json(cls, text: str, *, source: str = "the report") -> Report:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{source} is not valid JSON ({exc}); pass a report.json written by stalwart") from None
        return cls._from_dict(d, source)

    @classmethod
    def load(cls, path: str | Path) -> Report:
        """Read a ``report.json`` (or a directory containing one)."""
        if not isinstance(path, (str, os.PathLike)):
            raise InputError(f"Report.load(path=...) must be a file path (str or pathlib.Path); got "
                             f"{type(path).__name__}. For a report dict in memory, use Report.from_dict(d).")
        p = Path(path)
        if p.is_dir():
            p = p / "report.json"
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InputError(f"cannot read report {str(p)!r}: it does not exist; check the path.") from None
        except OSError as exc:
            raise InputError(f"cannot read report {str(p)!r}: {exc.strerror or exc}; check that it is a readable "
                             "file.") from None
        return cls.from_json(text, source=f"report {str(p)!r}")

    # -- rendering -----------------------------------------------------------------------------
    def to_html(self) -> str:
        from stalwart.report.html import render_html

        return render_html(self.to_dict())

    def to_markdown(self) -> str:
        from stalwart.report.markdown import render_markdown

        return render_markdown(self.to_dict())

    def to_junit(self, *, strict: bool = False) -> str:
        """JUnit XML: one testcase per check (FAIL -> failure, ERROR -> error, SKIP -> skipped;
        with ``strict``, WARN -> failure too)."""
        from stalwart.report.junit import render_junit

        return render_junit(self.to_dict(), strict=strict)

    def save(self, out_dir: str | Path, *, strict: bool = False) -> Path:
        """Write ``index.html``, ``report.json``, ``report.md`` and ``junit.xml`` into ``out_dir``.

        Everything is rendered first and written to a temporary directory beside ``out_dir``
        (``.<name>.stalwart-tmp.<pid>.<host>.<random>``); only then are the files moved into place,
        so an error leaves no half-written output. A process killed mid-save cannot clean up: the
        next save removes such directories whose process is gone. Files get the usual permissions
        (0666 less the umask). ``strict`` marks warnings as failures in ``junit.xml`` (as the
        command line's ``--strict`` does for its exit code).
        """
        from stalwart.report import html, junit, markdown  # module attributes, so tests can patch them

        out = Path(out_dir)
        d = self.to_dict()
        files = {"report.json": json.dumps(d, sort_keys=True, indent=2, allow_nan=False) + "\n",
                 "index.html": html.render_html(d), "report.md": markdown.render_markdown(d),
                 "junit.xml": junit.render_junit(d, strict=strict)}
        parent = out.resolve().parent
        parent.mkdir(parents=True, exist_ok=True)
        remove_stale(parent)
        tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(out.name), dir=parent))
        try:
            for name, text in files.items():
                (tmp / name).write_text(text, encoding="utf-8")
            out.mkdir(parents=True, exist_ok=True)
            for name in files:
                os.replace(tmp / name, out / name)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return out
