"""Adapter for ONNX models, run with onnxruntime."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from stalwart._validation import check_positive
from stalwart.errors import InputError, ModelError, require
from stalwart.models.base import Model, Task, check_finite_output

__all__ = ["OnnxModel"]

_ORT_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(string)": np.str_,
    "tensor(bool)": np.bool_,
}
_FLOAT_TYPES = ("tensor(float)", "tensor(double)", "tensor(float16)")
_LABEL_TYPES = ("tensor(int64)", "tensor(int32)", "tensor(string)")


def _graph_facts(model_bytes: bytes | None) -> tuple[Any, bool]:
    """Class labels declared by the graph's classifier or ZipMap node, and whether it is a regressor."""
    if model_bytes is None:
        return None, False
    onnx = require("onnx", "onnx")
    try:
        graph = onnx.load_from_string(model_bytes).graph
    except Exception:  # noqa: BLE001 - metadata is a bonus; the session already loaded the model
        return None, False
    regressor = any(node.op_type.endswith("Regressor") for node in graph.node)
    for node in graph.node:
        for attr in node.attribute:
            if attr.name in ("classlabels_ints", "classlabels_int64s") and len(attr.ints):
                return np.asarray(list(attr.ints), dtype=np.int64), regressor
            if attr.name == "classlabels_strings" and len(attr.strings):
                return np.asarray([s.decode() for s in attr.strings]), regressor
    return None, regressor


class OnnxModel(Model):
    """An ONNX model (path or ``onnxruntime.InferenceSession``) behind the Model interface.

    The input name, dtype and per-sample shape come from the graph. The scores come from, in
    order of preference: a ZipMap output (list of {class: probability} dicts, as skl2onnx writes
    by default), a 2-D float output (probabilities or logits, detected on the first call; a
    single column is a positive-class probability or logit), or a 1-D integer/string output
    (labels, one-hot encoded). Class labels come from ``classes``, else the graph's classifier
    node, else the ZipMap keys, else ``0..k-1``. ONNX models are black-box (no gradients).

    Parameters
    ----------
    source : str, PathLike or onnxruntime.InferenceSession
    classes : array-like, optional
    task : {"classification", "regression"}, optional
        Default: regression if the graph has a ``*Regressor`` node, else classification.
    batch_size : int, default 1024
        Overridden by a fixed batch dimension in the graph.
    input_bounds : tuple of float, optional
    """

    def __init__(self, source: str | os.PathLike | Any, classes: Any = None, task: Task | None = None,
                 batch_size: int = 1024, input_bounds: tuple[float, float] | None = None) -> None:
        super().__init__()
        ort = require("onnxruntime", "onnx")
        check_positive(self, "batch_size", batch_size, integer=True)
        self.batch_size = int(batch_size)
        self.input_bounds = input_bounds
        model_bytes = None
        if isinstance(source, (str, os.PathLike)):
            path = Path(source)
            if not path.is_file():
                raise InputError(f"ONNX file {str(path)!r} does not exist; check the path.")
            model_bytes = path.read_bytes()
            try:
                self.session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
            except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
                raise ModelError(f"onnxruntime cannot load {path}: {exc}") from None
            self.source = str(path)
        elif isinstance(source, ort.InferenceSession):
            self.session = source
            self.source = "<InferenceSession>"
        else:
            raise ModelError(f"OnnxModel(source=...) must be a path to an .onnx file or an "
                             f"onnxruntime.InferenceSession; got {type(source).__name__}.")
        self._digest = hashlib.sha256(model_bytes if model_bytes is not None else repr(
            [(o.name, o.type, o.shape) for o in self.session.get_outputs()]).encode()).hexdigest()

        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise ModelError(
                f"the ONNX graph has {len(inputs)} inputs ({[i.name for i in inputs]}); stalwart needs "
                "one input tensor. Export the model with a single (n, n_features) input."
            )
        self.input_name = inputs[0].name
        self.input_dtype = _ORT_DTYPES.get(inputs[0].type)
        if self.input_dtype is None:
            raise ModelError(f"unsupported ONNX input type {inputs[0].type} for input {self.input_name!r}.")
        shape = list(inputs[0].shape)
        self.input_shape = (tuple(shape[1:]) if shape[1:] and all(isinstance(s, int) for s in shape[1:])
                            else None)
        if shape and isinstance(shape[0], int) and shape[0] > 0:
            self.batch_size = shape[0]  # the graph fixes its batch size
        if self.input_shape is not None and len(self.input_shape) == 1:
            self.n_features = int(self.input_shape[0])

        graph_classes, regressor = _graph_facts(model_bytes)
        self.task = task or ("regression" if regressor else "classification")
        outputs = self.session.get_outputs()
        if self.task == "regression":
            floats = [o for o in outputs if o.type in _FLOAT_TYPES]
            if not floats:
                raise ModelError("the ONNX graph has no float output to use as regression values.")
            self._output, self._kind, self.output_kind = floats[0].name, "values", "values"
            self.classes = None
            return
        zipmaps = [o for o in outputs if o.type.startswith("seq(map(")]
        floats = [o for o in outputs if o.type in _FLOAT_TYPES and len(o.shape) in (1, 2)]
        labels = [o for o in outputs if o.type in _LABEL_TYPES and len(o.shape) == 1]
        if zipmaps:
            self._output, self._kind = zipmaps[0].name, "zipmap"
        elif floats:
            self._output, self._kind = floats[-1].name if len(floats) > 1 and labels else floats[0].name, None
        elif labels:
            self._output, self._kind = labels[0].name, "labels"
        else:
            raise ModelError(
                "no usable ONNX output: expected probabilities/logits (2-D float), a ZipMap, or labels "
                f"(1-D int/string); the graph has {[(o.name, o.type) for o in outputs]}."
            )
        self.output_kind = "labels" if self._kind == "labels" else "probabilities"
        self.classes = np.asarray(classes) if classes is not None else graph_classes
        if self._kind == "labels" and self.classes is None:
            raise ModelError("the ONNX model outputs only labels and its graph declares no class list; "
                             "pass classes=[...] to wrap().")
        if self.classes is None and self.input_shape is not None and self._kind != "labels":
            # one uncounted probe on zeros tells the number of classes before the first real call;
            # the probabilities-vs-logits decision waits for real data
            kind, output_kind = self._kind, self.output_kind
            self._raw_predict(np.zeros((1, *self.input_shape), dtype=self.input_dtype))
            self._kind, self.output_kind = kind, output_kind

    def _feed(self, x: Any) -> np.ndarray:
        if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch tensor
            x = x.detach().cpu().numpy()
        try:
            arr = np.asarray(x, dtype=self.input_dtype)
        except (TypeError, ValueError) as exc:
            raise InputError(f"x cannot be converted to the ONNX input type "
                             f"{np.dtype(self.input_dtype).name}: {exc}.") from None
        if self.input_shape is not None and arr.shape[1:] != self.input_shape:
            if arr.ndim < 1 or int(np.prod(arr.shape[1:])) != int(np.prod(self.input_shape)):
                raise InputError(f"x has samples of shape {arr.shape[1:]} but the ONNX model expects "
                                 f"{self.input_shape}; reshape x or pass the right features.")
            arr = arr.reshape(len(arr), *self.input_shape)
        return arr

    def _raw_predict(self, x: Any) -> np.ndarray:
        from stalwart.models.function import scores_to_probabilities
        from stalwart.models.torch import looks_like_probabilities

        out = self.session.run([self._output], {self.input_name: self._feed(x)})[0]
        if self.task == "regression":
            return np.asarray(out, dtype=np.float64).reshape(len(x))
        if self._kind == "zipmap":
            keys = list(out[0].keys())
            if self.classes is None:
                self.classes = np.asarray(keys)
            return np.array([[row[k] for k in keys] for row in out], dtype=np.float64)
        if self._kind == "labels":
            hit = np.asarray(out).reshape(len(x))[:, None] == self.classes[None, :]
            return hit.astype(np.float64)
        out = check_finite_output(np.asarray(out, dtype=np.float64), self.name)  # before judging the kind
        if self._kind is None:
            if out.ndim == 1 or out.shape[1] == 1:
                self._kind = "probabilities" if ((out >= 0) & (out <= 1)).all() else "logits"
            else:
                self._kind = "probabilities" if looks_like_probabilities(out) else "logits"
            self.output_kind = self._kind
        probs = scores_to_probabilities(out, self._kind)
        if self.classes is None:
            self.classes = np.arange(probs.shape[1])
        elif len(self.classes) != probs.shape[1]:
            raise ModelError(f"the ONNX model returns {probs.shape[1]} scores per sample but classes has "
                             f"{len(self.classes)} labels; pass one label per output column.")
        return probs

    def _fingerprint_bytes(self) -> bytes:
        return self._digest.encode()

    def __repr__(self) -> str:
        return (f"OnnxModel({self.source!r}, task={self.task!r}, classes="
                f"{None if self.classes is None else self.classes.tolist()})")
