"""Drift tests on Parquet files too large for memory, read column by column.

:func:`detect_drift_parquet` never holds a table: it reads one column of each file at a time, in
batches, and keeps per column only what the test needs.

**Exact (the default).** The result is the one :func:`~stalwart.shift.drift.detect_drift` gives on
the two tables read whole -- every statistic computed by the same code of
:class:`~stalwart.shift.drift.TabularDrift`:

- categorical columns (and numeric ones compared as categories): exact value counts, merged batch
  by batch;
- a numeric column whose two files hold at most ``window`` values together is read whole (one
  column, never the table) and tested exactly as in memory -- the same numbers to the last bit;
- a larger numeric column is sorted batch by batch into runs written to a temporary file, and the
  runs are merged by value range, about ``window / 2`` values at a time. KS and Wasserstein come
  from the same merged CDFs as in memory (KS to the last bit; Wasserstein and the reference
  standard deviation are sums, so their last bits may differ), the quantile bins of ``psi`` /
  ``jensen_shannon`` / ``hellinger`` from the exact order statistics. ``anderson`` needs every
  value at once and is refused for such a column. Memory stays at one window; the temporary file
  holds one column (8 bytes per value of both files) and is deleted after it.

**Binned** (``exact=False``): two passes over the reference and one over the current file, all
columns together, no temporary file. Categorical tests are exact; numeric ones work on
``resolution`` fine quantile bins cut from a uniform reference sample (``sample_size`` rows):

- ``ks``: the largest CDF gap at the bin edges, ``|D_binned - D| <= max bin share`` (reported as
  ``details["ks_resolution"]``, about ``1 / resolution``);
- ``wasserstein``: the integral of ``|F_ref - F_cur|`` with both CDFs linear inside each bin (outer
  bins end at the observed minimum and maximum), divided by the exact reference std;
- ``psi``, ``jensen_shannon``, ``hellinger``: the ``n_bins`` coarse bins are unions of fine bins
  (quantiles of the reference *sample* rather than of the whole reference);
- ``anderson`` is not available.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stalwart._validation import check_param
from stalwart.data.loaders import SUPPORTED_EXTENSIONS
from stalwart.data.schema import Schema
from stalwart.errors import ConfigError, InputError, require
from stalwart.shift import univariate as uv
from stalwart.shift.base import DriftResult
from stalwart.shift.drift import (
    AUTO_MAX_UNIQUE,
    CDF_TESTS,
    HISTOGRAM_TESTS,
    MIN_TEST_SAMPLES,
    VALUE_FAMILY,
    ColumnFit,
    TabularDrift,
    TypeChange,
    category_change,
    choose_test,
    held_kind,
    numeric_change,
    reference_numbers,
)

__all__ = ["detect_drift_parquet", "compare_labels_parquet", "read_column", "file_kind", "WINDOW", "BATCH_ROWS"]

#: values of one numeric column (both files together) held at once by the exact test
WINDOW = 2_000_000
#: rows read at a time
BATCH_ROWS = 1 << 20
#: every STRIDE-th value of each sorted run stays in memory to find value ranges in the file
_STRIDE = 256
#: distinct values counted exactly for a large numeric column compared as categories
_MAX_DISTINCT = 100_000
#: how pyarrow opens a file here: no pre-buffering (it would read a whole column ahead, which is
#: what streaming avoids) and reads of 1 MiB
_READ = {"pre_buffer": False, "buffer_size": 1 << 20}


# -- reading ---------------------------------------------------------------------------------------
def file_kind(path: str | Path) -> str | None:
    """``"csv"``, ``"parquet"`` or ``"npz"`` from a file name's extension (as the data loaders
    read it), None for another one."""
    name = Path(path).name.lower()
    for ext, kind in sorted(SUPPORTED_EXTENSIONS.items(), key=lambda kv: -len(kv[0])):
        if name.endswith(ext) and len(name) > len(ext):
            return kind
    return None


def _open_parquet(pq: Any, arg: str, path: Any) -> Any:
    """``pq.ParquetFile(path)``, or an InputError that says what to call for other files."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{arg} {str(path)!r} does not exist; pass the path of a Parquet file.")
    kind = file_kind(p)
    other = ("For CSV files, load both tables (pandas.read_csv, or stalwart.data.load_data) and call "
             "stalwart.shift.detect_drift(reference, current); `stalwart drift` does this for you.")
    if p.is_file() and kind not in (None, "parquet"):
        raise InputError(f"{arg} {str(path)!r} is a {kind.upper()} file, but detect_drift_parquet reads Parquet files "
                         f"only. {other}")
    try:
        return pq.ParquetFile(p, **_READ)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a file that is not Parquet
        raise InputError(f"{arg} {str(path)!r} could not be read as Parquet ({type(exc).__name__}: {exc}); "
                         f"detect_drift_parquet reads Parquet files only. {other}") from None


def _arrays(path: Path, name: str, batch_size: int, *, dictionary: bool = False) -> Iterator[Any]:
    """One column of a Parquet file as Arrow arrays of ``batch_size`` rows; ``dictionary`` reads
    text as dictionaries (indices into the distinct values: counting them is 4x faster).

    The file is opened for this column alone: an open reader keeps what it read until closed.
    """
    pq = require("pyarrow.parquet", "parquet")
    with pq.ParquetFile(path, read_dictionary=[name] if dictionary else None, **_READ) as pf:
        # one column at a time: pyarrow's reader threads would only compete with the sorts
        for batch in pf.iter_batches(batch_size=batch_size, columns=[name], use_threads=False):
            yield batch.column(0)


def _decoded(arr: Any) -> Any:
    pa = require("pyarrow", "parquet")
    return arr.dictionary_decode() if pa.types.is_dictionary(arr.type) else arr


def _numbers(arr: Any) -> np.ndarray | None:
    """An integer or float Arrow array as floats, NaN where missing -- the values pandas gives
    (exact for integers below 2**53) without building a Series; None for other types."""
    pa = require("pyarrow", "parquet")
    if not (pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type)):
        return None
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=np.float64)


def _is_text(pf: Any, name: str) -> bool:
    """Whether a column is stored as plain text (then it reads faster as a dictionary)."""
    pa = require("pyarrow", "parquet")
    t = pf.schema_arrow.field(name).type
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t)


class _Dtypes:
    """The pandas dtypes of a Parquet file's columns as ``pandas.read_parquet`` gives them (its
    pandas metadata restores nullable integers and categories), which decide kinds in memory."""

    def __init__(self, pf: Any) -> None:
        self._empty = pf.schema_arrow.empty_table().to_pandas()

    def of(self, name: str, nulls: int) -> Any:
        """The dtype of column ``name`` holding ``nulls`` missing values: NumPy integers and booleans
        with missing values are read as floats and objects."""
        dtype = self._empty[name].dtype
        if nulls and isinstance(dtype, np.dtype) and dtype.kind in "iub":
            return np.dtype(np.float64) if dtype.kind in "iu" else np.dtype(object)
        return dtype

    def empty(self, name: str, nulls: int) -> pd.Series:
        return pd.Series([], dtype=self.of(name, nulls), name=name)

    def kind(self, name: str, nulls: int) -> str:
        """The schema kind :meth:`Schema.infer <stalwart.data.Schema.infer>` gives the column."""
        return Schema.infer(self.empty(name, nulls).to_frame()).column(str(name)).kind


class _Counts:
    """Value counts of a column, batch by batch, as pandas' ``value_counts(sort=False)`` orders
    them: in order of first appearance, or, for a pandas category (``categories=True``), in the
    order of its categories (the Arrow dictionary). Missing values (null, NaN) are counted apart."""

    def __init__(self, categories: bool = False) -> None:
        self.counts: dict[Any, int] = {}
        self.order: dict[Any, None] | None = {} if categories else None
        self.rows = 0
        self.missing = 0

    def add(self, arr: Any) -> None:
        pa = require("pyarrow", "parquet")
        pc = require("pyarrow.compute", "parquet")
        self.rows += len(arr)
        if pa.types.is_dictionary(arr.type) and self.order is not None:
            self.order.update(dict.fromkeys(arr.dictionary.to_pylist()))
        if pa.types.is_dictionary(arr.type) and not pa.types.is_floating(arr.type.value_type):
            # count the indices (in order of first appearance), then name them
            valid = pc.drop_null(arr.indices)
            vc = pc.value_counts(valid)
            keys = arr.dictionary.take(vc.field("values")).to_pylist()
        else:
            valid = pc.drop_null(_decoded(arr))
            if pa.types.is_floating(valid.type):
                valid = valid.filter(pc.invert(pc.is_nan(valid)))
            vc = pc.value_counts(valid)
            keys = vc.field("values").to_pylist()
        self.missing += len(arr) - len(valid)
        for key, n in zip(keys, vc.field("counts").to_pylist()):
            self.counts[key] = self.counts.get(key, 0) + n

    def series(self) -> pd.Series:
        keys = list(self.counts) if self.order is None else [k for k in self.order if k in self.counts]
        return pd.Series([self.counts[k] for k in keys], index=pd.Index(keys, dtype=object), dtype=np.int64)


class _ValueCounts:
    """Exact counts of the distinct values of a numeric column (sorted), while there are at most
    ``limit`` of them; None beyond."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.values: np.ndarray | None = np.zeros(0)
        self.counts = np.zeros(0, dtype=np.int64)

    def add(self, x: np.ndarray) -> None:
        """Count the values of ``x`` (sorted: a run)."""
        if self.values is None or x.size == 0:
            return
        starts = np.flatnonzero(np.r_[True, x[1:] != x[:-1]])
        vals, cnt = x[starts], np.diff(np.r_[starts, x.size])
        both, inverse = np.unique(np.concatenate([self.values, vals]), return_inverse=True)
        if both.size > self.limit:
            self.values = None
            return
        self.counts = np.bincount(inverse, weights=np.concatenate([self.counts, cnt]),
                                  minlength=both.size).astype(np.int64)
        self.values = both

    @property
    def n_unique(self) -> int:
        return self.limit + 1 if self.values is None else self.values.size


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


# -- sorted runs on disk and their merge -----------------------------------------------------------
class _Runs:
    """Sorted runs of one column's values in a temporary file; every ``_STRIDE``-th value of each
    run stays in memory, so a value range is found by reading at most ``_STRIDE`` extra values."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = open(path, "w+b")  # noqa: SIM115 - closed (and deleted) by close()
        self.starts: list[int] = []
        self.lengths: list[int] = []
        self.samples: list[np.ndarray] = []
        self.n = 0

    def add(self, x_sorted: np.ndarray) -> None:
        if x_sorted.size == 0:
            return
        self._file.seek(0, 2)
        self.starts.append(self.n)
        self.lengths.append(x_sorted.size)
        self.samples.append(x_sorted[::_STRIDE].copy())
        self._file.write(memoryview(np.ascontiguousarray(x_sorted, dtype=np.float64)).cast("B"))
        self.n += x_sorted.size

    def read(self, run: int, start: int, stop: int) -> np.ndarray:
        out = np.empty(stop - start, dtype=np.float64)
        self._file.seek((self.starts[run] + start) * 8)
        self._file.readinto(memoryview(out).cast("B"))
        return out

    def count_lt(self, value: float) -> int:
        """How many values are ``< value`` (a value equal to a bin edge is binned above it)."""
        total = 0
        for run, sample in enumerate(self.samples):
            k = int(np.searchsorted(sample, value, side="left"))  # sampled values < value
            if k == 0:
                continue
            lo, hi = (k - 1) * _STRIDE, min(k * _STRIDE, self.lengths[run])
            total += lo + int(np.searchsorted(self.read(run, lo, hi), value, side="left"))
        return total

    def close(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)


def _windows(sources: list[_Runs], target: int) -> Iterator[list[np.ndarray]]:
    """The values of each source in consecutive value ranges ``[lo, hi)`` of about ``target``
    values in all (a run of tied values is never split), in increasing order of value.

    Each item lists, per source, its values in the range (unsorted: pieces of several runs).
    """
    runs = [(k, r) for k, src in enumerate(sources) for r in range(len(src.lengths))]
    if not runs:
        return
    pooled = np.sort(np.concatenate([sources[k].samples[r] for k, r in runs]))
    step = max(1, target // _STRIDE)
    bounds = [*np.unique(pooled[step::step]).tolist(), None]
    cursor = dict.fromkeys(runs, 0)
    for hi in bounds:
        pieces: list[list[np.ndarray]] = [[] for _ in sources]
        for k, r in runs:
            src, start, length = sources[k], cursor[(k, r)], sources[k].lengths[r]
            if start >= length:
                continue
            if hi is None:
                stop = length
            else:  # values < hi end before the first sampled value >= hi
                stop = min(int(np.searchsorted(src.samples[r], hi, side="left")) * _STRIDE, length)
                if stop <= start:
                    continue
            block = src.read(r, start, stop)
            end = block.size if hi is None else int(np.searchsorted(block, hi, side="left"))
            if end:
                pieces[k].append(block[:end])
            cursor[(k, r)] = start + end
        yield [np.concatenate(p) if p else np.zeros(0) for p in pieces]


def _merged_cdfs(ref: _Runs, cur: _Runs, target: int) -> tuple[float, float]:
    """KS statistic and unnormalised Wasserstein-1 distance of two columns held as sorted runs.

    The merge of :func:`~stalwart.shift.univariate.ks_and_wasserstein`, window by window: the
    CDF gaps are the same numbers (counts below the window carried over), so KS is exact to the
    bit and the Wasserstein sum differs only in the order of its terms.
    """
    n1, n2 = ref.n, cur.n
    below1 = below2 = 0
    d, w = 0.0, 0.0
    last_value = last_gap = None
    for r, c in _windows([ref, cur], target):
        m1, m = r.size, r.size + c.size
        if m == 0:
            continue
        r.sort()  # pieces of many runs; sorted, the stable argsort below merges just two
        c.sort()
        pooled = np.concatenate([r, c])
        order = np.argsort(pooled, kind="stable")
        values = pooled[order]
        del pooled
        count = np.cumsum(order < m1, dtype=np.int64)
        del order
        count += below1
        gap = count / n1
        np.subtract(np.arange(below1 + below2 + 1, below1 + below2 + m + 1, dtype=np.int64), count, out=count)
        gap -= count / n2
        np.abs(gap, out=gap)
        last = np.ones(m, dtype=bool)
        last[:-1] = values[1:] != values[:-1]
        d = max(d, float(np.max(gap, where=last, initial=0.0)))
        if last_value is not None:
            w += last_gap * (float(values[0]) - last_value)
        w += float(np.sum(gap[:-1] * np.diff(values)))
        last_value, last_gap = float(values[-1]), float(gap[-1])
        below1 += m1
        below2 += m - m1
    return d, w


def _quantile_edges(runs: _Runs, n_bins: int, target: int) -> np.ndarray:
    """:func:`~stalwart.shift.univariate.quantile_edges` of a column held as sorted runs: the same
    linear interpolation between the same order statistics as ``numpy.quantile``."""
    n = runs.n
    levels = np.arange(1, n_bins) / n_bins
    virtual = (n - 1) * levels
    below = np.floor(virtual)
    gamma = virtual - below
    lo = below.astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    lo = np.where(virtual >= n - 1, n - 1, lo)
    wanted = np.unique(np.concatenate([lo, hi]))
    found: dict[int, float] = {}
    seen = 0
    for (values,) in _windows([runs], target):
        if values.size == 0:
            continue
        inside = wanted[(wanted >= seen) & (wanted < seen + values.size)]
        if inside.size:
            values.sort()
            found.update(zip(inside.tolist(), values[inside - seen].tolist()))
        seen += values.size
    a = np.array([found[i] for i in lo.tolist()])
    b = np.array([found[i] for i in hi.tolist()])
    diff = b - a
    out = a + diff * gamma
    np.subtract(b, diff * (1 - gamma), out=out, where=gamma >= 0.5)
    return np.unique(out)


# -- one column, exactly ---------------------------------------------------------------------------
class _Exact:
    """The exact streamed test of one column: reference, then current."""

    def __init__(self, det: TabularDrift, paths: tuple[Path, Path], batch_size: int, window: int,
                 workdir: Path | None) -> None:
        pq = require("pyarrow.parquet", "parquet")
        self.det = det
        self.ref_path, self.cur_path = paths
        self.pf_ref, self.pf_cur = (pq.ParquetFile(p, **_READ) for p in paths)  # schemas and row counts
        self.ref_dtypes, self.cur_dtypes = _Dtypes(self.pf_ref), _Dtypes(self.pf_cur)
        self.batch_size, self.window = batch_size, window
        self.workdir = workdir

    def run(self, name: str, schema_kind: str | None
            ) -> tuple[ColumnFit, tuple[float, float | None] | TypeChange | int, float]:
        """``(fit, outcome, current missing share)``; the outcome is ``(statistic, p)``, a
        :class:`TypeChange`, or the current count when it is below ``min_samples``."""
        kind = schema_kind or self.ref_dtypes.kind(name, 0)  # missing values keep numbers numbers
        if kind in ("numeric", "integer"):
            return self._numeric(name, schema_kind)
        return self._categorical(name, schema_kind)

    def _workdir(self) -> Path:  # opened by detect_drift_parquet when the files hold more than the window
        if self.workdir is None:
            raise AssertionError("a temporary directory is opened before large columns")
        return self.workdir

    # -- categories ------------------------------------------------------------------------------
    def _categorical(self, name: str, schema_kind: str | None):
        det = self.det
        ref = _Counts(categories=isinstance(self.ref_dtypes.of(name, 0), pd.CategoricalDtype))
        for arr in _arrays(self.ref_path, name, self.batch_size, dictionary=_is_text(self.pf_ref, name)):
            ref.add(arr)
        counts = ref.series()
        nulls = ref.missing
        kind = schema_kind or self.ref_dtypes.kind(name, nulls)
        col = det.fit_counts(name, kind, held_kind(self.ref_dtypes.empty(name, nulls), counts.index), counts, ref.rows)
        cur = _Counts(categories=isinstance(self.cur_dtypes.of(name, 0), pd.CategoricalDtype))
        for arr in _arrays(self.cur_path, name, self.batch_size, dictionary=_is_text(self.pf_cur, name)):
            cur.add(arr)
        n = cur.rows - cur.missing
        missing = cur.missing / cur.rows
        if n == 0:
            raise InputError(f"column {name!r} of current has only missing values; nothing to compare.")
        cur_counts = cur.series()
        change = category_change(col, held_kind(self.cur_dtypes.empty(name, cur.missing), cur_counts.index), cur_counts)
        if change is not None:
            return col, change, missing
        if min(n, col.n) < det.min_samples:
            return col, n, missing
        return col, det.counts_statistic(col, cur_counts), missing

    # -- numbers ---------------------------------------------------------------------------------
    def _numeric(self, name: str, schema_kind: str | None):
        det = self.det
        whole = self.pf_ref.metadata.num_rows + self.pf_cur.metadata.num_rows <= self.window
        requested = det.column_test(name)
        if not whole and requested == "anderson":
            raise ConfigError(f"method 'anderson' (column {name!r}) needs every value at once, and the two files hold "
                              f"more than window={self.window:,} values of it; pass a larger window (memory: about "
                              "40 bytes per value) or use ks, wasserstein or a histogram measure.")
        runs: list[_Runs] = []
        try:
            col, ref = self._fit_numbers(name, schema_kind, whole, runs)
            return self._test_numbers(name, col, ref, whole, runs)
        finally:
            for r in runs:
                r.close()

    def _fit_numbers(self, name: str, schema_kind: str | None, whole: bool, runs: list[_Runs]):
        det = self.det
        rows = nulls = 0
        parts: list[np.ndarray] = []
        buffer: list[np.ndarray] = []
        buffered = 0
        spill = None if whole else _Runs(self._workdir() / f"ref-{len(runs)}.bin")
        if spill is not None:
            runs.append(spill)
        # distinct values: auto needs to know whether there are more than AUTO_MAX_UNIQUE, chi2 all of them
        limit = _MAX_DISTINCT if det.column_test(name) == "chi2" else AUTO_MAX_UNIQUE
        moments, distinct = _Moments(), _ValueCounts(limit)
        for arr in _arrays(self.ref_path, name, self.batch_size):
            rows += len(arr)
            nulls += arr.null_count
            x = _numbers(arr)
            x = reference_numbers(_decoded(arr).to_pandas(), name) if x is None else x
            x = x[~np.isnan(x)]
            if whole:
                parts.append(x)
                continue
            moments.add(x)
            buffer.append(x)
            buffered += x.size
            if buffered >= self.window // 2:
                run = np.sort(np.concatenate(buffer))
                distinct.add(run)
                spill.add(run)
                buffer, buffered = [], 0
        kind = schema_kind or self.ref_dtypes.kind(name, nulls)
        dtype = self.ref_dtypes.of(name, nulls)  # as in TabularDrift.fit
        held = "boolean" if pd.api.types.is_bool_dtype(dtype) else (
            "integer" if pd.api.types.is_integer_dtype(dtype) else "numeric")
        if whole:
            x = np.concatenate(parts) if parts else np.zeros(0)
            del parts
            return det.fit_numeric(name, kind, held, np.sort(x), rows), None
        if buffer:
            run = np.sort(np.concatenate(buffer))
            distinct.add(run)
            spill.add(run)
        col = det.plan_column(name, kind, spill.n, distinct.n_unique, rows, held)
        if col.categorical:
            if distinct.values is None:  # only chi2 gets here: auto compares at most AUTO_MAX_UNIQUE values as categories
                raise ConfigError(f"method 'chi2' on numeric column {name!r} with more than {_MAX_DISTINCT:,} distinct "
                                  f"values needs the column in memory (the files hold more than window="
                                  f"{self.window:,} values of it); use ks, wasserstein or a histogram measure.")
            col.categories, col.counts = pd.Index(distinct.values), distinct.counts.astype(float)
            return col, None
        col.std = moments.std
        if col.test in HISTOGRAM_TESTS:
            col.edges = _quantile_edges(spill, det.n_bins, self.window // 2)
            cuts = [spill.count_lt(e) for e in col.edges.tolist()]
            col.counts = np.diff(np.array([0, *cuts, spill.n], dtype=np.int64))
        return col, spill

    def _test_numbers(self, name: str, col: ColumnFit, ref: _Runs | None, whole: bool, runs: list[_Runs]):
        det = self.det
        cdf = not whole and not col.categorical and col.test in CDF_TESTS
        spill = None
        if cdf:
            spill = _Runs(self._workdir() / f"cur-{len(runs)}.bin")
            runs.append(spill)
        parts: list[np.ndarray] = []
        buffer: list[np.ndarray] = []
        buffered = 0
        bins = np.zeros(0 if col.edges is None else col.edges.size + 1, dtype=np.int64)
        distinct = _ValueCounts(2**62)
        rows = valid = bad = 0
        change: TypeChange | None = None
        numbers = VALUE_FAMILY[col.held] == "number"  # then integer and float arrays compare as they are
        for arr in _arrays(self.cur_path, name, self.batch_size):
            rows += len(arr)
            x = _numbers(arr) if numbers else None
            if x is not None:
                step, x = None, x[~np.isnan(x)]
            else:
                s = _decoded(arr).to_pandas()
                step, x = numeric_change(col, s)
            if step is not None:  # counted over the whole column, as in memory
                notna = int(s.notna().sum())
                change = change or step
                bad += round(step.share * notna)
                valid += notna
                continue
            valid += x.size
            if change is not None:
                continue
            if whole:
                parts.append(x)
            elif col.categorical:
                distinct.add(np.sort(x))
            elif cdf:
                buffer.append(x)
                buffered += x.size
                if buffered >= self.window // 2:
                    spill.add(np.sort(np.concatenate(buffer)))
                    buffer, buffered = [], 0
            else:
                bins += np.bincount(np.searchsorted(col.edges, x, side="right"), minlength=bins.size)
        missing = (rows - valid) / rows
        if valid == 0:
            raise InputError(f"column {name!r} of current has only missing values; nothing to compare.")
        if change is not None:
            return col, TypeChange(change.kind, bad / valid, change.example), missing
        if min(valid, col.n) < det.min_samples:
            return col, valid, missing
        if whole:
            return col, det.numeric_statistic(col, np.concatenate(parts)), missing
        if col.categorical:
            return col, det.counts_statistic(col, pd.Series(distinct.counts.astype(float),
                                                            index=pd.Index(distinct.values))), missing
        if not cdf:
            return col, (uv.from_counts(col.test, col.counts, bins), None), missing
        if buffer:
            spill.add(np.sort(np.concatenate(buffer)))
        d, w = _merged_cdfs(ref, spill, self.window // 2)
        return col, det.cdf_statistic(col, d, w, spill.n), missing


# -- the public function ---------------------------------------------------------------------------
def detect_drift_parquet(reference_path: str | Path, current_path: str | Path, *,
                         columns: list[str] | None = None, method: str | dict[str, str] = "auto",
                         alpha: float = 0.05, correction: str | None = "bonferroni",
                         threshold: float | dict[str, float] | None = None, schema: Schema | None = None,
                         n_bins: int = 10, min_samples: int = MIN_TEST_SAMPLES, exact: bool = True,
                         window: int | None = None, batch_size: int = BATCH_ROWS, tmp_dir: str | Path | None = None,
                         resolution: int = 2000, sample_size: int = 100_000, seed: int = 0,
                         executor: Any = None) -> DriftResult:
    """:func:`~stalwart.shift.drift.detect_drift` on two Parquet files, read column by column.

    Parameters
    ----------
    reference_path, current_path : str or Path
        Parquet files (read with pyarrow, ``pip install 'stalwart[parquet]'``).
    columns, method, alpha, correction, threshold, schema, n_bins, min_samples
        As in :class:`~stalwart.shift.drift.TabularDrift`. Kinds come from the Arrow types as
        pandas would read them (an integer column with missing values is numeric) unless
        ``schema`` declares them. A column whose current values are of another kind (numbers
        vs text, booleans vs numbers) is a ``type_change`` row, as in memory.
    exact : bool, default True
        The results of the in-memory test (module docs); ``False``: the binned approximation.
    window : int, optional
        Exact test: values of one numeric column (both files) held at once (default
        :data:`WINDOW`, 2,000,000: two files of a million rows are read column by column whole). Smaller columns are
        read whole; larger ones go through a temporary file, ``window / 2`` values at a time.
        Peak memory is about 50 bytes per value of a window.
    batch_size : int, default 262,144
        Rows read at a time.
    tmp_dir : str or Path, optional
        Where the exact test writes the sorted runs of a large column (default: the system's
        temporary directory); it needs 8 bytes per value of one column of both files.
    resolution, sample_size, seed
        Binned test only: fine quantile bins per numeric column (its accuracy), the expected size
        of the uniform reference sample they are cut from, and the sample's seed.
    executor : optional
        Exact test only: where the columns are tested, one task per column ("local", "process",
        "ray" or a :class:`stalwart.execute.Executor`; default: the one
        :func:`stalwart.execute.use_executor` set, else this process). Columns are independent, so
        the result is the same on each; every worker reads the files by their paths (a cluster
        needs them on shared storage) and holds up to one window of values.

    Returns
    -------
    DriftResult
        As :func:`detect_drift`; ``details`` adds ``"chunked": True``, ``"exact"`` and
        ``"categorical"`` (the columns compared as categories); the binned test also ``"resolution"`` and ``"ks_resolution"`` (largest share of a fine bin, the bound
        on the KS error).
    """
    pq = require("pyarrow.parquet", "parquet")
    det = TabularDrift(columns=columns, method=method, alpha=alpha, correction=correction,
                       threshold=threshold, schema=schema, n_bins=n_bins, min_samples=min_samples)
    check_param("detect_drift_parquet", "exact", exact, isinstance(exact, bool), "True or False")
    window = WINDOW if window is None else window
    for name, value, lo in (("window", window, 4), ("resolution", resolution, 2), ("sample_size", sample_size, 2),
                            ("batch_size", batch_size, 1)):
        check_param("detect_drift_parquet", name, value, isinstance(value, (int, np.integer))
                    and not isinstance(value, bool) and value >= lo, f"an integer >= {lo}")
    pf_ref = _open_parquet(pq, "reference_path", reference_path)
    pf_cur = _open_parquet(pq, "current_path", current_path)
    names = det.check_columns(list(pf_ref.schema_arrow.names))
    lacking = [c for c in names if c not in pf_cur.schema_arrow.names]
    if lacking:
        raise InputError(f"current lacks columns {lacking} that the reference has; it has columns "
                         f"{pf_cur.schema_arrow.names}")
    if pf_ref.metadata.num_rows == 0 or pf_cur.metadata.num_rows == 0:
        raise InputError("reference and current must each hold at least one row; one file is empty.")
    kinds = {n: (schema.column(n).kind if schema is not None and n in schema.names else None) for n in names}
    if not exact:
        return _binned(det, pf_ref, pf_cur, names, kinds, resolution, sample_size, batch_size, seed)

    large = pf_ref.metadata.num_rows + pf_cur.metadata.num_rows > window
    fits: list[ColumnFit] = []
    stats: dict[str, tuple[float, float | None]] = {}
    changed: dict[str, TypeChange] = {}
    too_few: dict[str, int] = {}
    missing: dict[str, float] = {}
    workspace = tempfile.TemporaryDirectory(prefix="stalwart-drift-", dir=tmp_dir) if large else nullcontext()
    with workspace as work:
        from stalwart.execute import resolve_executor

        shared = (det, (Path(reference_path).resolve(), Path(current_path).resolve()), batch_size, window,
                  Path(work) if work else None)
        outcomes = resolve_executor(executor).map(_exact_column, list(enumerate((n, kinds[n]) for n in names)),
                                                  shared=shared)
        for name, (col, outcome, missing[name]) in zip(names, outcomes):
            fits.append(col)
            if isinstance(outcome, TypeChange):
                changed[name] = outcome
            elif isinstance(outcome, int):
                too_few[name] = outcome
            else:
                stats[name] = outcome
    det.check_reference(fits)
    res = det.judge(fits, stats, n_reference=pf_ref.metadata.num_rows, n_current=pf_cur.metadata.num_rows,
                    missing=missing, changed=changed, too_few=too_few)
    res.details.update({"chunked": True, "exact": True, "categorical": [c.name for c in fits if c.categorical]})
    return res


def _exact_column(shared: tuple, item: tuple[int, tuple[str, str | None]]):
    """The exact test of one column (a task of :mod:`stalwart.execute`): columns are independent, and
    each spills its sorted runs into its own subdirectory of the workspace."""
    det, paths, batch_size, window, work = shared
    index, (name, kind) = item
    if work is not None:
        work = work / f"column-{index}"
        work.mkdir(exist_ok=True)
    return _Exact(det, paths, batch_size, window, work).run(name, kind)


# -- the binned approximation ----------------------------------------------------------------------
class _Side:
    """What one binned pass keeps for one data set."""

    def __init__(self, names: list[str]) -> None:
        self.rows = 0
        self.missing = dict.fromkeys(names, 0)
        self.moments = {n: _Moments() for n in names}
        self.cats: dict[str, Counter] = {n: Counter() for n in names}
        self.fine: dict[str, np.ndarray] = {}


def _arrow_kinds(pf: Any, names: list[str]) -> dict[str, str]:
    pa = require("pyarrow", "parquet")
    out = {}
    for n in names:
        t = pf.schema_arrow.field(n).type
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


def _floats(arr: Any, name: str) -> np.ndarray:
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


def _binned(det: TabularDrift, pf_ref: Any, pf_cur: Any, names: list[str], declared: dict[str, str | None],
            resolution: int, sample_size: int, batch_size: int, seed: int) -> DriftResult:
    """The binned approximation (``exact=False``): module docs."""
    stored = _arrow_kinds(pf_ref, names)
    kinds = {n: declared[n] or stored[n] for n in names}
    # what each file stores, whatever the schema says: another family in the current file is a type change
    held_cur = _arrow_kinds(pf_cur, names)
    changed = {n: TypeChange(held_cur[n], 1.0, f"a value of Arrow type {pf_cur.schema_arrow.field(n).type}")
               for n in names if VALUE_FAMILY[stored[n]] != VALUE_FAMILY[held_cur[n]]}
    numeric = [n for n in names if kinds[n] in ("numeric", "integer")]
    for n in names:
        requested = det.column_test(n)
        if requested == "anderson":
            raise ConfigError(f"method 'anderson' (column {n!r}) needs every value and is not available "
                              "in detect_drift_parquet(exact=False); use ks, wasserstein or a histogram measure.")
        if n not in numeric and requested != "auto" and not uv.TESTS[requested].categorical:
            raise ConfigError(f"method {requested!r} needs a numeric column but {n!r} is {kinds[n]}; use "
                              "chi2, psi, jensen_shannon or hellinger for categorical columns.")

    # -- pass 1 over the reference: moments, distinct values, categories, a uniform sample ---------
    n_ref_rows = pf_ref.metadata.num_rows
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
            x = _floats(arr, n)
            nan = np.isnan(x)
            ref.missing[n] += int(nan.sum()) - arr.null_count
            samples[n].append(x[take & ~nan])
            x = x[~nan]
            ref.moments[n].add(x)
            if distinct[n] is not None:
                u = np.union1d(distinct[n], np.unique(x))
                distinct[n] = u if u.size <= AUTO_MAX_UNIQUE else None

    cols_: list[ColumnFit] = []
    fine_edges: dict[str, np.ndarray] = {}
    for n in names:
        valid = ref.rows - ref.missing[n]
        if valid == 0:
            raise InputError(f"column {n!r} of the reference has only missing values; drop it or pass "
                             "columns=[...] without it.")
        is_num = n in numeric
        n_unique = (AUTO_MAX_UNIQUE + 1 if distinct[n] is None else distinct[n].size) if is_num else len(ref.cats[n])
        requested = det.column_test(n)
        if requested == "auto":
            test, categorical = choose_test(kinds[n], valid, n_unique)
        else:
            test, categorical = requested, (not is_num) or requested == "chi2"
            if is_num and test == "chi2" and distinct[n] is None:
                raise ConfigError(f"method 'chi2' on numeric column {n!r} with more than {AUTO_MAX_UNIQUE} "
                                  "distinct values is not available in detect_drift_parquet(exact=False); use ks, "
                                  "wasserstein or a histogram measure.")
        col = ColumnFit(n, kinds[n], test, categorical, det.threshold_for(n, test), valid, ref.missing[n] / ref.rows,
                        held=stored[n])
        if is_num and not categorical:
            sample = np.sort(np.concatenate(samples[n]))
            if sample.size == 0:  # tiny rate on a sparse column: fall back to the observed range
                sample = np.array([ref.moments[n].lo, ref.moments[n].hi])
            levels = np.arange(1, resolution) / resolution
            fine_edges[n] = np.unique(np.quantile(sample, levels))
            col.std = ref.moments[n].std
            if test in HISTOGRAM_TESTS:
                col.edges = uv.quantile_edges(sample, det.n_bins)
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
                x = _floats(arr, n)
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
                stats[n] = (uv.from_counts(col.test, p, q), None)
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
            stats[n] = (uv.from_counts(col.test, coarse_r, coarse_c), None)

    cur_missing = {c.name: cur.missing[c.name] / cur.rows for c in cols_}
    res = det.judge(cols_, stats, n_reference=ref.rows, n_current=cur.rows, missing=cur_missing, changed=changed,
                    too_few=too_few)
    res.details.update({"chunked": True, "exact": False, "categorical": [c.name for c in cols_ if c.categorical],
                        "resolution": resolution, "ks_resolution": ks_res})
    return res


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


# -- labels ------------------------------------------------------------------------------------------
def compare_labels_parquet(reference_path: str | Path, current_path: str | Path, target: str, *,
                           window: int | None = None, batch_size: int = BATCH_ROWS,
                           tmp_dir: str | Path | None = None) -> dict[str, Any]:
    """What the label-drift metrics of a drift check need from the ``target`` column of two
    Parquet files, read as the in-memory check reads labels (no missing label allowed).

    Returns ``{"classification": True, "reference_counts": Series, "current_counts": Series}``
    (labels as :func:`stalwart.data.load_data` gives them: booleans, integers or text), or, for
    float labels, ``{"classification": False, "ks": D, "p_value": p, "wasserstein": W / std_ref,
    "n_current": n}`` -- exact, like :func:`detect_drift_parquet`.
    """
    pa = require("pyarrow", "parquet")
    pq = require("pyarrow.parquet", "parquet")
    window = WINDOW if window is None else window
    files = {}
    for arg, path in (("reference_path", reference_path), ("current_path", current_path)):
        pf = _open_parquet(pq, arg, path)
        if target not in pf.schema_arrow.names:
            raise InputError(f"target column {target!r} is not in {arg} {str(path)!r}; it has columns "
                             f"{pf.schema_arrow.names}")
        files[arg] = pf
    pf_ref, pf_cur = files["reference_path"], files["current_path"]
    t = pf_ref.schema_arrow.field(target).type
    if not pa.types.is_floating(t):
        out: dict[str, Any] = {"classification": True}
        plain = pa.types.is_boolean(t) or pa.types.is_integer(t)
        for key, pf, path in (("reference_counts", pf_ref, reference_path), ("current_counts", pf_cur, current_path)):
            counts = _Counts()
            for arr in _arrays(Path(path), target, batch_size, dictionary=_is_text(pf, target)):
                counts.add(arr)
            _no_missing_labels(counts.missing, target, path)
            series = counts.series()
            if not plain:  # text, categories, dates: labels compare as text
                series.index = pd.Index([str(k) for k in series.index], dtype=object)
                series = series.groupby(level=0, sort=False).sum()
            out[key] = series
        return out

    def values(pf: Any, path: Any, runs: _Runs | None) -> tuple[np.ndarray | None, _Moments]:
        parts, moments = [], _Moments()
        for arr in _arrays(Path(path), target, batch_size):
            x = _decoded(arr).to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
            _no_missing_labels(int(np.isnan(x).sum()), target, path)
            if runs is None:
                parts.append(x)
            else:
                moments.add(x)
                runs.add(np.sort(x))
        return (np.concatenate(parts) if parts else np.zeros(0)), moments

    n1, n2 = pf_ref.metadata.num_rows, pf_cur.metadata.num_rows
    if n1 + n2 <= window:
        ref, _ = values(pf_ref, reference_path, None)
        cur, _ = values(pf_cur, current_path, None)
        std = float(ref.std())
        d, w = uv.ks_and_wasserstein(np.sort(ref)[None, :], np.sort(cur)[None, :])
        d, w = float(d[0]), float(w[0])
    else:
        with tempfile.TemporaryDirectory(prefix="stalwart-drift-", dir=tmp_dir) as work:
            ref_runs, cur_runs = _Runs(Path(work) / "ref.bin"), _Runs(Path(work) / "cur.bin")
            try:
                _, moments = values(pf_ref, reference_path, ref_runs)
                values(pf_cur, current_path, cur_runs)
                std = moments.std
                d, w = _merged_cdfs(ref_runs, cur_runs, window // 2)
            finally:
                ref_runs.close()
                cur_runs.close()
    return {"classification": False, "ks": d, "p_value": uv.ks_pvalue(d, n1, n2), "n_current": n2,
            "wasserstein": w / std if std > 0 else w}


def _no_missing_labels(missing: int, target: str, path: Any) -> None:
    if missing:
        raise InputError(f"target column {target!r} in data file {str(path)!r} has {missing} missing label(s); "
                         "drop or fill those rows.")


def read_column(path: str | Path, column: str, *, counts: bool = False, limit: int | None = None,
                batch_size: int = BATCH_ROWS) -> Any:
    """One column of a Parquet file, read in batches: its value counts (``counts=True``; a Series
    in order of first appearance, missing values left out), or its finite values as floats in
    file order -- every ``k``-th row when the file has more than ``limit`` rows (``k`` the
    smallest step that keeps at most ``limit``), so memory stays at ``limit`` values.
    """
    pq = require("pyarrow.parquet", "parquet")
    pf = _open_parquet(pq, "path", path)
    if column not in pf.schema_arrow.names:
        raise InputError(f"column {column!r} is not in {str(path)!r}; it has columns {pf.schema_arrow.names}")
    if counts:
        acc = _Counts(categories=isinstance(_Dtypes(pf).of(column, 0), pd.CategoricalDtype))
        for arr in _arrays(Path(path), column, batch_size, dictionary=_is_text(pf, column)):
            acc.add(arr)
        return acc.series()
    rows = pf.metadata.num_rows
    step = 1 if limit is None or rows <= limit else -(-rows // limit)
    parts, seen = [], 0
    for arr in _arrays(Path(path), column, batch_size):
        x = _numbers(arr[(-seen) % step::step])  # rows 0, step, 2 step, ... of the whole file
        if x is None:
            x = pd.to_numeric(_decoded(arr[(-seen) % step::step]).to_pandas(), errors="coerce").to_numpy(
                dtype=np.float64, na_value=np.nan)
        seen += len(arr)
        parts.append(x[np.isfinite(x)])
    return np.concatenate(parts) if parts else np.zeros(0)
