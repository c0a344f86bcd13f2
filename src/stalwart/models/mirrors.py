"""Exact torch mirrors of fitted scikit-learn models, so they can be attacked white-box.

A mirror is a ``torch.nn.Module`` whose output are logits with ``softmax(mirror(x))`` equal to
what :class:`~stalwart.models.sklearn.SklearnModel` reports for the estimator (its
``predict_proba`` where it has one, else the softmax/sigmoid of ``decision_function``). Binary
models give two columns ``[0, z]``, because ``softmax([0, z]) = [1 - sigmoid(z), sigmoid(z)]``.
Weights are copied in float64; the mirror computes in float64 and has no trainable parameters.

Supported: ``LogisticRegression`` (multinomial and one-vs-rest), linear classifiers scored by
``decision_function`` (``LinearSVC``, ``SGDClassifier``, ``RidgeClassifier``, ``Perceptron``,
``LinearDiscriminantAnalysis``), ``MLPClassifier`` (identity, logistic, tanh, relu), and
Pipelines whose steps before the final estimator are ``StandardScaler``, ``MinMaxScaler``,
``MaxAbsScaler`` or ``'passthrough'``. Everything else (trees, kernels, ...) has no exact mirror.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["torch_mirror"]


def _const(values: Any) -> torch.Tensor:
    return torch.tensor(np.array(values, dtype=np.float64))


class _Affine(torch.nn.Module):
    """``x * scale + shift``, optionally clamped (MinMaxScaler(clip=True))."""

    def __init__(self, scale: Any, shift: Any, clamp: tuple[float, float] | None = None) -> None:
        super().__init__()
        self.register_buffer("scale", _const(scale))
        self.register_buffer("shift", _const(shift))
        self.clamp = clamp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x * self.scale + self.shift
        return out if self.clamp is None else out.clamp(*self.clamp)


class _Linear(torch.nn.Module):
    """Decision scores ``x W^T + b`` turned into logits.

    ``head`` is ``"softmax"`` (multinomial or decision-function scores) or ``"ovr"`` (class
    probabilities are normalised sigmoids, so the logits are ``log sigmoid(z)``).
    """

    def __init__(self, coef: Any, intercept: Any, head: str = "softmax") -> None:
        super().__init__()
        coef = np.atleast_2d(np.asarray(coef, dtype=np.float64))
        intercept = np.broadcast_to(np.asarray(intercept, dtype=np.float64), (coef.shape[0],))
        self.register_buffer("weight", _const(coef))
        self.register_buffer("bias", _const(intercept))
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = x @ self.weight.T + self.bias
        if z.shape[1] == 1:
            return torch.cat([torch.zeros_like(z), z], dim=1)
        if self.head == "ovr":
            return torch.nn.functional.logsigmoid(z)
        return z


_ACTIVATIONS = {
    "identity": lambda t: t,
    "logistic": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": torch.relu,
}


class _MLP(torch.nn.Module):
    def __init__(self, coefs: list[Any], intercepts: list[Any], activation: str) -> None:
        super().__init__()
        self.n_layers = len(coefs)
        for i, (w, b) in enumerate(zip(coefs, intercepts)):
            self.register_buffer(f"w{i}", _const(w))
            self.register_buffer(f"b{i}", _const(b))
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        act = _ACTIVATIONS[self.activation]
        for i in range(self.n_layers):
            x = x @ getattr(self, f"w{i}") + getattr(self, f"b{i}")
            if i < self.n_layers - 1:
                x = act(x)
        if x.shape[1] == 1:  # binary: one logistic unit
            return torch.cat([torch.zeros_like(x), x], dim=1)
        return x


def _class_name(est: Any) -> str:
    return type(est).__name__


def _scaler_mirror(step: Any) -> torch.nn.Module | None:
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, StandardScaler

    if step is None or (isinstance(step, str) and step == "passthrough"):
        return torch.nn.Identity()
    if type(step) is StandardScaler:
        d = step.n_features_in_
        mean = step.mean_ if step.with_mean else np.zeros(d)
        scale = step.scale_ if step.with_std else np.ones(d)
        return _Affine(1.0 / scale, -mean / scale)
    if type(step) is MinMaxScaler:
        clamp = tuple(float(v) for v in step.feature_range) if step.clip else None
        return _Affine(step.scale_, step.min_, clamp)
    if type(step) is MaxAbsScaler:
        return _Affine(1.0 / step.scale_, np.zeros_like(step.scale_))
    if type(step) is Pipeline:
        parts = [_scaler_mirror(s) for _, s in step.steps]
        return None if any(p is None for p in parts) else torch.nn.Sequential(*parts)
    return None


def _linear_head(est: Any) -> str | None:
    """Which probabilities the adapter reports for a linear classifier, or None if not exact."""
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.linear_model import (
        LogisticRegression,
        Perceptron,
        RidgeClassifier,
        RidgeClassifierCV,
        SGDClassifier,
    )
    from sklearn.svm import LinearSVC

    n_classes = len(est.classes_)
    if not hasattr(est, "predict_proba"):
        # the adapter uses the softmax / sigmoid of decision_function = x W^T + b
        ok = (LinearSVC, SGDClassifier, RidgeClassifier, RidgeClassifierCV, Perceptron)
        return "softmax" if isinstance(est, ok) else None
    if isinstance(est, LogisticRegression):
        multi = getattr(est, "multi_class", "deprecated")
        ovr = multi == "ovr" or (multi == "auto" and getattr(est, "solver", "") == "liblinear")
        return "ovr" if ovr and n_classes > 2 else "softmax"
    if isinstance(est, SGDClassifier) and est.loss == "log_loss":
        return "ovr" if n_classes > 2 else "softmax"
    if isinstance(est, LinearDiscriminantAnalysis):
        return "softmax"
    return None


def _final_mirror(est: Any) -> torch.nn.Module | None:
    from sklearn.neural_network import MLPClassifier

    if isinstance(est, MLPClassifier):
        if est.out_activation_ not in ("softmax", "logistic") or (
                est.out_activation_ == "logistic" and est.n_outputs_ != 1):
            return None  # multilabel: independent sigmoids, not one distribution
        if est.activation not in _ACTIVATIONS:
            return None
        return _MLP(est.coefs_, est.intercepts_, est.activation)
    if not (hasattr(est, "coef_") and hasattr(est, "intercept_") and hasattr(est, "classes_")):
        return None
    head = _linear_head(est)
    if head is None:
        return None
    coef = np.atleast_2d(np.asarray(est.coef_))  # binary RidgeClassifier stores a 1-D coef_
    if coef.ndim != 2 or (coef.shape[0] == 1) != (len(est.classes_) == 2):
        return None
    return _Linear(coef, est.intercept_, head)


def torch_mirror(estimator: Any) -> torch.nn.Module | None:
    """An exact torch copy of a fitted scikit-learn classifier, or None if there is none.

    Parameters
    ----------
    estimator : sklearn estimator
        A fitted classifier or Pipeline (see the module docstring for what is supported).

    Returns
    -------
    torch.nn.Module or None
        A float64 module in eval mode mapping (n, n_features) inputs to (n, n_classes) logits
        whose softmax equals the adapter's probabilities; None when no exact mirror exists.
    """
    from sklearn.pipeline import Pipeline

    try:
        if isinstance(estimator, Pipeline):
            steps = [s for _, s in estimator.steps]
            prefix = [_scaler_mirror(s) for s in steps[:-1]]
            final = _final_mirror(steps[-1])
            if final is None or any(p is None for p in prefix):
                return None
            mirror = torch.nn.Sequential(*prefix, final)
        else:
            mirror = _final_mirror(estimator)
    except (AttributeError, TypeError, ValueError):  # unusual fitted state: stay black-box
        return None
    if mirror is None:
        return None
    for p in mirror.parameters():
        p.requires_grad_(False)
    return mirror.eval()
