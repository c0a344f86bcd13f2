"""Dataset: inputs, optional labels, modality and schema, validated once on construction."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from stalwart._validation import check_array
from stalwart.data.schema import MODALITIES, Schema, as_frame
from stalwart.errors import ConfigError, InputError


@dataclass(frozen=True)
class Dataset:
    """Inputs ``x`` with labels ``y`` (or None), a modality and a schema.

    - tabular: ``x`` is a :class:`pandas.DataFrame` (arrays are converted, columns ``x0..``)
    - image: ``x`` is a float array N x C x H x W (N x H x W gets one channel) in
      ``schema.value_range``
    - text: ``x`` is a list of strings

    Use :meth:`from_arrays` (or the loaders) to build one with an inferred schema.
    """

    x: Any
    y: np.ndarray | None
    modality: str
    schema: Schema
    name: str = "data"
    target: str | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.modality not in MODALITIES:
            raise ConfigError(f"Dataset(modality=...) must be one of {list(MODALITIES)}; got {self.modality!r}")
        if len(self.x) == 0:
            raise InputError(f"dataset {self.name!r} is empty; pass at least one sample.")
        if self.y is not None and len(self.y) != len(self.x):
            raise InputError(f"dataset {self.name!r} has {len(self.x)} inputs but {len(self.y)} labels; they must match.")

    @classmethod
    def from_arrays(cls, x: Any, y: Any = None, *, modality: str | None = None, name: str = "data",
                    target: str | None = None, value_range: tuple[float, float] | None = None,
                    kinds: dict[str, str] | None = None, immutable: tuple[str, ...] | list[str] = (),
                    bounds: dict[str, tuple[float, float]] | None = None) -> Dataset:
        """Build a Dataset, inferring modality (when not given) and schema.

        Modality: a list of strings is text, a 3-D or 4-D array is an image batch, anything
        2-D is tabular.
        """
        modality = modality or infer_modality(x)
        yy = None if y is None else np.asarray(y)
        if yy is not None and yy.ndim != 1:
            raise InputError(f"y must be one-dimensional (one label per sample); got shape {yy.shape}")
        if modality == "text":
            texts = _as_texts(x)
            return cls(texts, yy, "text", Schema("text"), name, target)
        if modality == "image":
            imgs = check_array(x, "x", ndim=(3, 4), dtype=np.float32)
            if imgs.ndim == 3:
                imgs = imgs[:, None]
            if imgs.shape[1] not in (1, 3, 4):
                raise InputError(
                    f"images must be N x C x H x W with 1, 3 or 4 channels; got shape {imgs.shape}. "
                    "If they are N x H x W x C, transpose with x.transpose(0, 3, 1, 2)."
                )
            lo, hi = _guess_range(imgs) if value_range is None else _check_value_range(value_range)
            if imgs.min() < lo - 1e-6 or imgs.max() > hi + 1e-6:
                raise InputError(
                    f"image values span [{imgs.min():.4g}, {imgs.max():.4g}] outside value_range "
                    f"({lo}, {hi}); rescale the images or declare the right value_range."
                )
            schema = Schema("image", value_range=(float(lo), float(hi)), shape=tuple(imgs.shape[1:]))
            return cls(imgs, yy, "image", schema, name, target)
        if modality != "tabular":
            raise ConfigError(f"modality must be one of {list(MODALITIES)}; got {modality!r}")
        df = as_frame(_as_table(x)).reset_index(drop=True)
        if not all(isinstance(c, str) for c in df.columns):
            # the schema names columns by string; keep the frame's names identical to it
            df = df.rename(columns=str)
        if df.shape[1] == 0:
            raise InputError("tabular data has no feature columns.")
        schema = Schema.infer(df, kinds=kinds, immutable=immutable, bounds=bounds)
        # an array has no column names: stalwart's x0, x1, ... are positions, not names to match
        meta = {} if isinstance(x, pd.DataFrame) else {"unnamed_columns": True}
        return cls(df, yy, "tabular", schema, name, target, meta)

    # -- convenience ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.x)

    def subset(self, index: Any) -> Dataset:
        """Rows ``index`` (an int array, slice or boolean mask), schema unchanged."""
        try:
            idx = np.atleast_1d(np.arange(len(self))[index])
        except (IndexError, TypeError, ValueError) as exc:
            raise InputError(
                f"Dataset.subset(index=...) must be integer positions in 0..{len(self) - 1}, a slice or a boolean "
                f"mask of length {len(self)}; got {_short(index)} ({exc})."
            ) from None
        if isinstance(self.x, pd.DataFrame):
            x = self.x.iloc[idx].reset_index(drop=True)
        elif isinstance(self.x, list):
            x = [self.x[i] for i in idx]
        else:
            x = self.x[idx]
        y = None if self.y is None else self.y[idx]
        meta = dict(self.meta)
        if isinstance(meta.get("sensitive"), pd.DataFrame):  # the side table follows the rows
            meta["sensitive"] = meta["sensitive"].iloc[idx].reset_index(drop=True)
        return Dataset(x, y, self.modality, self.schema, self.name, self.target, meta)

    def with_x(self, x: Any) -> Dataset:
        """A copy with new inputs of the same length (e.g. perturbed)."""
        return Dataset(x, self.y, self.modality, self.schema, self.name, self.target, dict(self.meta))

    def select_columns(self, names: list[str]) -> Dataset:
        """The same rows with tabular columns ``names`` (all of them, in this order); schema follows."""
        if self.modality != "tabular":
            raise InputError(f"select_columns applies to tabular data; this dataset is {self.modality}.")
        cols = {c.name: c for c in self.schema.columns}
        missing = [n for n in names if n not in cols]
        if missing:
            raise InputError(f"columns {missing} are not in the data; pick from its columns {list(cols)}.")
        schema = replace(self.schema, columns=tuple(cols[n] for n in names))
        return Dataset(self.x[list(names)], self.y, self.modality, schema, self.name, self.target, dict(self.meta))

    def with_sensitive(self, names: list[str]) -> Dataset:
        """The table with columns ``names`` moved out of the inputs into a side table
        (``meta["sensitive"]``) that group checks read and models never see: for sensitive
        attributes the model is not trained on."""
        if self.modality != "tabular" or not isinstance(self.x, pd.DataFrame):
            raise InputError(f"with_sensitive applies to tables with named columns; this dataset is {self.modality}.")
        missing = [n for n in names if n not in self.x.columns]
        if missing:
            raise InputError(f"sensitive columns {missing} are not in the data; pick from {list(self.x.columns)[:20]}.")
        keep = [c.name for c in self.schema.columns if c.name not in names]
        if not keep:
            raise InputError("every column would become sensitive; keep at least one input column for the model.")
        out = self.select_columns(keep)
        side = self.x[list(names)].reset_index(drop=True)
        previous = self.meta.get("sensitive")
        if isinstance(previous, pd.DataFrame):
            side = pd.concat([previous.reset_index(drop=True), side], axis=1)
        out.meta["sensitive"] = side
        return out

    def sensitive_column(self, name: str) -> pd.Series:
        """Column ``name`` from the sensitive side table, else from the inputs."""
        side = self.meta.get("sensitive")
        if isinstance(side, pd.DataFrame) and name in side.columns:
            return side[name]
        if isinstance(self.x, pd.DataFrame) and name in self.x.columns:
            return self.x[name]
        raise InputError(f"column {name!r} is neither an input nor a sensitive column of the data.")

    def rename_columns(self, names: list[str]) -> Dataset:
        """The same table with its columns named ``names``, by position (one name per column)."""
        if self.modality != "tabular" or len(names) != len(self.schema.columns):
            raise InputError(f"rename_columns needs one name per column ({len(self.schema.columns)}); got "
                             f"{len(names)}.")
        schema = replace(self.schema, columns=tuple(replace(c, name=str(n)) for c, n in zip(self.schema.columns,
                                                                                             names)))
        meta = {k: v for k, v in self.meta.items() if k != "unnamed_columns"}
        return Dataset(self.x.set_axis(list(names), axis=1), self.y, self.modality, schema, self.name, self.target,
                       meta)

    def sample(self, n: int, seed: int | np.random.Generator = 0, stratify: bool = True) -> Dataset:
        """At most ``n`` rows, drawn without replacement (stratified by label when possible)."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ConfigError(f"Dataset.sample(n=...) must be an integer >= 1; got {n!r}")
        ok = isinstance(seed, np.random.Generator) or (
            isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and seed >= 0)
        if not ok:
            raise ConfigError(f"Dataset.sample(seed=...) must be a non-negative integer or a numpy Generator; "
                              f"got {seed!r}")
        if n >= len(self):
            return self
        rng = np.random.default_rng(seed)
        if stratify and self.y is not None:
            _, inverse = np.unique(self.y, return_inverse=True)
            take = _stratified_counts(np.bincount(inverse.ravel()), int(n))
            picks = [rng.choice(np.flatnonzero(inverse == k), size=t, replace=False)
                     for k, t in enumerate(take) if t]
            idx = np.sort(np.concatenate(picks))
        else:
            idx = np.sort(rng.choice(len(self), size=n, replace=False))
        return self.subset(idx)

    def numeric_x(self) -> np.ndarray:
        """Inputs as a float array (tabular data must be all numeric/boolean)."""
        if self.modality == "text":
            raise InputError("text data has no numeric form; use a text attack or perturbation.")
        if isinstance(self.x, pd.DataFrame):
            cat = [c.name for c in self.schema.columns if c.kind == "categorical"]
            if cat:
                raise InputError(
                    f"columns {cat[:5]} are categorical; numeric attacks need numeric features. "
                    "Use the schema-aware tabular search, or encode them inside the model pipeline."
                )
            return check_array(self.x.to_numpy(dtype=float), "x", ndim=2, allow_nan=True)
        return np.asarray(self.x)

    def fingerprint(self) -> str:
        """A short hash of inputs and labels (stable across runs and machines)."""
        h = hashlib.sha256()
        if isinstance(self.x, pd.DataFrame):
            h.update(pd.util.hash_pandas_object(self.x, index=False).to_numpy().tobytes())
            h.update(",".join(map(str, self.x.columns)).encode())
        elif isinstance(self.x, list):
            h.update("\x00".join(self.x).encode())
        else:
            arr = np.ascontiguousarray(self.x)
            h.update(str(arr.shape).encode() + arr.tobytes())
        if self.y is not None:
            h.update(np.asarray(self.y).astype(str).astype("U").tobytes())
        return h.hexdigest()[:16]

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "modality": self.modality, "n_samples": len(self),
                             "fingerprint": self.fingerprint(), "schema": self.schema.to_dict()}
        if self.target:
            d["target"] = self.target
        if self.meta.get("column_matching"):
            d["column_matching"] = self.meta["column_matching"]
        if self.y is not None:
            values, counts = np.unique(self.y, return_counts=True)
            d["labels"] = {str(v): int(c) for v, c in zip(values.tolist(), counts.tolist())}
        return d


def infer_modality(x: Any) -> str:
    if isinstance(x, pd.DataFrame):
        return "tabular"
    if isinstance(x, (list, tuple)) and x and isinstance(x[0], str):
        return "text"
    arr = _asarray(x)
    if arr.dtype.kind in "USO" and arr.ndim == 1:
        return "text"
    if arr.ndim in (3, 4):
        return "image"
    if arr.ndim == 2:
        return "tabular"
    hint = " A single feature? Pass x.reshape(-1, 1)." if arr.ndim == 1 else ""
    raise InputError(
        f"cannot tell the modality of data with shape {arr.shape}; pass modality='tabular', "
        f"'image' or 'text'.{hint}"
    )


def _asarray(x: Any) -> np.ndarray:
    """``np.asarray(x)``, with ragged nested lists refused in words instead of numpy's error."""
    try:
        return np.asarray(x)
    except ValueError as exc:
        raise InputError(
            f"x has samples of different lengths (a ragged nested list: {exc}); every sample needs the same "
            "number of features. Pad or drop the short rows, or pass a pandas DataFrame."
        ) from None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _as_table(x: Any) -> Any:
    """Tabular input ready for :func:`as_frame`: ragged rows refused, object arrays typed per column.

    A numpy object array would otherwise make every column categorical (numbers included), and
    entries such as dicts or lists would fail deep inside schema inference.
    """
    if isinstance(x, pd.DataFrame):
        return x
    arr = _asarray(x)
    if arr.dtype != object or arr.ndim != 2:
        return arr
    df = pd.DataFrame(arr, columns=[f"x{i}" for i in range(arr.shape[1])]).infer_objects()
    scalar = (str, bytes, bool, int, float, complex, np.generic)
    for name in [c for c in df.columns if df[c].dtype.kind == "O"]:
        odd = df[name].map(lambda v: v is not None and not isinstance(v, scalar))
        if odd.any():
            row = int(np.flatnonzero(odd.to_numpy())[0])
            raise InputError(
                f"x is an object array whose column {name} holds {type(df[name].iloc[row]).__name__} values "
                f"(first at row {row}); tabular features must be numbers, strings or booleans. Convert them, or "
                "pass a pandas DataFrame with typed columns."
            )
    return df


def _as_texts(x: Any) -> list[str]:
    if isinstance(x, (str, bytes)):
        raise InputError(
            f"text data must be a list of strings (one per sample); got a single {type(x).__name__} "
            f"{_short(x)}. Pass a list of strings, e.g. [text]."
        )
    try:
        texts = list(x)
    except TypeError:
        raise InputError(f"text data must be a list of strings; got {type(x).__name__}.") from None
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise InputError(f"text data must be strings; entries {bad[:5]} are not (e.g. {texts[bad[0]]!r}).")
    return texts


def _stratified_counts(counts: np.ndarray, n: int) -> np.ndarray:
    """Per-class sample sizes summing to exactly ``n``, proportional to ``counts``.

    Largest-remainder rounding; every class gets at least one sample when ``n`` allows it.
    """
    quota = n * counts / counts.sum()
    take = np.floor(quota).astype(np.int64)
    if n >= len(counts):
        take = np.maximum(take, 1)
    short = n - int(take.sum())
    # hand out (or take back) one sample at a time, ordered by the rounding error; the loops run
    # over classes, never over samples, and end because 1 <= n < counts.sum()
    while short > 0:
        for k in np.argsort(take - quota, kind="stable"):
            if short and take[k] < counts[k]:
                take[k] += 1
                short -= 1
    while short < 0:
        for k in np.argsort(quota - take, kind="stable"):
            if short and take[k] > 1:
                take[k] -= 1
                short += 1
    return take


def _check_value_range(value_range: Any) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value_range)
    except (TypeError, ValueError):
        raise ConfigError(f"value_range must be a pair (low, high); got {value_range!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ConfigError(f"value_range must be finite with low < high; got {value_range!r}")
    return lo, hi


def _guess_range(imgs: np.ndarray) -> tuple[float, float]:
    hi = float(imgs.max())
    lo = float(imgs.min())
    if lo >= 0 and hi <= 1:
        return (0.0, 1.0)
    if lo >= 0 and hi <= 255:
        return (0.0, 255.0)
    return (lo, hi)
