"""Natural perturbations of tabular data: noise, missing values, category swaps, outliers, rounding.

Every perturbation here respects the :class:`~stalwart.data.schema.Schema`:

- immutable columns (``mutable=False``) and columns the schema does not list are never touched;
- numeric values are clipped to the column's ``[lower, upper]`` range;
- integer columns are rounded (then clipped to the integers inside the range) and keep their dtype;
- boolean columns stay boolean and categorical values stay among the column's categories.

The deliberate exceptions are data *faults*: :class:`MissingValues` and
:class:`MissingNotAtRandom` write NaN (integer columns become float, boolean columns object): the
model under test must cope with missing values, or the check reports the error;
:class:`UnitScale` and :class:`ColumnSwap` are not clipped to the range, because a value in the
wrong unit or the wrong column is exactly what leaves it (integers still stay integers).

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

__all__ = ["FeatureNoise", "MissingValues", "CategorySwap", "Outliers", "Rounding", "MissingNotAtRandom",
           "CategorySwapFrequency", "UnitScale", "StuckSensor", "ColumnSwap", "RareEvent"]

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

    def write(self, df: pd.DataFrame, new: np.ndarray, *, clip: bool = True) -> pd.DataFrame:
        """Round integer columns, clip to the range (unless ``clip=False``: faults that leave it on
        purpose) and store ``new`` into ``df`` (dtypes kept)."""
        new = np.where(self.is_int, np.round(new), new)
        if clip:
            # only cells the perturbation touched: a value already outside the range stays as it was
            touched = ~((new == self.values) | (np.isnan(new) & np.isnan(self.values)))
            new = np.where(touched, np.clip(new, self.lower, self.upper), new)  # NaN passes through
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
            new_code = self._new_codes(code, v[:, j], m, chosen)
            values = s.to_numpy(dtype=object, copy=True)
            values[chosen] = np.asarray(cats, dtype=object)[new_code[chosen]]
            x[col.name] = _like(s, values, cats)
        return x

    def _new_codes(self, code: np.ndarray, v: np.ndarray, m: int, chosen: np.ndarray) -> np.ndarray:
        """New category index per cell (read where ``chosen``); ``code`` is -1 for unlisted values."""
        # shift by 1..m-1 places: never the same category
        return np.where(code >= 0, (code + 1 + np.floor(v * (m - 1)).astype(np.int64)) % m,
                        np.floor(v * m).astype(np.int64))


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


# == faults and rare events ============================================================================
def _column_names(owner: object, name: str, value: object, *, exactly: int | None = None) -> tuple[str, ...] | None:
    """Validate a ``columns=`` parameter: None or a list of distinct column names."""
    ok = value is None or (isinstance(value, Sequence) and not isinstance(value, str) and len(value) > 0
                           and all(isinstance(c, str) for c in value) and len(set(value)) == len(value)
                           and (exactly is None or len(value) == exactly))
    expect = (f"None or a list of exactly {exactly} distinct column names" if exactly
              else "None (every mutable numeric column) or a non-empty list of distinct column names")
    check_param(owner, name, value, ok, expect)
    return None if value is None else tuple(value)


def _targets(owner: Perturbation, schema: Schema, columns: tuple[str, ...] | None,
             kinds: tuple[str, ...] = _NUMERIC_KINDS) -> list[Column]:
    """The columns a perturbation works on: the named ones (checked) or every mutable one of ``kinds``."""
    if columns is None:
        return [c for c in schema.columns if c.mutable and c.kind in kinds]
    out = []
    for name in columns:
        col = schema.column(name)  # InputError naming the known columns
        if not col.mutable:
            raise InputError(f"{type(owner).__name__}(columns=...) names {name!r}, which the schema marks "
                             "immutable; drop it from columns or make it mutable in the schema.")
        if col.kind not in kinds:
            raise InputError(f"{type(owner).__name__}(columns=...) names {name!r}, a {col.kind} column; this "
                             f"perturbation works on {' or '.join(kinds)} columns.")
        out.append(col)
    return out


def _sub_schema(columns: list[Column]) -> Schema:
    return Schema("tabular", tuple(columns))


@register
class MissingNotAtRandom(_Tabular):
    """The largest (or smallest) values of numeric columns go missing: missing *not* at random (MNAR).

    In each target column the ``k = round(q * m)`` largest finite values (``side="high"``; the
    smallest with ``side="low"``) become NaN, ``m`` being the column's finite cells; ``rng``
    only breaks ties at the threshold (at random, not by row order, which often means time).
    Incomes above a threshold left blank, a sensor saturating and dropping out: unlike
    :class:`MissingValues`, the missingness carries information an imputer cannot recover.
    Integer columns become float.

    ====================  =====  =====  =====  =====  =====
    severity                1      2      3      4      5
    ====================  =====  =====  =====  =====  =====
    q (share blanked)      0.05   0.1    0.2    0.3    0.5
    ====================  =====  =====  =====  =====  =====

    Parameters
    ----------
    side : {"high", "low"}, default "high"
    columns : list of str, optional
        Numeric or integer columns to blank; default: every mutable one.
    """

    name = "missing_not_at_random"
    description = "The largest (or smallest) values of numeric columns set to NaN"
    levels: tuple[float, ...] = (0.05, 0.1, 0.2, 0.3, 0.5)

    def __init__(self, *, side: str = "high", columns: Sequence[str] | None = None) -> None:
        self.side = check_param(self, "side", side, side in ("high", "low"), "one of ['high', 'low']")
        self.columns = _column_names(self, "columns", columns)

    def _apply(self, x: pd.DataFrame, severity: int, rng: np.random.Generator, schema: Schema) -> pd.DataFrame:
        q = self.levels[severity - 1]
        cols = _targets(self, schema, self.columns)
        tie = rng.random((len(x), len(cols)))
        for j, col in enumerate(cols):
            v = _as_float(x[col.name], col.name)
            finite = np.isfinite(v)
            k = int(np.floor(q * finite.sum() + 0.5))
            if k == 0:
                continue
            key = np.where(finite, -v if self.side == "high" else v, np.inf)
            blank = np.zeros(len(v), dtype=bool)
            blank[np.lexsort((tie[:, j], key))[:k]] = True
            x[col.name] = x[col.name].where(~blank)
        return x


@register
class CategorySwapFrequency(CategorySwap):
    """Categorical and boolean cells replaced by another category drawn by observed frequency.

    Like :class:`CategorySwap`, but the new category of a cell holding ``k`` is drawn with
    probability proportional to how often each *other* category occurs in the column (in the
    batch): frequent categories replace more often, as when a form's default option is picked by
    mistake. A column whose other categories never occur falls back to a uniform draw.

    ====================  =====  =====  =====  =====  =====
    severity                1      2      3      4      5
    ====================  =====  =====  =====  =====  =====
    rate (cells swapped)   0.05   0.1    0.2    0.3    0.5
    ====================  =====  =====  =====  =====  =====
    """

    name = "category_swap_frequency"
    description = "Categorical cells replaced by another category, drawn by observed frequency"

    def _new_codes(self, code: np.ndarray, v: np.ndarray, m: int, chosen: np.ndarray) -> np.ndarray:
        out = np.zeros(len(code), dtype=np.int64)
        rows = np.flatnonzero(chosen)
        known = code >= 0
        counts = np.bincount(code[known], minlength=m).astype(np.float64)
        c = code[rows]
        w = np.tile(counts, (len(rows), 1))
        own = c >= 0
        w[np.flatnonzero(own), c[own]] = 0.0  # never the same category
        empty = w.sum(axis=1) == 0
        if empty.any():  # only the cell's own category occurs: uniform over the others
            w[empty] = 1.0
            w[np.flatnonzero(empty & own), c[empty & own]] = 0.0
        cum = np.cumsum(w, axis=1)
        target = v[rows] * cum[:, -1]
        out[rows] = (cum <= target[:, None]).sum(axis=1)
        return out


@register
class UnitScale(_Tabular):
    """Values recorded in the wrong unit: a share of a column's rows multiplied by 10, 1000 or 0.01.

    Grams logged as kilograms, cents as euros, a sensor's firmware switching units: each target
    column gets one ``factor`` (drawn from 10, 1000 and 0.01 per column, or the one given) and a
    severity-graded share of its rows is multiplied by it. **Values are not clipped to the
    schema's range**: a unit fault leaves the range by nature, which is what a validating pipeline
    should catch (like :class:`MissingValues` violating completeness). Integer columns are rounded
    and keep their dtype.

    ====================  =====  =====  =====  =====  =====
    severity                1      2      3      4      5
    ====================  =====  =====  =====  =====  =====
    share of rows          0.02   0.05   0.1    0.2    0.3
    ====================  =====  =====  =====  =====  =====

    Parameters
    ----------
    factor : float > 0, optional
        One factor for every column; default: drawn per column from ``(10, 1000, 0.01)``.
    columns : list of str, optional
        Numeric or integer columns; default: every mutable one.
    """

    name = "unit_scale"
    description = "Rows of numeric columns in the wrong unit (x10, x1000, /100), range not enforced"
    levels: tuple[float, ...] = (0.02, 0.05, 0.1, 0.2, 0.3)
    factors: tuple[float, ...] = (10.0, 1000.0, 0.01)

    def __init__(self, *, factor: float | None = None, columns: Sequence[str] | None = None) -> None:
        self.factor = check_param(
            self, "factor", factor,
            factor is None or (isinstance(factor, (int, float, np.number)) and not isinstance(factor, bool)
                               and np.isfinite(factor) and factor > 0 and factor != 1),
            "None (drawn from 10, 1000, 0.01) or a positive number other than 1")
        self.columns = _column_names(self, "columns", columns)

    def _apply(self, x: pd.DataFrame, severity: int, rng: np.random.Generator, schema: Schema) -> pd.DataFrame:
        block = _NumericBlock(x, _sub_schema(_targets(self, schema, self.columns)))
        n, d = block.shape
        rows = rng.random((n, d)) < self.levels[severity - 1]
        pick = rng.integers(0, len(self.factors), d)
        factor = np.full(d, float(self.factor)) if self.factor is not None else np.asarray(self.factors)[pick]
        return block.write(x, np.where(rows, block.values * factor, block.values), clip=False)


@register
class StuckSensor(_Tabular):
    """A numeric column stuck at one value for a contiguous block of rows (a frozen sensor).

    Rows are read in order (as a time series). In each target column a block of
    ``L = max(1, round(share * n))`` consecutive rows takes the value of one row ``r`` inside it,
    as if the sensor stopped updating; ``r`` is drawn per column and the block sits around it,
    so with one seed a higher severity's block contains a lower one's. A column whose value at
    ``r`` is missing is left alone. Values stay observed values, so the range holds.

    ====================  =====  =====  =====  =====  =====
    severity                1      2      3      4      5
    ====================  =====  =====  =====  =====  =====
    share of rows stuck    0.05   0.1    0.2    0.35   0.5
    ====================  =====  =====  =====  =====  =====

    Parameters
    ----------
    columns : list of str, optional
        Numeric or integer columns; default: every mutable one.
    """

    name = "stuck_sensor"
    description = "A numeric column frozen at one value for a contiguous block of rows"
    levels: tuple[float, ...] = (0.05, 0.1, 0.2, 0.35, 0.5)

    def __init__(self, *, columns: Sequence[str] | None = None) -> None:
        self.columns = _column_names(self, "columns", columns)

    @staticmethod
    def block(n: int, r: int, length: int) -> tuple[int, int]:
        """Rows ``[start, stop)`` of a block of ``length`` rows around row ``r``, inside ``0..n``."""
        start = min(max(r - length // 2, 0), n - length)
        return start, start + length

    def _apply(self, x: pd.DataFrame, severity: int, rng: np.random.Generator, schema: Schema) -> pd.DataFrame:
        block = _NumericBlock(x, _sub_schema(_targets(self, schema, self.columns)))
        n, d = block.shape
        r = np.minimum((rng.random(d) * n).astype(np.int64), n - 1)
        length = max(1, int(np.floor(self.levels[severity - 1] * n + 0.5)))
        new = block.values.copy()
        for j in range(d):  # one slice per column
            stuck = block.values[r[j], j]
            if np.isfinite(stuck):
                start, stop = self.block(n, int(r[j]), length)
                new[start:stop, j] = stuck
        return block.write(x, new)


@register
class ColumnSwap(_Tabular):
    """Values of two numeric columns exchanged on a share of rows, as when a feed mislabels columns.

    By default the pair is the two mutable columns of the same kind (both numeric or both
    integer) whose observed ranges overlap most, then whose spreads are closest: the swap a
    validating pipeline is least likely to catch. Values keep their own scale, so **the
    destination's range is not enforced** (a fault, like :class:`UnitScale`); dtypes are kept
    (an integer destination rounds). Data without such a pair is returned unchanged.

    ====================  =====  =====  =====  =====  =====
    severity                1      2      3      4      5
    ====================  =====  =====  =====  =====  =====
    share of rows          0.05   0.1    0.2    0.35   0.5
    ====================  =====  =====  =====  =====  =====

    Parameters
    ----------
    columns : pair of str, optional
        The two numeric or integer columns to swap.
    """

    name = "column_swap"
    description = "Values of two compatible numeric columns swapped on some rows, range not enforced"
    levels: tuple[float, ...] = (0.05, 0.1, 0.2, 0.35, 0.5)

    def __init__(self, *, columns: Sequence[str] | None = None) -> None:
        self.columns = _column_names(self, "columns", columns, exactly=2)

    @staticmethod
    def pick_pair(values: np.ndarray, kinds: list[str]) -> tuple[int, int] | None:
        """Indices of the most compatible pair of columns of ``values`` (same kind), or None."""
        finite = np.isfinite(values)
        lo = np.where(finite, values, np.inf).min(axis=0)
        hi = np.where(finite, values, -np.inf).max(axis=0)
        spread = _spread(values, lo, hi)
        best, best_key = None, None
        for a in range(values.shape[1]):
            for b in range(a + 1, values.shape[1]):
                if kinds[a] != kinds[b] or not (finite[:, a].any() and finite[:, b].any()):
                    continue
                union = max(hi[a], hi[b]) - min(lo[a], lo[b])
                overlap = max(0.0, min(hi[a], hi[b]) - max(lo[a], lo[b])) / union if union > 0 else 1.0
                ratio = abs(np.log((spread[a] + 1e-300) / (spread[b] + 1e-300)))
                key = (-overlap, ratio)
                if best_key is None or key < best_key:
                    best, best_key = (a, b), key
        return best

    def _apply(self, x: pd.DataFrame, severity: int, rng: np.random.Generator, schema: Schema) -> pd.DataFrame:
        block = _NumericBlock(x, _sub_schema(_targets(self, schema, self.columns)))
        n, d = block.shape
        rows = rng.random(n) < self.levels[severity - 1]
        pair = (0, 1) if self.columns is not None else \
            self.pick_pair(block.values, [c.kind for c in block.columns]) if d >= 2 else None
        if pair is None:
            return x
        a, b = pair
        new = block.values.copy()
        new[rows, a], new[rows, b] = block.values[rows, b], block.values[rows, a]
        return block.write(x, new, clip=False)


@register
class RareEvent(_Tabular):
    """A rare segment made common: rows of other segments replaced by synthetic rows of the rare one.

    The *segment* is the rows holding the least frequent category of ``column`` (categorical or
    boolean), or the ``segment`` share of rows farthest from the centre: by ``|x - median| /
    spread`` of a numeric ``column``, or, with ``column=None``, by the root-mean-square of that
    score over all numeric columns (the data's outlying region). A severity-graded share of the
    *other* rows is replaced by SMOTE-style rows (Chawla et al., 2002): for a random segment row
    ``b`` and one of its ``k_neighbors`` nearest segment rows ``j`` (standardised numeric
    distance), ``x_b + lam * (x_j - x_b)`` with ``lam ~ U[0, 1)`` for mutable numeric columns,
    the category of whichever of ``b``, ``j`` is nearer (``lam < 0.5``: ``b``) for the others.
    The row count, the index and immutable columns stay as they were; values are rounded and
    clipped like every schema-respecting perturbation.

    ==========================  =====  =====  =====  =====  =====
    severity                      1      2      3      4      5
    ==========================  =====  =====  =====  =====  =====
    share of other rows replaced  0.05   0.1    0.2    0.3    0.5
    ==========================  =====  =====  =====  =====  =====

    Parameters
    ----------
    column : str, optional
        Column that defines the segment; default: the outlying region of the numeric columns.
    segment : float in (0, 0.5], default 0.1
        Share of rows in a numeric segment.
    k_neighbors : int >= 1, default 5
    """

    name = "rare_event"
    description = "Rows replaced by SMOTE-style synthetic rows of a rare segment"
    levels: tuple[float, ...] = (0.05, 0.1, 0.2, 0.3, 0.5)

    def __init__(self, *, column: str | None = None, segment: float = 0.1, k_neighbors: int = 5) -> None:
        self.column = check_param(self, "column", column, column is None or isinstance(column, str),
                                  "None or a column name")
        self.segment = float(check_param(
            self, "segment", segment,
            isinstance(segment, (int, float, np.number)) and not isinstance(segment, bool) and 0 < segment <= 0.5,
            "a number in (0, 0.5]"))
        self.k_neighbors = int(check_param(
            self, "k_neighbors", k_neighbors,
            isinstance(k_neighbors, (int, np.integer)) and not isinstance(k_neighbors, bool) and k_neighbors >= 1,
            "an integer >= 1"))

    def segment_rows(self, x: pd.DataFrame, schema: Schema) -> np.ndarray:
        """Positions of the rows in the rare segment (sorted)."""
        numeric = [c for c in schema.columns if c.is_numeric]
        if self.column is not None:
            col = schema.column(self.column)
            if not col.is_numeric:
                s = x[col.name].astype(object)
                counts = s.value_counts(dropna=True, sort=False)
                if counts.empty:
                    return np.zeros(0, dtype=np.int64)
                order = sorted(range(len(counts)), key=lambda i: (counts.iloc[i], str(counts.index[i])))
                return np.flatnonzero((s == counts.index[order[0]]).to_numpy())
            numeric = [col]
        if not numeric:
            return np.zeros(0, dtype=np.int64)
        z = _zscores(x, numeric)
        finite = np.isfinite(z)
        seen = finite.any(axis=1)
        score = np.sqrt(np.where(finite, z * z, 0.0).sum(axis=1) / np.maximum(finite.sum(axis=1), 1))
        m = max(1, int(np.floor(self.segment * seen.sum() + 0.5))) if seen.any() else 0
        return np.sort(np.argsort(np.where(seen, -score, np.inf), kind="stable")[:m])

    def _apply(self, x: pd.DataFrame, severity: int, rng: np.random.Generator, schema: Schema) -> pd.DataFrame:
        n = len(x)
        u = rng.random(n)
        w = rng.random((n, 3))
        seg = self.segment_rows(x, schema)
        if seg.size == 0:
            return x
        outside = np.ones(n, dtype=bool)
        outside[seg] = False
        replace = np.flatnonzero(outside & (u < self.levels[severity - 1]))
        if replace.size == 0:
            return x
        numeric = [c for c in schema.columns if c.is_numeric]
        z = np.nan_to_num(_zscores(x.iloc[seg], numeric), nan=0.0) if numeric else np.zeros((seg.size, 0))
        neighbours = _nearest(z, min(self.k_neighbors, seg.size - 1))
        ww = w[replace]
        b = (ww[:, 0] * seg.size).astype(np.int64)
        j = neighbours[b, (ww[:, 1] * neighbours.shape[1]).astype(np.int64)]
        lam = ww[:, 2]
        base_rows, other_rows = seg[b], seg[j]

        block = _NumericBlock(x, schema)
        new = block.values.copy()
        xb, xj = block.values[base_rows], block.values[other_rows]
        mixed = xb + lam[:, None] * (xj - xb)
        new[replace] = np.where(np.isfinite(mixed), mixed, xb)
        x = block.write(x, new)
        donor = np.where(lam < 0.5, base_rows, other_rows)
        for col in schema.columns:
            if col.mutable and not col.is_numeric:
                s = x[col.name]
                values = s.to_numpy(dtype=object, copy=True)
                values[replace] = values[donor]
                cats = (False, True) if col.kind == "boolean" else tuple(col.categories)
                x[col.name] = _like(s, values, cats)
        return x


def _zscores(x: pd.DataFrame, columns: list[Column]) -> np.ndarray:
    """``(value - median) / spread`` per column (NaN stays NaN; spread 0 -> 1)."""
    values = np.column_stack([_as_float(x[c.name], c.name) for c in columns])
    finite = np.isfinite(values)
    med = np.array([np.median(values[finite[:, j], j]) if finite[:, j].any() else 0.0
                    for j in range(values.shape[1])])
    inf = np.full(values.shape[1], np.inf)
    spread = _spread(values, -inf, inf)
    return (values - med) / np.where(spread > 0, spread, 1.0)


def _nearest(z: np.ndarray, k: int, chunk: int = 1024) -> np.ndarray:
    """Indices of the ``k`` nearest other rows of each row of ``z`` (itself when ``k == 0``)."""
    m = len(z)
    if k == 0:
        return np.arange(m)[:, None]
    sq = (z * z).sum(axis=1)
    out = np.empty((m, k), dtype=np.int64)
    for start in range(0, m, chunk):  # chunks bound memory at chunk x m distances
        stop = min(start + chunk, m)
        d2 = sq[start:stop, None] + sq[None, :] - 2.0 * z[start:stop] @ z.T
        d2[np.arange(stop - start), np.arange(start, stop)] = np.inf
        out[start:stop] = np.argpartition(d2, k - 1, axis=1)[:, :k]
    return out
