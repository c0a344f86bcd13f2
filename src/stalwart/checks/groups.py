"""Performance per group of people: the ``group_metrics`` check."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from stalwart._validation import check_param, check_positive, param_error
from stalwart.checks.base import Check, Measurement, Metric, SkipCheck, register
from stalwart.errors import ConfigError

__all__ = ["GroupPerformance", "GroupRobustness", "Stability", "Mitigation", "MITIGATIONS"]


def _check_sensitive(owner: Any, sensitive: Any) -> None:
    if isinstance(sensitive, str) or not isinstance(sensitive, Sequence) or not sensitive or \
            not all(isinstance(c, str) for c in sensitive):
        raise param_error(owner, "sensitive", "a non-empty list of column names (e.g. ['sex', 'age_band'])", sensitive)


def _check_groups_input(check: Any, data: Any) -> None:
    """Labels present, and every sensitive column of ``check`` a column of the data."""
    if data.y is None:
        raise ConfigError(f"check {check.name!r} needs labels: the data has none (pass y or --target)")
    side = data.meta.get("sensitive")
    columns = list(getattr(data.x, "columns", [])) + list(getattr(side, "columns", []))
    missing = [c for c in check.sensitive if c not in columns]
    if missing:
        raise ConfigError(f"check {check.name!r}: sensitive column(s) {missing} are not in the data; it has "
                          f"{columns[:20]}. Name columns of the data.")


@register
class GroupPerformance(Check):
    """Metrics per group of one or several sensitive columns (their intersections), with 95%
    intervals, the worst group, and the gaps between groups.

    Metrics
        per metric ``m`` of ``metrics``: ``worst_group_m`` (the lowest group value; for ``error``,
        ``fpr``, ``fnr`` and ``calibration_error`` the highest), ``m_difference`` (largest minus
        smallest group value, with a bootstrap interval) and ``m_ratio``; for binary labels also
        ``demographic_parity_difference`` and ``equalized_odds_difference`` (fairlearn's
        definitions). ``calibration_error`` (binary classifiers) reads the positive class's
        probability.
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
    LOWER_IS_BETTER: ClassVar[frozenset[str]] = frozenset({"error", "fpr", "fnr", "calibration_error"})

    def __init__(self, *, sensitive: Sequence[str], metrics: Sequence[str] = ("accuracy", "selection_rate", "tpr",
                                                                             "fpr"),
                 pos_label: Any = None, min_group_size: int = 30, conditions: Sequence[Any] | None = None) -> None:
        from stalwart.groups import METRICS

        super().__init__(conditions=conditions)
        _check_sensitive(self, sensitive)
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
        _check_groups_input(self, data)

    def _measure(self, model: Any, data: Any, rng: np.random.Generator) -> Measurement:
        from stalwart.groups import demographic_parity_difference, equalized_odds_difference, group_metrics

        if getattr(model, "task", "classification") != "classification":
            raise SkipCheck("group metrics are rates of a classifier; the model is a regressor")
        y = np.asarray(data.y)
        pred = np.asarray(model.predict(data.x))
        labels = sorted(set(y.tolist()) | set(pred.tolist()), key=str)
        pos = self.pos_label if self.pos_label is not None else (labels[-1] if len(labels) == 2 else 1)
        sensitive = pd.concat([data.sensitive_column(c) for c in self.sensitive], axis=1)
        score = None
        if "calibration_error" in self.metrics:  # the positive class's probability
            classes = [str(c) for c in np.asarray(model.classes).tolist()]
            if len(labels) != 2 or str(pos) not in classes:
                raise SkipCheck("calibration_error per group is measured for binary classifiers (the positive "
                                f"class's probability); this model has classes {classes[:10]}")
            score = np.asarray(model.predict_proba(data.x))[:, classes.index(str(pos))]
        res = group_metrics(y, pred, sensitive, metrics=self.metrics, pos_label=pos, y_score=score,
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


@register
class GroupRobustness(Check):
    """Accuracy lost to each natural perturbation, per group: who the model's brittleness hurts.

    Every perturbation runs once on the whole sample (the same draws for every group); per group
    and perturbation the drop is clean minus perturbed accuracy on the same rows, with Newcombe's
    paired interval. The gap between the most and the least hurt group, for the perturbation where
    it is largest, carries a bootstrap interval (each group resampled on its own).

    Metrics
        ``worst_group_accuracy_drop`` (the largest drop of any group under any perturbation, with
        its interval); ``accuracy_drop_gap`` (largest minus smallest group drop, for the
        perturbation where that is largest, with its interval); with ``eps``:
        ``worst_group_robust_accuracy`` (Wilson interval) and ``robust_accuracy_gap`` (largest
        minus smallest group robust accuracy, bootstrap interval).
    Tables and figures
        ``drops`` (perturbation, group, n, clean and perturbed accuracy, drop with interval),
        ``robust_by_group`` (with ``eps``), ``errors``, ``notes``; bars of the drop per group under
        the perturbation with the gap, and of robust accuracy per group.

    With ``eps`` set, the model is also attacked (:func:`stalwart.attacks.evaluate`, fast level,
    linf at ``eps`` of each feature's range) on a stratified sample of ``max_samples`` rows of a
    numeric table, and robust accuracy is reported per group: who an adversary can hurt most.

    Parameters
    ----------
    sensitive : list of column names whose values, or combinations, are the groups
    perturbations : registered tabular perturbations (default feature_noise, missing_values, outliers)
    severity : 1..5, default 3
    min_group_size : groups smaller than this are refused (default 30)
    n_boot : bootstrap resamples for the gap's interval (default 500)
    eps : attack budget as a fraction of each feature's range (default None: no attack)
    max_samples : rows attacked (default 1000)
    """

    name: ClassVar[str] = "group_robustness"
    category: ClassVar[str] = "subgroup"
    modalities: ClassVar[tuple[str, ...]] = ("tabular",)
    default_conditions: ClassVar[tuple[str, ...]] = ()
    headline_metric: ClassVar[str | None] = "accuracy_drop_gap"

    def __init__(self, *, sensitive: Sequence[str],
                 perturbations: Sequence[str] = ("feature_noise", "missing_values", "outliers"), severity: int = 3,
                 min_group_size: int = 30, n_boot: int = 500, eps: float | None = None, max_samples: int = 1000,
                 conditions: Sequence[Any] | None = None) -> None:
        from stalwart import perturb

        super().__init__(conditions=conditions)
        _check_sensitive(self, sensitive)
        self.perturbations = perturb.PERTURBATIONS.check_names(self, "perturbations", perturbations,
                                                               modality="tabular")
        ok = isinstance(severity, (int, np.integer)) and not isinstance(severity, bool) and 1 <= severity <= 5
        if not ok:
            raise param_error(self, "severity", "an integer from 1 to 5", severity)
        check_positive(self, "min_group_size", min_group_size, integer=True)
        check_positive(self, "n_boot", n_boot, integer=True)
        if eps is not None:
            check_param(self, "eps", eps, isinstance(eps, (int, float)) and not isinstance(eps, bool) and 0 < eps <= 1,
                        "None or a number in (0, 1] (a fraction of each feature's range)")
        check_positive(self, "max_samples", max_samples, integer=True)
        self.sensitive = list(sensitive)
        self.severity = int(severity)
        self.min_group_size = int(min_group_size)
        self.n_boot = int(n_boot)
        self.eps = None if eps is None else float(eps)
        self.max_samples = int(max_samples)

    def metric_names(self, model: Any, data: Any) -> tuple[str, ...]:
        attacked = ("worst_group_robust_accuracy", "robust_accuracy_gap") if self.eps is not None else ()
        return ("worst_group_accuracy_drop", "accuracy_drop_gap", *attacked)

    def validate(self, model: Any, data: Any) -> None:
        super().validate(model, data)
        _check_groups_input(self, data)

    def _measure(self, model: Any, data: Any, rng: np.random.Generator) -> Measurement:
        from stalwart import perturb
        from stalwart._stats import paired_difference_interval
        from stalwart.checks.base import error_text
        from stalwart.errors import InputError
        from stalwart.groups import group_labels
        from stalwart.perturb.base import nested_rng

        if getattr(model, "task", "classification") != "classification":
            raise SkipCheck("group robustness is measured as accuracy; the model is a regressor")
        y = np.asarray(data.y)
        labels, columns, notes = group_labels(pd.concat([data.sensitive_column(c) for c in self.sensitive], axis=1),
                                              len(y))
        names, inverse = np.unique(labels.astype(str), return_inverse=True)
        sizes = np.bincount(inverse, minlength=len(names))
        small = [f"{names[g]} ({sizes[g]})" for g in range(len(names)) if sizes[g] < self.min_group_size]
        if small:
            raise InputError(f"group(s) {small[:5]} have fewer than min_group_size={self.min_group_size} rows; "
                             "merge small groups, or lower min_group_size to accept them.")
        members = [np.flatnonzero(inverse == g) for g in range(len(names))]
        clean_ok = np.asarray(model.predict(data.x)) == y
        base = int(rng.integers(2**63))
        rows, errors, per_pert = [], [], {}
        for pname in self.perturbations:
            try:
                x_p = perturb.get(pname).apply(data.x, self.severity, nested_rng(base, pname), data.schema)
                pert_ok = np.asarray(model.predict(x_p)) == y
            except Exception as exc:  # noqa: BLE001 - the model may reject perturbed input: an error row
                errors.append({"perturbation": pname, "error": error_text(exc)})
                continue
            per_pert[pname] = pert_ok
            for g, idx in enumerate(members):
                c, p_ = clean_ok[idx], pert_ok[idx]
                low, high = paired_difference_interval(c, p_)
                rows.append({"perturbation": pname, "group": str(names[g]), "n": int(len(idx)),
                             "clean_accuracy": float(c.mean()), "perturbed_accuracy": float(p_.mean()),
                             "drop": float(c.mean() - p_.mean()), "drop_low": float(low), "drop_high": float(high)})
        if not per_pert:
            raise SkipCheck(f"no perturbation could be measured: {errors[0]['error'] if errors else 'none ran'}")
        worst = max(rows, key=lambda r: r["drop"])
        gaps = {}
        for pname in per_pert:
            drops = [r["drop"] for r in rows if r["perturbation"] == pname]
            gaps[pname] = max(drops) - min(drops)
        gap_p = max(gaps, key=gaps.get)
        boot = np.empty(self.n_boot)
        for b in range(self.n_boot):
            d = []
            for idx in members:
                take = idx[rng.integers(0, len(idx), len(idx))]
                d.append(clean_ok[take].mean() - per_pert[gap_p][take].mean())
            boot[b] = max(d) - min(d)
        n = len(y)
        metrics = {
            "worst_group_accuracy_drop": Metric("worst_group_accuracy_drop", worst["drop"], worst["drop_low"],
                                                worst["drop_high"], worst["n"]),
            "accuracy_drop_gap": Metric("accuracy_drop_gap", gaps[gap_p], float(np.quantile(boot, 0.025)),
                                        float(np.quantile(boot, 0.975)), n),
        }
        gap_rows = [r for r in rows if r["perturbation"] == gap_p]
        figure = {"kind": "bars", "title": f"Accuracy drop under {gap_p} (severity {self.severity}) per group "
                  f"({' & '.join(columns)})", "x_label": "accuracy drop", "y_label": "group",
                  "labels": [r["group"] for r in gap_rows], "values": [r["drop"] for r in gap_rows],
                  "low": [r["drop_low"] for r in gap_rows], "high": [r["drop_high"] for r in gap_rows]}
        tables = {"drops": rows, "errors": errors, "notes": [{"note": t} for t in notes]}
        warnings = tuple(f"{e['perturbation']} could not be measured: {e['error']}" for e in errors)
        figures = {"drop_by_group": figure}
        if self.eps is not None:
            self._attack(model, data, rng, metrics, tables, figures)
        return Measurement(metrics, tables, {}, warnings, figures=figures)

    def _attack(self, model: Any, data: Any, rng: np.random.Generator, metrics: dict[str, Metric],
                tables: dict[str, list], figures: dict[str, dict]) -> None:
        """Robust accuracy per group on a sample (see the class docstring)."""
        from stalwart._stats import wilson_interval
        from stalwart._validation import check_labels
        from stalwart.attacks import ThreatModel, evaluate
        from stalwart.checks.adversarial import tabular_box
        from stalwart.groups import group_labels

        if any(c.kind == "categorical" for c in data.schema.columns):
            tables["notes"].append({"note": "no attack: the table has categorical columns, which the gradient and "
                                            "score-based attacks cannot move (see the adversarial check)"})
            return
        sample = data.sample(self.max_samples, seed=rng)
        labels, _, _ = group_labels(pd.concat([sample.sensitive_column(c) for c in self.sensitive], axis=1),
                                    len(sample))
        x, bounds, mutable = tabular_box(sample)
        y = check_labels(np.asarray(sample.y), model.classes)
        ev = evaluate(model, x, y, ThreatModel("linf", self.eps, bounds, mutable, unit="range"), level="fast",
                      eps_curve=[], seed=int(rng.integers(2**31)), sanity=False)
        robust = np.asarray(ev.broken_by == "")
        rows, members = [], []
        for g in sorted(set(labels.tolist()), key=str):
            idx = np.flatnonzero(labels == g)
            if len(idx) < self.min_group_size:
                tables["notes"].append({"note": f"group {g!r} has {len(idx)} of the {len(sample)} rows attacked, "
                                                f"fewer than min_group_size={self.min_group_size}: not reported"})
                continue
            k = int(robust[idx].sum())
            low, high = wilson_interval(k, len(idx))
            rows.append({"group": str(g), "n": int(len(idx)), "clean_accuracy": float(ev.clean_correct[idx].mean()),
                         "robust_accuracy": k / len(idx), "robust_accuracy_low": low, "robust_accuracy_high": high})
            members.append(idx)
        tables["robust_by_group"] = rows
        if len(rows) < 2:
            tables["notes"].append({"note": "fewer than two groups with enough attacked rows: attack more rows "
                                            "(max_samples) to compare groups"})
            return
        worst = min(rows, key=lambda r: r["robust_accuracy"])
        values = [r["robust_accuracy"] for r in rows]
        boot = np.empty(self.n_boot)
        for b in range(self.n_boot):
            d = [robust[idx[rng.integers(0, len(idx), len(idx))]].mean() for idx in members]
            boot[b] = max(d) - min(d)
        access = "white-box" if ev.white_box else "black-box"
        metrics["worst_group_robust_accuracy"] = Metric("worst_group_robust_accuracy", worst["robust_accuracy"],
                                                        worst["robust_accuracy_low"], worst["robust_accuracy_high"],
                                                        worst["n"])
        metrics["robust_accuracy_gap"] = Metric("robust_accuracy_gap", max(values) - min(values),
                                                float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975)),
                                                len(sample))
        figures["robust_accuracy_by_group"] = {
            "kind": "bars", "title": f"Robust accuracy per group (eps {self.eps:g}, {access}, {len(sample)} rows)",
            "x_label": "robust accuracy", "y_label": "group", "labels": [r["group"] for r in rows],
            "values": values, "low": [r["robust_accuracy_low"] for r in rows],
            "high": [r["robust_accuracy_high"] for r in rows]}


@register
class Stability(Check):
    """Cross-validation and seed stability of a scikit-learn model, refitted on the data given.

    The model's estimator is cloned and refitted on ``cv`` stratified folds (its ``random_state``,
    if any, set to each seed) and on one split with several seeds; see
    :func:`stalwart.groups.stability`. Models that cannot be refitted here (torch, ONNX, functions)
    are skipped with the way to measure them in Python.

    Metrics
        ``cv_accuracy`` (mean over folds, t-interval), ``cv_accuracy_spread`` (max minus min fold),
        ``churn`` (share of held-out predictions that differ between seeded refits, Wilson interval).
    """

    name: ClassVar[str] = "stability"
    category: ClassVar[str] = "stability"
    modalities: ClassVar[tuple[str, ...]] = ("tabular", "text")
    default_conditions: ClassVar[tuple[str, ...]] = ()
    headline_metric: ClassVar[str | None] = "cv_accuracy_spread"

    def __init__(self, *, cv: int = 5, seeds: Sequence[int] = (0, 1, 2), conditions: Sequence[Any] | None = None
                 ) -> None:
        super().__init__(conditions=conditions)
        ok = isinstance(cv, (int, np.integer)) and not isinstance(cv, bool) and cv >= 2
        if not ok:
            raise param_error(self, "cv", "an integer >= 2 (folds)", cv)
        if isinstance(seeds, str) or not isinstance(seeds, Sequence) or len(seeds) == 1 or \
                not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 0 for s in seeds):
            raise param_error(self, "seeds", "a list of two or more seeds >= 0, or [] to skip churn", seeds)
        self.cv = int(cv)
        self.seeds = [int(s) for s in seeds]

    def metric_names(self, model: Any, data: Any) -> tuple[str, ...]:
        return ("cv_accuracy", "cv_accuracy_spread", "churn")

    def validate(self, model: Any, data: Any) -> None:
        super().validate(model, data)
        if data.y is None:
            raise ConfigError(f"check {self.name!r} needs labels: the data has none (pass y or --target)")

    def _measure(self, model: Any, data: Any, rng: np.random.Generator) -> Measurement:
        from stalwart.groups import stability

        estimator = getattr(model, "estimator", None)
        if estimator is None or not hasattr(estimator, "fit") or getattr(model, "task", "") != "classification":
            raise SkipCheck("stability refits the model, which needs a scikit-learn classifier; for other models "
                            "call stalwart.groups.stability with a fit(x, y, seed) function")
        res = stability(estimator, data.x, np.asarray(data.y), cv=self.cv, seeds=self.seeds,
                        seed=int(rng.integers(2**31)))
        n = len(data)
        metrics = {"cv_accuracy": Metric("cv_accuracy", res.mean, res.low, res.high, n),
                   "cv_accuracy_spread": Metric("cv_accuracy_spread", res.spread, n=n)}
        if res.churn is not None:
            metrics["churn"] = Metric("churn", res.churn, res.churn_low, res.churn_high, n)
        tables = {"folds": [{"fold": k + 1, "accuracy": a} for k, a in enumerate(res.folds)]}
        return Measurement(metrics, tables, {})


#: mitigations the ``mitigation`` check compares with the plain model, and the disparity each targets
MITIGATIONS = {"reweighing": "demographic_parity_difference",
               "thresholds:demographic_parity": "demographic_parity_difference",
               "thresholds:equal_opportunity": "equal_opportunity_gap",
               "thresholds:equalized_odds": "equalized_odds_difference"}


@register
class Mitigation(Check):
    """Disparity and accuracy before and after a mitigation, on the same held-out rows.

    The model's scikit-learn estimator is cloned and refitted on stratified folds of the data,
    plain and inside the mitigation (:class:`stalwart.groups.ReweighedClassifier`, or
    :class:`stalwart.groups.GroupThresholdClassifier` with a constraint); every row is predicted
    by the pair of models that did not see it, so both columns of the table measure the same rows
    out of fold. Models that cannot be refitted here are skipped with the way to do it in Python.

    Metrics
        ``disparity_before`` / ``disparity_after`` (the disparity the mitigation targets:
        demographic parity difference, equal-opportunity gap (the TPR gap) or equalized odds
        difference, each with a bootstrap interval), ``accuracy_before`` / ``accuracy_after``
        (Wilson intervals), ``disparity_reduction`` (before minus after, with a paired bootstrap
        interval).
    Tables and figures
        ``before_after`` (model, accuracy, each disparity with intervals); bars of the targeted
        disparity before and after.

    Parameters
    ----------
    sensitive : the column (of the data or its sensitive side table) that holds the group
    method : one of :data:`MITIGATIONS` (default "reweighing")
    cv : folds (default 2)
    n_boot : bootstrap resamples for the intervals (default 500)
    """

    name: ClassVar[str] = "mitigation"
    category: ClassVar[str] = "subgroup"
    modalities: ClassVar[tuple[str, ...]] = ("tabular",)
    default_conditions: ClassVar[tuple[str, ...]] = ()
    headline_metric: ClassVar[str | None] = "disparity_after"

    def __init__(self, *, sensitive: str, method: str = "reweighing", cv: int = 2, n_boot: int = 500,
                 conditions: Sequence[Any] | None = None) -> None:
        super().__init__(conditions=conditions)
        if not isinstance(sensitive, str) or not sensitive:
            raise param_error(self, "sensitive", "one column name (e.g. 'sex')", sensitive)
        if method not in MITIGATIONS:
            raise param_error(self, "method", f"one of {list(MITIGATIONS)}", method)
        check_param(self, "cv", cv, isinstance(cv, int) and not isinstance(cv, bool) and cv >= 2, "an integer >= 2")
        check_positive(self, "n_boot", n_boot, integer=True)
        self.sensitive = sensitive
        self.method = method
        self.cv = int(cv)
        self.n_boot = int(n_boot)

    def metric_names(self, model: Any, data: Any) -> tuple[str, ...]:
        return ("disparity_before", "disparity_after", "accuracy_before", "accuracy_after", "disparity_reduction")

    def validate(self, model: Any, data: Any) -> None:
        super().validate(model, data)
        if data.y is None:
            raise ConfigError(f"check {self.name!r} needs labels: the data has none (pass y or --target)")
        side = data.meta.get("sensitive")
        columns = list(getattr(data.x, "columns", [])) + list(getattr(side, "columns", []))
        if self.sensitive not in columns:
            raise ConfigError(f"check {self.name!r}: sensitive column {self.sensitive!r} is not in the data; it has "
                              f"{columns[:20]}. Name a column of the data.")

    def _measure(self, model: Any, data: Any, rng: np.random.Generator) -> Measurement:
        from sklearn.base import clone
        from sklearn.model_selection import StratifiedKFold

        from stalwart._stats import wilson_interval
        from stalwart.groups import GroupThresholdClassifier, ReweighedClassifier

        estimator = getattr(model, "estimator", None)
        if estimator is None or not hasattr(estimator, "fit") or getattr(model, "task", "") != "classification":
            raise SkipCheck("mitigation refits the model, which needs a scikit-learn classifier; for other models fit "
                            "stalwart.groups.ReweighedClassifier or GroupThresholdClassifier in Python and run "
                            "group_metrics on both")
        y = np.asarray(data.y)
        classes = np.unique(y)
        if len(classes) != 2:
            raise SkipCheck(f"the mitigations are for binary classifiers; the labels have {len(classes)} classes")
        x = data.x.reset_index(drop=True)
        inside = self.sensitive in x.columns
        group = data.sensitive_column(self.sensitive).reset_index(drop=True)
        xg = x if inside else x.assign(**{self.sensitive: group.to_numpy()})
        if self.method == "reweighing":
            wrapped = ReweighedClassifier(clone(estimator), self.sensitive, drop_sensitive=not inside)
        else:
            wrapped = GroupThresholdClassifier(clone(estimator), self.sensitive, constraint=self.method.split(":")[1],
                                               drop_sensitive=not inside, random_state=int(rng.integers(2**31)))
        before, after = np.empty(len(y), dtype=y.dtype), np.empty(len(y), dtype=y.dtype)
        folds = StratifiedKFold(self.cv, shuffle=True, random_state=int(rng.integers(2**31)))
        for train, test in folds.split(x, y):
            plain = clone(estimator).fit(x.iloc[train], y[train])
            before[test] = plain.predict(x.iloc[test])
            after[test] = clone(wrapped).fit(xg.iloc[train], y[train]).predict(xg.iloc[test])
        _, g = np.unique(group.astype(str).to_numpy(), return_inverse=True)  # group codes 0..k-1
        pos = classes[1]
        target = MITIGATIONS[self.method]
        measures = {"demographic_parity_difference": _dp, "equal_opportunity_gap": _eo_gap,
                    "equalized_odds_difference": _eodds}
        n = len(y)
        rows, boot = [], {}
        idx = [rng.integers(0, n, n) for _ in range(self.n_boot)]
        for label, pred in (("before (plain)", before), (f"after ({self.method})", after)):
            k = int(np.sum(pred == y))
            row: dict[str, Any] = {"model": label, "accuracy": k / n}
            row["accuracy_low"], row["accuracy_high"] = wilson_interval(k, n)
            for name, fn in measures.items():
                draws = np.array([fn(y[i], pred[i], g[i], pos) for i in idx])
                row[name] = fn(y, pred, g, pos)
                row[f"{name}_low"], row[f"{name}_high"] = (float(np.nanquantile(draws, q)) for q in (0.025, 0.975))
                boot[(label, name)] = draws
            rows.append(row)
        b, a = rows
        reduction = boot[(b["model"], target)] - boot[(a["model"], target)]
        metrics = {
            "disparity_before": Metric("disparity_before", b[target], b[f"{target}_low"], b[f"{target}_high"], n),
            "disparity_after": Metric("disparity_after", a[target], a[f"{target}_low"], a[f"{target}_high"], n),
            "accuracy_before": Metric("accuracy_before", b["accuracy"], b["accuracy_low"], b["accuracy_high"], n),
            "accuracy_after": Metric("accuracy_after", a["accuracy"], a["accuracy_low"], a["accuracy_high"], n),
            "disparity_reduction": Metric("disparity_reduction", b[target] - a[target],
                                          float(np.nanquantile(reduction, 0.025)),
                                          float(np.nanquantile(reduction, 0.975)), n),
        }
        figure = {"kind": "bars", "title": f"{target} before and after {self.method} ({self.cv}-fold, out of fold)",
                  "x_label": target, "y_label": "model", "labels": [r["model"] for r in rows],
                  "values": [r[target] for r in rows], "low": [r[f"{target}_low"] for r in rows],
                  "high": [r[f"{target}_high"] for r in rows]}
        notes = [{"note": f"targeted disparity: {target}; every row predicted out of fold by models refitted on the "
                          f"other {self.cv - 1} fold(s), plain and mitigated"}]
        return Measurement(metrics, {"before_after": rows, "notes": notes}, {}, figures={"disparity": figure})


def _rates(y: np.ndarray, pred: np.ndarray, g: np.ndarray, pos: Any, on: np.ndarray | None) -> np.ndarray:
    """Share of positive predictions per group code ``g`` (0..k-1), among the rows ``on``."""
    k = int(g.max()) + 1
    keep = np.ones(len(y), dtype=bool) if on is None else on
    n = np.bincount(g[keep], minlength=k)
    hits = np.bincount(g[keep], weights=(pred[keep] == pos).astype(float), minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, hits / np.maximum(n, 1), np.nan)


def _gap(values: np.ndarray) -> float:
    return float(np.nanmax(values) - np.nanmin(values)) if np.isfinite(values).any() else float("nan")


def _dp(y: np.ndarray, pred: np.ndarray, g: np.ndarray, pos: Any) -> float:
    """fairlearn's demographic parity difference (as :func:`stalwart.groups.demographic_parity_difference`)."""
    return _gap(_rates(y, pred, g, pos, None))


def _eo_gap(y: np.ndarray, pred: np.ndarray, g: np.ndarray, pos: Any) -> float:
    """The largest gap in true-positive rate between groups."""
    return _gap(_rates(y, pred, g, pos, y == pos))


def _eodds(y: np.ndarray, pred: np.ndarray, g: np.ndarray, pos: Any) -> float:
    """fairlearn's equalized odds difference (as :func:`stalwart.groups.equalized_odds_difference`)."""
    return max(_gap(_rates(y, pred, g, pos, y == pos)), _gap(_rates(y, pred, g, pos, y != pos)))
