"""Check, Condition and CheckResult: measuring is separate from judging.

A :class:`Check` measures one thing on (model, dataset) and returns metrics (each with a
confidence interval where one exists), tables and curves. :class:`Condition` objects then turn
the metrics into PASS / WARN / FAIL. A measurement that raises becomes ERROR instead of crashing
the suite; a check that does not apply (a black-box model for a white-box attack) is SKIP.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import math
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, ClassVar, NamedTuple

import numpy as np

from stalwart._registry import Registry
from stalwart._validation import check_seed, param_error
from stalwart.errors import ConfigError, InputError, StalwartError

__all__ = ["Status", "Metric", "Condition", "CheckResult", "Check", "Measurement", "SkipCheck", "error_text",
           "CHECKS", "register", "get", "names", "build", "worst_status", "MIN_SAMPLES", "plain", "first_sentence",
           "note_rows", "notes_first"]

#: fewer samples than this and a check does not measure (status SKIP, the reason in its message):
#: a 95% interval from a handful of rows is too wide to support any verdict
MIN_SAMPLES = 30


class Status(str, Enum):
    """Outcome of a check or condition. ``str`` so it compares and serialises as its name."""

    PASS = "PASS"
    WARN = "WARN"
    FAIL = "FAIL"
    ERROR = "ERROR"
    SKIP = "SKIP"

    def __str__(self) -> str:
        return self.value


# how bad each status is when several are combined; SKIP says nothing about robustness
_RANK = {Status.SKIP: -1, Status.PASS: 0, Status.WARN: 1, Status.FAIL: 2, Status.ERROR: 3}


def worst_status(statuses: Sequence[Status | str], empty: Status = Status.PASS) -> Status:
    """The most severe status (ERROR > FAIL > WARN > PASS > SKIP); ``empty`` when none given."""
    if isinstance(statuses, (str, bytes, Mapping)) or not isinstance(statuses, Iterable):
        raise param_error("worst_status", "statuses", f"a list of statuses (names from {[s.value for s in Status]})",
                          statuses)
    items = [_status(s, "worst_status(statuses=...)") for s in statuses]
    return max(items, key=_RANK.__getitem__) if items else empty


def _status(value: Any, name: str) -> Status:
    """``value`` as a :class:`Status`, or a :class:`ConfigError` naming the valid ones."""
    try:
        return Status(value)
    except ValueError:
        raise ConfigError(f"{name} holds {value!r}, which is not a status; use one of "
                          f"{[s.value for s in Status]} (or Status.PASS, ...).") from None


def plain(value: Any) -> Any:
    """Numpy scalars and tuples to plain Python, recursively (for dicts, JSON and YAML)."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return [plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Enum):
        return value.value
    return value


@dataclass(frozen=True)
class Metric:
    """A measured number with an optional confidence interval and sample count."""

    name: str
    value: float
    low: float | None = None
    high: float | None = None
    n: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise param_error(self, "name", "a metric name (non-empty string)", self.name)
        for arg in ("value", "low", "high"):
            v = getattr(self, arg)
            if v is None and arg != "value":
                continue
            # NaN is allowed: a metric that could not be measured is NaN (and judged ERROR)
            if not _is_number(v):
                raise param_error(self, arg, "a number" + ("" if arg == "value" else " or None"), v)
        n = self.n
        if n is not None and (isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0):
            raise param_error(self, "n", "a sample count (an integer >= 0) or None", n)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": _num(self.value), "low": _num(self.low),
                "high": _num(self.high), "n": None if self.n is None else int(self.n)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Metric:
        nan = float("nan")
        try:
            return cls(d["name"], nan if d.get("value") is None else float(d["value"]),
                       None if d.get("low") is None else float(d["low"]),
                       None if d.get("high") is None else float(d["high"]),
                       None if d.get("n") is None else int(d["n"]))
        except (KeyError, TypeError, ValueError, AttributeError):  # not a dict, no name, text for a number
            shown = repr(d) if len(repr(d)) <= 120 else repr(d)[:119] + "…"
            raise InputError(f"{shown} is not a metric dict; a metric is {{'name', 'value', 'low', 'high', 'n'}} "
                             "with numbers (or null) for the values. Pass Metric.to_dict() or a metric of a "
                             "report.json as written.") from None

    def format(self, digits: int = 3) -> str:
        """``0.912 [0.871, 0.943]`` — the value with its interval when there is one."""
        if self.value is None or not math.isfinite(self.value):
            return "n/a"
        text = f"{self.value:.{digits}f}"
        if self.low is not None and self.high is not None:
            text += f" [{self.low:.{digits}f}, {self.high:.{digits}f}]"
        return text


def _is_number(v: Any) -> bool:
    if isinstance(v, (str, bytes, bool, np.bool_)):
        return False
    try:
        float(v)
    except (TypeError, ValueError):
        return False
    return True


def _num(v: Any) -> float | None:
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


_OPS = {"<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b,
        "<": lambda a, b: a < b, ">": lambda a, b: a > b}
_CONDITION_RE = re.compile(
    r"^\s*(?P<metric>[A-Za-z_][\w.]*)\s*(?P<op><=|>=|<|>)\s*(?P<threshold>[-+]?[\d.]+(?:[eE][-+]?\d+)?)"
    r"\s*(?:,?\s*warn\s*(?P<warn>[-+]?[\d.]+(?:[eE][-+]?\d+)?))?\s*$")


@dataclass(frozen=True)
class Condition:
    """A pass/fail rule on one metric: ``metric op threshold``, with an optional warning level.

    ``threshold`` is where FAIL starts; ``warn`` (on the strict side of it) is where WARN starts.
    For ``accuracy_drop_s3 <= 0.10 warn 0.05``: a drop of at most 0.05 is PASS, above 0.05 up to
    0.10 is WARN, above 0.10 is FAIL. A metric the check did not measure (or measured as NaN)
    gives ERROR.

    Parameters
    ----------
    metric : name of a metric of the check's result
    op : "<=", ">=", "<" or ">" — what must hold for the metric not to fail
    threshold : the failing boundary
    warn : optional stricter boundary; the same op against it must hold for PASS
    description : optional human sentence shown in reports

    Examples
    --------
    >>> c = Condition.parse("accuracy_drop_s3 <= 0.10 warn 0.05")
    >>> c.evaluate({"accuracy_drop_s3": Metric("accuracy_drop_s3", 0.07)})[0]
    <Status.WARN: 'WARN'>
    """

    metric: str
    op: str
    threshold: float
    warn: float | None = None
    description: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.metric, str) or not self.metric:
            raise param_error(self, "metric", "a metric name (non-empty string)", self.metric)
        if self.op not in _OPS:
            raise param_error(self, "op", f"one of {list(_OPS)}", self.op)
        for name in ("threshold", "warn"):
            v = getattr(self, name)
            if v is None and name == "warn":
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) \
                    or not math.isfinite(v):
                raise param_error(self, name, "a finite number", v)
            object.__setattr__(self, name, float(v))
        if self.warn is not None:
            stricter = self.warn <= self.threshold if self.op in ("<=", "<") else self.warn >= self.threshold
            if not stricter:
                side = "<=" if self.op in ("<=", "<") else ">="
                raise param_error(self, "warn", f"a level {side} threshold={self.threshold} (the stricter "
                                  f"side of a '{self.op}' condition)", self.warn)

    @classmethod
    def parse(cls, text: str, description: str | None = None) -> Condition:
        """Parse ``"metric op threshold"`` with an optional ``"warn value"`` suffix.

        Examples: ``"accuracy_drop_s3 <= 0.05"``, ``"robust_accuracy_ratio >= 0.5 warn 0.7"``.
        """
        if not isinstance(text, str):
            raise ConfigError(f"a condition must be a string like 'accuracy_drop_s3 <= 0.05'; got {text!r}")
        m = _CONDITION_RE.match(text)
        if m is None:
            raise ConfigError(
                f"cannot parse condition {text!r}; write it as '<metric> <op> <number>' with op one of "
                "<=, >=, <, >, optionally followed by 'warn <number>', e.g. 'accuracy_drop_s3 <= 0.10 warn 0.05'"
            )
        try:
            threshold = float(m["threshold"])
            warn = None if m["warn"] is None else float(m["warn"])
        except ValueError:
            raise ConfigError(f"cannot parse the numbers in condition {text!r}") from None
        return cls(m["metric"], m["op"], threshold, warn, description)

    @classmethod
    def coerce(cls, value: Condition | str | Mapping[str, Any]) -> Condition:
        """A Condition from itself, its string form or its dict form."""
        if isinstance(value, Condition):
            return value
        if isinstance(value, str):
            return cls.parse(value)
        if isinstance(value, Mapping):
            return cls.from_dict(value)
        raise ConfigError(f"a condition must be a string, a dict or a Condition; got {value!r}")

    def evaluate(self, metrics: Mapping[str, Metric]) -> tuple[Status, str]:
        """Judge ``metrics``; returns (status, message)."""
        metric = metrics.get(self.metric)
        if metric is None or metric.value is None or not math.isfinite(metric.value):
            known = ", ".join(sorted(metrics)) or "none"
            why = "was not measured" if metric is None else "is not a finite number"
            return Status.ERROR, f"{self.metric} {why} (metrics: {known}); cannot judge '{self}'"
        value = float(metric.value)
        shown = f"{self.metric} = {value:.4g}"
        if not _OPS[self.op](value, self.threshold):
            return Status.FAIL, f"{shown} violates {self.op} {self.threshold:g}"
        if self.warn is not None and not _OPS[self.op](value, self.warn):
            return Status.WARN, f"{shown} is within {self.op} {self.threshold:g} but not {self.op} {self.warn:g}"
        return Status.PASS, f"{shown} satisfies {self.op} {(self.warn if self.warn is not None else self.threshold):g}"

    def __str__(self) -> str:
        text = f"{self.metric} {self.op} {self.threshold:g}"
        return text if self.warn is None else f"{text} warn {self.warn:g}"

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "op": self.op, "threshold": self.threshold, "warn": self.warn,
                "description": self.description}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Condition:
        unknown = sorted(set(d) - {"metric", "op", "threshold", "warn", "description"})
        if unknown:
            raise ConfigError(f"condition {dict(d)!r} has unknown key(s) {unknown}; "
                              "use metric, op, threshold, warn, description")
        missing = [k for k in ("metric", "op", "threshold") if k not in d]
        if missing:
            raise ConfigError(f"condition {dict(d)!r} lacks {missing}")
        return cls(d["metric"], d["op"], d["threshold"], d.get("warn"), d.get("description"))


@dataclass(frozen=True)
class CheckResult:
    """What one check run produced. ``to_dict()`` is the form the JSON, HTML and service use.

    ``conditions`` holds one dict per condition: ``{"condition", "status", "message"}`` (plus
    ``"description"`` when given). ``tables`` maps a name to a list of row dicts. ``curves`` maps
    a name to ``{"title", "x_label", "y_label", "series": [{"name", "x", "y", "low", "high"}]}``.
    ``figures`` maps a name to any other picture, by ``kind``:

    - ``{"kind": "heatmap", "title", "rows": [...], "cols": [...], "values": [[...]], "row_label",
      "col_label", "value_label", "vmin", "vmax"}`` (values may hold None for missing cells)
    - ``{"kind": "histogram", "title", "x_label", "series": [{"name", "edges": [...], "counts": [...]}]}``
    - ``{"kind": "bars", "title", "x_label", "y_label", "labels": [...], "values": [...], "low", "high"}``:
      ``x_label`` names the value (along the bars), ``y_label`` the categories in ``labels``
    - ``{"kind": "image_examples", "title", "value_range": [lo, hi], "items": [{"caption", "before",
      "after"}]}`` with images as nested lists C x H x W (small images only)
    - ``{"kind": "text_examples", "title", "items": [{"original", "perturbed", "label",
      "pred_before", "pred_after"}]}`` (real model failures only)
    """

    check: str
    category: str
    status: Status
    metrics: dict[str, Metric] = field(default_factory=dict)
    conditions: list[dict[str, Any]] = field(default_factory=list)
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    curves: dict[str, dict[str, Any]] = field(default_factory=dict)
    figures: dict[str, dict[str, Any]] = field(default_factory=dict)
    message: str = ""
    time_s: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)
    headline_metric: str | None = None

    @property
    def headline(self) -> str:
        """The check's key number, formatted (``"accuracy_drop_s3 = 0.021 [...]"``), or ``""``."""
        m = self.metrics.get(self.headline_metric or "")
        return f"{m.name} = {m.format()}" if m is not None else ""

    @property
    def passed(self) -> bool:
        return self.status not in (Status.FAIL, Status.ERROR)

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check, "category": self.category, "status": self.status.value,
            "metrics": {k: m.to_dict() for k, m in self.metrics.items()},
            "conditions": plain(self.conditions), "tables": plain(self.tables),
            "curves": plain(self.curves), "figures": plain(self.figures),
            "message": self.message, "time_s": float(self.time_s),
            "params": plain(self.params), "headline_metric": self.headline_metric,
            "headline": self.headline,
            # JSON is written with sorted keys; this keeps the order metrics, tables and columns
            # were produced in, so a page rendered from the JSON reads like one from the live result
            "layout": {"metrics": list(self.metrics),
                       "tables": [[name, _columns(rows)] for name, rows in self.tables.items()]},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CheckResult:
        what = "a check result dict (CheckResult.to_dict(), or an entry of the 'results' of a report.json)"
        if not isinstance(d, Mapping):
            raise InputError(f"CheckResult.from_dict needs {what}; got {type(d).__name__}.")
        missing = [k for k in ("check", "category", "status") if k not in d]
        if missing:
            raise InputError(f"this is not a check result: it lacks {missing}; pass {what}.")
        try:
            status = Status(d["status"])
        except ValueError:
            raise InputError(f"check result {d['check']!r} has status {d['status']!r}, which is not a status; "
                             f"a result's status is one of {[s.value for s in Status]}. Pass {what}.") from None
        d = ordered(d)
        return cls(
            check=d["check"], category=d["category"], status=status,
            metrics={k: Metric.from_dict(m) for k, m in (d.get("metrics") or {}).items()},
            conditions=list(d.get("conditions") or []), tables=dict(d.get("tables") or {}),
            curves=dict(d.get("curves") or {}), figures=dict(d.get("figures") or {}),
            message=d.get("message") or "",
            time_s=float(d.get("time_s") or 0.0), params=dict(d.get("params") or {}),
            headline_metric=d.get("headline_metric"),
        )


def _columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    return list(dict.fromkeys(k for row in rows for k in row))


def ordered(d: Mapping[str, Any]) -> dict[str, Any]:
    """A result dict with metrics, tables and row keys back in their ``layout`` order."""
    d = dict(d)
    layout = d.get("layout") or {}
    metrics = d.get("metrics") or {}
    names = [k for k in layout.get("metrics", []) if k in metrics]
    d["metrics"] = {k: metrics[k] for k in names + [k for k in metrics if k not in names]}
    tables = d.get("tables") or {}
    out: dict[str, Any] = {}
    for name, cols in layout.get("tables", []):
        if name in tables:
            out[name] = [{c: row[c] for c in cols if c in row} | row for row in tables[name]]
    out.update({k: v for k, v in tables.items() if k not in out})
    d["tables"] = out
    return d


class Measurement(NamedTuple):
    """What :meth:`Check._measure` returns. ``warnings`` (one line each) make the status at least
    WARN and are shown in the result's message. ``not_meaningful`` (a reason) means the numbers
    were measured but cannot be judged (a model at chance level is "robust" because it is never
    right): the result keeps them, its status is SKIP and no condition is judged."""

    metrics: dict[str, Metric]
    tables: dict[str, list[dict[str, Any]]]
    curves: dict[str, dict[str, Any]]
    warnings: tuple[str, ...] = ()
    figures: dict[str, dict[str, Any]] = {}  # noqa: RUF012 - NamedTuple default, never mutated
    not_meaningful: str = ""


def first_sentence(message: str, limit: int = 120) -> str:
    """The first sentence of a message, for one-line summaries (tables keep it whole),
    shortened at a word boundary."""
    head = message.split(". ")[0].rstrip(".")
    return head if len(head) <= limit else head[:limit].rsplit(" ", 1)[0] + " …"


def note_rows(message_notes: list[str], other: list[str]) -> list[dict[str, Any]]:
    """A ``notes`` table: what the reader must know to trust the number (``message_notes``, which
    :func:`notes_first` puts at the start of the message) and the rest."""
    return [{"note": t, "_in_message": True} for t in message_notes] + \
           [{"note": t, "_in_message": False} for t in other]


def notes_first(result: CheckResult) -> CheckResult:
    """The result with its ``notes`` table's message notes opening its message."""
    lines = [r["note"] for r in result.tables.get("notes", []) if r.get("_in_message")]
    if not lines or result.status in (Status.SKIP, Status.ERROR):
        return result
    return dataclasses.replace(result, message="; ".join([*lines, result.message]))


def error_text(exc: BaseException) -> str:
    """What went wrong, on one line and whole: a stalwart error's own message (it says how to fix
    it), else the library's exception type and message (TorchScript's interpreter stack left out)."""
    if isinstance(exc, StalwartError):
        return " ".join(str(exc).split())
    from stalwart.models.base import short_error

    return short_error(exc, limit=1000)


class SkipCheck(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Raised inside :meth:`Check._measure` when the check does not apply; becomes SKIP."""


class Check(ABC):
    """Base of every check. Subclasses set ``name``, ``category``, ``modalities``,
    ``default_conditions`` and ``headline_metric`` and write ``_measure``.

    Parameters are keyword-only and stored by the constructor; ``conditions`` (strings, dicts or
    :class:`Condition` objects) replaces the check's defaults, ``[]`` means "measure only".
    """

    name: ClassVar[str]
    category: ClassVar[str]
    modalities: ClassVar[tuple[str, ...]] = ("tabular", "image", "text")
    default_conditions: ClassVar[tuple[str, ...]] = ()
    headline_metric: ClassVar[str | None] = None
    #: the smallest sample the check measures on (see :data:`MIN_SAMPLES`)
    min_samples: ClassVar[int] = MIN_SAMPLES

    def __init__(self, *, conditions: Sequence[Condition | str | Mapping[str, Any]] | None = None) -> None:
        if conditions is not None and (isinstance(conditions, (str, Mapping)) or not isinstance(conditions, Sequence)):
            raise param_error(self, "conditions", "a list of conditions (strings, dicts or Condition)", conditions)
        self.conditions = None if conditions is None else [Condition.coerce(c) for c in conditions]

    # -- what subclasses provide ---------------------------------------------------------------
    @abstractmethod
    def _measure(self, model: Any, data: Any, rng: np.random.Generator) -> Measurement | tuple:
        """Measure; return a :class:`Measurement` (or a (metrics, tables, curves) tuple).

        Raise :class:`SkipCheck` when the check does not apply to this model or data.
        """

    def conditions_for(self, model: Any, data: Any) -> list[Condition]:
        """The conditions in force: the user's, or the defaults for this model and data."""
        if self.conditions is not None:
            return list(self.conditions)
        return [Condition.parse(c) for c in self.default_conditions]

    def headline_for(self, model: Any) -> str | None:
        """Name of the metric that sums the result up in a scorecard."""
        return self.headline_metric

    def prepare(self, model: Any, data: Any) -> Any:
        """The data as this check measures it, after the model was shown to take it.

        Default: :func:`~stalwart.models.compat.check_compatible` (columns matched to the model's
        by name, a probe batch through the model); bad input raises before any measuring.
        """
        from stalwart.models.compat import check_compatible

        return check_compatible(model, data)

    def metric_names(self, model: Any, data: Any) -> tuple[str, ...] | None:
        """The metrics this check can produce on this model and data, as names or ``fnmatch``
        patterns (``mce_*``); None when the check cannot say. A condition naming any other
        metric is refused before the check runs (see :meth:`validate`)."""
        return None

    def validate(self, model: Any, data: Any) -> None:
        """Raise a :class:`~stalwart.errors.StalwartError` for input this check cannot take."""
        if data.modality not in self.modalities:
            raise ConfigError(f"check {self.name!r} runs on {', '.join(self.modalities)} data; "
                              f"the data is {data.modality}. Remove it from the suite for this data.")
        produced = self.metric_names(model, data)
        for cond in self.conditions or ():
            if produced is not None and not any(fnmatch.fnmatchcase(cond.metric, p) for p in produced):
                close = difflib.get_close_matches(cond.metric, [p for p in produced if "*" not in p], n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise ConfigError(f"check {self.name!r}: the condition '{cond}' names the metric {cond.metric!r}, "
                                  f"which this check does not measure here; it measures {', '.join(produced)}.{hint}")

    # -- the fixed steps -----------------------------------------------------------------------
    def params(self) -> dict[str, Any]:
        """Constructor parameters other than ``conditions``, as plain values (YAML/JSON-safe)."""
        return {k: plain(v) for k, v in vars(self).items() if not k.startswith("_") and k != "conditions"}

    def run(self, model: Any, data: Any, seed: int = 0) -> CheckResult:
        """Measure ``model`` on ``data`` and judge the result with the check's conditions.

        Bad input (wrong modality, labels the model does not know) raises; anything that goes
        wrong while measuring gives a result with status ERROR and the error in its message.
        ``model`` is anything :func:`stalwart.wrap` accepts (or None for data-only checks).
        """
        from stalwart.data.dataset import Dataset

        check_seed(f"{type(self).__name__}.run", seed)
        if data is not None and not isinstance(data, Dataset):
            raise InputError(f"{type(self).__name__}.run(data=...) must be a stalwart Dataset; got "
                             f"{type(data).__name__}. Build one with stalwart.Dataset.from_arrays(x, y).")
        if model is not None:  # imported here: a data-only check (drift) never loads torch
            from stalwart.models import wrap

            model = wrap(model)
        self.validate(model, data)
        if model is not None and data is not None:
            data = self.prepare(model, data)
        conditions = self.conditions_for(model, data)
        rng = np.random.default_rng(seed)
        start = time.perf_counter()
        common = {"check": self.name, "category": self.category, "params": self.params(),
                  "headline_metric": self.headline_for(model)}
        try:
            if data is not None and len(data) < self.min_samples:
                raise SkipCheck(f"not applicable: the data has {len(data)} sample(s) and this check needs at "
                                f"least {self.min_samples} for a meaningful 95% interval; pass more data")
            out = self._measure(model, data, rng)
        except SkipCheck as exc:
            return CheckResult(status=Status.SKIP, message=str(exc), time_s=time.perf_counter() - start,
                               **common)
        except Exception as exc:  # noqa: BLE001 - a failing measurement must not crash the suite
            kind = "" if isinstance(exc, StalwartError) else f"{type(exc).__name__}: "
            return CheckResult(status=Status.ERROR, message=f"the check failed: {kind}{exc}",
                               time_s=time.perf_counter() - start, **common)
        m = out if isinstance(out, Measurement) else Measurement(*out)
        if m.not_meaningful:
            judged = [{"condition": str(c), "status": Status.SKIP.value, "message": "not judged: the measurement is "
                       "not meaningful"} for c in conditions]
            return CheckResult(status=Status.SKIP, metrics=dict(m.metrics), conditions=judged, tables=dict(m.tables),
                               curves=dict(m.curves), figures=dict(m.figures),
                               message=f"not meaningful: {m.not_meaningful}", time_s=time.perf_counter() - start,
                               **common)
        judged = []
        for cond in conditions:
            status, message = cond.evaluate(m.metrics)
            entry = {"condition": str(cond), "status": status.value, "message": message}
            if cond.description:
                entry["description"] = cond.description
            judged.append(entry)
        status = worst_status([j["status"] for j in judged])
        lines = [j["message"] for j in judged if j["status"] != Status.PASS.value]
        if m.warnings:
            status = worst_status([status, Status.WARN])
            lines = list(m.warnings) + lines
        if not lines:
            lines = [j["message"] for j in judged] or ["measured (no conditions)"]
        return CheckResult(status=status, metrics=dict(m.metrics), conditions=judged, tables=dict(m.tables),
                           curves=dict(m.curves), figures=dict(m.figures), message="; ".join(lines),
                           time_s=time.perf_counter() - start, **common)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"


#: built-ins are the modules of :mod:`stalwart.checks`; third parties use the entry-point group
CHECKS: Registry[Check] = Registry("check", "stalwart.checks", package="stalwart.checks")
register = CHECKS.register


def names(**attrs: Any) -> list[str]:
    """Registered check names, filtered by class attributes (``names(category="drift")``)."""
    return CHECKS.names(**attrs)


def get(name: str, **params: Any) -> Check:
    """An instance of the check registered as ``name``; unknown parameters raise ConfigError."""
    return CHECKS.create(name, **params)


def build(spec: Mapping[str, Any]) -> Check:
    """A check from its config dict ``{"check": name, "params": {...}, "conditions": [...]}``."""
    if not isinstance(spec, Mapping) or "check" not in spec:
        raise ConfigError(f"each entry of 'checks' must be a mapping with a 'check' name; got {spec!r}")
    unknown = sorted(set(spec) - {"check", "params", "conditions"})
    if unknown:
        raise ConfigError(f"check entry {spec.get('check')!r} has unknown key(s) {unknown}; "
                          "use check, params, conditions")
    params = dict(spec.get("params") or {})
    if "conditions" in params:
        raise ConfigError(f"check {spec['check']!r}: put conditions next to params, not inside them")
    if "conditions" in spec:
        conds = spec["conditions"]
        params["conditions"] = [] if conds is None else conds
    return get(spec["check"], **params)
