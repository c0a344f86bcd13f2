"""Augmentation training: teach a model the natural perturbations it will meet.

Three pieces, one per way models are trained:

- :class:`ImageAugment` — a torch-style transform for images (``C x H x W`` or ``N x C x H x W``),
  usable in a ``torchvision.transforms.Compose`` or called on a batch in a training loop;
- :class:`TextAugmenter` — ``augment(texts)`` for text pipelines;
- :class:`AugmentedClassifier` — a scikit-learn meta-estimator that fits a clone of its
  estimator on the training data plus perturbed copies of it.

Each picks, per sample, whether to perturb (probability ``p``), which registered perturbation
and which severity, from its own seeded generator: the same seed gives the same sequence of
augmented batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.exceptions import NotFittedError as SklearnNotFittedError
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from stalwart._validation import check_image_layout, check_param, param_error
from stalwart.data.schema import Schema
from stalwart.errors import InputError, ModelError
from stalwart.perturb.base import SEVERITIES, Perturbation, get, names

__all__ = ["ImageAugment", "TextAugmenter", "AugmentedClassifier"]


def _perturbations(owner: object, value: Any, modality: str) -> list[Perturbation]:
    available = names(modality)
    if isinstance(value, str) or not isinstance(value, Sequence) or not value \
            or not all(isinstance(v, str) for v in value):
        raise param_error(owner, "perturbations", f"a non-empty list of {modality} perturbation names "
                          f"(one of {available})", value)
    wrong = [v for v in value if v not in available]
    if wrong:
        raise param_error(owner, "perturbations", f"{modality} perturbation names; {wrong} are not "
                          f"(known: {available})", value)
    return [get(v) for v in value]


def _severities(owner: object, value: Any) -> tuple[int, ...]:
    ok = isinstance(value, Sequence) and not isinstance(value, str) and len(value) > 0 and all(
        isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s in SEVERITIES for s in value)
    check_param(owner, "severities", value, ok, "a non-empty list of integers in 1..5")
    return tuple(int(s) for s in value)


def _probability(owner: object, p: Any) -> float:
    check_param(owner, "p", p, isinstance(p, (int, float, np.number)) and not isinstance(p, bool) and 0 <= p <= 1,
                "a number in [0, 1]")
    return float(p)


def _seed(owner: object, seed: Any) -> Any:
    check_param(owner, "seed", seed, isinstance(seed, np.random.Generator)
                or (isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and seed >= 0),
                "a non-negative integer or a numpy Generator")
    return seed


class _Sampler:
    """Per-sample choice of (apply?, perturbation, severity) and one child stream per cell."""

    def __init__(self, owner: object, perturbations: Sequence[str], modality: str,
                 severities: Sequence[int], p: float, seed: Any) -> None:
        self.perturbations = _perturbations(owner, perturbations, modality)
        self.severities = _severities(owner, severities)
        self.p = _probability(owner, p)
        self.rng = _seed(owner, seed) if isinstance(seed, np.random.Generator) else \
            np.random.default_rng(_seed(owner, seed))

    def plan(self, n: int) -> list[tuple[Perturbation, int, np.ndarray, np.random.Generator]]:
        """``(perturbation, severity, rows, generator)`` per non-empty cell; fixed draws per call."""
        rng = self.rng
        on = rng.random(n) < self.p
        which = rng.integers(0, len(self.perturbations), n)
        sev = rng.integers(0, len(self.severities), n)
        seeds = rng.integers(0, 2**63, (len(self.perturbations), len(self.severities)))
        cells = []
        for k, pert in enumerate(self.perturbations):
            for s, severity in enumerate(self.severities):
                rows = np.flatnonzero(on & (which == k) & (sev == s))
                if rows.size:
                    cells.append((pert, severity, rows, np.random.default_rng(seeds[k, s])))
        return cells


class ImageAugment:
    """A transform that perturbs each image with probability ``p`` by a random listed perturbation.

    Parameters
    ----------
    perturbations : list of str
        Registered image perturbations, e.g. ``["gaussian_noise", "gaussian_blur", "contrast"]``.
    severities : list of int, default (1, 2, 3)
        Severity drawn uniformly per image.
    p : float in [0, 1], default 0.5
        Probability that an image is perturbed at all.
    seed : int or numpy Generator, default 0
        Every call advances the generator. In a multi-worker ``DataLoader`` each worker holds a
        copy of it; seed the workers differently (``worker_init_fn``) if they must differ.
    value_range : (float, float), default (0.0, 1.0)
        Range of the pixel values; outputs are clipped to it.

    Examples
    --------
    >>> import torch
    >>> aug = ImageAugment(["gaussian_noise"], p=1.0, seed=0)
    >>> aug(torch.full((3, 8, 8), 0.5)).shape
    torch.Size([3, 8, 8])
    """

    def __init__(self, perturbations: Sequence[str], severities: Sequence[int] = (1, 2, 3), p: float = 0.5,
                 seed: int | np.random.Generator = 0, value_range: tuple[float, float] = (0.0, 1.0)) -> None:
        self._sampler = _Sampler(self, perturbations, "image", severities, p, seed)
        self.perturbations = list(perturbations)
        self.severities = self._sampler.severities
        self.p = self._sampler.p
        self.seed = seed
        ok = isinstance(value_range, Sequence) and len(value_range) == 2 and all(
            isinstance(v, (int, float, np.number)) and np.isfinite(v) for v in value_range) \
            and value_range[0] < value_range[1]
        check_param(self, "value_range", value_range, ok, "a pair (low, high) with low < high")
        self.value_range = (float(value_range[0]), float(value_range[1]))

    def __repr__(self) -> str:
        return (f"ImageAugment(perturbations={self.perturbations!r}, severities={self.severities!r}, "
                f"p={self.p!r}, seed={self.seed!r})")

    def __call__(self, x: Any) -> Any:
        """Augment a tensor (or array) of shape ``C x H x W`` or ``N x C x H x W``; same type back."""
        is_torch = type(x).__module__.startswith("torch")
        arr = x.detach().cpu().numpy() if is_torch else np.asarray(x)
        if arr.ndim not in (3, 4):
            raise InputError(f"ImageAugment needs an image C x H x W or a batch N x C x H x W; got shape "
                             f"{tuple(arr.shape)}")
        single = arr.ndim == 3
        try:
            batch = np.array(arr[None] if single else arr, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise InputError(f"ImageAugment needs numeric images; x could not be converted ({exc}). Pass the "
                             "pixel values as a float array or tensor.") from None
        check_image_layout(batch.shape, "x", tensor=is_torch)
        if not np.isfinite(batch).all():
            raise InputError("ImageAugment got images with NaN or infinite values; clean them first.")
        lo, hi = self.value_range
        if batch.size and (batch.min() < lo - 1e-6 or batch.max() > hi + 1e-6):
            # clipping to the wrong range would silently wipe out the images
            raise InputError(f"ImageAugment got pixel values in [{batch.min():.4g}, {batch.max():.4g}], outside "
                             f"value_range {self.value_range}; pass the images' range, e.g. "
                             "ImageAugment(..., value_range=(0, 255)), or rescale them.")
        schema = Schema("image", value_range=self.value_range, shape=tuple(batch.shape[1:]))
        out = batch.copy()
        for pert, severity, rows, gen in self._sampler.plan(len(batch)):
            out[rows] = pert.apply(batch[rows], severity, gen, schema)
        out = out[0] if single else out
        if is_torch:
            import torch

            return torch.as_tensor(out, device=x.device).to(x.dtype)
        return out.astype(arr.dtype, copy=False)


class TextAugmenter:
    """Perturbs each text with probability ``p`` by a random listed text perturbation.

    Parameters
    ----------
    perturbations : list of str
        Registered text perturbations, e.g. ``["keyboard_typos", "contract", "name_swap"]``.
    severities : list of int, default (1, 2, 3)
    p : float in [0, 1], default 0.5
    seed : int or numpy Generator, default 0

    Examples
    --------
    >>> TextAugmenter(["contract"], severities=[5], p=1.0).augment(["I do not know."])
    ["I don't know."]
    """

    def __init__(self, perturbations: Sequence[str], severities: Sequence[int] = (1, 2, 3), p: float = 0.5,
                 seed: int | np.random.Generator = 0) -> None:
        self._sampler = _Sampler(self, perturbations, "text", severities, p, seed)
        self.perturbations = list(perturbations)
        self.severities = self._sampler.severities
        self.p = self._sampler.p
        self.seed = seed

    def __repr__(self) -> str:
        return (f"TextAugmenter(perturbations={self.perturbations!r}, severities={self.severities!r}, "
                f"p={self.p!r}, seed={self.seed!r})")

    def augment(self, texts: Sequence[str]) -> list[str]:
        """Augmented copy of ``texts`` (same length and order)."""
        if isinstance(texts, str) or not isinstance(texts, Sequence):
            raise InputError(f"TextAugmenter.augment(texts=...) must be a list of strings; got "
                             f"{type(texts).__name__}")
        texts = list(texts)
        bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
        if bad:
            raise InputError(f"TextAugmenter.augment(texts=...) must be strings; entries {bad[:5]} are not.")
        out = list(texts)
        for pert, severity, rows, gen in self._sampler.plan(len(texts)):
            for i, t in zip(rows.tolist(), pert.apply([texts[i] for i in rows], severity, gen)):
                out[i] = t
        return out

    __call__ = augment


class NotFittedError(ModelError, SklearnNotFittedError):
    """Predicting before ``fit``: a stalwart :class:`ModelError` that scikit-learn also recognises."""


def _check_fitted(est: AugmentedClassifier) -> None:
    try:
        check_is_fitted(est, "estimator_")
    except SklearnNotFittedError:
        raise NotFittedError(f"this {type(est).__name__} is not fitted yet; call fit(X, y) before predicting.") \
            from None


def _estimator_has(attr: str):
    def check(self: AugmentedClassifier) -> bool:
        return hasattr(self.estimator_ if hasattr(self, "estimator_") else self.estimator, attr)
    return check


class AugmentedClassifier(ClassifierMixin, BaseEstimator):
    """Fit a clone of ``estimator`` on the training data plus ``n_copies`` perturbed copies of it.

    In each copy every row gets one of ``perturbations`` and one of ``severities`` at random.
    Each (perturbation, severity) pair is applied to the *whole* training set and the rows
    assigned to it are kept, so scales such as a column's spread come from all of the data.
    Labels (and ``sample_weight``) are repeated for the copies.

    Parameters
    ----------
    estimator : scikit-learn classifier
    perturbations : list of str, default ("feature_noise",)
        Registered tabular perturbations.
    severities : list of int, default (1, 2, 3)
    n_copies : int >= 1, default 1
    seed : int, default 0
    schema : Schema, optional
        Column kinds, ranges and immutable columns; default: inferred from ``X`` at fit.

    Attributes
    ----------
    estimator_ : the fitted clone
    classes_ : ndarray
    n_features_in_ : int
    feature_names_in_ : ndarray (when ``X`` is a DataFrame)

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> clf = AugmentedClassifier(DecisionTreeClassifier(random_state=0), n_copies=2).fit(X, y)
    >>> clf.predict(X[:3]).tolist()
    [0, 0, 0]
    """

    def __init__(self, estimator: Any, perturbations: Sequence[str] = ("feature_noise",),
                 severities: Sequence[int] = (1, 2, 3), n_copies: int = 1, seed: int = 0,
                 schema: Schema | None = None) -> None:
        self.estimator = estimator
        self.perturbations = perturbations
        self.severities = severities
        self.n_copies = n_copies
        self.seed = seed
        self.schema = schema

    def _augment(self, X: Any, y: np.ndarray, sample_weight: np.ndarray | None):
        est = self.estimator
        check_param(self, "estimator", est, callable(getattr(est, "fit", None)) and
                    callable(getattr(est, "get_params", None)) and not isinstance(est, type),
                    "a scikit-learn classifier instance (with fit and get_params), e.g. LogisticRegression()")
        perts = _perturbations(self, self.perturbations, "tabular")
        severities = _severities(self, self.severities)
        check_param(self, "n_copies", self.n_copies, isinstance(self.n_copies, (int, np.integer))
                    and not isinstance(self.n_copies, bool) and self.n_copies >= 1, "an integer >= 1")
        check_param(self, "seed", self.seed, isinstance(self.seed, (int, np.integer))
                    and not isinstance(self.seed, bool) and self.seed >= 0, "a non-negative integer")
        check_param(self, "schema", self.schema, self.schema is None or
                    (isinstance(self.schema, Schema) and self.schema.modality == "tabular"),
                    "None or a tabular Schema")
        is_frame = isinstance(X, pd.DataFrame)
        if not is_frame:
            try:
                X = np.asarray(X)
            except ValueError as exc:  # ragged rows
                raise InputError(f"AugmentedClassifier.fit(X=...) must be a 2-D table with rows of one length; "
                                 f"{exc}. Pass an array or DataFrame.") from None
        if X.ndim != 2 or len(X) == 0:
            raise InputError(f"AugmentedClassifier.fit(X=...) must be a non-empty 2-D table; got shape {X.shape}. "
                             "Use X.reshape(-1, 1) for a single feature.")
        if y.ndim == 0 or len(y) != len(X):
            raise InputError(f"AugmentedClassifier.fit: X has {len(X)} rows but y has {len(y)}; they must match "
                             "(one label per row).")
        if sample_weight is not None and (np.ndim(sample_weight) != 1 or len(sample_weight) != len(X)):
            raise InputError(f"AugmentedClassifier.fit(sample_weight=...) must have one weight per row of X "
                             f"({len(X)}); got shape {np.shape(sample_weight)}.")
        n = len(X)
        rng = np.random.default_rng(self.seed)
        cells = len(perts) * len(severities)
        pieces = [X]
        for _ in range(int(self.n_copies)):
            assign = rng.integers(0, cells, n)
            seeds = rng.integers(0, 2**63, cells)
            positions, parts = [], []
            for c in np.unique(assign):
                rows = np.flatnonzero(assign == c)
                pert, severity = perts[c // len(severities)], severities[c % len(severities)]
                full = pert.apply(X, severity, np.random.default_rng(seeds[c]), self.schema)
                positions.append(rows)
                parts.append(full.iloc[rows] if is_frame else full[rows])
            # back into row order; concat, not item assignment, so a column may change dtype
            order = np.argsort(np.concatenate(positions), kind="stable")
            pieces.append(pd.concat(parts).iloc[order] if is_frame else np.concatenate(parts)[order])
        X_aug = pd.concat(pieces, ignore_index=True) if is_frame else np.concatenate(pieces, axis=0)
        reps = int(self.n_copies) + 1
        y_aug = np.tile(y, reps)
        w_aug = None if sample_weight is None else np.tile(np.asarray(sample_weight), reps)
        return X_aug, y_aug, w_aug

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> AugmentedClassifier:
        """Fit a clone of ``estimator`` on ``X`` plus its perturbed copies."""
        y = np.asarray(y)
        X_aug, y_aug, w_aug = self._augment(X, y, sample_weight)
        est = clone(self.estimator)
        if w_aug is None:
            est.fit(X_aug, y_aug)
        else:
            est.fit(X_aug, y_aug, sample_weight=w_aug)
        self.estimator_ = est
        self.classes_ = est.classes_
        self.n_features_in_ = int(X_aug.shape[1])
        if isinstance(X, pd.DataFrame):
            self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Labels from the fitted estimator."""
        _check_fitted(self)
        return self.estimator_.predict(X)

    @available_if(_estimator_has("predict_proba"))
    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities from the fitted estimator."""
        _check_fitted(self)
        return self.estimator_.predict_proba(X)

    @available_if(_estimator_has("decision_function"))
    def decision_function(self, X: Any) -> np.ndarray:
        """Decision scores from the fitted estimator."""
        _check_fitted(self)
        return self.estimator_.decision_function(X)
