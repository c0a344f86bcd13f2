"""Turn an uploaded body (JSON rows, CSV or Parquet) into the checked columns the store keeps.

A batch row holds the model's input columns plus reserved fields: ``prediction`` (required),
``row_id`` (for labels that arrive later; default ``<batch_id>:<position>``), ``timestamp``
(seconds since the epoch or ISO 8601; default the time of arrival), ``score`` (a number) and the
model's class probabilities: ``probabilities``, one list per row in the order of the model's
classes (JSON; a Parquet list column too), or in a table (CSV, Parquet) one column per class named
``probability_<class>`` (:func:`probability_columns`). Columns are checked against the registered
schema, and every refusal names the column, the row and the fix.

Values are normalised once, here, so a window and the reference compare like with like: numeric
and integer columns as floats, categorical ones as text, booleans as booleans.
"""

from __future__ import annotations

import io
import json
import math
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from itertools import chain
from operator import itemgetter
from typing import Any

import numpy as np
import pandas as pd

from stalwart.errors import InputError

__all__ = ["RESERVED", "PARQUET_TYPES", "TooLarge", "parse_body", "batch_columns", "reference_columns", "label_pairs", "frame",
           "canonical_classes", "probability_columns"]

try:  # optional: parses a batch of JSON rows about five times faster than the standard library
    import orjson as _orjson
except ImportError:  # pragma: no cover - depends on the environment
    _orjson = None

RESERVED = ("row_id", "timestamp", "prediction", "score", "probabilities")
#: a table's column of one class's probability is this and the class's text (probability_columns)
PROBABILITY_PREFIX = "probability_"
PARQUET_TYPES = ("application/vnd.apache.parquet", "application/x-parquet")
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


class TooLarge(InputError):
    """A body or batch over the service's limits (HTTP 413)."""


def parse_body(body: bytes, content_type: str, key: str) -> tuple[list[dict[str, Any]] | pd.DataFrame, dict]:
    """Rows of a JSON body (``{key: [...], ...}`` or a bare list) or a CSV body, and the JSON's other fields."""
    kind = (content_type or "application/json").split(";")[0].strip().lower()
    if kind in PARQUET_TYPES:
        try:
            return pd.read_parquet(io.BytesIO(body)), {}
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a bad file
            raise InputError(f"the body is not a readable Parquet file ({exc})") from None
    if kind in ("text/csv", "application/csv"):
        try:
            return pd.read_csv(io.BytesIO(body), keep_default_na=True), {}
        except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise InputError(f"the body is not readable CSV ({exc}); send a header line and one line per row") from None
    if kind != "application/json":
        raise InputError(f"Content-Type {kind!r} is not supported; send application/json, text/csv or "
                         f"{PARQUET_TYPES[0]}")
    doc = _json_loads(body)
    if isinstance(doc, list):
        doc = {key: doc}
    if not isinstance(doc, dict) or not isinstance(doc.get(key), list):
        raise InputError(f'the JSON body must be an object with a "{key}" list (or a bare list of rows); '
                         f"got {type(doc).__name__}{' without ' + repr(key) if isinstance(doc, dict) else ''}")
    rows = doc.pop(key)
    # every row a plain dict (what a JSON reader makes) is checked in C; anything else row by row
    bad = None if set(map(type, rows)) == {dict} else next(
        (i for i, r in enumerate(rows) if not isinstance(r, dict)), None)
    if bad is not None:
        raise InputError(f"{key}[{bad}] is {type(rows[bad]).__name__}; each row must be an object "
                         '{"column": value, ...}')
    return rows, doc


def _json_loads(body: bytes) -> Any:
    """The parsed JSON of a body: by orjson when it is installed, and by the standard library when
    it is not or when orjson refuses the body (NaN, numbers beyond 64 bits, other encodings), so the
    answer does not depend on what is installed."""
    if _orjson is not None:
        try:
            return _orjson.loads(body)
        except _orjson.JSONDecodeError:
            pass  # the standard library decides (and words the error)
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"the body is not valid JSON ({exc})") from None


def _columns_of(rows: list[dict[str, Any]] | pd.DataFrame, allowed: Sequence[str], needed: Sequence[str],
                what: str, model: Mapping[str, Any] | None = None) -> dict[str, list[Any]]:
    uniform = False
    if isinstance(rows, pd.DataFrame):
        names = [str(c) for c in rows.columns]
        cols = {str(c): rows[c] for c in rows.columns}  # Series: numeric columns stay vectorised
    else:
        names = list(rows[0]) if rows else []
        # the usual case, checked in C: every row has as many keys as the first and each of its
        # keys (a missing one stops the transposition), so the same keys
        if len(names) > 1 and set(map(len, rows)) == {len(names)}:
            try:  # transposed in C: one tuple per row, zipped into columns
                cols = dict(zip(names, map(list, zip(*map(itemgetter(*names), rows)))))
                uniform = True
            except KeyError:
                pass
        elif len(names) == 1 and all(r.keys() == rows[0].keys() for r in rows):
            cols, uniform = {names[0]: [r[names[0]] for r in rows]}, True
        if not uniform:
            names = list(dict.fromkeys(k for r in rows for k in r))
            cols = {n: [r.get(n) for r in rows] for n in names}
    known = set(allowed)
    unknown = [n for n in names if n not in known]
    if unknown:
        hint = ""
        if model is not None and any(str(n).startswith(PROBABILITY_PREFIX) for n in unknown):
            hint = " " + _probability_hint(model)
        raise InputError(f"{what} has unknown column(s) {unknown[:10]}; the model takes {list(allowed)}. "
                         f"Drop them, or register a model with these columns.{hint}")
    missing = [n for n in needed if n not in cols]
    if missing:
        raise InputError(f"{what} lacks column(s) {missing[:10]}; every row needs them")
    if not isinstance(rows, pd.DataFrame) and not uniform:  # a key absent from some rows only
        for n in needed:
            gap = next((i for i, r in enumerate(rows) if n not in r), None)
            if gap is not None:
                raise InputError(f"{what}: row {gap} lacks {n!r} (use null for a missing value)")
    return cols


def _list(values: Any) -> list[Any]:
    """Plain values (None for missing) of a list or a DataFrame column."""
    if isinstance(values, pd.Series):
        out, missing = values.tolist(), values.isna().to_numpy()
        return [None if m else v for v, m in zip(out, missing)] if missing.any() else out
    return values


def _number(v: Any) -> float | None:
    if v is None or isinstance(v, bool):
        return None if v is None else math.nan
    if isinstance(v, int):  # an integer beyond float64's range is refused, not taken as infinite
        try:
            return float(v)
        except OverflowError:
            return math.nan
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, str):
        try:
            f = float(v)
        except ValueError:
            return math.nan
        return f if math.isfinite(f) else None
    return math.nan


def _first_bool(values: Sequence[Any] | pd.Series, hits: np.ndarray) -> int | None:
    """Row of the first boolean among ``values``, which numpy or pandas turned into floats that
    came out 0 or 1 where ``hits`` says: only a boolean can hide there (both take true and false
    as 1.0 and 0.0), so only those rows are looked at, or, when there are many, the types of all
    of them at once. None when there is none.

    >>> _first_bool([0.5, 1, True], np.array([False, True, True]))
    2
    >>> _first_bool([0.5, 1], np.array([False, True])) is None
    True
    """
    rows = np.flatnonzero(hits)
    if rows.size > 32:
        if bool not in set(map(type, values)):
            return None
        rows = np.arange(len(values))
    get = values.iat.__getitem__ if isinstance(values, pd.Series) else values.__getitem__
    return next((i for i in rows.tolist() if type(get(i)) is bool), None)


def _numbers(name: str, kind: str, values: list[Any], what: str) -> np.ndarray:
    """float64 values, NaN for null (and for infinities); vectorised, with a per-value pass only
    to name the first bad value. A boolean is refused: numpy and pandas would take it as 1.0 or
    0.0, the value-by-value pass as the client's mistake it is."""
    if isinstance(values, pd.Series) and values.dtype.kind in "fiu":  # numbers already (Parquet, CSV)
        arr = values.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
        arr[~np.isfinite(arr)] = np.nan
        return arr
    if isinstance(values, pd.Series):
        if values.dtype.kind != "b":  # booleans (CSV's true/false) take the value-by-value pass
            arr = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
            if not np.isnan(arr[values.notna().to_numpy()]).any() and (
                    values.dtype != object or _first_bool(values, (arr == 0.0) | (arr == 1.0)) is None):
                arr[~np.isfinite(arr)] = np.nan
                return arr
        values, arr = _list(values), None
    else:
        try:
            arr = np.array(values, dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
            arr = None
        if arr is not None and arr.ndim == 1 and _first_bool(values, (arr == 0.0) | (arr == 1.0)) is not None:
            arr = None  # the value-by-value pass names the boolean
    if arr is None or arr.ndim != 1:
        out = [_number(v) for v in values]
        bad = next((i for i, f in enumerate(out) if f is not None and math.isnan(f)), None)
        if bad is not None:
            raise InputError(_not_a_number(what, name, kind, bad, values[bad]))
        arr = np.array([np.nan if f is None else f for f in out], dtype=np.float64)
    arr[~np.isfinite(arr)] = np.nan
    return arr


def _not_a_number(what: str, name: str, kind: str, row: int, value: Any) -> str:
    if isinstance(value, bool):
        return (f"{what}: column {name!r} is {kind} but row {row} holds {json.dumps(value)}, a boolean; send a "
                "number (1 or 0, if that is what it means) or null, or register the column as boolean")
    return (f"{what}: column {name!r} is {kind} but row {row} holds {value!r}; send a number or null, or register "
            "the column as categorical")


_TEXT_TYPES, _BOOL_TYPES = {str, type(None)}, {bool, type(None)}


def _normalise(name: str, kind: str, values: list[Any], what: str) -> Any:
    if kind in ("numeric", "integer"):
        return _numbers(name, kind, values, what)
    values = _list(values)
    # the usual column holds only text (or only booleans) and nulls: nothing to convert or refuse;
    # the exact types are looked at in C, and any other column takes the value-by-value path
    if set(map(type, values)) <= (_BOOL_TYPES if kind == "boolean" else _TEXT_TYPES):
        return values if isinstance(values, list) else list(values)
    if kind == "boolean":
        out = []
        for i, v in enumerate(values):
            if v is None or isinstance(v, bool):
                out.append(v)
            elif str(v).strip().lower() in _TRUE | _FALSE:
                out.append(str(v).strip().lower() in _TRUE)
            else:
                raise InputError(f"{what}: column {name!r} is boolean but row {i} holds {v!r}; send true/false")
        return out
    bad = next((i for i, v in enumerate(values) if isinstance(v, (dict, list))), None)
    if bad is not None:
        raise InputError(f"{what}: column {name!r} row {bad} holds a {type(values[bad]).__name__}; "
                         "send a text or number")
    return [None if v is None else str(v) for v in values]


def canonical_classes(classes: Sequence[Any] | None) -> dict[str, Any] | None:
    """Class labels by their text, so CSV's ``1`` and JSON's ``1`` or ``"1"`` name the same class."""
    return None if classes is None else {str(c): c for c in classes}


_KEY_TYPES = {int, str, bool}


def _labels(values: list[Any], model: Mapping[str, Any], name: str, what: str) -> list[Any]:
    if model["task"] == "regression":
        return _normalise(name, "numeric", values, what)
    by_text = canonical_classes(model["classes"])
    if set(map(type, values)) <= _KEY_TYPES:  # the usual labels: their text is their key (as below)
        keys = list(map(str, values))
        if by_text is None:
            return keys
        try:
            return list(map(by_text.__getitem__, keys))
        except KeyError:
            pass  # the loop below names the label and its row
    out = []
    for i, v in enumerate(values):
        if v is None:
            raise InputError(f"{what}: {name} of row {i} is missing; every row needs one")
        key = str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)
        if by_text is None:  # classes not registered: compared as text, so CSV's 1 is JSON's 1 and "1"
            out.append(key)
            continue
        if key not in by_text:
            raise InputError(f"{what}: {name} {v!r} of row {i} is not one of the model's classes "
                             f"{list(by_text.values())}")
        out.append(by_text[key])
    return out


def _number_block(names: list[str], cols: Mapping[str, Any], n: int) -> dict[str, np.ndarray]:
    """The numeric columns ``names`` of JSON rows as float64 arrays (NaN for null and for
    infinities), converted in one call; {} when a value needs :func:`_numbers`' value-by-value path
    (text that is no number, a list, a boolean, ...), which then names it. Each array is what :func:`_numbers`
    makes of its column.

    >>> block = _number_block(["a", "b"], {"a": [1, None], "b": [0.5, float("inf")]}, 2)
    >>> block["a"].tolist(), block["b"].tolist()
    ([1.0, nan], [0.5, nan])
    >>> _number_block(["a", "b"], {"a": [1, "lots"], "b": [0.5, 1.0]}, 2)
    {}
    >>> _number_block(["a", "b"], {"a": [1, True], "b": [0.5, 1.0]}, 2)
    {}
    """
    if len(names) < 2 or any(not isinstance(cols[c], list) for c in names):
        return {}  # one column, or DataFrame columns: _numbers is as fast
    try:
        arr = np.array([cols[c] for c in names], dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        return {}
    if arr.shape != (len(names), n):
        return {}
    hits = arr == 0.0  # where a boolean, taken by numpy as 1.0 or 0.0, may hide
    hits |= arr == 1.0
    at = np.flatnonzero(hits)
    if at.size > 32:  # many: column by column
        if any(_first_bool(cols[names[j]], hits[j]) is not None for j in np.flatnonzero(hits.any(axis=1)).tolist()):
            return {}
    elif at.size and any(type(cols[names[k // n]][k % n]) is bool for k in at.tolist()):
        return {}
    arr[~np.isfinite(arr)] = np.nan
    return dict(zip(names, arr))


def _seconds(values: list[Any], what: str) -> np.ndarray:
    """Timestamps as seconds since the epoch; numbers alone are converted in one call."""
    if set(map(type, values)) <= {int, float}:
        arr = np.array(values, dtype=np.float64)
        if np.isfinite(arr).all():
            return arr
    return np.array(_timestamps(values, time.time(), what), dtype=np.float64)


def _timestamps(values: list[Any], now: float, what: str) -> list[float]:
    out = []
    for i, v in enumerate(values):
        if v is None:
            out.append(now)
        elif isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            out.append(float(v))
        elif isinstance(v, str):
            try:
                t = datetime.fromisoformat(v.replace("Z", "+00:00"))
            except ValueError:
                raise InputError(f"{what}: timestamp {v!r} of row {i} is neither ISO 8601 nor seconds since "
                                 "the epoch") from None
            out.append((t if t.tzinfo else t.replace(tzinfo=timezone.utc)).timestamp())
        else:
            raise InputError(f"{what}: timestamp {v!r} of row {i} is neither ISO 8601 nor seconds since the epoch")
    return out


def batch_columns(rows: list[dict[str, Any]] | pd.DataFrame, model: Mapping[str, Any], batch_id: str,
                  max_rows: int) -> tuple[dict[str, Any], int, float, float]:
    """The stored columns of one batch, its row count and first and last timestamps."""
    n = len(rows)
    what = f"batch {batch_id!r}"
    if n == 0:
        raise InputError(f"{what} has no rows; send at least one")
    if n > max_rows:
        raise TooLarge(f"{what} has {n} rows, more than the limit of {max_rows}; split it into smaller batches")
    kinds: dict[str, str] = model["columns"]
    probability_names = _probability_names(model)
    allowed = [*kinds, *RESERVED, *probability_names]
    cols = _columns_of(rows, allowed, [*kinds, "prediction"], what, model)
    block = _number_block([c for c, k in kinds.items() if k in ("numeric", "integer")], cols, n)
    out: dict[str, Any] = {"inputs": {c: block[c] if c in block else _normalise(c, k, cols[c], what)
                                      for c, k in kinds.items()}}
    out["prediction"] = _labels(_list(cols["prediction"]), model, "prediction", what)
    ids = _list(cols["row_id"]) if "row_id" in cols else None
    if ids is None:
        out["row_id"] = [f"{batch_id}:{i}" for i in range(n)]
    elif set(map(type, ids)) == {str}:
        out["row_id"] = ids
    else:
        out["row_id"] = [f"{batch_id}:{i}" if r is None else str(r) for i, r in enumerate(ids)]
    if len(set(out["row_id"])) < n:
        raise InputError(f"{what} repeats a row_id; labels are joined by row_id, so each row needs its own")
    if max(map(len, out["row_id"])) > 200:
        raise InputError(f"{what}: a row_id is longer than 200 characters; use shorter ids")
    if "timestamp" in cols:
        ts = _seconds(_list(cols["timestamp"]), what)
    else:  # stamped on arrival
        ts = np.full(n, time.time(), dtype=np.float64)
    out["timestamp"] = ts
    if "score" in cols:
        out["score"] = _normalise("score", "numeric", cols["score"], what)
    probabilities = _probabilities(cols, model, probability_names, what)
    if probabilities is not None:
        out["probabilities"] = probabilities
    return out, n, float(ts.min()), float(ts.max())


def probability_columns(classes: Sequence[Any] | None) -> list[str]:
    """The columns of a table (CSV, Parquet, or JSON rows too) that carry a row's class
    probabilities, one per class in the order of ``classes``: ``probability_`` and the class's
    text, as :func:`canonical_classes` writes it. Registration refuses input columns of these names.

    >>> probability_columns([0, 1]), probability_columns(["no", "yes"]), probability_columns([False, True])
    (['probability_0', 'probability_1'], ['probability_no', 'probability_yes'], ['probability_False', 'probability_True'])
    """
    return [PROBABILITY_PREFIX + str(c) for c in classes or ()]


def _probability_names(model: Mapping[str, Any]) -> list[str]:
    """The model's probability columns; none when they cannot be told apart from each other or
    from its input columns (a model registered before these names were refused)."""
    names = probability_columns(model["classes"])
    if len(set(names)) < len(names) or any(c in model["columns"] for c in names):
        return []
    return names


def _probability_hint(model: Mapping[str, Any]) -> str:
    names = probability_columns(model["classes"])
    if not names:
        return "Class probabilities need the model's classes: register them."
    if not _probability_names(model):
        return (f"The model's class probabilities cannot come as columns {names} (they repeat a name or an input "
                "column's); send a 'probabilities' list per row (JSON or a Parquet list column).")
    return f"Class probabilities as columns are named after the model's classes: {names}."


def _probabilities(cols: Mapping[str, Any], model: Mapping[str, Any], names: list[str], what: str
                   ) -> list[list[float] | None] | None:
    """A row's class probabilities (a list of floats, in the order of the model's classes, or None
    where the row has none) from a ``probabilities`` column of lists or from the
    ``probability_<class>`` columns ``names``; None when the rows carry neither."""
    given = [c for c in names if c in cols]
    if not given:
        return _probability_lists(_list(cols["probabilities"]), model, what) if "probabilities" in cols else None
    if "probabilities" in cols:
        raise InputError(f"{what} has both a 'probabilities' column and {given[:3]}; send the probabilities one way: "
                         f"a 'probabilities' list per row, or the columns {names}")
    if len(given) < len(names):
        missing = [c for c in names if c not in cols]
        raise InputError(f"{what} has probability column(s) {given} but lacks {missing}; send one column per class "
                         f"of the model ({names}, empty in a row without probabilities), or none of them")
    table = np.column_stack([_probability_column(c, cols[c], what) for c in names])  # NaN: empty
    empty = np.isnan(table)
    none = empty.all(axis=1)
    partial = np.flatnonzero(empty.any(axis=1) & ~none)
    if partial.size:
        i = int(partial[0])
        raise InputError(f"{what}: row {i} has no value in {[c for c, e in zip(names, empty[i]) if e]} but has one "
                         "for the other classes; send every class's probability, or none in a row without them")
    out: list[Any] = table.tolist()
    for i in np.flatnonzero(none).tolist():
        out[i] = None
    return out


_PROBABILITY_TYPES = {float, int, type(None)}


def _probability_column(name: str, values: Any, what: str) -> np.ndarray:
    """One ``probability_<class>`` column as float64, NaN where empty (null, an empty cell, NaN);
    anything but a finite number (text that reads as one aside) is refused by row."""
    if isinstance(values, pd.Series) and values.dtype.kind in "fiu":  # numbers already (CSV, Parquet)
        arr = values.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        values, arr = _list(values), None
        if set(map(type, values)) <= _PROBABILITY_TYPES:  # the usual JSON column: converted in one call
            try:
                arr = np.array(values, dtype=np.float64)  # None: NaN
            except OverflowError:
                pass
        if arr is None:
            arr = np.empty(len(values))
            for i, v in enumerate(values):
                f = _probability(v)
                if f is None:
                    raise InputError(_not_a_probability(what, name, i, v))
                arr[i] = f
    bad = np.flatnonzero(np.isinf(arr))
    if bad.size:
        raise InputError(_not_a_probability(what, name, int(bad[0]), float(arr[bad[0]])))
    return arr


def _probability(v: Any) -> float | None:
    """A value of a probability column as a float (NaN for empty), None for one that is no number."""
    if v is None:
        return math.nan
    if isinstance(v, float):
        return v  # an infinity is refused with the column
    if isinstance(v, int) and not isinstance(v, bool):
        try:
            return float(v)
        except OverflowError:
            return None
    if isinstance(v, str):
        try:
            f = float(v)
        except ValueError:
            return None
        return f if math.isfinite(f) else None
    return None


def _not_a_probability(what: str, name: str, row: int, value: Any) -> str:
    shown = json.dumps(value) if isinstance(value, bool) else repr(value)
    return (f"{what}: column {name!r} row {row} holds {shown}; a probability is a finite number (empty, or null, "
            "in a row without probabilities)")


_NUMBER_TYPES, _NUMBER_SET, _LIST_TYPES = (int, float), {int, float}, {list, type(None)}


def _probability_lists(values: list[Any], model: Mapping[str, Any], what: str) -> list[list[float] | None]:
    """A ``probabilities`` column: a list (JSON) or array (a Parquet list column) of one number per
    class, or null, per row; stored as lists of floats, as the columns' form is."""
    k = len(model["classes"] or [])
    kinds = set(map(type, values))
    if k and kinds <= _LIST_TYPES:  # the usual JSON column: checked in C, converted in one call
        given = [p for p in values if p is not None] if type(None) in kinds else values
        if set(map(len, given)) <= {k} and set(map(type, chain.from_iterable(given))) <= _NUMBER_SET:
            try:
                table = np.array(given, dtype=np.float64).reshape(len(given), k)
            except OverflowError:  # an integer beyond float64: refused below
                table = None
            if table is not None and np.isfinite(table).all():
                if given is values:
                    return table.tolist()
                rows = iter(table.tolist())
                return [None if p is None else next(rows) for p in values]
    out: list[list[float] | None] = []
    for i, p in enumerate(values):
        if p is None:
            out.append(None)
            continue
        if isinstance(p, np.ndarray) and p.ndim == 1:  # a Parquet list column
            p = p.tolist()
        try:
            ok = isinstance(p, list) and len(p) == k and all(type(v) in _NUMBER_TYPES and math.isfinite(v) for v in p)
        except OverflowError:  # an integer beyond float64
            ok = False
        if not ok:
            hint = ""
            if isinstance(p, str):  # a CSV cell
                hint = f"; in a CSV or Parquet table, send one column per class instead: {probability_columns(model['classes'])}"
            raise InputError(f"{what}: probabilities of row {i} must be a list of {k} finite numbers (one per class, in "
                             f"the order {model['classes']}); got {p!r}{hint}")
        out.append([float(v) for v in p])
    return out


def reference_columns(rows: list[dict[str, Any]] | pd.DataFrame, model: Mapping[str, Any],
                      max_rows: int) -> tuple[dict[str, Any], int]:
    """The stored columns of a reference set: the model's inputs and, optionally, its predictions
    and true labels."""
    n = len(rows)
    if n == 0:
        raise InputError("the reference set has no rows; upload the data the model was validated on")
    if n > max_rows:
        raise TooLarge(f"the reference set has {n} rows, more than the limit of {max_rows}; upload a sample")
    kinds: dict[str, str] = model["columns"]
    # row ids and timestamps may come along (a sample of logged rows) and are not kept
    probability_names = _probability_names(model)
    cols = _columns_of(rows, [*kinds, "prediction", "label", "row_id", "timestamp", "score", "probabilities",
                              *probability_names], list(kinds), "the reference set", model)
    out: dict[str, Any] = {"inputs": {c: _normalise(c, k, cols[c], "the reference set") for c, k in kinds.items()}}
    if "prediction" in cols:
        out["prediction"] = _labels(_list(cols["prediction"]), model, "prediction", "the reference set")
    if "label" in cols:  # true labels: the label-free accuracy estimate calibrates on them
        out["label"] = _labels(_list(cols["label"]), model, "label", "the reference set")
    # the model's logged probabilities (or binary score) with the labels calibrate the estimate
    # made from the probabilities windows log, when the service holds no model file
    if "score" in cols:
        out["score"] = _normalise("score", "numeric", cols["score"], "the reference set")
    probabilities = _probabilities(cols, model, probability_names, "the reference set")
    if probabilities is not None:
        out["probabilities"] = probabilities
    return out, n


def label_pairs(rows: list[dict[str, Any]] | pd.DataFrame, model: Mapping[str, Any], max_rows: int
                ) -> list[tuple[str, Any]]:
    """``(row_id, label)`` pairs of a labels upload."""
    n = len(rows)
    if n == 0:
        raise InputError("no labels sent; send rows of {\"row_id\": ..., \"label\": ...}")
    if n > max_rows:
        raise TooLarge(f"{n} labels in one request, more than the limit of {max_rows}; send them in parts")
    cols = _columns_of(rows, ["row_id", "label"], ["row_id", "label"], "the labels")
    row_ids, values = _list(cols["row_id"]), _list(cols["label"])
    if any(r is None for r in row_ids):
        raise InputError("the labels: a row_id is missing; each label needs the row_id of its batch row")
    return list(zip((str(r) for r in row_ids), _labels(values, model, "label", "the labels")))


def frame(inputs: Mapping[str, list[Any]], kinds: Mapping[str, str]) -> pd.DataFrame:
    """A DataFrame of stored input columns, with dtypes that follow the schema's kinds."""
    data = {}
    for name, kind in kinds.items():
        values = inputs[name]
        if kind in ("numeric", "integer"):
            data[name] = pd.Series(values, dtype="float64")
        else:
            data[name] = pd.Series(values, dtype=object)
    return pd.DataFrame(data)
