"""One-line summaries of a check result: the headline (what was measured, where it went worst, and
which way is better), the verdict against its conditions, and the report's title.

Every function reads only the result dict (``CheckResult.to_dict()`` or a loaded ``report.json``),
so a report re-rendered from JSON says the same. A number appears once, written as the glossary
says (:func:`number`); when a threshold is close, it gets the digits needed to tell them apart.

Headlines are looked up by check name in :data:`HEADLINES`; a check without an entry gets the
generic "metric value (direction)" line. A plug-in check adds its own with::

    @register_headline("my_check")
    def _my_check(result: Mapping[str, Any]) -> str | None: ...
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from stalwart.checks.base import Condition
from stalwart.errors import ConfigError
from stalwart.report._text import notes_of, require_check_name, require_result, shorten
from stalwart.report.glossary import direction, format_value, lookup

__all__ = ["HEADLINES", "register_headline", "headline", "verdict", "condition_detail", "number", "report_title",
           "metric_value", "MAX_NAMED"]

HeadlineFn = Callable[[Mapping[str, Any]], "str | None"]
#: headline builders by check name
HEADLINES: dict[str, HeadlineFn] = {}
#: columns (perturbations, ...) named in a headline before "and N more"
MAX_NAMED = 10
_MAX_DIGITS = 6
_STATUS_ORDER = ("ERROR", "FAIL", "WARN", "PASS")
_EPS_UNITS = {"raw": "input units", "range": "fraction of each feature's range"}


def register_headline(check: str) -> Callable[[HeadlineFn], HeadlineFn]:
    """Decorator: use the function as the headline of results of ``check``.

    The function takes the result dict and returns the headline, or None to fall back to the
    generic one (for example when the metric it explains is missing).
    """
    require_check_name("register_headline", check)

    def deco(fn: HeadlineFn) -> HeadlineFn:
        HEADLINES[check] = fn
        return fn
    return deco


# -- numbers --------------------------------------------------------------------------------------
def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def metric_value(result: Mapping[str, Any], name: str | None) -> float | None:
    """The value of metric ``name`` in ``result``, or None when missing or not finite."""
    m = (result.get("metrics") or {}).get(name or "")
    v = m.get("value") if isinstance(m, Mapping) else None
    return float(v) if _finite(v) else None


def _conditions(result: Mapping[str, Any]) -> list[tuple[dict[str, Any], Condition | None]]:
    out = []
    for c in result.get("conditions") or []:
        try:
            out.append((c, Condition.parse(str(c.get("condition")))))
        except ConfigError:
            out.append((c, None))
    return out


def _digits(result: Mapping[str, Any], name: str, value: float) -> int | None:
    """Decimals for ``value`` so that it never prints equal to a threshold it is not equal to."""
    entry = lookup(name)
    if entry is None or entry.style != "fixed":
        return None
    digits = entry.digits
    levels = [lv for _, cond in _conditions(result) if cond is not None and cond.metric == name
              for lv in (cond.threshold, cond.warn) if lv is not None]
    while digits < _MAX_DIGITS and any(value != lv and round(value, digits) == round(lv, digits) for lv in levels):
        digits += 1
    return digits


def number(result: Mapping[str, Any], name: str, value: float | None = None) -> str:
    """Metric ``name`` of ``result`` (or ``value``) as written in every summary of this result.

    Examples
    --------
    >>> r = {"metrics": {"accuracy_drop_s3": {"value": 0.0504}},
    ...      "conditions": [{"condition": "accuracy_drop_s3 <= 0.1 warn 0.05"}]}
    >>> number(r, "accuracy_drop_s3")
    '0.0504'
    """
    v = metric_value(result, name) if value is None else value
    if v is None:
        return "–"
    return format_value(name, v, _digits(result, name, v))


def _rows(result: Mapping[str, Any], table: str) -> list[Mapping[str, Any]]:
    return [r for r in (result.get("tables") or {}).get(table) or [] if isinstance(r, Mapping)]


def _names(items: list[str]) -> str:
    shown = ", ".join(items[:MAX_NAMED])
    return shown + (f" and {len(items) - MAX_NAMED} more" if len(items) > MAX_NAMED else "")


def _better(name: str) -> str:
    d = direction(name)
    return f" ({d})" if d else ""


# -- the headline ---------------------------------------------------------------------------------
def headline(result: Mapping[str, Any]) -> str:
    """What the check found, in one line that names the cause.

    SKIP and ERROR results say why; otherwise the check's entry in :data:`HEADLINES` (or the
    generic "metric value (direction)") explains the headline metric.

    Examples
    --------
    >>> r = {"check": "natural_robustness", "status": "FAIL", "headline_metric": "accuracy_drop_s3",
    ...      "metrics": {"accuracy_drop_s3": {"value": 0.4035}},
    ...      "tables": {"perturbations": [
    ...          {"perturbation": "unit_scale", "severity": 3, "drop": 0.4035, "status": "ok"},
    ...          {"perturbation": "unit_scale", "severity": 5, "drop": 0.53, "status": "ok"}]}}
    >>> headline(r)
    'accuracy drop 0.404 under unit_scale, severity 3 (lower is better)'
    """
    require_result(result, "headline")
    status = result.get("status")
    message = str(result.get("message") or "")
    if status == "SKIP":
        # "not applicable: ..." and "not meaningful: ..." say why already
        return shorten(message if message.startswith("not ") else f"skipped: {message}", 200)
    if status == "ERROR" and not result.get("metrics"):
        return shorten("error: " + message.removeprefix("the check failed: "), 200)
    fn = HEADLINES.get(str(result.get("check")))
    text = None
    if fn is not None:
        try:
            text = fn(result)
        except (KeyError, TypeError, ValueError, IndexError):  # an odd table must not sink the report
            text = None
    text = text or _generic(result)
    unjudged = [str(c.get("condition")) for c in result.get("conditions") or [] if c.get("status") == "ERROR"]
    if unjudged:
        text += f"; cannot judge {', '.join(unjudged)}"
    return text


def _generic(result: Mapping[str, Any]) -> str:
    name = result.get("headline_metric")
    if name and metric_value(result, name) is not None:
        entry = lookup(name)
        label = entry.label if entry is not None else name
        return f"{label} {number(result, name)}{_better(name)}"
    return shorten(notes_of(result) or result.get("message") or "", 200)


@register_headline("clean_performance")
def _clean(r: Mapping[str, Any]) -> str | None:
    # older reports name the score "accuracy" / "rmse"
    acc = next((k for k in ("clean_accuracy", "accuracy") if metric_value(r, k) is not None), None)
    if acc is not None:
        text = f"accuracy {number(r, acc)}"
        if metric_value(r, "majority_rate") is not None:
            text += f" against {number(r, 'majority_rate')} for always answering the majority class"
        return text + " (higher is better)"
    rmse = next((k for k in ("clean_rmse", "rmse") if metric_value(r, k) is not None), None)
    if rmse is not None:
        text = f"RMSE {number(r, rmse)}"
        if metric_value(r, "baseline_rmse") is not None:
            text += f" against {number(r, 'baseline_rmse')} for predicting the mean"
        return text + " (lower is better)"
    return None


@register_headline("natural_robustness")
def _natural(r: Mapping[str, Any]) -> str | None:
    name = str(r.get("headline_metric") or "")
    value = metric_value(r, name)
    if value is None:
        return None
    rows = _rows(r, "perturbations")
    col = "increase" if "rmse" in name else "drop"
    m = re.search(r"_s(\d+)$", name)
    cut = int(m.group(1)) if m else None
    cells = [row for row in rows if row.get("status") == "ok" and _finite(row.get(col))
             and (cut is None or (_finite(row.get("severity")) and row["severity"] <= cut))]
    entry = lookup(name)
    text = f"{entry.label if entry else name} {number(r, name)}"
    if cells:
        # the cell the metric was taken from: equal to it, else the worst (older reports)
        worst = next((row for row in cells if abs(row[col] - value) <= 1e-12), None) \
            or max(cells, key=lambda row: row[col])
        text += f" under {worst.get('perturbation')}, severity {worst.get('severity')}"
    text += _better(name)
    failed = list(dict.fromkeys(str(row.get("perturbation")) for row in rows if row.get("status") == "error"))
    if failed:
        text += f"; the model raised an error on {_names(failed)}"
    return text


def _eps_metric(r: Mapping[str, Any], eps: float) -> str | None:
    for key in r.get("metrics") or {}:
        if key.startswith("robust_accuracy_at_"):
            try:
                if math.isclose(float(key.removeprefix("robust_accuracy_at_")), eps, rel_tol=1e-9):
                    return key
            except ValueError:
                continue
    return None


@register_headline("adversarial_robustness")
def _adversarial(r: Mapping[str, Any]) -> str | None:
    eps = metric_value(r, "reference_eps")
    key = None if eps is None else _eps_metric(r, eps)
    if key is None or metric_value(r, key) is None:
        return None
    params, evaluation = r.get("params") or {}, next(iter(_rows(r, "evaluation")), {})
    norm = params.get("norm") or evaluation.get("norm")
    # the evaluation table names the unit; reports without it measured fractions of the range
    unit = evaluation.get("eps_unit") or _EPS_UNITS.get(str(params.get("eps_unit")), "fraction of the input range")
    unit = f"{norm}, {unit}" if norm else unit
    text = f"robust accuracy {number(r, key)} at eps {eps:g} ({unit})"
    if metric_value(r, "robust_accuracy_ratio") is not None:
        text += f", {number(r, 'robust_accuracy_ratio')} of clean accuracy"
    text += " (higher is better)"
    if metric_value(r, "white_box") == 0.0:
        text += "; black-box attacks only, so an upper bound"
    return text


@register_headline("hardening_tradeoff")
def _hardening_tradeoff(r: Mapping[str, Any]) -> str | None:
    rows = _rows(r, "tradeoff")
    if len(rows) < 2 or metric_value(r, "best_robust_accuracy") is None:
        return None
    best = max(rows[1:], key=lambda row: (row["robust_accuracy"], row["clean_accuracy"]))
    return (f"{best['option']} is the most robust option: robust accuracy {number(r, 'baseline_robust_accuracy')} → "
            f"{number(r, 'best_robust_accuracy')}, clean accuracy {number(r, 'baseline_clean_accuracy')} → "
            f"{number(r, 'best_option_clean_accuracy')}")


@register_headline("text_adversarial_robustness")
def _text_adversarial(r: Mapping[str, Any]) -> str | None:
    if metric_value(r, "robust_accuracy") is None:
        return None
    budget = (r.get("params") or {}).get("max_change")
    within = f" (up to {budget:.0%} of the words)" if _finite(budget) else ""
    text = f"robust accuracy {number(r, 'robust_accuracy')} under word substitution{within}"
    if metric_value(r, "robust_accuracy_ratio") is not None:
        text += f", {number(r, 'robust_accuracy_ratio')} of clean accuracy"
    return text + " (higher is better)"


@register_headline("corruption_robustness")
def _corruption(r: Mapping[str, Any]) -> str | None:
    name = str(r.get("headline_metric") or "")
    if metric_value(r, name) is None:
        return None
    rows = [row for row in _rows(r, "corruptions") if _finite(row.get("mean_error"))]
    entry = lookup(name)
    text = f"{entry.label if entry else name} {number(r, name)}"
    if name == "mce":
        text += " relative to the baseline model" if metric_value(r, "baseline_clean_error") is not None \
            else " relative to the clean error"
    if rows:
        worst = max(rows, key=lambda row: row["mean_error"])
        text += f" over {len(rows)} corruption{'s' if len(rows) != 1 else ''}, worst {worst.get('corruption')}"
    return text + _better(name)


@register_headline("behavioural_tests")
def _behaviour(r: Mapping[str, Any]) -> str | None:
    if metric_value(r, "worst_failure_rate") is None:
        return None
    rows = [row for row in _rows(r, "tests") if _finite(row.get("failure_rate"))]
    text = f"worst failure rate {number(r, 'worst_failure_rate')}"
    if rows:
        worst = max(rows, key=lambda row: row["failure_rate"])
        text += f" in {worst.get('name') or worst.get('test')}"
    return text + " (lower is better)"


@register_headline("ood_detection")
def _ood(r: Mapping[str, Any]) -> str | None:
    if metric_value(r, "best_auroc") is None:
        return None
    proto = next(iter(_rows(r, "protocol")), {})
    text = f"best AUROC {number(r, 'best_auroc')}"
    if proto.get("best_detector"):
        text += f" with {proto['best_detector']}"
    if proto.get("ood_source"):
        text += f" against {proto['ood_source']} OOD inputs"
    return text + " (higher is better)"


def _drifted(r: Mapping[str, Any]) -> str | None:
    rows = _rows(r, "columns")
    if not rows:
        return None
    drifted = [str(row.get("column")) for row in rows if row.get("drifted") is True]
    text = f"{len(drifted)} of {len(rows)} column{'s' if len(rows) != 1 else ''} drifted"
    return text + (f": {_names(drifted)}" if drifted else "")


@register_headline("data_drift")
def _data_drift(r: Mapping[str, Any]) -> str | None:
    text = _drifted(r)
    if text is not None and metric_value(r, "accuracy_drop") is not None:
        text += f"; accuracy drop {number(r, 'accuracy_drop')} from reference to current (lower is better)"
    return text


@register_headline("multivariate_drift")
def _multivariate(r: Mapping[str, Any]) -> str | None:
    if r.get("headline_metric") == "classifier_auc" and metric_value(r, "classifier_auc") is not None:
        text = (f"domain-classifier AUC {number(r, 'classifier_auc')} (0.5 = the samples are indistinguishable; "
                "lower is better)")
        top = next(iter(_rows(r, "importances")), None)
        if top is not None and _finite(top.get("auc_drop")) and top["auc_drop"] > 0:
            text += f"; most telling column: {top.get('column')}"
        return text
    if metric_value(r, "mmd_p_value") is not None:
        return (f"MMD p-value {number(r, 'mmd_p_value')} (higher is better; small = the joint distribution "
                "shifted)")
    return None


# -- verdict and condition details ----------------------------------------------------------------
def condition_detail(result: Mapping[str, Any], condition: Mapping[str, Any]) -> str:
    """A condition's verdict with the metric written as in the headline (``0.404 violates <= 0.1``);
    the stored message when the condition cannot be re-read or was not judged."""
    try:
        cond = Condition.parse(str(condition.get("condition")))
    except ConfigError:
        return str(condition.get("message") or "")
    value = metric_value(result, cond.metric)
    status = condition.get("status")
    if value is None or status not in ("PASS", "WARN", "FAIL"):
        return str(condition.get("message") or "")
    shown = number(result, cond.metric, value)
    if status == "FAIL":
        return f"{shown} violates {cond.op} {cond.threshold:g}"
    if status == "WARN" and cond.warn is not None:
        return f"{shown} is within {cond.op} {cond.threshold:g} but not {cond.op} {cond.warn:g}"
    level = cond.warn if cond.warn is not None else cond.threshold
    return f"{shown} satisfies {cond.op} {level:g}"


def verdict(result: Mapping[str, Any]) -> str:
    """The result against its conditions, without repeating the headline's number: ``fails
    accuracy_drop_s3 <= 0.1``; a check's own warning when no condition explains its status;
    ``""`` for SKIP and for an ERROR whose headline already says what went wrong."""
    require_result(result, "verdict")
    status = result.get("status")
    if status == "SKIP" or (status == "ERROR" and not result.get("metrics")):
        return ""
    conds = result.get("conditions") or []
    worst = sorted((c for c in conds if c.get("status") in _STATUS_ORDER[:3]),
                   key=lambda c: _STATUS_ORDER.index(c["status"]))
    if worst:
        c = worst[0]
        text = str(c.get("condition"))
        try:
            cond = Condition.parse(text)
        except ConfigError:
            cond = None
        if c["status"] == "FAIL":
            phrase = f"fails {text}"
        elif c["status"] == "WARN" and cond is not None and cond.warn is not None:
            phrase = f"passes {cond.metric} {cond.op} {cond.threshold:g}, not the warn level {cond.warn:g}"
        elif c["status"] == "WARN":
            phrase = f"warns on {text}"
        else:
            phrase = f"cannot judge {text}: {cond.metric if cond else 'its metric'} was not measured"
        return phrase + (f" (and {len(worst) - 1} more)" if len(worst) > 1 else "")
    notes = notes_of(result)
    if status == "WARN" and notes:
        return shorten(f"warning: {notes}", 200)
    if conds:
        return "passes " + "; ".join(str(c.get("condition")) for c in conds)
    return "measured (no conditions)"


def report_title(report: Mapping[str, Any]) -> str:
    """``"Drift report"`` when every check is a drift check, else ``"Robustness report"``."""
    results = report.get("results") or []
    if results and all(r.get("category") == "drift" for r in results):
        return "Drift report"
    return "Robustness report"
