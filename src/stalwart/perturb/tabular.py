"""Natural perturbations of tabular data: noise, missing values, category swaps, outliers, rounding.

Every perturbation here respects the :class:`~stalwart.data.schema.Schema`:

- immutable columns (``mutable=False``) and columns the schema does not list are never touched;
- numeric values are clipped to the column's ``[lower, upper]`` range;
- integer columns are rounded (then clipped to the integers inside the range) and keep their dtype;
- boolean columns stay boolean and categorical values stay among the column's categories.

The one deliberate exception is :class:`MissingValues`, which writes NaN (integer columns become
float, boolean columns object): the model under test must cope with missing values, or the
check reports the error.

Scales are relative to each column's *spread*, its standard deviation in the batch being
perturbed (NaN ignored). A constant column falls back to the standard deviation of a uniform
distribution over its declared range, ``(upper - lower) / sqrt(12)``; with no usable range it has
spread 0 and is left unchanged. Random draws do not depend on the severity, so with the same
seed a higher severity changes a superset of the cells a lower one changes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from stalwart._validation import check_param
from stalwart.data.schema import Column, Schema
from stalwart.errors import InputError
from stalwart.perturb.base import Perturbation, register

__all__ = ["FeatureNoise", "MissingValues", "CategorySwap", "Outliers", "Rounding"]

_NUMERIC_KINDS = ("numeric", "integer")


# -- helpers shared by the numeric perturbations -------------------------------------------------
class _NumericBlock:
    """The mutable numeric columns of a frame as one float matrix, plus their constraints."""

    def __init__(self, df: pd.DataFrame, schema: Schema) -> None:
        self.columns: list[Column] = [c for c in schema.columns if c.mutable and c.kind in _NUMERIC_KINDS]
        n = len(df)
        self.values = np.empty((n, len(self.columns)), dtype=np.float64)
        for j, col in enumerate(self.columns):
            self.values[:, j] = _as_float(df[col.name], col.name)
        self.is_int = np.array([c.kind == "integer" for c in self.columns], dtype=bool)
        lo = np.array([-np.inf if c.lower is None else c.lower for c in self.columns], dtype=np.float64)
        hi = np.array([np.inf if c.upper is None else c.upper for c in self.columns], dtype=np.float64)
        # integers must land on an integer inside the range
        self.lower = np.where(self.is_int, np.ceil(lo), lo)
        self.upper = np.where(self.is_int, np.floor(hi), hi)

    @property
    def shape(self) -> tuple[int, int]:
        return self.values.shape  # type: ignore[return-value]

    def spread(self) -> np.ndarray:
        """Per-column standard deviation (NaN ignored), with the range fallback for constants."""
        return _spread(self.values, self.lower, self.upper)

    def write(self, df: pd.DataFrame, new: np.ndarray) -> pd.DataFrame:
        """Round integer columns, clip to the range and store ``new`` into ``df`` (dtypes kept)."""
        new = np.where(self.is_int, np.round(new), new)
        new = np.clip(new, self.lower, self.upper)  # NaN passes through
        for j, col in enumerate(self.columns):
            original = df[col.name]
            if np.array_equal(new[:, j], self.values[:, j], equal_nan=True):
                continue
            series = pd.Series(new[:, j], index=df.index, name=col.name)
            if col.kind == "integer" or pd.api.types.is_float_dtype(original):
                series = series.astype(original.dtype)  # int64 / Int64 / float32 stay what they were
            df[col.name] = series
        return df


def _as_float(s: pd.Series, name: str) -> np.ndarray:
    try:
        return s.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError):
        raise InputError(
            f"column {name!r} is declared numeric in the schema but holds non-numeric values "
            f"(dtype {s.dtype}); convert it to numbers or declare it categorical."
        ) from None


def _spread(values: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """NaN-ignoring std per column without numpy's all-NaN warnings; constant -> range / sqrt(12)."""
    finite = np.isfinite(values)
    count = finite.sum(axis=0)
    safe = np.where(finite, values, 0.0)
    denom = np.maximum(count, 1)
    mean = safe.sum(axis=0) / denom
    var = (np.where(finite, values - mean, 0.0) ** 2).sum(axis=0) / denom
    std = np.sqrt(var)
    width = upper - lower
    fallback = np.where(np.isfinite(width) & (width > 0), width / np.sqrt(12.0), 0.0)
    return np.where(std > 0, std, fallback)


class _Tabular(Perturbation):
    modality = "tabular"


# -- perturbations -----------------------------------------------------------------------------------
@register
class FeatureNoise(_Tabular):
    """Gaussian measurement noise on the mutable numeric and integer columns.

    Each selected cell gets ``x + N(0, sigma)`` with ``sigma = c * spread`` of its column, then
    integer columns are rounded and every value is clipped to its column's range.

    ====================  =====  =====  =====  =====  =====
    severity                1      2      3      4      5
    ====================  =====  =====  =====  =====  =====
    c (sigma / spread)     0.1    0.2    0.3    0.5    0.8
    ====================  =====  =====  =====  =====  =====

    Parameters
    ----------
    fraction : float in (0, 1], default 1.0
        Share of rows that get noise; the others are left unchanged.

    Examples
    --------
    >>> import pandas as pd
    >>> from stalwart import perturb
    >>> df = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0]})
    >>> out = perturb.get("feature_noise").apply(df, severity=3, rng=0)
    >>> bool(out["a"].between(0.0, 3.0).all())
    True
    """

    name = "feature_noise"
    description = "Gaussian noise scaled to each numeric column's spread"
    levels: tuple[float, ...] = (0.1, 0.2, 0.3, 0.5, 0.8)

    def __init__(self, *, fraction: float = 1.0) -> None:
        self.fraction = float(check_param(
            self, "fraction", fraction,
            lambda v: isinstance(v, (int, float, np.number)) and not isinstance(v, bool) and 0 < v <= 1,
            "a number in (0, 1]"))

    def _apply(self, x: pd.DataFrame, severity: int, rng: np.random.Generator, schema: Schema) -> pd.DataFrame:
        block = _NumericBlock(x, schema)
        n, d = block.shape
        z = rng.standard_normal((n, d))
        rows = rng.random(n) < self.fraction
        sigma = self.levels[severity - 1] * block.spread()
        return block.write(x, block.values + np.where(rows[:, None], z * sigma, 0.0))


@register
class MissingValues(_Tabular):
    """Cells of mutable columns go missing completely at random (MCAR) and become NaN.

    Every cell of every mutable column is blanked independently with probability ``rate``.
    Integer columns then become ``float64`` (nullable ``Int64`` columns hold ``<NA>``), boolean
    columns ``object``; string and categorical columns keep their dtype. This perturbation tests
    whether a model (or its pipeline's imputer) copes with missing data at all.

    ====================  =====  =====  =====  =====  =====
    severity                1      2      3      4      5
    ====================  =====  =====  =====  =====  =====
    rate (cells blanked)   0.05   0.1    0.2    0.3    0.5
    ====================  =====  =====  =====  =====  =====
    """

    name = "missing_values"
    description = "Cells of mutable columns set to NaN completely at random"
    levels: tuple[float, ...] = (0.05, 0.1, 0.2, 0.3, 0.5)

    def __init__(self) -> None:
        pass

    def _apply(self, x: pd.DataFrame, severity: int, rng: np.random.Generator, schema: Schema) -> pd.DataFrame:
        cols = [c.name for c in schema.columns if c.mutable]
        u = rng.random((len(x), len(cols)))
        blank = u < self.levels[severity - 1]
        for j, name in enumerate(cols):
            if blank[:, j].any():
                x[name] = x[name].where(~blank[:, j])  # pandas upcasts int -> float, bool -> object
        return x


@register
class CategorySwap(_Tabular):
    """Categorical and boolean cells replaced by a *different* category of their column.

    A selected cell holding category ``k`` of ``m`` becomes one of the other ``m - 1``
    categories, uniformly; a value the schema does not list becomes a uniform draw from the
    listed ones. Missing cells, immutable columns and columns with fewer than two categories are
    left alone. Boolean columns flip (their categories are always ``(False, True)``).

    ====================  =====  =====  =====  =====  =====
    severity                1      2      3      4      5
    ====================  =====  =====  =====  =====  =====
    rate (cells swapped)   0.05   0.1    0.2    0.3    0.5
    ====================  =====  =====  =====  =====  =====
    """

    name = "category_swap"
    description = "Categorical cells replaced by another category of the column"
    levels: tuple[float, ...] = (0.05, 0.1, 0.2, 0.3, 0.5)

    def __init__(self) -> None:
        pass

    def _apply(self, x: pd.DataFrame, severity: int, rng: np.random.Generator, schema: Schema) -> pd.DataFrame:
        cols = [c for c in schema.columns if c.mutable and c.kind in ("categorical", "boolean")]
        n = len(x)
        u = rng.random((n, len(cols)))
        v = rng.random((n, len(cols)))
        rate = self.levels[severity - 1]
        for j, col in enumerate(cols):
            cats = (False, True) if col.kind == "boolean" else tuple(col.categories)
            m = len(cats)
            s = x[col.name]
            chosen = (u[:, j] < rate) & ~s.isna().to_numpy()
            if m < 2 or not chosen.any():
                continue
            code = pd.Index(cats, dtype=object).get_indexer(s.astype(object))
            known = code >= 0
            # shift by 1..m-1 places: never the same category
            new_code = np.where(known, (code + 1 + np.floor(v[:, j] * (m - 1)).astype(np.int64)) % m,
                                np.floor(v[:, j] * m).astype(np.int64))
            values = s.to_numpy(dtype=object, copy=True)
            values[chosen] = np.asarray(cats, dtype=object)[new_code[chosen]]
            x[col.name] = _like(s, values, cats)
        return x


def _like(s: pd.Series, values: np.ndarray, cats: Sequence[object]) -> pd.Series:
    """``values`` (object array) as a Series with the dtype of ``s`` where that dtype can hold them."""
    dtype = s.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        extra = [c for c in cats if c not in set(dtype.categories)]
        categories = list(dtype.categories) + extra
        return pd.Series(pd.Categorical(values, categories=categories, ordered=dtype.ordered),
                         index=s.index, name=s.name)
    out = pd.Series(values, index=s.index, name=s.name)
    return out if pd.api.types.is_object_dtype(dtype) else out.astype(dtype)


@register
class Outliers(_Tabular):
    """Rows whose numeric values jump far into a tail: sensor glitches, entry errors, rare events.

    A selected cell becomes ``Q3 + k * (1 + j) * IQR`` or ``Q1 - k * (1 + j) * IQR`` (side drawn at
    random, ``j ~ U[0, 1)`` a per-cell jitter), with quartiles of its column in the batch; a
    column whose IQR is 0 uses ``1.349 * spread`` instead (the IQR of a normal with that std).
    Values are then clipped to the schema's range, so outliers are **bounded by the declared
    range**: with a range inferred from the data they land at its observed min or max. Widen the
    range (``Schema.infer(..., bounds=...)``) to allow values beyond what was seen.

    ====================  =====  =====  =====  =====  =====
    severity                1      2      3      4      5
    ====================  =====  =====  =====  =====  =====
    fraction of rows       0.02   0.05   0.1    0.15   0.2
    k (IQRs beyond Q1/Q3)  1.5    2      3      4      6
    ====================  =====  =====  =====  =====  =====

    Parameters
    ----------
    n_columns : int >= 1 or None, default None
        How many mutable numeric columns of a selected row become outliers (chosen at random per
        row); None means all of them.
    """

    name = "outliers"
    description = "Rows pushed beyond the tails of numeric columns, bounded by the schema range"
    levels: tuple[tuple[float, float], ...] = ((0.02, 1.5), (0.05, 2.0), (0.1, 3.0), (0.15, 4.0), (0.2, 6.0))

    def __init__(self, *, n_columns: int | None = None) -> None:
        self.n_columns = check_param(
            self, "n_columns", n_columns,
            n_columns is None or (isinstance(n_columns, (int, np.integer)) and not isinstance(n_columns, bool)
                                  and n_columns >= 1),
            "an integer >= 1 or None (all numeric columns)")

    def _apply(self, x: pd.DataFrame, severity: int, rng: np.random.Generator, schema: Schema) -> pd.DataFrame:
        block = _NumericBlock(x, schema)
        n, d = block.shape
        rows_u = rng.random(n)
        upper_side = rng.random((n, d)) < 0.5
        jitter = rng.random((n, d))
        column_order = rng.random((n, d)).argsort(axis=1).argsort(axis=1)  # random rank per row
        if d == 0:
            return x
        fraction, k = self.levels[severity - 1]
        cells = (rows_u < fraction)[:, None] & np.isfinite(block.values)
        if self.n_columns is not None:
            cells &= column_order < self.n_columns
        q1, q3 = _quartiles(block.values)
        iqr = q3 - q1
        iqr = np.where(iqr > 0, iqr, 1.349 * block.spread())
        step = k * (1.0 + jitter) * iqr
        pushed = np.where(upper_side, q3 + step, q1 - step)
        return block.write(x, np.where(cells, pushed, block.values))


def _quartiles(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """NaN-ignoring first and third quartiles per column; all-NaN columns get NaN (no warning)."""
    q1 = np.full(values.shape[1], np.nan)
    q3 = np.full(values.shape[1], np.nan)
    has = np.isfinite(values).any(axis=0)
    if has.any():
        q1[has], q3[has] = np.nanquantile(values[:, has], [0.25, 0.75], axis=0)
    return q1, q3


@register
class Rounding(_Tabular):
    """Numeric columns quantised to a coarser step, as when values are recorded less precisely.

    Each column is rounded to the nearest multiple of ``step = nice(c * spread)``, where
    ``nice`` rounds down to 1, 2 or 5 times a power of ten (how people round: to 0.5 kg, to the
    nearest 10). Integer columns use a step of at least 1, so they change only once the step
    reaches 2. Deterministic: ``rng`` is not used.

    ====================  =====  =====  =====  =====  =====
    severity                1      2      3      4      5
    ====================  =====  =====  =====  =====  =====
    c (step / spread)      0.05   0.1    0.25   0.5    1.0
    ====================  =====  =====  =====  =====  =====
    """

    name = "rounding"
    description = "Numeric columns rounded to a step proportional to their spread"
    levels: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1.0)

    def __init__(self) -> None:
        pass

    def _apply(self, x: pd.DataFrame, severity: int, rng: np.random.Generator, schema: Schema) -> pd.DataFrame:
        block = _NumericBlock(x, schema)
        step = _nice_floor(self.levels[severity - 1] * block.spread())
        step = np.where(block.is_int, np.maximum(step, 1.0), step)
        safe = np.where(step > 0, step, 1.0)
        rounded = np.round(block.values / safe) * safe
        # drop float noise such as 0.30000000000000004: keep one digit below the step's
        decimals = np.where(step > 0, 1 - np.floor(np.log10(safe)), 0).astype(int)
        for j in range(rounded.shape[1]):
            rounded[:, j] = np.round(rounded[:, j], decimals[j]) + 0.0  # + 0.0 turns -0.0 into 0.0
        return block.write(x, np.where(step > 0, rounded, block.values))


def _nice_floor(value: np.ndarray) -> np.ndarray:
    """Largest number of the form {1, 2, 5} * 10**e not above ``value`` (0 where value <= 0)."""
    value = np.asarray(value, dtype=np.float64)
    positive = value > 0
    safe = np.where(positive, value, 1.0)
    power = 10.0 ** np.floor(np.log10(safe))
    power = np.where(safe / power >= 10.0 - 1e-9, power * 10.0, power)  # log10(1000) < 3 in floats
    mantissa = safe / power * (1.0 + 1e-12)
    nice = np.where(mantissa >= 5, 5.0, np.where(mantissa >= 2, 2.0, 1.0)) * power
    return np.where(positive, nice, 0.0)
