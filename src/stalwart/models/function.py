"""Adapter for plain callables: any function from a batch of inputs to scores or labels."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, Literal

import numpy as np

from stalwart._validation import check_choice, check_positive
from stalwart.errors import ModelError, StalwartError
from stalwart.models.base import Model, Task, check_finite_output, model_call_error

__all__ = ["FunctionModel", "scores_to_probabilities"]

FunctionOutput = Literal["auto", "probabilities", "logits", "labels"]


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _detect_kind(out: np.ndarray) -> str:
    """Probabilities, logits or labels, judged from one batch of outputs."""
    from stalwart.models.torch import looks_like_probabilities

    if out.ndim == 1 or (out.ndim == 2 and out.shape[1] == 1 and not np.issubdtype(out.dtype, np.floating)):
        return "labels"
    if out.ndim == 2 and out.shape[1] == 1:
        # one float column: a probability of the positive class if it stays in [0, 1]
        return "probabilities" if ((out >= 0) & (out <= 1)).all() else "logits"
    if out.ndim == 2:
        return "probabilities" if looks_like_probabilities(out) else "logits"
    raise ModelError(f"the function returned shape {out.shape}; a classifier must return (n, n_classes) "
                     "scores or (n,) labels.")


def scores_to_probabilities(out: np.ndarray, kind: str) -> np.ndarray:
    """Turn (n, k) or (n, 1) probabilities/logits into (n, k) probabilities (k >= 2)."""
    out = np.asarray(out, dtype=np.float64)
    if out.ndim == 1:
        out = out[:, None]
    if out.shape[1] == 1:
        p = out[:, 0] if kind == "probabilities" else 1.0 / (1.0 + np.exp(-out[:, 0]))
        return np.stack([1.0 - p, p], axis=1)
    return out if kind == "probabilities" else _softmax(out)


def _is_pipeline_output(raw: Any) -> bool:
    """Whether ``raw`` is a Hugging Face pipeline's list of ``{"label", "score"}`` dicts (or lists of them)."""
    if not isinstance(raw, list) or not raw:
        return False
    first = raw[0]
    if isinstance(first, list) and first:
        first = first[0]
    return isinstance(first, dict) and "label" in first and "score" in first


class FunctionModel(Model):
    """A Python callable behind the Model interface (always black-box).

    Parameters
    ----------
    fn : callable
        Maps an (n, ...) array to probabilities (n, k), logits (n, k), a positive-class
        probability or logit (n, 1), labels (n,), or regression values (n,). Hugging Face
        ``pipeline`` output is understood too: ``[{"label", "score"}, ...]`` gives labels (pass
        ``classes``), ``top_k=None`` output gives every class's probability.
    classes : array-like, optional
        Labels of the output columns; required when ``fn`` returns labels. Default
        ``arange(k)``, known after the first call.
    task : {"classification", "regression"}, default "classification"
    output : {"auto", "probabilities", "logits", "labels"}, default "auto"
        What ``fn`` returns; ``"auto"`` decides from the first output (labels for 1-D output,
        probabilities for non-negative rows summing to one, else logits).
    batch_size : int, default 1024
    input_bounds : tuple of float, optional
        Declared valid input range ``(lo, hi)``.

    Examples
    --------
    >>> import numpy as np
    >>> from stalwart.models.function import FunctionModel
    >>> model = FunctionModel(lambda x: (np.asarray(x)[:, 0] > 0).astype(int), classes=[0, 1])
    >>> model.predict_proba(np.array([[1.0], [-1.0]])).tolist()
    [[0.0, 1.0], [1.0, 0.0]]
    """

    def __init__(self, fn: Callable[[Any], Any], classes: Any = None, task: Task = "classification",
                 output: FunctionOutput = "auto", batch_size: int = 1024,
                 input_bounds: tuple[float, float] | None = None) -> None:
        super().__init__()
        if not callable(fn):
            raise ModelError(f"FunctionModel(fn=...) must be callable; got {type(fn).__name__}.")
        check_choice(self, "task", task, ("classification", "regression"))
        check_choice(self, "output", output, ("auto", "probabilities", "logits", "labels"))
        check_positive(self, "batch_size", batch_size, integer=True)
        self.fn = fn
        self.task = task
        self.batch_size = int(batch_size)
        self.input_bounds = input_bounds
        self.classes = None if classes is None or task == "regression" else np.asarray(classes)
        self._output = output
        self._kind: str | None = None if output == "auto" else output
        self.output_kind = "values" if task == "regression" else (
            "probabilities" if output == "auto" else output)

    def _raw_predict(self, x: Any) -> np.ndarray:
        try:
            raw = self.fn(x)
        except (StalwartError, MemoryError):
            raise
        except Exception as exc:  # noqa: BLE001 - the user's function raises any type
            raise model_call_error(self.name, exc, x) from None
        if _is_pipeline_output(raw):
            return self._from_pipeline_output(raw, len(x))
        try:
            out = np.asarray(raw)
        except (TypeError, ValueError) as exc:
            raise ModelError(f"the function returned {type(raw).__name__} that is not an array ({exc}); it must "
                             "return scores (n, n_classes), labels (n,) or values (n,).") from None
        if out.dtype == object and out.ndim >= 1 and any(isinstance(v, (dict, list)) for v in out.ravel()[:5]):
            raise ModelError("the function returned nested objects, not numbers or labels; return an array of "
                             "scores (n, n_classes) or labels (n,).")
        if out.ndim == 0:
            raise ModelError(f"the function returned a single {type(raw).__name__} value for {len(x)} inputs; it "
                             "must return one output per sample: scores (n, n_classes), labels (n,) or values (n,).")
        if len(out) != len(x):
            raise ModelError(f"the function returned {len(out)} outputs for {len(x)} inputs; it must "
                             "return one row per sample.")
        if out.dtype.kind in "fc":
            # before the output kind is judged: NaN rows would pass for logits and fix it wrongly for good
            check_finite_output(out, self.name)
        if self.task == "regression":
            return np.asarray(out, dtype=np.float64).reshape(len(x))
        if self._kind is None:
            self._kind = _detect_kind(out)
            self.output_kind = self._kind
        if self._kind == "labels":
            return self._one_hot(out.reshape(len(x)))
        probs = scores_to_probabilities(out, self._kind)
        if self.classes is None:
            self.classes = np.arange(probs.shape[1])
        elif probs.shape[1] != self.n_classes:
            raise ModelError(f"the function returned {probs.shape[1]} scores per sample but classes has "
                             f"{self.n_classes} labels; pass one label per output column.")
        return probs

    def _from_pipeline_output(self, raw: list, n: int) -> np.ndarray:
        """Scores from Hugging Face ``pipeline`` output.

        ``[{"label", "score"}, ...]`` (the top class per sample) gives labels: the scores of the
        other classes are unknown. ``[[{"label", "score"}, ...], ...]`` (``top_k=None``: every
        class per sample) gives the full probability rows, columns in the order of ``classes``
        (default: the labels of the first sample, sorted).
        """
        if len(raw) != n:
            raise ModelError(f"the function returned {len(raw)} outputs for {n} inputs; it must return one per sample.")
        if self.task == "regression":
            raise ModelError("the function returned label/score dicts (classifier output) but task='regression'.")
        if isinstance(raw[0], dict):
            self._kind = self.output_kind = "labels"
            return self._one_hot(np.asarray([d["label"] for d in raw]))
        if self.classes is None:
            self.classes = np.asarray(sorted(d["label"] for d in raw[0]))
        index = {c: j for j, c in enumerate(self.classes.tolist())}
        probs = np.zeros((n, len(index)))
        for i, row in enumerate(raw):
            for d in row:
                if d["label"] not in index:
                    raise ModelError(f"the function returned label {d['label']!r}, not in classes "
                                     f"{self.classes.tolist()[:20]}; pass every label in classes=[...].")
                probs[i, index[d["label"]]] = float(d["score"])
        self._kind = self.output_kind = "probabilities"
        return probs

    def _one_hot(self, labels: np.ndarray) -> np.ndarray:
        if self.classes is None:
            raise ModelError("the function returns labels, so the model cannot know every class from "
                             "its output; pass classes=[...] (all labels, in a fixed order) to wrap().")
        hit = labels[:, None] == self.classes[None, :]
        unknown = ~hit.any(axis=1)
        if unknown.any():
            values = labels[unknown].tolist()
            try:
                shown = list(dict.fromkeys(values))[:10]
            except TypeError:  # unhashable outputs (dicts, lists): show them as text
                shown = [repr(v) for v in values[:10]]
            raise ModelError(f"the function returned labels not in classes: {shown}; classes are "
                             f"{self.classes.tolist()[:20]}.")
        return hit.astype(np.float64)

    @property
    def name(self) -> str:
        return f"FunctionModel[{getattr(self.fn, '__qualname__', type(self.fn).__name__)}]"

    def _fingerprint_bytes(self) -> bytes:
        # a function's identity is its code; closures over state are not visible here
        code = getattr(self.fn, "__code__", None)
        parts = [getattr(self.fn, "__module__", "") or "", getattr(self.fn, "__qualname__", type(self.fn).__name__)]
        if code is not None:
            parts.append(hashlib.sha256(code.co_code).hexdigest())
            parts.append(repr(code.co_consts))
        return "|".join(map(str, parts)).encode()
