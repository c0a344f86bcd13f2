"""Is this data fit for this model? Checked once, before any work.

:func:`check_compatible` is the one door every command and check goes through:

- **columns by name**: wherever the data has column names and the model declares its own
  (``feature_names_in_`` of scikit-learn models), the data's columns are matched to the model's by
  name and put in the model's order. A missing, extra, renamed or duplicated column is refused
  with the differing names listed (a name that differs only in whitespace, case or Unicode form
  is pointed out). Without declared names, columns are matched by position and the dataset
  records that (``meta["column_matching"]``) so the report can say so.
- **values**: infinite values are refused; missing values are allowed only when the model
  answers for them.
- **a probe**: a few rows go through the model, so a wrong shape, a text model given a table or a
  model that returns NaN is refused up front with the shapes named, not after minutes of work.
"""

from __future__ import annotations

import dataclasses
import unicodedata
from typing import Any

import numpy as np
import pandas as pd

from stalwart.errors import InputError, ModelError, StalwartError
from stalwart.models.base import Model, short_error

__all__ = ["check_compatible", "align_columns", "describe_data", "PROBE_ROWS"]

#: rows sent through the model by the probe
PROBE_ROWS = 8


def _loose(name: str) -> str:
    """A name with whitespace, case and Unicode form folded away (to explain near misses)."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


def _show(names: list[str], limit: int = 10) -> str:
    shown = ", ".join(ascii(n) if not n.isascii() else repr(n) for n in names[:limit])
    return f"[{shown}{', ...' if len(names) > limit else ''}]"


def align_columns(data: Any, names: list[str], *, where: str = "the model", extra: str = "refuse") -> Any:
    """``data`` (a tabular Dataset) with exactly the columns ``names``, in that order.

    Raises :class:`~stalwart.errors.InputError` listing the missing and the unexpected columns,
    and pointing out names that differ only in whitespace, case or Unicode normalisation.
    ``extra="ignore"`` drops columns beyond ``names`` instead of refusing them (for checks that
    test every column of the data but feed the model only its own, such as drift).
    """
    have = [str(c) for c in data.x.columns]
    dup = sorted({c for c in have if have.count(c) > 1})
    if dup:
        raise InputError(f"the data has duplicate column names {_show(dup)}; every column needs its own name.")
    missing = [n for n in names if n not in have]
    unexpected = [c for c in have if c not in names] if extra == "refuse" or missing else []
    if missing or unexpected:
        hints = []
        for m in missing:
            near = [e for e in unexpected if _loose(e) == _loose(m)]
            if near:
                hints.append(f"{ascii(near[0])} in the data differs from {ascii(m)} only in whitespace, case or "
                             "Unicode form")
        parts = [f"missing {_show(missing)}" if missing else "",
                 f"unexpected {_show(unexpected)}" if unexpected else ""]
        raise InputError(
            f"the data's columns do not match the columns {where} was fitted on: "
            f"{'; '.join(p for p in parts if p)}"
            + (f" ({'; '.join(hints)})" if hints else "")
            + f". Pass a table with exactly these {len(names)} columns, in any order: {_show(names, 20)}."
        )
    if have == list(names):
        return _matched(data, "by name")
    return _matched(data.select_columns(list(names)), "by name (reordered to the model's order)")


def _matched(data: Any, how: str) -> Any:
    """``data`` recording how its columns were matched, without touching the caller's dataset."""
    if data.meta.get("column_matching") == how:
        return data
    return dataclasses.replace(data, meta={**data.meta, "column_matching": how})


def _name_by_position(data: Any, model: Model) -> Any:
    """An array's columns (no names of their own) given the model's names, by position."""
    names = list(model.feature_names or [])
    if data.x.shape[1] != len(names):
        raise InputError(f"the data has {data.x.shape[1]} unnamed columns but {_describe_model(model)}; pass the "
                         f"same {len(names)} features in the model's order, or a table with the column names "
                         f"{_show(names, 20)}.")
    return _matched(data.rename_columns(names), "by position (the data has no column names)")


def describe_data(data: Any) -> str:
    """A short description of a dataset's form, for error messages."""
    if data.modality == "text":
        return f"text ({len(data)} sentences)"
    if data.modality == "image":
        return f"images of shape {tuple(np.shape(data.x)[1:])} (C x H x W), {len(data)} of them"
    return f"a table of {len(data)} rows x {data.x.shape[1]} columns"


def _describe_model(model: Model) -> str:
    shape = getattr(model, "input_shape", None)
    if model.feature_names is not None:
        return f"{model.name} takes {len(model.feature_names)} named columns"
    if model.n_features is not None:
        return f"{model.name} takes {model.n_features} features per sample"
    if shape is not None:
        return f"{model.name} takes samples of shape {tuple(shape)}"
    return model.name


def _check_finite_values(data: Any) -> None:
    if data.modality != "tabular":
        return
    numeric = data.x.select_dtypes(include=[np.number])
    if numeric.shape[1] == 0:
        return
    values = numeric.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = np.isinf(values)
    if bad.any():
        cols = [str(c) for c, hit in zip(numeric.columns, bad.any(axis=0)) if hit]
        rows = np.flatnonzero(bad.any(axis=1))
        raise InputError(f"the data has infinite values in columns {_show(cols)} ({rows.size} row(s), first: "
                         f"{rows[:5].tolist()}); replace them with real values or drop those rows.")


def _missing_rows(data: Any) -> tuple[np.ndarray, list[str]]:
    if data.modality != "tabular":
        return np.array([], dtype=np.int64), []
    na = data.x.isna()
    return np.flatnonzero(na.any(axis=1).to_numpy()), [str(c) for c in na.columns[na.any(axis=0).to_numpy()]]


def _probe(model: Model, data: Any, rows: np.ndarray, what: str) -> None:
    sub = data.subset(rows)
    try:
        model.predict(sub.x)
    except StalwartError as exc:
        raise type(exc)(f"the model cannot take {what}: {exc} (the data: {describe_data(data)}; "
                        f"{_describe_model(model)})") from None
    except Exception as exc:  # noqa: BLE001 - any failure of the user's model on this data is an input problem
        raise ModelError(f"the model cannot take {what}: {short_error(exc)} (the data: {describe_data(data)}; "
                         f"{_describe_model(model)}). Pass data of the form the model was trained on.") from None


def _check_form(model: Model, data: Any) -> None:
    """Refuse the obvious mismatches with a plain sentence, before asking the model."""
    tabular_model = model.feature_names is not None or model.n_features is not None
    if data.modality == "text" and tabular_model:
        raise InputError(f"the data is text but {_describe_model(model)} (a table); pass the table the model "
                         "was trained on, or a text model.")
    if data.modality == "tabular" and model.feature_names is None and model.n_features is not None \
            and data.x.shape[1] != model.n_features:
        raise InputError(f"the data has {data.x.shape[1]} columns but {_describe_model(model)}; pass the same "
                         "columns the model was trained on.")
    if model.task == "regression" and data.y is not None and np.asarray(data.y).dtype.kind not in "iufb":
        raise InputError(f"{model.name} is a regression model but the labels are not numbers "
                         f"(e.g. {np.asarray(data.y)[0]!r}); pass numeric targets.")


def check_compatible(model: Model, data: Any, *, probe: bool = True, extra: str = "refuse") -> Any:
    """``data`` ready for ``model``: columns matched by name, values checked, one probe batch run.

    Parameters
    ----------
    model : Model
        A wrapped model.
    data : Dataset
    probe : bool, default True
        Send up to :data:`PROBE_ROWS` rows through the model (and up to as many rows with missing
        values), turning any failure into a :class:`~stalwart.errors.StalwartError` that names the
        data's and the model's shapes.
    extra : {"refuse", "ignore"}, default "refuse"
        What to do with columns the model does not declare (see :func:`align_columns`).

    Returns
    -------
    Dataset
        ``data`` itself, or a copy with its columns in the model's order.

    Raises
    ------
    InputError, ModelError
        When the data cannot be given to the model, with what to change.
    """
    if data.modality == "tabular" and isinstance(data.x, pd.DataFrame):
        if model.feature_names is not None and data.meta.get("unnamed_columns"):
            data = _name_by_position(data, model)
        elif model.feature_names is not None:
            data = align_columns(data, model.feature_names, extra=extra)
        else:
            data = _matched(data, "by position (the model declares no column names)")
    _check_form(model, data)
    _check_finite_values(data)
    if not probe:
        return data
    na_rows, na_cols = _missing_rows(data)
    complete = np.setdiff1d(np.arange(len(data)), na_rows)
    if complete.size:  # (when every row has a gap, the missing-value probe below speaks for the data)
        _probe(model, data, complete[:PROBE_ROWS], "this data")
    if na_rows.size:
        try:
            _probe(model, data, na_rows[:PROBE_ROWS], "rows with missing values")
        except StalwartError as exc:
            raise InputError(
                f"the data has missing values in columns {_show(na_cols)} ({na_rows.size} row(s), first: "
                f"{na_rows[:5].tolist()}) and the model cannot answer for them; impute them first or use a "
                f"model that handles missing values (e.g. an imputer in the pipeline). Detail: {exc}"
            ) from None
    return data
