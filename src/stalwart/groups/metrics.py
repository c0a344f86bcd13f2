"""Performance per group of people, and the disparity metrics of fairlearn and AIF360.

:func:`group_metrics` computes any of :data:`METRICS` overall and per group of one or several
sensitive columns (several columns: their intersections), with a 95% interval for each: Wilson
for rates (a count over a count), a bootstrap otherwise; and, per metric, the smallest and
largest group value, their difference and ratio, with bootstrap intervals (groups resampled
separately, so each keeps its size). A missing value in a sensitive column is a group of its own
("missing"), and the result says so.

The disparity functions follow the definitions of the two libraries exactly (named in each
docstring): fairlearn's compare every group (max minus min, min over max); AIF360's compare an
unprivileged group with a privileged one (unprivileged minus privileged, unprivileged over
privileged).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from stalwart._stats import wilson_interval
from stalwart._validation import check_lengths, param_error
from stalwart.errors import ConfigError, InputError

__all__ = ["METRICS", "GroupMetrics", "group_metrics", "demographic_parity_difference",
           "demographic_parity_ratio", "equalized_odds_difference", "equalized_odds_ratio",
           "equal_opportunity_difference", "statistical_parity_difference", "disparate_impact",
           "average_odds_difference", "predictive_parity_difference", "MISSING", "group_labels"]

MISSING = "missing"


# -- the metrics: (successes, trials) for rates, or a function of the rows ---------------------------------
def _counts(y: np.ndarray, p: np.ndarray, pos: Any) -> dict[str, int]:
    t, q = y == pos, p == pos
    return {"tp": int(np.sum(t & q)), "fp": int(np.sum(~t & q)), "fn": int(np.sum(t & ~q)), "tn": int(np.sum(~t & ~q))}


#: rate metrics as (numerator, denominator) over the confusion counts
RATES: dict[str, Callable[[dict[str, int]], tuple[int, int]]] = {
    "accuracy": lambda c: (c["tp"] + c["tn"], sum(c.values())),
    "error": lambda c: (c["fp"] + c["fn"], sum(c.values())),
    "selection_rate": lambda c: (c["tp"] + c["fp"], sum(c.values())),
    "tpr": lambda c: (c["tp"], c["tp"] + c["fn"]),
    "fnr": lambda c: (c["fn"], c["tp"] + c["fn"]),
    "fpr": lambda c: (c["fp"], c["fp"] + c["tn"]),
    "tnr": lambda c: (c["tn"], c["fp"] + c["tn"]),
    "precision": lambda c: (c["tp"], c["tp"] + c["fp"]),
}


def _f1(y: np.ndarray, p: np.ndarray, s: np.ndarray | None, pos: Any) -> float:
    c = _counts(y, p, pos)
    d = 2 * c["tp"] + c["fp"] + c["fn"]
    return float(2 * c["tp"] / d) if d else float("nan")


def _mean_score(y: np.ndarray, p: np.ndarray, s: np.ndarray | None, pos: Any) -> float:
    return float(np.mean(s)) if s is not None and len(s) else float("nan")


def _calibration_error(y: np.ndarray, p: np.ndarray, s: np.ndarray | None, pos: Any) -> float:
    """Expected calibration error of the positive-class score (10 equal-width bins): the bins'
    share-weighted gap between the positive rate and the mean score (Naeini et al., 2015)."""
    if s is None or not len(s):
        return float("nan")
    bins = np.clip((s * 10).astype(int), 0, 9)
    pos_rate = np.bincount(bins, weights=(y == pos).astype(float), minlength=10)
    score = np.bincount(bins, weights=s, minlength=10)
    return float(np.sum(np.abs(pos_rate - score)) / len(s))


#: metrics that are not a single rate (bootstrap intervals)
OTHERS: dict[str, Callable[..., float]] = {"f1": _f1, "mean_score": _mean_score,
                                           "calibration_error": _calibration_error}
#: metrics that need a score per sample (``y_score``: the positive class's probability)
SCORED = ("mean_score", "calibration_error")
METRICS: tuple[str, ...] = (*RATES, *OTHERS)


def _value(name: str, y: np.ndarray, p: np.ndarray, s: np.ndarray | None, pos: Any) -> float:
    if name in RATES:
        k, n = RATES[name](_counts(y, p, pos))
        return k / n if n else float("nan")
    return OTHERS[name](y, p, s, pos)


# -- the result ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GroupMetrics:
    """Per-group table, overall values and the spread between groups, each with an interval."""

    metrics: tuple[str, ...]
    sensitive: tuple[str, ...]
    by_group: list[dict[str, Any]]  # group, n, then per metric: value, low, high
    overall: dict[str, dict[str, float]]
    spread: dict[str, dict[str, float]]  # per metric: min, max, difference (+ low/high), ratio (+ low/high)
    notes: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    def frame(self) -> pd.DataFrame:
        """The per-group table as a DataFrame (one row per group)."""
        return pd.DataFrame(self.by_group)

    def worst(self, metric: str, higher_is_better: bool = True) -> dict[str, Any]:
        """The row of the group with the lowest (or highest) value of ``metric``."""
        rows = [r for r in self.by_group if np.isfinite(r[metric])]
        if not rows:
            raise ConfigError(f"no group has a value of {metric!r} (each group's denominator is 0)")
        return (min if higher_is_better else max)(rows, key=lambda r: r[metric])


def group_labels(sensitive: Any, n: int) -> tuple[np.ndarray, tuple[str, ...], list[str]]:
    """The group of each of ``n`` rows (a string; intersections joined with ' & '), the sensitive
    column names, and notes (missing values as their own group); refused input raises."""
    if isinstance(sensitive, pd.Series):
        frame = sensitive.to_frame(name=str(sensitive.name) if sensitive.name is not None else "group")
    elif isinstance(sensitive, pd.DataFrame):
        frame = sensitive
    else:
        arr = np.asarray(sensitive, dtype=object)
        if arr.ndim == 1:
            frame = pd.DataFrame({"group": arr})
        elif arr.ndim == 2:
            frame = pd.DataFrame(arr, columns=[f"group_{j}" for j in range(arr.shape[1])])
        else:
            raise InputError(f"sensitive must be one column (1-D) or a table of columns; got shape {arr.shape}.")
    if len(frame) != n:
        raise InputError(f"sensitive has {len(frame)} rows but y has {n}; pass one sensitive value per sample.")
    if frame.shape[1] == 0:
        raise InputError("sensitive has no columns; pass at least one sensitive column.")
    notes, parts = [], []
    for col in frame.columns:
        v = frame[col]
        missing = v.isna().to_numpy()
        if missing.any():
            notes.append(f"{int(missing.sum())} row(s) with no value in {col!r} form their own group "
                         f"({MISSING!r})")
        parts.append(np.where(missing, MISSING, v.astype(str).to_numpy()))
        if len(set(parts[-1].tolist())) < 2:
            raise InputError(f"sensitive column {col!r} has one value ({parts[-1][0]!r}) in this data, so there is "
                             "nothing to compare; pass a column with at least two groups.")
    labels = parts[0] if len(parts) == 1 else np.array([" & ".join(t) for t in zip(*parts)], dtype=object)
    return np.asarray(labels, dtype=object), tuple(str(c) for c in frame.columns), notes


def group_metrics(y_true: Any, y_pred: Any, sensitive: Any, *, metrics: Sequence[str] = ("accuracy",),
                  pos_label: Any = 1, y_score: Any = None, min_group_size: int = 1, n_boot: int = 1000,
                  seed: int = 0) -> GroupMetrics:
    """Metrics per group of ``sensitive`` (one column, or a table whose rows' combinations are the
    groups), with intervals; see the module docstring.

    ``metrics``: names from :data:`METRICS` (``mean_score`` and ``calibration_error`` need
    ``y_score``, the positive class's probability). A group smaller
    than ``min_group_size`` is refused (say so by lowering it, or merge groups). ``pos_label``: the
    positive class for the rates.
    """
    y = np.asarray(y_true)
    p = np.asarray(y_pred)
    if y.ndim != 1 or len(y) == 0:
        raise InputError(f"y_true must be a non-empty 1-D array of labels; got shape {y.shape}.")
    check_lengths("y_true", y, "y_pred", p)
    if isinstance(metrics, str) or not isinstance(metrics, Sequence) or not metrics:
        raise param_error("group_metrics", "metrics", f"a non-empty list of metric names from {list(METRICS)}",
                          metrics)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ConfigError(f"group_metrics: unknown metric(s) {unknown}; known: {list(METRICS)}")
    s = None
    if y_score is not None:
        s = np.asarray(y_score, dtype=float)
        check_lengths("y_true", y, "y_score", s)
        if "calibration_error" in metrics and (np.any(s < 0) or np.any(s > 1) or not np.isfinite(s).all()):
            raise InputError("group_metrics: calibration_error needs y_score as probabilities of pos_label in "
                             "[0, 1]; pass predict_proba(x)[:, positive column].")
    elif any(m in SCORED for m in metrics):
        wanted = [m for m in metrics if m in SCORED]
        raise ConfigError(f"group_metrics: metric(s) {wanted} need y_score (one score per sample: the positive "
                          "class's probability); pass it.")
    labels, columns, notes = group_labels(sensitive, len(y))
    names, inverse = np.unique(labels.astype(str), return_inverse=True)
    sizes = np.bincount(inverse, minlength=len(names))
    small = [f"{names[g]} ({sizes[g]})" for g in range(len(names)) if sizes[g] < min_group_size]
    if small:
        raise InputError(f"group(s) {small[:5]} have fewer than min_group_size={min_group_size} rows; their "
                         "numbers would be noise. Merge small groups, or lower min_group_size to accept them.")
    members = [np.flatnonzero(inverse == g) for g in range(len(names))]
    rng = np.random.default_rng(seed)

    def row_values(idx: np.ndarray) -> dict[str, float]:
        return {m: _value(m, y[idx], p[idx], None if s is None else s[idx], pos_label) for m in metrics}

    by_group = []
    for g, idx in enumerate(members):
        row: dict[str, Any] = {"group": str(names[g]), "n": int(len(idx))}
        for m in metrics:
            row.update(_with_interval(m, y[idx], p[idx], None if s is None else s[idx], pos_label, rng, n_boot))
        by_group.append(row)
    overall = {m: _with_interval(m, y, p, s, pos_label, rng, n_boot, key="value") for m in metrics}
    # between-group spread: groups resampled separately (stratified bootstrap)
    boots = {m: np.empty((n_boot, len(members))) for m in metrics}
    for b in range(n_boot):
        for g, idx in enumerate(members):
            take = idx[rng.integers(0, len(idx), len(idx))]
            vals = row_values(take)
            for m in metrics:
                boots[m][b, g] = vals[m]
    spread = {}
    for m in metrics:
        v = np.array([r[m] for r in by_group], dtype=float)
        lo, hi = np.nanmin(v) if np.isfinite(v).any() else np.nan, np.nanmax(v) if np.isfinite(v).any() else np.nan
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a resample where no group has a value: NaN, dropped
            diff_b = np.nanmax(boots[m], axis=1) - np.nanmin(boots[m], axis=1)
            ratio_b = np.nanmin(boots[m], axis=1) / np.nanmax(boots[m], axis=1)
        spread[m] = {"min": float(lo), "max": float(hi), "difference": float(hi - lo),
                     "difference_low": _q(diff_b, 0.025), "difference_high": _q(diff_b, 0.975),
                     "ratio": float(lo / hi) if hi else float("nan"),
                     "ratio_low": _q(ratio_b, 0.025), "ratio_high": _q(ratio_b, 0.975)}
    return GroupMetrics(metrics=tuple(metrics), sensitive=columns, by_group=by_group, overall=overall,
                        spread=spread, notes=tuple(notes))


def _q(values: np.ndarray, q: float) -> float:
    finite = values[np.isfinite(values)]
    return float(np.quantile(finite, q)) if finite.size else float("nan")


def _with_interval(m: str, y: np.ndarray, p: np.ndarray, s: np.ndarray | None, pos: Any, rng: np.random.Generator,
                   n_boot: int, key: str | None = None) -> dict[str, float]:
    name = key or m
    value = _value(m, y, p, s, pos)
    if m in RATES:
        k, n = RATES[m](_counts(y, p, pos))
        low, high = wilson_interval(k, n) if n else (float("nan"), float("nan"))
    else:
        draws = np.empty(n_boot)
        for b in range(n_boot):  # one resample at a time: memory stays that of the data
            i = rng.integers(0, len(y), len(y))
            draws[b] = _value(m, y[i], p[i], None if s is None else s[i], pos)
        low, high = _q(draws, 0.025), _q(draws, 0.975)
    return {name: float(value), f"{name}_low" if key is None else "low": float(low),
            f"{name}_high" if key is None else "high": float(high)}


# -- disparity metrics with the peers' definitions -------------------------------------------------------
def _per_group(metric: str, y_true: Any, y_pred: Any, sensitive: Any, pos_label: Any) -> dict[str, float]:
    y, p = np.asarray(y_true), np.asarray(y_pred)
    check_lengths("y_true", y, "y_pred", p)
    labels, _, _ = group_labels(sensitive, len(y))
    return {str(g): _value(metric, y[labels == g], p[labels == g], None, pos_label) for g in np.unique(labels)}


def _spread(values: dict[str, float], how: str) -> float:
    v = np.array(list(values.values()), dtype=float)
    if how == "difference":
        return float(v.max() - v.min())
    return float(v.min() / v.max()) if v.max() > 0 else float("nan")


def demographic_parity_difference(y_true: Any, y_pred: Any, *, sensitive_features: Any, pos_label: Any = 1) -> float:
    """Largest minus smallest selection rate ``P(y_pred = pos)`` over the groups
    (fairlearn ``demographic_parity_difference``, ``method="between_groups"``)."""
    return _spread(_per_group("selection_rate", y_true, y_pred, sensitive_features, pos_label), "difference")


def demographic_parity_ratio(y_true: Any, y_pred: Any, *, sensitive_features: Any, pos_label: Any = 1) -> float:
    """Smallest over largest selection rate over the groups (fairlearn ``demographic_parity_ratio``)."""
    return _spread(_per_group("selection_rate", y_true, y_pred, sensitive_features, pos_label), "ratio")


def equalized_odds_difference(y_true: Any, y_pred: Any, *, sensitive_features: Any, pos_label: Any = 1) -> float:
    """The larger of the between-group differences of the true-positive and of the false-positive
    rate (fairlearn ``equalized_odds_difference``, ``agg="worst_case"``)."""
    return max(_spread(_per_group(r, y_true, y_pred, sensitive_features, pos_label), "difference")
               for r in ("tpr", "fpr"))


def equalized_odds_ratio(y_true: Any, y_pred: Any, *, sensitive_features: Any, pos_label: Any = 1) -> float:
    """The smaller of the between-group ratios of the true-positive and of the false-positive rate
    (fairlearn ``equalized_odds_ratio``, ``agg="worst_case"``)."""
    return min(_spread(_per_group(r, y_true, y_pred, sensitive_features, pos_label), "ratio") for r in ("tpr", "fpr"))


def _pair(metric: str, y_true: Any, y_pred: Any, sensitive: Any, privileged: Any, pos_label: Any) -> tuple[float, float]:
    values = _per_group(metric, y_true, y_pred, sensitive, pos_label)
    key = str(privileged)
    if key not in values:
        raise ConfigError(f"privileged group {privileged!r} is not among the groups {sorted(values)}; pass one of "
                          "them.")
    others = [g for g in values if g != key]
    if len(others) != 1:
        raise ConfigError(f"AIF360's metrics compare two groups; the data has {len(values)}: {sorted(values)}. "
                          "Pass a sensitive column with the privileged group and one other, or use the fairlearn "
                          "metrics (all groups).")
    return values[others[0]], values[key]


def statistical_parity_difference(y_true: Any, y_pred: Any, *, sensitive_features: Any, privileged: Any,
                                  pos_label: Any = 1) -> float:
    """``P(y_pred = pos | unprivileged) - P(y_pred = pos | privileged)`` (AIF360
    ``ClassificationMetric.statistical_parity_difference``)."""
    u, p = _pair("selection_rate", y_true, y_pred, sensitive_features, privileged, pos_label)
    return u - p


def disparate_impact(y_true: Any, y_pred: Any, *, sensitive_features: Any, privileged: Any,
                     pos_label: Any = 1) -> float:
    """``P(y_pred = pos | unprivileged) / P(y_pred = pos | privileged)`` (AIF360
    ``ClassificationMetric.disparate_impact``)."""
    u, p = _pair("selection_rate", y_true, y_pred, sensitive_features, privileged, pos_label)
    return u / p if p else float("nan")


def equal_opportunity_difference(y_true: Any, y_pred: Any, *, sensitive_features: Any, privileged: Any,
                                 pos_label: Any = 1) -> float:
    """``TPR(unprivileged) - TPR(privileged)`` (AIF360
    ``ClassificationMetric.equal_opportunity_difference``)."""
    u, p = _pair("tpr", y_true, y_pred, sensitive_features, privileged, pos_label)
    return u - p


def average_odds_difference(y_true: Any, y_pred: Any, *, sensitive_features: Any, privileged: Any,
                            pos_label: Any = 1) -> float:
    """``((FPR_u - FPR_p) + (TPR_u - TPR_p)) / 2`` (AIF360
    ``ClassificationMetric.average_odds_difference``)."""
    fu, fp = _pair("fpr", y_true, y_pred, sensitive_features, privileged, pos_label)
    tu, tp = _pair("tpr", y_true, y_pred, sensitive_features, privileged, pos_label)
    return ((fu - fp) + (tu - tp)) / 2


def predictive_parity_difference(y_true: Any, y_pred: Any, *, sensitive_features: Any, privileged: Any,
                                 pos_label: Any = 1) -> float:
    """``PPV(unprivileged) - PPV(privileged)``, the precision gap (AIF360's
    ``positive_predictive_value`` per group, differenced; predictive parity of Chouldechova, 2017)."""
    u, p = _pair("precision", y_true, y_pred, sensitive_features, privileged, pos_label)
    return u - p
