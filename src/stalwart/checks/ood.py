"""OOD detection check: can the model's deployment tell unfamiliar inputs from familiar ones?

Protocol (seeded): a stratified sample of at most ``max_samples`` rows of the data is split in
two halves at random. The detectors are fitted on the first half (the "training" side:
class means, nearest-neighbour index, isolation forest); the second half is the held-out
in-distribution set. The out-of-distribution set is the user's ``ood_data`` (up to as many
rows as the held-out half), or synthetic data made from the fit half with
:func:`stalwart.shift.ood.make_ood` -- uniform noise over the value range for images, rows
beyond every column's observed range for tables. Each detector scores both sets; AUROC, AUPR
and the FPR at 95% TPR follow (OOD is the positive class).

Synthetic OOD data are easy by design: a detector that fails on them will fail on real novelty
too, but one that passes has only shown it can flag the obvious. Pass real OOD data when there
is some (the CLI's ``stalwart ood`` does).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from scipy import stats

from stalwart._stats import wilson_interval
from stalwart._validation import check_choice, check_positive, param_error
from stalwart.checks.base import Check, Measurement, Metric, SkipCheck, error_text, register
from stalwart.checks.drift import check_source, histogram_figure, load_like
from stalwart.data.dataset import Dataset
from stalwart.errors import ConfigError, InputError

__all__ = ["OODDetection", "auroc_interval"]

_N_BOOT = 1000


def _detectors() -> Any:
    """The detector registry (imported on use: it loads the torch-based OOD detectors)."""
    from stalwart.shift.base import DETECTORS

    return DETECTORS


def auroc_interval(s_in: np.ndarray, s_out: np.ndarray, seed: int = 0, n_boot: int = _N_BOOT,
                   chunk: int = 100) -> tuple[float, float]:
    """95% percentile bootstrap interval of the AUROC, resampling each set within itself.

    AUROC is the Mann-Whitney U over ``n_in n_out``; each resample's U comes from average ranks
    of the pooled scores, all resamples of a chunk in one vectorised ``rankdata`` call.
    """
    rng = np.random.default_rng(seed)
    n_in, n_out = s_in.size, s_out.size
    values = []
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        pooled = np.concatenate([s_in[rng.integers(0, n_in, (b, n_in))],
                                 s_out[rng.integers(0, n_out, (b, n_out))]], axis=1)
        ranks = stats.rankdata(pooled, axis=1)
        u = ranks[:, n_in:].sum(axis=1) - n_out * (n_out + 1) / 2
        values.append(u / (n_in * n_out))
    lo, hi = np.quantile(np.concatenate(values), [0.025, 0.975])
    return float(lo), float(hi)


@register
class OODDetection(Check):
    """How well OOD detectors separate held-out in-distribution data from OOD data.

    See the module docstring for the protocol. Detectors (names of
    :mod:`stalwart.shift.ood`): by default ``max_softmax`` (classifiers), ``energy``
    (differentiable classifiers), ``knn_distance``, ``mahalanobis`` (images, or any torch
    model, whose penultimate features it uses) and ``isolation_forest`` (tables). A detector
    that cannot run on this model (``energy`` on a black-box model, say) is listed in the
    ``detectors`` table with the reason and the status becomes at least WARN when it was asked
    for by name.

    Metrics
        per detector ``{name}_auroc`` (bootstrap interval), ``{name}_aupr`` and ``{name}_fpr95``
        (the share of in-distribution samples flagged at 95% TPR, a rate over them: Wilson
        interval); ``best_auroc`` and ``best_fpr95``: those of the detector with the highest AUROC.

    Parameters
    ----------
    detectors : list of str, optional
        Names from ``max_softmax, max_logit, energy, mahalanobis, knn_distance, isolation_forest``.
    ood_kind : {"noise", "far"}, optional
        Synthetic OOD data; default "noise" for images, "far" for tables.
    ood_data : Dataset, array, DataFrame or path, optional
        Real OOD inputs (replaces the synthetic ones); labels, if any, are ignored.
    layer : str, optional
        Torch models (eager or TorchScript) only: the submodule, by its name in
        ``model.named_modules()``, whose output is the feature space of ``mahalanobis`` and
        ``knn_distance``; default the input of the last linear layer (penultimate activations).
        An unknown name is a ConfigError that lists the names.
    max_samples : int, default 1000
        Rows of the data used (half to fit, half held out).
    conditions : list, optional
        Default ``best_auroc >= 0.8 warn 0.9``.
    """

    name: ClassVar[str] = "ood_detection"
    category: ClassVar[str] = "ood"
    modalities: ClassVar[tuple[str, ...]] = ("tabular", "image")
    default_conditions: ClassVar[tuple[str, ...]] = ("best_auroc >= 0.8 warn 0.9",)
    headline_metric: ClassVar[str | None] = "best_auroc"

    def __init__(self, *, detectors: Sequence[str] | None = None, ood_kind: str | None = None,
                 ood_data: Any = None, layer: str | None = None, max_samples: int = 1000,
                 conditions: Sequence[Any] | None = None) -> None:
        super().__init__(conditions=conditions)
        if detectors is not None:
            detectors = _detectors().check_names(self, "detectors", detectors, kind="ood")
        self.detectors = detectors
        check_choice(self, "ood_kind", ood_kind, ("noise", "far", None))
        self.ood_kind = ood_kind
        source = check_source(self, "ood_data", ood_data, required=False)
        self.ood_data = source if source is None or isinstance(source, str) else f"<{type(source).__name__} in memory>"
        self._ood_data = source
        if layer is not None and not (isinstance(layer, str) and layer):
            raise param_error(self, "layer", "the name of a submodule (as in model.named_modules()) or None", layer)
        featured = _detectors().names(kind="ood", uses_layer=True)
        if layer is not None and detectors is not None and not set(detectors) & set(featured):
            raise ConfigError(f"OODDetection(layer={layer!r}) sets the feature space of {featured}, "
                              f"but detectors={detectors} runs neither; add one of them or drop layer.")
        self.layer = layer
        check_positive(self, "max_samples", max_samples, integer=True)
        if max_samples < 4:
            raise param_error(self, "max_samples", "an integer >= 4 (half fits the detectors, half is held out)",
                              max_samples)
        self.max_samples = int(max_samples)

    # -- which detectors ------------------------------------------------------------------------
    def _plan(self, model: Any, data: Dataset) -> list[tuple[str, str | None]]:
        """(detector, reason it cannot run or None) for each detector to try: the ones asked for,
        else every registered OOD detector (plug-ins too) that suggests itself for this model and
        data and can run on it."""
        registry = _detectors()
        if self.detectors is not None:
            return [(d, registry.get(d).requirement(model)) for d in self.detectors]
        return [(d, None) for d in registry.names(kind="ood")
                if registry.get(d).suggested(model, data) and registry.get(d).requirement(model) is None]

    def _build(self, name: str, model: Any, seed: int) -> Any:
        cls = _detectors().get(name)
        return cls.build(model, layer=self.layer if cls.uses_layer else None, seed=seed)

    # -- the fixed steps ------------------------------------------------------------------------
    def metric_names(self, model: Any, data: Any) -> tuple[str, ...]:
        return ("best_auroc", "best_fpr95", "*_auroc", "*_aupr", "*_fpr95")

    def validate(self, model: Any, data: Any) -> None:
        from stalwart.models.torch import is_torch_model

        super().validate(model, data)
        if self.layer is not None:
            if not is_torch_model(model):
                raise ConfigError(f"OODDetection(layer={self.layer!r}) picks a layer of a torch model; the model is "
                                  f"{'missing' if model is None else model.name}. Drop layer (the detectors then "
                                  "work on the inputs) or pass a torch model (eager or TorchScript).")
            from stalwart.shift.ood import FeatureExtractor

            # now, not per detector: an unknown name (ConfigError) or a TorchScript layer with no
            # single output (ModelError) is the user's to fix, not a detector that "could not run"
            FeatureExtractor(model, self.layer, "OODDetection")
        if self._ood_data is not None:
            self._ood_for(data)
        if self.detectors is None and not self._plan(model, data):
            raise ConfigError("OODDetection has no detector for this model and data; pass detectors=[...]")

    def _ood_for(self, data: Dataset) -> Dataset:
        if not hasattr(self, "_ood_loaded"):
            ds = load_like(self._ood_data, data, "ood_data")
            shape_in = np.shape(data.x)[1:] if data.modality == "image" else tuple(data.x.columns)
            shape_out = np.shape(ds.x)[1:] if ds.modality == "image" else tuple(ds.x.columns)
            if shape_in != shape_out:
                what = "images of shape" if data.modality == "image" else "columns"
                raise InputError(f"ood_data has {what} {list(shape_out)} but the data has {list(shape_in)}; "
                                 "OOD inputs must fit the model's input.")
            self._ood_loaded = ds
        return self._ood_loaded

    def _measure(self, model: Any, data: Dataset, rng: np.random.Generator) -> Measurement:
        from stalwart.shift.ood import make_ood, ood_metrics

        if data.modality == "tabular":
            cat = [c.name for c in data.schema.columns if c.kind == "categorical"]
            if cat:
                raise SkipCheck(f"columns {cat[:5]} are categorical; the OOD detectors need numeric inputs")
        classify = model is not None and getattr(model, "task", None) == "classification"
        sample = data.sample(self.max_samples, seed=rng, stratify=classify and data.y is not None)
        order = rng.permutation(len(sample))
        half = len(sample) // 2
        fit_part, held = sample.subset(np.sort(order[:half])), sample.subset(np.sort(order[half:]))
        x_fit, x_in = _inputs(fit_part), _inputs(held)
        seed = int(rng.integers(2**31))
        if self._ood_data is not None:
            ood = self._ood_for(data)
            take = np.sort(rng.permutation(len(ood))[: len(held)])
            x_out = _inputs(ood.subset(take))
            source = f"ood_data ({ood.name})"
        else:
            kind = self.ood_kind or ("noise" if data.modality == "image" else "far")
            x_out = np.asarray(make_ood(fit_part, kind, seed, n=len(held)).x_out)
            if data.modality == "tabular":
                x_out = np.asarray(x_out, dtype=np.float64)
            source = f"synthetic ({kind})"

        rows, metrics, scored = [], {}, {}
        notes: list[str] = []
        for name, reason in self._plan(model, data):
            if reason is None:
                try:
                    det = self._build(name, model, seed).fit(x_fit, None if fit_part.y is None or not classify
                                                             else fit_part.y)
                    s_in, s_out = np.asarray(det.score(x_in), float), np.asarray(det.score(x_out), float)
                except Exception as exc:  # noqa: BLE001 - one detector failing must not sink the others
                    reason = error_text(exc)
            if reason is not None:
                rows.append({"detector": name, "auroc": None, "auroc_low": None, "auroc_high": None, "aupr": None,
                             "fpr95": None, "fpr95_low": None, "fpr95_high": None, "status": "not run",
                             "reason": reason})
                if self.detectors is not None:
                    notes.append(f"{name} not run ({reason})")
                continue
            m = ood_metrics(s_in, s_out)
            lo, hi = auroc_interval(s_in, s_out, seed=seed)
            n_in = int(m["n_in"])
            k_fp = int(round(m["fpr95"] * n_in))
            f_lo, f_hi = wilson_interval(k_fp, n_in)
            n_both = n_in + int(m["n_out"])
            metrics[f"{name}_auroc"] = Metric(f"{name}_auroc", m["auroc"], lo, hi, n_both)
            metrics[f"{name}_aupr"] = Metric(f"{name}_aupr", m["aupr"], n=n_both)
            metrics[f"{name}_fpr95"] = Metric(f"{name}_fpr95", m["fpr95"], f_lo, f_hi, n_in)
            scored[name] = (s_in, s_out)
            rows.append({"detector": name, "auroc": m["auroc"], "auroc_low": lo, "auroc_high": hi,
                         "aupr": m["aupr"], "fpr95": m["fpr95"], "fpr95_low": f_lo, "fpr95_high": f_hi,
                         "status": "ok", "reason": None})
        if not scored:
            raise ConfigError("no OOD detector could run: " + "; ".join(f"{r['detector']}: {r['reason']}"
                                                                       for r in rows))
        best = max(scored, key=lambda k: (metrics[f"{k}_auroc"].value, -metrics[f"{k}_fpr95"].value))
        for key in ("auroc", "fpr95"):
            src = metrics[f"{best}_{key}"]
            metrics[f"best_{key}"] = Metric(f"best_{key}", src.value, src.low, src.high, src.n)
        ok_rows = [r for r in rows if r["status"] == "ok"]
        s_in, s_out = scored[best]
        figures = {
            "best_detector_scores": histogram_figure(
                s_in, s_out, f"{best} scores: held-out in-distribution vs {source}", f"{best} score",
                names=("in-distribution", "out-of-distribution")),
            "auroc_by_detector": {"kind": "bars", "title": f"AUROC per detector (OOD: {source})",
                                  "x_label": "AUROC", "y_label": "detector", "labels": [r["detector"] for r in ok_rows],
                                  "values": [r["auroc"] for r in ok_rows], "low": [r["auroc_low"] for r in ok_rows],
                                  "high": [r["auroc_high"] for r in ok_rows]},
        }
        tables = {"detectors": rows,
                  "protocol": [{"fit_rows": len(fit_part), "in_distribution_rows": len(held),
                                "ood_rows": len(x_out), "ood_source": source, "best_detector": best}]}
        return Measurement(metrics, tables, {}, tuple(notes), figures)


def _inputs(ds: Dataset) -> np.ndarray:
    """A Dataset's inputs as a float array (tables: numeric columns; NaN stays NaN)."""
    if ds.modality == "image":
        return np.asarray(ds.x)
    x = ds.numeric_x()
    if not np.isfinite(x).all():
        raise SkipCheck("the data has missing values; the OOD detectors need complete numeric rows")
    return x
