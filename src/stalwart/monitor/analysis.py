"""Windows and their analysis, run off the request path by the service's worker (or by a test).

A window is a run of consecutive batches of one model that holds at least the model's
``window_rows`` rows (a batch is never split) or, for a model with ``window_seconds``, that closes
earlier when a batch starts that many seconds (by its rows' timestamps) after the window's first
row; windows are cut from the batches as they arrive, independently of the reference, which stays
the model's registered set. The last window waits for the batch that closes it. Each window is judged
once, against the reference:

- per-column drift with :func:`stalwart.shift.detect_drift` (its automatic test per column and
  its multiple-testing correction across the columns), giving ``drift_share`` (Wilson interval
  over the columns judged), ``n_drifted`` and ``drifted``;
- prediction drift, when the reference holds predictions: the same test on the prediction
  column (``prediction_drift`` 1/0 and its ``prediction_drift_statistic``);
- realised ``accuracy`` (classification; Wilson interval) or ``mae`` (regression) over the rows
  whose labels have arrived, refreshed on later passes as labels keep arriving (into the
  :data:`LABEL_WINDOWS` most recent windows that still miss labels).

Every metric is stored as ``{"value", "low", "high", "n"}``, the shape of a check's metric, so
alert rules judge it with the suites' :class:`~stalwart.checks.Condition`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from stalwart._stats import wilson_interval
from stalwart.errors import InputError
from stalwart.monitor.ingest import frame
from stalwart.monitor.store import Store, check_store

__all__ = ["analyze", "window_metrics", "label_metrics"]

log = logging.getLogger("stalwart.monitor")
#: how many of the most recent windows still missing labels a pass joins new labels into
LABEL_WINDOWS = 100


def _metric(value: float, low: float | None = None, high: float | None = None, n: int | None = None
            ) -> dict[str, Any]:
    def clean(v: Any) -> float | None:
        return None if v is None or not math.isfinite(float(v)) else float(v)
    return {"value": clean(value), "low": clean(low), "high": clean(high), "n": n}


def _rate(successes: int, n: int) -> dict[str, Any]:
    low, high = wilson_interval(successes, n)
    return _metric(successes / n, float(low), float(high), n)


def window_metrics(reference: Mapping[str, Any], window: Mapping[str, Any], model: Mapping[str, Any]
                   ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Drift metrics of one window's columns against the reference, and the per-column table.

    ``reference`` and ``window`` are stored columns (``{"inputs": {...}, "prediction": [...]}``).
    """
    from stalwart.shift import detect_drift

    kinds = model["columns"]
    config = model["config"]
    options = {"method": config.get("drift_method", "auto"), "alpha": config.get("alpha", 0.05),
               "correction": config.get("correction", "bonferroni")}
    n = len(window["prediction"])
    metrics: dict[str, Any] = {"n_rows": _metric(n, n=n)}
    table: list[dict[str, Any]] = []
    try:
        result = detect_drift(frame(reference["inputs"], kinds), frame(window["inputs"], kinds), **options)
    except InputError as exc:  # no column with enough values in the window: nothing to judge
        metrics["drift_error"] = {"value": None, "low": None, "high": None, "n": None, "message": str(exc)}
    else:
        table = [f.to_dict() for f in result.features]
        judged = [f for f in result.features if f.test != "too_few_samples"]
        n_drifted = sum(f.drifted for f in judged)
        if judged:
            metrics["drift_share"] = _rate(n_drifted, len(judged))
        metrics["n_drifted"] = _metric(n_drifted, n=len(judged))
        metrics["drifted"] = _metric(float(result.drifted), n=len(judged))
    if "prediction" in reference:
        pred_kind = "numeric" if model["task"] == "regression" else "categorical"
        ref_pred = frame({"prediction": reference["prediction"]}, {"prediction": pred_kind})
        cur_pred = frame({"prediction": window["prediction"]}, {"prediction": pred_kind})
        if model["task"] != "regression":
            ref_pred, cur_pred = ref_pred.astype(str), cur_pred.astype(str)
        try:
            pred = detect_drift(ref_pred, cur_pred, **options)
        except InputError:
            pass
        else:
            (f,) = pred.features
            metrics["prediction_drift"] = _metric(float(f.drifted))
            metrics["prediction_drift_statistic"] = _metric(f.statistic)
            table.append({**f.to_dict(), "feature": "<prediction>"})
    return metrics, table


def label_metrics(predictions: list[Any], labels: list[Any], task: str) -> dict[str, Any]:
    """Realised accuracy (classification, Wilson interval) or MAE (regression, normal interval)
    over the rows that have a label (``labels`` holds None for the others)."""
    pairs = [(p, y) for p, y in zip(predictions, labels) if y is not None]
    out: dict[str, Any] = {"n_labelled": _metric(len(pairs), n=len(predictions))}
    if not pairs:
        return out
    if task == "regression":
        err = np.abs(np.array([p for p, _ in pairs], dtype=float) - np.array([y for _, y in pairs], dtype=float))
        half = 1.96 * err.std(ddof=1) / math.sqrt(len(err)) if len(err) > 1 else math.nan
        out["mae"] = _metric(err.mean(), err.mean() - half, err.mean() + half, len(err))
    else:
        out["accuracy"] = _rate(sum(p == y for p, y in pairs), len(pairs))
    return out


def _joined(values: list[Any]) -> Any:
    if all(isinstance(v, np.ndarray) for v in values):
        return np.concatenate(values)
    return [x for v in values for x in v]


def _stitch(parts: list[dict[str, Any]], kinds: Mapping[str, str]) -> dict[str, Any]:
    """One window's columns from its batches' (float columns stay arrays)."""
    out: dict[str, Any] = {"inputs": {c: _joined([p["inputs"][c] for p in parts]) for c in kinds}}
    for key in ("prediction", "row_id", "timestamp"):
        out[key] = _joined([p[key] for p in parts])
    return out


def _new_windows(store: Store, model: dict[str, Any]) -> list[int]:
    reference = store.reference(model["id"])
    if reference is None:
        return []  # nothing to compare with yet: batches wait for a reference
    last = store.last_window(model["id"])
    after, seq = (-1, 0) if last is None else (last.last_batch, last.seq + 1)
    size = int(model["config"].get("window_rows", 1000))
    span = model["config"].get("window_seconds")
    made: list[int] = []
    pending: list[Any] = []

    def close() -> None:
        nonlocal seq, pending
        parts = store.batch_data(model["id"], pending[0].id, pending[-1].id)
        window = _stitch(parts, model["columns"])
        metrics, table = window_metrics(reference, window, model)
        labels = store.labels_for(model["id"], window["row_id"])
        lm = label_metrics(window["prediction"], [labels.get(r) for r in window["row_id"]], model["task"])
        metrics.update(lm)
        store.add_window(model["id"], seq=seq, first_batch=pending[0].id, last_batch=pending[-1].id,
                         n_rows=sum(b.n_rows for b in pending), start_ts=min(b.first_ts for b in pending),
                         end_ts=max(b.last_ts for b in pending), n_labelled=int(lm["n_labelled"]["value"]),
                         metrics=metrics, drift=table)
        made.append(seq)
        seq, pending = seq + 1, []

    for batch in store.batches_after(model["id"], after):
        # a time window closes when a batch starts past its span (by the rows' timestamps)
        if pending and span is not None and batch.first_ts >= min(b.first_ts for b in pending) + span:
            close()
        pending.append(batch)
        if sum(b.n_rows for b in pending) >= size:
            close()
    return made


def _refresh_labels(store: Store, model: dict[str, Any]) -> int:
    """Recompute the label metrics of windows that lack labels when new labels have arrived."""
    newest = store.last_label_id(model["id"])
    if newest <= model["labels_seen"]:
        return 0
    changed = 0
    # bounded work per pass: labels are joined into the most recent windows still missing some
    for w in store.windows(model["id"], incomplete_labels=True, limit=LABEL_WINDOWS, newest=True):
        parts = store.batch_data(model["id"], w["first_batch"], w["last_batch"])
        window = _stitch(parts, model["columns"])
        labels = store.labels_for(model["id"], window["row_id"])
        if len(labels) == w["n_labelled"]:
            continue
        metrics = {k: v for k, v in w["metrics"].items() if k not in ("accuracy", "mae", "n_labelled")}
        lm = label_metrics(window["prediction"], [labels.get(r) for r in window["row_id"]], model["task"])
        store.update_window(w["id"], {**metrics, **lm}, int(lm["n_labelled"]["value"]))
        changed += 1
    store.set_labels_seen(model["id"], newest)
    return changed


def analyze(store: Store, model_id: int | None = None) -> dict[str, Any]:
    """One pass of the worker: cut and judge the windows that are complete, refresh label metrics,
    and move every alert rule through the new windows. Safe to call at any time, from one thread
    at a time (the service's worker, or a test).

    Returns ``{"windows": {model_id: [seq, ...]}, "relabelled": n, "alerts": [event, ...],
    "errors": {model_id: message}}``. Without ``model_id`` every model is analysed and one that
    fails is logged and listed under ``errors`` while the others go on; with it, the error is raised.
    """
    from stalwart.monitor.alerts import judge_rules

    check_store(store, "analyze")
    ids = store.model_ids() if model_id is None else [model_id]
    out: dict[str, Any] = {"windows": {}, "relabelled": 0, "alerts": [], "errors": {}}
    for mid in ids:
        try:
            model = store.model_by_id(mid)
            made = _new_windows(store, model)
            if made:
                out["windows"][mid] = made
            out["relabelled"] += _refresh_labels(store, model)
            out["alerts"] += judge_rules(store, mid)
        except Exception as exc:  # noqa: BLE001 - one model's failure must not stop the others'
            if model_id is not None:
                raise
            log.exception("analysing model %s failed; the next pass retries it", mid)
            out["errors"][mid] = f"{type(exc).__name__}: {exc}"
    return out

