"""Drift on partitioned Parquet data sets, from mergeable summaries built where the data lie.

:func:`detect_drift_partitioned` takes a reference and a current data set -- each a Parquet file or
a directory of them (read with :mod:`pyarrow.dataset`, files in name order) -- and cuts both into
tasks of whole row groups. Each task reads only its row groups, a batch at a time, and returns per
column a :mod:`stalwart.shift.sketch` summary: exact category counts, or a
:class:`~stalwart.shift.sketch.NumericSketch` of the numbers. The driver merges the summaries
(exactly: counts add) and computes every test from the two merged summaries, with
:class:`~stalwart.shift.drift.TabularDrift`'s test choice, thresholds and multiple-testing
correction. No process ever holds a table: a task holds one batch and its summaries, the
driver the summaries.

Results are the in-memory ones for categorical columns and, for numeric columns, within the
interval each statistic reports (``details["approximation"]``): see :mod:`stalwart.shift.sketch`.
``anderson`` is refused (it needs every value). A task's summaries do not depend on which worker
builds it, nor the merged ones on the order of merging, so every executor gives the same result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stalwart._validation import check_param
from stalwart.errors import ConfigError, InputError, require
from stalwart.shift import univariate as uv
from stalwart.shift.base import DriftResult
from stalwart.shift.drift import (
    HISTOGRAM_TESTS,
    MIN_TEST_SAMPLES,
    VALUE_FAMILY,
    ColumnFit,
    TabularDrift,
    TypeChange,
)
from stalwart.shift.sketch import (
    DEFAULT_BITS,
    MAX_BUCKETS,
    CategoryCounts,
    NumericSketch,
    binned_sketch,
    bucket_counts,
    ks_sketch,
    sketchable,
    wasserstein_sketch,
)

__all__ = ["detect_drift_partitioned", "compare_labels_partitioned", "parquet_files", "summarise_partition", "PartitionSummary",
           "ColumnSummary", "peak_rss_mb", "ROWS_PER_TASK", "BATCH_ROWS"]

#: rows of whole row groups per task (a file's row groups are never split)
ROWS_PER_TASK = 4_000_000
#: rows read at a time by a task
BATCH_ROWS = 1 << 18
#: tasks whose summaries the driver holds at once before merging them (a task's summary is up to
#: about 1.5 MB per numeric column)
_ROUND = 8
#: values of the first reference batch whose median centres each numeric column's grid
_CENTER_ROWS = 1 << 16


# -- files --------------------------------------------------------------------------------------------
def parquet_files(path: str | Path, arg: str = "path") -> list[Path]:
    """The Parquet files of ``path``: the file itself, or every Parquet file under a directory
    (pyarrow dataset discovery: hidden and ``_``-prefixed files are skipped), in name order."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{arg} {str(path)!r} does not exist; pass a Parquet file or a directory of Parquet files.")
    if p.is_file():
        try:
            require("pyarrow.parquet", "parquet").read_schema(p)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a file that is not Parquet
            raise InputError(f"{arg} {str(path)!r} could not be read as Parquet ({type(exc).__name__}: {exc}); "
                             "partitioned drift reads Parquet files or directories of them (for CSV, drop "
                             "--sketch: `stalwart drift` loads CSV files in memory).") from None
        return [p]
    ds = require("pyarrow.dataset", "parquet")
    try:
        files = sorted(Path(f) for f in ds.dataset(str(p), format="parquet").files)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for unreadable files
        raise InputError(f"{arg} {str(path)!r} could not be read as a directory of Parquet files "
                         f"({type(exc).__name__}: {exc}).") from None
    if not files:
        raise InputError(f"{arg} {str(path)!r} is a directory without Parquet files; pass a directory that holds "
                         "*.parquet files (one per partition) or a single file.")
    return files


def _kind(t: Any) -> str | None:
    """The schema kind of an Arrow type, None for the null type (a column with no value)."""
    pa = require("pyarrow", "parquet")
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_null(t):
        return None
    return ("numeric" if pa.types.is_floating(t) else "integer" if pa.types.is_integer(t)
            else "boolean" if pa.types.is_boolean(t) else "categorical")


# -- what a task returns ----------------------------------------------------------------------------
@dataclass
class ColumnSummary:
    """One column of one partition (or of several, merged): missing values, and a summary per
    kind of value held (numbers in a :class:`NumericSketch`; booleans and text as counts)."""

    missing: int = 0
    parts: dict[str, Any] = field(default_factory=dict)  # kind -> NumericSketch | CategoryCounts
    types: dict[str, str] = field(default_factory=dict)  # kind -> an Arrow type that held it

    def merge(self, other: ColumnSummary) -> ColumnSummary:
        out = ColumnSummary(self.missing + other.missing, dict(self.parts), {**other.types, **self.types})
        for kind, part in other.parts.items():
            out.parts[kind] = out.parts[kind].merge(part) if kind in out.parts else part
        return out

    def count(self, kind: str) -> int:
        part = self.parts.get(kind)
        return 0 if part is None else (part.n if isinstance(part, NumericSketch) else int(sum(part.values())))


@dataclass
class PartitionSummary:
    """What a task returns: its rows, one :class:`ColumnSummary` per column, the files it read and
    the peak resident memory of the process that built it (MB)."""

    rows: int
    columns: dict[str, ColumnSummary]
    files: tuple[str, ...] = ()
    peak_rss_mb: float = 0.0

    def merge(self, other: PartitionSummary) -> PartitionSummary:
        return PartitionSummary(self.rows + other.rows,
                                {n: self.columns[n].merge(other.columns[n]) for n in self.columns},
                                self.files + other.files, max(self.peak_rss_mb, other.peak_rss_mb))


def peak_rss_mb() -> float:
    """Peak resident memory of this process since it started its program (MB): ``VmHWM`` on
    Linux; ``ru_maxrss`` elsewhere, which in a spawned worker may include its parent's at the fork."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    try:
        import resource
    except ImportError:  # not on Windows
        return 0.0
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def summarise_partition(shared: tuple, item: tuple[str, tuple[int, ...]]) -> PartitionSummary:
    """The summaries of some row groups of one Parquet file (a task of :mod:`stalwart.execute`).

    ``shared`` is ``(names, centers, bits, max_buckets, batch_size)``, optionally followed by the
    names whose integers are counted as categories (labels) instead of sketched; ``item`` is
    ``(path, row_groups)``. The file is read a batch at a time, only the named columns.
    """
    names, centers, bits, max_buckets, batch_size = shared[:5]
    counted = frozenset(shared[5]) if len(shared) > 5 else frozenset()
    path, row_groups = item
    pa = require("pyarrow", "parquet")
    pq = require("pyarrow.parquet", "parquet")
    pc = require("pyarrow.compute", "parquet")
    cols = {n: ColumnSummary() for n in names}
    rows = 0
    with pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20) as pf:
        lacking = [n for n in names if n not in pf.schema_arrow.names]
        if lacking:
            raise InputError(f"partition {path!r} lacks columns {lacking}; every file of a data set needs the "
                             "tested columns (or test fewer with columns=[...]).")
        for batch in pf.iter_batches(batch_size=batch_size, row_groups=list(row_groups), columns=list(names),
                                     use_threads=False):
            rows += batch.num_rows
            for name in names:
                arr = batch.column(name)
                col = cols[name]
                kind = _kind(arr.type)
                if kind is None:
                    col.missing += len(arr)
                    continue
                col.types.setdefault(kind, str(arr.type))
                if kind == "numeric" or (kind == "integer" and name not in counted):
                    x = np.asarray(arr.to_numpy(zero_copy_only=False), dtype=np.float64)
                    x = x[~np.isnan(x)]
                    col.missing += len(arr) - x.size
                    try:
                        part = NumericSketch.of(x, center=centers.get(name, 0.0), bits=bits, max_buckets=max_buckets)
                    except InputError:
                        raise InputError(f"column {name!r} of {path!r} holds infinite values; drop or clip them "
                                         "before testing for drift.") from None
                else:
                    if pa.types.is_dictionary(arr.type):
                        arr = arr.dictionary_decode()
                    col.missing += arr.null_count
                    vc = pc.value_counts(pc.drop_null(arr))
                    part = CategoryCounts(dict(zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist())))
                col.parts[kind] = col.parts[kind].merge(part) if kind in col.parts else part
    return PartitionSummary(rows, cols, (str(path),), peak_rss_mb())


# -- the driver -------------------------------------------------------------------------------------
def _footers(files: list[Path], names: list[str], side: str, rows_per_task: int
             ) -> tuple[list[tuple[str, tuple[int, ...]]], int]:
    """Tasks of whole row groups (about ``rows_per_task`` rows each) and the total row count; InputError
    naming the partition that lacks a tested column."""
    pq = require("pyarrow.parquet", "parquet")
    tasks: list[tuple[str, tuple[int, ...]]] = []
    total = 0
    for f in files:
        try:
            meta = pq.read_metadata(f)
            have = set(pq.read_schema(f).names)
        except Exception as exc:  # noqa: BLE001 - any unreadable footer is the user's file problem
            raise InputError(f"partition {str(f)!r} of the {side} could not be read as Parquet "
                             f"({type(exc).__name__}: {exc}).") from None
        lacking = [n for n in names if n not in have]
        if lacking:
            raise InputError(f"partition {str(f)!r} of the {side} lacks columns {lacking} that the reference has; "
                             "every file of a data set needs the tested columns (or test fewer with columns=[...]).")
        group: list[int] = []
        rows = 0
        for g in range(meta.num_row_groups):
            n = meta.row_group(g).num_rows
            if group and rows + n > rows_per_task:
                tasks.append((str(f), tuple(group)))
                group, rows = [], 0
            group.append(g)
            rows += n
            total += n
        if group:
            tasks.append((str(f), tuple(group)))
    return tasks, total


def _centers(files: list[Path], names: list[str]) -> dict[str, float]:
    """Each numeric column's grid center: the median of its first values in the reference."""
    pq = require("pyarrow.parquet", "parquet")
    centers: dict[str, float] = {}
    for f in files:
        with pq.ParquetFile(f) as pf:
            numeric = [n for n in names if n not in centers and _kind(pf.schema_arrow.field(n).type)
                       in ("numeric", "integer")]
            if not numeric or pf.metadata.num_rows == 0:
                continue
            batch = next(pf.iter_batches(batch_size=_CENTER_ROWS, columns=numeric), None)
            for n in numeric:
                x = np.asarray(batch.column(n).to_numpy(zero_copy_only=False), dtype=np.float64)
                x = x[np.isfinite(x)]
                if x.size:
                    centers[n] = float(np.median(x))
        if all(n in centers for n in names):
            break
    return centers


def _side_kind(name: str, col: ColumnSummary, side: str) -> str:
    """The one kind of value a reference column holds; InputError when its partitions disagree."""
    families = {VALUE_FAMILY[k] for k in col.parts}
    if len(families) > 1:
        held = ", ".join(f"{k} ({col.types[k]})" for k in sorted(col.parts))
        raise InputError(f"column {name!r} holds values of different types in different partitions of the {side}: "
                         f"{held}; write every partition with the same column types.")
    if not col.parts:
        return "numeric"
    kinds = set(col.parts)
    return "numeric" if "numeric" in kinds else kinds.pop()


def _numbers(col: ColumnSummary) -> NumericSketch | None:
    parts = [col.parts[k] for k in ("numeric", "integer") if k in col.parts]
    if not parts:
        return None
    return parts[0].merge(parts[1]) if len(parts) == 2 else parts[0]


def detect_drift_partitioned(reference: str | Path, current: str | Path, *, columns: list[str] | None = None,
                             method: str | dict[str, str] = "auto", alpha: float = 0.05,
                             correction: str | None = "bonferroni", threshold: float | dict[str, float] | None = None,
                             n_bins: int = 10, min_samples: int = MIN_TEST_SAMPLES, bits: int = DEFAULT_BITS,
                             max_buckets: int = MAX_BUCKETS, executor: Any = None,
                             batch_size: int = BATCH_ROWS, rows_per_task: int = ROWS_PER_TASK) -> DriftResult:
    """Per-column drift of two partitioned Parquet data sets, from mergeable summaries (module docs).

    Parameters
    ----------
    reference, current : str or Path
        A Parquet file or a directory of Parquet files each; columns are matched by name, and
        every file must hold every tested column.
    columns, method, alpha, correction, threshold, n_bins, min_samples
        As in :class:`~stalwart.shift.drift.TabularDrift` (``anderson`` is not available).
        Column kinds come from the Arrow types.
    bits, max_buckets
        The numeric sketches' grid (:class:`~stalwart.shift.sketch.NumericSketch`): buckets
        ``2**-bits`` of ``|x - center|`` wide, at most ``max_buckets`` per column.
    executor : optional
        Where the tasks run ("local", "process", "ray" or an :class:`~stalwart.execute.Executor`;
        default: the one :func:`stalwart.execute.use_executor` set, else this process). Workers
        read the files by path: on a cluster they must be on storage every node sees.
    batch_size : int
        Rows a task reads at a time.
    rows_per_task : int
        Rows of whole row groups per task (a file's row groups never mix with another file's).
        Each task returns up to about 1.5 MB per numeric column whatever its size, so on a
        cluster larger tasks send less to the driver; aim at a few tasks per worker core.

    Returns
    -------
    DriftResult
        As :func:`~stalwart.shift.drift.detect_drift`; ``details`` adds ``"path": "sketch"``,
        ``"approximation"`` (per tested column: the interval ``statistic`` that holds the exact
        statistic, ``p_value`` the p-values at its ends, ``exact``, and ``bin_error`` for the
        histogram measures), ``"max_error"`` (largest width of those intervals, and largest
        ``bin_error``) and ``"sketch"`` (grid, partitions, tasks, executor, peak memory of a worker).
    """
    det = TabularDrift(columns=columns, method=method, alpha=alpha, correction=correction, threshold=threshold,
                       n_bins=n_bins, min_samples=min_samples)
    for name, value, lo, hi in (("bits", bits, 0, 20), ("max_buckets", max_buckets, 2, None),
                                ("batch_size", batch_size, 1, None), ("rows_per_task", rows_per_task, 1, None)):
        check_param("detect_drift_partitioned", name, value, isinstance(value, (int, np.integer))
                    and not isinstance(value, bool) and value >= lo and (hi is None or value <= hi),
                    f"an integer >= {lo}" + (f" and <= {hi}" if hi is not None else ""))
    for m in (method.values() if isinstance(method, dict) else [method]):
        if m != "auto" and not sketchable(m):
            raise ConfigError(f"method {m!r} needs every value and is not available on partitioned data; use ks, "
                              "wasserstein or a histogram measure (or load the data and call detect_drift).")
    pq = require("pyarrow.parquet", "parquet")
    ref_files = parquet_files(reference, "reference")
    cur_files = parquet_files(current, "current")
    names = [str(n) for n in det.check_columns(list(pq.read_schema(ref_files[0]).names))]
    ref_tasks, n_ref = _footers(ref_files, names, "reference", int(rows_per_task))
    cur_tasks, n_cur = _footers(cur_files, names, "current", int(rows_per_task))
    if n_ref == 0 or n_cur == 0:
        raise InputError("reference and current must each hold at least one row; "
                         f"{'the reference' if n_ref == 0 else 'the current data'} has none.")
    centers = _centers(ref_files, names)

    from stalwart.execute import resolve_executor

    ex = resolve_executor(executor)
    ref, cur = _merged(ex, (tuple(names), centers, int(bits), int(max_buckets), int(batch_size)), ref_tasks, cur_tasks)
    return _judge(det, names, ref, cur, n_ref_files=len(ref_files), n_cur_files=len(cur_files),
                  n_tasks=len(ref_tasks) + len(cur_tasks), executor=ex.name, bits=bits, max_buckets=max_buckets)


def compare_labels_partitioned(reference: str | Path, current: str | Path, target: str, *,
                               executor: Any = None, bits: int = DEFAULT_BITS, max_buckets: int = MAX_BUCKETS,
                               batch_size: int = BATCH_ROWS, rows_per_task: int = ROWS_PER_TASK) -> dict[str, Any]:
    """Label (or prediction) drift of the ``target`` column of two partitioned Parquet data sets,
    from mergeable summaries: what :func:`~stalwart.shift.drift.compare_labels_parquet` gives for two
    files, and the drift check in memory computes from the labels.

    Labels of a non-float Arrow type (booleans, integers, text, dates) are classes, counted exactly
    per task and added up: ``{"classification": True, "reference_counts": Series,
    "current_counts": Series}``, from which the chi-square p-value and Jensen-Shannon distance are
    the in-memory ones (text, dates and other non-numeric labels compare as text). Float labels
    are values, summarised in a :class:`~stalwart.shift.sketch.NumericSketch`:
    ``{"classification": False, "ks": D, "p_value": p, "wasserstein": W / std_ref, "n_current": n,
    "approximation": {"ks": [lo, hi], "p_value": [lo, hi], "wasserstein": [lo, hi], "exact": bool}}``
    where each interval holds the exact value (see :mod:`stalwart.shift.sketch`). A missing label
    is refused, as in memory.

    >>> import tempfile, pandas as pd
    >>> d = tempfile.mkdtemp()
    >>> pd.DataFrame({"y": [0, 1, 1, 2] * 25}).to_parquet(f"{d}/ref.parquet")
    >>> pd.DataFrame({"y": [1, 1, 1, 2] * 25}).to_parquet(f"{d}/cur.parquet")
    >>> out = compare_labels_partitioned(f"{d}/ref.parquet", f"{d}/cur.parquet", "y")
    >>> out["reference_counts"].to_dict(), out["current_counts"].to_dict()
    ({0: 25, 1: 50, 2: 25}, {1: 75, 2: 25})
    """
    for name, value, lo, hi in (("bits", bits, 0, 20), ("max_buckets", max_buckets, 2, None),
                                ("batch_size", batch_size, 1, None), ("rows_per_task", rows_per_task, 1, None)):
        check_param("compare_labels_partitioned", name, value, isinstance(value, (int, np.integer))
                    and not isinstance(value, bool) and value >= lo and (hi is None or value <= hi),
                    f"an integer >= {lo}" + (f" and <= {hi}" if hi is not None else ""))
    if not isinstance(target, str) or not target:
        raise InputError(f"target must be the name of the label column (a non-empty string); got {target!r}.")
    pq = require("pyarrow.parquet", "parquet")
    pa = require("pyarrow", "parquet")
    ref_files = parquet_files(reference, "reference")
    cur_files = parquet_files(current, "current")
    schema = pq.read_schema(ref_files[0])
    if target not in schema.names:
        raise InputError(f"target column {target!r} is not in the reference {str(reference)!r}; it has columns "
                         f"{schema.names}")
    ref_tasks, n_ref = _footers(ref_files, [target], "reference", int(rows_per_task))
    cur_tasks, n_cur = _footers(cur_files, [target], "current", int(rows_per_task))
    if n_ref == 0 or n_cur == 0:
        raise InputError("reference and current must each hold at least one row; "
                         f"{'the reference' if n_ref == 0 else 'the current data'} has none.")

    from stalwart.execute import resolve_executor

    shared = ((target,), _centers(ref_files, [target]), int(bits), int(max_buckets), int(batch_size), (target,))
    ref, cur = _merged(resolve_executor(executor), shared, ref_tasks, cur_tasks)
    rc, cc = ref.columns[target], cur.columns[target]
    for side, col, path in (("reference", rc, reference), ("current", cc, current)):
        if col.missing:
            raise InputError(f"target column {target!r} in the {side} {str(path)!r} has {col.missing} missing "
                             "label(s); drop or fill those rows.")
    t = schema.field(target).type
    values = pa.types.is_floating(t.value_type if pa.types.is_dictionary(t) else t)
    kinds = {"reference": set(rc.parts), "current": set(cc.parts)}
    odd = {side: sorted(k for k in held if (k == "numeric") != values) for side, held in kinds.items()}
    if any(odd.values()):
        side = "reference" if odd["reference"] else "current"
        col = rc if side == "reference" else cc
        raise InputError(f"target column {target!r} holds {'float' if values else 'class'} labels in the reference "
                         f"file {ref_files[0].name!r} but values of Arrow type {col.types[odd[side][0]]} in "
                         f"partitions of the {side}; write every partition with the same label type.")
    if values:
        r_sk, c_sk = rc.parts["numeric"], cc.parts["numeric"]
        ks = ks_sketch(r_sk, c_sk)
        w = wasserstein_sketch(r_sk, c_sk)
        return {"classification": False, "ks": ks.statistic, "p_value": ks.p_value, "wasserstein": w.statistic,
                "n_current": c_sk.n, "approximation": {"ks": [ks.low, ks.high], "p_value": [ks.p_low, ks.p_high],
                                                       "wasserstein": [w.low, w.high], "exact": ks.exact and w.exact}}
    text = not (pa.types.is_boolean(t) or pa.types.is_integer(t)
                or (pa.types.is_dictionary(t) and pa.types.is_integer(t.value_type)))
    out: dict[str, Any] = {"classification": True}
    for key, col in (("reference_counts", rc), ("current_counts", cc)):
        counts = CategoryCounts()
        for part in col.parts.values():
            counts = counts.merge(part)
        series = pd.Series(dict(counts), dtype=np.int64)
        if text:  # as compare_labels_parquet: labels that are not numbers compare as text
            series.index = pd.Index([str(k) for k in series.index], dtype=object)
            series = series.groupby(level=0, sort=False).sum()
        out[key] = series.sort_index()
    return out


def _merged(ex: Any, shared: tuple, ref_tasks: list, cur_tasks: list) -> tuple[PartitionSummary, PartitionSummary]:
    """The reference's and the current data's tasks summarised on ``ex`` and merged per side."""
    items = [("reference", t) for t in ref_tasks] + [("current", t) for t in cur_tasks]
    merged: dict[str, PartitionSummary | None] = {"reference": None, "current": None}
    with ex.open(shared) as session:
        for start in range(0, len(items), _ROUND):  # the driver holds one round of summaries at a time
            part = items[start:start + _ROUND]
            for (side, _), summary in zip(part, session.map(summarise_partition, [t for _, t in part])):
                merged[side] = summary if merged[side] is None else merged[side].merge(summary)
    ref, cur = merged["reference"], merged["current"]
    assert ref is not None and cur is not None
    return ref, cur


def _judge(det: TabularDrift, names: list[str], ref: PartitionSummary, cur: PartitionSummary, **info: Any
           ) -> DriftResult:
    fits: list[ColumnFit] = []
    stats: dict[str, tuple[float, float | None]] = {}
    approx: dict[str, dict[str, Any]] = {}
    changed: dict[str, TypeChange] = {}
    too_few: dict[str, int] = {}
    missing: dict[str, float] = {}
    grid_bits = []
    for name in names:
        rc, cc = ref.columns[name], cur.columns[name]
        kind = _side_kind(name, rc, "reference")
        family = VALUE_FAMILY[kind]
        cur_n = sum(cc.count(k) for k in cc.parts)
        missing[name] = (cur.rows - cur_n) / cur.rows
        numeric = kind in ("numeric", "integer")
        if numeric:
            r_sk = _numbers(rc)
            n = 0 if r_sk is None else r_sk.n
            col = det.plan_column(name, kind, n, 0 if r_sk is None else r_sk.n_unique(), ref.rows, kind)
        else:
            counts = rc.parts.get(kind, CategoryCounts())
            col = det.fit_counts(name, kind, kind, pd.Series(dict(counts), dtype=float), ref.rows)
        fits.append(col)
        other = [k for k in cc.parts if VALUE_FAMILY[k] != family and cc.count(k)]
        if cur_n == 0:
            raise InputError(f"column {name!r} of current has only missing values; nothing to compare.")
        if other:
            k = max(other, key=cc.count)
            changed[name] = TypeChange(k, sum(cc.count(o) for o in other) / cur_n, f"a value of Arrow type {cc.types[k]}")
            continue
        if min(col.n, cur_n) < det.min_samples:
            too_few[name] = cur_n
            continue
        if not numeric:
            cur_counts = cc.parts.get(kind, CategoryCounts())
            stats[name] = det.counts_statistic(col, pd.Series(dict(cur_counts), dtype=float))
            approx[name] = {"statistic": [stats[name][0]] * 2,
                            "p_value": None if stats[name][1] is None else [stats[name][1]] * 2, "exact": True}
            continue
        c_sk = _numbers(cc)
        grid_bits.append(min(r_sk.bits, c_sk.bits))
        if col.categorical:
            p, q, exact = bucket_counts(r_sk, c_sk)
            if not exact:
                raise InputError(f"numeric column {name!r} is compared as categories ({col.test}), but some of its "
                                 f"values are too close together for the sketch (bits={info['bits']}) to count them "
                                 "apart; use ks, wasserstein or a histogram measure for it (method={...}), or raise bits.")
            if col.test == "chi2":
                r = uv.chi2_from_counts(p, q)
                stats[name] = (r.statistic, r.p_value)
            else:
                stats[name] = (uv.from_counts(col.test, p, q), None)
            approx[name] = {"statistic": [stats[name][0]] * 2,
                            "p_value": None if stats[name][1] is None else [stats[name][1]] * 2, "exact": exact}
        elif col.test == "ks":
            s = ks_sketch(r_sk, c_sk, det.ks_method)
            stats[name] = (s.statistic, s.p_value)
            approx[name] = {"statistic": [s.low, s.high], "p_value": [s.p_low, s.p_high], "exact": s.exact}
        elif col.test == "wasserstein":
            col.std = r_sk.std
            s = wasserstein_sketch(r_sk, c_sk)
            stats[name] = (s.statistic, None)
            approx[name] = {"statistic": [s.low, s.high], "p_value": None, "exact": s.exact}
        elif col.test in HISTOGRAM_TESTS:
            binned = binned_sketch(col.test, r_sk, c_sk, det.n_bins)
            s, col.edges, err = binned.statistic, binned.edges, binned.bin_error
            stats[name] = (s.statistic, None)
            # exact for the bins used; with other bins than in memory, no interval (bin_error says how far off)
            approx[name] = {"statistic": [s.low, s.high] if s.exact or s.high > s.low else None, "p_value": None,
                            "exact": s.exact, "bin_error": err}
        else:  # pragma: no cover - detect_drift_partitioned refuses the other tests up front
            raise ConfigError(f"test {col.test!r} is not available on partitioned data")
    det.check_reference(fits)
    res = det.judge(fits, stats, n_reference=ref.rows, n_current=cur.rows, missing=missing, changed=changed,
                    too_few=too_few)
    widths = [a["statistic"][1] - a["statistic"][0] for a in approx.values() if a["statistic"] is not None]
    res.details.update({
        "path": "sketch", "chunked": True, "exact": all(a["exact"] for a in approx.values()),
        "categorical": [c.name for c in fits if c.categorical], "approximation": approx,
        "max_error": {"statistic": max(widths, default=0.0),
                      "bin_error": max((a.get("bin_error", 0.0) for a in approx.values()), default=0.0)},
        "sketch": {"bits": min(grid_bits, default=info["bits"]), "max_buckets": info["max_buckets"],
                   "partitions": {"reference": info["n_ref_files"], "current": info["n_cur_files"]},
                   "tasks": info["n_tasks"], "executor": info["executor"],
                   "worker_peak_rss_mb": max(ref.peak_rss_mb, cur.peak_rss_mb)},
    })
    return res
