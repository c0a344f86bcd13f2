"""Stability of a training procedure: cross-validation spread, seed spread and prediction churn.

A model that scores 0.95 on one split may score 0.88 on the next, and two refits that agree on
accuracy may disagree on a tenth of the individual predictions. :func:`stability` refits a
scikit-learn estimator (cloned) or a user ``fit(x, y, seed) -> model`` on k stratified folds and
over several seeds, and reports:

- the metric per fold, its mean and a t-interval over the folds (the folds' spread, which
  overfitting to one split hides), min and max;
- per group of ``sensitive`` (optional): the metric per fold per group and its spread;
- **churn**: over the seeds, each refit on the same training data, the share of held-out
  predictions that differ between two refits, averaged over the pairs (with a Wilson interval on
  the pooled disagreements).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from stalwart._stats import wilson_interval
from stalwart._validation import check_array, check_lengths, check_param
from stalwart.errors import ConfigError, ModelError

__all__ = ["stability", "StabilityResult"]


@dataclass(frozen=True)
class StabilityResult:
    """Per-fold scores, their spread, per-group spread and churn between seeded refits."""

    metric: str
    folds: list[float]
    mean: float
    low: float  # t-interval of the mean over folds
    high: float
    spread: float  # max - min over folds
    churn: float | None
    churn_low: float | None
    churn_high: float | None
    seeds: tuple[int, ...]
    by_group: list[dict[str, Any]] = field(default_factory=list)


def _rows(x: Any, idx: np.ndarray) -> Any:
    return x.iloc[idx] if hasattr(x, "iloc") else x[idx]


def _fitter(estimator: Any) -> Callable[[np.ndarray, np.ndarray, int], Any]:
    if callable(estimator) and not hasattr(estimator, "fit"):
        return estimator
    if not hasattr(estimator, "fit"):
        raise ModelError(f"stability needs a scikit-learn estimator or a fit(x, y, seed) function; got "
                         f"{type(estimator).__name__}.")
    from sklearn.base import clone

    def fit(x: np.ndarray, y: np.ndarray, seed: int) -> Any:
        model = clone(estimator)
        if "random_state" in model.get_params():
            model.set_params(random_state=seed)
        return model.fit(x, y)
    return fit


def stability(estimator: Any, x: Any, y: Any, *, cv: int = 5, seeds: Any = (0, 1, 2), sensitive: Any = None,
              seed: int = 0) -> StabilityResult:
    """Accuracy over ``cv`` stratified folds and churn over ``seeds``; see the module docstring.

    ``estimator``: a scikit-learn estimator (cloned; its ``random_state`` set to each seed) or a
    function ``fit(x, y, seed)`` returning a fitted model with ``predict``.
    """
    import pandas as pd
    from scipy import stats
    from sklearn.model_selection import StratifiedKFold, train_test_split

    fit = _fitter(estimator)
    if isinstance(x, pd.DataFrame):  # kept as a table: pipelines may encode its columns themselves
        if len(x) == 0:
            raise ConfigError("x is empty; pass at least cv rows per class.")
        xs = x.reset_index(drop=True)
    else:
        xs = check_array(x, "x", ndim=2)
    ys = np.asarray(y)
    check_lengths("x", xs, "y", ys)
    check_param("stability", "cv", cv, isinstance(cv, (int, np.integer)) and not isinstance(cv, bool) and cv >= 2,
                "an integer >= 2 (folds)")
    seeds = tuple(int(s) for s in seeds)
    if len(seeds) < 2 and seeds:
        raise ConfigError("stability(seeds=...) needs at least two seeds to measure churn, or () to skip it.")
    _, counts = np.unique(ys, return_counts=True)
    if counts.min() < cv:
        raise ConfigError(f"the rarest class has {counts.min()} rows, fewer than cv={cv} folds; lower cv or pass "
                          "more data.")
    groups = None
    if sensitive is not None:
        from stalwart.groups.metrics import group_labels

        groups, _, _ = group_labels(sensitive, len(ys))
    folds, by_group = [], []
    for k, (train, test) in enumerate(StratifiedKFold(cv, shuffle=True, random_state=seed).split(xs, ys)):
        pred = np.asarray(fit(_rows(xs, train), ys[train], seed).predict(_rows(xs, test)))
        ok = pred == ys[test]
        folds.append(float(ok.mean()))
        if groups is not None:
            for g in np.unique(groups):
                mask = groups[test] == g
                if mask.any():
                    by_group.append({"fold": k + 1, "group": str(g), "n": int(mask.sum()),
                                     "accuracy": float(ok[mask].mean())})
    f = np.asarray(folds)
    half = stats.t.ppf(0.975, len(f) - 1) * f.std(ddof=1) / np.sqrt(len(f)) if len(f) > 1 else float("nan")
    churn = churn_low = churn_high = None
    if seeds:
        tr, te = train_test_split(np.arange(len(ys)), test_size=0.3, stratify=ys, random_state=seed)
        preds = [np.asarray(fit(_rows(xs, tr), ys[tr], s).predict(_rows(xs, te))) for s in seeds]
        differ = [int(np.sum(a != b)) for a, b in itertools.combinations(preds, 2)]
        total = len(te) * len(differ)
        churn = float(sum(differ) / total)
        churn_low, churn_high = (float(v) for v in wilson_interval(sum(differ), total))
    spread_by_group = []
    if by_group:
        for g in sorted({r["group"] for r in by_group}):
            vals = [r["accuracy"] for r in by_group if r["group"] == g]
            spread_by_group.append({"group": g, "mean": float(np.mean(vals)), "min": float(np.min(vals)),
                                    "max": float(np.max(vals)), "spread": float(np.max(vals) - np.min(vals))})
    return StabilityResult(metric="accuracy", folds=folds, mean=float(f.mean()), low=float(f.mean() - half),
                           high=float(f.mean() + half), spread=float(f.max() - f.min()), churn=churn,
                           churn_low=churn_low, churn_high=churn_high, seeds=seeds, by_group=spread_by_group)
