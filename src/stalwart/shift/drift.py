"""Per-column drift of a table: :func:`detect_drift` and the reusable :class:`TabularDrift`.

Each column gets one univariate test (:mod:`stalwart.shift.univariate`); the data set drifts when
any column does after a multiple-testing correction over the p-value tests. Distance-based columns
are judged by their threshold and are not part of the correction.

Automatic test choice (``method="auto"``) follows Evidently's default rule, decided per column
from the *reference* sample (its non-missing size ``n`` and number of distinct values):

=====================================================  ===================  ===================
column                                                 n <= 1000            n > 1000
=====================================================  ===================  ===================
numeric / integer with more than 5 distinct values     ``ks`` (p < alpha)    ``wasserstein`` >= 0.1
categorical, boolean, or numeric with <= 5 values      ``chi2`` (p < alpha)  ``jensen_shannon`` >= 0.1
=====================================================  ===================  ===================

Two-category columns use ``chi2`` at one degree of freedom, which equals Evidently's
two-proportion z-test.

Two cases get no test, and say so in their row:

- **type change** -- a column whose values are numbers in the reference but text in the current
  data (or the reverse, or booleans vs integers) cannot be compared value by value; it is flagged
  as drifted with ``test="type_change"``, the reference's ``kind`` and the current
  ``current_kind``, and ``statistic`` the share of current values of the new type (a numeric
  column with a few unreadable entries such as ``"N/A"`` gets that share). This is the schema
  check Evidently and Deepchecks users run before drift; here it is part of the drift table so
  one bad column does not hide the others.
- **too few values** -- a column with fewer than ``min_samples`` (default 10, as Deepchecks'
  ``min_samples``) non-missing values in either sample has ``test="too_few_samples"``,
  ``statistic`` the smaller count and ``drifted=False``: one row is not a distribution, and a KS
  or chi-square "no drift" from it is meaningless. When no column has enough values,
  :class:`TabularDrift` raises :class:`~stalwart.errors.InputError` instead. Unlike Evidently (data set drifts when at least half of the columns do),
the data-set decision here is "any column drifts after the correction"; ``details["share_drifted"]``
carries the share for those who prefer Evidently's rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from stalwart._validation import check_choice, check_param, param_error
from stalwart.data.schema import Schema, as_frame
from stalwart.errors import ConfigError, InputError
from stalwart.shift import univariate as uv
from stalwart.shift.base import DriftDetector, DriftResult, FeatureDrift, register

__all__ = ["TabularDrift", "ColumnFit", "TypeChange", "detect_drift", "detect_drift_parquet", "compare_labels_parquet",
           "read_parquet_column", "choose_test",
           "multiple_testing", "held_kind", "reference_numbers", "numeric_change", "category_change",
           "VALUE_FAMILY", "CDF_TESTS", "HISTOGRAM_TESTS", "AUTO_SIZE", "AUTO_MAX_UNIQUE", "MIN_TEST_SAMPLES"]

AUTO_SIZE = 1000  # reference size up to which auto uses p-value tests (Evidently's rule)
AUTO_MAX_UNIQUE = 5  # numeric columns with at most this many distinct values count as categorical
MIN_TEST_SAMPLES = 10  # non-missing values per column and sample below which a column is not tested
CORRECTIONS = ("bonferroni", "bh", None)
_BLOCK = 1_000_000  # pooled values per vectorised KS/Wasserstein block (bounds peak memory)


def choose_test(kind: str, n_reference: int, n_unique: int) -> tuple[str, bool]:
    """Evidently's default: the test name and whether the column is treated as categorical."""
    categorical = kind in ("categorical", "boolean") or n_unique <= AUTO_MAX_UNIQUE
    if categorical:
        return ("chi2" if n_reference <= AUTO_SIZE else "jensen_shannon"), True
    return ("ks" if n_reference <= AUTO_SIZE else "wasserstein"), False


def multiple_testing(p_values: Any, alpha: float = 0.05, correction: str | None = "bonferroni"
                     ) -> tuple[np.ndarray, float]:
    """Which hypotheses to reject, and the p-value cutoff that rejects them (``p <= cutoff``).

    ``"bonferroni"``: cutoff ``alpha / m`` (controls the family-wise error rate);
    ``"bh"``: Benjamini-Hochberg step-up, cutoff ``k alpha / m`` for the largest ``k`` with
    ``p_(k) <= k alpha / m`` (controls the false discovery rate; ``alpha / m`` when none);
    ``None``: cutoff ``alpha`` for each test.

    Examples
    --------
    >>> multiple_testing([0.01, 0.02, 0.03, 0.5], alpha=0.05, correction="bh")[0].tolist()
    [True, True, True, False]
    >>> multiple_testing([0.01, 0.02, 0.03, 0.5], alpha=0.05, correction="bonferroni")[0].tolist()
    [True, False, False, False]
    """
    check_choice("multiple_testing", "correction", correction, CORRECTIONS)
    p = np.asarray(p_values, dtype=float).ravel()
    m = p.size
    if m == 0:
        return np.zeros(0, dtype=bool), float(alpha)
    if correction is None:
        cutoff = float(alpha)
    elif correction == "bonferroni":
        cutoff = alpha / m
    else:
        ranked = np.sort(p)
        ok = np.nonzero(ranked <= np.arange(1, m + 1) * alpha / m)[0]
        cutoff = (ok[-1] + 1) * alpha / m if ok.size else alpha / m
    return p <= cutoff, float(cutoff)


def _adjusted_min(p: np.ndarray, correction: str | None) -> float:
    """Smallest corrected p-value (Bonferroni m p; BH min_k m p_(k) / k), for the summary."""
    m = p.size
    if correction is None:
        return float(p.min())
    if correction == "bonferroni":
        return float(min(1.0, p.min() * m))
    ranked = np.sort(p)
    return float(min(1.0, np.min(ranked * m / np.arange(1, m + 1))))


# -- what fit() keeps per column -----------------------------------------------------------------
@dataclass
class ColumnFit:
    """What :meth:`TabularDrift.fit` keeps of one reference column, and the test chosen for it.

    Made by :meth:`TabularDrift.fit_numeric` (sorted values) or :meth:`TabularDrift.fit_counts`
    (category counts), or, for columns too large to hold, from the streamed summaries of
    :func:`detect_drift_parquet` (then ``sorted`` is None and ``std``, ``edges``, ``counts`` come
    from the stream).
    """

    name: str
    kind: str  # schema kind
    test: str
    categorical: bool  # compared as categories (counts) rather than as numbers
    threshold: float
    n: int
    missing: float
    sorted: np.ndarray | None = None  # numeric: sorted non-missing reference values
    std: float = 0.0
    edges: np.ndarray | None = None  # numeric histogram tests: inner bin edges
    counts: np.ndarray | None = None  # reference counts per bin / category
    categories: pd.Index | None = None  # categorical: reference categories (aligned with counts)
    held: str = "numeric"  # what the reference's values are (boolean, integer, numeric, categorical)


#: kinds of values that can be compared with each other (integers with floats, not with text)
VALUE_FAMILY = {"boolean": "boolean", "integer": "number", "numeric": "number", "categorical": "text"}

#: numeric columns: the tests computed from the merged CDFs of the two sorted samples
CDF_TESTS = ("ks", "wasserstein")
#: numeric columns: the tests on reference-quantile bins
HISTOGRAM_TESTS = ("psi", "jensen_shannon", "hellinger")


def held_kind(s: pd.Series, uniques: Any = None) -> str:
    """What a column's values are, whatever the schema says: boolean, integer, numeric or
    categorical (text and other objects). Object columns are judged by their distinct values."""
    if pd.api.types.is_bool_dtype(s):
        return "boolean"
    if pd.api.types.is_integer_dtype(s):
        return "integer"
    if pd.api.types.is_float_dtype(s):
        return "numeric"
    if uniques is not None and len(uniques):
        inferred = pd.api.types.infer_dtype(np.asarray(uniques, dtype=object), skipna=True)
        if inferred == "boolean":
            return "boolean"
        if inferred == "integer":
            return "integer"
        if inferred in ("floating", "mixed-integer-float", "decimal"):
            return "numeric"
    return "categorical"


def _value_family(v: Any) -> str:
    if isinstance(v, (bool, np.bool_)):
        return "boolean"
    if isinstance(v, (int, float, np.integer, np.floating)):
        return "number"
    return "text"


@dataclass(frozen=True)
class TypeChange:
    """A column whose current values are of another kind than the reference's."""

    kind: str  # the current values' kind
    share: float  # share of current non-missing values of that other kind
    example: Any


def reference_numbers(s: pd.Series, name: Any) -> np.ndarray:
    """A numeric reference column's values as floats, NaN where missing; InputError for text."""
    if pd.api.types.is_bool_dtype(s):
        return s.to_numpy(dtype=np.float64, na_value=np.nan)
    values = pd.to_numeric(s, errors="coerce")
    bad = values.isna() & s.notna()
    if bad.any():
        raise InputError(f"column {name!r} is numeric in the schema but holds non-numeric values "
                         f"such as {s[bad].iloc[0]!r}; fix the data or declare the column categorical.")
    return values.to_numpy(dtype=np.float64, na_value=np.nan)


def _value_counts(s: pd.Series) -> pd.Series:
    return s.value_counts(dropna=True, sort=False)


@register
class TabularDrift(DriftDetector):
    """Per-column drift tests of a table with a multiple-testing correction.

    Parameters
    ----------
    columns : list of str, optional
        Columns to test (default: all columns of the reference).
    method : str or dict, default "auto"
        ``"auto"`` (see module docs), one of ``ks``, ``anderson``, ``chi2``, ``psi``,
        ``wasserstein``, ``jensen_shannon``, ``hellinger`` for every column, or a dict
        ``{column: name}`` (columns not in it use ``"auto"``).
    alpha : float, default 0.05
        Significance level of the p-value tests (family-wise, or FDR with ``"bh"``).
    correction : {"bonferroni", "bh", None}, default "bonferroni"
        Multiple-testing correction across the columns judged by a p-value.
    threshold : float or dict, optional
        Drift threshold of the distance measures (default per test: psi 0.2, others 0.1).
    schema : Schema, optional
        Column kinds; inferred from the reference's dtypes by default.
    n_bins : int, default 10
        Quantile bins of the histogram measures on numeric columns.
    ks_method : {"auto", "exact", "asymp"}, default "auto"
        KS p-value computation (as :func:`scipy.stats.ks_2samp`).
    min_samples : int, default 10
        Non-missing values a column needs in each sample to be tested; fewer gives a
        ``too_few_samples`` row (not drifted), and when every column has fewer, ``fit`` or
        ``test`` raises InputError. ``min_samples=1`` tests whatever there is.

    Notes
    -----
    ``fit`` and ``test`` work column by column through a small public API that the streamed
    test (:func:`detect_drift_parquet`) shares, so both compute every statistic the same way:
    :meth:`plan_column` (the test and threshold of a column), :meth:`fit_numeric` /
    :meth:`fit_counts` (a :class:`ColumnFit` from sorted values or category counts),
    :meth:`numeric_statistic` / :meth:`counts_statistic` / :meth:`cdf_statistic` (one column's
    statistic and p-value) and :meth:`judge` (the correction and the table).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> ref = pd.DataFrame({"a": rng.normal(size=500), "b": rng.normal(size=500)})
    >>> cur = pd.DataFrame({"a": rng.normal(size=500), "b": rng.normal(1.0, size=500)})
    >>> TabularDrift().fit(ref).test(cur).drifted_features
    ['b']
    """

    name = "tabular"

    def __init__(self, *, columns: list[str] | None = None, method: str | dict[str, str] = "auto",
                 alpha: float = 0.05, correction: str | None = "bonferroni",
                 threshold: float | dict[str, float] | None = None, schema: Schema | None = None,
                 n_bins: int = 10, ks_method: str = "auto", min_samples: int = MIN_TEST_SAMPLES) -> None:
        check_param(self, "alpha", alpha, isinstance(alpha, (int, float)) and not isinstance(alpha, bool)
                    and 0 < alpha < 1, "a number in (0, 1)")
        check_choice(self, "correction", correction, CORRECTIONS)
        check_choice(self, "ks_method", ks_method, ("auto", "exact", "asymp"))
        check_param(self, "n_bins", n_bins, isinstance(n_bins, (int, np.integer)) and not isinstance(
            n_bins, bool) and n_bins >= 2, "an integer >= 2")
        methods = method.values() if isinstance(method, dict) else [method]
        for m in methods:
            if m != "auto" and m not in uv.TESTS:
                raise param_error(self, "method", f"'auto', one of {sorted(uv.TESTS)} or a dict of them", m)
        if threshold is not None:
            vals = threshold.values() if isinstance(threshold, dict) else [threshold]
            for t in vals:
                check_param(self, "threshold", threshold, isinstance(t, (int, float)) and not isinstance(
                    t, bool) and np.isfinite(t) and t >= 0, "a number >= 0 or a dict of them")
        if schema is not None and not isinstance(schema, Schema):
            raise param_error(self, "schema", "a stalwart.data.Schema", schema)
        check_param(self, "min_samples", min_samples, isinstance(min_samples, (int, np.integer)) and not isinstance(
            min_samples, bool) and min_samples >= 1, "an integer >= 1")
        self.columns = None if columns is None else list(columns)
        self.method = method
        self.alpha = float(alpha)
        self.correction = correction
        self.threshold = threshold
        self.schema = schema
        self.n_bins = int(n_bins)
        self.ks_method = ks_method
        self.min_samples = int(min_samples)

    def __repr__(self) -> str:
        keys = ("columns", "method", "alpha", "correction", "threshold", "n_bins", "min_samples")
        return f"{type(self).__name__}({', '.join(f'{k}={getattr(self, k)!r}' for k in keys)})"

    # -- fit -------------------------------------------------------------------------------------
    def _frame(self, data: Any, what: str) -> pd.DataFrame:
        if isinstance(data, pd.DataFrame):
            df = data
        else:
            arr = np.asarray(data)
            if arr.ndim == 1:
                arr = arr[:, None]
            df = as_frame(arr)
        if len(df) == 0 or df.shape[1] == 0:
            raise InputError(f"{what} is empty (shape {df.shape}); pass at least one row and column.")
        return df

    def check_columns(self, available: list[Any]) -> list[Any]:
        """The columns to test, checked against the reference's ``available`` columns (and
        against ``method`` when it names columns)."""
        names = list(available) if self.columns is None else self.columns
        if not names:
            raise InputError("columns is empty; name at least one column to test.")
        unknown = [c for c in names if c not in available]
        if unknown:
            raise InputError(f"columns {unknown} are not in the reference; it has columns {list(available)}")
        if isinstance(self.method, dict):
            extra = [c for c in self.method if c not in names]
            if extra:
                raise InputError(f"method names columns {extra} that are not tested; tested columns: {names}")
        return names

    def column_test(self, name: Any) -> str:
        """The test asked for column ``name`` (``"auto"`` unless ``method`` names one)."""
        return self.method.get(name, "auto") if isinstance(self.method, dict) else self.method

    def threshold_for(self, name: Any, test: str) -> float:
        """The drift threshold of ``test`` on column ``name``: ``alpha`` for p-value tests."""
        if uv.TESTS[test].uses_p_value:
            return self.alpha
        if isinstance(self.threshold, dict):
            return float(self.threshold.get(name, uv.TESTS[test].threshold))
        return uv.TESTS[test].threshold if self.threshold is None else float(self.threshold)

    def fit(self, reference: Any) -> TabularDrift:
        """Store, per column, what the tests need: sorted values, bin edges or category counts."""
        ref = self._frame(reference, "reference")
        schema = self.schema if self.schema is not None else Schema.infer(ref)
        names = self.check_columns(list(ref.columns))
        self.columns_: list[ColumnFit] = []
        for name in names:
            kind = schema.column(str(name)).kind if str(name) in schema.names else "categorical"
            self.columns_.append(self._fit_column(ref[name], name, kind))
        self.n_reference_ = len(ref)
        self.check_reference(self.columns_)
        return self

    def check_reference(self, columns: list[ColumnFit]) -> None:
        """InputError when no column of the reference has ``min_samples`` values."""
        if all(c.n < self.min_samples for c in columns):
            raise InputError(f"the reference is too small to test for drift: no column has min_samples="
                             f"{self.min_samples} non-missing values (most: {max(c.n for c in columns)}). "
                             "Pass a larger reference (or min_samples=... to accept fewer).")

    def _fit_column(self, s: pd.Series, name: Any, kind: str) -> ColumnFit:
        # the missing share comes from the values already in hand: isna() on a million strings
        # costs as much as counting them
        if kind in ("numeric", "integer"):
            x = reference_numbers(s, name)
            held = "boolean" if pd.api.types.is_bool_dtype(s) else (
                "integer" if pd.api.types.is_integer_dtype(s) else "numeric")
            return self.fit_numeric(name, kind, held, np.sort(x[~np.isnan(x)]), len(s))
        vc = _value_counts(s)
        return self.fit_counts(name, kind, held_kind(s, vc.index), vc, len(s))

    def plan_column(self, name: Any, kind: str, n: int, n_unique: int, n_rows: int, held: str) -> ColumnFit:
        """The :class:`ColumnFit` of a column before its values are stored: the test (``auto``
        decides from the reference size ``n`` and its distinct values), its threshold, and whether
        the column is compared as categories. ConfigError for a numeric test on a categorical column."""
        numeric = kind in ("numeric", "integer")
        if n == 0:
            raise InputError(f"column {name!r} of the reference has only missing values; drop it or "
                             "pass columns=[...] without it.")
        requested = self.column_test(name)
        if requested == "auto":
            test, categorical = choose_test(kind, n, n_unique)
        else:
            test = requested
            if not numeric and not uv.TESTS[test].categorical:
                raise ConfigError(f"method {test!r} needs a numeric column but {name!r} is {kind}; use "
                                  "chi2, psi, jensen_shannon or hellinger for categorical columns.")
            categorical = not numeric or test == "chi2"
        return ColumnFit(str(name), kind, test, categorical, self.threshold_for(name, test), n,
                         (n_rows - n) / n_rows, held=held)

    def fit_numeric(self, name: Any, kind: str, held: str, x_sorted: np.ndarray, n_rows: int) -> ColumnFit:
        """A numeric column's :class:`ColumnFit` from its sorted non-missing values (of ``n_rows`` rows)."""
        x = x_sorted
        n_unique = int(np.count_nonzero(x[1:] != x[:-1]) + 1) if x.size else 0
        col = self.plan_column(name, kind, x.size, n_unique, n_rows, held)
        if not col.categorical:
            col.sorted = x
            col.std = float(x.std())
            if col.test in HISTOGRAM_TESTS:
                col.edges = uv.quantile_edges(x, self.n_bins)
                col.counts = uv.sorted_counts(x, col.edges)
        else:
            vals, counts = np.unique(x, return_counts=True)
            col.categories, col.counts = pd.Index(vals), counts.astype(float)
        return col

    def fit_counts(self, name: Any, kind: str, held: str, counts: pd.Series, n_rows: int) -> ColumnFit:
        """A categorical column's :class:`ColumnFit` from its value counts (index: categories)."""
        n = int(counts.sum())
        col = self.plan_column(name, kind, n, int((counts > 0).sum()), n_rows, held)
        counts = counts[counts > 0]
        col.categories, col.counts = counts.index, counts.to_numpy(dtype=float)
        return col

    # -- test ------------------------------------------------------------------------------------
    def test(self, current: Any) -> DriftResult:
        """Compare ``current`` with the fitted reference column by column."""
        if not hasattr(self, "columns_"):
            raise ConfigError("TabularDrift.test needs a fitted reference; call fit(reference) first")
        cur = self._frame(current, "current")
        missing_cols = [c.name for c in self.columns_ if c.name not in cur.columns]
        if missing_cols:
            raise InputError(f"current lacks columns {missing_cols} that the reference has; it has "
                             f"columns {list(cur.columns)}")
        stats: dict[str, tuple[float, float | None]] = {}
        cur_missing: dict[str, float] = {}
        changed: dict[str, TypeChange] = {}
        too_few: dict[str, int] = {}
        merged: list[tuple[ColumnFit, np.ndarray]] = []
        for col in self.columns_:
            s = cur[col.name]
            if col.kind in ("numeric", "integer"):
                change, x = numeric_change(col, s)
                n = int(s.notna().sum()) if change is not None else x.size
            else:
                vc = _value_counts(s)
                n = int(vc.sum())
                change = category_change(col, held_kind(s, vc.index), vc)
            cur_missing[col.name] = (len(s) - n) / len(s)
            if n == 0:
                raise InputError(f"column {col.name!r} of current has only missing values; nothing to compare.")
            if change is not None:  # a type change needs no sample size: one text value in a number column is one
                changed[col.name] = change
                continue
            if min(n, col.n) < self.min_samples:
                too_few[col.name] = n
                continue
            if col.kind not in ("numeric", "integer"):
                stats[col.name] = self.counts_statistic(col, vc)
            elif col.test in CDF_TESTS:
                if col.n + x.size >= _BLOCK:  # a block of its own: test now instead of holding the values
                    stats.update(self._merged_tests([(col, x)]))
                else:
                    merged.append((col, x))
            else:
                stats[col.name] = self.numeric_statistic(col, x)
        stats.update(self._merged_tests(merged))
        return self.judge(self.columns_, stats, n_reference=self.n_reference_, n_current=len(cur),
                          missing=cur_missing, changed=changed, too_few=too_few)

    def _merged_tests(self, items: list[tuple[ColumnFit, np.ndarray]]) -> dict[str, tuple[float, float | None]]:
        """KS / Wasserstein for many columns at once: columns with equal sizes share one 2-D pass."""
        out: dict[str, tuple[float, float | None]] = {}
        groups: dict[tuple[int, int], list[tuple[ColumnFit, np.ndarray]]] = {}
        for col, x in items:
            groups.setdefault((col.n, x.size), []).append((col, x))
        for (n1, n2), members in groups.items():
            per_block = max(1, _BLOCK // (n1 + n2))
            for start in range(0, len(members), per_block):
                part = members[start:start + per_block]
                ref = np.stack([c.sorted for c, _ in part])
                cur = np.stack([x for _, x in part])
                cur.sort(axis=1)
                d, w = uv.ks_and_wasserstein(ref, cur)
                for (col, _), di, wi in zip(part, d, w):
                    out[col.name] = self.cdf_statistic(col, float(di), float(wi), n2)
        return out

    def cdf_statistic(self, col: ColumnFit, d: float, w: float, n_current: int) -> tuple[float, float | None]:
        """``(statistic, p-value)`` of a ``ks`` or ``wasserstein`` column from the KS statistic
        ``d`` and the unnormalised Wasserstein distance ``w`` of its merged CDFs."""
        if col.test == "ks":
            return d, uv.ks_pvalue(d, col.n, n_current, self.ks_method)
        return (w / col.std if col.std > 0 else w), None

    def numeric_statistic(self, col: ColumnFit, x: np.ndarray) -> tuple[float, float | None]:
        """``(statistic, p-value)`` of a numeric column from its current non-missing values ``x``."""
        if col.test in CDF_TESTS and not col.categorical:
            d, w = uv.ks_and_wasserstein(col.sorted[None, :], np.sort(x)[None, :])
            return self.cdf_statistic(col, float(d[0]), float(w[0]), x.size)
        if col.test == "anderson":
            r = uv.anderson_test(col.sorted, x)
            return r.statistic, r.p_value
        if col.categorical:  # chi2 / histogram measures on the distinct values of a numeric column
            vals, counts = np.unique(x, return_counts=True)
            return self.counts_statistic(col, pd.Series(counts.astype(float), index=pd.Index(vals)))
        counts = np.bincount(np.searchsorted(col.edges, x, side="right"), minlength=col.edges.size + 1)
        return uv.from_counts(col.test, col.counts, counts), None

    def counts_statistic(self, col: ColumnFit, cur_counts: pd.Series) -> tuple[float, float | None]:
        """``(statistic, p-value)`` of a column compared as categories, from the current counts
        (index: categories; those the reference lacks join the table with a reference count of 0)."""
        cur_counts = cur_counts[cur_counts > 0]
        union = col.categories.append(cur_counts.index.difference(col.categories, sort=False))
        p = np.zeros(len(union))
        p[: col.counts.size] = col.counts
        q = cur_counts.reindex(union, fill_value=0).to_numpy(dtype=float)
        if col.test == "chi2":
            r = uv.chi2_from_counts(p, q)
            return r.statistic, r.p_value
        return uv.from_counts(col.test, p, q), None

    def judge(self, columns: list[ColumnFit], stats: dict[str, tuple[float, float | None]], *, n_reference: int,
              n_current: int, missing: dict[str, float], changed: dict[str, TypeChange] | None = None,
              too_few: dict[str, int] | None = None) -> DriftResult:
        """The :class:`DriftResult` of per-column statistics: the multiple-testing correction over
        the p-value tests, each distance against its threshold, and the table.

        ``stats`` maps each tested column to ``(statistic, p-value or None)``; ``missing`` each
        column to the current data's missing share; ``changed`` and ``too_few`` name the columns
        that changed type or have fewer than ``min_samples`` current values (with that count).
        """
        cols = columns
        changed, too_few = changed or {}, too_few or {}
        if len(too_few) == len(cols):
            sizes = ", ".join(f"{c.name!r}: {c.n} reference / {too_few[c.name]} current" for c in cols[:5])
            raise InputError(f"too few values to test for drift: every column has fewer than min_samples="
                             f"{self.min_samples} non-missing values in a sample ({sizes}"
                             f"{', ...' if len(cols) > 5 else ''}). One row is not a distribution; pass at least "
                             f"{self.min_samples} rows of each sample (or min_samples=... to accept fewer).")
        tested = [c for c in cols if c.name not in changed and c.name not in too_few]
        p_cols = [c for c in tested if uv.TESTS[c.test].uses_p_value]
        p_vals = np.array([stats[c.name][1] for c in p_cols], dtype=float)
        reject, cutoff = multiple_testing(p_vals, self.alpha, self.correction)
        rejected = {c.name: bool(r) for c, r in zip(p_cols, reject)}
        features = []
        for c in cols:
            if c.name in changed:
                ch = changed[c.name]
                features.append(FeatureDrift(c.name, "type_change", ch.share, None, 0.0, True, c.held, ch.kind))
                continue
            if c.name in too_few:
                features.append(FeatureDrift(c.name, "too_few_samples", float(min(c.n, too_few[c.name])), None,
                                             float(self.min_samples), False, c.kind))
                continue
            stat, p = stats[c.name]
            if p is not None:
                features.append(FeatureDrift(c.name, c.test, float(stat), float(p), cutoff, rejected[c.name], c.kind))
            else:
                features.append(FeatureDrift(c.name, c.test, float(stat), None, c.threshold,
                                             bool(stat >= c.threshold), c.kind))
        n_drifted = sum(f.drifted for f in features)
        share = n_drifted / (len(features) - len(too_few))  # over the columns judged
        details = {
            "share_drifted": share, "n_drifted": n_drifted, "n_columns": len(features),
            "type_changes": {c.name: {"reference": c.held, "current": changed[c.name].kind,
                                      "share": changed[c.name].share, "example": _plain_repr(changed[c.name].example)}
                             for c in cols if c.name in changed},
            "too_few_samples": {c.name: {"reference": c.n, "current": too_few[c.name]} for c in cols
                                if c.name in too_few},
            "min_samples": self.min_samples,
            "alpha": self.alpha, "correction": self.correction, "p_value_cutoff": cutoff,
            "n_reference": n_reference, "n_current": n_current,
            "missing_share": {c.name: {"reference": c.missing, "current": missing[c.name]} for c in cols},
            "psi_warning": [f.feature for f in features if f.test == "psi" and 0.1 <= f.statistic < f.threshold],
        }
        return DriftResult("tabular", share, _adjusted_min(p_vals, self.correction) if p_vals.size else None,
                           self.alpha, n_drifted > 0, tuple(features), details)


def numeric_change(col: ColumnFit, s: pd.Series) -> tuple[TypeChange | None, np.ndarray]:
    """A numeric column's non-missing current values, or the type change that stops a comparison."""
    if pd.api.types.is_numeric_dtype(s):  # bool too
        held = held_kind(s)
        if VALUE_FAMILY[held] != VALUE_FAMILY[col.held]:
            return TypeChange(held, 1.0, s.dropna().iloc[0] if s.notna().any() else None), np.zeros(0)
        x = s.to_numpy(dtype=np.float64, na_value=np.nan)
        return None, x[~np.isnan(x)]
    if col.held != "boolean" and pd.api.types.infer_dtype(s, skipna=True) == "boolean":
        return TypeChange("boolean", 1.0, s.dropna().iloc[0]), np.zeros(0)
    values = pd.to_numeric(s, errors="coerce")  # numbers stored as text ("1.5") still compare as numbers
    bad = values.isna() & s.notna()
    if bad.any():
        return TypeChange("categorical", float(bad.sum() / s.notna().sum()), s[bad].iloc[0]), np.zeros(0)
    x = values.to_numpy(dtype=np.float64, na_value=np.nan)
    return None, x[~np.isnan(x)]


def category_change(col: ColumnFit, held: str, counts: pd.Series) -> TypeChange | None:
    """The type change of a categorical (or boolean) column whose current values are ``held``
    (see :func:`held_kind`), from its current value counts."""
    if VALUE_FAMILY[held] == VALUE_FAMILY[col.held] or counts.sum() == 0:
        return None
    family = VALUE_FAMILY[col.held]
    other = np.array([_value_family(v) != family for v in counts.index])
    if not other.any():
        return None
    share = float(counts.to_numpy()[other].sum() / counts.sum())
    return TypeChange(held, share, counts.index[other][0])


def _plain_repr(value: Any) -> str:
    value = value.item() if isinstance(value, np.generic) else value
    return f"{value:.6g}" if isinstance(value, float) else repr(value)[:60]


def detect_drift(reference: Any, current: Any, *, columns: list[str] | None = None,
                 method: str | dict[str, str] = "auto", alpha: float = 0.05,
                 correction: str | None = "bonferroni", threshold: float | dict[str, float] | None = None,
                 schema: Schema | None = None, n_bins: int = 10, min_samples: int = MIN_TEST_SAMPLES) -> DriftResult:
    """Test every column of ``current`` against ``reference`` for drift.

    Parameters are those of :class:`TabularDrift`; ``reference`` and ``current`` are DataFrames
    (or 2-D arrays with the same number of columns). Missing values are dropped per column and
    their shares reported in ``details["missing_share"]``.

    Returns
    -------
    DriftResult
        ``drifted`` (any column drifts after the correction, or changed type), ``statistic`` =
        share of drifted columns among those judged (``too_few_samples`` columns are not),
        ``p_value`` = smallest corrected p-value (None without p-value tests), and one
        :class:`FeatureDrift` per column; ``to_frame()`` gives the table. ``details`` adds
        ``type_changes`` and ``too_few_samples`` (per column) besides ``missing_share``.

    Raises
    ------
    InputError
        When no column has ``min_samples`` non-missing values in both samples.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> ref = pd.DataFrame({"x": rng.normal(size=2000), "c": rng.choice(["a", "b"], 2000)})
    >>> cur = pd.DataFrame({"x": rng.normal(0.5, size=2000), "c": rng.choice(["a", "b"], 2000)})
    >>> r = detect_drift(ref, cur)
    >>> [(f.feature, f.test, f.drifted) for f in r.features]
    [('x', 'wasserstein', True), ('c', 'jensen_shannon', False)]
    """
    return TabularDrift(columns=columns, method=method, alpha=alpha, correction=correction, threshold=threshold,
                        schema=schema, n_bins=n_bins, min_samples=min_samples).fit(reference).test(current)


# -- Parquet files, read column by column (stalwart.shift._chunked, imported on use: it needs pyarrow) --
def detect_drift_parquet(reference_path: Any, current_path: Any, **kwargs: Any) -> DriftResult:
    """:func:`detect_drift` on two Parquet files, streamed column by column with bounded memory.

    The results are those :func:`detect_drift` gives on the same tables read whole. See
    :func:`stalwart.shift._chunked.detect_drift_parquet` for the parameters.
    """
    from stalwart.shift._chunked import detect_drift_parquet as run

    return run(reference_path, current_path, **kwargs)


def compare_labels_parquet(reference_path: Any, current_path: Any, target: str, **kwargs: Any) -> dict[str, Any]:
    """The label column of two Parquet files, summarised for label drift (class counts, or the
    exact KS p-value and normalised Wasserstein distance of float labels); see
    :func:`stalwart.shift._chunked.compare_labels_parquet`."""
    from stalwart.shift._chunked import compare_labels_parquet as run

    return run(reference_path, current_path, target, **kwargs)


def read_parquet_column(path: Any, column: str, **kwargs: Any) -> Any:
    """One column of a Parquet file in bounded memory (value counts, or finite values, evenly
    subsampled beyond ``limit``); see :func:`stalwart.shift._chunked.read_column`."""
    from stalwart.shift._chunked import read_column

    return read_column(path, column, **kwargs)
