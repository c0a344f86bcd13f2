"""Two-sample tests and distances for one column at a time (or many columns at once).

Every function compares a *reference* sample with a *current* one and returns a
:class:`UnivariateResult` (statistic, p-value or None for distances). Numeric functions accept
1-D arrays, or 2-D arrays whose columns are compared pairwise (then the fields are arrays); the
2-D form does the work for all columns in one vectorised pass.

========================  ============  ========================================================
name                      judged by     what it matches
========================  ============  ========================================================
``ks``                    p-value       :func:`scipy.stats.ks_2samp` (``method="auto"``: exact
                                        when both samples have at most 10,000 values)
``anderson``              p-value       :func:`scipy.stats.anderson_ksamp` (midrank variant);
                                        the p-value is interpolated from Scholz & Stephens'
                                        table and therefore **capped to [0.001, 0.25]**
``chi2``                  p-value       :func:`scipy.stats.chi2_contingency` on the 2 x K table
                                        of counts, *without* Yates' correction (also at 1 dof,
                                        where it equals Evidently's two-proportion z-test)
``psi``                   distance      population stability index on reference-quantile bins
``wasserstein``           distance      :func:`scipy.stats.wasserstein_distance` divided by the
                                        reference standard deviation (``ddof=0``)
``jensen_shannon``        distance      :func:`scipy.spatial.distance.jensenshannon` (natural
                                        log, as SciPy's default and Evidently) on binned counts
``hellinger``             distance      ``sqrt(1 - sum(sqrt(p * q)))`` on binned counts, in [0, 1]
========================  ============  ========================================================

Pieces shared by the in-memory and the streamed tests: :func:`ks_and_wasserstein` (both
statistics from one merge of sorted samples), :func:`sorted_counts` (bin counts of a sorted
sample) and :func:`from_counts` (the histogram measure named by a test, from aligned counts).
``scipy.stats`` is imported only by the tests that need it (KS p-values), so the distance tests
load quickly.

Binning for the histogram measures (``psi``, ``jensen_shannon``, ``hellinger``) on numeric data:
``n_bins`` bins (default 10) whose inner edges are the reference's quantiles at ``k / n_bins``
(duplicates merged), a value ``x`` falls into bin ``#{edges <= x}``. Categorical data use one bin
per category seen in either sample. Empty bins get probability ``eps = 1e-4`` in PSI (otherwise
it is infinite), then the distribution is renormalised.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from scipy import special

from stalwart.errors import ConfigError, InputError

__all__ = [
    "UnivariateResult", "MethodSpec", "TESTS",
    "ks_test", "anderson_test", "chi2_test", "psi", "wasserstein", "jensen_shannon", "hellinger",
    "chi2_from_counts", "psi_from_counts", "js_from_counts", "hellinger_from_counts",
    "ks_pvalue", "quantile_edges", "sorted_counts", "ks_and_wasserstein", "from_counts", "COUNT_MEASURES",
]

PSI_EPS = 1e-4
KS_EXACT_MAX_N = 10_000  # as scipy's ks_2samp(method="auto")


class UnivariateResult(NamedTuple):
    """Statistic and p-value (None for distances); arrays when several columns were compared."""

    statistic: Any
    p_value: Any


@dataclass(frozen=True)
class MethodSpec:
    """How a named test is judged and which column kinds it applies to."""

    name: str
    uses_p_value: bool
    numeric: bool
    categorical: bool
    threshold: float  # default distance threshold (p-value tests use alpha instead)


TESTS: dict[str, MethodSpec] = {
    "ks": MethodSpec("ks", True, True, False, 0.05),
    "anderson": MethodSpec("anderson", True, True, False, 0.05),
    "chi2": MethodSpec("chi2", True, True, True, 0.05),
    "psi": MethodSpec("psi", False, True, True, 0.2),
    "wasserstein": MethodSpec("wasserstein", False, True, False, 0.1),
    "jensen_shannon": MethodSpec("jensen_shannon", False, True, True, 0.1),
    "hellinger": MethodSpec("hellinger", False, True, True, 0.1),
}


# -- input handling ------------------------------------------------------------------------------
def _numeric(x: Any, name: str) -> np.ndarray:
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be numeric for this test; got values of dtype "
                         f"{np.asarray(x).dtype}. Use chi2, psi, jensen_shannon or hellinger for "
                         "categorical data.") from None
    if arr.ndim not in (1, 2):
        raise InputError(f"{name} must be 1-D (one column) or 2-D (n_samples x n_columns); got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise InputError(f"{name} is empty; pass at least one value.")
    if not np.isfinite(arr).all():
        raise InputError(f"{name} contains NaN or infinite values; drop them first "
                         "(detect_drift drops NaN per column and reports their share).")
    return arr


def _pair(reference: Any, current: Any) -> tuple[np.ndarray, np.ndarray, bool]:
    """Both samples as (n_columns, n) float arrays; flag whether the input was 1-D."""
    ref, cur = _numeric(reference, "reference"), _numeric(current, "current")
    if ref.ndim != cur.ndim or (ref.ndim == 2 and ref.shape[1] != cur.shape[1]):
        raise InputError(f"reference and current must have the same number of columns; got shapes "
                         f"{ref.shape} and {cur.shape}")
    if ref.ndim == 1:
        return ref[None, :], cur[None, :], True
    return np.ascontiguousarray(ref.T), np.ascontiguousarray(cur.T), False


def _out(stat: np.ndarray, p: np.ndarray | None, one: bool) -> UnivariateResult:
    if one:
        return UnivariateResult(float(stat[0]), None if p is None else float(p[0]))
    return UnivariateResult(stat, p)


# -- the empirical CDFs of two sorted samples, merged in one pass --------------------------------
def _merged(ref_sorted: np.ndarray, cur_sorted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pooled sorted values and ``F_ref - F_cur`` just right of each, for (C, n) sorted rows.

    A stable argsort of two concatenated sorted runs is a linear-time merge (timsort), so this
    costs O(n) after the per-sample sorts, which :class:`TabularDrift` does once for the reference.
    """
    n1, n2 = ref_sorted.shape[1], cur_sorted.shape[1]
    pooled = np.concatenate([ref_sorted, cur_sorted], axis=1)
    order = np.argsort(pooled, axis=1, kind="stable")
    values = np.take_along_axis(pooled, order, axis=1)
    del pooled
    # c1 / n1 - c2 / n2 with c2 = k - c1, computed in place: at a million rows each temporary
    # array is 16 MB per column, and peak memory is what limits the batch size
    c = np.cumsum(order < n1, axis=1, dtype=np.int64)
    del order
    diff = c / n1
    np.subtract(np.arange(1, n1 + n2 + 1, dtype=np.int64), c, out=c)
    diff -= c / n2
    return values, diff


def ks_and_wasserstein(ref_sorted: np.ndarray, cur_sorted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """KS statistic and (unnormalised) Wasserstein-1 distance per row of two (C, n) sorted arrays,
    from one merge."""
    values, diff = _merged(ref_sorted, cur_sorted)
    np.abs(diff, out=diff)
    # the CDFs are only compared after the last of a run of tied values
    last = np.ones_like(values, dtype=bool)
    last[:, :-1] = values[:, 1:] != values[:, :-1]
    d = np.max(diff, axis=1, where=last, initial=0.0)
    w = np.sum(diff[:, :-1] * np.diff(values, axis=1), axis=1)
    return d, w


# -- Kolmogorov-Smirnov --------------------------------------------------------------------------
def _log_binom(n: Any, k: Any) -> Any:
    return special.gammaln(np.asarray(n) + 1.0) - special.gammaln(np.asarray(k) + 1.0) - special.gammaln(
        np.asarray(n) - np.asarray(k) + 1.0)


def _ks_exact_equal(n: int, h: int) -> float:
    """P(D >= h/n) for two samples of size n: 2 sum_k (-1)^(k+1) C(2n, n-kh) / C(2n, n)."""
    k = np.arange(1, n // h + 1)
    logs = 2 * special.gammaln(n + 1.0) - special.gammaln(n - k * h + 1.0) - special.gammaln(n + k * h + 1.0)
    signs = np.where(k % 2 == 1, 1.0, -1.0)
    return float(2.0 * np.sum(signs * np.exp(logs)))


def _ks_exact_unequal(m: int, n: int, hg: int) -> float:
    """P(D >= d) by counting lattice paths that leave the band ``|i n - j m| < hg`` (Hodges 1958).

    Rows are the ``m`` steps of the smaller sample; each row's inside cells form one interval, so
    the count of inside paths is a cumulative sum over the previous row. The p-value is the sum of
    first-exit counts times their completions, a sum of positive terms (no ``1 - x`` cancellation),
    kept in log scale against overflow.
    """
    j_all = np.arange(n + 1)
    log_total = float(_log_binom(m + n, m))

    def band(i: int) -> tuple[int, int]:
        lo = max(0, (i * n - hg) // m + 1)
        hi = min(n, -((-(i * n + hg)) // m) - 1)
        return lo, hi

    def completions(i: int, j: np.ndarray) -> np.ndarray:
        return _log_binom((m - i) + (n - j), m - i)

    exits: list[np.ndarray] = []
    lo, hi = band(0)
    if hi < lo:
        return 1.0
    row = np.ones(hi - lo + 1)
    scale = 0.0
    if hi + 1 <= n:
        exits.append(np.log(row[-1:]) + scale + completions(0, j_all[hi + 1:hi + 2]))
    for i in range(1, m + 1):
        plo, phi = lo, hi
        lo, hi = band(i)
        if hi < lo:  # every path has left the band
            exits.append(np.log(row) + scale + completions(i, j_all[plo:phi + 1]))
            row = np.zeros(0)
            break
        # paths in the previous row below the new band step up and leave it
        if lo > plo:
            k = min(lo, phi + 1)
            vals = row[: k - plo]
            pos = vals > 0
            exits.append(np.log(vals[pos]) + scale + completions(i, j_all[plo:k][pos]))
        prev = np.zeros(hi - lo + 1)
        a, b = max(lo, plo), min(hi, phi)
        if b >= a:
            prev[a - lo:b - lo + 1] = row[a - plo:b - plo + 1]
        row = np.cumsum(prev)
        top = row.max() if row.size else 0.0
        if top <= 0:
            break
        row /= top
        scale += math.log(top)
        if hi + 1 <= n and row[-1] > 0:
            exits.append(np.log(row[-1:]) + scale + completions(i, j_all[hi + 1:hi + 2]))
    if not exits:
        return 0.0
    logs = np.concatenate(exits) - log_total
    return float(min(1.0, np.exp(special.logsumexp(logs))))


def ks_pvalue(d: float, n1: int, n2: int, method: str = "auto") -> float:
    """Two-sided p-value of a two-sample KS statistic ``d``, as :func:`scipy.stats.ks_2samp`.

    ``method="auto"`` is exact when ``max(n1, n2) <= 10000`` and otherwise uses the asymptotic
    Kolmogorov distribution ``kstwo(round(n1 n2 / (n1 + n2)))``.
    """
    if method not in ("auto", "exact", "asymp"):
        raise ConfigError(f"ks_test(method=...) must be one of ['auto', 'exact', 'asymp']; got {method!r}")
    if method == "auto":
        method = "exact" if max(n1, n2) <= KS_EXACT_MAX_N else "asymp"
    if method == "exact":
        g = math.gcd(n1, n2)
        lcm = (n1 // g) * n2
        h = int(round(d * lcm))
        if h == 0:
            return 1.0
        if n1 == n2:
            p = _ks_exact_equal(n1, h)
        else:
            m, n = sorted((n1, n2))
            p = _ks_exact_unequal(m, n, h * g)
        return float(np.clip(p, 0.0, 1.0))
    from scipy import stats  # slow to import; only KS p-values need it

    m, n = float(max(n1, n2)), float(min(n1, n2))
    en = m * n / (m + n)
    return float(np.clip(stats.kstwo.sf(d, np.round(en)), 0.0, 1.0))


def ks_test(reference: Any, current: Any, *, method: str = "auto") -> UnivariateResult:
    """Two-sample Kolmogorov-Smirnov test, two-sided.

    Parameters
    ----------
    reference, current : array-like, shape (n,) or (n, n_columns)
        Finite numeric samples; with 2-D input each column is tested against its counterpart.
    method : {"auto", "exact", "asymp"}
        p-value computation, as in :func:`scipy.stats.ks_2samp`.

    Returns
    -------
    UnivariateResult
        ``statistic`` = sup |F_ref - F_cur|, ``p_value``.

    Examples
    --------
    >>> r = ks_test([0.1, 0.4, 0.7], [0.2, 0.5, 0.9, 1.2])
    >>> round(r.statistic, 4), round(r.p_value, 4)
    (0.5, 0.6571)
    """
    ref, cur, one = _pair(reference, current)
    d, _ = ks_and_wasserstein(np.sort(ref, axis=1), np.sort(cur, axis=1))
    p = np.array([ks_pvalue(float(v), ref.shape[1], cur.shape[1], method) for v in d])
    return _out(d, p, one)


# -- Anderson-Darling ----------------------------------------------------------------------------
_AD_SIG = np.array([0.25, 0.1, 0.05, 0.025, 0.01, 0.005, 0.001])
_AD_B = np.array([[0.675, 1.281, 1.645, 1.96, 2.326, 2.573, 3.085],
                  [-0.245, 0.25, 0.678, 1.149, 1.822, 2.364, 3.615],
                  [-0.105, -0.305, -0.362, -0.391, -0.396, -0.345, -0.154]])


def _ad_sigma(n1: int, n2: int) -> float:
    """Standard deviation of A2akN under the null, k = 2 (Scholz & Stephens 1987, eq. 4)."""
    k, N = 2, n1 + n2
    H = 1.0 / n1 + 1.0 / n2
    inv = 1.0 / np.arange(N - 1, 1, -1)
    hs = np.cumsum(inv)
    h = hs[-1] + 1.0
    g = float(np.sum(hs / np.arange(2, N)))
    a = (4 * g - 6) * (k - 1) + (10 - 6 * g) * H
    b = (2 * g - 4) * k ** 2 + 8 * h * k + (2 * g - 14 * h - 4) * H - 8 * h + 4 * g - 6
    c = (6 * h + 2 * g - 2) * k ** 2 + (4 * h - 4 * g + 6) * k + (2 * h - 6) * H + 4 * h
    d = (2 * h + 6) * k ** 2 - 4 * h * k
    return math.sqrt((a * N ** 3 + b * N ** 2 + c * N + d) / ((N - 1.0) * (N - 2.0) * (N - 3.0)))


def _ad_one(ref_sorted: np.ndarray, cur_sorted: np.ndarray) -> tuple[float, float]:
    n1, n2 = ref_sorted.size, cur_sorted.size
    N = n1 + n2
    z = np.sort(np.concatenate([ref_sorted, cur_sorted]), kind="stable")
    zstar = z[np.r_[z[1:] != z[:-1], True]]
    if zstar.size < 2:
        raise InputError("the Anderson-Darling test needs more than one distinct value in the pooled "
                         "sample; this column is constant.")
    left = np.searchsorted(z, zstar, "left")
    lj = np.searchsorted(z, zstar, "right") - left
    bj = left + lj / 2.0
    a2 = 0.0
    for s, ni in ((ref_sorted, n1), (cur_sorted, n2)):
        right = np.searchsorted(s, zstar, "right")
        mij = right - (right - np.searchsorted(s, zstar, "left")) / 2.0
        a2 += np.sum(lj / N * (N * mij - bj * ni) ** 2 / (bj * (N - bj) - N * lj / 4.0)) / ni
    a2 *= (N - 1.0) / N
    stat = (a2 - 1.0) / _ad_sigma(n1, n2)
    crit = _AD_B[0] + _AD_B[1] + _AD_B[2]  # m = k - 1 = 1
    if stat < crit.min():
        p = float(_AD_SIG.max())
    elif stat > crit.max():
        p = float(_AD_SIG.min())
    else:
        p = float(math.exp(np.polyval(np.polyfit(crit, np.log(_AD_SIG), 2), stat)))
    return float(stat), p


def anderson_test(reference: Any, current: Any) -> UnivariateResult:
    """Two-sample Anderson-Darling test (Scholz & Stephens 1987, midrank version for ties).

    The statistic is the standardised ``(A2akN - 1) / sigma`` that :func:`scipy.stats.anderson_ksamp`
    reports. Its p-value comes from the published critical-value table (log-quadratic fit), so it
    is only available inside **[0.001, 0.25]**: values at the ends are bounds (SciPy warns there;
    this function does not). More sensitive to tail differences than KS.
    """
    ref, cur, one = _pair(reference, current)
    if ref.shape[1] + cur.shape[1] < 4:
        raise InputError("the Anderson-Darling test needs at least 4 values in total")
    ref, cur = np.sort(ref, axis=1), np.sort(cur, axis=1)
    res = np.array([_ad_one(r, c) for r, c in zip(ref, cur)])
    return _out(res[:, 0], res[:, 1], one)


# -- counts-based measures -----------------------------------------------------------------------
def _counts_pair(ref_counts: Any, cur_counts: Any) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(ref_counts, dtype=np.float64)
    q = np.asarray(cur_counts, dtype=np.float64)
    if p.shape != q.shape or p.ndim != 1:
        raise InputError(f"reference and current counts must be 1-D and aligned; got shapes {p.shape} and {q.shape}")
    if (p < 0).any() or (q < 0).any() or p.sum() <= 0 or q.sum() <= 0:
        raise InputError("counts must be non-negative with a positive total in each sample")
    return p, q


def chi2_from_counts(ref_counts: Any, cur_counts: Any) -> UnivariateResult:
    """Pearson chi-square test of homogeneity on the 2 x K table of aligned counts (no Yates).

    Categories with no observation in either sample are dropped; with a single category left the
    samples cannot differ and the p-value is 1.
    """
    p, q = _counts_pair(ref_counts, cur_counts)
    keep = (p + q) > 0
    p, q = p[keep], q[keep]
    if p.size < 2:
        return UnivariateResult(0.0, 1.0)
    table = np.stack([p, q])
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / table.sum()
    stat = float(np.sum((table - expected) ** 2 / expected))
    return UnivariateResult(stat, float(special.chdtrc(p.size - 1, stat)))  # = scipy.stats.chi2.sf


def _probs(counts: np.ndarray) -> np.ndarray:
    return counts / counts.sum()


def psi_from_counts(ref_counts: Any, cur_counts: Any, *, eps: float = PSI_EPS) -> float:
    """Population stability index ``sum((q - p) ln(q / p))`` with empty bins set to ``eps``."""
    p, q = _counts_pair(ref_counts, cur_counts)
    p = np.maximum(_probs(p), eps)
    q = np.maximum(_probs(q), eps)
    p, q = p / p.sum(), q / q.sum()
    return float(np.sum((q - p) * np.log(q / p)))


def js_from_counts(ref_counts: Any, cur_counts: Any, *, base: float | None = None) -> float:
    """Jensen-Shannon distance (square root of the divergence), natural log unless ``base``."""
    p, q = _counts_pair(ref_counts, cur_counts)
    p, q = _probs(p), _probs(q)
    m = (p + q) / 2
    div = (np.sum(special.rel_entr(p, m)) + np.sum(special.rel_entr(q, m))) / 2
    if base is not None:
        div /= math.log(base)
    return float(math.sqrt(max(div, 0.0)))


def hellinger_from_counts(ref_counts: Any, cur_counts: Any) -> float:
    """Hellinger distance ``sqrt(1 - sum(sqrt(p q)))`` in [0, 1]."""
    p, q = _counts_pair(ref_counts, cur_counts)
    bc = float(np.sum(np.sqrt(_probs(p) * _probs(q))))
    return math.sqrt(max(1.0 - bc, 0.0))


#: the histogram measures by test name, each from aligned (reference, current) counts
COUNT_MEASURES = {"psi": psi_from_counts, "jensen_shannon": js_from_counts, "hellinger": hellinger_from_counts}


def from_counts(test: str, ref_counts: Any, cur_counts: Any) -> float:
    """The histogram measure ``test`` (``psi``, ``jensen_shannon`` or ``hellinger``) of aligned counts.

    Examples
    --------
    >>> round(from_counts("hellinger", [1, 1], [1, 3]), 4)
    0.1846
    """
    try:
        fn = COUNT_MEASURES[test]
    except KeyError:
        raise ConfigError(f"from_counts(test=...) must be one of {sorted(COUNT_MEASURES)}; got {test!r}") from None
    return fn(ref_counts, cur_counts)


# -- binning ------------------------------------------------------------------------------------
def quantile_edges(ref_sorted: np.ndarray, n_bins: int) -> np.ndarray:
    """Inner bin edges: the sorted reference's quantiles at ``k / n_bins``, duplicates merged."""
    if not isinstance(n_bins, (int, np.integer)) or isinstance(n_bins, bool) or n_bins < 2:
        raise ConfigError(f"n_bins must be an integer >= 2; got {n_bins!r}")
    levels = np.arange(1, n_bins) / n_bins
    return np.unique(np.quantile(ref_sorted, levels, method="linear"))


def sorted_counts(x_sorted: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts per bin (bin = #{edges <= x}: a value equal to an edge goes to the bin above it,
    as ``np.searchsorted(edges, x, side="right")`` bins a current sample) of a sorted sample."""
    cuts = np.searchsorted(x_sorted, edges, side="left")
    return np.diff(np.concatenate([[0], cuts, [x_sorted.size]]))


def _is_numeric_like(x: Any) -> bool:
    arr = np.asarray(x)
    return arr.dtype.kind in "fiub" and arr.dtype.kind != "b"


def _category_counts(reference: Any, current: Any) -> tuple[np.ndarray, np.ndarray]:
    """Aligned counts over the union of categories (NaN dropped)."""
    r = pd.Series(np.asarray(reference, dtype=object) if np.ndim(reference) else [reference])
    c = pd.Series(np.asarray(current, dtype=object) if np.ndim(current) else [current])
    rc, cc = r.value_counts(dropna=True), c.value_counts(dropna=True)
    if rc.sum() == 0 or cc.sum() == 0:
        raise InputError("reference and current must each hold at least one non-missing value")
    both = rc.index.union(cc.index, sort=False)
    return rc.reindex(both, fill_value=0).to_numpy(float), cc.reindex(both, fill_value=0).to_numpy(float)


def _binned(reference: Any, current: Any, n_bins: int, categorical: bool | None
            ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Aligned (reference, current) counts per column: quantile bins or categories."""
    if categorical is None:
        categorical = not (_is_numeric_like(reference) and _is_numeric_like(current))
    if categorical:
        return [_category_counts(np.asarray(reference, dtype=object).ravel(),
                                 np.asarray(current, dtype=object).ravel())]
    ref, cur, _ = _pair(reference, current)
    ref, cur = np.sort(ref, axis=1), np.sort(cur, axis=1)
    out = []
    for r, c in zip(ref, cur):
        edges = quantile_edges(r, n_bins)
        out.append((sorted_counts(r, edges), sorted_counts(c, edges)))
    return out


def _histogram_measure(fn: Any, reference: Any, current: Any, n_bins: int,
                       categorical: bool | None) -> UnivariateResult:
    pairs = _binned(reference, current, n_bins, categorical)
    vals = np.array([fn(p, q) for p, q in pairs])
    return _out(vals, None, len(pairs) == 1 and np.ndim(reference) < 2)


def chi2_test(reference: Any, current: Any) -> UnivariateResult:
    """Chi-square test of homogeneity on category counts (any hashable values, NaN dropped).

    Equal to ``scipy.stats.chi2_contingency(table, correction=False)``; with two categories it
    equals the pooled two-proportion z-test (``z**2 == chi2``).
    """
    p, q = _category_counts(np.ravel(np.asarray(reference, dtype=object)),
                            np.ravel(np.asarray(current, dtype=object)))
    return chi2_from_counts(p, q)


def psi(reference: Any, current: Any, *, n_bins: int = 10, categorical: bool | None = None
        ) -> UnivariateResult:
    """Population stability index. Common reading: < 0.1 stable, 0.1-0.2 moderate, >= 0.2 drift.

    ``categorical=None`` treats non-numeric dtypes as categories and numbers as continuous.
    """
    return _histogram_measure(psi_from_counts, reference, current, n_bins, categorical)


def jensen_shannon(reference: Any, current: Any, *, n_bins: int = 10, categorical: bool | None = None,
                   base: float | None = None) -> UnivariateResult:
    """Jensen-Shannon distance between binned distributions (natural log unless ``base``).

    With the natural log it lies in [0, sqrt(ln 2)] ~ [0, 0.833]; ``base=2`` gives [0, 1].
    """
    def fn(p: np.ndarray, q: np.ndarray) -> float:
        return js_from_counts(p, q, base=base)

    return _histogram_measure(fn, reference, current, n_bins, categorical)


def hellinger(reference: Any, current: Any, *, n_bins: int = 10, categorical: bool | None = None
              ) -> UnivariateResult:
    """Hellinger distance between binned distributions, in [0, 1]."""
    return _histogram_measure(hellinger_from_counts, reference, current, n_bins, categorical)


def wasserstein(reference: Any, current: Any, *, normalize: bool = True) -> UnivariateResult:
    """Wasserstein-1 (earth mover's) distance, divided by the reference's standard deviation.

    ``normalize=False`` gives :func:`scipy.stats.wasserstein_distance` itself. A constant reference
    (std 0) is not normalised.
    """
    ref, cur, one = _pair(reference, current)
    _, w = ks_and_wasserstein(np.sort(ref, axis=1), np.sort(cur, axis=1))
    if normalize:
        std = ref.std(axis=1)
        w = np.where(std > 0, w / np.where(std > 0, std, 1.0), w)
    return _out(w, None, one)
