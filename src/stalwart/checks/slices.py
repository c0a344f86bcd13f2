"""Where the model is weakest: the ``weak_slices`` check (weak-slice discovery over the data's
columns, see :func:`stalwart.groups.find_slices`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from stalwart._validation import check_param, check_positive, param_error
from stalwart.checks.base import Check, Measurement, Metric, SkipCheck, register
from stalwart.errors import ConfigError

__all__ = ["WeakSlices", "TARGETS"]

#: what a slice can be weak at (``flip:<perturbation>`` names any registered perturbation)
TARGETS = ("error", "loss", "flip:<perturbation>", "attack")


@register
class WeakSlices(Check):
    """Slices of the data (conjunctions of column conditions, such as ``age >= 62 and region =
    'north'``) where the model is significantly worse than on the rest, found by a lattice search
    with Benjamini-Hochberg control over every slice examined (:func:`stalwart.groups.find_slices`).

    What "worse" means (``by``):

    - ``"error"`` (default): misclassified (a regressor: squared error);
    - ``"loss"``: cross-entropy of the true class (classifiers with probabilities);
    - ``"flip:<perturbation>"``: the prediction changes under a registered perturbation at
      ``severity`` (a regressor: the absolute change);
    - ``"attack"``: broken by :func:`stalwart.attacks.evaluate` (fast level, linf at ``eps`` of
      each feature's range), among the rows the model gets right; numeric tables only.

    Tables slice by their columns (and the sensitive side table, when the data has one); texts by
    their length and their most frequent words (:func:`stalwart.groups.text_features`).

    Metrics
        ``n_weak_slices`` (slices reported), ``worst_slice_effect`` (the largest excess of a
        slice's target over the rest, with its interval; 0 when none is significant),
        ``worst_slice_metric`` (that slice's target mean, with its interval), ``slices_examined``.
    Tables and figures
        ``slices`` (worst effect first: the slice, n, support, metric and its interval, the rest's
        value, effect with interval, p-value, residual p-value, bootstrap stability), ``search``,
        ``notes``; bars of each slice's metric beside the overall value.

    Parameters
    ----------
    by : "error", "loss", "flip:<perturbation>" or "attack"
    columns : the columns to slice by (default: all)
    max_predicates : conditions per slice, 1 to 4 (default 2)
    min_support : the fewest rows in a slice: a count, or a fraction of the rows (default 0.01)
    alpha : false discovery rate (default 0.05)
    max_slices : slices reported at most (default 10)
    n_boot : bootstrap resamples for each slice's stability (default 20; 0 skips)
    severity : perturbation severity for ``flip:`` (1..5, default 3)
    eps : attack budget for ``attack`` (fraction of each feature's range, default 0.05)
    max_samples : rows measured for ``attack`` (default 1000; the other targets use every row)
    """

    name: ClassVar[str] = "weak_slices"
    category: ClassVar[str] = "subgroup"
    modalities: ClassVar[tuple[str, ...]] = ("tabular", "text")
    default_conditions: ClassVar[tuple[str, ...]] = ()
    headline_metric: ClassVar[str | None] = "worst_slice_effect"

    def __init__(self, *, by: str = "error", columns: Sequence[str] | None = None, max_predicates: int = 2,
                 min_support: float = 0.01, alpha: float = 0.05, max_slices: int = 10, n_boot: int = 20,
                 severity: int = 3, eps: float = 0.05, max_samples: int = 1000,
                 conditions: Sequence[Any] | None = None) -> None:
        from stalwart import perturb

        super().__init__(conditions=conditions)
        if not isinstance(by, str) or not (by in ("error", "loss", "attack") or by.startswith("flip:")):
            raise param_error(self, "by", f"one of {list(TARGETS)}", by)
        if by.startswith("flip:"):
            perturb.PERTURBATIONS.check_names(self, "by", [by[5:]])
        if columns is not None and (isinstance(columns, str) or not isinstance(columns, Sequence) or not columns
                                    or not all(isinstance(c, str) for c in columns)):
            raise param_error(self, "columns", "a non-empty list of column names", columns)
        check_param(self, "max_predicates", max_predicates, isinstance(max_predicates, int) and
                    not isinstance(max_predicates, bool) and 1 <= max_predicates <= 4, "an integer from 1 to 4")
        check_positive(self, "min_support", min_support)
        check_param(self, "alpha", alpha, isinstance(alpha, (int, float)) and 0 < alpha < 1, "a number in (0, 1)")
        check_positive(self, "max_slices", max_slices, integer=True)
        check_positive(self, "n_boot", n_boot, integer=True, strict=False)
        check_param(self, "severity", severity, isinstance(severity, int) and not isinstance(severity, bool)
                    and 1 <= severity <= 5, "an integer from 1 to 5")
        check_param(self, "eps", eps, isinstance(eps, (int, float)) and 0 < eps <= 1, "a number in (0, 1]")
        check_positive(self, "max_samples", max_samples, integer=True)
        self.by = by
        self.columns = None if columns is None else list(columns)
        self.max_predicates = int(max_predicates)
        self.min_support = min_support
        self.alpha = float(alpha)
        self.max_slices = int(max_slices)
        self.n_boot = int(n_boot)
        self.severity = int(severity)
        self.eps = float(eps)
        self.max_samples = int(max_samples)

    def metric_names(self, model: Any, data: Any) -> tuple[str, ...]:
        return ("n_weak_slices", "worst_slice_effect", "worst_slice_metric", "slices_examined")

    def validate(self, model: Any, data: Any) -> None:
        super().validate(model, data)
        if data.y is None and not self.by.startswith("flip:"):
            raise ConfigError(f"check {self.name!r} with by={self.by!r} needs labels: the data has none (pass y or "
                              "--target), or use by='flip:<perturbation>'")
        if self.columns is not None and data.modality == "tabular":
            have = _slice_frame(data).columns
            missing = [c for c in self.columns if c not in have]
            if missing:
                raise ConfigError(f"check {self.name!r}: column(s) {missing} are not in the data; it has "
                                  f"{list(have)[:20]}.")

    def _measure(self, model: Any, data: Any, rng: np.random.Generator) -> Measurement:
        from stalwart.groups import find_slices

        sample = data.sample(self.max_samples, seed=rng) if self.by == "attack" else data
        target, rows, what, notes = self._target(model, sample, rng)
        frame = _slice_frame(sample).iloc[rows].reset_index(drop=True)
        if len(frame) < 60:
            raise SkipCheck(f"not applicable: {len(frame)} row(s) to slice ({what}); a slice and the rest need at "
                            "least 30 rows each")
        res = find_slices(frame, target, columns=self.columns, max_predicates=self.max_predicates,
                          min_support=self.min_support, alpha=self.alpha, max_slices=self.max_slices,
                          n_boot=self.n_boot, seed=int(rng.integers(2**31)))
        n = res.n
        metrics = {"n_weak_slices": Metric("n_weak_slices", float(len(res.slices)), n=n),
                   "slices_examined": Metric("slices_examined", float(res.n_examined), n=n)}
        if res.slices:
            worst = max(res.slices, key=lambda s: s.effect)
            metrics["worst_slice_effect"] = Metric("worst_slice_effect", worst.effect, worst.effect_low,
                                                   worst.effect_high, worst.n)
            metrics["worst_slice_metric"] = Metric("worst_slice_metric", worst.metric, worst.metric_low,
                                                   worst.metric_high, worst.n)
        else:
            metrics["worst_slice_effect"] = Metric("worst_slice_effect", 0.0, n=n)
            metrics["worst_slice_metric"] = Metric("worst_slice_metric", res.overall, n=n)
        found = (f"{len(res.slices)} slice(s) where {what} is significantly higher than on the rest"
                 if res.slices else f"no slice where {what} is significantly higher than on the rest")
        notes = [f"{found}: {res.n_examined:,} slices examined on {n} rows, Benjamini-Hochberg at alpha "
                 f"{res.alpha:g} (p-value cutoff {res.p_cutoff:.2e}), min support {res.min_support} rows", *notes,
                 *res.notes]
        search = [{"target": what, "rows": n, "overall": res.overall, "slices_examined": res.n_examined,
                   "p_cutoff": res.p_cutoff, "alpha": res.alpha, "min_support": res.min_support,
                   "max_predicates": self.max_predicates, "bootstrap_resamples": res.n_boot}]
        tables = {"slices": res.table(), "search": search, "notes": [{"note": t} for t in notes]}
        figures = {}
        if res.slices:
            figures["slices"] = {
                "kind": "bars", "title": f"{what} per weak slice (first bar: all rows)", "x_label": what,
                "y_label": "slice", "labels": ["all rows", *[s.description for s in res.slices]],
                "values": [res.overall, *[s.metric for s in res.slices]],
                "low": [res.overall, *[s.metric_low for s in res.slices]],
                "high": [res.overall, *[s.metric_high for s in res.slices]]}
        return Measurement(metrics, tables, {}, figures=figures)

    def _target(self, model: Any, data: Any, rng: np.random.Generator
                ) -> tuple[np.ndarray, np.ndarray, str, list[str]]:
        """Per row: the quantity (larger is worse), the rows it exists for, its name, notes."""
        regression = getattr(model, "task", "classification") == "regression"
        all_rows = np.arange(len(data))
        if self.by == "error":
            pred = np.asarray(model.predict(data.x))
            y = np.asarray(data.y)
            if regression:
                return (pred.astype(float) - y.astype(float)) ** 2, all_rows, "squared error", []
            return (pred != y).astype(float), all_rows, "error rate", []
        if self.by == "loss":
            if regression:
                raise SkipCheck("by='loss' is the cross-entropy of a classifier; for a regressor use by='error'")
            from stalwart._validation import check_labels, labels_to_index

            proba = np.asarray(model.predict_proba(data.x), dtype=float)
            y = labels_to_index(check_labels(np.asarray(data.y), model.classes), np.asarray(model.classes))
            p = np.clip(proba[np.arange(len(y)), y], 1e-12, 1.0)
            return -np.log(p), all_rows, "log loss", []
        if self.by.startswith("flip:"):
            from stalwart import perturb
            from stalwart.perturb.base import nested_rng

            name = self.by[5:]
            x_p = perturb.get(name).apply(data.x, self.severity, nested_rng(int(rng.integers(2**63)), name),
                                         data.schema)
            clean, pert = np.asarray(model.predict(data.x)), np.asarray(model.predict(x_p))
            if regression:
                return np.abs(pert.astype(float) - clean.astype(float)), all_rows, \
                    f"change under {name} (severity {self.severity})", []
            return (pert != clean).astype(float), all_rows, f"flip rate under {name} (severity {self.severity})", []
        return self._attack_target(model, data, rng)

    def _attack_target(self, model: Any, data: Any, rng: np.random.Generator
                       ) -> tuple[np.ndarray, np.ndarray, str, list[str]]:
        from stalwart._validation import check_labels
        from stalwart.attacks import ThreatModel, evaluate
        from stalwart.checks.adversarial import tabular_box

        if getattr(model, "task", "classification") != "classification":
            raise SkipCheck("by='attack' attacks a classifier; the model is a regressor")
        if data.modality != "tabular" or any(c.kind == "categorical" for c in data.schema.columns):
            raise SkipCheck("by='attack' needs a numeric table (the gradient and score-based attacks move numbers); "
                            "use by='flip:<perturbation>' on this data")
        x, bounds, mutable = tabular_box(data)
        y = check_labels(np.asarray(data.y), model.classes)
        threat = ThreatModel("linf", self.eps, bounds, mutable, unit="range")
        ev = evaluate(model, x, y, threat, level="fast", eps_curve=[], seed=int(rng.integers(2**31)), sanity=False)
        rows = np.flatnonzero(ev.clean_correct)
        broken = (ev.broken_by[rows] != "").astype(float)
        access = "white-box" if ev.white_box else "black-box (an upper bound on robustness)"
        return broken, rows, f"attack success rate (eps {self.eps:g}, {access})", \
            [f"attacked {len(x)} sampled rows; the {len(rows)} the model gets right are sliced"]


def _slice_frame(data: Any) -> pd.DataFrame:
    """The columns to slice by: a table's columns and its sensitive side table, or a text's metadata."""
    from stalwart.groups import text_features

    if data.modality == "text":
        return text_features(list(data.x))
    frame = data.x if isinstance(data.x, pd.DataFrame) else pd.DataFrame(
        np.asarray(data.x), columns=[c.name for c in data.schema.columns])
    side = data.meta.get("sensitive")
    if isinstance(side, pd.DataFrame):
        frame = pd.concat([frame.reset_index(drop=True), side.reset_index(drop=True)], axis=1)
    return frame
