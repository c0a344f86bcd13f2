"""Performance per group of people: the ``group_metrics`` check."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from stalwart._validation import check_positive, param_error
from stalwart.checks.base import Check, Measurement, Metric, SkipCheck, register
from stalwart.errors import ConfigError

__all__ = ["GroupPerformance"]


@register
class GroupPerformance(Check):
    """Metrics per group of one or several sensitive columns (their intersections), with 95%
    intervals, the worst group, and the gaps between groups.

    Metrics
        per metric ``m`` of ``metrics``: ``worst_group_m`` (the lowest group value; for ``error``,
        ``fpr`` and ``fnr`` the highest), ``m_difference`` (largest minus smallest group value, with a
        bootstrap interval) and ``m_ratio``; for binary labels also ``demographic_parity_difference``
        and ``equalized_odds_difference`` (fairlearn's definitions).
    Tables and figures
        ``groups`` (per group: n, each metric with its interval), ``notes``; a bar chart of the first
        metric per group with its intervals.

    Parameters
    ----------
    sensitive : list of column names (in the data) whose values, or combinations, are the groups
    metrics : names from :data:`stalwart.groups.METRICS`, default accuracy, selection_rate, tpr, fpr
    pos_label : the positive class for the rates (default: the larger of two labels, or 1)
    min_group_size : groups smaller than this are refused (default 30: their numbers are noise)
    """

    name: ClassVar[str] = "group_metrics"
    category: ClassVar[str] = "subgroup"
    modalities: ClassVar[tuple[str, ...]] = ("tabular",)
    default_conditions: ClassVar[tuple[str, ...]] = ()
    headline_metric: ClassVar[str | None] = "worst_group_accuracy"
    #: metrics where a larger value is worse (their "worst group" is the largest)
    LOWER_IS_BETTER: ClassVar[frozenset[str]] = frozenset({"error", "fpr", "fnr"})

    def __init__(self, *, sensitive: Sequence[str], metrics: Sequence[str] = ("accuracy", "selection_rate", "tpr",
                                                                             "fpr"),
                 pos_label: Any = None, min_group_size: int = 30, conditions: Sequence[Any] | None = None) -> None:
        from stalwart.groups import METRICS

        super().__init__(conditions=conditions)
        if isinstance(sensitive, str) or not isinstance(sensitive, Sequence) or not sensitive or \
                not all(isinstance(c, str) for c in sensitive):
            raise param_error(self, "sensitive", "a non-empty list of column names (e.g. ['sex', 'age_band'])",
                              sensitive)
        if isinstance(metrics, str) or not isinstance(metrics, Sequence) or not metrics or \
                any(m not in METRICS or m == "mean_score" for m in metrics):
            raise param_error(self, "metrics", f"a non-empty list from {[m for m in METRICS if m != 'mean_score']}",
                              metrics)
        check_positive(self, "min_group_size", min_group_size, integer=True)
        self.sensitive = list(sensitive)
        self.metrics = list(metrics)
        self.pos_label = pos_label
        self.min_group_size = int(min_group_size)

    def metric_names(self, model: Any, data: Any) -> tuple[str, ...]:
        names = []
        for m in self.metrics:
            names += [f"worst_group_{m}", f"{m}_difference", f"{m}_ratio"]
        return (*names, "demographic_parity_difference", "equalized_odds_difference")

    def validate(self, model: Any, data: Any) -> None:
        super().validate(model, data)
        if data.y is None:
            raise ConfigError(f"check {self.name!r} needs labels: the data has none (pass y or --target)")
        columns = list(getattr(data.x, "columns", []))
        missing = [c for c in self.sensitive if c not in columns]
        if missing:
            raise ConfigError(f"check {self.name!r}: sensitive column(s) {missing} are not in the data; it has "
                              f"{columns[:20]}. Name columns of the data.")

    def _measure(self, model: Any, data: Any, rng: np.random.Generator) -> Measurement:
        from stalwart.groups import demographic_parity_difference, equalized_odds_difference, group_metrics

        if getattr(model, "task", "classification") != "classification":
            raise SkipCheck("group metrics are rates of a classifier; the model is a regressor")
        y = np.asarray(data.y)
        pred = np.asarray(model.predict(data.x))
        labels = sorted(set(y.tolist()) | set(pred.tolist()), key=str)
        pos = self.pos_label if self.pos_label is not None else (labels[-1] if len(labels) == 2 else 1)
        sensitive = data.x[self.sensitive]
        res = group_metrics(y, pred, sensitive, metrics=self.metrics, pos_label=pos,
                            min_group_size=self.min_group_size, seed=int(rng.integers(2**31)))
        metrics: dict[str, Metric] = {}
        for m in self.metrics:
            worst = res.worst(m, higher_is_better=m not in self.LOWER_IS_BETTER)
            metrics[f"worst_group_{m}"] = Metric(f"worst_group_{m}", worst[m], worst[f"{m}_low"], worst[f"{m}_high"],
                                                 worst["n"])
            sp = res.spread[m]
            metrics[f"{m}_difference"] = Metric(f"{m}_difference", sp["difference"], sp["difference_low"],
                                                sp["difference_high"], len(y))
            metrics[f"{m}_ratio"] = Metric(f"{m}_ratio", sp["ratio"], sp["ratio_low"], sp["ratio_high"], len(y))
        if len(labels) == 2:
            metrics["demographic_parity_difference"] = Metric(
                "demographic_parity_difference",
                demographic_parity_difference(y, pred, sensitive_features=sensitive, pos_label=pos), n=len(y))
            metrics["equalized_odds_difference"] = Metric(
                "equalized_odds_difference",
                equalized_odds_difference(y, pred, sensitive_features=sensitive, pos_label=pos), n=len(y))
        first = self.metrics[0]
        figure = {"kind": "bars", "title": f"{first} per group ({' & '.join(res.sensitive)})",
                  "x_label": first, "y_label": "group", "labels": [r["group"] for r in res.by_group],
                  "values": [r[first] for r in res.by_group], "low": [r[f"{first}_low"] for r in res.by_group],
                  "high": [r[f"{first}_high"] for r in res.by_group]}
        tables = {"groups": res.by_group, "notes": [{"note": n} for n in res.notes]}
        return Measurement(metrics, tables, {}, figures={f"{first}_by_group": figure})
