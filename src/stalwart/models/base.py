"""The one Model interface every adapter implements.

A Model is ``predict_proba`` (classification) or ``predict`` (regression) plus declared facts:
``task``, ``classes``, ``output_kind`` and, when gradients are available, ``torch_logits``.
Every call that reaches the underlying model is counted in ``n_queries`` (samples, not calls),
which black-box attacks report as their query cost.
"""

from __future__ import annotations

import hashlib
import re
from abc import ABC, abstractmethod
from typing import Any, Literal

import numpy as np

from stalwart.errors import InputError, ModelError, StalwartError

Task = Literal["classification", "regression"]
OutputKind = Literal["probabilities", "logits", "labels", "values"]


def short_error(exc: BaseException, limit: int = 400) -> str:
    """``Type: message`` of a library error on one line; for TorchScript's interpreter errors only
    the last line (the error itself, not the serialized code and Python stack before it), and
    without sentences that point to web pages."""
    text = str(exc)
    if "Traceback of TorchScript" in text:
        text = [line for line in text.splitlines() if line.strip()][-1]
    text = " ".join(text.split())
    name = type(exc).__name__
    text = text.removeprefix(f"{name}: ")  # TorchScript's last line names the type already
    # sentences pointing to web pages go: reports are self-contained and carry no links
    text = " ".join(part for part in re.split(r"(?<=\.)\s+", text) if "://" not in part)
    if len(text) > limit:  # at a word boundary: a message cut mid-word reads as a different word
        text = text[:limit].rsplit(" ", 1)[0] + " …"
    return f"{name}: {text}"


def model_call_error(name: str, exc: BaseException, x: Any, *, expects: str | None = None,
                     numeric: bool = False, mismatch: bool = False) -> StalwartError:
    """The stalwart error for a user's model that raised ``exc`` on ``x``; raise it ``from None``.

    An :class:`InputError` when ``x`` is the likely cause: values that are not numbers (only when
    the model takes ``numeric`` input), NaN or infinite values, or samples of another shape than
    the model takes (``mismatch``, with ``expects`` saying what it takes, e.g. ``"(n, 4)"``).
    Otherwise a :class:`ModelError`. The model's own error follows on one line
    (:func:`short_error`), after a first sentence that stands alone.
    """
    said = f"The model raised {short_error(exc, limit=1000)}"  # whole: reports state an error once, uncut
    problem = _value_problem(x, numeric)
    if problem == "text":
        return InputError(f"{name} takes numbers and x holds values that are not numeric; encode text or "
                          f"categorical columns as numbers first (or put an encoder in the model's pipeline). {said}")
    if problem == "nan":
        return InputError(f"{name} does not accept the NaN or infinite values in x; impute or drop them first, or "
                          f"add an imputer to the model's pipeline. {said}")
    shape = _shape_of(x)
    if mismatch and expects:
        return InputError(f"x has shape {shape} but {name} expects {expects}; reshape x or pass the features the "
                          f"model was trained on. {said}")
    want = f"; it expects {expects}" if expects else ""
    return ModelError(f"{name} cannot take this data (x of shape {shape}{want}); pass data of the form the model "
                      f"was trained on. {said}")


def _shape_of(x: Any) -> str:
    shape = getattr(x, "shape", None)
    if shape is None:
        try:
            shape = np.shape(x)
        except (TypeError, ValueError):  # ragged
            return f"({len(x)} samples)" if hasattr(x, "__len__") else type(x).__name__
    return str(tuple(int(s) for s in shape))


def _value_problem(x: Any, numeric: bool) -> str:
    """``"text"``, ``"nan"`` or ``""``: what in ``x`` likely made a model fail (a diagnosis only)."""
    import pandas as pd

    try:
        if isinstance(x, pd.DataFrame):
            values = x.select_dtypes("number").to_numpy(dtype=np.float64)
            return "nan" if bool(x.isna().to_numpy().any()) or not np.isfinite(values).all() else ""
        if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch tensor
            x = x.detach().cpu().numpy()
        arr = np.asarray(x)
    except Exception:  # noqa: BLE001 - nothing to diagnose in something numpy cannot read
        return ""
    if arr.dtype.kind in "OUSV":
        if not numeric:
            return ""
        try:  # None and pd.NA are missing values, not text
            arr = np.where(pd.isna(arr), np.nan, arr).astype(np.float64)
        except (TypeError, ValueError):
            return "text"
    if arr.dtype.kind in "fc" and not np.isfinite(arr).all():
        return "nan"
    return ""


def check_finite_output(scores: np.ndarray, name: str) -> np.ndarray:
    """``scores`` if every value is finite, else a :class:`ModelError` naming the rows.

    A NaN score must never become a class (``argmax`` of NaN is 0) nor a regression value: it
    means the model could not answer for that input.
    """
    if scores.dtype.kind in "fc":
        bad = ~np.isfinite(scores)
        if bad.any():
            rows = np.flatnonzero(bad.reshape(len(scores), -1).any(axis=1))
            raise ModelError(
                f"{name} returned NaN or infinite outputs for {rows.size} of {len(scores)} input(s) (first rows: "
                f"{rows[:5].tolist()}); it cannot answer for them. Inputs with missing values need a model that "
                "handles them (e.g. an imputer in the pipeline)."
            )
    return scores


class Model(ABC):
    """Base of every wrapped model.

    Subclasses implement ``_raw_predict(x)`` returning an (n, k) score array for
    classification (probabilities, or one-hot rows when only labels are available) or an (n,)
    array for regression. Batching and query counting live here.
    """

    task: Task = "classification"
    classes: np.ndarray | None = None
    output_kind: OutputKind = "probabilities"
    batch_size: int = 1024
    #: declared valid input range (lower, upper), if known; attacks use it as default bounds
    input_bounds: tuple[float, float] | None = None
    #: names of the input columns the model was fitted on, in its order (tabular), when it declares them
    feature_names: list[str] | None = None
    #: number of input features (tabular), when the model declares it
    n_features: int | None = None
    #: calls of ``predict_proba`` a prediction is judged on: 1 for a deterministic model; a randomized
    #: one (:class:`stalwart.defend.RandomizedModel`, :class:`stalwart.defend.EOT`) answers each call
    #: with a fresh draw, and attacks and ``evaluate`` judge it by majority vote over this many calls
    #: (:func:`stalwart.attacks.base.predicted_index`)
    verdict_draws: int = 1

    def __init__(self) -> None:
        self.n_queries = 0

    # -- what subclasses provide ------------------------------------------------------------
    @abstractmethod
    def _raw_predict(self, x: Any) -> np.ndarray:
        """Scores for one batch: (n, n_classes) for classification, (n,) for regression."""

    @property
    def differentiable(self) -> bool:
        """Whether :meth:`torch_logits` is available (white-box attacks need it)."""
        return False

    def torch_logits(self, x):  # noqa: ANN001 - torch is imported lazily
        """Differentiable logits (or log-probabilities) for a float tensor batch."""
        raise ModelError(
            f"{self.name} is a black-box model: it gives no gradients, so white-box attacks "
            "(FGSM, PGD, ...) cannot run on it. Use a black-box attack, or wrap a torch module "
            "or a scikit-learn model that has a torch mirror (linear models, MLPClassifier)."
        )

    @property
    def logits_from_probabilities(self) -> bool:
        """Whether :meth:`torch_logits` are logarithms of the model's probabilities (a network that
        ends in a softmax): their gradients saturate and can hide adversarial directions."""
        return False

    @property
    def name(self) -> str:
        return type(self).__name__

    def fingerprint(self) -> str:
        """A short stable hash of the model's identity (parameters where available)."""
        return hashlib.sha256(self._fingerprint_bytes()).hexdigest()[:16]

    def _fingerprint_bytes(self) -> bytes:
        return repr(self).encode()

    # -- public API ---------------------------------------------------------------------------
    def _batches(self, x: Any):
        n = len(x)
        for start in range(0, n, self.batch_size):
            yield x[start:start + self.batch_size]

    def _scores(self, x: Any) -> np.ndarray:
        n = len(x)
        if n == 0:
            from stalwart.errors import InputError

            raise InputError("x is empty; pass at least one sample to the model.")
        parts = []
        for batch in self._batches(x):
            out = np.asarray(self._raw_predict(batch))
            if out.ndim == 0 or len(out) != len(batch):
                raise ModelError(f"{self.name} returned {out.size if out.ndim == 0 else len(out)} output(s) for "
                                 f"{len(batch)} input(s); the data is not of the form it takes (e.g. a table "
                                 "given to a text model, or text to a tabular one).")
            parts.append(out)
            self.n_queries += len(batch)
        return check_finite_output(np.concatenate(parts, axis=0), self.name)

    def predict_proba(self, x: Any) -> np.ndarray:
        """Class probabilities, shape (n, n_classes), columns in the order of ``classes``."""
        if self.task != "classification":
            raise ModelError(f"{self.name} is a regression model; use predict() instead of predict_proba().")
        return self._scores(x)

    def scores_tensor(self, x):  # noqa: ANN001, ANN201 - torch is imported lazily
        """Class probabilities for a float tensor batch, as a float32 tensor on ``x``'s device.

        Counts ``x.shape[0]`` queries. Black-box attacks call this in their inner loop: it gives
        only scores (no gradients), and adapters that run on torch override it to skip the
        numpy round trip.
        """
        import torch

        return torch.as_tensor(self.predict_proba(x.cpu().numpy()), dtype=torch.float32, device=x.device)

    def predict(self, x: Any) -> np.ndarray:
        """Predicted labels (classification) or values (regression)."""
        scores = self._scores(x)
        if self.task == "regression":
            return scores.reshape(len(scores))
        return np.asarray(self.classes)[np.argmax(scores, axis=1)]

    def known_classes(self, x: Any) -> np.ndarray | None:
        """``classes``, found by one prediction on ``x[:1]`` when the model has not declared them
        (a TorchScript or ONNX model reveals its number of outputs only when it runs)."""
        if self.task == "classification" and self.classes is None:
            try:
                self.predict_proba(x[:1])
            except StalwartError:
                raise
            except Exception as exc:  # noqa: BLE001 - the user's model failing on this data is an input problem
                raise ModelError(f"{self.name} cannot take this data: {short_error(exc)}") from None
        return self.classes

    def reset_queries(self) -> None:
        self.n_queries = 0

    @property
    def n_classes(self) -> int:
        return 0 if self.classes is None else len(self.classes)

    def __repr__(self) -> str:
        return f"{self.name}(task={self.task!r}, classes={None if self.classes is None else list(self.classes)})"
