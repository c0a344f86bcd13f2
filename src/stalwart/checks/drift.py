"""Drift checks: does the data under test still look like a reference sample?

- :class:`DataDrift` tests every column (:class:`~stalwart.shift.drift.TabularDrift`, Evidently's
  automatic test choice and a multiple-testing correction), and -- when a model and labels are
  there -- the drift of the model's predictions, of the labels, and the accuracy on reference vs
  current data (the signal of concept drift: same inputs, different answers).
- :class:`MultivariateDrift` tests the joint distribution: MMD on the standardised numeric
  columns, and a domain classifier's out-of-fold AUC over all columns.

The data a check runs on is the *current* sample; the reference is a parameter (a Dataset, a
DataFrame, or a path to a CSV / Parquet file, which is how YAML suites give it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from stalwart._stats import wilson_interval
from stalwart._validation import check_choice, check_labels, check_param, param_error
from stalwart.checks.base import (
    Check,
    CheckResult,
    Condition,
    Measurement,
    Metric,
    SkipCheck,
    Status,
    register,
)
from stalwart.data.dataset import Dataset
from stalwart.data.schema import Schema
from stalwart.errors import ConfigError, InputError
from stalwart.shift import univariate as uv
from stalwart.shift.base import DriftResult

__all__ = ["DataDrift", "MultivariateDrift", "load_like", "check_source", "drift_measurement", "drift_notes", "name_drifted",
           "histogram_figure", "bars_figure", "bars_figure_from_counts", "parquet_figures", "result_from_drift",
           "MAX_FIGURES"]

#: drifted columns that get a reference-vs-current figure (the most drifted first)
MAX_FIGURES = 6
_HIST_BINS = 20
_MAX_BARS = 10  # categories per bar figure (the most frequent over both samples)
_CORRECTIONS = ("bonferroni", "bh", None)


# -- loading the reference (or OOD) sample -------------------------------------------------------
def check_source(owner: object, name: str, value: Any, required: bool = True) -> Any:
    """Store a data source as given: a Dataset/DataFrame/array, or a path as a plain string."""
    if value is None and not required:
        return None
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (str, Dataset, pd.DataFrame, np.ndarray)):
        return value
    raise param_error(owner, name, "a stalwart Dataset, a DataFrame or the path of a CSV, Parquet or NPZ file",
                      value)


def load_like(source: Any, like: Dataset, what: str) -> Dataset:
    """``source`` (Dataset, DataFrame, array or file path) as a Dataset comparable with ``like``.

    A table that holds ``like``'s label column gets it as labels (and loses it as a feature), so
    a reference file written like the current one is read the same way.
    """
    from stalwart.data.loaders import labels_from_column, load_data

    if isinstance(source, Dataset):
        ds = source
    elif isinstance(source, pd.DataFrame):
        df = source.reset_index(drop=True)
        y = None
        if like.target is not None and like.target in df.columns:
            y = labels_from_column(df[like.target], like.target, what)
            df = df.drop(columns=[like.target])
        ds = Dataset.from_arrays(df, y, modality="tabular", name=what, target=like.target)
    elif isinstance(source, np.ndarray):
        ds = Dataset.from_arrays(source, modality=like.modality, name=what)
    else:
        ds = load_data(source, modality=None if like.modality == "image" else like.modality)
        if ds.modality == "tabular" and like.target is not None and like.target in ds.x.columns:
            y = labels_from_column(ds.x[like.target], like.target, f"{what} {source!r}")
            x = ds.x.drop(columns=[like.target])
            ds = Dataset(x, y, "tabular", Schema.infer(x), ds.name, like.target, dict(ds.meta))
    if ds.modality != like.modality:
        raise InputError(f"the {what} is {ds.modality} data but the data under test is {like.modality}; "
                         f"pass a {what} of the same kind.")
    return ds


# -- figures ---------------------------------------------------------------------------------------
def _numeric_values(s: pd.Series) -> np.ndarray:
    x = pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return x[np.isfinite(x)]


def histogram_figure(ref: np.ndarray, cur: np.ndarray, title: str, x_label: str,
                     names: tuple[str, str] = ("reference", "current")) -> dict[str, Any]:
    """Two samples over shared bins, as shares of each sample (sizes may differ).

    The bins span the pooled 0.5%-99.5% quantiles so one outlier does not squash the picture;
    values beyond them are counted in the end bins.
    """
    pooled = np.concatenate([ref, cur])
    lo, hi = (float(v) for v in np.quantile(pooled, [0.005, 0.995]))
    if not hi > lo:
        lo, hi = float(pooled.min()), float(pooled.max())
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, _HIST_BINS + 1)
    series = []
    for name, x in zip(names, (ref, cur)):
        counts, _ = np.histogram(np.clip(x, lo, hi), edges)
        series.append({"name": name, "edges": edges.tolist(), "counts": (counts / max(x.size, 1)).tolist()})
    return {"kind": "histogram", "title": title, "x_label": x_label, "y_label": "share of rows",
            "series": series}


def bars_figure(ref: pd.Series, cur: pd.Series, title: str, x_label: str) -> dict[str, Any]:
    """Category shares in both samples, side by side (``"a · ref"``, ``"a · cur"``), Wilson intervals."""
    return bars_figure_from_counts(ref.value_counts(dropna=True), cur.value_counts(dropna=True), title, x_label)


def bars_figure_from_counts(rc: pd.Series, cc: pd.Series, title: str, x_label: str) -> dict[str, Any]:
    """:func:`bars_figure` from the two samples' value counts (index: categories)."""
    both = rc.add(cc, fill_value=0).sort_values(ascending=False, kind="stable").index[:_MAX_BARS]
    n_ref, n_cur = int(rc.sum()), int(cc.sum())
    labels, values, low, high = [], [], [], []
    for cat in both:
        for tag, counts, n in (("ref", rc, n_ref), ("cur", cc, n_cur)):
            k = int(counts.get(cat, 0))
            lo, hi = wilson_interval(k, n)
            labels.append(f"{cat} · {tag}")
            values.append(k / n if n else 0.0)
            low.append(lo)
            high.append(hi)
    return {"kind": "bars", "title": title, "x_label": "share of rows", "y_label": x_label, "labels": labels,
            "values": values,
            "low": low, "high": high}


def _figure_columns(result: DriftResult) -> list[tuple[Any, str]]:
    """The drifted columns that get a figure (the most drifted first), with their titles; a
    type-changed column has no common scale to draw both samples on."""
    drifted = sorted((f for f in result.features if f.drifted and f.test != "type_change"), key=_excess,
                     reverse=True)
    return [(f, f"{f.feature}: reference vs current ({f.test} = {f.statistic:.3g})") for f in drifted[:MAX_FIGURES]]


def parquet_figures(result: DriftResult, reference: str, current: str, *,
                    max_values: int = 1_000_000) -> dict[str, dict[str, Any]]:
    """The figures :class:`DataDrift` draws, for a result of
    :func:`~stalwart.shift.drift.detect_drift_parquet`: each drawn column is read again from the
    two files on its own -- category counts, or the values (an even subsample of at most
    ``max_values`` per file for larger files, so memory stays bounded)."""
    from stalwart.shift.drift import read_parquet_column

    categorical = set(result.details.get("categorical", ()))
    figures: dict[str, dict[str, Any]] = {}
    for f, title in _figure_columns(result):
        if f.feature in categorical:
            rc, cc = (read_parquet_column(p, f.feature, counts=True).sort_values(ascending=False, kind="stable")
                      for p in (reference, current))
            figures[f"drift_{f.feature}"] = bars_figure_from_counts(rc, cc, title, f.feature)
        else:
            r, c = (read_parquet_column(p, f.feature, limit=max_values) for p in (reference, current))
            figures[f"drift_{f.feature}"] = histogram_figure(r, c, title, f.feature)
    return figures


def _excess(f: Any) -> float:
    """How far past its threshold a drifted column is (>= 1), to rank columns for figures."""
    if f.p_value is not None:
        return math.log(max(f.p_value, 1e-300)) / math.log(f.threshold) if 0 < f.threshold < 1 else 1.0
    return f.statistic / f.threshold if f.threshold > 0 else math.inf


# -- drift result -> metrics and tables ----------------------------------------------------------
def drift_measurement(result: DriftResult) -> tuple[dict[str, Metric], dict[str, list[dict[str, Any]]]]:
    """The column-drift metrics and the per-column table of a :class:`DriftResult`.

    ``share_drifted`` carries a Wilson interval over the columns judged (a column either drifts
    or not; a type change drifts; ``too_few_samples`` columns are not judged);
    ``drifted_columns`` is the count. Rows carry ``current_kind`` (None unless the type changed).
    """
    n_cols = sum(f.test != "too_few_samples" for f in result.features)
    k = sum(f.drifted for f in result.features)
    lo, hi = wilson_interval(k, n_cols)
    metrics = {"share_drifted": Metric("share_drifted", k / n_cols, lo, hi, n_cols),
               "drifted_columns": Metric("drifted_columns", float(k), n=n_cols)}
    rows = [{"column": f.feature, "kind": f.kind, "current_kind": f.current_kind, "test": f.test,
             "statistic": f.statistic, "p_value": f.p_value, "threshold": f.threshold, "drifted": f.drifted}
            for f in result.features]
    return metrics, {"columns": rows}


def drift_notes(result: DriftResult) -> tuple[str, ...]:
    """One line per column that changed type, and one for the columns with too few values."""
    notes = []
    changes = result.details.get("type_changes", {})
    for f in result.features:
        if f.test == "type_change":
            ch = changes.get(f.feature, {})
            example = f", e.g. {ch['example']}" if ch.get("example") else ""
            notes.append(f"column {f.feature!r} changed type: {f.kind} in the reference, {f.current_kind} in the "
                         f"current data ({f.statistic:.0%} of its values{example}); it cannot be compared and "
                         "counts as drifted (test type_change)")
    few = [f for f in result.features if f.test == "too_few_samples"]
    if few:
        sizes = result.details.get("too_few_samples", {})
        listed = ", ".join(f"{f.feature} ({sizes.get(f.feature, {}).get('reference', '?')} reference / "
                           f"{sizes.get(f.feature, {}).get('current', '?')} current)" for f in few[:10])
        notes.append(f"not tested, fewer than {int(few[0].threshold)} non-missing values in a sample: {listed}"
                     f"{f' and {len(few) - 10} more' if len(few) > 10 else ''}")
    return tuple(notes)


def _small_reference(check: Check, n: int) -> None:
    """Skip, as the base class does for the data under test, when the reference is too small."""
    if n < check.min_samples:
        raise SkipCheck(f"not applicable: the reference has {n} sample(s) and this check needs at least "
                        f"{check.min_samples} for a meaningful 95% interval; pass a larger reference")


def _newcombe(k1: int, n1: int, k2: int, n2: int) -> tuple[float, float]:
    """95% interval of p1 - p2 from the two Wilson intervals (Newcombe 1998, method 10)."""
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson_interval(k1, n1)
    l2, u2 = wilson_interval(k2, n2)
    d = p1 - p2
    return d - math.hypot(p1 - l1, u2 - p2), d + math.hypot(u1 - p1, p2 - l2)


def _rmse_ci(sq: np.ndarray) -> tuple[float, float, float]:
    """RMSE and a normal-approximation 95% interval (CLT on the mean squared error, then sqrt)."""
    mse = float(sq.mean())
    se = float(sq.std(ddof=1) / math.sqrt(sq.size)) if sq.size > 1 else math.inf
    return math.sqrt(mse), math.sqrt(max(mse - 1.96 * se, 0.0)), math.sqrt(mse + 1.96 * se)


def _labels_compare(ref: np.ndarray, cur: np.ndarray, prefix: str, categorical: bool) -> dict[str, Metric]:
    """Drift between two label (or prediction) samples: chi2 + JS for classes, KS + W1 for values."""
    if categorical:
        return _class_drift(pd.Series(ref).value_counts(), pd.Series(cur).value_counts(), prefix, cur.size)
    r, c = np.asarray(ref, float), np.asarray(cur, float)
    return _value_drift(uv.ks_test(r, c).p_value, uv.wasserstein(r, c).statistic, prefix, c.size)


def _class_drift(rc: pd.Series, cc: pd.Series, prefix: str, n: int) -> dict[str, Metric]:
    """Chi-square p-value and Jensen-Shannon distance of two samples' class counts."""
    union = rc.index.union(cc.index)
    p = rc.reindex(union, fill_value=0).to_numpy(float)
    q = cc.reindex(union, fill_value=0).to_numpy(float)
    chi = uv.chi2_from_counts(p, q)
    return {f"{prefix}_p_value": Metric(f"{prefix}_p_value", chi.p_value, n=n),
            f"{prefix}_js": Metric(f"{prefix}_js", uv.js_from_counts(p, q), n=n)}


def _value_drift(p_value: float, wasserstein: float, prefix: str, n: int) -> dict[str, Metric]:
    return {f"{prefix}_p_value": Metric(f"{prefix}_p_value", p_value, n=n),
            f"{prefix}_wasserstein": Metric(f"{prefix}_wasserstein", wasserstein, n=n)}


def _is_classification(model: Any, y: np.ndarray) -> bool:
    if model is not None:
        return getattr(model, "task", "classification") == "classification"
    return np.asarray(y).dtype.kind not in "fc"


def name_drifted(result: CheckResult) -> CheckResult:
    """``result`` with the drifted columns named at the start of its message."""
    drifted = [row["column"] for row in result.tables.get("columns", []) if row["drifted"]]
    if not drifted or result.status in (Status.PASS, Status.ERROR, Status.SKIP):
        return result
    names = ", ".join(drifted[:10]) + (f" and {len(drifted) - 10} more" if len(drifted) > 10 else "")
    return replace(result, message=f"drifted: {names}; {result.message}")


@register
class DataDrift(Check):
    """Column-by-column drift of the data under test against a reference sample.

    Every column gets one two-sample test (``method="auto"``: KS / chi-square up to 1,000
    reference rows, normalised Wasserstein / Jensen-Shannon above, as Evidently; see
    :mod:`stalwart.shift.drift`), the p-value tests corrected for multiple testing. A column whose
    values changed type (numbers to text, or the reverse, or booleans vs integers) is flagged as
    drifted with test ``type_change`` and both kinds in its row, and the message names it; a
    column with fewer than 10 values in a sample is listed as ``too_few_samples``, not judged.
    With fewer than 30 rows in the reference (or in the data) the check is not applicable (SKIP).

    When a model is given, the distributions of its predictions on the reference and on the
    current data are compared (classes: chi-square p-value and Jensen-Shannon distance;
    regression: KS p-value and normalised Wasserstein). When both samples have labels, the label
    distributions are compared the same way, and accuracy (regression: RMSE) is measured on each:
    a drop with little input drift is the signature of concept drift.

    Metrics
        ``share_drifted`` (Wilson interval over the columns), ``drifted_columns``;
        ``prediction_drift_p_value`` with ``prediction_drift_js`` (or ``_wasserstein``);
        ``label_drift_p_value`` with ``label_drift_js`` (or ``_wasserstein``);
        ``accuracy_reference``, ``accuracy_current`` (Wilson intervals) and ``accuracy_drop``
        (reference minus current, Newcombe's interval); for regressors ``rmse_reference``,
        ``rmse_current`` (normal-approximation intervals).

    Parameters
    ----------
    reference : Dataset, DataFrame or path
        The reference sample (training or a trusted production window). A path (CSV or Parquet)
        is read when the check runs; a table holding the current data's label column gets it as
        labels.
    method : str or dict, default "auto"
        As :class:`~stalwart.shift.drift.TabularDrift`.
    correction : {"bonferroni", "bh", None}, default "bonferroni"
    alpha : float, default 0.05
    columns : list of str, optional
        Columns to test; default every feature column of the data under test.
    conditions : list, optional
        Default ``share_drifted <= 0.2 warn 0``: any drifted column warns, more than a fifth of
        the columns fails.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> ref = Dataset.from_arrays(pd.DataFrame({"a": rng.normal(size=400), "b": rng.normal(size=400)}))
    >>> cur = Dataset.from_arrays(pd.DataFrame({"a": rng.normal(size=400), "b": rng.normal(1, size=400)}))
    >>> r = DataDrift(reference=ref).run(None, cur)
    >>> r.status.value, [row["column"] for row in r.tables["columns"] if row["drifted"]]
    ('FAIL', ['b'])
    """

    name: ClassVar[str] = "data_drift"
    category: ClassVar[str] = "drift"
    modalities: ClassVar[tuple[str, ...]] = ("tabular",)
    default_conditions: ClassVar[tuple[str, ...]] = ("share_drifted <= 0.2 warn 0",)
    headline_metric: ClassVar[str | None] = "share_drifted"

    def __init__(self, *, reference: Any = None, method: str | dict[str, str] = "auto",
                 correction: str | None = "bonferroni", alpha: float = 0.05, columns: Sequence[str] | None = None,
                 conditions: Sequence[Any] | None = None) -> None:
        super().__init__(conditions=conditions)
        from stalwart.shift.drift import TabularDrift

        source = check_source(self, "reference", reference)
        # a path stays in the parameters (YAML round trip); in-memory data is kept out of them
        self.reference = source if isinstance(source, str) else f"<{type(source).__name__} in memory>"
        self._reference = source
        self._loaded: tuple[Any, Dataset] | None = None
        if columns is not None:
            ok = not isinstance(columns, str) and isinstance(columns, Sequence) and len(columns) > 0 \
                and all(isinstance(c, str) for c in columns)
            if not ok:
                raise param_error(self, "columns", "a non-empty list of column names", columns)
            columns = list(dict.fromkeys(columns))
        check_param(self, "alpha", alpha, isinstance(alpha, (int, float)) and not isinstance(alpha, bool)
                    and 0 < alpha < 1, "a number in (0, 1)")
        check_choice(self, "correction", correction, _CORRECTIONS)
        try:
            TabularDrift(method=method)
        except ConfigError:
            raise param_error(self, "method", f"'auto', one of {sorted(uv.TESTS)} or a dict of them", method) from None
        self.method = method
        self.correction = correction
        self.alpha = float(alpha)
        self.columns = columns

    def reference_for(self, data: Dataset) -> Dataset:
        """The reference as a Dataset (loaded once per label column)."""
        key = data.target
        if self._loaded is None or self._loaded[0] != key:
            self._loaded = (key, load_like(self._reference, data, "reference"))
        return self._loaded[1]

    def _columns(self, ref: Dataset, data: Dataset) -> list[str]:
        cols = self.columns if self.columns is not None else list(data.x.columns)
        for name, frame in (("the data under test", data.x), ("the reference", ref.x)):
            missing = [c for c in cols if c not in frame.columns]
            if missing:
                raise InputError(f"columns {missing} are not in {name}; it has columns {list(frame.columns)}. "
                                 "Pass columns=[...] to choose the columns to compare.")
        return cols

    def _measure(self, model: Any, data: Dataset, rng: np.random.Generator) -> Measurement:
        from stalwart.shift.drift import TabularDrift

        ref = self.reference_for(data)
        _small_reference(self, len(ref))
        cols = self._columns(ref, data)
        schema = ref.schema if all(c in ref.schema.names for c in cols) else None
        det = TabularDrift(columns=cols, method=self.method, alpha=self.alpha, correction=self.correction,
                           schema=schema).fit(ref.x)
        result = det.test(data.x)
        metrics, tables = drift_measurement(result)
        categorical = {c.name: c.categorical for c in det.columns_}

        warnings: list[str] = list(drift_notes(result))
        if model is not None:
            metrics.update(self._model_metrics(model, ref, data, warnings))
        if ref.y is not None and data.y is not None:
            metrics.update(_labels_compare(ref.y, data.y, "label_drift", _is_classification(model, data.y)))

        figures: dict[str, dict[str, Any]] = {}
        for f, title in _figure_columns(result):
            if categorical[f.feature]:
                figures[f"drift_{f.feature}"] = bars_figure(ref.x[f.feature], data.x[f.feature], title, f.feature)
            else:
                figures[f"drift_{f.feature}"] = histogram_figure(_numeric_values(ref.x[f.feature]),
                                                                 _numeric_values(data.x[f.feature]), title, f.feature)
        return Measurement(metrics, tables, {}, tuple(warnings), figures)

    def run(self, model: Any, data: Any, seed: int = 0) -> CheckResult:
        """As :meth:`Check.run`; a message about drift names the drifted columns."""
        return name_drifted(super().run(model, data, seed=seed))

    def prepare(self, model: Any, data: Any) -> Any:
        """The data unchanged: drift tests every column, while the model is fed only its own
        columns (matched by name). A model that cannot take them is refused here, up front."""
        from stalwart.models.compat import check_compatible

        check_compatible(model, data, extra="ignore")
        return data

    def metric_names(self, model: Any, data: Any) -> tuple[str, ...]:
        return ("share_drifted", "drifted_columns", "prediction_drift_*", "label_drift_*", "accuracy_reference",
                "accuracy_current", "accuracy_drop", "rmse_reference", "rmse_current")

    def validate(self, model: Any, data: Any) -> None:
        super().validate(model, data)
        ref = self.reference_for(data)
        self._columns(ref, data)
        if model is not None and getattr(model, "task", None) == "classification":
            # accuracy compares labels with predictions: labels the model does not know are an input error
            for name, ds in (("y", data), ("the reference's labels", ref)):
                if ds.y is not None:
                    check_labels(ds.y, model.known_classes(ds.x), name)

    @staticmethod
    def _model_metrics(model: Any, ref: Dataset, data: Dataset, warnings: list[str]) -> dict[str, Metric]:
        from stalwart.errors import StalwartError
        from stalwart.models.compat import check_compatible

        try:
            # each sample as the model takes it: its own columns, matched by name, in its order
            views = [check_compatible(model, ds, probe=False, extra="ignore") for ds in (ref, data)]
            pred_ref, pred_cur = (np.asarray(model.predict(v.x)) for v in views)
        except Exception as exc:  # noqa: BLE001 - the column drift stands on its own
            kind = "" if isinstance(exc, StalwartError) else f"{type(exc).__name__}: "
            warnings.append(f"the model could not predict on both samples ({kind}{exc}); prediction drift "
                            "and accuracy were not measured")
            return {}
        classification = getattr(model, "task", "classification") == "classification"
        out = _labels_compare(pred_ref, pred_cur, "prediction_drift", classification)
        if ref.y is None or data.y is None:
            return out
        if classification:
            k1, n1 = int(np.sum(pred_ref == ref.y)), len(ref)
            k2, n2 = int(np.sum(pred_cur == data.y)), len(data)
            out["accuracy_reference"] = Metric("accuracy_reference", k1 / n1, *wilson_interval(k1, n1), n1)
            out["accuracy_current"] = Metric("accuracy_current", k2 / n2, *wilson_interval(k2, n2), n2)
            out["accuracy_drop"] = Metric("accuracy_drop", k1 / n1 - k2 / n2, *_newcombe(k1, n1, k2, n2), n2)
        else:
            for key, pred, y in (("rmse_reference", pred_ref, ref.y), ("rmse_current", pred_cur, data.y)):
                sq = (pred.astype(float) - np.asarray(y, float)) ** 2
                out[key] = Metric(key, *_rmse_ci(sq), sq.size)
        return out


class _Computed(DataDrift):
    """A DataDrift whose measurement was made elsewhere (streamed Parquet files); not registered."""

    def __init__(self, measurement: Measurement, sizes: tuple[int, int] = (0, 0), **params: Any) -> None:
        super().__init__(**params)
        self._measurement = measurement
        self._sizes = sizes

    def validate(self, model: Any, data: Any) -> None:
        """Nothing to check: the data were read by the streaming test."""

    def _measure(self, model: Any, data: Any, rng: np.random.Generator) -> Measurement:
        n_ref, n_cur = self._sizes
        _small_reference(self, n_ref)
        if n_cur < self.min_samples:  # the base class skips small data under test; here it was streamed
            raise SkipCheck(f"not applicable: the data has {n_cur} sample(s) and this check needs at least "
                            f"{self.min_samples} for a meaningful 95% interval; pass more data")
        return self._measurement


def result_from_drift(result: DriftResult, *, reference: str, conditions: Sequence[Any] | None = None,
                      labels: dict[str, Any] | None = None, figures: dict[str, dict[str, Any]] | None = None,
                      **params: Any) -> CheckResult:
    """The ``data_drift`` CheckResult of a :class:`DriftResult` computed elsewhere.

    Used for :func:`~stalwart.shift.drift.detect_drift_parquet`, which streams files too large to
    load: the per-column table and ``share_drifted`` are judged by the same conditions as
    :class:`DataDrift`. ``labels`` (from :func:`~stalwart.shift.drift.compare_labels_parquet`)
    adds the label-drift metrics, ``figures`` (from :func:`parquet_figures`) the figures.
    """
    metrics, tables = drift_measurement(result)
    if labels is not None:
        if labels["classification"]:
            cc = labels["current_counts"]
            metrics.update(_class_drift(labels["reference_counts"], cc, "label_drift", int(cc.sum())))
        else:
            metrics.update(_value_drift(labels["p_value"], labels["wasserstein"], "label_drift",
                                        int(labels["n_current"])))
    sizes = (int(result.details.get("n_reference", 0)), int(result.details.get("n_current", 0)))
    return _Computed(Measurement(metrics, tables, {}, drift_notes(result), dict(figures or {})), sizes,
                     reference=reference, conditions=conditions, **params).run(None, None)


# -- multivariate ----------------------------------------------------------------------------------
def _hanley_mcneil(auc: float, n1: int, n2: int) -> tuple[float, float]:
    """95% interval of an AUC from Hanley & McNeil's (1982) standard error."""
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    var = (auc * (1 - auc) + (n1 - 1) * (q1 - auc * auc) + (n2 - 1) * (q2 - auc * auc)) / (n1 * n2)
    se = math.sqrt(max(var, 0.0))
    return max(0.0, auc - 1.96 * se), min(1.0, auc + 1.96 * se)


@register
class MultivariateDrift(Check):
    """Drift of the joint distribution: kernel MMD test and a domain classifier.

    Protocol: at most ``max_samples`` rows are drawn at random from each sample. The numeric
    (and boolean) columns are standardised with the reference's mean and standard deviation,
    missing values set to the reference mean, and compared with the MMD permutation test
    (:class:`~stalwart.shift.multivariate.MMDDrift`, RBF kernel, median bandwidth). A domain
    classifier (:class:`~stalwart.shift.multivariate.ClassifierDrift`, all columns, categories
    included) then tries to tell the two samples apart; its out-of-fold AUC is the effect size
    (0.5: indistinguishable), with Hanley & McNeil's interval, and its permutation importances
    say which columns give the change away.

    Metrics
        ``mmd2``, ``mmd_p_value``; ``classifier_auc``, ``classifier_p_value`` (unless
        ``classifier=None``).

    Parameters
    ----------
    reference : Dataset, DataFrame or path
        As :class:`DataDrift`.
    columns : list of str, optional
        Columns to use; default every feature column of the data under test.
    max_samples : int, default 2000
        Rows drawn from each sample (the MMD kernel matrix is ``2 max_samples`` squared).
    n_permutations : int, default 100
    classifier : {"hgb", "logistic", None}, default "hgb"
    alpha : float, default 0.05
    conditions : list, optional
        Default ``mmd_p_value > 0 warn 0.05`` (a significant MMD warns) and
        ``classifier_auc <= 0.75 warn 0.6`` (a classifier that separates the samples well
        fails).
    """

    name: ClassVar[str] = "multivariate_drift"
    category: ClassVar[str] = "drift"
    modalities: ClassVar[tuple[str, ...]] = ("tabular",)
    default_conditions: ClassVar[tuple[str, ...]] = ("mmd_p_value > 0 warn 0.05", "classifier_auc <= 0.75 warn 0.6")
    headline_metric: ClassVar[str | None] = "classifier_auc"

    def __init__(self, *, reference: Any = None, columns: Sequence[str] | None = None, max_samples: int = 2000,
                 n_permutations: int = 100, classifier: str | None = "hgb", alpha: float = 0.05,
                 conditions: Sequence[Any] | None = None) -> None:
        super().__init__(conditions=conditions)
        source = check_source(self, "reference", reference)
        self.reference = source if isinstance(source, str) else f"<{type(source).__name__} in memory>"
        self._reference = source
        self._drift = DataDrift(reference=source, columns=columns)  # loads and checks columns
        self.columns = self._drift.columns
        for name, value, lo in (("max_samples", max_samples, 4), ("n_permutations", n_permutations, 1)):
            check_param(self, name, value, isinstance(value, (int, np.integer)) and not isinstance(value, bool)
                        and value >= lo, f"an integer >= {lo}")
        check_choice(self, "classifier", classifier, ("hgb", "logistic", None))
        check_param(self, "alpha", alpha, isinstance(alpha, (int, float)) and not isinstance(alpha, bool)
                    and 0 < alpha < 1, "a number in (0, 1)")
        self.max_samples = int(max_samples)
        self.n_permutations = int(n_permutations)
        self.classifier = classifier
        self.alpha = float(alpha)

    def conditions_for(self, model: Any, data: Any) -> list[Condition]:
        if self.conditions is not None:
            return list(self.conditions)
        texts = [c for c in self.default_conditions if self.classifier is not None or "classifier" not in c]
        return [Condition.parse(c) for c in texts]

    def headline_for(self, model: Any) -> str | None:
        return "classifier_auc" if self.classifier is not None else "mmd_p_value"

    def metric_names(self, model: Any, data: Any) -> tuple[str, ...]:
        return ("mmd2", "mmd_p_value", "classifier_auc", "classifier_p_value")

    def validate(self, model: Any, data: Any) -> None:
        super().validate(model, data)
        self._drift.validate(model, data)

    def _measure(self, model: Any, data: Dataset, rng: np.random.Generator) -> Measurement:
        from stalwart.shift.multivariate import ClassifierDrift, MMDDrift

        ref = self._drift.reference_for(data)
        _small_reference(self, len(ref))
        cols = self._drift._columns(ref, data)
        r = ref.x[cols].iloc[np.sort(rng.permutation(len(ref))[: self.max_samples])].reset_index(drop=True)
        c = data.x[cols].iloc[np.sort(rng.permutation(len(data))[: self.max_samples])].reset_index(drop=True)
        kinds = {col.name: col.kind for col in ref.schema.columns} if set(cols) <= set(ref.schema.names) else {}
        numeric = [n for n in cols if kinds.get(n, "numeric" if pd.api.types.is_numeric_dtype(r[n]) else
                                             "categorical") != "categorical"]
        metrics: dict[str, Metric] = {}
        tables: dict[str, list[dict[str, Any]]] = {}
        figures: dict[str, dict[str, Any]] = {}
        warnings: list[str] = []
        if numeric:
            xr = r[numeric].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            xc = c[numeric].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            unread = np.isnan(xc) & c[numeric].notna().to_numpy()
            if unread.any():  # text where the reference has numbers: it would silently become the mean
                names = [n for n, bad in zip(numeric, unread.any(axis=0)) if bad]
                warnings.append(f"columns {names} hold values that are not numbers where the reference has numbers "
                                "(a type change; data_drift names it); they count as the reference mean here")
            mu = np.nanmean(xr, axis=0)
            sd = np.nanstd(xr, axis=0)
            mu = np.where(np.isfinite(mu), mu, 0.0)
            sd = np.where(np.isfinite(sd) & (sd > 0), sd, 1.0)
            zr = np.nan_to_num((xr - mu) / sd, nan=0.0)  # NaN -> reference mean
            zc = np.nan_to_num((xc - mu) / sd, nan=0.0)
            res = MMDDrift(n_permutations=self.n_permutations, alpha=self.alpha,
                           seed=int(rng.integers(2**31))).fit(zr).test(zc)
            n = len(zr) + len(zc)
            metrics["mmd2"] = Metric("mmd2", res.statistic, n=n)
            metrics["mmd_p_value"] = Metric("mmd_p_value", res.p_value, n=n)
        else:
            warnings.append("no numeric columns: the MMD test was not run")
        if self.classifier is not None:
            res = ClassifierDrift(model=self.classifier, alpha=self.alpha, seed=int(rng.integers(2**31))
                                  ).fit(r).test(c)
            auc = float(res.statistic)
            metrics["classifier_auc"] = Metric("classifier_auc", auc, *_hanley_mcneil(auc, len(r), len(c)),
                                               len(r) + len(c))
            metrics["classifier_p_value"] = Metric("classifier_p_value", res.p_value, n=len(r) + len(c))
            imp = sorted(res.details["importances"].items(), key=lambda kv: -kv[1])
            tables["importances"] = [{"column": k, "auc_drop": v} for k, v in imp]
            figures["classifier_importances"] = {
                "kind": "bars", "title": "Which columns give the change away (drop in held-out AUC when shuffled)",
                "x_label": "drop in held-out AUC", "y_label": "column", "labels": [k for k, _ in imp[:15]], "values": [v for _, v in imp[:15]],
                "low": None, "high": None}
        tables["samples"] = [{"sample": "reference", "rows": len(ref), "used": len(r)},
                             {"sample": "current", "rows": len(data), "used": len(c)}]
        if not metrics:
            raise ConfigError("MultivariateDrift has nothing to measure: no numeric columns and classifier=None")
        return Measurement(metrics, tables, {}, tuple(warnings), figures)
