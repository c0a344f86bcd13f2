"""Schema: what valid data looks like, per modality.

Tabular columns have a kind (numeric, integer, categorical, boolean), a valid range, the
observed categories and whether they may change. Images declare their value range and
N x C x H x W layout. Text is a list of strings.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd

from stalwart._validation import check_choice, check_param
from stalwart.errors import ConfigError, InputError

Modality = Literal["tabular", "image", "text"]
ColumnKind = Literal["numeric", "integer", "categorical", "boolean"]
MODALITIES: tuple[str, ...] = ("tabular", "image", "text")
COLUMN_KINDS: tuple[str, ...] = ("numeric", "integer", "categorical", "boolean")

#: an integer column with at most this many distinct values and no order is *not* assumed
#: categorical; kinds are only inferred from dtypes, never guessed from cardinality.


@dataclass(frozen=True)
class Column:
    """One tabular column: its kind, valid range (numeric kinds), categories and mutability."""

    name: str
    kind: ColumnKind
    lower: float | None = None
    upper: float | None = None
    categories: tuple[Any, ...] = ()
    mutable: bool = True

    def __post_init__(self) -> None:
        check_choice("Column", "kind", self.kind, COLUMN_KINDS)
        for arg in ("lower", "upper"):
            value = getattr(self, arg)
            check_param("Column", arg, value, value is None or (
                isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
                and not np.isnan(value)), "a number or None")
        if self.lower is not None and self.upper is not None and self.lower > self.upper:
            raise ConfigError(f"Column(lower=..., upper=...) must satisfy lower <= upper; got lower={self.lower!r}, "
                              f"upper={self.upper!r}. Swap them or pass the column's valid range.")

    @property
    def is_numeric(self) -> bool:
        return self.kind in ("numeric", "integer")

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "kind": self.kind, "mutable": self.mutable}
        if self.is_numeric:
            d["lower"], d["upper"] = self.lower, self.upper
        if self.categories:
            d["categories"] = [c.item() if hasattr(c, "item") else c for c in self.categories]
        return d


@dataclass(frozen=True)
class Schema:
    """Describes valid inputs for one modality. Build tabular ones with :meth:`infer`."""

    modality: Modality
    columns: tuple[Column, ...] = ()
    value_range: tuple[float, float] | None = None  # images
    shape: tuple[int, ...] | None = None  # images: (C, H, W)
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.modality not in MODALITIES:
            raise ConfigError(f"Schema(modality=...) must be one of {list(MODALITIES)}; got {self.modality!r}")

    # -- tabular -------------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise InputError(f"unknown column {name!r}; the data has columns {self.names}")

    @property
    def mutable_mask(self) -> np.ndarray:
        """Boolean mask over columns: True where the column may be perturbed."""
        return np.array([c.mutable for c in self.columns], dtype=bool)

    def numeric_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-column lower/upper arrays (+-inf where none); for attacks on numeric data.

        Boolean columns are bounded by [0, 1], the range of their numeric form.
        """
        lo = np.array([0.0 if c.kind == "boolean" else -np.inf if c.lower is None else c.lower
                       for c in self.columns], dtype=float)
        hi = np.array([1.0 if c.kind == "boolean" else np.inf if c.upper is None else c.upper
                       for c in self.columns], dtype=float)
        return lo, hi

    @classmethod
    def infer(cls, x: pd.DataFrame | np.ndarray, *, kinds: Mapping[str, str] | None = None,
              immutable: Iterable[str] = (), bounds: Mapping[str, tuple[float, float]] | None = None
              ) -> Schema:
        """Infer a tabular schema from data.

        Kinds come from dtypes: bool -> boolean, integer -> integer, float -> numeric, anything
        else (object, string, category) -> categorical. Ranges default to the observed min/max.
        ``kinds``, ``immutable`` and ``bounds`` override what was inferred; each name must exist.
        """
        df = as_frame(x)
        kinds = dict(kinds or {})
        bounds = dict(bounds or {})
        immutable = list(immutable)
        duplicated = sorted({str(c) for c in df.columns[df.columns.duplicated()]})
        if duplicated:
            raise InputError(f"column names must be unique; {duplicated} appear more than once. Rename them.")
        for arg, names in (("kinds", kinds), ("immutable", immutable), ("bounds", bounds)):
            unknown = [n for n in names if n not in df.columns]
            if unknown:
                raise InputError(
                    f"{arg} names unknown column(s) {unknown}; the data has columns {list(df.columns)}"
                )
        columns = []
        for name in df.columns:
            s = df[name]
            kind = kinds.get(name) or _infer_kind(s)
            if kind not in COLUMN_KINDS:
                raise ConfigError(f"kinds[{name!r}] must be one of {list(COLUMN_KINDS)}; got {kind!r}")
            lower = upper = None
            categories: tuple[Any, ...] = ()
            if name in bounds and kind not in ("numeric", "integer"):
                raise ConfigError(
                    f"bounds[{name!r}] is set but column {name!r} is {kind}; bounds apply only to "
                    "numeric or integer columns."
                )
            if kind in ("numeric", "integer"):
                values = pd.to_numeric(s, errors="coerce")
                if name in bounds:
                    lower, upper = _check_bound_pair(name, bounds[name])
                elif values.notna().any():
                    lower, upper = float(values.min()), float(values.max())
            else:
                categories = _sorted_categories(pd.unique(s.dropna()).tolist())
            columns.append(Column(str(name), kind, lower, upper, categories, name not in immutable))
        return cls("tabular", tuple(columns))

    def with_immutable(self, names: Iterable[str]) -> Schema:
        names = set(names)
        for n in names:
            self.column(n)
        return replace(self, columns=tuple(replace(c, mutable=c.mutable and c.name not in names)
                                           for c in self.columns))

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"modality": self.modality}
        if self.columns:
            d["columns"] = [c.to_dict() for c in self.columns]
        if self.value_range is not None:
            d["value_range"] = list(self.value_range)
        if self.shape is not None:
            d["shape"] = list(self.shape)
        return d


def _check_bound_pair(name: Any, pair: Any) -> tuple[float, float]:
    try:
        lower, upper = (float(v) for v in pair)
    except (TypeError, ValueError):
        raise ConfigError(f"bounds[{name!r}] must be a pair of numbers (lower, upper); got {pair!r}") from None
    if np.isnan(lower) or np.isnan(upper) or lower > upper:
        raise ConfigError(f"bounds[{name!r}] must satisfy lower <= upper (no NaN); got {pair!r}")
    return lower, upper


def _sorted_categories(values: list[Any]) -> tuple[Any, ...]:
    # natural order when the values compare (1 < 2 < 10), by text otherwise (mixed types)
    try:
        return tuple(sorted(values))
    except TypeError:
        return tuple(sorted(values, key=str))


def _infer_kind(s: pd.Series) -> ColumnKind:
    if pd.api.types.is_bool_dtype(s):
        return "boolean"
    if pd.api.types.is_integer_dtype(s):
        return "integer"
    if pd.api.types.is_float_dtype(s):
        return "numeric"
    return "categorical"


def as_frame(x: Any) -> pd.DataFrame:
    """A DataFrame view of tabular data; arrays get columns ``x0, x1, ...``."""
    if isinstance(x, pd.DataFrame):
        return x
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise InputError(f"tabular data must be 2-D (n_samples x n_features); got shape {arr.shape}")
    return pd.DataFrame(arr, columns=[f"x{i}" for i in range(arr.shape[1])])
