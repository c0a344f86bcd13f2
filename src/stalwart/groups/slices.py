"""Weak-slice discovery: the conjunctions of column conditions where a per-row quantity (error,
loss, a flip under a perturbation, an attack's success, an OOD score) is worst, with statistics
that survive the search.

:func:`find_slices` searches a lattice of conjunctions of up to ``max_predicates`` conditions
(SliceFinder, Chung et al. 2019; SliceLine, Sagadeeva & Boehm 2021), seeded by the leaves of a
regression tree fitted to the target:

1. **Conditions.** Numeric columns are cut at ``n_bins`` quantiles; a condition is any run of
   adjacent bins (``age < 30``, ``30 <= age < 45``, ``age >= 62``), so a weak range need not
   fall on one bin. Categorical and boolean columns give one condition per value (the
   ``max_categories - 1`` most frequent; the rest share an "other" bin that is never a
   condition). A missing value is a bin of its own (``age is missing``).
2. **Search.** Every single condition and every pair (all ranges of two columns at once: one
   pass over the rows per column pair builds the table of cells, and a product of that table
   with the condition matrices gives every pair's statistics); deeper conjunctions extend the
   ``beam`` best slices one condition at a time. A regression tree on the target proposes its
   leaves as further slices. A slice is tested only if it and its complement both hold at least
   ``min_support`` rows (support pruning).
3. **Test.** Each slice against its complement, one-sided (the slice is worse): the signed root
   of the binomial likelihood ratio for a 0/1 target, Welch's z for any other. Every slice
   tested counts (the number is reported, ``n_examined``), and Benjamini-Hochberg at ``alpha``
   over all of them gives the p-value cutoff.
4. **Merge.** Overlapping and nested significant slices are merged by explaining away: the
   slice with the strongest evidence is taken, its numeric boundaries refined on 64 quantile
   bins; then each further slice must be significant on the rows *not yet covered* by the
   slices taken (so ``age >= 62`` is not reported beside ``age >= 62 and region = 'north'``
   when the first is weak only because it contains the second).
5. **Stability.** The search is rerun on ``n_boot`` bootstrap resamples (at most
   ``boot_rows`` rows each); a slice's stability is the share of resamples in which a slice
   covering the same rows (Jaccard >= 0.5) is found again.

Refinement and the tree are part of the search: their candidates count in ``n_examined`` too,
as untested hypotheses (p = 1, which can only make Benjamini-Hochberg stricter). The residual
tests of step 4 use the same cutoff. The search picks its hypotheses from the data, so the
p-values are those of the slices as found; the bootstrap stability says how much to trust them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from stalwart._stats import wilson_interval
from stalwart._validation import check_param, param_error
from stalwart.errors import InputError

__all__ = ["Predicate", "Slice", "SliceSearch", "find_slices", "text_features"]

_FINE_BINS = 64  # quantile bins for refining a selected slice's numeric boundaries
_PER_GROUP = 16  # best slices kept per column tuple (and per beam parent and column) for merging
_JACCARD = 0.5  # overlap at which two slices count as the same (stability, benchmarks)
_Z95 = 1.959963984540054


# -- conditions and slices --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Predicate:
    """One condition on one column.

    Numeric: ``low <= value < high`` (either end may be open) over the non-missing values when
    ``finite``, plus the missing values when ``missing``. Categorical: ``value in values`` (or
    ``not in`` when ``negate``); a missing value matches when ``missing`` is set.
    """

    column: str
    numeric: bool
    low: float | None = None
    high: float | None = None
    values: tuple[Any, ...] = ()
    negate: bool = False
    finite: bool = True
    missing: bool = False

    def mask(self, column: Any) -> np.ndarray:
        """Which rows of ``column`` (a Series or 1-D array of this predicate's column) match."""
        s = column if isinstance(column, pd.Series) else pd.Series(np.asarray(column))
        isna = s.isna().to_numpy()
        if self.numeric:
            v = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)
            if self.finite:
                m = ~isna
                if self.low is not None:
                    m &= v >= self.low
                if self.high is not None:
                    m &= v < self.high
            else:
                m = np.zeros(len(v), dtype=bool)
        else:
            m = s.isin(list(self.values)).to_numpy() & ~isna
            if self.negate:
                m = ~m & ~isna
        return m | isna if self.missing else m

    def __str__(self) -> str:
        c = self.column
        if self.numeric:
            if not self.finite:
                return f"{c} is missing"
            if self.low is not None and self.high is not None:
                text = f"{_num(self.low)} <= {c} < {_num(self.high)}"
            elif self.low is not None:
                text = f"{c} >= {_num(self.low)}"
            elif self.high is not None:
                text = f"{c} < {_num(self.high)}"
            else:
                text = f"{c} is not missing"
        elif not self.values:
            return f"{c} is missing" if self.missing else f"{c} is not missing"
        elif len(self.values) == 1 and not self.negate:
            text = f"{c} = {_val(self.values[0])}"
        else:
            text = f"{c} {'not in' if self.negate else 'in'} {{{', '.join(_val(v) for v in self.values)}}}"
        return f"({text} or {c} is missing)" if self.missing else text

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"column": self.column, "text": str(self)}
        if self.numeric:
            out.update(low=self.low, high=self.high)
        else:
            out.update(values=[_plain(v) for v in self.values], negate=self.negate)
        out["missing"] = self.missing
        return out


def _num(v: float) -> str:
    return f"{v:.6g}"


def _val(v: Any) -> str:
    return repr(_plain(v))


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


@dataclass(frozen=True)
class Slice:
    """A conjunction of predicates and what it measured against its complement."""

    predicates: tuple[Predicate, ...]
    n: int
    support: float  # n over all rows
    metric: float  # mean target in the slice
    metric_low: float
    metric_high: float
    complement: float  # mean target outside it
    effect: float  # metric - complement
    effect_low: float
    effect_high: float
    p_value: float  # one-sided, the slice against its complement
    residual_p_value: float  # the same on the rows not covered by slices reported before it
    stability: float | None = None  # share of bootstrap resamples that found it again

    @property
    def description(self) -> str:
        return " and ".join(str(p) for p in self.predicates)

    def mask(self, x: Any) -> np.ndarray:
        """Which rows of ``x`` (a DataFrame with the slice's columns) are in the slice."""
        frame = _frame(x, "x")
        missing = [p.column for p in self.predicates if p.column not in frame.columns]
        if missing:
            raise InputError(f"x has no column(s) {missing}; the slice {self.description!r} needs them.")
        m = np.ones(len(frame), dtype=bool)
        for p in self.predicates:
            m &= p.mask(frame[p.column])
        return m

    def to_dict(self) -> dict[str, Any]:
        return {"slice": self.description, "n": self.n, "support": self.support, "metric": self.metric,
                "metric_low": self.metric_low, "metric_high": self.metric_high, "complement": self.complement,
                "effect": self.effect, "effect_low": self.effect_low, "effect_high": self.effect_high,
                "p_value": self.p_value, "residual_p_value": self.residual_p_value, "stability": self.stability,
                "predicates": [p.to_dict() for p in self.predicates]}


@dataclass(frozen=True)
class SliceSearch:
    """The slices found, worst effect first, and what the search did."""

    slices: tuple[Slice, ...]
    n: int  # rows searched
    overall: float  # mean target over all rows
    binary: bool  # the target is 0/1 (a rate) rather than a quantity
    n_examined: int  # slices tested (the Benjamini-Hochberg count)
    p_cutoff: float  # the Benjamini-Hochberg cutoff at alpha over n_examined
    alpha: float
    min_support: int
    n_boot: int
    columns: tuple[str, ...]
    notes: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    def table(self) -> list[dict[str, Any]]:
        """One row per slice (the report's slice table)."""
        return [{k: v for k, v in s.to_dict().items() if k != "predicates"} for s in self.slices]

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.table())


# -- encoding: every column as small integer codes and its condition matrix ----------------------------------
@dataclass
class _Column:
    name: str
    numeric: bool
    codes: np.ndarray  # int32, 0..k-1
    k: int
    members: np.ndarray  # bool (n_conditions, k): which codes each condition holds
    cuts: np.ndarray | None = None  # numeric: bin b is [cuts[b-1], cuts[b]), open at the ends
    n_bins: int = 0  # numeric: bins before the missing code
    labels: list[Any] = field(default_factory=list)  # categorical: the value of each named code
    other: int | None = None  # categorical: the code shared by the rarer values
    missing: int | None = None  # the code of missing values, if any


def _frame(x: Any, name: str) -> pd.DataFrame:
    if isinstance(x, pd.DataFrame):
        return x
    if isinstance(x, pd.Series):
        return x.to_frame()
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise InputError(f"{name} must be a table (a DataFrame or a 2-D array of rows); got shape {arr.shape}.")
    return pd.DataFrame(arr, columns=[f"x{j}" for j in range(arr.shape[1])])


def _is_numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)


def _encode(name: str, s: pd.Series, n_bins: int, max_categories: int) -> _Column:
    isna = s.isna().to_numpy()
    cuts = None
    if _is_numeric(s):
        v = s.to_numpy(dtype=float)
        finite = v[~isna]
        if np.isinf(finite).any():
            raise InputError(f"column {name!r} has infinite values; replace them (or mark them missing) first.")
        if finite.size:
            cuts = np.unique(np.quantile(finite, np.arange(1, n_bins) / n_bins, method="inverted_cdf"))
            if cuts.size < n_bins - 1:  # few distinct values: cut between each (a bin per value)
                cuts = np.unique(finite)[1:]
            cuts = cuts[cuts > finite.min()]  # a cut at the minimum would make an empty first bin
            if cuts.size < 2:  # two values or fewer: a categorical column
                cuts = None
    if cuts is not None:
        nb = len(cuts) + 1
        codes = np.searchsorted(cuts, np.where(isna, 0.0, v), side="right").astype(np.int32)
        miss = nb if isna.any() else None
        if miss is not None:
            codes[isna] = miss
        k = nb + (miss is not None)
        rows = []
        for i in range(nb):  # every run of adjacent bins but the whole column
            for j in range(i + 1, nb + 1):
                if (i, j) != (0, nb):
                    m = np.zeros(k, dtype=bool)
                    m[i:j] = True
                    rows.append(m)
        if miss is not None:
            m = np.zeros(k, dtype=bool)
            m[miss] = True
            rows.append(m)
        members = np.array(rows, dtype=bool).reshape(-1, k)
        return _Column(name, True, codes, k, members, cuts=cuts, n_bins=nb, missing=miss)
    counts = s.value_counts(dropna=True)
    if len(counts) > max_categories:
        labels, other = list(counts.index[:max_categories - 1]), max_categories - 1
    else:
        labels, other = list(counts.index), None
    codes = pd.Categorical(s, categories=labels).codes.astype(np.int32)  # -1 for the rest and missing
    k = len(labels)
    if other is not None:
        codes[(codes < 0) & ~isna] = other
        k += 1
    miss = k if isna.any() else None
    if miss is not None:
        codes[isna] = miss
        k += 1
    named = len(labels) + (miss is not None)
    members = np.zeros((named, k), dtype=bool)
    for i in range(len(labels)):
        members[i, i] = True
    if miss is not None:
        members[-1, miss] = True
    if len(labels) == 2 and other is None and miss is None:
        members = members[:1]  # a two-valued column has one condition: the other is its complement
    return _Column(name, False, codes, k, members, labels=labels, other=other, missing=miss)


def _predicate(col: _Column, member: np.ndarray) -> Predicate | None:
    """The readable condition for a set of codes of ``col`` (None when it holds every code)."""
    if member.all():
        return None
    miss = col.missing is not None and bool(member[col.missing])
    if col.numeric:
        bins = np.flatnonzero(member[:col.n_bins])
        if bins.size == 0:
            return Predicate(col.name, True, finite=False, missing=True)
        i, j = int(bins[0]), int(bins[-1]) + 1
        if bins.size != j - i:
            raise AssertionError("a numeric condition must be a run of adjacent bins")
        assert col.cuts is not None
        low = float(col.cuts[i - 1]) if i > 0 else None
        high = float(col.cuts[j - 1]) if j < col.n_bins else None
        return Predicate(col.name, True, low=low, high=high, missing=miss)
    named = [col.labels[c] for c in range(len(col.labels)) if member[c]]
    if col.other is not None and member[col.other]:
        out = tuple(col.labels[c] for c in range(len(col.labels)) if not member[c])
        return Predicate(col.name, False, values=out, negate=True, missing=miss)
    return Predicate(col.name, False, values=tuple(named), missing=miss)


# -- statistics of a slice against its complement -----------------------------------------------------------
def _xlogy(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x > 0, x * np.log(np.where(y > 0, y, 1.0)), 0.0)


def _z(n: np.ndarray, s: np.ndarray, q: np.ndarray | None, tot: tuple[float, float, float], binary: bool
       ) -> np.ndarray:
    """Signed evidence that the slice's mean exceeds its complement's: the signed root of the
    binomial likelihood ratio (0/1 target) or Welch's z (otherwise, on the centred target)."""
    big_n, big_s, big_q = tot
    n = np.asarray(n, dtype=float)
    s = np.asarray(s, dtype=float)
    n0, s0 = big_n - n, big_s - s
    with np.errstate(divide="ignore", invalid="ignore"):
        if binary:
            p1, p0, p = s / n, s0 / n0, big_s / big_n
            ll = (_xlogy(s, p1) + _xlogy(n - s, 1 - p1) + _xlogy(s0, p0) + _xlogy(n0 - s0, 1 - p0)
                  - _xlogy(np.asarray(big_s), np.asarray(p)) - _xlogy(np.asarray(big_n - big_s), np.asarray(1 - p)))
            z = np.sign(p1 - p0) * np.sqrt(np.maximum(2 * ll, 0.0))
        else:
            assert q is not None
            q = np.asarray(q, dtype=float)
            m1, m0 = s / n, s0 / n0
            v1 = np.maximum(q - s * m1, 0.0) / np.maximum(n - 1, 1)
            v0 = np.maximum((big_q - q) - s0 * m0, 0.0) / np.maximum(n0 - 1, 1)
            se = np.sqrt(v1 / n + v0 / n0)
            d = m1 - m0
            z = np.where(se > 0, d / np.where(se > 0, se, 1.0), np.sign(d) * np.inf)
    return np.nan_to_num(z, nan=0.0, posinf=1e300, neginf=-1e300)


def _p_from_z(z: np.ndarray) -> np.ndarray:
    from scipy.special import ndtr

    return ndtr(-np.asarray(z, dtype=float))


# -- the search ---------------------------------------------------------------------------------------------
@dataclass
class _Candidate:
    cols: tuple[int, ...]
    members: tuple[np.ndarray, ...]
    n: float
    s: float
    q: float
    z: float


class _Searcher:
    """One search over encoded columns and a target (the whole data, or one bootstrap resample)."""

    def __init__(self, cols: list[_Column], t: np.ndarray, binary: bool, rows: np.ndarray | None,
                 min_support: int, max_predicates: int, beam: int, z_floor: float) -> None:
        self.cols = cols
        self.codes = [c.codes if rows is None else c.codes[rows] for c in cols]
        self.t = t if rows is None else t[rows]
        self.binary = binary
        self.t01 = self.t.astype(np.int64) if binary else None
        self.n = len(self.t)
        self.tot = (float(self.n), float(self.t.sum()), float(np.sum(self.t * self.t)))
        self.min_support = min_support
        self.max_predicates = max_predicates
        self.beam = beam
        self.z_floor = z_floor  # slices below this z (p > alpha) are never kept for merging
        self.zs: list[np.ndarray] = []  # z of every slice tested
        self.extra = 0  # hypotheses counted untested (refinement trials)
        self.pool: list[_Candidate] = []

    # cells: count, sum, sum of squares of the target per combination of codes
    def cells(self, cols: tuple[int, ...], rows: np.ndarray | None = None,
              sub: tuple[list[np.ndarray], np.ndarray] | None = None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Over all rows, the rows ``rows``, or ``sub`` (codes and target already taken at some rows)."""
        if sub is None:
            sub = self.take(rows) if rows is not None else (self.codes, self.t01 if self.binary else self.t)
        codes, t = sub
        shape = tuple(self.cols[c].k for c in cols)
        size = math.prod(shape)
        idx = codes[cols[0]].astype(np.int64)
        for c in cols[1:]:
            idx *= self.cols[c].k
            idx += codes[c]
        if self.binary:
            both = np.bincount(idx + size * t, minlength=2 * size)
            cnt, sm, sq = both[:size] + both[size:], both[size:], None
        else:
            cnt = np.bincount(idx, minlength=size)
            sm = np.bincount(idx, weights=t, minlength=size)
            sq = np.bincount(idx, weights=t * t, minlength=size)
        return (cnt.reshape(shape).astype(float), sm.reshape(shape).astype(float),
                None if sq is None else sq.reshape(shape))

    def take(self, rows: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        t = self.t01 if self.binary else self.t
        assert t is not None
        return [c[rows] for c in self.codes], t[rows]

    def _consider(self, cols: tuple[int, ...], n: np.ndarray, s: np.ndarray, q: np.ndarray | None,
                  member_sets: list[np.ndarray], keep: int = _PER_GROUP,
                  parent: _Candidate | None = None) -> None:
        """Test every slice of one grid (arrays over the conditions of ``cols``, within ``parent``'s
        rows when given) and keep the best."""
        ok = (n >= self.min_support) & (self.tot[0] - n >= self.min_support)
        if not ok.any():
            return
        z = _z(n[ok], s[ok], None if q is None else q[ok], self.tot, self.binary)
        self.zs.append(z.astype(np.float32))
        good = np.flatnonzero(z >= self.z_floor)
        if good.size == 0:
            return
        best = good[np.argsort(-z[good], kind="stable")[:keep]]
        flat = np.flatnonzero(ok.ravel())[best]
        for f, zz in zip(flat, z[best]):
            pos = np.unravel_index(f, n.shape)
            key = cols
            members = tuple(member_sets[a][pos[a]] for a in range(len(cols)))
            if parent is not None:  # the child of a beam parent, keyed by all its columns in order
                key, members = _merge_key(parent.cols + cols, parent.members + members)
            self.pool.append(_Candidate(key, members, float(n.flat[f]), float(s.flat[f]),
                                        float(q.flat[f]) if q is not None else 0.0, float(zz)))

    def propose(self, cols: tuple[int, ...], members: tuple[np.ndarray, ...]) -> None:
        """Test one slice given by the codes each of its columns holds."""
        cnt, sm, sq = self.cells(cols)
        mats = [m[None].astype(float) for m in members]
        stats = [_contract_many(a, mats) if a is not None else None for a in (cnt, sm, sq)]
        self._consider((), stats[0], stats[1], stats[2], [], keep=1,
                       parent=_Candidate(cols, members, 0.0, 0.0, 0.0, 0.0))

    def lattice(self) -> None:
        m = len(self.cols)
        for a in range(m):
            ca = self.cols[a]
            cnt, sm, sq = self.cells((a,))
            member = ca.members.astype(float)
            self._consider((a,), member @ cnt, member @ sm, None if sq is None else member @ sq, [ca.members])
        if self.max_predicates < 2:
            return
        for a in range(m):
            ma = self.cols[a].members.astype(float)
            for b in range(a + 1, m):
                mb = self.cols[b].members.astype(float)
                cnt, sm, sq = self.cells((a, b))
                self._consider((a, b), ma @ cnt @ mb.T, ma @ sm @ mb.T,
                               None if sq is None else ma @ sq @ mb.T,
                               [self.cols[a].members, self.cols[b].members])

    def mask(self, cand: _Candidate, rows: np.ndarray | None = None) -> np.ndarray:
        out = None
        for c, member in zip(cand.cols, cand.members):
            code = self.codes[c] if rows is None else self.codes[c][rows]
            m = member[code]
            out = m if out is None else out & m
        assert out is not None
        return out

    def deepen(self) -> None:
        """Conjunctions of 3..max_predicates conditions: extend the best slices one column at a time."""
        level = 2
        while level < self.max_predicates:
            parents = self._distinct([c for c in self.pool if len(c.cols) == level], self.beam)
            if not parents:
                return
            for parent in parents:
                rows = np.flatnonzero(self.mask(parent))
                for c in range(len(self.cols)):
                    if c in parent.cols:
                        continue
                    cnt, sm, sq = self.cells((c,), rows)
                    member = self.cols[c].members.astype(float)
                    self._consider((c,), member @ cnt, member @ sm, None if sq is None else member @ sq,
                                   [self.cols[c].members], keep=_PER_GROUP // 4, parent=parent)
            level += 1

    def tree(self, seed: int, max_rows: int = 200_000) -> None:
        """Leaves of a regression tree on the target, as proposed slices."""
        from sklearn.tree import DecisionTreeRegressor

        rng = np.random.default_rng(seed)
        rows = rng.choice(self.n, max_rows, replace=False) if self.n > max_rows else np.arange(self.n)
        feats, ranks = [], []
        for j, col in enumerate(self.cols):
            code = self.codes[j][rows]
            if col.numeric and col.missing is None:
                rank = np.arange(col.k)
            else:  # order the codes by mean target: contiguous splits are then the best subsets (Breiman)
                cnt = np.bincount(code, minlength=col.k)
                mean = np.bincount(code, weights=self.t[rows], minlength=col.k) / np.maximum(cnt, 1)
                rank = np.empty(col.k, dtype=np.int64)
                rank[np.argsort(mean, kind="stable")] = np.arange(col.k)
                if col.numeric:  # keep the bins in order; only the missing code moves
                    rank = np.arange(col.k)
            feats.append(rank[code])
            ranks.append(rank)
        scale = len(rows) / self.n
        leaf = max(int(self.min_support * scale), 5)
        model = DecisionTreeRegressor(max_depth=2 * self.max_predicates, min_samples_leaf=leaf,
                                      random_state=seed).fit(np.column_stack(feats), self.t[rows])
        tr = model.tree_
        proposals: list[tuple[tuple[int, ...], tuple[np.ndarray, ...]]] = []

        def walk(node: int, bounds: dict[int, tuple[float, float]]) -> None:
            if tr.children_left[node] < 0:
                if tr.value[node].ravel()[0] <= self.tot[1] / self.tot[0] or not bounds or \
                        len(bounds) > self.max_predicates:
                    return
                cols = tuple(sorted(bounds))
                members = []
                for c in cols:
                    lo, hi = bounds[c]
                    members.append((ranks[c] > lo) & (ranks[c] <= hi))
                proposals.append((cols, tuple(members)))
                return
            f, thr = int(tr.feature[node]), float(tr.threshold[node])
            lo, hi = bounds.get(f, (-np.inf, np.inf))
            walk(int(tr.children_left[node]), {**bounds, f: (lo, min(hi, thr))})
            walk(int(tr.children_right[node]), {**bounds, f: (max(lo, thr), hi)})

        walk(0, {})
        for cols, members in proposals:
            if any(self.cols[c].numeric and not _is_run(self.cols[c], m) for c, m in zip(cols, members)):
                continue
            if any(m.all() or not m.any() for m in members):
                continue
            self.propose(cols, members)

    @staticmethod
    def _distinct(cands: list[_Candidate], k: int) -> list[_Candidate]:
        out, seen = [], set()
        for c in sorted(cands, key=lambda c: -c.z):
            key = (c.cols, tuple(m.tobytes() for m in c.members))
            if key not in seen:
                seen.add(key)
                out.append(c)
            if len(out) >= k:
                break
        return out

    def n_examined(self) -> int:
        return int(sum(len(z) for z in self.zs)) + self.extra

    def cutoff(self, alpha: float) -> float:
        """Benjamini-Hochberg's cutoff at ``alpha`` over every slice tested (untested ones count as p = 1)."""
        m = self.n_examined()
        if m == 0:
            return alpha
        z = np.sort(np.concatenate(self.zs).astype(float))[::-1] if self.zs else np.zeros(0)
        p = _p_from_z(z)
        ok = np.flatnonzero(p <= np.arange(1, len(p) + 1) * alpha / m)
        return float((ok[-1] + 1) * alpha / m) if ok.size else float(alpha / m)


def _merge_key(cols: tuple[int, ...], members: tuple[np.ndarray, ...]
               ) -> tuple[tuple[int, ...], tuple[np.ndarray, ...]]:
    order = np.argsort(cols, kind="stable")
    return tuple(cols[i] for i in order), tuple(members[i] for i in order)


def _is_run(col: _Column, member: np.ndarray) -> bool:
    bins = np.flatnonzero(member[:col.n_bins])
    return bins.size == 0 or bins.size == bins[-1] - bins[0] + 1


def _contract_many(cells: np.ndarray, mats: list[np.ndarray]) -> np.ndarray:
    """The cell total of each of g slices over the same columns (``mats``: per column, g x k)."""
    out = np.tensordot(mats[0], cells, axes=([1], [0]))
    for mat in mats[1:]:
        out = np.einsum("gk...,gk->g...", out, mat)
    return out


# -- merging: explain away, refine, measure --------------------------------------------------------------------
@dataclass
class _Found:
    predicates: tuple[Predicate, ...]
    mask: np.ndarray  # over the searcher's rows
    residual_z: float


def _select(search: _Searcher, alpha: float, max_slices: int, refine: bool, frame: pd.DataFrame | None,
            rows: np.ndarray | None) -> list[_Found]:
    """Greedy explaining away over the kept slices (see the module docstring, step 4), then
    Benjamini-Hochberg's step-up over the findings: the k-th finding's residual p-value must be at
    most k alpha / m, m every slice examined."""
    pool = search._distinct(search.pool, len(search.pool))
    m = search.n_examined()
    z_pool = -_ndtri(search.cutoff(alpha))
    pool = [c for c in pool if c.z >= z_pool]
    z_cut = float(-_ndtri(min(1.0, max_slices * alpha / m)))  # no finding past this can be reported
    if not pool:
        return []
    grouped: dict[tuple[int, ...], list[int]] = {}
    for i, c in enumerate(pool):
        grouped.setdefault(c.cols, []).append(i)
    groups = {cols: np.array(idx) for cols, idx in grouped.items()}
    stacked = {cols: [np.stack([pool[i].members[a] for i in idx]).astype(float) for a in range(len(cols))]
               for cols, idx in groups.items()}
    covered_n = np.zeros(len(pool))
    covered_s = np.zeros(len(pool))
    covered_q = np.zeros(len(pool))
    covered = np.zeros(search.n, dtype=bool)
    rest = np.array(search.tot)
    found: list[_Found] = []
    base_n = np.array([c.n for c in pool])
    base_s = np.array([c.s for c in pool])
    base_q = np.array([c.q for c in pool])
    alive = np.ones(len(pool), dtype=bool)
    refined = 0
    while len(found) < max_slices:
        n_r, s_r, q_r = base_n - covered_n, base_s - covered_s, base_q - covered_q
        tot = (float(rest[0]), float(rest[1]), float(rest[2]))
        ok = alive & (n_r >= search.min_support) & (tot[0] - n_r >= search.min_support)
        if not ok.any():
            break
        z = np.full(len(pool), -np.inf)
        z[ok] = _z(n_r[ok], s_r[ok], q_r[ok] if not search.binary else None, tot, search.binary)
        best = int(np.argmax(z))
        if z[best] < z_cut:
            break
        alive[best] = False
        cand = pool[best]
        mask = search.mask(cand)
        preds = tuple(p for p in (_predicate(search.cols[c], m) for c, m in zip(cand.cols, cand.members))
                      if p is not None)
        if refine and frame is not None and refined < 2 * max_slices:  # the budget reserved in find_slices
            preds, mask = _refine(search, preds, mask, covered, frame, rows)
            refined += 1
        whole = np.flatnonzero(mask)  # worse than all the other rows too, not only than the rows left
        t_in = search.t[whole]
        z_whole = _z(np.array([float(whole.size)]), np.array([float(t_in.sum())]), np.array([float(np.sum(t_in ** 2))]),
                     search.tot, search.binary)[0]
        if z_whole < z_pool:
            continue
        new = mask & ~covered
        idx = np.flatnonzero(new)
        if idx.size < search.min_support or idx.size < (1 - _JACCARD) * mask.sum():
            continue  # mostly inside the slices found already: the same finding, merged into them
        t_new = search.t[idx]
        n_new, s_new, q_new = float(idx.size), float(t_new.sum()), float(np.sum(t_new * t_new))
        z_new = float(_z(np.array([n_new]), np.array([s_new]), np.array([q_new]), tot, search.binary)[0])
        if z_new < z_cut:
            continue
        found.append(_Found(preds, mask, z_new))
        covered |= new
        rest -= (n_new, s_new, q_new)
        sub = search.take(idx)
        for cols, members_idx in groups.items():  # what each kept slice loses to the new rows
            cnt, sm, sq = search.cells(cols, sub=sub)
            mats = stacked[cols]
            covered_n[members_idx] += _contract_many(cnt, mats)
            covered_s[members_idx] += _contract_many(sm, mats)
            if sq is not None:
                covered_q[members_idx] += _contract_many(sq, mats)
    p = _p_from_z(np.array([f.residual_z for f in found]))
    passed = np.flatnonzero(p <= np.arange(1, len(found) + 1) * alpha / m)
    return found[:passed[-1] + 1] if passed.size else []


def _ndtri(p: float) -> float:
    from scipy.special import ndtri

    return float(ndtri(p))


def _refine(search: _Searcher, preds: tuple[Predicate, ...], mask: np.ndarray, covered: np.ndarray,
            frame: pd.DataFrame, rows: np.ndarray | None) -> tuple[tuple[Predicate, ...], np.ndarray]:
    """Move each numeric boundary of a slice, given its other conditions and among the rows not yet
    covered: first to the best pair of 64 quantile cuts, then each finite end to the best of 64
    quantiles of the values between its neighbouring cuts (one pass, in order)."""
    preds = list(preds)
    universe = ~covered
    u = np.flatnonzero(universe)
    tot = (float(u.size), float(search.t[u].sum()), float(np.sum(search.t[u] ** 2)))
    masks = [p.mask(_col(frame, p.column, rows)) for p in preds]
    for i, p in enumerate(preds):
        if not p.numeric or not p.finite or p.missing:
            continue
        others = universe.copy()
        for j, m in enumerate(masks):
            if j != i:
                others &= m
        v = pd.to_numeric(_col(frame, p.column, rows), errors="coerce").to_numpy(dtype=float)
        finite = ~np.isnan(v)
        inside = np.flatnonzero(others & finite)
        order = np.argsort(v[inside], kind="stable")
        vs, ts = v[inside][order], search.t[inside][order]
        c_sm = np.concatenate([[0.0], np.cumsum(ts)])
        c_sq = np.concatenate([[0.0], np.cumsum(ts * ts)])

        ranked = (vs, c_sm, c_sq)
        cuts = np.quantile(v[finite], np.arange(1, _FINE_BINS) / _FINE_BINS, method="inverted_cdf")
        edges = np.unique(np.concatenate([[-np.inf, np.inf], cuts, [c for c in (p.low, p.high) if c is not None]]))
        ii, jj = np.triu_indices(edges.size, k=1)
        keep = ~((ii == 0) & (jj == edges.size - 1))
        ii, jj = ii[keep], jj[keep]
        b = _best_range(search, ranked, tot, edges[ii], edges[jj])
        if b is None:
            continue
        lo_i, hi_i = int(ii[b]), int(jj[b])
        low, high = edges[lo_i], edges[hi_i]
        for end, k in (("low", lo_i), ("high", hi_i)):  # each finite end, between its neighbouring cuts
            if not np.isfinite(edges[k]):
                continue
            near = vs[(vs >= edges[k - 1]) & (vs < edges[k + 1])]
            if near.size < 2:
                continue
            cand = np.unique(np.concatenate([[edges[k]], np.quantile(near, np.arange(1, _FINE_BINS) / _FINE_BINS,
                                                                      method="inverted_cdf")]))
            lo_c = cand if end == "low" else np.full(cand.size, low)
            hi_c = cand if end == "high" else np.full(cand.size, high)
            b = _best_range(search, ranked, tot, lo_c, hi_c)
            if b is not None:
                low, high = lo_c[b], hi_c[b]
        new = Predicate(p.column, True, low=float(low) if np.isfinite(low) else None,
                        high=float(high) if np.isfinite(high) else None)
        preds[i] = new
        masks[i] = new.mask(_col(frame, p.column, rows))
    out = np.ones(search.n, dtype=bool)
    for m in masks:
        out &= m
    return tuple(preds), out


def _best_range(search: _Searcher, ranked: tuple[np.ndarray, np.ndarray, np.ndarray],
                tot: tuple[float, float, float], lo: np.ndarray, hi: np.ndarray) -> int | None:
    """The index of the best range ``[lo[i], hi[i])`` over sorted values with cumulative target sums
    (``ranked``); every range with enough support counts as a hypothesis."""
    vs, c_sm, c_sq = ranked
    a, b = np.searchsorted(vs, lo, side="left"), np.searchsorted(vs, hi, side="left")
    n, sm, sq = (b - a).astype(float), c_sm[b] - c_sm[a], c_sq[b] - c_sq[a]
    ok = (n >= search.min_support) & (tot[0] - n >= search.min_support)
    search.extra += int(ok.sum())
    if not ok.any():
        return None
    z = np.full(n.shape, -np.inf)
    z[ok] = _z(n[ok], sm[ok], sq[ok] if not search.binary else None, tot, search.binary)
    return int(np.argmax(z))


def _col(frame: pd.DataFrame, name: str, rows: np.ndarray | None) -> pd.Series:
    s = frame[name]
    return s if rows is None else s.iloc[rows]


def _measure(found: _Found, t: np.ndarray, binary: bool, n_all: int, p_residual: float) -> Slice:
    m = found.mask
    n = int(m.sum())
    tin, tout = t[m], t[~m]
    mean_in, mean_out = float(tin.mean()), float(tout.mean())
    if binary:
        k_in, k_out = int(tin.sum()), int(tout.sum())
        lo1, hi1 = wilson_interval(k_in, n)
        lo0, hi0 = wilson_interval(k_out, len(tout))
        d = mean_in - mean_out  # Newcombe's hybrid score interval for a difference of two proportions
        e_lo = d - math.sqrt((mean_in - lo1) ** 2 + (hi0 - mean_out) ** 2)
        e_hi = d + math.sqrt((hi1 - mean_in) ** 2 + (mean_out - lo0) ** 2)
        z = float(_z(np.array([n]), np.array([k_in]), None, (float(len(t)), float(t.sum()), 0.0), True)[0])
    else:
        se1 = float(tin.std(ddof=1) / math.sqrt(n))
        se0 = float(tout.std(ddof=1) / math.sqrt(len(tout)))
        lo1, hi1 = mean_in - _Z95 * se1, mean_in + _Z95 * se1
        d = mean_in - mean_out
        se = math.hypot(se1, se0)
        e_lo, e_hi = d - _Z95 * se, d + _Z95 * se
        z = d / se if se > 0 else math.copysign(math.inf, d)
    return Slice(found.predicates, n, n / n_all, mean_in, float(lo1), float(hi1), mean_out, d, e_lo, e_hi,
                 float(_p_from_z(np.array([z]))[0]), p_residual)


# -- the public function ------------------------------------------------------------------------------------
def find_slices(x: Any, target: Any, *, columns: Sequence[str] | None = None, max_predicates: int = 2,
                min_support: float = 0.005, n_bins: int = 16, max_categories: int = 16, alpha: float = 0.05,
                max_slices: int = 10, beam: int = 16, tree: bool = True, n_boot: int = 20,
                boot_rows: int = 200_000, seed: int = 0) -> SliceSearch:
    """Find the slices of ``x`` where ``target`` (larger is worse) is significantly higher than
    elsewhere; see the module docstring for the method.

    Parameters
    ----------
    x : DataFrame (or 2-D array: columns ``x0, x1, ...``) of the columns to slice by
    target : one number per row, larger is worse: 0/1 error, a loss, 0/1 flip under a
        perturbation, 0/1 broken by an attack, an OOD score
    columns : the columns of ``x`` to slice by (default all)
    max_predicates : conditions per slice, 1 to 4 (default 2)
    min_support : the fewest rows in a slice (and outside it): a count >= 1, or a fraction of
        the rows below 1 (default 0.005); never below 30 rows
    n_bins : quantile bins per numeric column (default 16)
    max_categories : values per categorical column with a condition of their own (default 16)
    alpha : the false discovery rate (Benjamini-Hochberg over every slice tested), default 0.05
    max_slices : the most slices reported (default 10)
    beam : slices extended at each level beyond two conditions (default 16)
    tree : seed the search with a regression tree's leaves (default True)
    n_boot : bootstrap resamples for stability (default 20; 0 skips)
    boot_rows : rows per resample at most (default 200,000; larger data are resampled m out of n)
    seed : for the tree's subsample and the resamples

    Returns
    -------
    SliceSearch

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = pd.DataFrame({"age": rng.integers(18, 90, 4000), "region": rng.choice(list("nsew"), 4000)})
    >>> weak = (x.age >= 70) & (x.region == "n")
    >>> err = (rng.random(4000) < np.where(weak, 0.5, 0.05)).astype(int)
    >>> found = find_slices(x, err, n_boot=0)
    >>> found.slices[0].description
    "age >= 70 and region = 'n'"
    """
    owner = "find_slices"
    frame = _frame(x, "x")
    if columns is not None:
        if isinstance(columns, str) or not isinstance(columns, Sequence) or not columns:
            raise param_error(owner, "columns", "a non-empty list of column names", columns)
        unknown = [c for c in columns if c not in frame.columns]
        if unknown:
            raise InputError(f"column(s) {unknown} are not in x; pick from {list(frame.columns)[:20]}.")
        frame = frame[list(columns)]
    if frame.shape[1] == 0:
        raise InputError("x has no columns to slice by.")
    if not frame.columns.is_unique:
        raise InputError(f"x has duplicate column names {sorted(set(frame.columns[frame.columns.duplicated()]))}; "
                         "rename them so each slice condition names one column.")
    frame = frame.rename(columns=str)
    t = np.asarray(target)
    if t.ndim != 1 or len(t) != len(frame):
        raise InputError(f"target must have one value per row of x ({len(frame)}); got shape {t.shape}.")
    try:
        t = t.astype(float)
    except (TypeError, ValueError) as exc:
        raise InputError(f"target must be numeric (larger is worse); {exc}") from None
    if not np.isfinite(t).all():
        raise InputError(f"target has {int((~np.isfinite(t)).sum())} missing or infinite value(s); a slice's "
                         "metric would be undefined. Drop those rows or fill them.")
    check_param(owner, "max_predicates", max_predicates, isinstance(max_predicates, (int, np.integer))
                and not isinstance(max_predicates, bool) and 1 <= max_predicates <= 4, "an integer from 1 to 4")
    for name, value, least in (("n_bins", n_bins, 2), ("max_categories", max_categories, 2),
                               ("max_slices", max_slices, 1), ("beam", beam, 1), ("n_boot", n_boot, 0),
                               ("boot_rows", boot_rows, 100)):
        check_param(owner, name, value, isinstance(value, (int, np.integer)) and not isinstance(value, bool)
                    and value >= least, f"an integer >= {least}")
    check_param(owner, "alpha", alpha, isinstance(alpha, (int, float)) and 0 < alpha < 1, "a number in (0, 1)")
    ok = isinstance(min_support, (int, float, np.integer, np.floating)) and not isinstance(min_support, bool) \
        and min_support > 0 and (min_support < 1 or float(min_support).is_integer())
    check_param(owner, "min_support", min_support, ok, "a row count >= 1 or a fraction of the rows in (0, 1)")
    n = len(frame)
    support = int(math.ceil(min_support * n)) if min_support < 1 else int(min_support)
    notes = []
    if support < 30:
        notes.append(f"min_support raised from {support} to 30 rows: smaller slices' rates are noise")
        support = 30
    if n < 2 * support:
        raise InputError(f"x has {n} rows; slice discovery needs at least {2 * support} (twice min_support={support})"
                         " so that a slice and its complement can both be measured.")
    binary = bool(np.isin(t, (0.0, 1.0)).all())
    cols = [_encode(str(c), frame[c], n_bins, max_categories) for c in frame.columns]
    z_floor = float(-_ndtri(alpha))
    result_kw = dict(n=n, overall=float(t.mean()), binary=binary, alpha=float(alpha), min_support=support,
                     columns=tuple(c.name for c in cols))
    if np.ptp(t) == 0:
        notes.append(f"the target is {t[0]:g} on every row: no slice can differ")
        return SliceSearch((), n_examined=0, p_cutoff=float(alpha), n_boot=0, notes=tuple(notes), **result_kw)
    search = _run_search(cols, t, binary, None, support, max_predicates, beam, z_floor, tree, seed)
    # refinement trials count as hypotheses: reserve them before the cutoff (p = 1 until tested)
    per_slice = min(max_predicates, sum(c.numeric for c in cols)) * (
        (_FINE_BINS + 3) * (_FINE_BINS + 2) // 2 + 2 * (_FINE_BINS + 1))
    search.extra += 2 * max_slices * per_slice
    reserved = search.extra
    cutoff = search.cutoff(alpha)
    found = _select(search, alpha, max_slices, True, frame, None)
    search.extra = reserved  # the reserve covers every trial made
    slices = [_measure(f, t, binary, n, float(_p_from_z(np.array([f.residual_z]))[0])) for f in found]
    stability: list[float | None] = [None] * len(slices)
    if n_boot and slices:
        hits = np.zeros(len(slices))
        rng = np.random.default_rng(seed)
        m = min(n, boot_rows)
        if m < n:
            notes.append(f"stability: each resample draws {m} of the {n} rows (an m-out-of-n bootstrap)")
        full = [f.mask for f in found]
        for b in range(n_boot):
            rows = rng.integers(0, n, m)
            bs = _run_search(cols, t, binary, rows, max(30, int(math.ceil(support * m / n))), max_predicates, beam,
                             z_floor, False, seed + 1 + b)
            again = _select(bs, alpha, max_slices, False, None, rows)
            for i, mask in enumerate(full):
                mine = mask[rows]
                if any(_jaccard(mine, f.mask) >= _JACCARD for f in again):
                    hits[i] += 1
        stability = [float(h / n_boot) for h in hits]
    slices = [Slice(**{**s.__dict__, "stability": st}) for s, st in zip(slices, stability)]
    slices.sort(key=lambda s: (-s.effect, -s.n))
    return SliceSearch(tuple(slices), n_examined=search.n_examined(), p_cutoff=cutoff, n_boot=int(n_boot),
                       notes=tuple(notes), details={"n_candidates": len(search.pool)}, **result_kw)


def _run_search(cols: list[_Column], t: np.ndarray, binary: bool, rows: np.ndarray | None, support: int,
                max_predicates: int, beam: int, z_floor: float, tree: bool, seed: int) -> _Searcher:
    search = _Searcher(cols, t, binary, rows, support, max_predicates, beam, z_floor)
    search.lattice()
    search.deepen()
    if tree:
        search.tree(seed)
    return search


def _jaccard(a: np.ndarray, b: np.ndarray) -> float:
    union = int(np.sum(a | b))
    return int(np.sum(a & b)) / union if union else 0.0


# -- text metadata --------------------------------------------------------------------------------------------
def text_features(texts: Sequence[str], *, keywords: Sequence[str] | None = None, top_k: int = 20) -> pd.DataFrame:
    """Columns to slice texts by: length in characters and words, and whether each keyword
    occurs (``keywords``, or the ``top_k`` words of three letters or more found in the most texts).

    >>> text_features(["a fine day", "a bad bad day"], keywords=["bad"]).to_dict("list")
    {'n_chars': [10, 13], 'n_words': [3, 4], 'has_bad': [False, True]}
    """
    import re

    if isinstance(texts, str) or not isinstance(texts, Sequence | np.ndarray | pd.Series):
        raise param_error("text_features", "texts", "a sequence of strings", type(texts).__name__)
    docs = [t if isinstance(t, str) else "" for t in texts]
    words = [re.findall(r"\w+", d.lower()) for d in docs]
    if keywords is None:
        check_param("text_features", "top_k", top_k, isinstance(top_k, int) and top_k >= 0, "an integer >= 0")
        from collections import Counter

        freq = Counter(w for ws in words for w in set(ws) if len(w) >= 3)  # documents holding each word
        keywords = sorted(freq, key=lambda w: (-freq[w], w))[:top_k]
    out = pd.DataFrame({"n_chars": [len(d) for d in docs], "n_words": [len(ws) for ws in words]})
    for k in keywords:
        key = str(k).lower()
        out[f"has_{key}"] = [key in set(ws) for ws in words]
    return out
