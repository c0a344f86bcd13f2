"""Read data files into a :class:`~stalwart.data.Dataset`: CSV, Parquet and NPZ.

Tables (CSV, Parquet) hold tabular or text data with an optional label column; NPZ archives
hold arrays (images N x C x H x W or N x H x W, a 2-D feature matrix, or a 1-D string array).
:func:`load_data` picks the reader from the file extension. Every reader names the file, what is
wrong with it and how to fix it when the data cannot be used.
"""

from __future__ import annotations

import difflib
import os
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stalwart.data.dataset import Dataset, infer_modality
from stalwart.data.schema import MODALITIES
from stalwart.errors import ConfigError, InputError, require

__all__ = ["load_csv", "load_parquet", "load_npz", "load_data", "SUPPORTED_EXTENSIONS", "file_kind", "labels_from_column"]

X_KEYS: tuple[str, ...] = ("x", "X", "images", "data")
Y_KEYS: tuple[str, ...] = ("y", "labels", "target")
_CSV_COMPRESSION = ("", ".gz", ".bz2", ".zip", ".xz", ".zst")
SUPPORTED_EXTENSIONS: dict[str, str] = {
    **{f".csv{c}": "csv" for c in _CSV_COMPRESSION},
    ".parquet": "parquet",
    ".pq": "parquet",
    ".npz": "npz",
}


# -- tables ----------------------------------------------------------------------------------------
def load_csv(path: str | Path, *, target: str | None = None, modality: str | None = None,
             kinds: Mapping[str, str] | None = None, immutable: Iterable[str] = (),
             bounds: Mapping[str, tuple[float, float]] | None = None,
             text_column: str | None = None) -> Dataset:
    """Load a CSV file (optionally compressed: ``.csv.gz``, ``.csv.zip``, ...) as a Dataset.

    Parameters
    ----------
    path : the file; the dataset's ``name`` is its stem.
    target : the label column, removed from the features; None for unlabelled data.
    modality : "tabular", "text" or None to infer: a table whose only feature is a string column
        is text, anything else is tabular. Images cannot be stored in a table; use NPZ.
    kinds, immutable, bounds : tabular schema overrides (see :meth:`Schema.infer`).
    text_column : the column holding the text; implies ``modality="text"``. Without it, text
        data uses the only string column besides ``target``.

    Returns
    -------
    Dataset
        tabular: ``x`` is a DataFrame of the feature columns; text: ``x`` is a list of strings
        (other feature columns are dropped and listed in ``meta["dropped_columns"]``).
    """
    p = _existing_file(path)
    try:
        df = pd.read_csv(p)
        # pandas renames a repeated header ("a", "a.1"); the raw first line tells the truth
        header = [str(v) for v in pd.read_csv(p, header=None, nrows=1, dtype=str).iloc[0].tolist()]
    except pd.errors.EmptyDataError:
        raise InputError(f"data file {str(p)!r} has no columns or rows; write a header line and data.") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(f"could not read {str(p)!r} as CSV: {exc}. Check the file's format and encoding.") from None
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        raise InputError(f"data file {str(p)!r} repeats the column name(s) {repeated[:10]} in its header; every "
                         "column needs its own name.")
    return _from_frame(df, p, target=target, modality=modality, kinds=kinds, immutable=immutable,
                       bounds=bounds, text_column=text_column)


def load_parquet(path: str | Path, *, target: str | None = None, modality: str | None = None,
                 kinds: Mapping[str, str] | None = None, immutable: Iterable[str] = (),
                 bounds: Mapping[str, tuple[float, float]] | None = None,
                 text_column: str | None = None) -> Dataset:
    """Load a Parquet file as a Dataset; the arguments are those of :func:`load_csv`.

    Needs ``pyarrow`` (``pip install 'stalwart[parquet]'``).
    """
    p = _existing_file(path)
    pa = require("pyarrow", "parquet")
    try:
        df = pd.read_parquet(p, engine="pyarrow")
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"could not read {str(p)!r} as Parquet: {exc}. Check that the file is whole and is "
                         "Parquet (written by DataFrame.to_parquet, for example), or use load_csv for CSV.") from None
    return _from_frame(df, p, target=target, modality=modality, kinds=kinds, immutable=immutable,
                       bounds=bounds, text_column=text_column)


def _from_frame(df: pd.DataFrame, path: Path, *, target: str | None, modality: str | None,
                kinds: Mapping[str, str] | None, immutable: Iterable[str],
                bounds: Mapping[str, tuple[float, float]] | None, text_column: str | None) -> Dataset:
    name = _stem(path)
    where = f"data file {str(path)!r}"
    if modality is not None and modality not in MODALITIES:
        raise ConfigError(f"modality must be one of {list(MODALITIES)} or None (infer); got {modality!r}")
    if modality == "image":
        raise InputError(
            f"{where} is a table; images cannot be read from CSV or Parquet. Save them with "
            "numpy.savez(path, x=images, y=labels) (images N x C x H x W) and load the .npz file."
        )
    if df.shape[1] == 0:
        raise InputError(f"{where} has no columns.")
    if len(df) == 0:
        raise InputError(f"{where} has a header but no rows; it needs at least one sample.")
    df = df.rename(columns=str) if not all(isinstance(c, str) for c in df.columns) else df
    columns = list(df.columns)
    y = None
    if target is not None:
        _require_column(target, columns, "target", where)
        y = labels_from_column(df[target], target, where)
        df = df.drop(columns=[target])
        if df.shape[1] == 0:
            raise InputError(f"{where} has only the target column {target!r}; there are no features.")
    meta: dict[str, Any] = {"source": str(path)}
    if text_column is not None:
        if modality == "tabular":
            raise ConfigError("text_column names a text column, so modality must be 'text' or None; "
                              "got 'tabular'. Drop one of the two.")
        if text_column == target:
            raise ConfigError(f"text_column and target are both {target!r}; the text and the labels "
                              "must be different columns.")
        _require_column(text_column, list(df.columns), "text_column", where)
        modality = "text"
    strings = [c for c in df.columns if pd.api.types.is_string_dtype(df[c])]
    if modality is None:
        modality = "text" if df.shape[1] == 1 and strings else "tabular"
    if modality == "text":
        if text_column is None:
            if len(strings) != 1:
                found = f"string columns {strings}" if strings else "no string column"
                raise InputError(
                    f"{where} has {found} besides the target; text data needs exactly one. "
                    "Name it with text_column=..."
                )
            text_column = strings[0]
        texts = _texts(df[text_column], text_column, where)
        meta.update(text_column=text_column, dropped_columns=[c for c in df.columns if c != text_column])
        ds = Dataset.from_arrays(texts, y, modality="text", name=name, target=target)
    else:
        ds = Dataset.from_arrays(df, y, modality="tabular", name=name, target=target, kinds=dict(kinds or {}),
                                 immutable=list(immutable), bounds=dict(bounds or {}))
    ds.meta.update(meta)
    return ds


def _require_column(column: str, columns: list[str], arg: str, where: str) -> None:
    if column in columns:
        return
    close = difflib.get_close_matches(str(column), columns, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise InputError(
        f"{arg} column {column!r} is not in {where}; available columns: {columns}.{hint}"
    )


def labels_from_column(s: pd.Series, column: str, where: str) -> np.ndarray:
    """The labels in column ``column`` of a table read from ``where``; a missing label is an error."""
    missing = np.flatnonzero(s.isna().to_numpy())
    if missing.size:
        raise InputError(
            f"target column {column!r} in {where} has {missing.size} missing label(s) (first rows: "
            f"{missing[:5].tolist()}); drop or fill those rows."
        )
    if pd.api.types.is_bool_dtype(s):
        return s.to_numpy(dtype=bool)
    if pd.api.types.is_integer_dtype(s):
        return s.to_numpy(dtype=np.int64)
    if pd.api.types.is_float_dtype(s):
        return s.to_numpy(dtype=np.float64)
    # strings, categories, mixed objects: labels compare as text
    return np.asarray(s.astype(str).tolist(), dtype=str)


def _texts(s: pd.Series, column: str, where: str) -> list[str]:
    if not pd.api.types.is_string_dtype(s):
        raise InputError(
            f"text column {column!r} in {where} holds {s.dtype} values, not strings; name the text "
            "column with text_column=..., or load the table as tabular."
        )
    missing = np.flatnonzero(s.isna().to_numpy())
    if missing.size:
        raise InputError(
            f"text column {column!r} in {where} has {missing.size} empty cell(s) (first rows: "
            f"{missing[:5].tolist()}); drop or fill those rows."
        )
    return [str(t) for t in s.tolist()]


# -- arrays ----------------------------------------------------------------------------------------
def load_npz(path: str | Path, *, x_key: str | None = None, y_key: str | None = None,
             modality: str | None = None, value_range: tuple[float, float] | None = None) -> Dataset:
    """Load inputs (and labels) from a NumPy ``.npz`` archive.

    Parameters
    ----------
    path : the archive (written by ``numpy.savez``); the dataset's ``name`` is its stem.
    x_key : the inputs' key; by default the first of ``x``, ``X``, ``images``, ``data`` present,
        or the only array when the archive holds just one.
    y_key : the labels' key; by default the first of ``y``, ``labels``, ``target`` present, else
        no labels.
    modality : "image", "tabular", "text" or None to infer (3-D/4-D arrays are images, 2-D
        tabular, 1-D strings text).
    value_range : the images' declared (low, high); guessed from the values when None
        ((0, 1) or (0, 255) when they fit).

    Pickled (object) arrays are refused because loading them can run code; save text as a
    string array, ``numpy.array(texts, dtype=str)``.
    """
    p = _existing_file(path)
    where = f"data file {str(p)!r}"
    if modality is not None and modality not in MODALITIES:
        raise ConfigError(f"modality must be one of {list(MODALITIES)} or None (infer); got {modality!r}")
    if x_key is not None and x_key == y_key:
        raise ConfigError(f"x_key and y_key are both {x_key!r}; inputs and labels must be different arrays.")
    try:
        # our own handle, so the file is closed even when numpy fails half-way
        with open(p, "rb") as fh:
            archive = np.load(fh, allow_pickle=False)
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise InputError(f"{where} holds a single array, not an .npz archive; save inputs with "
                                 "numpy.savez(path, x=inputs, y=labels).")
            with archive:
                keys = list(archive.files)
                if not keys:
                    raise InputError(f"{where} contains no arrays; save inputs with numpy.savez(path, x=..., y=...).")
                x_key = _pick_key(x_key, X_KEYS, keys, "x_key", where, fallback_single=True)
                y_key = _pick_key(y_key, Y_KEYS, keys, "y_key", where, exclude=x_key)
                x = archive[x_key]
                y = None if y_key is None else archive[y_key]
    except InputError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise InputError(f"could not read {str(p)!r} as an .npz archive: {exc}") from None
    except ValueError as exc:
        if "allow_pickle" not in str(exc):
            raise InputError(f"could not read {str(p)!r} as an .npz archive: {exc}") from None
        raise InputError(
            f"{where} holds object (pickled) arrays, which stalwart does not load because unpickling "
            "can run code; store text as numpy.array(texts, dtype=str) and numbers as numeric arrays."
        ) from None
    modality = modality or infer_modality(x)
    if value_range is not None and modality != "image":
        raise ConfigError(f"value_range applies to images only; the data is {modality}. Drop value_range "
                          "or pass modality='image'.")
    if modality == "text" and x.dtype.kind == "U":
        x = x.tolist()  # plain Python strings, not numpy.str_
    ds = Dataset.from_arrays(x, y, modality=modality, name=_stem(p), target=y_key, value_range=value_range)
    ds.meta.update(source=str(p), x_key=x_key, y_key=y_key)
    return ds


def _pick_key(given: str | None, defaults: tuple[str, ...], keys: list[str], arg: str, where: str,
              fallback_single: bool = False, exclude: str | None = None) -> str | None:
    if given is not None:
        if given not in keys:
            raise InputError(f"{arg} {given!r} is not in {where}; its arrays are {keys}.")
        return given
    for k in defaults:
        if k in keys and k != exclude:
            return k
    if not fallback_single:
        return None
    if len(keys) == 1:
        return keys[0]
    raise InputError(
        f"{where} has no array named {' / '.join(defaults)}; its arrays are {keys}. Name the inputs "
        "with x_key=... (and the labels with y_key=...)."
    )


# -- dispatch --------------------------------------------------------------------------------------
def load_data(path: str | Path, *, target: str | None = None, modality: str | None = None,
              **kw: Any) -> Dataset:
    """Load a data file, choosing the reader from its extension.

    ``.csv`` (also ``.csv.gz`` and other compressed CSV) -> :func:`load_csv`;
    ``.parquet`` / ``.pq`` -> :func:`load_parquet`; ``.npz`` -> :func:`load_npz`, where
    ``target`` names the labels' array (the same as ``y_key``). Other keyword arguments go to the
    reader.

    Examples
    --------
    >>> data = load_data("train.csv", target="label")  # doctest: +SKIP
    """
    if not isinstance(path, (str, os.PathLike)):
        raise InputError(f"load_data(path=...) must be a file path (str or pathlib.Path); got {type(path).__name__}. "
                         "For arrays in memory, use Dataset.from_arrays(x, y).")
    p = Path(path)
    kind = file_kind(p)
    if kind is None:
        raise InputError(
            f"cannot tell the format of {str(p)!r} from its extension {''.join(p.suffixes) or '(none)'!r}; "
            f"supported: {', '.join(SUPPORTED_EXTENSIONS)}. Rename the file or call a reader directly."
        )
    if kind == "npz":
        y_key = kw.pop("y_key", None)
        if target is not None and y_key is not None and target != y_key:
            raise ConfigError(f"target ({target!r}) and y_key ({y_key!r}) both name the labels of an "
                              ".npz file but differ; pass one of them.")
        return load_npz(p, y_key=target if target is not None else y_key, modality=modality, **kw)
    reader = load_csv if kind == "csv" else load_parquet
    return reader(p, target=target, modality=modality, **kw)


def file_kind(p: Path) -> str | None:
    """The format of ``p`` by its extension ("csv", "parquet", "npz"), None when unsupported."""
    name = p.name.lower()
    for ext, kind in sorted(SUPPORTED_EXTENSIONS.items(), key=lambda kv: -len(kv[0])):
        if name.endswith(ext) and len(name) > len(ext):
            return kind
    return None


def _stem(p: Path) -> str:
    name = p.name
    for ext in sorted(SUPPORTED_EXTENSIONS, key=len, reverse=True):
        if name.lower().endswith(ext) and len(name) > len(ext):
            return name[: -len(ext)]
    return p.stem


def _existing_file(path: str | Path) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise InputError(f"path must be a file path (str or pathlib.Path); got {type(path).__name__}.")
    p = Path(path).expanduser()
    if not p.exists():
        raise InputError(f"data file {str(p)!r} does not exist; check the path (relative paths start "
                         f"at {str(Path.cwd())!r}).")
    if not p.is_file():
        raise InputError(f"data path {str(p)!r} is not a file; pass a .csv, .parquet or .npz file.")
    if p.stat().st_size == 0:
        raise InputError(f"data file {str(p)!r} is empty (0 bytes).")
    return p
