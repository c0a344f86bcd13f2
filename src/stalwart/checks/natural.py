"""Natural robustness: accuracy under graded natural perturbations (noise, blur, typos, ...)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from stalwart import perturb
from stalwart._stats import bootstrap_ci, paired_difference_interval, wilson_interval
from stalwart._validation import check_positive, check_severities, param_error
from stalwart.checks.base import Check, Condition, Measurement, Metric, error_text, first_sentence, register
from stalwart.checks.performance import chance_reason
from stalwart.errors import ConfigError, InputError
from stalwart.perturb.base import nested_rng
from stalwart.perturb.sensitivity import column_sensitivity

__all__ = ["NaturalRobustness", "FAMILIES", "family_of", "by_family"]

#: the headline cut-off: "what a mildly to moderately corrupted input costs"
REFERENCE_SEVERITY = 3

#: family of each built-in perturbation, per modality; a perturbation class may instead declare
#: its own with a ``family`` class attribute (plugins do), which wins over this table
FAMILIES: dict[str, dict[str, str]] = {
    "image": {
        **dict.fromkeys(("gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise"), "noise"),
        **dict.fromkeys(("gaussian_blur", "defocus_blur", "motion_blur", "zoom_blur", "glass_blur"), "blur"),
        **dict.fromkeys(("fog", "brightness", "snow", "frost", "spatter"), "weather"),
        **dict.fromkeys(("contrast", "saturate", "elastic_transform", "pixelation", "jpeg_compression"),
                        "digital"),
        **dict.fromkeys(("rotation", "translation", "scale", "flip", "crop", "occlusion"), "geometric"),
    },
    "tabular": {
        **dict.fromkeys(("feature_noise", "rounding"), "noise"),
        **dict.fromkeys(("missing_values", "missing_not_at_random"), "missing"),
        **dict.fromkeys(("outliers", "rare_event", "unit_scale"), "extreme"),
        **dict.fromkeys(("category_swap", "category_swap_frequency"), "categorical"),
        **dict.fromkeys(("stuck_sensor", "column_swap"), "pipeline"),
    },
    "text": {
        **dict.fromkeys(("keyboard_typos", "char_swap", "char_delete", "char_insert"), "typos"),
        **dict.fromkeys(("case_change", "whitespace", "punctuation_removal"), "formatting"),
        **dict.fromkeys(("contract", "expand_contractions"), "contractions"),
        **dict.fromkeys(("synonym_swap", "name_swap", "location_swap", "number_swap"), "substitution"),
        "add_irrelevant": "addition",
    },
}

#: images up to this side get an examples figure (nested lists in the JSON stay small)
MAX_EXAMPLE_SIDE = 64
MAX_IMAGE_EXAMPLES = 8
MAX_TEXT_EXAMPLES = 10
MAX_BARS = 20  # the column-sensitivity bars show the most harmful columns; the table has them all


def family_of(name: str) -> str:
    """Family of a registered perturbation: its class's ``family`` attribute, else :data:`FAMILIES`,
    else ``"other"``."""
    cls = perturb.PERTURBATIONS.get(name)
    declared = getattr(cls, "family", None)
    if isinstance(declared, str) and declared:
        return declared
    return FAMILIES.get(getattr(cls, "modality", ""), {}).get(name, "other")


def by_family(names: Sequence[str]) -> list[str]:
    """``names`` grouped by family (families in first-seen order), order kept within a family."""
    fam = {n: family_of(n) for n in names}
    order = list(dict.fromkeys(fam.values()))
    return sorted(names, key=lambda n: order.index(fam[n]))


def _round_robin(names: Sequence[str], k: int) -> list[str]:
    """Up to ``k`` names taking one per family in turn, so examples cover every family."""
    groups: dict[str, list[str]] = {}
    for n in names:
        groups.setdefault(family_of(n), []).append(n)
    out: list[str] = []
    while len(out) < k and any(groups.values()):
        for g in groups.values():
            if g and len(out) < k:
                out.append(g.pop(0))
    return out


@register
class NaturalRobustness(Check):
    """Accuracy (or RMSE, for regressors) under each natural perturbation at each severity.

    For every perturbation and severity the whole sample is perturbed once and predicted in one
    batched call. Rates carry 95% Wilson intervals; drops and RMSE carry paired bootstrap
    intervals (the same samples clean and perturbed).

    Metrics (classification)
        ``clean_accuracy``; ``accuracy_drop_s3``: the worst accuracy drop (clean minus perturbed)
        over all perturbations at severities <= 3; ``max_accuracy_drop``: the worst over every
        severity; ``mean_flip_rate``: the share of predictions that changed from the clean
        prediction, averaged over every (perturbation, severity) cell.
    Metrics (regression)
        ``clean_rmse``; ``rmse_increase_s3`` and ``max_rmse_increase``: the relative RMSE
        increase ``rmse_perturbed / rmse_clean - 1``, worst at severities <= 3 and over all.

    A perturbation the model cannot take (for example NaNs from ``missing_values`` for a model
    without imputation) is recorded as an error row; the check's status is then at least WARN
    and its message names those perturbations.

    Tables and figures
        ``perturbations``: one row per (perturbation, severity), with the perturbation's
        ``family`` (see :func:`family_of`); a ``heatmap`` figure of accuracy (RMSE) by perturbation
        x severity, rows grouped by family. Images: a curve of mean accuracy per family against
        severity, and for images up to 64 x 64 an ``image_examples`` figure: one clean image and
        what up to 8 perturbations (one family after another) made of it at severity 3 (the chosen
        severity nearest 3), with the model's predictions. Text: a ``text_examples`` figure of real
        failures (sentences whose prediction the perturbation changed), at the same severity.
        Tabular, with ``column_sensitivity``: the ``column_sensitivity`` table and bars, from
        :func:`stalwart.perturb.sensitivity.column_sensitivity` with ``feature_noise`` at
        severity 3 applied to one column at a time (one predict call per column).

    Parameters
    ----------
    perturbations : list of str, optional
        Registered perturbation names; default every perturbation for the data's modality.
    severities : list of int, default [1, 2, 3, 4, 5]
    max_samples : int, default 500
        Size of the stratified sample the check runs on.
    column_sensitivity : bool, default True
        Tabular data only: rank the columns by the harm of noise in that column alone.
    conditions : list, optional
        Default ``accuracy_drop_s3 <= 0.10 warn 0.05`` (regression: ``rmse_increase_s3 <= 0.25
        warn 0.10``). When every chosen severity is above 3 the defaults judge
        ``max_accuracy_drop`` (``max_rmse_increase``) instead.
    """

    name: ClassVar[str] = "natural_robustness"
    category: ClassVar[str] = "natural"
    modalities: ClassVar[tuple[str, ...]] = ("tabular", "image", "text")
    default_conditions: ClassVar[tuple[str, ...]] = ("accuracy_drop_s3 <= 0.10 warn 0.05",)
    regression_conditions: ClassVar[tuple[str, ...]] = ("rmse_increase_s3 <= 0.25 warn 0.10",)
    headline_metric: ClassVar[str | None] = "accuracy_drop_s3"

    def __init__(self, *, perturbations: Sequence[str] | None = None,
                 severities: Sequence[int] = (1, 2, 3, 4, 5), max_samples: int = 500,
                 column_sensitivity: bool = True, conditions: Sequence[Any] | None = None) -> None:
        super().__init__(conditions=conditions)
        if perturbations is not None:
            perturbations = perturb.PERTURBATIONS.check_names(self, "perturbations", perturbations)
        self.perturbations = perturbations
        self.severities = check_severities(self, severities)
        check_positive(self, "max_samples", max_samples, integer=True)
        self.max_samples = int(max_samples)
        if not isinstance(column_sensitivity, (bool, np.bool_)):
            raise param_error(self, "column_sensitivity", "True or False", column_sensitivity)
        self.column_sensitivity = bool(column_sensitivity)

    def conditions_for(self, model: Any, data: Any) -> list[Condition]:
        if self.conditions is not None:
            return list(self.conditions)
        texts = self.regression_conditions if getattr(model, "task", None) == "regression" \
            else self.default_conditions
        if min(self.severities) > REFERENCE_SEVERITY:
            # no severity <= 3 was asked for: judge the worst case over the ones that were
            texts = tuple(t.replace("accuracy_drop_s3", "max_accuracy_drop")
                          .replace("rmse_increase_s3", "max_rmse_increase") for t in texts)
        return [Condition.parse(c) for c in texts]

    def metric_names(self, model: Any, data: Any) -> tuple[str, ...]:
        if getattr(model, "task", None) == "regression":
            return ("clean_rmse", "rmse_increase_s3", "max_rmse_increase")
        return ("clean_accuracy", "accuracy_drop_s3", "max_accuracy_drop", "mean_flip_rate")

    def headline_for(self, model: Any) -> str | None:
        regression = getattr(model, "task", None) == "regression"
        if min(self.severities) > REFERENCE_SEVERITY:
            return "max_rmse_increase" if regression else "max_accuracy_drop"
        return "rmse_increase_s3" if regression else self.headline_metric

    def _names_for(self, modality: str) -> list[str]:
        available = perturb.names(modality)
        if self.perturbations is None:
            return available
        wrong = [p for p in self.perturbations if p not in available]
        if wrong:
            raise ConfigError(f"NaturalRobustness(perturbations=...): {wrong} do not apply to {modality} data; "
                              f"{modality} perturbations are {available}")
        return list(self.perturbations)

    def validate(self, model: Any, data: Any) -> None:
        super().validate(model, data)
        if data.y is None:
            raise ConfigError(f"check {self.name!r} needs labels: the data has none (pass y or --target)")
        self._names_for(data.modality)

    def _measure(self, model: Any, data: Any, rng: np.random.Generator) -> Measurement:
        regression = getattr(model, "task", "classification") == "regression"
        sample = data.sample(self.max_samples, seed=rng, stratify=not regression)
        names = self._names_for(data.modality)
        # one base seed, then one stream per perturbation shared by its severities (nested draws,
        # see nested_rng); a perturbation's draws do not depend on which others were chosen
        base = int(rng.integers(2**63))
        y = np.asarray(sample.y)
        clean_pred = model.predict(sample.x)
        boot_seed = int(rng.integers(2**31))
        at_chance = chance_reason(y, clean_pred, model.task)
        if at_chance:
            clean = _regression if regression else _classification
            metrics, _, _ = clean(y, clean_pred, {}, [], self.severities, boot_seed)
            return Measurement(metrics, {}, {}, not_meaningful=at_chance)

        cells: dict[tuple[str, int], np.ndarray | None] = {}
        errors: dict[str, str] = {}
        inert: list[str] = []
        unusable: dict[str, str] = {}
        # examples are taken from the very batches the model predicted, at the severity nearest 3
        ex_sev = min(self.severities, key=lambda s: (abs(s - REFERENCE_SEVERITY), s))
        ex_index = _example_index(sample, clean_pred)
        ex_order = _round_robin(names, MAX_IMAGE_EXAMPLES) if data.modality == "image" and ex_index is not None \
            else []
        ex_names = set(ex_order)
        kept: dict[str, Any] = {}
        grid = _perturbation_grid(model, names, self.severities, sample, base,
                                  (ex_sev, ex_index, data.modality, ex_names))
        for pname in names:
            changed = False
            for sev in self.severities:
                cell = grid[(pname, sev)]
                if "input_error" in cell:
                    if self.perturbations is not None:  # asked for by name: an error row and a warning
                        errors.setdefault(pname, cell["error"])
                        cells[(pname, sev)] = None
                        changed = True
                        continue
                    # picked by default but unusable on this data (saturate on grey images)
                    unusable[pname] = cell["input_error"]
                    break
                if "pred" not in cell:  # the model may reject perturbed input
                    errors.setdefault(pname, cell["error"])
                    cells[(pname, sev)] = None
                    changed = True
                    continue
                changed = changed or cell["changed"]
                cells[(pname, sev)] = cell["pred"]
                if "example" in cell:
                    kept[pname] = cell["example"]
            if pname in unusable:
                continue
            if not changed:
                # e.g. category_swap on all-numeric data: nothing to measure, so no rows for it
                inert.append(pname)
        names = [n for n in names if n not in inert and n not in unusable]
        if not names:
            raise ConfigError(f"none of the perturbations {inert} changed any input of this data; choose "
                              f"perturbations that apply to it")
        if regression:
            metrics, rows, curve = _regression(y, clean_pred, cells, names, self.severities, boot_seed)
        else:
            metrics, rows, curve = _classification(y, clean_pred, cells, names, self.severities, boot_seed)
        warnings = ()
        if errors:
            warnings = (f"the model could not handle {len(errors)} perturbation(s): "
                        + "; ".join(f"{k} ({first_sentence(v)})" for k, v in errors.items()),)
        family = {n: family_of(n) for n in names}
        for row in rows:
            row["family"] = family[row["perturbation"]]
        figures = {"heatmap": _heatmap(rows, names, self.severities, regression)}
        if data.modality == "image":
            curve.update(_family_curve(rows, names, self.severities, metrics))
            if ex_index is not None and kept:
                kept = {n: kept[n] for n in ex_order if n in kept}
                figures["examples"] = _image_examples(sample, clean_pred, cells, kept, ex_index, ex_sev)
        elif data.modality == "text" and not regression:
            items = _text_failures(sample, clean_pred, cells, kept, ex_sev)
            if items:
                figures["failures"] = {"kind": "text_examples", "title": f"Predictions the perturbations "
                                       f"changed (severity {ex_sev})", "items": items}
        tables = {"perturbations": rows}
        if errors:  # once per perturbation, whole: the rows say only which cells are missing
            tables["errors"] = [{"perturbation": k, "error": v} for k, v in errors.items()]
        skipped = [{"perturbation": n, "reason": reason} for n, reason in unusable.items()]
        skipped += [{"perturbation": n, "reason": "changed no input at any severity (nothing in this data it "
                     "applies to)"} for n in inert]
        if skipped:
            tables["not_applicable"] = skipped
        if data.modality == "tabular" and self.column_sensitivity:
            sens_seed = int(rng.integers(2**31))
            try:
                ranking = column_sensitivity(model, sample, "feature_noise", REFERENCE_SEVERITY, seed=sens_seed)
            except Exception as exc:  # noqa: BLE001 - the ranking is an extra; the main result stands
                warnings = (*warnings, f"column sensitivity could not be measured: {exc}")
            else:
                tables["column_sensitivity"] = ranking
                figures["column_sensitivity"] = _sensitivity_bars(ranking, regression)
        return Measurement(metrics, tables, curve, warnings, figures)


def _heatmap(rows, names, severities, regression) -> dict[str, Any]:
    key, label = ("rmse", "RMSE") if regression else ("accuracy", "accuracy")
    cell = {(r["perturbation"], r["severity"]): r[key] for r in rows}
    order = by_family(names)
    values = [[cell.get((n, s)) for s in severities] for n in order]
    finite = [v for line in values for v in line if v is not None]
    return {"kind": "heatmap", "title": f"{label.capitalize()} by perturbation and severity",
            "rows": order, "cols": list(severities), "values": values, "row_label": "perturbation",
            "col_label": "severity", "value_label": label, "vmin": 0.0,
            "vmax": (max(finite) if finite else 1.0) if regression else 1.0,
            "row_groups": [family_of(n) for n in order]}


def _family_curve(rows, names, severities, metrics) -> dict[str, Any]:
    """Mean accuracy of each family's perturbations at each severity (error cells left out)."""
    if "clean_accuracy" not in metrics:
        return {}
    clean = metrics["clean_accuracy"].value
    by: dict[str, dict[int, list[float]]] = {}
    for r in rows:
        if r.get("accuracy") is not None:
            by.setdefault(r["family"], {}).setdefault(r["severity"], []).append(r["accuracy"])
    series = []
    for fam in dict.fromkeys(family_of(n) for n in by_family(names)):
        per = by.get(fam, {})
        xs = [s for s in severities if s in per]
        series.append({"name": fam, "x": [0, *xs], "y": [clean, *[float(np.mean(per[s])) for s in xs]],
                       "low": None, "high": None})
    return {"accuracy_by_family": {"title": "Mean accuracy per perturbation family", "x_label": "severity",
                                   "y_label": "accuracy", "series": series}}


def _example_index(sample: Any, clean_pred: np.ndarray) -> int | None:
    """Which image to show: the first one the model gets right (else the first); None when the
    images are too large for the report's JSON or the data is not images."""
    if sample.modality == "text":
        return 0
    if sample.modality != "image":
        return None
    if max(np.shape(sample.x)[2:]) > MAX_EXAMPLE_SIDE:
        return None
    right = np.flatnonzero(np.asarray(clean_pred) == np.asarray(sample.y)) if sample.y is not None else []
    return int(right[0]) if len(right) else 0


def _image_examples(sample, clean_pred, cells, kept, index, severity) -> dict[str, Any]:
    lo, hi = sample.schema.value_range or (0.0, 1.0)
    digits = 3 if hi - lo <= 1 else 1  # ~1/1000 of the range: finer than a screen shows

    def nested(img: Any) -> list:
        return np.round(np.asarray(img, dtype=np.float64), digits).tolist()

    before = nested(np.asarray(sample.x)[index])
    items = []
    for pname, img in kept.items():
        pred = cells.get((pname, severity))
        after = "error" if pred is None else pred[index]
        items.append({"caption": f"{pname} ({family_of(pname)}) @ {severity}: {clean_pred[index]} -> {after}",
                      "before": before, "after": nested(img), "perturbation": pname})
    return {"kind": "image_examples", "title": f"One image under each perturbation family (severity {severity})",
            "value_range": [float(lo), float(hi)], "items": items}


def _text_failures(sample, clean_pred, cells, kept, severity) -> list[dict[str, Any]]:
    """Up to MAX_TEXT_EXAMPLES sentences whose prediction a perturbation changed, taking one
    perturbation after another; failures of correctly classified sentences come first."""
    y = np.asarray(sample.y)
    queues = []
    for pname, texts in kept.items():
        pred = cells.get((pname, severity))
        if pred is None:
            continue
        flipped = np.flatnonzero(pred != clean_pred)
        # correct -> wrong first: the failures a user cares most about
        flipped = flipped[np.argsort(~(clean_pred[flipped] == y[flipped]), kind="stable")]
        queues.append([{"original": sample.x[i], "perturbed": texts[i], "label": y[i],
                        "pred_before": clean_pred[i], "pred_after": pred[i], "perturbation": pname}
                       for i in flipped[:MAX_TEXT_EXAMPLES]])
    items: list[dict[str, Any]] = []
    while len(items) < MAX_TEXT_EXAMPLES and any(queues):
        for q in queues:
            if q and len(items) < MAX_TEXT_EXAMPLES:
                items.append(q.pop(0))
    return items


def _sensitivity_bars(ranking, regression) -> dict[str, Any]:
    key = "rmse_increase" if regression else "accuracy_drop"
    return {"kind": "bars", "title": f"{'RMSE increase' if regression else 'Accuracy drop'} when only one "
            f"column is perturbed (feature_noise @ {REFERENCE_SEVERITY})", "x_label": key.replace("_", " "),
            "y_label": "column",
            "labels": [r["column"] for r in ranking[:MAX_BARS]],
            "values": [r.get(key, 0.0) for r in ranking[:MAX_BARS]],
            "low": None, "high": None}


def _perturbation_grid(model: Any, names: list[str], severities: Sequence[int], sample: Any, base: int,
                       examples: tuple) -> dict[tuple[str, int], dict[str, Any]]:
    """Predictions at every (perturbation, severity), on the current executor (:mod:`stalwart.execute`).

    Every cell draws from its own stream (``nested_rng(base, name)``), so cells are independent and
    the grid is the same whichever executor runs it and in whatever order.
    """
    from stalwart.execute import resolve_executor

    shared = (model, {name: perturb.get(name) for name in names}, sample.x, sample.schema, base, examples)
    grid = [(name, int(sev)) for name in names for sev in severities]
    return dict(zip(grid, resolve_executor(None).map(_perturbation_cell, grid, shared=shared)))


def _perturbation_cell(shared: tuple, cell: tuple[str, int]) -> dict[str, Any]:
    """One cell of the grid: predictions, whether any input changed, the example kept for the report."""
    model, perturbations, x, schema, base, (ex_sev, ex_index, modality, ex_names) = shared
    name, sev = cell
    try:
        x_pert = perturbations[name].apply(x, sev, nested_rng(base, name), schema)
    except InputError as exc:
        return {"input_error": str(exc).split(". ")[0], "error": error_text(exc)}
    try:
        out: dict[str, Any] = {"changed": not _same(x_pert, x), "pred": np.asarray(model.predict(x_pert))}
    except Exception as exc:  # noqa: BLE001 - the model may reject perturbed input
        return {"error": error_text(exc)}
    if sev == ex_sev and (modality == "text" or name in ex_names):
        out["example"] = x_pert[ex_index] if modality == "image" else x_pert
    return out


def _same(a: Any, b: Any) -> bool:
    """Whether a perturbed input equals the clean one (NaN equal to NaN)."""
    if isinstance(a, pd.DataFrame) and isinstance(b, pd.DataFrame):
        return a.equals(b)
    if isinstance(a, list) or isinstance(b, list):
        return list(a) == list(b)
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return False
    return bool(np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))


def _classification(y, clean_pred, cells, names, severities, seed):
    n = len(y)
    clean_ok = clean_pred == y
    k_clean = int(clean_ok.sum())
    acc_clean = k_clean / n
    lo, hi = wilson_interval(k_clean, n)
    metrics = {"clean_accuracy": Metric("clean_accuracy", acc_clean, lo, hi, n)}
    rows, series, flips = [], [], []
    worst: dict[str, tuple[float, tuple[str, int]] | None] = {"s3": None, "all": None}
    for pname in names:
        xs, ys, lows, highs = [0], [acc_clean], [lo], [hi]
        for sev in severities:
            pred = cells[(pname, sev)]
            if pred is None:
                rows.append({"perturbation": pname, "severity": sev, "accuracy": None, "low": None,
                             "high": None, "drop": None, "flip_rate": None, "flip_low": None,
                             "flip_high": None, "status": "error"})
                continue
            ok = pred == y
            flipped = pred != clean_pred
            flips.append(flipped)
            k, f = int(ok.sum()), int(flipped.sum())
            a_lo, a_hi = wilson_interval(k, n)
            f_lo, f_hi = wilson_interval(f, n)
            drop = acc_clean - k / n
            rows.append({"perturbation": pname, "severity": sev, "accuracy": k / n, "low": a_lo, "high": a_hi,
                         "drop": drop, "flip_rate": f / n, "flip_low": f_lo, "flip_high": f_hi, "status": "ok"})
            xs.append(sev)
            ys.append(k / n)
            lows.append(a_lo)
            highs.append(a_hi)
            for key, within in (("s3", sev <= REFERENCE_SEVERITY), ("all", True)):
                if within and (worst[key] is None or drop > worst[key][0]):
                    worst[key] = (drop, (pname, sev))
        series.append({"name": pname, "x": xs, "y": ys, "low": lows, "high": highs})
    for key, metric in (("s3", "accuracy_drop_s3"), ("all", "max_accuracy_drop")):
        if worst[key] is None:
            continue
        drop, cell = worst[key]
        # the two accuracies are paired (same samples): Newcombe's interval for their difference
        d_lo, d_hi = paired_difference_interval(clean_ok, cells[cell] == y)
        metrics[metric] = Metric(metric, drop, d_lo, d_hi, n)
    if flips:
        per_sample = np.mean(np.stack(flips), axis=0)
        f_lo, f_hi = bootstrap_ci(per_sample, seed=seed)
        if f_lo == f_hi:  # every sample alike (e.g. nothing flipped): the bootstrap has no spread to show
            f_lo, f_hi = wilson_interval(round(float(per_sample.sum())), n)
        metrics["mean_flip_rate"] = Metric("mean_flip_rate", float(per_sample.mean()), f_lo, f_hi, n)
    curve = {"accuracy_vs_severity": {"title": "Accuracy vs severity", "x_label": "severity",
                                      "y_label": "accuracy", "series": series}}
    return metrics, rows, curve


def _rmse(sq: np.ndarray, axis: int | None = None) -> Any:
    return np.sqrt(np.mean(sq, axis=axis))


def _regression(y, clean_pred, cells, names, severities, seed):
    n = len(y)
    y = y.astype(float)
    sq_clean = (np.asarray(clean_pred, dtype=float) - y) ** 2
    rmse_clean = float(_rmse(sq_clean))
    lo, hi = bootstrap_ci(sq_clean, stat=_rmse, seed=seed)
    metrics = {"clean_rmse": Metric("clean_rmse", rmse_clean, lo, hi, n)}
    rows, series = [], []
    worst: dict[str, float | None] = {"s3": None, "all": None}
    for pname in names:
        xs, ys, lows, highs = [0], [rmse_clean], [lo], [hi]
        for sev in severities:
            pred = cells[(pname, sev)]
            if pred is None:
                rows.append({"perturbation": pname, "severity": sev, "rmse": None, "low": None, "high": None,
                             "increase": None, "status": "error"})
                continue
            sq = (np.asarray(pred, dtype=float) - y) ** 2
            r = float(_rmse(sq))
            r_lo, r_hi = bootstrap_ci(sq, stat=_rmse, seed=seed)
            inc = r / rmse_clean - 1 if rmse_clean > 0 else (0.0 if r == 0 else float("inf"))
            rows.append({"perturbation": pname, "severity": sev, "rmse": r, "low": r_lo, "high": r_hi,
                         "increase": inc, "status": "ok"})
            xs.append(sev)
            ys.append(r)
            lows.append(r_lo)
            highs.append(r_hi)
            for key, within in (("s3", sev <= REFERENCE_SEVERITY), ("all", True)):
                if within and (worst[key] is None or inc > worst[key]):
                    worst[key] = inc
        series.append({"name": pname, "x": xs, "y": ys, "low": lows, "high": highs})
    for key, metric in (("s3", "rmse_increase_s3"), ("all", "max_rmse_increase")):
        if worst[key] is not None:
            metrics[metric] = Metric(metric, worst[key], n=n)
    curve = {"rmse_vs_severity": {"title": "RMSE vs severity", "x_label": "severity", "y_label": "RMSE",
                                  "series": series}}
    return metrics, rows, curve
