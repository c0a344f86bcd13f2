"""Corruption robustness: the corruption error (CE, mCE) of Hendrycks & Dietterich (ICLR 2019).

The ImageNet-C protocol scores a classifier by its top-1 error under every corruption ``c`` at
every severity ``s``, normalised by the errors of a baseline model (AlexNet in the paper):

- ``CE_c = sum_s E_{s,c} / sum_s E^base_{s,c}``; ``mCE = mean_c CE_c``;
- relative ``CE_c = sum_s (E_{s,c} - E_clean) / sum_s (E^base_{s,c} - E^base_clean)``: how much
  of its accuracy a model loses under corruption, relative to how much the baseline loses;
  relative ``mCE = mean_c``. A value below 1 is better than the baseline.

The paper quotes both as percentages; here they are plain ratios (1.0 = as good as the baseline).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from stalwart import perturb
from stalwart._stats import bootstrap_ci, wilson_interval
from stalwart._validation import check_positive, check_severities, param_error
from stalwart.checks.base import (
    Check,
    Condition,
    Measurement,
    Metric,
    SkipCheck,
    error_text,
    first_sentence,
    register,
)
from stalwart.checks.natural import by_family, family_of
from stalwart.checks.performance import chance_reason
from stalwart.errors import ConfigError, InputError, StalwartError
from stalwart.perturb.base import nested_rng

__all__ = ["CorruptionRobustness", "corruption_errors"]

N_BOOT = 1000


def corruption_errors(errors: Any, clean_error: Any, baseline_errors: Any, baseline_clean_error: Any,
                      n: int) -> tuple[np.ndarray, np.ndarray]:
    """Corruption error and relative corruption error per corruption.

    Parameters
    ----------
    errors : array (C, S) or (C, S, B)
        The model's error rate under corruption ``c`` at severity ``s`` (``B``: bootstrap replicates).
    clean_error : float or array (B,)
    baseline_errors : array like ``errors``
        The baseline's errors on the same corrupted inputs.
    baseline_clean_error : float or array (B,)
    n : int
        Number of samples. A baseline whose errors sum to 0 over the severities would make CE
        infinite: its sum is raised to half a sample's error, ``1 / (2 n)``.

    Returns
    -------
    ce, relative_ce : arrays (C,) or (C, B)
        ``relative_ce`` is NaN for a corruption that does not raise the baseline's error
        (``sum_s (E^base_{s,c} - E^base_clean) <= 0``): the ratio has no meaning there.

    Examples
    --------
    >>> e = np.array([[0.2, 0.4]]); b = np.array([[0.4, 0.8]])
    >>> ce, rel = corruption_errors(e, 0.1, b, 0.2, n=100)
    >>> float(ce[0]), float(rel[0])
    (0.5, 0.5)
    """
    e = np.asarray(errors, dtype=np.float64)
    b = np.asarray(baseline_errors, dtype=np.float64)
    ce = e.sum(axis=1) / np.maximum(b.sum(axis=1), 0.5 / n)
    s = e.shape[1]
    num = e.sum(axis=1) - s * np.asarray(clean_error, dtype=np.float64)
    den = b.sum(axis=1) - s * np.asarray(baseline_clean_error, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(den > 1e-12, num / np.where(den > 1e-12, den, 1.0), np.nan)
    return ce, rel


@register
class CorruptionRobustness(Check):
    """Corruption error (CE, mCE) of an image classifier, after Hendrycks & Dietterich (2019).

    Every corruption is applied at every severity to one stratified sample; the model (and the
    baseline, on the very same corrupted images) predicts each batch once.

    The baseline
        ``baseline`` is the reference model of the normalisation (the paper uses AlexNet): a
        :class:`~stalwart.models.Model` (or anything :func:`stalwart.wrap` takes) or the path of
        a saved model, loaded with :func:`stalwart.models.load_model` when the check runs. Without
        one, the **clean-error baseline** is used: ``E^base_{s,c} := E_clean``, the model's own
        clean error at every corruption and severity, so ``CE_c`` is the model's mean error under
        ``c`` divided by its clean error (how many times corruption multiplies the error; a clean
        error of 0 is raised to ``1 / (2 n)``). The relative mCE compares a model's loss with the
        baseline's loss and is therefore reported only with a baseline model.

    Metrics
        ``clean_error`` (Wilson; ``baseline_clean_error`` too with a baseline model); ``mce`` (mean over corruptions of ``CE_c``); ``relative_mce``
        (baseline model only, mean over the corruptions that raise the baseline's error);
        ``mean_corruption_error``: unnormalised mean error over every corruption and severity;
        ``mean_accuracy_drop``: that minus the clean error; ``mean_flip_rate``: share of
        predictions that differ from the clean prediction; ``mce_<family>`` per corruption family
        (noise, blur, weather, digital, geometric). Intervals: Wilson for each cell's error,
        paired bootstrap over the samples (1000 replicates) for the aggregates.
    Tables and figures
        ``corruptions`` (CE, relative CE, mean error, flip rate per corruption), ``cells`` (error
        with Wilson interval per corruption and severity, with the baseline's), ``families``; a
        heatmap of error by corruption x severity; the curve ``accuracy_by_family`` (mean accuracy
        of each family against severity, clean at 0).

    Parameters
    ----------
    perturbations : list of str, optional
        Image corruptions; default every registered image perturbation.
    severities : list of int, default [1, 2, 3, 4, 5]
        The protocol sums over all five; fewer give a CE on those only.
    max_samples : int, default 500
    baseline : Model, model object or path, optional
        See above. An in-memory model cannot be written to YAML: save it and pass its path.
    conditions : list, optional
        Default with a baseline model ``mce <= 1.0 warn 0.9`` (no worse than the baseline); with
        the clean-error baseline ``mean_accuracy_drop <= 0.10 warn 0.05``.

    Examples
    --------
    >>> check = CorruptionRobustness(perturbations=["gaussian_noise", "contrast"], severities=[1, 3, 5])
    >>> check.name, check.severities
    ('corruption_robustness', [1, 3, 5])
    """

    name: ClassVar[str] = "corruption_robustness"
    category: ClassVar[str] = "natural"
    modalities: ClassVar[tuple[str, ...]] = ("image",)
    default_conditions: ClassVar[tuple[str, ...]] = ("mean_accuracy_drop <= 0.10 warn 0.05",)
    baseline_conditions: ClassVar[tuple[str, ...]] = ("mce <= 1.0 warn 0.9",)
    headline_metric: ClassVar[str | None] = "mean_accuracy_drop"

    def __init__(self, *, perturbations: Sequence[str] | None = None,
                 severities: Sequence[int] = (1, 2, 3, 4, 5), max_samples: int = 500,
                 baseline: Any = None, conditions: Sequence[Any] | None = None) -> None:
        super().__init__(conditions=conditions)
        if perturbations is not None:
            perturbations = perturb.PERTURBATIONS.check_names(self, "perturbations", perturbations, modality="image")
        self.perturbations = perturbations
        self.severities = check_severities(self, severities)
        check_positive(self, "max_samples", max_samples, integer=True)
        self.max_samples = int(max_samples)
        self._baseline_model = None
        if baseline is None or isinstance(baseline, (str, os.PathLike)):
            if baseline is not None and not Path(baseline).is_file():
                raise param_error(self, "baseline", "a Model or the path of a saved model file (no file at "
                                  "that path; an in-memory baseline cannot be read back from YAML, save it "
                                  "first)", str(baseline))
            self.baseline = None if baseline is None else str(baseline)
        else:
            from stalwart.models import Model, wrap

            try:
                self._baseline_model = baseline if isinstance(baseline, Model) else wrap(baseline)
            except StalwartError:
                raise param_error(self, "baseline", "a Model, a model stalwart.wrap accepts, or the path "
                                  "of a saved model", type(baseline).__name__) from None
            self.baseline = None

    def params(self) -> dict[str, Any]:
        out = super().params()
        if self._baseline_model is not None:
            out["baseline"] = f"<in-memory model {self._baseline_model.name}>"
        return out

    @property
    def _has_baseline(self) -> bool:
        return self.baseline is not None or self._baseline_model is not None

    def conditions_for(self, model: Any, data: Any) -> list[Condition]:
        if self.conditions is not None:
            return list(self.conditions)
        texts = self.baseline_conditions if self._has_baseline else self.default_conditions
        return [Condition.parse(c) for c in texts]

    def headline_for(self, model: Any) -> str | None:
        return "mce" if self._has_baseline else self.headline_metric

    def metric_names(self, model: Any, data: Any) -> tuple[str, ...]:
        return ("clean_accuracy", "clean_error", "mce", "relative_mce", "baseline_clean_error", "mean_corruption_error",
                "mean_accuracy_drop", "mean_flip_rate", "mce_*")

    def validate(self, model: Any, data: Any) -> None:
        super().validate(model, data)
        if data.y is None:
            raise ConfigError(f"check {self.name!r} needs labels: the data has none (pass y or --target)")
        if self.perturbations is None and not perturb.names("image"):
            raise ConfigError("no image perturbations are registered")  # pragma: no cover

    def _load_baseline(self) -> Any:
        if self._baseline_model is not None:
            return self._baseline_model
        if self.baseline is None:
            return None
        from stalwart.models import load_model

        return load_model(self.baseline)

    def _measure(self, model: Any, data: Any, rng: np.random.Generator) -> Measurement:
        if getattr(model, "task", "classification") == "regression":
            raise SkipCheck("corruption error is defined for classifiers; the model is a regressor")
        baseline = self._load_baseline()
        if baseline is not None and getattr(baseline, "task", "classification") == "regression":
            raise ConfigError("CorruptionRobustness(baseline=...) must be a classifier; got a regressor")
        sample = data.sample(self.max_samples, seed=rng, stratify=True)
        names = list(self.perturbations or perturb.names("image"))
        base = int(rng.integers(2**63))
        boot_seed = int(rng.integers(2**31))
        x, y = sample.x, np.asarray(sample.y)
        n, sevs = len(y), self.severities
        clean_pred = np.asarray(model.predict(x))
        clean_wrong = clean_pred != y
        at_chance = chance_reason(y, clean_pred)
        if at_chance:
            k = int((~clean_wrong).sum())
            return Measurement({"clean_accuracy": Metric("clean_accuracy", k / n, *wilson_interval(k, n), n)}, {}, {},
                               not_meaningful=at_chance)
        b_clean_wrong = None if baseline is None else np.asarray(baseline.predict(x)) != y

        wrong, b_wrong, flips, used, errors = [], [], [], [], {}
        unusable: dict[str, str] = {}
        grid = _corruption_grid(model, baseline, names, sevs, x, sample.schema, base)
        for pname in names:
            cells = [grid[(pname, sev)] for sev in sevs]
            failed = next((c for c in cells if "pred" not in c), None)
            if failed is not None:
                if "input_error" in failed and self.perturbations is None:  # default set: e.g. saturate on grey
                    unusable[pname] = failed["input_error"]
                else:  # asked for by name, or the model failed on it: score the rest and say why this one is missing
                    errors[pname] = failed["error"]
                continue
            used.append(pname)
            wrong.append([c["pred"] != y for c in cells])
            flips.append([c["pred"] != clean_pred for c in cells])
            b_wrong.append([] if baseline is None else [c["baseline_pred"] != y for c in cells])
        if not used:
            raise ConfigError("the model could not be scored under any corruption: "
                              + "; ".join(f"{k}: {v}" for k, v in errors.items()))
        wrong_a = np.asarray(wrong, dtype=bool)            # (C, S, n)
        flips_a = np.asarray(flips, dtype=bool)
        err = wrong_a.mean(axis=2)                         # (C, S)
        e_clean = float(clean_wrong.mean())
        if baseline is None:
            b_wrong_a, b_err, be_clean = None, np.full_like(err, e_clean), e_clean
        else:
            b_wrong_a = np.asarray(b_wrong, dtype=bool)
            b_err, be_clean = b_wrong_a.mean(axis=2), float(b_clean_wrong.mean())
        ce, rel = corruption_errors(err, e_clean, b_err, be_clean, n)

        # paired bootstrap: resample the samples once, recompute every error from the same resample
        counts = _resample_counts(n, N_BOOT, boot_seed)                       # (n, B)
        err_b = (wrong_a.reshape(-1, n) @ counts).reshape(*err.shape, N_BOOT) / n
        clean_b = clean_wrong @ counts / n
        if b_wrong_a is None:
            b_err_b, b_clean_b = np.broadcast_to(clean_b, err_b.shape), clean_b
        else:
            b_err_b = (b_wrong_a.reshape(-1, n) @ counts).reshape(*err.shape, N_BOOT) / n
            b_clean_b = b_clean_wrong @ counts / n
        ce_b, rel_b = corruption_errors(err_b, clean_b, b_err_b, b_clean_b, n)

        def interval(reps: np.ndarray) -> tuple[float | None, float | None]:
            reps = reps[np.isfinite(reps)]
            if reps.size == 0:
                return None, None
            lo, hi = np.quantile(reps, [0.025, 0.975])
            return float(lo), float(hi)

        k_clean = int(clean_wrong.sum())
        metrics = {"clean_error": Metric("clean_error", k_clean / n, *wilson_interval(k_clean, n), n),
                   "mce": Metric("mce", float(ce.mean()), *interval(ce_b.mean(axis=0)), n)}
        if b_clean_wrong is not None:
            kb = int(b_clean_wrong.sum())
            metrics["baseline_clean_error"] = Metric("baseline_clean_error", kb / n, *wilson_interval(kb, n), n)
        defined = np.isfinite(rel)
        if baseline is not None and defined.any():
            metrics["relative_mce"] = Metric("relative_mce", float(rel[defined].mean()),
                                             *interval(np.nanmean(rel_b[defined], axis=0)), n)
        per_sample_err = wrong_a.mean(axis=(0, 1))
        mean_err = float(err.mean())
        metrics["mean_corruption_error"] = Metric("mean_corruption_error", mean_err,
                                                  *bootstrap_ci(per_sample_err, seed=boot_seed), n)
        metrics["mean_accuracy_drop"] = Metric("mean_accuracy_drop", mean_err - e_clean,
                                               *bootstrap_ci(per_sample_err - clean_wrong, seed=boot_seed), n)
        metrics["mean_flip_rate"] = Metric("mean_flip_rate", float(flips_a.mean()),
                                           *bootstrap_ci(flips_a.mean(axis=(0, 1)), seed=boot_seed), n)

        family = {c: family_of(c) for c in used}
        fam_order = list(dict.fromkeys(family[c] for c in by_family(used)))
        fam_rows = []
        for fam in fam_order:
            idx = np.array([i for i, c in enumerate(used) if family[c] == fam])
            metrics[f"mce_{fam}"] = Metric(f"mce_{fam}", float(ce[idx].mean()),
                                           *interval(ce_b[idx].mean(axis=0)), n)
            rel_f = rel[idx][np.isfinite(rel[idx])]
            fam_rows.append({"family": fam, "corruptions": len(idx), "mce": float(ce[idx].mean()),
                             "relative_mce": float(rel_f.mean()) if baseline is not None and rel_f.size else None,
                             "mean_error": float(err[idx].mean()), "mean_flip_rate": float(flips_a[idx].mean())})

        corr_rows, cell_rows = [], []
        k = wrong_a.sum(axis=2)
        lows, highs = wilson_interval(k, np.full_like(k, n))
        f_rate = flips_a.mean(axis=2)
        for i, c in enumerate(used):
            corr_rows.append({"corruption": c, "family": family[c], "ce": float(ce[i]),
                              "relative_ce": None if not np.isfinite(rel[i]) else float(rel[i]),
                              "mean_error": float(err[i].mean()), "baseline_mean_error": float(b_err[i].mean()),
                              "flip_rate": float(f_rate[i].mean())})
            for j, s in enumerate(sevs):
                cell_rows.append({"corruption": c, "family": family[c], "severity": s, "error": float(err[i, j]),
                                  "low": float(lows[i, j]), "high": float(highs[i, j]),
                                  "baseline_error": float(b_err[i, j]), "flip_rate": float(f_rate[i, j])})
        order = by_family(used)
        pos = {c: i for i, c in enumerate(used)}
        figures = {"heatmap": {
            "kind": "heatmap", "title": "Error by corruption and severity", "rows": order, "cols": list(sevs),
            "values": [[float(v) for v in err[pos[c]]] for c in order], "row_label": "corruption",
            "col_label": "severity", "value_label": "error", "vmin": 0.0, "vmax": 1.0,
            "row_groups": [family[c] for c in order]}}
        series = []
        for fam in fam_order:
            idx = [pos[c] for c in order if family[c] == fam]
            acc = 1.0 - err[idx].mean(axis=0)
            series.append({"name": fam, "x": [0, *sevs], "y": [1.0 - e_clean, *acc.tolist()],
                           "low": None, "high": None})
        if baseline is not None:
            series.append({"name": "baseline (all)", "x": [0, *sevs],
                           "y": [1.0 - be_clean, *(1.0 - b_err.mean(axis=0)).tolist()], "low": None, "high": None})
        curves = {"accuracy_by_family": {"title": "Accuracy vs severity per corruption family",
                                         "x_label": "severity", "y_label": "accuracy", "series": series}}
        tables: dict[str, list[dict[str, Any]]] = {"corruptions": corr_rows, "families": fam_rows,
                                                   "cells": cell_rows}
        warnings: tuple[str, ...] = ()
        if unusable:
            tables["not_applicable"] = [{"corruption": k_, "reason": v} for k_, v in unusable.items()]
        if errors:
            tables["not_scored"] = [{"corruption": k_, "error": v} for k_, v in errors.items()]
            warnings = (f"{len(errors)} corruption(s) could not be scored and are left out of the mCE: "
                        + "; ".join(f"{k_} ({first_sentence(v)})" for k_, v in errors.items()),)
        if baseline is not None and not defined.all():
            left = [c for c, d in zip(used, defined) if not d]
            warnings = (*warnings, f"the baseline's error does not rise under {left}; their relative CE is "
                        "undefined and left out of relative_mce")
        return Measurement(metrics, tables, curves, warnings, figures)


def _corruption_grid(model: Any, baseline: Any, names: list[str], severities: Sequence[int], x: np.ndarray,
                     schema: Any, base: int) -> dict[tuple[str, int], dict[str, Any]]:
    """Predictions at every (corruption, severity), on the current executor (:mod:`stalwart.execute`).

    Every cell draws from its own stream (``nested_rng(base, name)``), so cells are independent and
    the grid is the same whichever executor runs it and in whatever order.
    """
    from stalwart.execute import resolve_executor

    shared = (model, baseline, {name: perturb.get(name) for name in names}, x, schema, base)
    cells = [(name, int(sev)) for name in names for sev in severities]
    return dict(zip(cells, resolve_executor(None).map(_corruption_cell, cells, shared=shared)))


def _corruption_cell(shared: tuple, cell: tuple[str, int]) -> dict[str, Any]:
    """One cell of the grid: the model's (and the baseline's) predictions, or why there are none."""
    model, baseline, perturbations, x, schema, base = shared
    name, sev = cell
    try:
        # the same nested streams as NaturalRobustness: every severity makes the same draws
        x_pert = perturbations[name].apply(x, sev, nested_rng(base, name), schema)
        pred = np.asarray(model.predict(x_pert))
        baseline_pred = None if baseline is None else np.asarray(baseline.predict(x_pert))
    except InputError as exc:
        return {"input_error": str(exc).split(". ")[0], "error": error_text(exc)}
    except Exception as exc:  # noqa: BLE001 - the model failed on this corruption: score the rest
        return {"error": error_text(exc)}
    return {"pred": pred, "baseline_pred": baseline_pred}


def _resample_counts(n: int, n_boot: int, seed: int) -> np.ndarray:
    """(n, n_boot) matrix: how often each sample is drawn in each bootstrap resample."""
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    counts = np.zeros((n_boot, n), dtype=np.float64)
    np.add.at(counts, (np.arange(n_boot)[:, None], idx), 1.0)
    return counts.T
