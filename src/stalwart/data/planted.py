"""Tables with planted weak slices: rows where a model's error rate is known to be higher.

:func:`make_planted_slices` draws ``n`` rows of numeric and categorical columns and a 0/1 error
per row: ``base_rate`` everywhere, and a higher rate inside each of up to five planted slices
(0.5-5% of the rows each; their numeric boundaries fall between the quantile cuts a slice finder
is likely to use). It is the known answer for testing and benchmarking weak-slice discovery.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from stalwart._validation import check_param, check_seed

__all__ = ["PlantedSlices", "make_planted_slices"]


@dataclass(frozen=True)
class PlantedSlices:
    """The table, the per-row error, and each planted slice's description and rows."""

    x: pd.DataFrame
    error: np.ndarray  # 0/1 per row
    descriptions: tuple[str, ...]
    masks: tuple[np.ndarray, ...]
    rates: tuple[float, ...]  # the error rate planted inside each slice


def make_planted_slices(n: int = 100_000, n_columns: int = 20, *, n_slices: int = 5, base_rate: float = 0.05,
                        seed: int = 0) -> PlantedSlices:
    """``n`` rows of ``n_columns`` columns (three quarters numeric, the rest categorical, at
    least 11 numeric and 5 categorical) with ``n_slices`` (0 to 5) planted weak slices.

    >>> p = make_planted_slices(10_000, n_slices=2)
    >>> p.x.shape, p.descriptions
    ((10000, 20), ("x3 >= 1.28 and c1 = 'b'", "c2 = 'k' and c4 = 'q'"))
    """
    owner = "make_planted_slices"
    check_param(owner, "n", n, isinstance(n, int) and n >= 100, "an integer >= 100")
    check_param(owner, "n_columns", n_columns, isinstance(n_columns, int) and n_columns >= 16, "an integer >= 16")
    check_param(owner, "n_slices", n_slices, isinstance(n_slices, int) and 0 <= n_slices <= 5, "an integer 0..5")
    check_param(owner, "base_rate", base_rate, isinstance(base_rate, float) and 0 < base_rate < 0.5,
                "a number in (0, 0.5)")
    rng = np.random.default_rng(check_seed(owner, seed))
    n_cat = max(5, n_columns // 4)
    n_num = n_columns - n_cat
    cols: dict[str, np.ndarray] = {}
    for j in range(n_num):
        kind = j % 3
        if kind == 0:
            cols[f"x{j}"] = rng.normal(size=n)
        elif kind == 1:
            cols[f"x{j}"] = rng.uniform(0, 100, size=n)
        else:
            cols[f"x{j}"] = rng.exponential(2.0, size=n)
    levels = ("abc", "abcde", "abcdefgk", "uvwxyz", "nopq")
    for j in range(n_cat):
        values = list(levels[j % len(levels)])
        cols[f"c{j}"] = rng.choice(values, size=n).astype(object)
    x = pd.DataFrame(cols)
    a = {name: x[name].to_numpy() for name in x.columns}
    # each planted slice: (description, mask, error rate inside); supports about 2%, 3%, 4%, 1.8%, 0.6%
    planted = [
        ("x3 >= 1.28 and c1 = 'b'", (a["x3"] >= 1.28) & (a["c1"] == "b"), 0.25),
        ("c2 = 'k' and c4 = 'q'", (a["c2"] == "k") & (a["c4"] == "q"), 0.20),
        ("x7 < 4.1", a["x7"] < 4.1, 0.15),
        ("1.5 <= x6 < 2.5 and x10 >= 70.3", (a["x6"] >= 1.5) & (a["x6"] < 2.5) & (a["x10"] >= 70.3), 0.30),
        ("x5 >= 5.8 and c3 = 'z'", (a["x5"] >= 5.8) & (a["c3"] == "z"), 0.25),
    ][:n_slices]
    rate = np.full(n, base_rate)
    for _, mask, r in planted:
        rate[mask] = np.maximum(rate[mask], r)
    error = (rng.random(n) < rate).astype(np.int64)
    return PlantedSlices(x, error, tuple(p[0] for p in planted), tuple(p[1] for p in planted),
                         tuple(p[2] for p in planted))
