"""Mergeable summaries of a column, and the univariate drift tests computed from two of them.

A summary is built per partition (a file, a group of row groups) on a worker and merged on the
driver. Merging is exact integer arithmetic on counts and exact ``min``/``max`` on values, so it
is associative and commutative, and merging the summaries of the parts gives exactly the summary
of the concatenation (moments, used only for the Wasserstein scale, are equal to rounding).

- :class:`CategoryCounts`: value counts of a categorical (or boolean) column. Exact: ``chi2``,
  ``psi``, ``jensen_shannon`` and ``hellinger`` on it equal the in-memory test.
- :class:`NumericSketch`: a sparse histogram on a fixed grid that does not depend on the data.
  A value ``x`` falls into the bucket given by the top ``12 + bits`` bits of the order-preserving
  integer image of the float ``x - center``: buckets are relatively narrow (``2**-bits`` of
  ``|x - center|``) wherever the data are, each bucket keeps its count and the smallest and
  largest value it saw. Only occupied buckets are stored; past ``max_buckets`` the grid drops one
  bit (pairs of buckets merge), and the final grid is the finest one whose bucket count fits, on
  the whole data as on any split of it. ``center`` (a value near the bulk of the data, e.g. a
  median) keeps buckets narrow where most values lie.

Which tests a numeric sketch gives, and how well (``F`` empirical CDFs, ``p_b``/``q_b`` the
reference/current share of bucket ``b``, ``G = F_ref - F_cur``):

- ``ks``: ``D_low = max |G|`` at the bucket ends, where both CDFs are known exactly, so
  ``D >= D_low``; inside a bucket that holds values of both samples ``G`` stays within
  ``[G_(b-1) - q_b, G_(b-1) + p_b]``, which gives ``D <= D_high``. The statistic reported is
  ``D_low``, with the interval ``[D_low, D_high]`` and the p-values at both ends; its p-value is
  never smaller than the exact one, so the sketch does not flag a column the exact test would
  not. Exact (``D_low == D_high``) when no bucket holds two distinct values of both samples,
  e.g. integer data.
- ``wasserstein``: ``integral |G| dx``, exact between buckets; inside a bucket (over its observed
  ``[min, max]``) ``G`` is taken linear for the estimate, and its range times the bucket width
  gives the bounds. Divided by the reference standard deviation.
- ``psi``, ``jensen_shannon``, ``hellinger``: the reference-quantile bins are cut at bucket
  boundaries. An edge whose order statistics lie in buckets holding one value is the in-memory
  edge (integer data: the in-memory result to the last bit); another one is the bucket
  boundary nearest in reference rank. ``bin_error`` is the largest share of either sample that
  may lie on another side of an edge than in memory; from the bounds on each edge's counts comes
  an interval that holds the in-memory statistic (the measures are convex in the bin shares:
  their largest value is at a corner of the bounds, their smallest above the tangent).
- ``chi2`` (and the histogram measures on numeric columns with few distinct values, compared as
  categories): exact when every bucket holds one value, which is what such columns do.
- ``anderson``: not available; it needs the mid-ranks of every pooled value.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> a, b = rng.normal(size=5000), rng.normal(0.2, size=5000)
>>> whole = NumericSketch.of(a)
>>> parts = NumericSketch.of(a[:2000]).merge(NumericSketch.of(a[2000:]))
>>> parts == whole
True
>>> r = ks_sketch(whole, NumericSketch.of(b))
>>> r.low <= r.statistic <= r.high and r.high - r.low < 0.01
True
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from stalwart._validation import check_param
from stalwart.errors import ConfigError, InputError
from stalwart.shift import univariate as uv

__all__ = ["NumericSketch", "CategoryCounts", "SketchStatistic", "ks_sketch", "wasserstein_sketch",
           "binned_sketch", "Binned", "bucket_counts", "sketchable", "DEFAULT_BITS", "MAX_BUCKETS", "SKETCH_TESTS"]

#: mantissa bits of the grid: buckets ``2**-10`` (0.1%) of ``|x - center|`` wide
DEFAULT_BITS = 10
#: occupied buckets kept per column before the grid drops a bit (32 bytes each)
MAX_BUCKETS = 1 << 15
#: what each test becomes on a summary: "exact", "bounded" (with a reported interval) or "no"
SKETCH_TESTS = {"chi2": "exact", "psi": "bounded", "jensen_shannon": "bounded", "hellinger": "bounded",
                "ks": "bounded", "wasserstein": "bounded", "anderson": "no"}

_SIGN = np.uint64(1 << 63)


def sketchable(test: str) -> bool:
    """Whether ``test`` can be computed from mergeable summaries (every test but ``anderson``)."""
    try:
        return SKETCH_TESTS[test] != "no"
    except KeyError:
        raise ConfigError(f"test must be one of {sorted(SKETCH_TESTS)}; got {test!r}") from None


def _keys(x: np.ndarray, center: float, bits: int) -> np.ndarray:
    """Bucket of each value: the top ``12 + bits`` bits of the order-preserving image of ``x - center``."""
    d = np.subtract(x, center)
    d += 0.0  # -0.0 becomes 0.0; the subtraction is monotone in x
    # negative floats: flip every bit; others: set the sign bit (the arithmetic shift spreads the sign)
    flip = (d.view(np.int64) >> 63).view(np.uint64)
    flip |= _SIGN
    flip ^= d.view(np.uint64)
    flip >>= np.uint64(52 - bits)
    return flip


def _reduce(keys: np.ndarray, counts: np.ndarray, mins: np.ndarray, maxs: np.ndarray, at_min: np.ndarray,
            at_max: np.ndarray) -> tuple[np.ndarray, ...]:
    """Merge the buckets of equal keys (key-sorted arrays): counts add, the smallest min and the
    largest max win, and so do the counts of values equal to them."""
    if keys.size == 0:
        return keys, counts, mins, maxs, at_min, at_max
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    sizes = np.diff(np.r_[starts, keys.size])
    lo, hi = np.minimum.reduceat(mins, starts), np.maximum.reduceat(maxs, starts)
    n_lo = np.add.reduceat(np.where(mins == np.repeat(lo, sizes), at_min, 0), starts)
    n_hi = np.add.reduceat(np.where(maxs == np.repeat(hi, sizes), at_max, 0), starts)
    return keys[starts], np.add.reduceat(counts, starts), lo, hi, n_lo, n_hi


_ARRAYS = ("keys", "counts", "mins", "maxs", "at_min", "at_max")


def _empty(dtype: Any) -> Any:
    return field(default_factory=lambda: np.zeros(0, dtype))


@dataclass(eq=False)
class NumericSketch:
    """Mergeable summary of a numeric column (module docs): the occupied buckets of a fixed grid,
    each with its count, its smallest and largest value and how many values equal them, plus the
    count, mean and squared deviations of the values.

    Build with :meth:`of` (finite values; drop NaN first) and combine with :meth:`merge`. Two
    sketches merge when they share ``center`` and ``max_buckets``; the result has the coarser
    of their grids.
    """

    center: float = 0.0
    bits: int = DEFAULT_BITS
    max_buckets: int = MAX_BUCKETS
    keys: np.ndarray = _empty(np.uint64)
    counts: np.ndarray = _empty(np.int64)
    mins: np.ndarray = _empty(np.float64)
    maxs: np.ndarray = _empty(np.float64)
    at_min: np.ndarray = _empty(np.int64)  # values equal to the bucket's min
    at_max: np.ndarray = _empty(np.int64)  # values equal to the bucket's max
    n: int = 0
    mean: float = 0.0
    m2: float = 0.0

    @classmethod
    def of(cls, values: Any, *, center: float = 0.0, bits: int = DEFAULT_BITS,
           max_buckets: int = MAX_BUCKETS) -> NumericSketch:
        """The sketch of finite ``values`` (1-D)."""
        check_param("NumericSketch", "bits", bits, isinstance(bits, (int, np.integer)) and not isinstance(bits, bool)
                    and 0 <= bits <= 20, "an integer in [0, 20]")
        check_param("NumericSketch", "max_buckets", max_buckets, isinstance(max_buckets, (int, np.integer))
                    and not isinstance(max_buckets, bool) and max_buckets >= 2, "an integer >= 2")
        check_param("NumericSketch", "center", center, isinstance(center, (int, float, np.number))
                    and not isinstance(center, bool) and math.isfinite(center), "a finite number")
        x = np.sort(np.asarray(values, dtype=np.float64).ravel())
        if x.size and not (np.isfinite(x[0]) and np.isfinite(x[-1])):
            raise InputError("NumericSketch values must be finite; drop NaN and infinite values first "
                             f"(got {x[0] if not np.isfinite(x[0]) else x[-1]}).")
        out = cls(float(center), int(bits), int(max_buckets))
        if x.size == 0:
            return out
        k = _keys(x, out.center, out.bits)
        starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
        ends = np.r_[starts[1:], x.size]
        out.keys, out.counts = k[starts], (ends - starts).astype(np.int64)
        out.mins, out.maxs = x[starts], x[ends - 1]
        # values equal to the bucket's min / max: where the sorted run of that value ends / starts
        out.at_min = (np.searchsorted(x, out.mins, side="right") - starts).astype(np.int64)
        out.at_max = (ends - np.searchsorted(x, out.maxs, side="left")).astype(np.int64)
        out.n, out.mean = int(x.size), float(x.mean())
        out.m2 = float(np.sum((x - out.mean) ** 2))
        out._fit()
        return out

    def _set(self, arrays: tuple[np.ndarray, ...]) -> None:
        for name, arr in zip(_ARRAYS, arrays):
            setattr(self, name, arr)

    def _coarsen(self, bits: int) -> None:
        if bits < self.bits:
            keys = self.keys >> np.uint64(self.bits - bits)
            self.bits = bits
            self._set(_reduce(keys, *(getattr(self, a) for a in _ARRAYS[1:])))

    def _fit(self) -> None:
        while self.keys.size > self.max_buckets and self.bits > 0:
            self._coarsen(self.bits - 1)

    def merge(self, other: NumericSketch) -> NumericSketch:
        """A new sketch of both samples: exact on the buckets, associative and commutative."""
        if not isinstance(other, NumericSketch):
            raise ConfigError(f"NumericSketch.merge needs a NumericSketch; got {type(other).__name__}")
        if other.center != self.center or other.max_buckets != self.max_buckets:
            raise ConfigError("these sketches are on different grids (center "
                              f"{self.center} vs {other.center}, max_buckets {self.max_buckets} vs "
                              f"{other.max_buckets}); build every part with the same center and max_buckets.")
        a, b = self.copy(), other.copy()
        bits = min(a.bits, b.bits)
        a._coarsen(bits)
        b._coarsen(bits)
        order = np.argsort(np.concatenate([a.keys, b.keys]), kind="stable")
        a._set(_reduce(*(np.concatenate([getattr(a, k), getattr(b, k)])[order] for k in _ARRAYS)))
        n = a.n + b.n
        if n:
            delta = b.mean - a.mean
            a.mean, a.m2 = (a.mean + delta * b.n / n, a.m2 + b.m2 + delta * delta * a.n * b.n / n)
        a.n = n
        a._fit()
        return a

    def copy(self) -> NumericSketch:
        return NumericSketch(self.center, self.bits, self.max_buckets, *(getattr(self, k) for k in _ARRAYS),
                             self.n, self.mean, self.m2)

    def __eq__(self, other: object) -> bool:
        """Equal grids and buckets (moments, sums of floats, are not compared)."""
        return (isinstance(other, NumericSketch) and (self.center, self.bits, self.max_buckets, self.n)
                == (other.center, other.bits, other.max_buckets, other.n)
                and all(np.array_equal(getattr(self, k), getattr(other, k)) for k in _ARRAYS))

    __hash__ = None  # type: ignore[assignment]

    @property
    def std(self) -> float:
        """Standard deviation of the values (``ddof=0``)."""
        return math.sqrt(self.m2 / self.n) if self.n else 0.0

    @property
    def exact_values(self) -> bool:
        """Whether every bucket holds a single value (the sketch is then the sample's value counts)."""
        return bool(np.array_equal(self.mins, self.maxs))

    def n_unique(self) -> int:
        """Distinct values: exact when :attr:`exact_values`, otherwise a lower bound."""
        several = self.mins != self.maxs
        inner = several & (self.counts > self.at_min + self.at_max)
        return int(self.keys.size + np.count_nonzero(several) + np.count_nonzero(inner))

    def __repr__(self) -> str:
        return (f"NumericSketch(n={self.n}, buckets={self.keys.size}, bits={self.bits}, center={self.center}, "
                f"exact_values={self.exact_values})")


class CategoryCounts(Counter):
    """Exact, mergeable value counts of a categorical column (a :class:`collections.Counter`).

    >>> (CategoryCounts("aab") + CategoryCounts("bc")) == CategoryCounts("aabbc")
    True
    """

    def merge(self, other: Iterable[Any]) -> CategoryCounts:
        out = CategoryCounts(self)
        out.update(other)
        return out


class SketchStatistic(NamedTuple):
    """A statistic from two summaries: the estimate, an interval that holds the exact value, the
    p-values at its ends (None for distances), and whether the estimate is exact."""

    statistic: float
    low: float
    high: float
    p_value: float | None = None
    p_low: float | None = None
    p_high: float | None = None
    exact: bool = False


@dataclass
class _Side:
    """One sketch on the union of both sketches' buckets (shares of its sample)."""

    lo: np.ndarray  # smallest value in the bucket (+inf where the sample has none)
    hi: np.ndarray
    share: np.ndarray
    at_lo: np.ndarray
    at_hi: np.ndarray
    before: np.ndarray  # CDF just below the bucket
    counts: np.ndarray  # integer counts
    n: int

    def cdf_range(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bounds on this sample's CDF at ``x`` (one point per bucket, inside that bucket)."""
        after = self.before + self.share
        inside = (x >= self.lo) & (x < self.hi)
        low = np.where(x < self.lo, self.before, np.where(inside, self.before + self.at_lo, after))
        high = np.where(x < self.lo, self.before, np.where(inside, after - self.at_hi, after))
        return low, high


def _aligned(ref: NumericSketch, cur: NumericSketch) -> tuple[np.ndarray, _Side, _Side]:
    """Both sketches on the union of their buckets (same grid), and the pooled bucket ranges."""
    if not ref.n or not cur.n:
        raise InputError("both sketches must hold at least one value")
    if ref.center != cur.center:
        raise ConfigError(f"the reference and current sketches have different centers ({ref.center} vs "
                          f"{cur.center}); build both with the same center.")
    bits = min(ref.bits, cur.bits)
    sides = []
    keys = None
    r, c = ref.copy(), cur.copy()
    r._coarsen(bits)
    c._coarsen(bits)
    keys = np.union1d(r.keys, c.keys)
    for s in (r, c):
        i = np.searchsorted(keys, s.keys)
        counts = np.zeros(keys.size, np.int64)
        counts[i] = s.counts
        lo, hi = np.full(keys.size, np.inf), np.full(keys.size, np.inf)
        lo[i], hi[i] = s.mins, s.maxs
        at_lo, at_hi = np.zeros(keys.size), np.zeros(keys.size)
        at_lo[i], at_hi[i] = s.at_min / s.n, s.at_max / s.n
        cum = np.cumsum(counts)
        sides.append(_Side(lo, hi, counts / s.n, at_lo, at_hi, (cum - counts) / s.n, counts, s.n))
    return keys, sides[0], sides[1]


def _segments(r: _Side, c: _Side) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each bucket cut at the samples' min and max into (up to) 3 segments on which both CDFs
    lie in fixed ranges: segment starts, widths and the range of G on each, shape (buckets, 3)."""
    pooled_hi = np.maximum(np.where(np.isfinite(r.hi), r.hi, -np.inf), np.where(np.isfinite(c.hi), c.hi, -np.inf))
    bp = np.stack([r.lo, r.hi, c.lo, c.hi], axis=1)
    bp = np.sort(np.where(np.isfinite(bp), bp, pooled_hi[:, None]), axis=1)
    starts, widths = bp[:, :3], np.diff(bp, axis=1)
    g_lo, g_hi = np.empty_like(starts), np.empty_like(starts)
    for j in range(3):
        rl, rh = r.cdf_range(starts[:, j])
        cl, ch = c.cdf_range(starts[:, j])
        g_lo[:, j], g_hi[:, j] = rl - ch, rh - cl
    return starts, widths, g_lo, g_hi


def _g_ends(r: _Side, c: _Side) -> np.ndarray:
    """``G = F_ref - F_cur`` at each bucket's end, from integer cumulative counts."""
    return np.cumsum(r.counts) / r.n - np.cumsum(c.counts) / c.n


def ks_sketch(ref: NumericSketch, cur: NumericSketch, method: str = "auto") -> SketchStatistic:
    """Two-sample KS statistic from two sketches with its exact-value interval and p-values
    (module docs); ``method`` as :func:`~stalwart.shift.univariate.ks_pvalue`."""
    _, r, c = _aligned(ref, cur)
    d_low = float(np.max(np.abs(_g_ends(r, c))))
    _, _, g_lo, g_hi = _segments(r, c)
    d_high = min(1.0, max(d_low, float(np.max(np.maximum(np.abs(g_lo), np.abs(g_hi))))))
    # the bucket ends are where the CDFs are known to rounding; inside, the bounds above
    exact = d_high <= d_low + 1e-15
    d_high = d_low if exact else d_high
    pv = uv.ks_pvalue(d_low, ref.n, cur.n, method)
    p_at_high = pv if exact else uv.ks_pvalue(d_high, ref.n, cur.n, method)
    return SketchStatistic(d_low, d_low, d_high, pv, p_at_high, pv, exact)


def wasserstein_sketch(ref: NumericSketch, cur: NumericSketch, *, normalize: bool = True) -> SketchStatistic:
    """Wasserstein-1 distance from two sketches, divided by the reference std unless
    ``normalize=False``, with an interval that holds the exact value (module docs)."""
    _, r, c = _aligned(ref, cur)
    g = _g_ends(r, c)
    starts, widths, g_lo, g_hi = _segments(r, c)
    # between buckets G is constant: from the pooled max of one bucket to the pooled min of the next
    between = float(np.sum(np.abs(g[:-1]) * (starts[1:, 0] - (starts[:-1, 2] + widths[:-1, 2]))))
    far = np.maximum(np.abs(g_lo), np.abs(g_hi))
    near = np.where((g_lo <= 0) & (g_hi >= 0), 0.0, np.minimum(np.abs(g_lo), np.abs(g_hi)))
    mid = np.abs(g_lo + g_hi) / 2
    w, w_lo, w_hi = (between + float(np.sum(widths * v)) for v in (mid, near, far))
    exact = bool(np.all(widths * (far - near) == 0))
    if normalize and ref.std > 0:
        w, w_lo, w_hi = w / ref.std, w_lo / ref.std, w_hi / ref.std
    return SketchStatistic(w, min(w_lo, w), max(w_hi, w), exact=exact)


def _order_stat(r: _Side, cum: np.ndarray, i: int) -> tuple[float | None, int]:
    """The ``i``-th smallest reference value (0-based) if the sketch pins it (its bucket holds one
    value, or ``i`` falls on the bucket's min or max), and its bucket."""
    k = int(np.searchsorted(cum, i, side="right"))
    first = cum[k] - r.counts[k]  # rank of the bucket's first value
    if r.lo[k] == r.hi[k] or i < first + round(r.at_lo[k] * r.n):
        return float(r.lo[k]), k
    if i >= cum[k] - round(r.at_hi[k] * r.n):
        return float(r.hi[k]), k
    return None, k


def _below(s: _Side, e: float) -> tuple[int, int]:
    """Values of one sample below ``e``: a count and how many more may be (a bucket straddling ``e``)."""
    whole = (s.hi < e) & np.isfinite(s.lo)
    count = int(s.counts[whole].sum())
    k = np.flatnonzero((s.lo < e) & (s.hi >= e))
    if k.size == 0:
        return count, 0
    k = int(k[0])
    n_lo, n_hi = round(s.at_lo[k] * s.n), round(s.at_hi[k] * s.n)
    if s.hi[k] == e:  # all but the values equal to the max lie below
        return count + int(s.counts[k]) - n_hi, 0
    # lo < e < hi: the min's values lie below, those equal to the max above, the rest is unknown
    return count + n_lo, int(s.counts[k]) - n_lo - n_hi


class Binned(NamedTuple):
    """A histogram measure from two sketches: the statistic, the inner edges, the counts of each
    sample per bin, and ``bin_error``, the largest share of either sample that may lie on the
    other side of an edge than with the in-memory test (0: these are the in-memory counts)."""

    statistic: SketchStatistic
    edges: np.ndarray
    ref_counts: np.ndarray
    cur_counts: np.ndarray
    bin_error: float


def _lerp(a: float, b: float, t: float) -> float:
    """``numpy.quantile``'s linear interpolation between two order statistics."""
    return a + (b - a) * t if t < 0.5 else b - (b - a) * (1 - t)


def _bin_terms(test: str, p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Each bin's term of the convex part of a measure (its sum is PSI, the JS divergence, or the
    squared Hellinger distance minus 1)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if test == "psi":
            return (q - p) * np.log(q / p)
        if test == "jensen_shannon":
            from scipy import special

            m = (p + q) / 2
            return (special.rel_entr(p, m) + special.rel_entr(q, m)) / 2
        return -np.sqrt(p * q)


def _histogram_bounds(test: str, est: list[np.ndarray], low: list[np.ndarray], high: list[np.ndarray],
                      n: list[int]) -> tuple[float, float] | None:
    """An interval that holds the histogram measure whatever the true number of values below each
    edge within its bounds. The measures are convex in the bin shares: the maximum is at a corner
    of the box of bounds (found by dynamic programming along the edges: a bin depends on the two
    edges around it) and the tangent at the estimate bounds the minimum. None when the bounds of
    two edges overlap or PSI's floor for empty bins may apply."""
    m = len(est[0])
    for lo_s, hi_s, n_s in zip(low, high, n):
        if np.any(hi_s[:-1] > lo_s[1:]) or (m and (lo_s[0] < 0 or hi_s[-1] > n_s)):
            return None
    # the 4 corners of each edge (reference low/high x current low/high); fixed ends before and after
    corner_r = [np.zeros(1)] + [np.array([low[0][i]] * 2 + [high[0][i]] * 2) for i in range(m)] + [np.full(1, n[0])]
    corner_c = [np.zeros(1)] + [np.array([low[1][i], high[1][i]] * 2) for i in range(m)] + [np.full(1, n[1])]
    if test == "psi":
        smallest = min(float(np.min(corner_r[j + 1][:, None] - corner_r[j][None, :])) / n[0] for j in range(m + 1))
        smallest = min(smallest, min(float(np.min(corner_c[j + 1][:, None] - corner_c[j][None, :])) / n[1]
                                     for j in range(m + 1)))
        if smallest < uv.PSI_EPS:
            return None
    best = np.zeros(1)
    for j in range(m + 1):  # bin j lies between edge j (corners of the previous step) and edge j + 1
        p = (corner_r[j + 1][:, None] - corner_r[j][None, :]) / n[0]
        q = (corner_c[j + 1][:, None] - corner_c[j][None, :]) / n[1]
        best = np.max(best[None, :] + _bin_terms(test, p, q), axis=1)
    top = float(best.max()) + (1.0 if test == "hellinger" else 0.0)
    p0, q0 = (np.diff(np.r_[0.0, np.asarray(est[s], float), n[s]]) / n[s] for s in (0, 1))
    value = float(np.sum(_bin_terms(test, p0, q0))) + (1.0 if test == "hellinger" else 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        if test == "psi":
            lr = np.log(q0 / p0)
            gp, gq = -lr - q0 / p0 + 1, lr + 1 - p0 / q0
        elif test == "jensen_shannon":
            gp, gq = np.log(2 * p0 / (p0 + q0)) / 2, np.log(2 * q0 / (p0 + q0)) / 2
        else:
            gp, gq = -np.sqrt(q0 / p0) / 2, -np.sqrt(p0 / q0) / 2
    bottom = 0.0
    if np.all(np.isfinite(gp)) and np.all(np.isfinite(gq)):
        bottom = value
        for s, g in ((0, gp), (1, gq)):
            dg = (g[:-1] - g[1:]) / n[s]  # d measure / d(count below edge i)
            bottom += float(np.sum(np.minimum(dg * (low[s] - est[s]), dg * (high[s] - est[s]))))
        bottom = max(bottom, 0.0)
    if test == "psi":
        return bottom, top
    return math.sqrt(bottom), math.sqrt(max(top, 0.0))


def binned_sketch(test: str, ref: NumericSketch, cur: NumericSketch, n_bins: int = 10) -> Binned:
    """``psi``, ``jensen_shannon`` or ``hellinger`` on ``n_bins`` reference-quantile bins (:class:`Binned`).

    An edge whose order statistics the sketch pins is the in-memory edge (values >= it go above;
    only a bucket of the other sample with values on both sides of it is uncertain). Otherwise the
    edge is the grid boundary before or after the reference bucket that holds the quantile,
    whichever is nearer in rank (reported as that bucket's smallest value). Either way each
    sample's count below the in-memory edge has bounds, and the statistic's interval is the range
    of the measure over those bounds (``low``/``high`` of the statistic; both equal to it when
    the bounds are too loose to say more than ``bin_error``)."""
    if test not in uv.COUNT_MEASURES:
        raise ConfigError(f"binned_sketch(test=...) must be one of {sorted(uv.COUNT_MEASURES)}; got {test!r}")
    _, r, c = _aligned(ref, cur)
    n1 = r.n
    cum = np.cumsum(r.counts)
    values: set[float] = set()
    cuts: list[tuple[int, float, float]] = []
    err = 0.0
    for level in np.arange(1, n_bins) / n_bins:
        h = level * (n1 - 1)  # the position np.quantile(method="linear") interpolates at
        i = math.floor(h)
        t = h - i
        a, ka = _order_stat(r, cum, i)
        b, kb = _order_stat(r, cum, min(i + 1, n1 - 1))
        if a is not None and b is not None:  # the in-memory edge
            values.add(_lerp(a, b, t))
            continue
        # the in-memory edge lies between these values
        lo_e = _lerp(r.lo[ka] if a is None else a, r.lo[kb] if b is None else b, t)
        hi_e = _lerp(r.hi[ka] if a is None else a, r.hi[kb] if b is None else b, t)
        first = (cum[ka] - r.counts[ka]) / n1
        cuts.append((ka if abs(first - level) <= abs(cum[ka] / n1 - level) else ka + 1, lo_e, hi_e))
        err = max(err, float(r.share[ka]), float(c.share[ka]))
    rows = []  # per edge: shown value, then (estimate, low, high) of the count below it, per sample
    for e in sorted(values):
        (kr, ur), (kc, uc) = _below(r, e), _below(c, e)
        err = max(err, ur / r.n, uc / c.n)
        rows.append((e, kr, kr, kr + ur, kc, kc, kc + uc))
    pooled_lo = np.minimum(r.lo, c.lo)
    for k, lo_e, hi_e in cuts:  # the whole bucket k and those after it lie above
        bounds = []
        for s, est in ((r, int(cum[k - 1]) if k else 0), (c, int(np.sum(c.counts[:k])))):
            sure, _ = _below(s, lo_e)
            more, unknown = _below(s, hi_e)
            bounds += [est, sure, more + unknown]
        rows.append((float(pooled_lo[k]) if k < pooled_lo.size else math.inf, *bounds))
    table = np.array(sorted(rows, key=lambda row: (row[1], row[4])), dtype=float).reshape(-1, 7)
    br = np.r_[0, table[:, 1].astype(np.int64), r.n]
    bc = np.r_[0, table[:, 4].astype(np.int64), c.n]
    pr, pc = np.diff(br), np.diff(bc)
    value = uv.from_counts(test, pr.astype(float), pc.astype(float))
    stat = SketchStatistic(value, value, value, exact=err == 0.0)
    if err:
        bounds = _histogram_bounds(test, [table[:, 1], table[:, 4]], [table[:, 2], table[:, 5]],
                                   [table[:, 3], table[:, 6]], [r.n, c.n])
        if bounds is not None:
            stat = SketchStatistic(value, min(bounds[0], value), max(bounds[1], value))
    return Binned(stat, table[:, 0], pr, pc, float(err))


def bucket_counts(ref: NumericSketch, cur: NumericSketch) -> tuple[np.ndarray, np.ndarray, bool]:
    """Aligned counts of two numeric sketches read as categories, one per bucket, ordered as
    :meth:`~stalwart.shift.drift.TabularDrift.counts_statistic` orders categories (the reference's
    values, then those only the current sample has), and whether that is exact: every bucket
    holds a single value (a numeric column with few distinct values)."""
    _, r, c = _aligned(ref, cur)
    one = ((r.lo == r.hi) | ~np.isfinite(r.lo)) & ((c.lo == c.hi) | ~np.isfinite(c.lo))
    same = ~np.isfinite(r.lo) | ~np.isfinite(c.lo) | (r.lo == c.lo)
    order = np.r_[np.flatnonzero(r.counts > 0), np.flatnonzero(r.counts == 0)]
    return r.counts[order].astype(float), c.counts[order].astype(float), bool(np.all(one & same))
