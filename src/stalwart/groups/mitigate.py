"""Mitigation as scikit-learn meta-estimators: reweighing before training, group thresholds after.

- :class:`ReweighedClassifier` (Kamiran & Calders, 2012): each training row of group ``g`` and
  label ``y`` weighs ``P(g) P(y) / P(g, y)``, so that in the weighted data the label is
  independent of the group; the estimator is fitted with those ``sample_weight``.
- :class:`GroupThresholdClassifier` (after Hardt, Price & Srebro, 2016): one threshold on the
  positive-class score per group, chosen on the training data so that every group has the same
  selection rate (``"demographic_parity"``) or the same true-positive rate
  (``"equal_opportunity"``) as the model has overall. Deterministic thresholds; the randomised
  mixing that exact equalized odds needs is not done.

Both read the group from a column of the input table (``sensitive="sex"``), so that
``predict(X)`` works wherever a model is used (checks, suites), and both are binary classifiers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone

from stalwart._validation import check_choice
from stalwart.errors import ConfigError, InputError

__all__ = ["ReweighedClassifier", "GroupThresholdClassifier", "reweighing_weights"]


def reweighing_weights(y: Any, groups: Any) -> np.ndarray:
    """``P(g) P(y) / P(g, y)`` for each row (Kamiran & Calders, 2012)."""
    y, g = np.asarray(y), np.asarray(groups).astype(str)
    w = np.empty(len(y))
    for gv in np.unique(g):
        for yv in np.unique(y):
            cell = (g == gv) & (y == yv)
            if cell.any():
                w[cell] = np.mean(g == gv) * np.mean(y == yv) / np.mean(cell)
    return w


def _group_column(owner: Any, x: Any) -> np.ndarray:
    if not hasattr(x, "columns") or owner.sensitive not in x.columns:
        have = list(getattr(x, "columns", []))[:20]
        raise InputError(f"{type(owner).__name__}(sensitive={owner.sensitive!r}) reads the group from that column of "
                         f"X; X has {have or 'no named columns'}. Pass X as a DataFrame with the column.")
    return x[owner.sensitive].astype(str).to_numpy()


class ReweighedClassifier(ClassifierMixin, BaseEstimator):
    """``estimator`` fitted with Kamiran & Calders' reweighing on the group column ``sensitive``.

    ``drop_sensitive=True`` fits and predicts without that column (the group then only shapes the
    weights).
    """

    def __init__(self, estimator: Any, sensitive: str, *, drop_sensitive: bool = False) -> None:
        self.estimator = estimator
        self.sensitive = sensitive
        self.drop_sensitive = drop_sensitive

    def _x(self, x: Any) -> Any:
        return x.drop(columns=[self.sensitive]) if self.drop_sensitive else x

    def fit(self, x: Any, y: Any) -> ReweighedClassifier:
        groups = _group_column(self, x)
        self.weights_ = reweighing_weights(y, groups)
        self.estimator_ = clone(self.estimator)
        final = self.estimator_.steps[-1][0] if hasattr(self.estimator_, "steps") else None
        params = {f"{final}__sample_weight" if final else "sample_weight": self.weights_}
        self.estimator_.fit(self._x(x), y, **params)
        self.classes_ = self.estimator_.classes_
        return self

    def predict(self, x: Any) -> np.ndarray:
        return self.estimator_.predict(self._x(x))

    def predict_proba(self, x: Any) -> np.ndarray:
        return self.estimator_.predict_proba(self._x(x))


class GroupThresholdClassifier(ClassifierMixin, BaseEstimator):
    """Per-group thresholds on ``estimator``'s positive-class probability (see the module doc).

    Parameters
    ----------
    estimator : a binary classifier with ``predict_proba`` (fitted here on ``fit``'s data, or
        used as it is with ``prefit=True``)
    sensitive : the column of X that holds the group
    constraint : {"demographic_parity", "equal_opportunity"}
    drop_sensitive : the estimator sees X without the group column (it still sets the threshold)
    """

    def __init__(self, estimator: Any, sensitive: str, *, constraint: str = "demographic_parity",
                 prefit: bool = False, drop_sensitive: bool = False) -> None:
        self.estimator = estimator
        self.sensitive = sensitive
        self.constraint = constraint
        self.prefit = prefit
        self.drop_sensitive = drop_sensitive

    def _x(self, x: Any) -> Any:
        return x.drop(columns=[self.sensitive]) if self.drop_sensitive else x

    def fit(self, x: Any, y: Any) -> GroupThresholdClassifier:
        check_choice(self, "constraint", self.constraint, ("demographic_parity", "equal_opportunity"))
        groups = _group_column(self, x)
        y = np.asarray(y)
        self.estimator_ = self.estimator if self.prefit else clone(self.estimator).fit(self._x(x), y)
        self.classes_ = np.asarray(self.estimator_.classes_)
        if len(self.classes_) != 2:
            raise ConfigError(f"GroupThresholdClassifier works on binary classifiers; the model has classes "
                              f"{self.classes_.tolist()}.")
        score = self.estimator_.predict_proba(self._x(x))[:, 1]
        positive = y == self.classes_[1]
        if self.constraint == "demographic_parity":
            target = float(np.mean(score >= 0.5))  # the model's own overall selection rate
        else:
            target = float(np.mean(score[positive] >= 0.5))  # its overall true-positive rate
        self.thresholds_ = {}
        for g in np.unique(groups):
            s = score[groups == g] if self.constraint == "demographic_parity" else score[(groups == g) & positive]
            if s.size == 0:
                raise InputError(f"group {g!r} has no {'rows' if self.constraint == 'demographic_parity' else 'positive rows'}"
                                 " in the training data, so its threshold cannot be set; merge it with another group.")
            # the threshold that selects the target share of this group's scores
            self.thresholds_[str(g)] = float(np.quantile(s, 1 - target)) if 0 < target < 1 else \
                (float(s.min()) if target >= 1 else float(np.inf))
        return self

    def _thresholds(self, x: Any) -> np.ndarray:
        groups = _group_column(self, x)
        unknown = sorted(set(groups.tolist()) - set(self.thresholds_))
        if unknown:
            raise InputError(f"groups {unknown[:5]} were not in the training data, so they have no threshold; "
                             "refit with rows of every group.")
        return np.array([self.thresholds_[g] for g in groups])

    def predict_proba(self, x: Any) -> np.ndarray:
        """The thresholded decision as probabilities (1 for the predicted class): the scores
        themselves are not recalibrated."""
        pred = self.predict(x)
        return (pred[:, None] == self.classes_[None, :]).astype(float)

    def predict(self, x: Any) -> np.ndarray:
        score = self.estimator_.predict_proba(self._x(x))[:, 1]
        return np.where(score >= self._thresholds(x), self.classes_[1], self.classes_[0])
