"""The model file a monitored model may hand to the service, checked on upload and loaded lazily.

``PUT /v1/projects/{p}/models/{m}/artifact`` takes a skops, ONNX or TorchScript (or
``torch.export``) file. It is loaded exactly as ``stalwart scan`` loads a file
(:func:`stalwart.load_model` without ``trust``: skops with only scikit-learn/numpy/scipy types,
ONNX, TorchScript or a ``torch.export`` program; pickles and pickled torch modules are refused),
then run once on the first rows of the reference, so a file the analysis could not use is refused
at upload (422 with the loader's message) rather than failing every later window.

The file is stored in the database (table ``model_artifacts``, one per model, replaced by a new
upload), so every server process sharing the database sees it and a backup holds it. The analysis
worker loads it on first use and keeps it in a small in-process cache keyed by its SHA-256.

The model takes the monitored columns as one float matrix: the columns it declares
(``feature_names_in_`` of a scikit-learn model fitted on a DataFrame), else the registered numeric,
integer and boolean columns in registration order; booleans become 0/1 and missing values NaN.
Categorical columns are never fed (they cannot be numbers here), so a model that declares one is
refused with a message saying so.
"""

from __future__ import annotations

import hashlib
import io
import tempfile
import threading
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from stalwart.errors import InputError, ModelError, StalwartError

__all__ = ["FORMATS", "sniff_format", "load_artifact", "model_columns", "input_matrix", "check_artifact", "digest",
           "ModelCache", "MODEL_CACHE"]

#: upload formats and the file extension :func:`stalwart.load_model` reads each by
FORMATS = {"skops": ".skops", "onnx": ".onnx", "torchscript": ".pt", "torch_export": ".pt2"}


def sniff_format(data: bytes) -> str:
    """The format of an uploaded file from its bytes: skops and torch files are zip archives
    (skops with ``schema.json``, ``torch.export`` with a serialized program), anything else is
    read as ONNX (a protobuf, which has no magic number).

    >>> sniff_format(b"\\x08\\x07\\x12\\x07pytorch")
    'onnx'
    """
    if data[:4] != b"PK\x03\x04":
        return "onnx"
    try:
        names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    except zipfile.BadZipFile:
        return "onnx"  # not a whole archive: the loader says what is wrong with it
    if "schema.json" in names:
        return "skops"
    if any(n.endswith("serialized_exported_program.json") for n in names):
        return "torch_export"
    return "torchscript"


def load_artifact(data: bytes, fmt: str, model: Mapping[str, Any]) -> Any:
    """The wrapped model in ``data`` (a file in ``fmt``), loaded as ``stalwart scan`` loads files.

    Raises ModelError with the loader's message (the temporary path replaced by "the uploaded
    file") when the file is unsafe, unreadable or not a model.
    """
    from stalwart.models.wrap import load_model

    if fmt not in FORMATS:
        raise InputError(f"format {fmt!r} is not one of {list(FORMATS)}; pass ?format= with one of them, or "
                         "leave it out to detect the format from the file")
    kwargs: dict[str, Any] = {"task": model["task"]}
    if model["task"] == "classification" and model.get("classes") is not None:
        kwargs["classes"] = list(model["classes"])
    with tempfile.TemporaryDirectory(prefix="stalwart-artifact-") as folder:
        path = Path(folder) / f"model{FORMATS[fmt]}"
        path.write_bytes(data)
        try:
            return load_model(path, trust=False, **kwargs)
        except StalwartError as exc:
            message = str(exc).replace(str(path), "the uploaded file")
            if "trust=True" in message:  # the service has no such switch
                message += ". The service never loads files that run code: upload skops, ONNX or TorchScript"
            raise ModelError(message) from None
        except Exception as exc:  # noqa: BLE001 - third-party loaders raise anything on a bad file
            message = " ".join(str(exc).replace(str(path), "the uploaded file").split())[:400]
            raise ModelError(f"the uploaded file could not be loaded as {fmt} ({type(exc).__name__}: {message}); "
                             "check it is a whole skops, ONNX or TorchScript file and that ?format= names "
                             "its format") from None


def model_columns(wrapped: Any, kinds: Mapping[str, str]) -> list[str]:
    """The registered columns the model takes, in its order (ModelError when it cannot take them)."""
    declared = getattr(wrapped, "feature_names", None)
    if declared is not None:
        unknown = [c for c in declared if c not in kinds]
        if unknown:
            raise ModelError(f"the model was fitted on columns {unknown[:10]} that the monitored model does not "
                             f"have (its columns are {list(kinds)[:20]}); register the model with the columns "
                             "it takes")
        use = list(declared)
    else:
        use = [c for c, k in kinds.items() if k != "categorical"]
        n = getattr(wrapped, "n_features", None)
        if n is not None and n != len(use):
            raise ModelError(f"the model takes {n} features but the monitored model has {len(use)} numeric, integer "
                             f"and boolean columns {use[:20]}; upload the model that takes exactly these columns, "
                             "in this order")
    categorical = [c for c in use if kinds[c] == "categorical"]
    if categorical:
        raise ModelError(f"the model needs categorical column(s) {categorical[:10]}, which the service cannot feed "
                         "it as numbers; upload a model whose inputs are the numeric, integer and boolean columns")
    if not use:
        raise ModelError("the monitored model has no numeric, integer or boolean column to feed the model; register "
                         "its numeric inputs")
    return use


def input_matrix(inputs: Mapping[str, Any], columns: Sequence[str], rows: np.ndarray | None = None) -> np.ndarray:
    """Stored input columns as a float matrix (n, len(columns)): booleans 0/1, missing NaN."""
    out = []
    for c in columns:
        values = inputs[c]
        if isinstance(values, np.ndarray):
            col = values if rows is None else values[rows]
        else:
            picked = values if rows is None else [values[i] for i in rows]
            col = np.array([np.nan if v is None else float(v) for v in picked], dtype=np.float64)
        out.append(np.asarray(col, dtype=np.float64))
    return np.column_stack(out) if out else np.empty((0 if rows is None else len(rows), 0))


def check_artifact(data: bytes, fmt: str | None, model: Mapping[str, Any], reference: Mapping[str, Any] | None
                   ) -> tuple[str, Any]:
    """``(format, wrapped model)`` of an upload that the analysis can use: it loads safely, takes
    the monitored columns and predicts on the first reference rows (when a reference is set)."""
    if not data:
        raise InputError("the body is empty; send the model file (skops, ONNX or TorchScript) as the body")
    fmt = sniff_format(data) if fmt is None else fmt
    wrapped = load_artifact(data, fmt, model)
    if wrapped.task != model["task"]:
        raise ModelError(f"the uploaded file is a {wrapped.task} model but {model['name']!r} is registered for "
                         f"{model['task']}; upload the model it monitors")
    columns = model_columns(wrapped, model["columns"])
    if reference is not None:
        n = len(next(iter(reference["inputs"].values()))) if reference["inputs"] else 0
        x = input_matrix(reference["inputs"], columns, np.arange(min(n, 20)))
        try:
            out = wrapped.predict(x)
        except StalwartError as exc:
            raise ModelError(f"the model does not run on the reference rows: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - the user's model failing on this data is an input problem
            raise ModelError(f"the model does not run on the reference rows ({type(exc).__name__}: {exc}); "
                             f"it must take the columns {columns[:20]} as a float matrix") from None
        if len(out) != len(x):
            raise ModelError(f"the model returned {len(out)} predictions for {len(x)} reference rows; upload a "
                             "model that predicts one value per row")
    return fmt, wrapped


class ModelCache:
    """A small least-recently-used cache of loaded models and what was fitted with them, shared
    by the analysis passes of one process (thread-safe; keys say what they depend on)."""

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self._items: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any, build: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = build()  # outside the lock: loading a model may take a while
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


#: the process's cache of loaded models and fitted detectors/estimators
MODEL_CACHE = ModelCache(size=16)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
