"""Mitigation as scikit-learn meta-estimators: reweighing before training, group thresholds after.

- :class:`ReweighedClassifier` (Kamiran & Calders, 2012): each training row of group ``g`` and
  label ``y`` weighs ``P(g) P(y) / P(g, y)``, so that in the weighted data the label is
  independent of the group; the estimator is fitted with those ``sample_weight``.
- :class:`GroupThresholdClassifier` (after Hardt, Price & Srebro, 2016): one threshold on the
  positive-class score per group, chosen on the training data so that every group has the same
  selection rate (``"demographic_parity"``) or the same true-positive rate
  (``"equal_opportunity"``) as the model has overall; or, with ``"equalized_odds"``, the same
  true- *and* false-positive rate, which needs randomised mixing: Hardt et al.'s construction,
  the operating point ``(fpr, tpr)`` under every group's ROC hull that maximises accuracy, each
  group reaching it by drawing, per row, one of its hull's thresholds with fixed probabilities.

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
    constraint : {"demographic_parity", "equal_opportunity", "equalized_odds"}; the last is
        randomised (``operating_point_``: the shared (fpr, tpr); ``mixtures_``: per group, the
        thresholds and the probability of each)
    drop_sensitive : the estimator sees X without the group column (it still sets the threshold)
    random_state : seed of the randomised predictions (``"equalized_odds"``): the same rows in the
        same order get the same predictions
    """

    def __init__(self, estimator: Any, sensitive: str, *, constraint: str = "demographic_parity",
                 prefit: bool = False, drop_sensitive: bool = False, random_state: int = 0) -> None:
        self.estimator = estimator
        self.sensitive = sensitive
        self.constraint = constraint
        self.prefit = prefit
        self.drop_sensitive = drop_sensitive
        self.random_state = random_state

    def _x(self, x: Any) -> Any:
        return x.drop(columns=[self.sensitive]) if self.drop_sensitive else x

    def fit(self, x: Any, y: Any) -> GroupThresholdClassifier:
        check_choice(self, "constraint", self.constraint, ("demographic_parity", "equal_opportunity",
                                                            "equalized_odds"))
        groups = _group_column(self, x)
        y = np.asarray(y)
        self.estimator_ = self.estimator if self.prefit else clone(self.estimator).fit(self._x(x), y)
        self.classes_ = np.asarray(self.estimator_.classes_)
        if len(self.classes_) != 2:
            raise ConfigError(f"GroupThresholdClassifier works on binary classifiers; the model has classes "
                              f"{self.classes_.tolist()}.")
        score = self.estimator_.predict_proba(self._x(x))[:, 1]
        positive = y == self.classes_[1]
        if self.constraint == "equalized_odds":
            self.operating_point_, self.mixtures_ = _equalized_odds(score, positive, groups)
            self.thresholds_ = {g: m["thresholds"] for g, m in self.mixtures_.items()}
            return self
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
        _refuse_unknown(groups, self.thresholds_)
        return np.array([self.thresholds_[g] for g in groups])

    def predict_proba(self, x: Any) -> np.ndarray:
        """The thresholded decision as probabilities (1 for the predicted class): the scores
        themselves are not recalibrated."""
        pred = self.predict(x)
        return (pred[:, None] == self.classes_[None, :]).astype(float)

    def predict(self, x: Any) -> np.ndarray:
        score = self.estimator_.predict_proba(self._x(x))[:, 1]
        if self.constraint == "equalized_odds":  # each row draws one threshold of its group's mixture
            groups = _group_column(self, x)
            _refuse_unknown(groups, self.mixtures_)
            rng = np.random.default_rng(self.random_state)
            u = rng.random(len(score))
            thr = np.empty(len(score))
            for g, m in self.mixtures_.items():
                rows = groups == g
                pick = np.searchsorted(np.cumsum(m["weights"]), u[rows], side="right")
                thr[rows] = np.asarray(m["thresholds"])[np.minimum(pick, len(m["weights"]) - 1)]
            return np.where(score >= thr, self.classes_[1], self.classes_[0])
        return np.where(score >= self._thresholds(x), self.classes_[1], self.classes_[0])


def _refuse_unknown(groups: np.ndarray, known: Any) -> None:
    unknown = sorted(set(groups.tolist()) - set(known))
    if unknown:
        raise InputError(f"groups {unknown[:5]} were not in the training data, so they have no threshold; "
                         "refit with rows of every group.")


def _roc_hull(score: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The upper convex hull of a group's ROC points: (fpr, tpr, threshold) per vertex, from
    (0, 0) (threshold +inf: never positive) to (1, 1) (-inf: always positive)."""
    thr = np.unique(score)[::-1]
    n_pos, n_neg = max(int(positive.sum()), 1), max(int((~positive).sum()), 1)
    tpr = np.array([0.0, *[(score[positive] >= t).sum() / n_pos for t in thr], 1.0])
    fpr = np.array([0.0, *[(score[~positive] >= t).sum() / n_neg for t in thr], 1.0])
    thr = np.array([np.inf, *thr, -np.inf])
    hull: list[int] = []
    for i in np.lexsort((-tpr, fpr)):  # by fpr, then highest tpr first (Andrew's monotone chain, upper part)
        if hull and fpr[i] == fpr[hull[-1]]:
            continue  # the same fpr with a lower tpr: dominated
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            if (fpr[b] - fpr[a]) * (tpr[i] - tpr[a]) - (tpr[b] - tpr[a]) * (fpr[i] - fpr[a]) >= 0:
                hull.pop()  # b lies on or under the chord a-i
            else:
                break
        hull.append(int(i))
    return fpr[hull], tpr[hull], thr[hull]


def _equalized_odds(score: np.ndarray, positive: np.ndarray, groups: np.ndarray
                    ) -> tuple[tuple[float, float], dict[str, dict[str, Any]]]:
    """Hardt et al.'s operating point and, per group, the mixture of hull thresholds reaching it."""
    from scipy.optimize import linprog

    hulls = {}
    for g in np.unique(groups):
        rows = groups == g
        if positive[rows].all() or not positive[rows].any():
            raise InputError(f"group {g!r} has only {'positive' if positive[rows].all() else 'negative'} rows in the "
                             "training data, so its true- and false-positive rates cannot both be set; merge it with "
                             "another group.")
        hulls[str(g)] = _roc_hull(score[rows], positive[rows])
    # accuracy = (P tpr + N (1 - fpr)) / n: maximise P tpr - N fpr on the lowest hull
    candidates = np.unique(np.concatenate([np.linspace(0, 1, 2001), *[h[0] for h in hulls.values()]]))
    lowest = np.min([np.interp(candidates, h[0], h[1]) for h in hulls.values()], axis=0)
    gain = positive.sum() * lowest - (~positive).sum() * candidates
    best = int(np.argmax(gain))
    point = (float(candidates[best]), float(lowest[best]))
    mixtures = {}
    for g, (f, t, thr) in hulls.items():
        k = len(f)  # weights w >= 0 over the vertices with sum 1 and sum w (f, t) = point
        res = linprog(np.zeros(k), A_eq=np.vstack([np.ones(k), f, t]), b_eq=[1.0, *point], bounds=[(0, None)] * k,
                      method="highs")
        if res.status != 0:
            raise RuntimeError(f"no mixture of group {g!r}'s thresholds reaches {point}: {res.message}")
        w = np.clip(res.x, 0, None)
        keep = w > 1e-12
        mixtures[g] = {"thresholds": thr[keep].tolist(), "weights": (w[keep] / w[keep].sum()).tolist(),
                       "fpr": f[keep].tolist(), "tpr": t[keep].tolist()}
    return point, mixtures
