"""Streaming change detectors of a monitored model, fed row by row as its windows are analysed.

A model's ``streams`` setting (at registration) says what to watch, each entry
``{"on": ..., "detector": ..., "params": {...}}``:

- ``on``: ``"output"`` -- the model's output per row: the top class probability when the batches
  log ``probabilities``, else the ``score`` they log, else (a binary classifier) 1 where the
  prediction is the second class, and a regression model's prediction -- or an input column
  (numeric, integer or boolean);
- ``detector``: a registered streaming detector (:mod:`stalwart.shift.streaming`: ``adwin``,
  ``page_hinkley``, ``kswin``, ``ddm`` for 0/1 streams, or a plug-in), with its ``params``.

Without the setting a model watches its output with ADWIN, where the batches give an output (a
multi-class model that logs neither probabilities nor a score has none, and no stream).

Each window feeds its rows in arrival order; a row without a value (a missing input, a row that
logged no probabilities) is skipped. The detectors' state is saved with the window, in the same
transaction (``details["stream_state"]``), and the next window starts from it, so the streams
run on across restarts of the service exactly as they would have without one. Per window:
``stream_changes`` (alarms of all the model's streams) and ``stream_changes_<on>_<detector>``,
with where each alarm fell (row id, timestamp, index in the stream) in the window's details.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from stalwart.errors import ConfigError, InputError

__all__ = ["DEFAULT_STREAMS", "check_streams", "stream_metric", "run_streams"]

#: what a model watches when its registration names no streams
DEFAULT_STREAMS = ({"on": "output", "detector": "adwin", "params": {}},)
#: input kinds a stream may watch
STREAM_KINDS = ("numeric", "integer", "boolean")


def stream_metric(spec: Mapping[str, Any]) -> str:
    """The per-window metric of one stream: ``stream_changes_<on>_<detector>`` (``on`` with every
    character that is not a letter, digit or underscore written as ``_``)."""
    return f"stream_changes_{re.sub(r'[^0-9A-Za-z_]', '_', spec['on'])}_{spec['detector']}"


def _detectors() -> Any:
    from stalwart.shift.base import DETECTORS

    return DETECTORS


def check_streams(specs: Any, columns: Mapping[str, str], task: str) -> list[dict[str, Any]]:
    """The ``streams`` of a registration, checked and written out in full; a
    :class:`~stalwart.errors.ConfigError` that says what to change otherwise."""
    if not isinstance(specs, list):
        raise ConfigError("'streams' is a list of {\"on\": \"output\" or a column, \"detector\": \"adwin\", "
                          "\"params\": {...}}")
    out: list[dict[str, Any]] = []
    watchable = [c for c, k in columns.items() if k in STREAM_KINDS]
    for i, spec in enumerate(specs):
        if not isinstance(spec, Mapping) or not isinstance(spec.get("on"), str):
            raise ConfigError(f"streams[{i}] needs 'on': \"output\" or one of the input columns {watchable}")
        unknown = sorted(set(spec) - {"on", "detector", "params"})
        if unknown:
            raise ConfigError(f"streams[{i}] has unknown field(s) {unknown}; a stream has 'on', 'detector' and "
                              "'params'")
        on, name, params = spec["on"], spec.get("detector", "adwin"), spec.get("params") or {}
        if on != "output" and on not in columns:
            raise ConfigError(f"streams[{i}] watches {on!r}, which is neither \"output\" nor an input column; "
                              f"use one of {['output', *watchable]}")
        if on != "output" and columns[on] not in STREAM_KINDS:
            raise ConfigError(f"streams[{i}] watches {on!r}, a {columns[on]} column; a stream detector watches "
                              f"numbers: use \"output\" or one of {watchable}")
        if not isinstance(params, Mapping):
            raise ConfigError(f"streams[{i}]: 'params' is a dict of the detector's parameters")
        if name not in _detectors().names(kind="stream"):
            raise ConfigError(f"streams[{i}]: {name!r} is not a streaming detector; use one of "
                              f"{_detectors().names(kind='stream')}")
        try:
            made = _detectors().create(name, **params)  # its own checks, with their messages
            made.get_state()  # and its state can be saved (a plug-in's may not)
        except (TypeError, ValueError, OverflowError) as exc:
            raise ConfigError(f"streams[{i}]: {name!r} cannot be made with params {dict(params)}: {exc}") from None
        full = {"on": on, "detector": name, "params": dict(params)}
        if any(stream_metric(o) == stream_metric(full) for o in out):
            raise ConfigError(f"streams[{i}] repeats {on!r} with {name!r}; each stream and detector once")
        out.append(full)
    return out


def _output(window: Mapping[str, Any], model: Mapping[str, Any]) -> np.ndarray | None:
    """The model's output per row of a window (NaN where a row has none), or None without one."""
    if model["task"] != "classification":
        return np.asarray(window["prediction"], dtype=np.float64)
    if "probabilities" in window:
        return np.array([np.nan if p is None else max(p) for p in window["probabilities"]], dtype=np.float64)
    if "score" in window:
        return np.asarray(window["score"], dtype=np.float64)
    classes = model.get("classes") or []
    if len(classes) == 2:
        positive = classes[1]
        return np.array([float(p == positive) for p in window["prediction"]])
    return None


def _values(spec: Mapping[str, Any], window: Mapping[str, Any], model: Mapping[str, Any]) -> np.ndarray | None:
    if spec["on"] == "output":
        return _output(window, model)
    raw = window["inputs"][spec["on"]]
    if model["columns"][spec["on"]] == "boolean":
        return np.array([np.nan if v is None else float(v) for v in raw])
    return np.asarray(raw, dtype=np.float64)


def run_streams(window: Mapping[str, Any], model: Mapping[str, Any], state: Mapping[str, Any]
                ) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """Feed a window's rows to the model's stream detectors, starting from ``state`` (the previous
    window's); returns the window's metrics, what each stream saw, and the state to save.

    A stream whose detector refuses a value (``ddm`` given something other than 0 or 1) keeps its
    previous state and gets a note (``stream_note_<...>``) instead of a count.
    """
    from stalwart.shift.base import StreamDetector

    configured = model["config"].get("streams")
    specs = list(DEFAULT_STREAMS) if configured is None else configured
    metrics: dict[str, Any] = {}
    seen: list[dict[str, Any]] = []
    saved: dict[str, Any] = {}
    total, fed_any = 0, False
    for spec in specs:
        metric = stream_metric(spec)
        values = _values(spec, window, model)
        if values is None:
            if configured is not None:
                metrics.update(_note(metric, "no output stream: the batches log neither probabilities nor a "
                                             "score, and the model has more than two classes"))
            continue
        before = state.get(metric)
        detector = (StreamDetector.from_state(before) if before is not None
                    else _detectors().create(spec["detector"], **spec["params"]))
        rows = np.flatnonzero(np.isfinite(values))
        start = detector.n_seen
        try:
            fired = detector.update_many(values[rows])
        except InputError as exc:
            if before is not None:
                saved[metric] = before
            metrics.update(_note(metric, f"{spec['detector']} on {spec['on']!r}: {exc}"))
            continue
        detector.detected_at.clear()  # the window's details keep them; the state stays small
        if isinstance(getattr(detector, "warnings_at", None), list):
            detector.warnings_at.clear()
        at = [int(rows[i - start]) for i in fired]
        seen.append({"on": spec["on"], "detector": spec["detector"], "metric": metric, "fed": int(rows.size),
                     "skipped": int(values.size - rows.size), "n_seen": int(detector.n_seen),
                     "changes": [{"index": int(i), "row_id": str(window["row_id"][r]),
                                  "timestamp": float(window["timestamp"][r])} for i, r in zip(fired, at)],
                     **_summary(detector)})
        metrics[metric] = {"value": float(len(fired)), "low": None, "high": None, "n": int(rows.size)}
        saved[metric] = detector.get_state()
        total += len(fired)
        fed_any = True
    for metric, kept in state.items():  # a stream that got no values in this window keeps its state
        saved.setdefault(metric, kept)
    if fed_any:
        metrics["stream_changes"] = {"value": float(total), "low": None, "high": None,
                                     "n": int(sum(s["fed"] for s in seen))}
    return metrics, seen, saved


def _note(metric: str, message: str) -> dict[str, Any]:
    """``stream_note_<on>_<detector>``: a metric without a value that says why the stream has no count."""
    return {metric.replace("stream_changes_", "stream_note_", 1): {"value": None, "low": None, "high": None,
                                                                    "n": None, "message": message}}


def _summary(detector: Any) -> dict[str, Any]:
    """What a detector says about the stream now (ADWIN: its window's length and mean)."""
    out: dict[str, Any] = {}
    for name in ("width", "estimation"):
        value = getattr(detector, name, None)
        if isinstance(value, (int, float)) and np.isfinite(value):
            out[name] = float(value)
    return out
