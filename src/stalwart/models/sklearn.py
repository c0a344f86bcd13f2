"""Adapter for fitted scikit-learn estimators and Pipelines."""

from __future__ import annotations

import hashlib
import pickle
from typing import Any

import numpy as np

from stalwart._validation import check_positive
from stalwart.errors import InputError, ModelError, StalwartError
from stalwart.models.base import Model, Task, model_call_error

__all__ = ["SklearnModel", "is_sklearn_estimator"]


def is_sklearn_estimator(obj: Any) -> bool:
    """Whether ``obj`` is a scikit-learn estimator (anything deriving from ``BaseEstimator``)."""
    try:
        from sklearn.base import BaseEstimator
    except ImportError:  # pragma: no cover - sklearn is a core dependency
        return False
    return isinstance(obj, BaseEstimator)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    # the two branches keep exp() from overflowing for large |z|
    out = np.empty_like(z, dtype=np.float64)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


def _hash_value(h: Any, value: Any, seen: set[int]) -> None:
    """Feed a deterministic byte encoding of ``value`` (an estimator's state) into ``h``."""
    h.update(type(value).__qualname__.encode())
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes, np.generic)):
        h.update(repr(value).encode())
        return
    if id(value) in seen:
        return
    seen.add(id(value))
    if isinstance(value, np.ndarray):
        h.update(f"{value.dtype.str}{value.shape}".encode())
        if value.dtype == object:
            for item in value.ravel().tolist():
                _hash_value(h, item, seen)
        else:
            h.update(np.ascontiguousarray(value).tobytes())
    elif isinstance(value, dict):
        for key in sorted(value, key=repr):
            h.update(repr(key).encode())
            _hash_value(h, value[key], seen)
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        for item in items:
            _hash_value(h, item, seen)
    elif callable(value) and hasattr(value, "__qualname__"):
        h.update(f"{getattr(value, '__module__', '')}.{value.__qualname__}".encode())
    elif hasattr(value, "__dict__") and not isinstance(value, type):
        _hash_value(h, vars(value), seen)
    else:
        try:
            h.update(pickle.dumps(value, protocol=4))
        except Exception:  # noqa: BLE001 - unpicklable leftovers only weaken the hash
            h.update(repr(value).encode())


class SklearnModel(Model):
    """A fitted scikit-learn estimator or Pipeline behind the Model interface.

    Classifiers answer through ``predict_proba``; without it through ``decision_function``
    (softmax over columns, or a sigmoid for binary scores: ``output_kind="logits"``); without
    either through ``predict`` (one-hot rows: ``output_kind="labels"``). Regressors answer
    through ``predict``. Linear models, ``MLPClassifier`` and scaler pipelines get an exact torch
    mirror (:func:`stalwart.models.mirrors.torch_mirror`), which makes them differentiable.

    Parameters
    ----------
    estimator : sklearn estimator
        A fitted estimator or Pipeline.
    classes : array-like, optional
        Override of ``estimator.classes_`` (same length, same order).
    task : {"classification", "regression"}, optional
        Inferred from the estimator when not given.
    batch_size : int, optional
        Samples per call into the estimator (default 1024).
    input_bounds : tuple of float, optional
        Declared valid input range ``(lo, hi)``.
    """

    def __init__(self, estimator: Any, classes: Any = None, task: Task | None = None,
                 batch_size: int | None = None,
                 input_bounds: tuple[float, float] | None = None) -> None:
        super().__init__()
        from sklearn.base import is_classifier, is_regressor
        from sklearn.exceptions import NotFittedError
        from sklearn.utils.validation import check_is_fitted

        if not is_sklearn_estimator(estimator):
            raise ModelError(f"SklearnModel(estimator=...) must be a scikit-learn estimator; "
                             f"got {type(estimator).__name__}.")
        try:
            check_is_fitted(estimator)
        except NotFittedError:
            raise ModelError(
                f"{type(estimator).__name__} is not fitted; call .fit(X, y) on it before wrapping it."
            ) from None
        self.estimator = estimator
        if batch_size is not None:
            self.batch_size = int(check_positive(self, "batch_size", batch_size, integer=True))
        self.input_bounds = input_bounds

        if task is None:
            if is_classifier(estimator) or (hasattr(estimator, "classes_") and not is_regressor(estimator)):
                task = "classification"
            elif is_regressor(estimator):
                task = "regression"
        if task not in ("classification", "regression"):
            raise ModelError(
                f"cannot tell whether {type(estimator).__name__} is a classifier or a regressor; "
                "pass task='classification' or task='regression'."
            )
        self.task = task
        if not hasattr(estimator, "predict") and not hasattr(estimator, "predict_proba"):
            raise ModelError(f"{type(estimator).__name__} has no predict method; wrap a predictor, "
                             "not a transformer.")

        if task == "regression":
            self.output_kind = "values"
            self._method = "predict"
            self.classes = None
        else:
            if hasattr(estimator, "predict_proba"):
                self._method, self.output_kind = "predict_proba", "probabilities"
            elif hasattr(estimator, "decision_function"):
                self._method, self.output_kind = "decision_function", "logits"
            else:
                self._method, self.output_kind = "predict", "labels"
            fitted = getattr(estimator, "classes_", None)
            if isinstance(fitted, list) or type(estimator).__name__.startswith("MultiOutput"):
                raise ModelError(
                    f"{type(estimator).__name__} predicts several outputs per sample; stalwart tests one "
                    "output at a time. Wrap each output separately, e.g. for output k of a fitted "
                    "MultiOutputClassifier m: wrap(m.estimators_[k])."
                )
            if classes is None and fitted is None:
                raise ModelError(f"{type(estimator).__name__} has no classes_; pass classes=[...] "
                                 "in the order of its output columns.")
            if classes is not None and fitted is not None and len(classes) != len(fitted):
                raise ModelError(f"classes has {len(classes)} labels but the estimator knows "
                                 f"{len(fitted)} ({list(fitted)[:20]}); pass one label per class.")
            self.classes = np.asarray(fitted if classes is None else classes)

        self.feature_names = (None if getattr(estimator, "feature_names_in_", None) is None
                              else [str(c) for c in estimator.feature_names_in_])
        try:
            self.n_features = int(estimator.n_features_in_)
        except (AttributeError, TypeError):  # e.g. a text pipeline that starts with a vectorizer
            self.n_features = None

        from stalwart.models.mirrors import torch_mirror

        self.mirror = torch_mirror(estimator) if task == "classification" else None

    # -- inputs ---------------------------------------------------------------------------------
    def _prepare(self, x: Any) -> Any:
        """Check and convert x once, before batching: DataFrame columns, feature count, emptiness."""
        try:
            import pandas as pd
        except ImportError:  # pragma: no cover - pandas is a core dependency
            pd = None
        if pd is not None and isinstance(x, pd.DataFrame):
            if len(x) == 0:
                raise InputError("x is empty (0 rows); pass at least one sample to the model.")
            if self.feature_names is not None:
                have = [str(c) for c in x.columns]
                missing = [c for c in self.feature_names if c not in have]
                unknown = [c for c in have if c not in self.feature_names]
                if missing or unknown:
                    raise InputError(
                        f"x's columns do not match the columns the model was fitted on: missing "
                        f"{missing[:20]}, unknown {unknown[:20]}. Pass a DataFrame with exactly "
                        f"these columns: {self.feature_names[:20]}."
                    )
                x = x.set_axis(have, axis=1)[self.feature_names]
            elif self.n_features is not None:
                if x.shape[1] != self.n_features:
                    raise InputError(f"x has {x.shape[1]} columns but the model expects {self.n_features} "
                                     "features.")
                # fitted on an array: columns are positional, and sklearn warns on named input
                return x.to_numpy()
            return x
        if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch tensor
            x = x.detach().cpu().numpy()
        if self.n_features is None:
            # no declared width (e.g. a text pipeline): hand x over as given, lists of strings included
            if len(x) == 0:
                raise InputError("x is empty; pass at least one sample to the model.")
            return x
        arr = np.asarray(x)
        if arr.ndim == 0 or len(arr) == 0:
            raise InputError(f"x is empty (shape {arr.shape}); pass at least one sample to the model.")
        if arr.ndim != 2:
            raise InputError(f"x must be 2-D (n_samples, n_features={self.n_features}); got shape "
                             f"{arr.shape}. Use x.reshape(1, -1) for a single sample.")
        if arr.shape[1] != self.n_features:
            raise InputError(f"x has {arr.shape[1]} features but the model expects {self.n_features}; "
                             "pass the same columns the model was fitted on.")
        if self.feature_names is not None:
            return pd.DataFrame(arr, columns=self.feature_names)
        return arr

    def _batches(self, x: Any):
        if hasattr(x, "iloc"):
            for start in range(0, len(x), self.batch_size):
                yield x.iloc[start:start + self.batch_size]
        else:
            yield from super()._batches(x)

    def _scores(self, x: Any) -> np.ndarray:
        return super()._scores(self._prepare(x))

    # -- Model interface ----------------------------------------------------------------------
    def _call(self, method: str, x: Any) -> Any:
        """``estimator.<method>(x)``; the estimator failing on this input becomes a stalwart error."""
        try:
            return getattr(self.estimator, method)(x)
        except (StalwartError, MemoryError):
            raise
        except Exception as exc:  # noqa: BLE001 - sklearn and third-party estimators raise any type
            if self.n_features is None:
                expects = None
            else:
                named = "" if self.feature_names is None else f", columns {self.feature_names[:10]}"
                expects = f"(n, {self.n_features}) numeric features{named}"
            raise model_call_error(self.name, exc, x, expects=expects, numeric=self.n_features is not None) \
                from None

    def _raw_predict(self, x: Any) -> np.ndarray:
        if self.task == "regression":
            return np.asarray(self._call("predict", x), dtype=np.float64).reshape(len(x))
        if self._method == "predict_proba":
            return np.asarray(self._call("predict_proba", x), dtype=np.float64)
        if self._method == "decision_function":
            z = np.asarray(self._call("decision_function", x), dtype=np.float64)
            if z.ndim == 1:
                p = _sigmoid(z)
                return np.stack([1.0 - p, p], axis=1)
            return _softmax(z)
        labels = np.asarray(self._call("predict", x))
        onehot = labels[:, None] == np.asarray(self.estimator.classes_)[None, :]
        return onehot.astype(np.float64)

    @property
    def differentiable(self) -> bool:
        return self.mirror is not None

    def torch_logits(self, x: Any) -> Any:
        """Differentiable logits from the exact torch mirror; counts ``x.shape[0]`` queries."""
        if self.mirror is None:
            return super().torch_logits(x)
        import torch

        if not isinstance(x, torch.Tensor):
            x = torch.as_tensor(np.asarray(x, dtype=np.float32))
        if x.ndim != 2 or (self.n_features is not None and x.shape[1] != self.n_features):
            raise InputError(f"x must have shape (n, {self.n_features}); got {tuple(x.shape)}.")
        out = self.mirror(x.to(torch.float64)).to(x.dtype if x.is_floating_point() else torch.float32)
        self.n_queries += int(x.shape[0])
        return out

    @property
    def device(self) -> Any:
        import torch

        return torch.device("cpu")

    @property
    def name(self) -> str:
        return f"SklearnModel[{type(self.estimator).__name__}]"

    def _fingerprint_bytes(self) -> bytes:
        h = hashlib.sha256()
        _hash_value(h, self.estimator, set())
        return h.digest()

    def __repr__(self) -> str:
        return (f"SklearnModel({type(self.estimator).__name__}, task={self.task!r}, "
                f"classes={None if self.classes is None else self.classes.tolist()})")
