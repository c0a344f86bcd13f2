"""Drift tests on Parquet files too large for memory: row groups streamed, counts merged.

Memory stays bounded by one batch plus a fixed-size reference sample per numeric column:

1. reference, pass 1: row count, missing count, mean/variance (Chan's merge), min/max, up to six
   distinct values per numeric column, exact category counts, and a uniform Bernoulli sample
   (``sample_size`` rows, seeded) from which ``resolution`` quantile bins per numeric column are cut;
2. reference, pass 2, and current, one pass: counts in those fine bins (and exact value counts for
   numeric columns with at most five distinct values, which auto treats as categorical).

Every test then works on counts. Categorical tests are exact. Numeric ones are approximate, with
a resolution set by the fine bins:

- ``ks``: the largest CDF gap at the bin edges. It can miss at most the mass of one bin, so
  ``|D_binned - D| <= max bin share`` (reported as ``details["ks_resolution"]``; about
  ``1 / resolution`` for the reference). The p-value uses the same formula as in memory.
- ``wasserstein``: the integral of ``|F_ref - F_cur|`` with both CDFs linear inside each bin
  (outer bins end at the observed minimum and maximum), divided by the exact reference std.
- ``psi``, ``jensen_shannon``, ``hellinger``: the ``n_bins`` coarse bins are unions of fine bins
  (quantiles of the reference *sample* rather than of the whole reference).
- ``anderson`` needs every value and is not available here.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stalwart._validation import check_param
from stalwart.data.schema import Schema
from stalwart.errors import ConfigError, InputError, require
from stalwart.shift import univariate as uv
from stalwart.shift.base import DriftResult
from stalwart.shift.drift import (
    _FAMILY,
    AUTO_MAX_UNIQUE,
    MIN_TEST_SAMPLES,
    TabularDrift,
    _Change,
    _Col,
    choose_test,
)

__all__ = ["detect_drift_parquet"]


class _Moments:
    """Count, mean and M2 merged batch by batch (Chan et al., 1979), plus min and max."""

    def __init__(self) -> None:
        self.n, self.mean, self.m2 = 0, 0.0, 0.0
        self.lo, self.hi = np.inf, -np.inf

    def add(self, x: np.ndarray) -> None:
        if x.size == 0:
            return
        nb, mb = x.size, float(x.mean())
        m2b = float(((x - mb) ** 2).sum())
        n = self.n + nb
        delta = mb - self.mean
        self.mean += delta * nb / n
        self.m2 += m2b + delta * delta * self.n * nb / n
        self.n = n
        self.lo, self.hi = min(self.lo, float(x.min())), max(self.hi, float(x.max()))

    @property
    def std(self) -> float:
        return float(np.sqrt(self.m2 / self.n)) if self.n else 0.0


class _Side:
    """What one pass keeps for one data set."""

    def __init__(self, names: list[str]) -> None:
        self.rows = 0
        self.missing = dict.fromkeys(names, 0)
        self.moments = {n: _Moments() for n in names}
        self.cats: dict[str, Counter] = {n: Counter() for n in names}
        self.fine: dict[str, np.ndarray] = {}


def _kinds(pf: Any, names: list[str], schema: Schema | None) -> dict[str, str]:
    pa = require("pyarrow", "parquet")
    arrow = pf.schema_arrow
    out = {}
    for n in names:
        if schema is not None and n in schema.names:
            out[n] = schema.column(n).kind
            continue
        t = arrow.field(n).type
        if pa.types.is_dictionary(t):
            t = t.value_type
        out[n] = ("numeric" if pa.types.is_floating(t) else "integer" if pa.types.is_integer(t)
                  else "boolean" if pa.types.is_boolean(t) else "categorical")
    return out


def _batches(pf: Any, names: list[str], batch_size: int):
    pa = require("pyarrow", "parquet")
    for batch in pf.iter_batches(batch_size=batch_size, columns=names):
        cols = {}
        for n in names:
            arr = batch.column(n)
            if pa.types.is_dictionary(arr.type):
                arr = arr.dictionary_decode()
            cols[n] = arr
        yield batch.num_rows, cols


def _as_float(arr: Any, name: str) -> np.ndarray:
    pa = require("pyarrow", "parquet")
    try:
        return arr.cast(pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise InputError(f"column {name!r} is numeric in the schema but holds non-numeric values "
                         f"(type {arr.type}); declare it categorical.") from None


def _count_categories(arr: Any, counter: Counter) -> None:
    pc = require("pyarrow.compute", "parquet")
    vc = pc.value_counts(pc.drop_null(arr))
    counter.update(dict(zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist())))


def detect_drift_parquet(reference_path: str | Path, current_path: str | Path, *,
                         columns: list[str] | None = None, method: str | dict[str, str] = "auto",
                         alpha: float = 0.05, correction: str | None = "bonferroni",
                         threshold: float | dict[str, float] | None = None, schema: Schema | None = None,
                         n_bins: int = 10, resolution: int = 2000, sample_size: int = 100_000,
                         batch_size: int = 100_000, seed: int = 0, min_samples: int = MIN_TEST_SAMPLES) -> DriftResult:
    """:func:`~stalwart.shift.drift.detect_drift` on two Parquet files, streamed in batches.

    Parameters
    ----------
    reference_path, current_path : str or Path
        Parquet files (read with pyarrow, ``pip install 'stalwart[parquet]'``).
    columns, method, alpha, correction, threshold, schema, n_bins, min_samples
        As in :class:`~stalwart.shift.drift.TabularDrift` (``anderson`` is not available). A
        column stored with another Arrow type family in the current file (numbers vs strings,
        booleans vs numbers) is a ``type_change`` row, as in memory.
    resolution : int, default 2000
        Fine quantile bins per numeric column; sets the accuracy of the numeric tests.
    sample_size : int, default 100_000
        Expected size of the uniform reference sample the fine bins are cut from.
    batch_size : int, default 100_000
        Rows read at a time; peak memory is about one batch of the selected columns.
    seed : int, default 0
        Seed of the reference sample.

    Returns
    -------
    DriftResult
        As :func:`detect_drift`; ``details`` adds ``"chunked": True``, ``"resolution"`` and
        ``"ks_resolution"`` (largest share of a fine bin, the bound on the KS error).
    """
    pq = require("pyarrow.parquet", "parquet")
    det = TabularDrift(columns=columns, method=method, alpha=alpha, correction=correction,
                       threshold=threshold, schema=schema, n_bins=n_bins, min_samples=min_samples)
    for name, value, lo in (("resolution", resolution, 2), ("sample_size", sample_size, 2),
                            ("batch_size", batch_size, 1)):
        check_param("detect_drift_parquet", name, value, isinstance(value, (int, np.integer))
                    and not isinstance(value, bool) and value >= lo, f"an integer >= {lo}")
    paths = {}
    for arg, p in (("reference_path", reference_path), ("current_path", current_path)):
        paths[arg] = _open_parquet(pq, arg, p)
    pf_ref, pf_cur = paths["reference_path"], paths["current_path"]
    ref_names = pf_ref.schema_arrow.names
    names = list(ref_names) if columns is None else list(columns)
    if not names:
        raise InputError("columns is empty; name at least one column to test.")
    unknown = [c for c in names if c not in ref_names]
    if unknown:
        raise InputError(f"columns {unknown} are not in the reference; it has columns {ref_names}")
    lacking = [c for c in names if c not in pf_cur.schema_arrow.names]
    if lacking:
        raise InputError(f"current lacks columns {lacking} that the reference has; it has columns "
                         f"{pf_cur.schema_arrow.names}")
    if isinstance(method, dict):
        extra = [c for c in method if c not in names]
        if extra:
            raise InputError(f"method names columns {extra} that are not tested; tested columns: {names}")
    n_ref_rows = pf_ref.metadata.num_rows
    if n_ref_rows == 0 or pf_cur.metadata.num_rows == 0:
        raise InputError("reference and current must each hold at least one row; one file is empty.")
    kinds = _kinds(pf_ref, names, schema)
    # what each file stores, whatever the schema says: another family in the current file is a type change
    held_ref, held_cur = _kinds(pf_ref, names, None), _kinds(pf_cur, names, None)
    changed = {n: _Change(held_cur[n], 1.0, f"a value of Arrow type {pf_cur.schema_arrow.field(n).type}")
               for n in names if _FAMILY[held_ref[n]] != _FAMILY[held_cur[n]]}
    numeric = [n for n in names if kinds[n] in ("numeric", "integer")]
    for n in names:
        requested = det._column_test(n)
        if requested == "anderson":
            raise ConfigError(f"method 'anderson' (column {n!r}) needs every value and is not available "
                              "in detect_drift_parquet; use ks, wasserstein or a histogram measure.")
        if n not in numeric and requested != "auto" and not uv.TESTS[requested].categorical:
            raise ConfigError(f"method {requested!r} needs a numeric column but {n!r} is {kinds[n]}; use "
                              "chi2, psi, jensen_shannon or hellinger for categorical columns.")

    # -- pass 1 over the reference: moments, distinct values, categories, a uniform sample ---------
    rng = np.random.default_rng(seed)
    rate = min(1.0, sample_size / n_ref_rows)
    ref = _Side(names)
    samples: dict[str, list[np.ndarray]] = {n: [] for n in numeric}
    distinct: dict[str, np.ndarray | None] = {n: np.zeros(0) for n in numeric}
    for rows, cols in _batches(pf_ref, names, batch_size):
        ref.rows += rows
        take = rng.random(rows) < rate
        for n, arr in cols.items():
            ref.missing[n] += arr.null_count
            if n not in numeric:
                _count_categories(arr, ref.cats[n])
                continue
            x = _as_float(arr, n)
            nan = np.isnan(x)
            ref.missing[n] += int(nan.sum()) - arr.null_count
            samples[n].append(x[take & ~nan])
            x = x[~nan]
            ref.moments[n].add(x)
            if distinct[n] is not None:
                u = np.union1d(distinct[n], np.unique(x))
                distinct[n] = u if u.size <= AUTO_MAX_UNIQUE else None

    cols_: list[_Col] = []
    fine_edges: dict[str, np.ndarray] = {}
    for n in names:
        valid = ref.rows - ref.missing[n]
        if valid == 0:
            raise InputError(f"column {n!r} of the reference has only missing values; drop it or pass "
                             "columns=[...] without it.")
        is_num = n in numeric
        n_unique = (AUTO_MAX_UNIQUE + 1 if distinct[n] is None else distinct[n].size) if is_num else len(ref.cats[n])
        requested = det._column_test(n)
        if requested == "auto":
            test, categorical = choose_test(kinds[n], valid, n_unique)
        else:
            test, categorical = requested, (not is_num) or requested == "chi2"
            if is_num and test == "chi2" and distinct[n] is None:
                raise ConfigError(f"method 'chi2' on numeric column {n!r} with more than {AUTO_MAX_UNIQUE} "
                                  "distinct values is not available in detect_drift_parquet; use ks, "
                                  "wasserstein or a histogram measure.")
        col = _Col(n, kinds[n], test, categorical, det._threshold(n, test), valid, ref.missing[n] / ref.rows,
                   held=held_ref[n])
        if is_num and not categorical:
            sample = np.sort(np.concatenate(samples[n]))
            if sample.size == 0:  # tiny rate on a sparse column: fall back to the observed range
                sample = np.array([ref.moments[n].lo, ref.moments[n].hi])
            levels = np.arange(1, resolution) / resolution
            fine_edges[n] = np.unique(np.quantile(sample, levels))
            col.std = ref.moments[n].std
            if test in ("psi", "jensen_shannon", "hellinger"):
                col.edges = uv.quantile_edges(sample, n_bins)
        cols_.append(col)
    del samples

    # -- counts: reference pass 2, current pass 1 --------------------------------------------------
    exact_numeric = [c.name for c in cols_ if c.categorical and c.name in numeric]

    def count(pf: Any, side: _Side, first_pass: bool) -> None:
        for n in fine_edges:
            side.fine[n] = np.zeros(fine_edges[n].size + 1, dtype=np.int64)
        for rows, cols in _batches(pf, names, batch_size):
            if first_pass:
                side.rows += rows
            for n, arr in cols.items():
                if first_pass and n in changed:  # the current values are of another type: count, do not read
                    side.missing[n] += arr.null_count
                    continue
                if n not in numeric:
                    if first_pass:
                        side.missing[n] += arr.null_count
                        _count_categories(arr, side.cats[n])
                    continue
                x = _as_float(arr, n)
                x = x[~np.isnan(x)]
                if first_pass:
                    side.missing[n] += arr.null_count + (len(arr) - arr.null_count - x.size)
                    side.moments[n].add(x)
                if n in fine_edges:
                    side.fine[n] += np.bincount(np.searchsorted(fine_edges[n], x, side="right"),
                                                minlength=fine_edges[n].size + 1)
                elif n in exact_numeric:
                    vals, cnt = np.unique(x, return_counts=True)
                    side.cats[n].update(dict(zip(vals.tolist(), cnt.tolist())))

    count(pf_ref, ref, first_pass=False)
    cur = _Side(names)
    count(pf_cur, cur, first_pass=True)

    # -- tests from counts ------------------------------------------------------------------------
    stats: dict[str, tuple[float, float | None]] = {}
    too_few: dict[str, int] = {}
    ks_res = 0.0
    for col in cols_:
        n = col.name
        if cur.rows - cur.missing[n] == 0:
            raise InputError(f"column {n!r} of current has only missing values; nothing to compare.")
        if n in changed:
            continue
        if min(col.n, cur.rows - cur.missing[n]) < det.min_samples:
            too_few[n] = cur.rows - cur.missing[n]
            continue
        if col.categorical:
            keys = list(ref.cats[n]) + [k for k in cur.cats[n] if k not in ref.cats[n]]
            p = np.array([ref.cats[n].get(k, 0) for k in keys], dtype=float)
            q = np.array([cur.cats[n].get(k, 0) for k in keys], dtype=float)
            if col.test == "chi2":
                r = uv.chi2_from_counts(p, q)
                stats[n] = (r.statistic, r.p_value)
            else:
                stats[n] = (_distance(col.test, p, q), None)
            continue
        fr, fc = ref.fine[n].astype(float), cur.fine[n].astype(float)
        n1, n2 = fr.sum(), fc.sum()
        ks_res = max(ks_res, float(max((fr / n1).max(), (fc / n2).max())))
        if col.test == "ks":
            d = float(np.max(np.abs(np.cumsum(fr)[:-1] / n1 - np.cumsum(fc)[:-1] / n2), initial=0.0))
            stats[n] = (d, uv.ks_pvalue(d, int(n1), int(n2), det.ks_method))
        elif col.test == "wasserstein":
            lo = min(ref.moments[n].lo, cur.moments[n].lo)
            hi = max(ref.moments[n].hi, cur.moments[n].hi)
            w = _binned_wasserstein(fine_edges[n], fr / n1, fc / n2, lo, hi)
            stats[n] = (w / col.std if col.std > 0 else w, None)
        else:
            cut = np.searchsorted(fine_edges[n], col.edges, side="left")
            bounds = np.concatenate([[0], cut, [fr.size]])
            coarse_r = np.add.reduceat(fr, bounds[:-1])[: bounds.size - 1]
            coarse_c = np.add.reduceat(fc, bounds[:-1])[: bounds.size - 1]
            empty = bounds[1:] == bounds[:-1]  # reduceat yields the element, not 0, for empty ranges
            coarse_r[empty] = 0
            coarse_c[empty] = 0
            stats[n] = (_distance(col.test, coarse_r, coarse_c), None)

    det.columns_ = cols_
    det.n_reference_ = ref.rows
    cur_missing = {c.name: cur.missing[c.name] / cur.rows for c in cols_}
    res = det._judge(stats, cur_missing, cur.rows, changed, too_few)
    res.details.update({"chunked": True, "resolution": resolution, "ks_resolution": ks_res})
    return res


def _open_parquet(pq: Any, arg: str, path: Any) -> Any:
    """``pq.ParquetFile(path)``, or an InputError that says what to call for other files."""
    from stalwart.data.loaders import _file_kind

    p = Path(path)
    if not p.exists():
        raise InputError(f"{arg} {str(path)!r} does not exist; pass the path of a Parquet file.")
    kind = _file_kind(p) if p.is_file() else None
    other = ("For CSV files, load both tables (pandas.read_csv, or stalwart.data.load_data) and call "
             "stalwart.shift.detect_drift(reference, current); `stalwart drift` does this for you.")
    if kind not in (None, "parquet"):
        raise InputError(f"{arg} {str(path)!r} is a {kind.upper()} file, but detect_drift_parquet reads Parquet files "
                         f"only. {other}")
    try:
        return pq.ParquetFile(p)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a file that is not Parquet
        raise InputError(f"{arg} {str(path)!r} could not be read as Parquet ({type(exc).__name__}: {exc}); "
                         f"detect_drift_parquet reads Parquet files only. {other}") from None


def _distance(test: str, p: np.ndarray, q: np.ndarray) -> float:
    if test == "psi":
        return uv.psi_from_counts(p, q)
    if test == "jensen_shannon":
        return uv.js_from_counts(p, q)
    return uv.hellinger_from_counts(p, q)


def _binned_wasserstein(edges: np.ndarray, pr: np.ndarray, pc: np.ndarray, lo: float, hi: float) -> float:
    """Integral of |F_ref - F_cur| with both CDFs linear inside each bin ``[x_b, x_(b+1)]``."""
    x = np.concatenate([[lo], np.clip(edges, lo, hi), [hi]])
    g = np.concatenate([[0.0], np.cumsum(pr - pc)])
    g[-1] = 0.0  # both CDFs reach 1
    a, b, w = g[:-1], g[1:], np.diff(x)
    same = a * b >= 0
    absum = np.abs(a) + np.abs(b)
    area = np.where(same, w * absum / 2, w * (a * a + b * b) / (2 * np.where(absum > 0, absum, 1.0)))
    return float(np.sum(area))


def _frame_to_parquet(df: pd.DataFrame, path: str | Path, row_group_size: int | None = None) -> None:
    """Write ``df`` as Parquet (used by tests and benchmarks)."""
    pa = require("pyarrow", "parquet")
    pq = require("pyarrow.parquet", "parquet")
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), str(path), row_group_size=row_group_size)
