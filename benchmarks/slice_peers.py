"""Adapters for two peer weak-slice finders, for benchmarking stalwart's slice finder against them.

* SliceLine (``sliceline`` on PyPI, BSD-3): lattice search over conjunctions of ``column == value``.
* Deepchecks' ``WeakSegmentsPerformance`` (AGPL-3): shallow error trees on pairs of features.
  Deepchecks is AGPL: it is run here as a peer to time and compare, no code of it is used.

Both run in their own environment, ``.venv-slices`` (``make .venv-slices/.stamp``): deepchecks 0.19
needs numpy < 2 and a scikit-learn that still has the ``max_error`` scorer, which .venv-bench's
numpy 2 / scikit-learn 1.9 do not give it. This module imports neither stalwart nor anything
outside that environment.

    .venv-slices/bin/python benchmarks/slice_peers.py --rows 100000

Each ``run_*`` function returns ``{"masks": [bool ndarray of len(x) per reported slice],
"descriptions": [str per slice], "seconds": wall time of the peer's own call, "notes": str}``.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np
import pandas as pd

# deepchecks phones home at import (a version check to api.deepchecks.com, 3 s timeout) unless this
# variable is non-empty when `import deepchecks` first runs; it also writes a .user_id into its package.
os.environ["DISABLE_DEEPCHECKS_ANONYMOUS_TELEMETRY"] = "1"

N_BINS = 16
# SliceLine's level-2 evaluation materialises a rows x candidates sparse matrix: on the 20-column
# benchmark frame (~30,000 candidate pairs) peak memory is ~85 KB per row (8.5 GB at 100k rows,
# 16.7 GB at 200k, both measured), so 1M rows needs ~85 GB. The project's machines have 24 GB.
SLICELINE_MAX_ROWS = 200_000


def _is_categorical(s: pd.Series) -> bool:
    return not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def _encode_for_sliceline(x: pd.DataFrame, n_bins: int = N_BINS):
    """Integer-code every column of ``x``: numeric columns into ``n_bins`` quantile bins, others by value.

    Returns ``codes`` (n_rows x n_cols int32) and, per column, a dict from each code to
    ``(description, predicate)`` so that a slice can be turned back into a mask on ``x``.
    Missing values get a code of their own.
    """
    codes = np.empty((len(x), x.shape[1]), dtype=np.int32)
    decoders: list[dict[int, tuple[str, object]]] = []
    for j, col in enumerate(x.columns):
        s = x[col]
        dec: dict[int, tuple[str, object]] = {}
        if _is_categorical(s):
            c, uniques = pd.factorize(s, use_na_sentinel=True)
            c = np.where(c < 0, len(uniques), c)
            for k, u in enumerate(uniques):
                dec[k] = (f"{col} == {u!r}", ("eq", u))
            dec[len(uniques)] = (f"{col} is missing", ("na",))
        else:
            v = s.to_numpy(dtype=np.float64)
            finite = v[~np.isnan(v)]
            qs = np.quantile(finite, np.linspace(0, 1, n_bins + 1)[1:-1]) if finite.size else np.array([])
            edges = np.unique(qs)  # interior edges; bin k is [edges[k-1], edges[k])
            c = np.searchsorted(edges, v, side="right")
            c = np.where(np.isnan(v), len(edges) + 1, c)
            lo = np.concatenate([[-np.inf], edges])
            hi = np.concatenate([edges, [np.inf]])
            for k in range(len(edges) + 1):
                if k == 0:
                    text = f"{col} < {_fmt(hi[k])}"
                elif k == len(edges):
                    text = f"{col} >= {_fmt(lo[k])}"
                else:
                    text = f"{_fmt(lo[k])} <= {col} < {_fmt(hi[k])}"
                dec[k] = (text, ("range", lo[k], hi[k]))
            dec[len(edges) + 1] = (f"{col} is missing", ("na",))
        codes[:, j] = c
        decoders.append(dec)
    return codes, decoders


def _predicate_mask(s: pd.Series, pred: tuple) -> np.ndarray:
    if pred[0] == "eq":
        return (s == pred[1]).to_numpy(dtype=bool)
    if pred[0] == "na":
        return s.isna().to_numpy(dtype=bool)
    v = s.to_numpy(dtype=np.float64)
    return (v >= pred[1]) & (v < pred[2])


def _exact_ids_slicefinder():
    """``Slicefinder`` with exact candidate ids for its de-duplication step.

    sliceline 0.3.0 gives each candidate slice the id sum_j code_j * prod(domain sizes after j) in
    float64. With 20 columns of up to 17 codes that product reaches ~2**70, distinct candidates get
    the same id, and a candidate whose id is shared is dropped as if one of its parents had been
    pruned: on the 20-column benchmark frame `x3 in top bin & c1 == 'b'` is never even evaluated.
    Here the id is the rank of the candidate's sorted one-hot column indices, which is exact; the
    search is otherwise sliceline's own.
    """
    from sliceline.slicefinder import Slicefinder

    class ExactIdSlicefinder(Slicefinder):
        @staticmethod
        def _prepare_deduplication_and_pruning(feature_offset_start, feature_offset_end, feature_domains,
                                               pair_candidates):
            pc = pair_candidates.tocsr(copy=True)
            pc.eliminate_zeros()
            pc.sort_indices()
            per_row = np.diff(pc.indptr)
            if per_row.size == 0:
                return np.zeros(0)
            if per_row.min() != per_row.max():
                raise RuntimeError("candidate slices with different predicate counts at one level")
            rows = pc.indices.reshape(-1, int(per_row[0]))
            _, inverse = np.unique(rows, axis=0, return_inverse=True)
            return inverse.reshape(-1).astype(np.float64)

    return ExactIdSlicefinder


def _warm_up_sliceline() -> None:
    """Fit once on a tiny problem so numba's JIT (or its on-disk cache load) is not in the timing."""
    global _SLICELINE_WARM
    if _SLICELINE_WARM:
        return
    from sliceline.slicefinder import Slicefinder

    rng = np.random.default_rng(0)
    codes = rng.integers(0, 3, size=(200, 3))
    Slicefinder(alpha=0.95, k=2, max_l=2, min_sup=5, verbose=False).fit(codes, (rng.random(200) < 0.2) * 1.0)
    _SLICELINE_WARM = True


_SLICELINE_WARM = False


def run_sliceline(x: pd.DataFrame, errors: np.ndarray, *, max_predicates: int = 2, min_support: int,
                  top_k: int = 10, alpha: float = 0.95, exact_ids: bool = True) -> dict:
    """SliceLine (``sliceline.Slicefinder``) on ``x`` with per-row loss ``errors`` (nonnegative).

    Numeric columns are cut into 16 quantile bins first (SliceLine takes categorical inputs only);
    a slice is a conjunction of at most ``max_predicates`` terms ``column == one bin / one value``.
    Masks are rebuilt on the original ``x`` from the bin edges. ``seconds`` covers ``fit`` only.
    ``alpha`` weighs slice error against slice size. A slice holding a fraction f of the rows scores
    above 0 (needed to be reported) only if its mean error exceeds 1 + (1 - alpha) / alpha * (1/f - 1)
    times the overall mean: with sliceline's own default alpha = 0.6 that is 7x at f = 10% and 43x
    at f = 1.5%, so small weak slices are never reported; 0.95 asks 1.5x and 4.3x.
    ``exact_ids`` replaces sliceline's float64 candidate ids, which collide on wide inputs (see
    ``_exact_ids_slicefinder``); ``exact_ids=False`` runs sliceline exactly as shipped.
    """
    from sliceline.slicefinder import NUMBA_AVAILABLE, Slicefinder

    errors = np.asarray(errors, dtype=np.float64)
    if errors.shape != (len(x),):
        raise ValueError(f"errors has shape {errors.shape}, expected ({len(x)},)")
    if np.any(errors < 0) or not np.all(np.isfinite(errors)):
        raise ValueError("errors must be finite and nonnegative")

    t0 = time.perf_counter()
    codes, decoders = _encode_for_sliceline(x)
    t_bin = time.perf_counter() - t0

    _warm_up_sliceline()
    finder = _exact_ids_slicefinder() if exact_ids else Slicefinder
    sf = finder(alpha=alpha, k=top_k, max_l=max_predicates, min_sup=min_support, verbose=False)
    t0 = time.perf_counter()
    sf.fit(codes, errors)
    seconds = time.perf_counter() - t0

    masks, descriptions = [], []
    for row, stats in zip(sf.top_slices_, sf.top_slices_statistics_):
        mask = np.ones(len(x), dtype=bool)
        terms = []
        for j, value in enumerate(row):
            if value is None:
                continue
            text, pred = decoders[j][int(value)]
            terms.append(text)
            mask &= _predicate_mask(x.iloc[:, j], pred)
        if int(mask.sum()) != int(stats["slice_size"]):
            raise AssertionError(f"rebuilt mask has {int(mask.sum())} rows, sliceline says {stats['slice_size']}")
        masks.append(mask)
        descriptions.append(
            " & ".join(terms)
            + f"  (n={int(stats['slice_size'])}, mean error {stats['slice_average_error']:.3f},"
            f" score {stats['slice_score']:.3f})"
        )
    n_num = sum(not _is_categorical(x[c]) for c in x.columns)
    notes = (
        f"sliceline Slicefinder(alpha={alpha} [sliceline default 0.6], k={top_k}, max_l={max_predicates}, min_sup={min_support}); "
        f"{'exact candidate ids (float64-id collision fix)' if exact_ids else 'sliceline as shipped (float64 ids)'}; "
        f"numba {'on, JIT warmed up before timing' if NUMBA_AVAILABLE else 'OFF (slow fallback)'}; "
        f"{n_num} numeric columns cut into {N_BINS} quantile bins each (binning {t_bin:.2f} s, not in seconds), "
        f"{x.shape[1] - n_num} categorical columns coded by value; a predicate is one bin or one value, so a "
        f"threshold region (x >= t) is reported as several adjacent-bin slices; ties at the k-th score can "
        f"return more than k slices; overall mean error {sf.average_error_:.4f}; max_rows: memory grows ~85 KB "
        f"per row on a 20-column frame (~6 min and ~85 GB at 1M rows), max_rows {SLICELINE_MAX_ROWS:,} on a 24 GB "
        f"machine"
    )
    return {"masks": masks, "descriptions": descriptions, "seconds": seconds, "notes": notes}


def run_deepchecks(x: pd.DataFrame, y_true: np.ndarray, y_pred: np.ndarray, *, max_segments: int = 10,
                   **check_kwargs) -> dict:
    """Deepchecks ``WeakSegmentsPerformance`` on a classification Dataset, predictions passed directly.

    ``y_proba`` is the one-hot of ``y_pred`` (the check needs probabilities for its per-sample loss).
    Check defaults apply unless overridden through ``check_kwargs`` (e.g. ``n_samples``,
    ``n_top_features``). Each reported segment (a range / category set on one or two features) is
    turned back into a mask on ``x`` (numeric NaNs, which deepchecks fills before searching, are
    left out of every mask). ``seconds`` covers ``check.run`` only.
    """
    from deepchecks.tabular import Dataset
    from deepchecks.tabular.checks import WeakSegmentsPerformance

    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.shape != (len(x),) or y_pred.shape != (len(x),):
        raise ValueError("y_true and y_pred must be 1-d with len(x) entries")
    classes = sorted(set(np.unique(y_true).tolist()) | set(np.unique(y_pred).tolist()))
    proba = (y_pred[:, None] == np.asarray(classes)[None, :]).astype(np.float64)
    cat_cols = [c for c in x.columns if _is_categorical(x[c])]
    num_cols = [c for c in x.columns if c not in cat_cols]

    t0 = time.perf_counter()
    ds = Dataset(x, label=pd.Series(y_true, index=x.index, name="__label__"), cat_features=cat_cols)
    t_ds = time.perf_counter() - t0

    check = WeakSegmentsPerformance(**check_kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        result = check.run(ds, y_pred=y_pred, y_proba=proba, model_classes=classes, with_display=False)
        seconds = time.perf_counter() - t0

    segments = result.value["weak_segments_list"]
    score_col = segments.columns[0]
    mapping = getattr(check, "encoder_mapping", {})

    def categories(col, listed) -> list:
        listed = list(listed)
        if "Other" in listed and col in mapping:
            # categories rarer than categorical_aggregation_threshold in the subsample were merged into "Other"
            explicit = set(mapping[col]["original_category"]) - {"Other"}
            listed = [c for c in listed if c != "Other"] + [c for c in x[col].unique() if c not in explicit]
        return listed

    masks, descriptions = [], []
    for _, seg in segments.head(max_segments).iterrows():
        mask = np.ones(len(x), dtype=bool)
        terms = []
        for f in ("Feature1", "Feature2"):
            col = seg[f]
            if col == "" or col is None:
                continue
            rng = seg[f"{f} Range"]
            if col in cat_cols:
                cats = categories(col, rng)
                mask &= x[col].isin(cats).to_numpy(dtype=bool)
                terms.append(f"{col} in {sorted(map(str, cats))}")
            else:
                lo, hi = float(rng[0]), float(rng[1])  # deepchecks' tree filter: lo < x <= hi
                v = x[col].to_numpy(dtype=np.float64)
                mask &= (v > lo) & (v <= hi)
                if np.isinf(lo):
                    terms.append(f"{col} <= {_fmt(hi)}")
                elif np.isinf(hi):
                    terms.append(f"{col} > {_fmt(lo)}")
                else:
                    terms.append(f"{_fmt(lo)} < {col} <= {_fmt(hi)}")
        masks.append(mask)
        descriptions.append(" & ".join(terms) + f"  ({score_col} {seg[score_col]:.3f} on the subsample, "
                                                f"{seg['% of Data']}% of it)")

    searched = cat_cols + num_cols
    n_top = check.n_top_features
    if n_top is not None:
        searched = searched[:n_top]
    notes = (
        f"deepchecks WeakSegmentsPerformance defaults unless overridden {check_kwargs or ''}: "
        f"n_samples={check.n_samples} (random subsample of the {len(x)} rows, random_state={check.random_state}; "
        f"segments are found on it, masks applied to all of x); n_top_features={n_top} with no model hence no "
        f"feature importance, so the searched features are the first ones of categorical-then-numeric column "
        f"order: {searched}; one tree-search per feature pair "
        f"(DecisionTreeRegressor max_depth=5, criterion squared/absolute error, 3-fold GridSearchCV), "
        f"its worst leaf kept; segment_minimum_size_ratio={check.segment_minimum_size_ratio}; "
        f"categorical_aggregation_threshold={check.categorical_aggregation_threshold} (rarer categories merged "
        f"into 'Other'); categorical features target-encoded on the label and split as ordinals; loss the trees "
        f"fit: per-sample negative cross-entropy of the one-hot y_proba (0 or log(1e-15), i.e. scaled 0/1 error); "
        f"segments ranked by '{score_col}' (first default scorer) on the subsample; with_display=False; "
        f"{len(segments)} segments reported, first {min(max_segments, len(segments))} kept; "
        f"Dataset construction {t_ds:.2f} s (not in seconds)"
    )
    return {"masks": masks, "descriptions": descriptions, "seconds": seconds, "notes": notes}


def synthetic(n_rows: int, seed: int = 0):
    """15 float columns x0..x14 ~ N(0, 1), 5 string columns c0..c4 with 3..8 values; a planted weak region.

    Error rate 40% where ``x3 >= 1.2 and c1 == 'b'`` (about 2.9% of rows), 5% elsewhere. Returns
    ``x, y_true, y_pred, errors, planted`` (errors as 0/1 floats, planted as a bool mask).
    """
    rng = np.random.default_rng(seed)
    cols: dict[str, np.ndarray] = {f"x{i}": rng.standard_normal(n_rows) for i in range(15)}
    for i, k in enumerate((3, 4, 5, 6, 8)):
        cols[f"c{i}"] = rng.choice(np.array(list("abcdefgh"[:k]), dtype=object), size=n_rows)
    x = pd.DataFrame(cols)
    planted = (x["x3"].to_numpy() >= 1.2) & (x["c1"].to_numpy() == "b")
    wrong = rng.random(n_rows) < np.where(planted, 0.40, 0.05)
    y_true = (rng.random(n_rows) < 0.5).astype(np.int64)
    y_pred = np.where(wrong, 1 - y_true, y_true)
    return x, y_true, y_pred, wrong.astype(np.float64), planted


def overlap(mask: np.ndarray, planted: np.ndarray) -> tuple[float, float, float]:
    """Precision, recall and Jaccard of ``mask`` against the planted region."""
    inter = float(np.sum(mask & planted))
    union = float(np.sum(mask | planted))
    return (inter / max(mask.sum(), 1), inter / max(planted.sum(), 1), inter / max(union, 1.0))


def report(name: str, out: dict, planted: np.ndarray) -> None:
    print(f"== {name}: {out['seconds']:.2f} s, {len(out['masks'])} slices")
    best = 0.0
    covered = np.zeros_like(planted)
    for mask, desc in zip(out["masks"], out["descriptions"]):
        p, r, j = overlap(mask, planted)
        best = max(best, j)
        if p >= 0.5:
            covered |= mask
        print(f"  [P {p:.2f} R {r:.2f} J {j:.2f}] {desc}")
    _, _, j_union = overlap(covered, planted)
    recall_any = max((overlap(m, planted)[1] for m in out["masks"] if overlap(m, planted)[0] >= 0.25), default=0.0)
    if best >= 0.5 or j_union >= 0.5:
        verdict = "FOUND"
    elif recall_any >= 0.8:
        verdict = "covered by a looser slice (recall >= 0.8 at precision >= 0.25)"
    else:
        verdict = "not found"
    print(f"  planted x3 >= 1.2 & c1 == 'b': best single-slice Jaccard {best:.2f}, Jaccard of the union of "
          f"slices with precision >= 0.5: {j_union:.2f} -> {verdict}")
    print(f"  notes: {out['notes']}")


def run_from_files(frame: str, result: str, peer: str, min_support: int, **kwargs) -> None:
    """Run one peer on a frame saved by bench_slices.py (``np.savez``: numeric block ``num`` with
    names ``num_names``, string block ``cat`` with names ``cat_names``, ``errors``, ``y_true``,
    ``y_pred``) and save its masks (``masks``), descriptions, seconds and notes to ``result``."""
    d = np.load(frame, allow_pickle=False)
    x = pd.DataFrame(d["num"], columns=[str(c) for c in d["num_names"]])
    for j, name in enumerate(d["cat_names"]):
        x[str(name)] = d["cat"][:, j].astype(object)
    if peer == "sliceline":
        out = run_sliceline(x, d["errors"], min_support=min_support)
    else:
        out = run_deepchecks(x, d["y_true"], d["y_pred"], **kwargs)
    masks = np.array(out["masks"], dtype=bool).reshape(len(out["masks"]), len(x))
    np.savez(result, masks=masks, descriptions=np.array(out["descriptions"], dtype=str),
             seconds=out["seconds"], notes=str(out["notes"]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frame", help="run one peer (--peers) on this saved frame (bench_slices.py) and exit")
    ap.add_argument("--result", help="with --frame: where to save the peer's slices (.npz)")
    ap.add_argument("--min-support", type=int, default=0, help="with --frame: SliceLine's minimum support (rows)")
    ap.add_argument("--segment-ratio", type=float, default=None,
                    help="with --frame: Deepchecks' segment_minimum_size_ratio (default: its own, 0.05)")
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--peers", nargs="+", default=["sliceline", "deepchecks"], choices=["sliceline", "deepchecks"])
    ap.add_argument("--sliceline-as-shipped", action="store_true",
                    help="sliceline's own float64 candidate ids (they collide on this frame; see run_sliceline)")
    ap.add_argument("--force", action="store_true", help=f"run sliceline above {SLICELINE_MAX_ROWS:,} rows anyway")
    args = ap.parse_args()
    if args.frame:
        extra = {} if args.segment_ratio is None else {"segment_minimum_size_ratio": args.segment_ratio}
        run_from_files(args.frame, args.result, args.peers[0], args.min_support, **extra)
        return 0
    t0 = time.perf_counter()
    x, y_true, y_pred, errors, planted = synthetic(args.rows, args.seed)
    print(f"frame {x.shape} made in {time.perf_counter() - t0:.1f} s; planted region {planted.mean():.2%} of rows, "
          f"error {errors[planted].mean():.3f} inside vs {errors[~planted].mean():.3f} outside")
    if "sliceline" in args.peers and args.rows > SLICELINE_MAX_ROWS and not args.force:
        print(f"== sliceline: skipped, {args.rows:,} rows > max_rows {SLICELINE_MAX_ROWS:,} (memory, ~85 KB/row; "
              f"--force to try)")
    elif "sliceline" in args.peers:
        out = run_sliceline(x, errors, min_support=max(10, args.rows // 200), exact_ids=not args.sliceline_as_shipped)
        report("sliceline", out, planted)
    if "deepchecks" in args.peers:
        report("deepchecks WeakSegmentsPerformance", run_deepchecks(x, y_true, y_pred), planted)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
