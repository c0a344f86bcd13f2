"""Streaming change detectors: ADWIN, Page-Hinkley, DDM and KSWIN.

Each detector consumes one value at a time through :meth:`StreamDetector.update` (a metric, a
0/1 error indicator, one feature) and returns True at the value where it signals a change; the
indices are kept in ``detected_at``. A stream is sequential by nature, so ``update`` is a small
constant- or logarithmic-time step in plain Python; :meth:`StreamDetector.run` feeds an array.

After a detection each detector restarts as its paper prescribes: Page-Hinkley and DDM forget
everything, KSWIN keeps only its last ``stat_size`` values, and ADWIN has already dropped the
part of its window that preceded the change (it never restarts from scratch).

Examples
--------
>>> import numpy as np
>>> from stalwart.shift.streaming import ADWIN
>>> rng = np.random.default_rng(0)
>>> stream = np.concatenate([rng.normal(0, 1, 1000), rng.normal(1, 1, 500)])
>>> hits = ADWIN().run(stream)
>>> len(hits) >= 1 and 1000 <= hits[0] < 1200
True
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any, ClassVar, Literal

import numpy as np

from stalwart._validation import check_choice, check_param, check_positive
from stalwart.shift.base import StreamDetector, register

__all__ = ["ADWIN", "PageHinkley", "DDM", "KSWIN", "ks_two_sample_pvalue"]

Direction = Literal["up", "down", "both"]


def _check_unit(owner: object, name: str, value: Any, *, closed_right: bool = False) -> float:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
        and 0 < value and (value <= 1 if closed_right else value < 1)
    return float(check_param(owner, name, value, bool(ok),
                             "a number in (0, 1]" if closed_right else "a number in (0, 1)"))


def _check_finite(owner: object, value: float) -> None:
    if not math.isfinite(value):
        from stalwart.errors import InputError

        raise InputError(f"{type(owner).__name__}.update got {value!r}; stream values must be finite "
                         "(drop or impute missing values first).")


def _check_int(owner: object, name: str, value: Any, minimum: int) -> int:
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= minimum
    return int(check_param(owner, name, value, bool(ok), f"an integer >= {minimum}"))


# -- ADWIN ---------------------------------------------------------------------------------------
@register
class ADWIN(StreamDetector):
    """ADaptive WINdowing (ADWIN2; Bifet & Gavaldà, 2007).

    Keeps a window of recent values, compressed into an exponential histogram: at most
    ``max_buckets`` buckets per level, a level-``i`` bucket summarising ``2**i`` values (its
    total and its sum of squared deviations), so memory and the cut test cost O(log W) for a
    window of W values. Every ``clock`` values it tests each bucket boundary, splitting the
    window into an older part W0 (n0 values) and a newer part W1 (n1 values), and drops the
    oldest bucket while some split has

    ``|mean(W0) - mean(W1)| > eps_cut``, with
    ``eps_cut = sqrt(2 / m * var_W * ln(2 / delta')) + 2 / (3 m) * ln(2 / delta')``,

    ``m = 1 / (1/n0 + 1/n1)`` (the harmonic mean of the part sizes, halved), ``var_W`` the
    window's variance and ``delta' = delta / ln W`` -- the variance-based bound of the ADWIN2
    paper as MOA implements it. A change is signalled whenever the window shrinks.

    Parameters
    ----------
    delta : float, default 0.002
        Confidence: a smaller value gives fewer false alarms and slower detection.
    clock : int, default 32
        Test for a cut every ``clock`` values (the cut test is the costly part).
    max_buckets : int, default 5
        Buckets kept per level before the two oldest merge (``M`` in the paper).
    min_window : int, default 5
        Neither part of a split may hold fewer values than this.

    Attributes
    ----------
    width : int
        Values in the window.
    estimation : float
        Mean of the window.
    variance : float
        Variance of the window.
    n_buckets : int
        Buckets held (at most ``max_buckets * (log2(width) + 1)``).
    """

    name: ClassVar[str] = "adwin"

    def __init__(self, delta: float = 0.002, *, clock: int = 32, max_buckets: int = 5,
                 min_window: int = 5) -> None:
        super().__init__()
        self.delta = _check_unit(self, "delta", delta)
        self.clock = _check_int(self, "clock", clock, 1)
        self.max_buckets = _check_int(self, "max_buckets", max_buckets, 2)
        self.min_window = _check_int(self, "min_window", min_window, 1)
        # levels[i] holds [total, m2] pairs of buckets of 2**i values, oldest first
        self._totals: list[list[float]] = [[]]
        self._m2s: list[list[float]] = [[]]
        self.width = 0
        self._total = 0.0
        self._m2 = 0.0  # sum of squared deviations from the window mean

    @property
    def estimation(self) -> float:
        return self._total / self.width if self.width else 0.0

    @property
    def variance(self) -> float:
        return self._m2 / self.width if self.width else 0.0

    @property
    def n_buckets(self) -> int:
        return sum(len(level) for level in self._totals)

    def _update(self, value: float) -> bool:
        _check_finite(self, value)
        self._insert(value)
        if self.n_seen % self.clock != self.clock - 1 or self.width < 2 * self.min_window:
            return False
        return self._shrink()

    def _insert(self, value: float) -> None:
        if self.width:
            mean = self._total / self.width
            self._m2 += self.width * (value - mean) ** 2 / (self.width + 1)
        self.width += 1
        self._total += value
        self._totals[0].append(value)
        self._m2s[0].append(0.0)
        level = 0
        # keep at most max_buckets per level: merge the two oldest into one bucket a level up
        while len(self._totals[level]) > self.max_buckets:
            if level + 1 == len(self._totals):
                self._totals.append([])
                self._m2s.append([])
            size = 2 ** level
            t1, t2 = self._totals[level].pop(0), self._totals[level].pop(0)
            v1, v2 = self._m2s[level].pop(0), self._m2s[level].pop(0)
            m2 = v1 + v2 + size * size / (2 * size) * (t1 / size - t2 / size) ** 2
            self._totals[level + 1].append(t1 + t2)
            self._m2s[level + 1].append(m2)
            level += 1

    def _drop_oldest(self) -> None:
        level = len(self._totals) - 1
        while not self._totals[level]:
            level -= 1
        size = 2 ** level
        total, m2 = self._totals[level].pop(0), self._m2s[level].pop(0)
        self.width -= size
        self._total -= total
        if self.width:
            mean_rest = self._total / self.width
            self._m2 -= m2 + size * self.width * (total / size - mean_rest) ** 2 / (size + self.width)
            self._m2 = max(self._m2, 0.0)
        else:
            self._m2 = 0.0
        while len(self._totals) > 1 and not self._totals[-1]:
            self._totals.pop()
            self._m2s.pop()

    def _cut_found(self) -> bool:
        width, total = self.width, self._total
        var = self._m2 / width
        dd = math.log(2.0 * math.log(width) / self.delta)
        n0, s0 = 0, 0.0
        # walk bucket boundaries from the oldest bucket to the newest
        for level in range(len(self._totals) - 1, -1, -1):
            size = 2 ** level
            for t in self._totals[level]:
                n0 += size
                s0 += t
                n1 = width - n0
                if n1 < self.min_window:
                    return False
                if n0 < self.min_window:
                    continue
                m = 1.0 / (1.0 / n0 + 1.0 / n1)
                eps = math.sqrt(2.0 / m * var * dd) + 2.0 / (3.0 * m) * dd
                if abs(s0 / n0 - (total - s0) / n1) > eps:
                    return True
        return False

    def _shrink(self) -> bool:
        changed = False
        while self.width > 2 * self.min_window and self._cut_found():
            self._drop_oldest()
            changed = True
        return changed

    def __repr__(self) -> str:
        return f"ADWIN(delta={self.delta}, clock={self.clock}, max_buckets={self.max_buckets})"


# -- Page-Hinkley ----------------------------------------------------------------------------------
@register
class PageHinkley(StreamDetector):
    """Page-Hinkley test for a change in the mean (Page, 1954; Hinkley, 1971).

    With ``xbar_t`` the running mean of the values so far (``x_t`` included), the cumulative
    sums

    ``U_t = alpha * U_{t-1} + (x_t - xbar_t - delta)``   (increase),
    ``L_t = alpha * L_{t-1} + (xbar_t - x_t - delta)``   (decrease)

    are compared with their running minima; the statistic ``U_t - min U`` (or ``L_t - min L``)
    above ``threshold`` signals a change, after which every sum and the mean restart.

    Parameters
    ----------
    delta : float, default 0.005
        Magnitude of change tolerated; each value contributes ``-delta``, which keeps the sums
        drifting down on a stationary stream. Half the smallest shift to detect is a good value.
    threshold : float, default 50.0
        ``lambda``: alarm level of the statistic. Larger means fewer false alarms, later alarms.
    alpha : float, default 0.9999
        Forgetting factor of the cumulative sums (1 gives the classic test).
    direction : {"up", "down", "both"}, default "up"
        Which changes of the mean to detect.
    min_instances : int, default 30
        Values seen (since the last restart) before an alarm may fire.
    """

    name: ClassVar[str] = "page_hinkley"

    def __init__(self, delta: float = 0.005, threshold: float = 50.0, alpha: float = 0.9999, *,
                 direction: Direction = "up", min_instances: int = 30) -> None:
        super().__init__()
        self.delta = float(check_positive(self, "delta", delta, strict=False))
        self.threshold = float(check_positive(self, "threshold", threshold))
        self.alpha = _check_unit(self, "alpha", alpha, closed_right=True)
        self.direction = check_choice(self, "direction", direction, ("up", "down", "both"))
        self.min_instances = _check_int(self, "min_instances", min_instances, 1)
        self._restart()

    def _restart(self) -> None:
        self._n = 0
        self._mean = 0.0
        self._up = self._up_min = 0.0
        self._down = self._down_min = 0.0

    @property
    def statistic_up(self) -> float:
        return self._up - self._up_min

    @property
    def statistic_down(self) -> float:
        return self._down - self._down_min

    @property
    def statistic(self) -> float:
        """The statistic compared with ``threshold`` (the larger of both for "both")."""
        if self.direction == "up":
            return self.statistic_up
        if self.direction == "down":
            return self.statistic_down
        return max(self.statistic_up, self.statistic_down)

    def _update(self, value: float) -> bool:
        _check_finite(self, value)
        self._n += 1
        self._mean += (value - self._mean) / self._n
        self._up = self.alpha * self._up + (value - self._mean - self.delta)
        self._down = self.alpha * self._down + (self._mean - value - self.delta)
        self._up_min = min(self._up_min, self._up)
        self._down_min = min(self._down_min, self._down)
        if self._n >= self.min_instances and self.statistic > self.threshold:
            self._restart()
            return True
        return False

    def __repr__(self) -> str:
        return (f"PageHinkley(delta={self.delta}, threshold={self.threshold}, alpha={self.alpha}, "
                f"direction={self.direction!r})")


# -- DDM -------------------------------------------------------------------------------------------
@register
class DDM(StreamDetector):
    """Drift Detection Method on a 0/1 error stream (Gama et al., 2004).

    After ``i`` values the error rate is ``p_i`` with binomial standard deviation
    ``s_i = sqrt(p_i (1 - p_i) / i)``. Once ``min_instances`` values are seen it records the
    point where ``p_i + s_i`` was smallest (``p_min``, ``s_min``); ``p_i + s_i >= p_min +
    warning_level * s_min`` puts it in the warning state, ``>= p_min + drift_level * s_min``
    signals a drift and restarts it.

    Parameters
    ----------
    warning_level : float, default 2.0
    drift_level : float, default 3.0
    min_instances : int, default 30

    Attributes
    ----------
    warning : bool
        Whether the last value left the detector in the warning zone.
    warnings_at : list of int
        Indices of values at which the warning zone was entered.
    """

    name: ClassVar[str] = "ddm"

    def __init__(self, warning_level: float = 2.0, drift_level: float = 3.0, *,
                 min_instances: int = 30) -> None:
        super().__init__()
        self.warning_level = float(check_positive(self, "warning_level", warning_level))
        self.drift_level = float(check_param(
            self, "drift_level", drift_level,
            isinstance(drift_level, (int, float)) and not isinstance(drift_level, bool)
            and drift_level > self.warning_level, f"a number > warning_level={self.warning_level}"))
        self.min_instances = _check_int(self, "min_instances", min_instances, 1)
        self.warnings_at: list[int] = []
        self._restart()

    def _restart(self) -> None:
        self._n = 0
        self._errors = 0.0
        self._p_min = math.inf
        self._s_min = math.inf
        self.warning = False

    @property
    def error_rate(self) -> float:
        return self._errors / self._n if self._n else 0.0

    def _update(self, value: float) -> bool:
        if value not in (0.0, 1.0):
            from stalwart.errors import InputError

            raise InputError(f"DDM expects a 0/1 error stream (1 = the model was wrong); got {value!r}.")
        self._n += 1
        self._errors += value
        p = self._errors / self._n
        s = math.sqrt(p * (1.0 - p) / self._n)
        if self._n < self.min_instances:
            return False
        if p + s <= self._p_min + self._s_min:
            self._p_min, self._s_min = p, s
        if p + s >= self._p_min + self.drift_level * self._s_min:
            self._restart()
            return True
        was_warning = self.warning
        self.warning = p + s >= self._p_min + self.warning_level * self._s_min
        if self.warning and not was_warning:
            self.warnings_at.append(self.n_seen)
        return False

    def __repr__(self) -> str:
        return (f"DDM(warning_level={self.warning_level}, drift_level={self.drift_level}, "
                f"min_instances={self.min_instances})")


# -- KSWIN -----------------------------------------------------------------------------------------
@lru_cache(maxsize=64)
def _ks_equal_n_table(n: int) -> np.ndarray:
    """``table[k] = P(D >= k / n)`` for the two-sample KS statistic with two samples of size n.

    Closed form of Gnedenko & Korolyuk (1951) for equal sizes (continuous data, no ties):
    ``P(D >= k/n) = 2 / C(2n, n) * sum_{j>=1} (-1)**(j+1) C(2n, n - j k)``. Exact integer
    arithmetic, so no cancellation.
    """
    total = math.comb(2 * n, n)
    table = np.ones(n + 1)
    for k in range(1, n + 1):
        acc = sum((-1) ** (j + 1) * math.comb(2 * n, n - j * k) for j in range(1, n // k + 1))
        table[k] = min(1.0, 2 * acc / total)
    return table


def ks_two_sample_pvalue(statistic: float, n: int) -> float:
    """Exact two-sided p-value of a two-sample KS statistic for two samples of size ``n``.

    Examples
    --------
    >>> round(ks_two_sample_pvalue(0.5, 10), 4)
    0.1678
    """
    n = _check_int("ks_two_sample_pvalue", "n", n, 1)
    k = int(math.ceil(round(float(statistic) * n, 9)))
    return float(_ks_equal_n_table(n)[min(max(k, 0), n)])


@register
class KSWIN(StreamDetector):
    """Kolmogorov-Smirnov WINdowing (Raab, Heusinger & Schleif, 2020).

    Keeps the last ``window_size`` values. When the window is full, the last ``stat_size``
    values R are compared by a two-sample KS test with ``stat_size`` values drawn uniformly
    without replacement from the older part of the window; a p-value below ``alpha`` signals a
    change and the window shrinks to R. The p-value is exact for equal sample sizes (see
    :func:`ks_two_sample_pvalue`), so the per-test false-alarm rate is at most ``alpha``; with a
    test at every value, expect about ``alpha`` false alarms per value on a stationary stream
    (fewer in practice: consecutive tests share data).

    Parameters
    ----------
    alpha : float, default 0.005
        Per-test significance level.
    window_size : int, default 100
    stat_size : int, default 30
        Must be less than half of ``window_size``.
    seed : int or numpy.random.Generator, default 0
        Seed of the sampling of the older window.
    """

    name: ClassVar[str] = "kswin"

    def __init__(self, alpha: float = 0.005, window_size: int = 100, stat_size: int = 30, *,
                 seed: int | np.random.Generator = 0) -> None:
        super().__init__()
        self.alpha = _check_unit(self, "alpha", alpha)
        self.window_size = _check_int(self, "window_size", window_size, 4)
        self.stat_size = int(check_param(
            self, "stat_size", stat_size,
            isinstance(stat_size, (int, np.integer)) and not isinstance(stat_size, bool)
            and 1 <= stat_size and 2 * stat_size <= self.window_size,
            f"an integer in [1, window_size / 2 = {self.window_size // 2}]"))
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self._window = np.empty(self.window_size)
        self._len = 0
        # smallest KS statistic, in units of 1/stat_size, whose exact p-value is below alpha
        table = _ks_equal_n_table(self.stat_size)
        below = np.flatnonzero(table < self.alpha)
        self._k_crit = int(below[0]) if below.size else self.stat_size + 1
        self.p_value: float | None = None
        self.statistic: float | None = None

    def _update(self, value: float) -> bool:
        _check_finite(self, value)
        if self._len == self.window_size:
            self._window[:-1] = self._window[1:]
            self._window[-1] = value
        else:
            self._window[self._len] = value
            self._len += 1
        if self._len < self.window_size:
            return False
        r = self.stat_size
        recent = np.sort(self._window[-r:])
        older = np.sort(self._rng.choice(self._window[:-r], size=r, replace=False))
        grid = np.concatenate([recent, older])
        cdf_r = np.searchsorted(recent, grid, side="right")
        cdf_o = np.searchsorted(older, grid, side="right")
        k = int(np.abs(cdf_r - cdf_o).max())
        self.statistic = k / r
        self.p_value = float(_ks_equal_n_table(r)[k])
        if k >= self._k_crit:
            self._window[:r] = self._window[-r:].copy()
            self._len = r
            return True
        return False

    def __repr__(self) -> str:
        return (f"KSWIN(alpha={self.alpha}, window_size={self.window_size}, stat_size={self.stat_size}, "
                f"seed={self.seed!r})")
