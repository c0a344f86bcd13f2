"""Confidence intervals for the numbers a report shows: Wilson for rates, bootstrap otherwise."""

from __future__ import annotations

from collections.abc import Callable
from statistics import NormalDist
from typing import Any

import numpy as np

from stalwart._validation import check_param

__all__ = ["wilson_interval", "bootstrap_ci", "paired_difference_interval"]


def _z(confidence: float) -> float:
    check_param("wilson_interval", "confidence", confidence,
                isinstance(confidence, (int, float)) and 0 < confidence < 1, "a number in (0, 1)")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson_interval(successes: Any, n: Any, confidence: float = 0.95) -> tuple[Any, Any]:
    """Wilson score interval for a binomial proportion (Wilson, 1927).

    Unlike the normal-approximation interval it stays inside [0, 1] and keeps its coverage
    near 0 and 1, which is where robust accuracies and flip rates often sit.

    Parameters
    ----------
    successes : int or array of int
        Number of successes (0 <= successes <= n).
    n : int or array of int
        Number of trials; ``n == 0`` gives the uninformative interval (0, 1).
    confidence : float, default 0.95
        Two-sided confidence level.

    Returns
    -------
    (low, high) : floats, or arrays when the inputs are arrays

    Examples
    --------
    >>> [round(v, 4) for v in wilson_interval(5, 10)]
    [0.2366, 0.7634]
    """
    z = _z(confidence)
    k = np.asarray(successes, dtype=float)
    m = np.asarray(n, dtype=float)
    if np.any(m < 0) or np.any(k < 0) or np.any(k > m):
        raise _bad(successes, n)
    safe_n = np.where(m > 0, m, 1.0)
    p = k / safe_n
    z2 = z * z
    denom = 1.0 + z2 / safe_n
    center = (p + z2 / (2 * safe_n)) / denom
    half = z * np.sqrt(p * (1 - p) / safe_n + z2 / (4 * safe_n * safe_n)) / denom
    low = np.where(m > 0, np.clip(center - half, 0.0, 1.0), 0.0)
    high = np.where(m > 0, np.clip(center + half, 0.0, 1.0), 1.0)
    # exact ends: 0 successes has low 0, n successes has high 1 (rounding can miss them)
    low = np.where(k == 0, 0.0, low)
    high = np.where((k == m) & (m > 0), 1.0, high)
    if low.ndim == 0:
        return float(low), float(high)
    return low, high


def _bad(successes: Any, n: Any) -> Exception:
    from stalwart.errors import ConfigError

    return ConfigError(
        f"wilson_interval(successes=..., n=...) needs 0 <= successes <= n; got successes={successes!r}, n={n!r}"
    )


def bootstrap_ci(values: Any, stat: Callable[..., Any] = np.mean, n_boot: int = 1000, seed: int = 0,
                 confidence: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of ``stat`` over the first axis of ``values``.

    Parameters
    ----------
    values : array-like, shape (n,) or (n, ...)
        Per-sample values; rows are resampled with replacement.
    stat : callable, default numpy.mean
        Statistic. When it accepts ``axis=`` (NumPy reductions do) all resamples are computed
        in one vectorised call; otherwise it is called once per resample.
    n_boot : int, default 1000
        Number of resamples.
    seed : int, default 0
        Seed of the resampling generator; the same seed gives the same interval.
    confidence : float, default 0.95
        Two-sided confidence level.

    Returns
    -------
    (low, high) : floats; (nan, nan) for fewer than two values
    """
    check_param("bootstrap_ci", "n_boot", n_boot, isinstance(n_boot, (int, np.integer)) and n_boot > 0,
                "an integer > 0")
    check_param("bootstrap_ci", "confidence", confidence,
                isinstance(confidence, (int, float)) and 0 < confidence < 1, "a number in (0, 1)")
    arr = np.asarray(values, dtype=float)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    n = arr.shape[0]
    if n < 2:
        # one value resampled is that value: a zero-width interval that claims certainty it lacks
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(int(n_boot), n))
    samples = arr[idx]  # (n_boot, n, ...)
    try:
        stats = np.asarray(stat(samples, axis=1), dtype=float)
    except TypeError:
        stats = np.array([stat(s) for s in samples], dtype=float)
    stats = stats.reshape(int(n_boot), -1)[:, 0]
    alpha = (1 - confidence) / 2
    low, high = np.nanquantile(stats, [alpha, 1 - alpha])
    return float(low), float(high)


def paired_difference_interval(first: Any, second: Any, confidence: float = 0.95) -> tuple[float, float]:
    """Interval for ``mean(first) - mean(second)`` of two paired binary outcomes (Newcombe, 1998).

    Newcombe's method 10 for paired proportions ("Improved confidence intervals for the
    difference between binomial proportions based on paired data", Statistics in Medicine 17):
    the Wilson intervals of both proportions combined with the correlation of the pairs. Unlike a
    bootstrap of the paired differences, it is never zero-width (a model that no perturbation
    changes on 50 samples gets ``[-0.07, 0.07]``, not ``[0, 0]``) and it keeps its coverage at
    the edges.

    Parameters
    ----------
    first, second : arrays of bool, same length
        Per-sample outcomes (e.g. correct on the clean input, correct on the perturbed input).

    Returns
    -------
    (low, high) : floats; (nan, nan) for empty input

    Examples
    --------
    >>> import numpy as np
    >>> [round(v, 3) for v in paired_difference_interval(np.ones(50, bool), np.ones(50, bool))]
    [-0.071, 0.071]
    """
    x = np.asarray(first, dtype=bool)
    y = np.asarray(second, dtype=bool)
    n = x.size
    if n == 0:
        return float("nan"), float("nan")
    a = float(np.sum(x & y))
    b = float(np.sum(x & ~y))
    c = float(np.sum(~x & y))
    d = float(np.sum(~x & ~y))
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = wilson_interval(a + b, n, confidence)
    l2, u2 = wilson_interval(a + c, n, confidence)
    denom = (a + b) * (c + d) * (a + c) * (b + d)
    if denom == 0:
        phi = 0.0
    else:
        num = a * d - b * c
        # Newcombe's continuity correction of the correlation, applied when it is positive
        num = max(num - n / 2, 0.0) if num > 0 else num
        phi = num / np.sqrt(denom)
    diff = p1 - p2
    dl = (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2
    du = (p2 - l2) ** 2 - 2 * phi * (p2 - l2) * (u1 - p1) + (u1 - p1) ** 2
    return float(max(-1.0, diff - np.sqrt(max(dl, 0.0)))), float(min(1.0, diff + np.sqrt(max(du, 0.0))))
