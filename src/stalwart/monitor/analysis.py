"""Windows and their analysis, run off the request path by the service's worker (or by a test).

A window is a run of consecutive batches of one model that holds at least the model's
``window_rows`` rows (a batch is never split) or, for a model with ``window_seconds``, that closes
earlier when a batch starts that many seconds (by its rows' timestamps) after the window's first
row, or when no batch of the model has arrived for that many seconds (by the service's clock);
windows are cut from the batches as they arrive, independently of the reference, which stays the
model's registered set. The last window waits for the batch (or the silence) that closes it. Each
window is judged once, against the reference:

- per-column drift with :func:`stalwart.shift.detect_drift` (its automatic test per column and
  its multiple-testing correction across the columns), giving ``drift_share`` (Wilson interval
  over the columns judged), ``n_drifted`` and ``drifted``;
- prediction drift, when the reference holds predictions: the same test on the prediction
  column (``prediction_drift`` 1/0 and its ``prediction_drift_statistic``);
- realised ``accuracy`` (classification; Wilson interval) or ``mae`` (regression) over the rows
  whose labels have arrived, refreshed on later passes as labels keep arriving (into the
  :data:`LABEL_WINDOWS` most recent windows that still miss labels);
- control across windows: each window is one test in an online LOND stream (:func:`lond`; its
  p-value is Bonferroni over the columns' :func:`online_p_values`: KS, or chi-square with rare
  cells pooled, computed beside whatever drift test judged the column, so the distances ``auto``
  takes above 1,000 reference rows take part too), giving ``drift_p_value``, ``drifted_online``,
  ``n_drifted_online`` and ``online_level``;
- ``ood_rate`` of the window and ``ood_baseline``, the reference's own false-alarm rate
  (:func:`fit_ood`, :func:`ood_metrics`), both with Wilson intervals;
- with the model file the service holds (``PUT .../artifact``; classifiers), or without it from
  the class probabilities the batches logged (:func:`logged_estimate`): the label-free
  ``estimated_accuracy`` (:class:`~stalwart.shift.ConfidenceEstimator` calibrated on the
  reference's ``label`` column; bootstrap interval, :data:`ESTIMATE_BOOT` resamples over at most
  :data:`ESTIMATE_SAMPLE` rows) with ``estimated_accuracy_reliable``, and, with the model file,
  the robustness probe (:data:`PROBES` on a seeded sample of the model's ``probe_sample`` rows,
  :data:`PROBE_SAMPLE` by default; ``probe: false`` switches it off): ``probe_stability`` (the
  lowest share of unchanged predictions over the probes) and ``probe_stability_<name>_<severity>``,
  and once labels arrive ``probe_accuracy``, ``probe_accuracy_<name>_<severity>`` and
  ``probe_accuracy_clean`` on the same rows; for a model with gradients (torch, or scikit-learn
  with a torch mirror) also a PGD attack on the same rows (:func:`run_attack`):
  ``probe_stability_attack_pgd`` and, with labels, ``probe_accuracy_attack_pgd``. A regression
  model's probe is in the units of its predictions (:func:`regression_probe_metrics`:
  ``probe_shift``, and with labels ``probe_mae``, ``probe_mae_change``), and a black-box attack
  in the same box as PGD's (:func:`run_regression_attack`: ``probe_shift_attack_search``, with
  labels ``probe_mae_attack_search`` and ``probe_mae_change_attack_search``);
- streaming change detectors over the rows in order, their state carried from window to window
  (:mod:`stalwart.monitor.streams`): ``stream_changes`` and ``stream_changes_<on>_<detector>``.

Every metric is stored as ``{"value", "low", "high", "n"}``, the shape of a check's metric, so
alert rules judge it with the suites' :class:`~stalwart.checks.Condition`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

import numpy as np

from stalwart._stats import wilson_interval
from stalwart.errors import InputError, StalwartError
from stalwart.monitor.ingest import frame
from stalwart.monitor.store import Store, check_store
from stalwart.monitor.streams import run_streams

__all__ = ["analyze", "window_metrics", "label_metrics", "lond", "lond_gamma", "fit_ood", "ood_metrics",
           "estimate_metrics", "run_probe", "run_attack", "probe_metrics", "model_metrics", "PROBES",
           "online_reference", "online_p_values", "pooled_chi2", "logged_probabilities", "logged_estimate",
           "regression_probe_metrics", "run_regression_attack", "reference_digest", "ks_limit_pvalue", "PROBE_SAMPLE", "MAX_PROBE_SAMPLE"]

log = logging.getLogger("stalwart.monitor")
#: how many of the most recent windows still missing labels a pass joins new labels into
LABEL_WINDOWS = 100


def _metric(value: float, low: float | None = None, high: float | None = None, n: int | None = None
            ) -> dict[str, Any]:
    def clean(v: Any) -> float | None:
        return None if v is None or not math.isfinite(float(v)) else float(v)
    return {"value": clean(value), "low": clean(low), "high": clean(high), "n": n}


def _rate(successes: int, n: int) -> dict[str, Any]:
    low, high = wilson_interval(successes, n)
    return _metric(successes / n, float(low), float(high), n)


def window_metrics(reference: Mapping[str, Any], window: Mapping[str, Any], model: Mapping[str, Any],
                   ks: dict[str, tuple[float, int, int]] | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Drift metrics of one window's columns against the reference, and the per-column table.

    ``reference`` and ``window`` are stored columns (``{"inputs": {...}, "prediction": [...]}``).
    ``ks``, when given, receives ``{column: (KS statistic, n_reference, n_window)}`` of every column
    the drift test compared by its CDFs (KS or Wasserstein: one merge gives both), so that
    :func:`online_p_values` need not sort those columns again.
    """
    from stalwart.shift import detect_drift

    kinds = model["columns"]
    config = model["config"]
    options = {"method": config.get("drift_method", "auto"), "alpha": config.get("alpha", 0.05),
               "correction": config.get("correction", "bonferroni")}
    n = len(window["prediction"])
    metrics: dict[str, Any] = {"n_rows": _metric(n, n=n)}
    table: list[dict[str, Any]] = []
    try:
        detector = _recording_drift(**options)
        result = detector.fit(frame(reference["inputs"], kinds)).test(frame(window["inputs"], kinds))
        if ks is not None:
            ks.update(detector.ks)
    except InputError as exc:  # no column with enough values in the window: nothing to judge
        metrics["drift_error"] = {"value": None, "low": None, "high": None, "n": None, "message": str(exc)}
    else:
        table = [f.to_dict() for f in result.features]
        judged = [f for f in result.features if f.test != "too_few_samples"]
        n_drifted = sum(f.drifted for f in judged)
        if judged:
            metrics["drift_share"] = _rate(n_drifted, len(judged))
        metrics["n_drifted"] = _metric(n_drifted, n=len(judged))
        metrics["drifted"] = _metric(float(result.drifted), n=len(judged))
    if "prediction" in reference:
        pred_kind = "numeric" if model["task"] == "regression" else "categorical"
        ref_pred = frame({"prediction": reference["prediction"]}, {"prediction": pred_kind})
        cur_pred = frame({"prediction": window["prediction"]}, {"prediction": pred_kind})
        if model["task"] != "regression":
            ref_pred, cur_pred = ref_pred.astype(str), cur_pred.astype(str)
        try:
            pred = detect_drift(ref_pred, cur_pred, **options)
        except InputError:
            pass
        else:
            (f,) = pred.features
            metrics["prediction_drift"] = _metric(float(f.drifted))
            metrics["prediction_drift_statistic"] = _metric(f.statistic)
            table.append({**f.to_dict(), "feature": "<prediction>"})
    return metrics, table


def _ks_recorder() -> type:
    from stalwart.shift import TabularDrift

    class KSRecorder(TabularDrift):
        """:func:`stalwart.shift.detect_drift`'s detector, keeping the KS statistic of each column it
        compares by CDFs (a Wasserstein column's merge computes it, then drops it)."""

        def test(self, current: Any) -> Any:
            self.ks: dict[str, tuple[float, int, int]] = {}
            return super().test(current)

        def cdf_statistic(self, col: Any, d: float, w: float, n_current: int) -> tuple[float, float | None]:
            self.ks[col.name] = (float(d), int(col.n), int(n_current))
            return super().cdf_statistic(col, d, w, n_current)
    return KSRecorder


_RECORDER: list[type] = []  # the class, made on first use (stalwart.shift loads lazily)


def _recording_drift(**options: Any) -> Any:
    if not _RECORDER:
        _RECORDER.append(_ks_recorder())
    return _RECORDER[0](**options)


def label_metrics(predictions: list[Any], labels: list[Any], task: str) -> dict[str, Any]:
    """Realised accuracy (classification, Wilson interval) or MAE (regression, normal interval)
    over the rows that have a label (``labels`` holds None for the others)."""
    pairs = [(p, y) for p, y in zip(predictions, labels) if y is not None]
    out: dict[str, Any] = {"n_labelled": _metric(len(pairs), n=len(predictions))}
    if not pairs:
        return out
    if task == "regression":
        err = np.abs(np.array([p for p, _ in pairs], dtype=float) - np.array([y for _, y in pairs], dtype=float))
        half = 1.96 * err.std(ddof=1) / math.sqrt(len(err)) if len(err) > 1 else math.nan
        out["mae"] = _metric(err.mean(), err.mean() - half, err.mean() + half, len(err))
    else:
        out["accuracy"] = _rate(sum(p == y for p, y in pairs), len(pairs))
    return out


# -- online control of false discoveries across windows ----------------------------------------------
#: the constant that makes the LOND weights sum to (just under) one (Javanmard & Montanari, 2018)
LOND_C = 0.07720838


def lond_gamma(j: Any) -> np.ndarray:
    """The LOND weights ``gamma_j = C log(max(j, 2)) / (j exp(sqrt(log j)))`` for tests j = 1, 2, ...

    Their sum over all j is about 0.98 (at most one), so the levels never spend more than alpha.

    >>> [round(float(g), 5) for g in lond_gamma([1, 2, 10])]
    [0.05352, 0.01164, 0.0039]
    """
    j = np.asarray(j, dtype=np.float64)
    if np.any(j < 1):
        raise InputError("lond_gamma(j=...) needs test indices 1, 2, ...; got an index below 1")
    return LOND_C * np.log(np.maximum(j, 2.0)) / (j * np.exp(np.sqrt(np.log(j))))


def lond(p_values: Any, alpha: float, tests_before: int = 0, discoveries_before: int = 0
         ) -> tuple[np.ndarray, np.ndarray]:
    """LOND ("significance Levels based On Number of Discoveries"; Javanmard & Montanari, 2018,
    *Online rules for control of false discovery rate and false discovery exceedance*, Ann. Stat.
    46(2)): test j is rejected when ``p_j <= alpha * gamma_j * (D_{j-1} + 1)``, with ``D_{j-1}`` the
    discoveries among the tests before it. It controls the false discovery rate at ``alpha`` at
    every point of an endless stream of tests, under independence and under positive regression
    dependence of the p-values (both shown there).

    ``tests_before`` and ``discoveries_before`` continue a stream tested in earlier calls.
    Returns ``(rejected, levels)``, one entry per p-value, in order.

    >>> rejected, levels = lond([0.001, 0.5, 0.0001], alpha=0.05)
    >>> rejected.tolist(), [round(float(v), 6) for v in levels]
    ([True, False, True], [0.002676, 0.001164, 0.000991])
    """
    p = np.asarray(p_values, dtype=np.float64).ravel()
    if not 0 < alpha < 1:
        raise InputError(f"lond(alpha=...) must be in (0, 1); got {alpha!r}")
    if np.any(np.isnan(p)) or np.any((p < 0) | (p > 1)):
        raise InputError("lond(p_values=...) must be p-values in [0, 1]; drop the tests without one")
    gamma = lond_gamma(np.arange(tests_before + 1, tests_before + len(p) + 1))
    rejected, levels = np.zeros(len(p), dtype=bool), np.empty(len(p))
    found = discoveries_before
    for i in range(len(p)):  # each level depends on the discoveries before it
        levels[i] = alpha * gamma[i] * (found + 1)
        rejected[i] = p[i] <= levels[i]
        found += int(rejected[i])
    return rejected, levels


#: fewest values a cell of the online chi-square expects in the smaller sample; rarer cells are pooled
ONLINE_MIN_EXPECTED = 5.0
#: an online KS p-value (Kolmogorov's limit) between these is recomputed exactly when both samples have
#: at most 10,000 values: the exact count costs 40-130 ms a column, so only where a decision may hang on it
ONLINE_EXACT_ABOVE, ONLINE_EXACT_BELOW = 1e-6, 0.01


def ks_limit_pvalue(d: float, n1: int, n2: int) -> float:
    """Two-sample KS p-value from Kolmogorov's limiting distribution, ``P(K > d sqrt(n1 n2 / (n1 + n2)))``.

    Cheap at any size (scipy's ``kstwo`` takes ~20 ms a call in the far tail) and close to the exact
    two-sample value, mostly above it (conservative): over sample sizes of 200-10,000, 0.97-1.24
    times the exact value for p-values of 1e-2 to 1e-6 and 0.92-1.75 times down to 1e-12; further
    out it is larger still (tens of times), far below any level an online test uses.

    >>> round(ks_limit_pvalue(0.1, 1000, 500), 5)   # exact: 0.00247
    0.00255
    """
    from scipy import special

    return float(special.kolmogorov(d * math.sqrt(n1 * n2 / (n1 + n2))))


def online_reference(reference: Mapping[str, Any], kinds: Mapping[str, str]) -> dict[str, tuple[str, Any]]:
    """What the online test keeps of each reference column: ``("ks", sorted values)`` for numeric
    and integer columns with more than five distinct values, else ``("chi2", {value: count})``
    (categorical and boolean columns, and numbers with five values or fewer, as
    :func:`stalwart.shift.choose_test` treats them). Missing values are left out."""
    from stalwart.shift.drift import AUTO_MAX_UNIQUE

    out: dict[str, tuple[str, Any]] = {}
    for name, kind in kinds.items():
        values = reference["inputs"][name]
        if kind in ("numeric", "integer"):
            x = np.asarray(values, dtype=np.float64)
            x = np.sort(x[~np.isnan(x)])
            if x.size and np.count_nonzero(x[1:] != x[:-1]) + 1 > AUTO_MAX_UNIQUE:
                out[name] = ("ks", x)
                continue
            vals, counts = np.unique(x, return_counts=True)
            out[name] = ("chi2", {float(v): int(k) for v, k in zip(vals, counts)})
        else:
            out[name] = ("chi2", _category_counts(values))
    return out


def _category_counts(values: Any) -> dict[Any, int]:
    """Counts per value in order of first appearance, missing values (None, NaN) left out and
    floats as Python floats."""
    counts: dict[Any, int] = {}
    for v, k in Counter(values).items():  # counted in C; the few distinct values fixed up here
        if v is None or (isinstance(v, (float, np.floating)) and math.isnan(v)):
            continue
        key = float(v) if isinstance(v, (float, np.floating)) else v
        counts[key] = counts.get(key, 0) + k
    return counts


def pooled_chi2(ref_counts: Any, cur_counts: Any, min_expected: float = ONLINE_MIN_EXPECTED
                ) -> tuple[float, float, int]:
    """Pearson's chi-square of homogeneity on aligned counts after pooling the rare cells:
    ``(statistic, p_value, cells)``.

    A cell whose expected count in the smaller sample is under ``min_expected`` joins one pooled
    cell, which takes the next rarest cells until it reaches ``min_expected`` itself. Without the
    pooling, one value of a category the reference saw once makes the statistic huge and the
    p-value far too small, exactly in the tail an online test spends its level on. Which cells
    are pooled depends on the pooled counts only, the same under the null whichever sample a
    value came from. Fewer than two cells left: ``(0, 1, cells)``.

    >>> stat, p, cells = pooled_chi2([500, 500, 1], [250, 250, 1])
    >>> cells, round(stat, 3), round(p, 3)   # the cell expected 0.7 times is pooled with its neighbour
    (2, 0.0, 0.985)
    """
    from stalwart.shift import univariate as uv

    r, q = np.asarray(ref_counts, dtype=np.float64), np.asarray(cur_counts, dtype=np.float64)
    total = r + q
    keep = total > 0
    r, q, total = r[keep], q[keep], total[keep]
    if r.sum() <= 0 or q.sum() <= 0:
        return 0.0, 1.0, int(r.size)
    expected = total * min(r.sum(), q.sum()) / total.sum()
    order = np.argsort(expected, kind="stable")
    pooled = np.zeros(r.size, dtype=bool)
    acc = 0.0
    for i in order:  # the rarest cells first, until the pooled cell expects enough on its own
        if expected[i] >= min_expected and (acc == 0.0 or acc >= min_expected):
            break
        pooled[i] = True
        acc += expected[i]
    rr = np.append(r[~pooled], r[pooled].sum()) if pooled.any() else r
    qq = np.append(q[~pooled], q[pooled].sum()) if pooled.any() else q
    if rr.size < 2:
        return 0.0, 1.0, int(rr.size)
    res = uv.chi2_from_counts(rr, qq)
    return float(res.statistic), float(res.p_value), int(rr.size)


def online_p_values(fitted: Mapping[str, tuple[str, Any]], inputs: Mapping[str, Any],
                    min_samples: int = 10, ks: Mapping[str, tuple[float, int, int]] | None = None
                    ) -> dict[str, dict[str, Any]]:
    """Each column's p-value for the online test, whatever drift test judged it: two-sample KS
    (:func:`ks_limit_pvalue`, exact between :data:`ONLINE_EXACT_ABOVE` and :data:`ONLINE_EXACT_BELOW`
    when both samples have at most 10,000 values; conservative with ties) for the ``"ks"`` columns of
    :func:`online_reference`, :func:`pooled_chi2` for the others. Columns with fewer than
    ``min_samples`` values in either sample are left out. ``{column: {"test", "statistic", "p_value"}}``.
    ``ks`` holds KS statistics already computed on the same samples (:func:`window_metrics`'s).
    """
    from stalwart.shift import univariate as uv

    out: dict[str, dict[str, Any]] = {}
    for name, (test, ref) in fitted.items():
        values = inputs[name]
        if test == "ks":
            known = None if ks is None else ks.get(name)
            if known is not None and known[1] == ref.size:  # the drift test's merge of the same samples
                d, n1, n2 = known
            else:
                x = np.asarray(values, dtype=np.float64)
                x = np.sort(x[~np.isnan(x)])
                n1, n2 = ref.size, x.size
                d = float(uv.ks_and_wasserstein(ref[None, :], x[None, :])[0][0]) if min(n1, n2) else 0.0
            if min(n1, n2) < min_samples:
                continue
            p = ks_limit_pvalue(d, n1, n2)
            if ONLINE_EXACT_ABOVE <= p < ONLINE_EXACT_BELOW and max(n1, n2) <= uv.KS_EXACT_MAX_N:
                p = uv.ks_pvalue(d, n1, n2, "exact")
            out[name] = {"test": "ks", "statistic": d, "p_value": float(p)}
            continue
        cur = _category_counts(values.tolist() if isinstance(values, np.ndarray) else values)
        if min(sum(ref.values()), sum(cur.values())) < min_samples:
            continue
        keys = list(ref) + [k for k in cur if k not in ref]
        stat, p, _ = pooled_chi2([ref.get(k, 0) for k in keys], [cur.get(k, 0) for k in keys])
        out[name] = {"test": "chi2", "statistic": stat, "p_value": p}
    return out


def _online_drift(metrics: dict[str, Any], table: list[dict[str, Any]], online: Mapping[str, Mapping[str, Any]],
                  state: dict[str, int], alpha: float) -> dict[str, int]:
    """The window's LOND test (its hypothesis: no column drifted; its p-value: Bonferroni over the
    columns' :func:`online_p_values`), and the columns that carry a rejection at that window's level.
    Each column's row of the drift table gets its ``online_test`` and ``online_p_value``."""
    if not online:
        return state
    m = len(online)
    p_window = min(1.0, m * min(v["p_value"] for v in online.values()))
    (rejected,), (level,) = lond([p_window], alpha, state["tests"], state["discoveries"])
    for row in table:
        found = online.get(row["feature"])
        if row["feature"] == "<prediction>" or found is None:
            continue
        row["online_test"], row["online_p_value"] = found["test"], found["p_value"]
        row["drifted_online"] = bool(rejected and m * found["p_value"] <= level)
    flagged = sum(bool(rejected and m * v["p_value"] <= level) for v in online.values())
    metrics["drift_p_value"] = _metric(p_window, n=m)
    metrics["drifted_online"] = _metric(float(rejected), n=m)
    metrics["n_drifted_online"] = _metric(flagged, n=m)
    metrics["online_level"] = _metric(level, n=state["tests"] + 1)
    return {"tests": state["tests"] + 1, "discoveries": state["discoveries"] + int(rejected)}


# -- OOD rate ------------------------------------------------------------------------------------------
#: rows of a window the OOD detector scores (a seeded sample; the Wilson interval carries n)
OOD_SAMPLE = 5000
#: reference rows the detector is fitted on, and (each) calibrates its threshold / measures its false alarms
OOD_FIT, OOD_CALIBRATE = 5000, 2500
#: the false-alarm rate the OOD threshold is set for
OOD_FPR = 0.05


def _numeric_columns(kinds: Mapping[str, str]) -> list[str]:
    return [c for c, k in kinds.items() if k != "categorical"]


def fit_ood(reference: Mapping[str, Any], kinds: Mapping[str, str], seed: int = 0) -> dict[str, Any] | None:
    """A :class:`~stalwart.shift.KNNDistance` detector (k = 5, standardised inputs) fitted on the
    reference's numeric, integer and boolean columns, its threshold and its measured false alarms.

    The reference is split at random: half (at most :data:`OOD_FIT` rows) fits the detector, a
    quarter sets the threshold as the conformal ``(1 - OOD_FPR)`` quantile of its scores (so fresh
    in-distribution rows exceed it with probability at most ``OOD_FPR``), and the last quarter
    measures that false-alarm rate: the baseline a window's OOD rate is read against. Missing
    values are filled with the reference's column medians. None when the reference has no numeric
    column or fewer than 40 rows.
    """
    from stalwart.shift import KNNDistance

    columns = _numeric_columns(kinds)
    if not columns:
        return None
    from stalwart.monitor.artifacts import input_matrix

    x = input_matrix(reference["inputs"], columns)
    if len(x) < 40:
        return None
    with np.errstate(all="ignore"):
        fill = np.nanmedian(np.where(np.isfinite(x), x, np.nan), axis=0)
    fill = np.where(np.isfinite(fill), fill, 0.0)
    x = np.where(np.isnan(x), fill, x)
    order = np.random.default_rng(seed).permutation(len(x))
    half, quarter = len(x) // 2, len(x) // 4
    fit_rows = order[:min(half, OOD_FIT)]
    cal_rows = order[half:half + min(quarter, OOD_CALIBRATE)]
    test_rows = order[half + quarter:half + quarter + min(len(x) - half - quarter, OOD_CALIBRATE)]
    detector = KNNDistance(k=5, normalize="standard").fit(x[fit_rows])
    cal = np.sort(detector.score(x[cal_rows]))
    rank = min(len(cal), int(math.ceil((len(cal) + 1) * (1 - OOD_FPR))))  # conformal quantile
    threshold = float(cal[rank - 1])
    alarms = int((detector.score(x[test_rows]) > threshold).sum())
    return {"detector": detector, "columns": columns, "fill": fill, "threshold": threshold,
            "baseline": (alarms, len(test_rows))}


def ood_metrics(fitted: Mapping[str, Any], window: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """``ood_rate`` (share of a seeded sample of the window's rows scored above the threshold) and
    ``ood_baseline`` (the same share on held-out reference rows), each with its Wilson interval."""
    from stalwart.monitor.artifacts import input_matrix

    n = len(window["prediction"])
    rows = np.sort(np.random.default_rng(seed).choice(n, OOD_SAMPLE, replace=False)) if n > OOD_SAMPLE else None
    x = input_matrix(window["inputs"], fitted["columns"], rows)
    x = np.where(np.isnan(x), fitted["fill"], x)
    flagged = int((fitted["detector"].score(x) > fitted["threshold"]).sum())
    return {"ood_rate": _rate(flagged, len(x)), "ood_baseline": _rate(*fitted["baseline"])}


# -- the model the service holds: estimated accuracy and the robustness probe -----------------------
#: rows of a window the label-free estimate reads, and bootstrap resamples of its interval
ESTIMATE_SAMPLE, ESTIMATE_BOOT = 10_000, 200
#: rows of a window the robustness probe perturbs (a model's ``probe_sample`` setting overrides it), and
#: the most that setting may ask for
PROBE_SAMPLE, MAX_PROBE_SAMPLE = 500, 50_000
#: the probe's perturbations and severities (stalwart.perturb names): noise of 0.2 and 0.5 standard
#: deviations per numeric column, 10% of cells missing, a sensor stuck for 20% of the rows
PROBES = (("feature_noise", 2), ("feature_noise", 4), ("missing_values", 2), ("stuck_sensor", 3))
#: the probe's attack on differentiable models (torch, and scikit-learn models with a torch mirror):
#: PGD in linf, eps a fraction of each column's range (over the reference and the sample), steps
ATTACK_EPS, ATTACK_STEPS = 0.05, 10
#: the probe key of the attack (its metrics are ``probe_stability_attack_pgd`` and so on)
ATTACK_KEY = "attack_pgd"
#: the probe key of the attack on a regression model (:func:`run_regression_attack`; its metrics are
#: ``probe_shift_attack_search``, ``probe_mae_attack_search``, ``probe_mae_change_attack_search``), and
#: its steps after the first corner
REGRESSION_ATTACK_KEY, REGRESSION_ATTACK_REFINE = "attack_search", 2


def _key(value: Any) -> str:
    """A prediction or label as text, so 1, 1.0 and "1" name the same class."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value.item() if isinstance(value, np.generic) else value)


def _held_model(store: Store, model: Mapping[str, Any]) -> tuple[Any, list[str]] | None:
    """The model's uploaded file, loaded once per process (cached by its SHA-256), and the
    columns it takes; None when no file was uploaded."""
    from stalwart.monitor.artifacts import MODEL_CACHE, load_artifact, model_columns

    info = store.artifact_info(model["id"])
    if info is None:
        return None

    def build() -> tuple[Any, list[str]]:
        data = store.artifact_data(model["id"])
        wrapped = load_artifact(data, info["format"], model)
        return wrapped, model_columns(wrapped, model["columns"])
    return MODEL_CACHE.get(("model", store.url, model["id"], info["sha256"]), build)


def _estimator(store: Store, model: Mapping[str, Any], held: tuple[Any, list[str]], reference: Mapping[str, Any]
               ) -> Any:
    """A :class:`~stalwart.shift.ConfidenceEstimator` calibrated on the labelled reference (cached
    with the model and the reference it was fitted on)."""
    from stalwart.monitor.artifacts import MODEL_CACHE, input_matrix
    from stalwart.shift import ConfidenceEstimator

    wrapped, columns = held
    info = store.artifact_info(model["id"])

    def build() -> Any:
        x = input_matrix(reference["inputs"], columns)
        return ConfidenceEstimator(wrapped, n_boot=ESTIMATE_BOOT, seed=0).fit(x, reference["label"])
    key = ("estimator", info["sha256"] if info else None, reference_digest(reference), tuple(columns))
    return MODEL_CACHE.get(key, build)


def estimate_metrics(estimator: Any, x: np.ndarray, source: str | None = None) -> dict[str, Any]:
    """``estimated_accuracy`` (mean calibrated confidence, bootstrap interval) and whether the
    estimator deems itself ``estimated_accuracy_reliable`` (1/0); ``source`` (``"model"``: the
    model file's outputs, ``"probabilities"``: the logged ones) is kept with the estimate."""
    out = estimator.estimate(x)
    low, high = out["interval"]
    estimate = _metric(out["accuracy"], low, high, out["n"])
    if source is not None:
        estimate["source"] = source
    return {"estimated_accuracy": estimate,
            "estimated_accuracy_reliable": _metric(float(out["reliable"]), n=out["n"])}


def _reference_sample(reference: Mapping[str, Any], columns: list[str], n: int = 5000) -> np.ndarray:
    """Up to ``n`` reference rows (the first ones) of the model's columns, for the attack's bounds."""
    from stalwart.monitor.artifacts import input_matrix

    size = len(reference["inputs"][columns[0]])
    return input_matrix(reference["inputs"], columns, np.arange(min(size, n)))


def _schema(columns: list[str], kinds: Mapping[str, str]) -> Any:
    from stalwart.data.schema import Column, Schema

    return Schema("tabular", columns=tuple(
        Column(c, kinds[c] if kinds[c] in ("numeric", "integer") else "boolean") for c in columns))


def run_probe(wrapped: Any, x: np.ndarray, columns: list[str], kinds: Mapping[str, str], seed: int,
              probes: tuple[tuple[str, int], ...] = PROBES) -> dict[str, Any]:
    """The model's predictions on ``x`` and on each perturbed copy of it.

    Returns ``{"clean": [...], "<name>_<severity>": [...] or {"error": message}}``: a perturbation
    the model fails on (a model that takes no missing values, say) is reported as such.
    """
    import pandas as pd

    from stalwart import perturb
    from stalwart.perturb.base import nested_rng

    schema = _schema(columns, kinds)
    clean = wrapped.predict(x)
    out: dict[str, Any] = {"clean": [v.item() if isinstance(v, np.generic) else v for v in clean]}
    frame_x = pd.DataFrame(x, columns=columns)
    for name, severity in probes:
        moved = perturb.get(name).apply(frame_x, severity=severity, rng=nested_rng(seed, name), schema=schema)
        try:
            pred = wrapped.predict(moved[columns].to_numpy(dtype=np.float64))
        except StalwartError as exc:
            out[f"{name}_{severity}"] = {"error": str(exc)[:300]}
            continue
        out[f"{name}_{severity}"] = [v.item() if isinstance(v, np.generic) else v for v in pred]
    return out


def run_attack(wrapped: Any, x: np.ndarray, clean: Any, reference_x: np.ndarray, seed: int) -> list[Any] | dict:
    """The model's predictions on PGD examples of ``x`` (linf, ``ATTACK_EPS`` of each column's
    range, :data:`ATTACK_STEPS` steps) that try to change its own ``clean`` predictions.

    Rows with a missing value keep their clean prediction's slot as None (they are not attacked);
    ``{"error": ...}`` when the model gives no gradients.
    """
    from stalwart.attacks import PGD, ThreatModel

    if not wrapped.differentiable:
        return {"error": f"{wrapped.name} gives no gradients: no attack (torch models and scikit-learn models "
                         "with a torch mirror are attacked)"}
    lower, upper, movable = _column_range(x, reference_x)
    lower, upper = np.where(movable, lower, 0.0), np.where(movable, upper, 1.0)  # fixed columns: any valid range
    ok = np.isfinite(x).all(axis=1)
    out: list[Any] = [None] * len(x)
    if ok.any() and movable.any():
        import torch

        threat = ThreatModel("linf", ATTACK_EPS, (lower, upper), mutable=movable, unit="range")
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # 500 small rows: more threads only spin (4x slower on a busy machine)
        try:
            result = PGD(threat, steps=ATTACK_STEPS, seed=seed % (2**31)).run(wrapped, x[ok], np.asarray(clean)[ok])
        finally:
            torch.set_num_threads(threads)
        pred = wrapped.predict(result.x_adv)
        for i, v in zip(np.flatnonzero(ok), pred):
            out[i] = v.item() if isinstance(v, np.generic) else v
    return out


def _column_range(x: np.ndarray, reference_x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each column's range over the reference and the sample, and whether it has one to move in."""
    both = np.vstack([reference_x, x])
    with np.errstate(all="ignore"):
        lower, upper = np.nanmin(both, axis=0), np.nanmax(both, axis=0)
    return lower, upper, np.isfinite(lower) & np.isfinite(upper) & (upper > lower)


def _attack_box(x: np.ndarray, reference_x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row and column, the box an attack may move a value in: ``ATTACK_EPS`` of the column's
    range (over the reference and the sample) either side, within that range; a column without a
    range stays put. Also the rows without a missing value (the only ones attacked)."""
    lower, upper, movable = _column_range(x, reference_x)
    eps = np.where(movable, ATTACK_EPS * (upper - lower), 0.0)
    lo = np.where(movable, np.maximum(x - eps, lower), x)
    hi = np.where(movable, np.minimum(x + eps, upper), x)
    return lo, hi, np.isfinite(x).all(axis=1)


def run_regression_attack(wrapped: Any, x: np.ndarray, clean: Any, reference_x: np.ndarray) -> list[Any]:
    """A regression model's predictions at the points of each row's attack box (linf,
    ``ATTACK_EPS`` of each column's range, as :func:`run_attack`'s) that a black-box search finds
    moving the prediction the most.

    The regression models the service can hold (scikit-learn, ONNX) give stalwart no gradients, so
    the search estimates them: a central difference across the whole box per column (``2 d``
    queries per row) gives each column's direction, the corner of the box that way and the
    opposite corner are tried, and the one that moves the prediction further is kept; then
    :data:`REGRESSION_ATTACK_REFINE` steps of half the box from the best point (fresh differences
    each, in the direction that point moved the prediction), keeping the best point seen. For a
    linear model the first corner is the exact worst case in the box. Rows with a missing value
    keep their slot as None (not attacked).
    """
    x = np.asarray(x, dtype=np.float64)
    lo, hi, ok = _attack_box(x, reference_x)
    out: list[Any] = [None] * len(x)
    if not ok.any():
        return out
    x, lo, hi = x[ok], lo[ok], hi[ok]
    base = np.asarray(clean, dtype=np.float64)[ok]
    n, d = x.shape
    cols = np.flatnonzero((hi > lo).any(axis=0))

    def slopes(at: np.ndarray, half: np.ndarray) -> np.ndarray:
        """Central differences of the prediction per column, all rows in one call."""
        up = np.repeat(at[None], len(cols), axis=0)
        down = up.copy()
        for k, j in enumerate(cols):
            up[k, :, j] = np.minimum(at[:, j] + half[:, j], hi[:, j])
            down[k, :, j] = np.maximum(at[:, j] - half[:, j], lo[:, j])
        f = np.asarray(wrapped.predict(np.concatenate([up.reshape(-1, d), down.reshape(-1, d)])), dtype=np.float64)
        g = np.zeros((n, d))
        g[:, cols] = (f[:len(cols) * n] - f[len(cols) * n:]).reshape(len(cols), n).T
        return g

    width = hi - lo
    direction = np.sign(slopes(x, width))
    corners = np.concatenate([np.where(direction > 0, hi, np.where(direction < 0, lo, x)),
                              np.where(direction > 0, lo, np.where(direction < 0, hi, x))])
    f = np.asarray(wrapped.predict(corners), dtype=np.float64)
    up_gain, down_gain = f[:n] - base, base - f[n:]
    rising = up_gain >= down_gain  # which way this row's prediction moves further
    best = np.where(rising[:, None], corners[:n], corners[n:])
    best_f = np.where(rising, f[:n], f[n:])
    sense = np.where(rising, 1.0, -1.0)[:, None]
    for _ in range(REGRESSION_ATTACK_REFINE):
        step = sense * np.sign(slopes(best, width / 2))
        moved = np.clip(best + step * width / 2, lo, hi)
        f_moved = np.asarray(wrapped.predict(moved), dtype=np.float64)
        better = np.abs(f_moved - base) > np.abs(best_f - base)
        best[better], best_f[better] = moved[better], f_moved[better]
    for i, v in zip(np.flatnonzero(ok), best_f):
        out[i] = float(v)
    return out


def probe_metrics(probe: Mapping[str, Any], labels: Mapping[str, Any] | None = None,
                  task: str = "classification") -> dict[str, Any]:
    """Stability (share of the sample whose prediction the perturbation left unchanged) per probe,
    and, over the sample's labelled rows, accuracy clean and under each perturbation; Wilson
    intervals. ``probe_stability`` and ``probe_accuracy`` are the lowest over the natural
    perturbations (the attack, when run, is reported on its own as ``..._attack_pgd``).
    A regression model's probe is read by :func:`regression_probe_metrics`."""
    if task == "regression":
        return regression_probe_metrics(probe, labels)
    clean = [_key(v) for v in probe["clean"]]
    rows = probe.get("rows", [])
    known = [i for i, r in enumerate(rows) if labels is not None and r in labels]
    truth = {i: _key(labels[rows[i]]) for i in known} if labels is not None else {}
    out: dict[str, Any] = {}
    worst_stab, worst_acc = None, None
    if known:
        out["probe_accuracy_clean"] = _rate(sum(clean[i] == truth[i] for i in known), len(known))
    for name, preds in probe.items():
        if name in ("clean", "rows") or not isinstance(preds, list):
            continue
        moved = [None if v is None else _key(v) for v in preds]
        done = [i for i, v in enumerate(moved) if v is not None]  # the attack skips rows with a missing value
        if not done:
            continue
        stab = _rate(sum(clean[i] == moved[i] for i in done), len(done))
        out[f"probe_stability_{name}"] = stab
        natural = name != ATTACK_KEY
        if natural and (worst_stab is None or stab["value"] < worst_stab["value"]):
            worst_stab = stab
        scored = [i for i in known if moved[i] is not None]
        if scored:
            acc = _rate(sum(moved[i] == truth[i] for i in scored), len(scored))
            out[f"probe_accuracy_{name}"] = acc
            if natural and (worst_acc is None or acc["value"] < worst_acc["value"]):
                worst_acc = acc
    if worst_stab is not None:
        out["probe_stability"] = dict(worst_stab)
    if worst_acc is not None:
        out["probe_accuracy"] = dict(worst_acc)
    return out


def _mean_metric(values: np.ndarray) -> dict[str, Any]:
    """Mean with its normal 95% interval (none for a single value)."""
    n = len(values)
    mean = float(values.mean())
    half = 1.959963984540054 * float(values.std(ddof=1)) / math.sqrt(n) if n > 1 else math.nan
    return _metric(mean, mean - half, mean + half, n)


def regression_probe_metrics(probe: Mapping[str, Any], labels: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A regression model's probe, in the units of its predictions; normal 95% intervals.

    - ``probe_shift_<name>_<severity>``: mean absolute change of the prediction under the
      perturbation, ``mean |f(x') - f(x)|`` over the sample; ``probe_shift`` the largest;
    - once labels arrive, over the sample's labelled rows: ``probe_mae_clean``,
      ``probe_mae_<name>_<severity>`` (the MAE under the perturbation), ``probe_mae_change_<name>_<severity>``
      (``mean(|f(x') - y| - |f(x) - y|)``, a paired difference, so its interval is the change's own),
      and ``probe_mae`` / ``probe_mae_change``: those of the perturbation with the largest MAE.
    """
    clean = np.array([np.nan if v is None else float(v) for v in probe["clean"]])
    rows = probe.get("rows", [])
    truth = np.full(len(clean), np.nan)
    if labels is not None:
        for i, r in enumerate(rows):
            y = labels.get(r)
            if y is not None:
                truth[i] = float(y)
    known = ~np.isnan(truth) & ~np.isnan(clean)
    out: dict[str, Any] = {}
    worst_shift, worst_mae = None, None
    if known.any():
        out["probe_mae_clean"] = _mean_metric(np.abs(clean[known] - truth[known]))
    for name, preds in probe.items():
        if name in ("clean", "rows") or not isinstance(preds, list):
            continue
        moved = np.array([np.nan if v is None else float(v) for v in preds])
        done = ~np.isnan(moved) & ~np.isnan(clean)
        if not done.any():
            continue
        shift = _mean_metric(np.abs(moved[done] - clean[done]))
        out[f"probe_shift_{name}"] = shift
        natural = name != REGRESSION_ATTACK_KEY
        if natural and (worst_shift is None or shift["value"] > worst_shift["value"]):
            worst_shift = shift
        scored = known & done
        if scored.any():
            err, base = np.abs(moved[scored] - truth[scored]), np.abs(clean[scored] - truth[scored])
            mae, change = _mean_metric(err), _mean_metric(err - base)
            out[f"probe_mae_{name}"], out[f"probe_mae_change_{name}"] = mae, change
            if natural and (worst_mae is None or mae["value"] > worst_mae[0]["value"]):
                worst_mae = (mae, change)
    if worst_shift is not None:
        out["probe_shift"] = dict(worst_shift)
    if worst_mae is not None:
        out["probe_mae"], out["probe_mae_change"] = dict(worst_mae[0]), dict(worst_mae[1])
    return out


#: the probe metrics that need labels (recomputed as they arrive)
LABELLED_PROBE = ("probe_accuracy", "probe_mae")


def _note(name: str, message: str) -> dict[str, Any]:
    """A metric without a value that says why a figure is missing (rules skip it)."""
    return {name: {"value": None, "low": None, "high": None, "n": None, "message": message}}


def _why(exc: BaseException) -> str:
    if isinstance(exc, StalwartError):
        return str(exc)
    log.warning("model metrics failed: %s: %s", type(exc).__name__, exc)
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"


def model_metrics(store: Store, model: Mapping[str, Any], reference: Mapping[str, Any], window: Mapping[str, Any],
                  seed: int, *, probe: bool = True, probe_sample: int = PROBE_SAMPLE
                  ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The metrics that need the model file (estimated accuracy, robustness probe) or the model's
    logged probabilities (estimated accuracy without a model file), and what the window keeps for
    later (the probe's predictions, joined with labels as they arrive).

    A failure here never loses the window's other metrics: it is kept as a note (``model_note``,
    ``estimate_note``, ``probe_note``) among the metrics, with a ``message`` and no value, and the
    model's own exceptions are logged.
    """
    from stalwart.monitor.artifacts import input_matrix

    details: dict[str, Any] = {}
    try:
        held = _held_model(store, model)
    except Exception as exc:  # noqa: BLE001 - a bad model file must not stop the window's other metrics
        return _note("model_note", f"the uploaded model could not be loaded: {_why(exc)}"), details
    classifier = model["task"] == "classification"
    if held is None:
        return (logged_estimate(store, model, reference, window, seed) if classifier else {}), details
    wrapped, columns = held
    metrics: dict[str, Any] = {}
    n = len(window["prediction"])
    rng = np.random.default_rng(seed)
    if not classifier:
        pass  # no label-free estimate of a regression model's error; the probe below works in its units
    elif "label" in reference:
        rows = np.sort(rng.choice(n, ESTIMATE_SAMPLE, replace=False)) if n > ESTIMATE_SAMPLE else None
        try:
            metrics.update(estimate_metrics(_estimator(store, model, held, reference),
                                            input_matrix(window["inputs"], columns, rows), source="model"))
        except Exception as exc:  # noqa: BLE001 - the user's model failing here is reported, not fatal
            metrics.update(_note("estimate_note", f"no label-free estimate: {_why(exc)}"))
    else:
        metrics.update(_note("estimate_note", "no label-free estimate: the reference has no 'label' column to "
                                              "calibrate on; upload it with one"))
    if probe:
        rows = np.sort(rng.choice(n, probe_sample, replace=False)) if n > probe_sample else np.arange(n)
        try:
            x = input_matrix(window["inputs"], columns, rows)
            result = run_probe(wrapped, x, columns, model["columns"], seed)
            if classifier:  # PGD where the model gives gradients
                result[ATTACK_KEY] = run_attack(wrapped, x, result["clean"], _reference_sample(reference, columns),
                                                seed)
            else:  # a black-box search in the same box
                result[REGRESSION_ATTACK_KEY] = run_regression_attack(wrapped, x, result["clean"],
                                                                      _reference_sample(reference, columns))
        except Exception as exc:  # noqa: BLE001 - the user's model failing here is reported, not fatal
            metrics.update(_note("probe_note", f"no robustness probe: {_why(exc)}"))
        else:
            result["rows"] = [str(window["row_id"][i]) for i in rows]
            details["probe"] = result
            metrics.update(probe_metrics(result, task=model["task"]))
    return metrics, details


# -- the label-free estimate from the probabilities the model logged ---------------------------------
#: the largest share of a window's rows whose logged prediction may differ from the top logged
#: probability's class before the estimate (of the top class's accuracy) is withheld
MAX_ARGMAX_DISAGREEMENT = 0.01


def logged_probabilities(columns: Mapping[str, Any], classes: list[Any] | None) -> np.ndarray | None:
    """Class probabilities of stored rows, (n, k) in the order of ``classes``, NaN rows where a row
    carried none: its ``probabilities`` lists, or for a binary model its ``score`` read as the
    probability of ``classes[1]`` (a score outside [0, 1] is not a probability and makes this
    raise InputError). Rows are rescaled to sum to one. None when the rows carry neither."""
    k = len(classes or [])
    n = len(columns["prediction"]) if "prediction" in columns else len(columns.get("label", []))
    out = np.full((n, k), np.nan)
    found = False
    probs = columns.get("probabilities")
    if probs is not None and k:
        for i, p in enumerate(probs):
            if p is not None:
                out[i] = p
                found = True
    score = columns.get("score")
    if score is not None and k == 2:
        s = np.asarray(score, dtype=np.float64)
        fill = np.isnan(out[:, 0]) & ~np.isnan(s)
        if fill.any():
            if ((s[fill] < 0) | (s[fill] > 1)).any():
                raise InputError("the rows' score lies outside [0, 1], so it is not the probability of the second "
                                 f"class {classes[1]!r}; send 'probabilities' (one per class) to have accuracy "
                                 "estimated from them")
            out[fill, 1], out[fill, 0] = s[fill], 1.0 - s[fill]
            found = True
    if not found:
        return None
    total = out.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(total > 0, out / total, np.nan)
    return out


def _logged_estimator(store: Store, model: Mapping[str, Any], reference: Mapping[str, Any]) -> Any:
    """A :class:`~stalwart.shift.ConfidenceEstimator` over the identity "model" of logged
    probabilities, calibrated (isotonic) on the reference rows that carry probabilities and a label
    (cached by those probabilities and labels)."""
    from stalwart.models.function import FunctionModel
    from stalwart.monitor.artifacts import MODEL_CACHE
    from stalwart.shift import ConfidenceEstimator

    p = logged_probabilities(reference, model["classes"])
    if p is None or "label" not in reference:
        raise InputError("the reference has no probabilities (or score) and label per row to calibrate the "
                         "logged probabilities on; upload it with 'probabilities' and 'label' columns")
    ok = ~np.isnan(p).any(axis=1)
    labels = [y for y, keep in zip(reference["label"], ok) if keep]

    def build() -> Any:
        identity = FunctionModel(lambda x: np.asarray(x, dtype=np.float64), classes=list(model["classes"]),
                                 output="probabilities")
        return ConfidenceEstimator(identity, calibration="isotonic", n_boot=ESTIMATE_BOOT, seed=0).fit(p[ok], labels)
    # keyed by what it is fitted on, not by ids that a database made anew would reuse
    digest = hashlib.sha256(p[ok].tobytes() + json.dumps([_key(y) for y in labels]).encode()).hexdigest()
    return MODEL_CACHE.get(("logged-estimator", digest, tuple(_key(c) for c in model["classes"])), build)


def logged_estimate(store: Store, model: Mapping[str, Any], reference: Mapping[str, Any], window: Mapping[str, Any],
                    seed: int) -> dict[str, Any]:
    """``estimated_accuracy`` of a window from the class probabilities its rows logged (no model
    file needed): the confidence-based estimator calibrated on the reference's logged
    probabilities and labels, on up to :data:`ESTIMATE_SAMPLE` of the window's rows that carry
    probabilities. Nothing when the rows logged none; a note saying what is missing otherwise."""
    try:
        p = logged_probabilities(window, model["classes"])
    except InputError as exc:
        return _note("estimate_note", f"no label-free estimate: {exc}")
    if p is None:
        return {}
    if not model["classes"]:
        return _note("estimate_note", "no label-free estimate: register the model's classes, so the logged "
                                      "probabilities can be read")
    rows = np.flatnonzero(~np.isnan(p).any(axis=1))
    if rows.size < 10:
        return _note("estimate_note", f"no label-free estimate: {rows.size} rows of the window carry probabilities; "
                                      "it needs at least 10")
    classes = list(model["classes"])
    top = [_key(classes[i]) for i in p[rows].argmax(axis=1)]
    disagree = float(np.mean([_key(window["prediction"][i]) != t for i, t in zip(rows, top)]))
    if disagree > MAX_ARGMAX_DISAGREEMENT:
        return _note("estimate_note", f"no label-free estimate: on {disagree:.1%} of the rows the prediction is not "
                                      "the class of the highest logged probability (a decision threshold?), so the "
                                      "estimate would not be the predictions' accuracy")
    if rows.size > ESTIMATE_SAMPLE:
        rows = np.sort(np.random.default_rng(seed).choice(rows, ESTIMATE_SAMPLE, replace=False))
    try:
        return estimate_metrics(_logged_estimator(store, model, reference), p[rows], source="probabilities")
    except InputError as exc:
        return _note("estimate_note", f"no label-free estimate: {exc}")
    except Exception as exc:  # noqa: BLE001 - reported, not fatal to the window's other metrics
        return _note("estimate_note", f"no label-free estimate: {_why(exc)}")


def _joined(values: list[Any]) -> Any:
    if all(isinstance(v, np.ndarray) for v in values):
        return np.concatenate(values)
    return [x for v in values for x in v]


def _stitch(parts: list[dict[str, Any]], kinds: Mapping[str, str]) -> dict[str, Any]:
    """One window's columns from its batches' (float columns stay arrays)."""
    out: dict[str, Any] = {"inputs": {c: _joined([p["inputs"][c] for p in parts]) for c in kinds}}
    for key in ("prediction", "row_id", "timestamp"):
        out[key] = _joined([p[key] for p in parts])
    if any("probabilities" in p for p in parts):  # rows of batches that sent none hold None
        out["probabilities"] = [x for p in parts for x in (p["probabilities"] if "probabilities" in p
                                                           else [None] * len(p["row_id"]))]
    if any("score" in p for p in parts):
        out["score"] = np.concatenate([np.asarray(p["score"], dtype=np.float64) if "score" in p
                                       else np.full(len(p["row_id"]), np.nan) for p in parts])
    return out


def _new_windows(store: Store, model: dict[str, Any], now: float) -> list[int]:
    reference = store.reference(model["id"])
    if reference is None:
        return []  # nothing to compare with yet: batches wait for a reference
    last = store.last_window(model["id"])
    after, seq = (-1, 0) if last is None else (last.last_batch, last.seq + 1)
    previous = {} if last is None or last.details is None else json.loads(last.details)
    online = previous.get("online_fdr", {"tests": 0, "discoveries": 0})
    streams = previous.get("stream_state", {})  # the stream detectors as the last window left them
    alpha = float(model["config"].get("alpha", 0.05))
    size = int(model["config"].get("window_rows", 1000))
    span = model["config"].get("window_seconds")
    made: list[int] = []
    pending: list[Any] = []
    fitted: list[dict[str, Any]] = []

    def close() -> None:
        nonlocal seq, pending, online, streams
        parts = store.batch_data(model["id"], pending[0].id, pending[-1].id)
        window = _stitch(parts, model["columns"])
        ks: dict[str, tuple[float, int, int]] = {}
        metrics, table = window_metrics(reference, window, model, ks=ks)
        if not fitted:  # the reference's side of the online test: once per pass (a sort per column)
            fitted.append(online_reference(reference, model["columns"]))
        online = _online_drift(metrics, table, online_p_values(fitted[0], window["inputs"], ks=ks), online, alpha)
        seed = int(np.random.SeedSequence([model["id"], seq]).generate_state(1)[0])
        try:
            ood = _ood_for(store, model, reference)
            if ood is not None:
                metrics.update(ood_metrics(ood, window, seed))
        except Exception as exc:  # noqa: BLE001 - drift and labels must not wait on the OOD figure
            log.exception("the OOD rate of model %s failed", model["id"])
            metrics.update(_note("ood_note", f"no OOD rate: {type(exc).__name__}: {exc}"))
        extra, details = model_metrics(store, model, reference, window, seed,
                                       probe=bool(model["config"].get("probe", True)),
                                       probe_sample=int(model["config"].get("probe_sample") or PROBE_SAMPLE))
        metrics.update(extra)
        details["online_fdr"] = online
        try:
            changes, details["streams"], streams = run_streams(window, model, streams)
            metrics.update(changes)
        except Exception as exc:  # noqa: BLE001 - a plug-in detector failing must not lose the window
            log.exception("the stream detectors of model %s failed", model["id"])
            metrics.update(_note("stream_note", f"no stream detectors: {_why(exc)}"))
        details["stream_state"] = streams
        labels = store.labels_for(model["id"], window["row_id"])
        lm = label_metrics(window["prediction"], [labels.get(r) for r in window["row_id"]], model["task"])
        metrics.update(lm)
        if "probe" in details and labels:
            metrics.update(probe_metrics(details["probe"], labels, model["task"]))
        store.add_window(model["id"], seq=seq, first_batch=pending[0].id, last_batch=pending[-1].id,
                         n_rows=sum(b.n_rows for b in pending), start_ts=min(b.first_ts for b in pending),
                         end_ts=max(b.last_ts for b in pending), n_labelled=int(lm["n_labelled"]["value"]),
                         metrics=metrics, drift=table, details=details)
        made.append(seq)
        seq, pending = seq + 1, []

    rows, start = 0, math.inf  # running totals of `pending` (summing it per batch was quadratic in the window)
    for batch in store.batches_after(model["id"], after):
        # a time window closes when a batch starts past its span (by the rows' timestamps)
        if pending and span is not None and batch.first_ts >= start + span:
            close()
            rows, start = 0, math.inf
        pending.append(batch)
        rows, start = rows + batch.n_rows, min(start, batch.first_ts)
        if rows >= size:
            close()
            rows, start = 0, math.inf
    # a time window also closes when nothing has arrived for its span, by the service's clock
    # (not the rows' timestamps, which a backfill sends from the past)
    if pending and span is not None and now - max(b.received_at for b in pending) >= span:
        close()
    return made


_DIGESTS: list[tuple[Any, str]] = []  # the last few references digested (held, so their ids stay theirs)


def reference_digest(reference: Mapping[str, Any]) -> str:
    """SHA-256 of a reference's stored columns: the key of what is fitted on it (OOD detector,
    estimators). Not its row id: SQLite hands a replaced reference the id of the one it replaced,
    and a database made anew reuses every id, so an id would serve a detector fitted on other data.
    Remembered for the last few references of the process (one analysis pass reads each once)."""
    from stalwart.monitor.store import encode_columns

    for held, digest in _DIGESTS:
        if held is reference:
            return digest
    digest = hashlib.sha256(encode_columns(reference)).hexdigest()
    _DIGESTS.insert(0, (reference, digest))
    del _DIGESTS[4:]
    return digest


def _ood_for(store: Store, model: Mapping[str, Any], reference: Mapping[str, Any]) -> dict[str, Any] | None:
    """The model's fitted OOD detector (cached per process until the reference is replaced)."""
    from stalwart.monitor.artifacts import MODEL_CACHE

    key = ("ood", reference_digest(reference), tuple(model["columns"].items()))
    return MODEL_CACHE.get(key, lambda: fit_ood(reference, model["columns"]))


def _refresh_labels(store: Store, model: dict[str, Any]) -> int:
    """Recompute the label metrics of windows that lack labels when new labels have arrived."""
    newest = store.last_label_id(model["id"])
    if newest <= model["labels_seen"]:
        return 0
    changed = 0
    # bounded work per pass: labels are joined into the most recent windows still missing some
    for w in store.windows(model["id"], incomplete_labels=True, limit=LABEL_WINDOWS, newest=True):
        parts = store.batch_data(model["id"], w["first_batch"], w["last_batch"])
        window = _stitch(parts, model["columns"])
        labels = store.labels_for(model["id"], window["row_id"])
        if len(labels) == w["n_labelled"]:
            continue
        metrics = {k: v for k, v in w["metrics"].items()
                   if k not in ("accuracy", "mae", "n_labelled") and not k.startswith(LABELLED_PROBE)}
        lm = label_metrics(window["prediction"], [labels.get(r) for r in window["row_id"]], model["task"])
        probe = store.window_details(w["id"]).get("probe")
        if probe is not None:  # accuracy under the probe's perturbations, on its sample's labelled rows
            lm = {**lm, **{k: v for k, v in probe_metrics(probe, labels, model["task"]).items()
                           if k.startswith(LABELLED_PROBE)}}
        store.update_window(w["id"], {**metrics, **lm}, int(lm["n_labelled"]["value"]))
        changed += 1
    store.set_labels_seen(model["id"], newest)
    return changed


def analyze(store: Store, model_id: int | None = None, *, now: float | None = None) -> dict[str, Any]:
    """One pass of the worker: cut and judge the windows that are complete, refresh label metrics,
    and move every alert rule through the new windows. Safe to call at any time, from one thread
    at a time (the service's worker, or a test). ``now`` (default: the clock) decides whether a
    time window that nothing has reached for its span is complete.

    Returns ``{"windows": {model_id: [seq, ...]}, "relabelled": n, "alerts": [event, ...],
    "errors": {model_id: message}}``. Without ``model_id`` every model is analysed and one that
    fails is logged and listed under ``errors`` while the others go on; with it, the error is raised.
    """
    from stalwart.monitor.alerts import judge_rules

    check_store(store, "analyze")
    ids = store.model_ids() if model_id is None else [model_id]
    out: dict[str, Any] = {"windows": {}, "relabelled": 0, "alerts": [], "errors": {}}
    for mid in ids:
        try:
            model = store.model_by_id(mid)
            made = _new_windows(store, model, time.time() if now is None else now)
            if made:
                out["windows"][mid] = made
            out["relabelled"] += _refresh_labels(store, model)
            out["alerts"] += judge_rules(store, mid)
        except Exception as exc:  # noqa: BLE001 - one model's failure must not stop the others'
            if model_id is not None:
                raise
            log.exception("analysing model %s failed; the next pass retries it", mid)
            out["errors"][mid] = f"{type(exc).__name__}: {exc}"
    return out

