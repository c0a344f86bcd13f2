"""Importance-weighted refitting: fit a scikit-learn estimator for the data it will meet.

Under covariate shift (``p(x)`` changes, ``p(y | x)`` does not), weighting each training row by the
density ratio ``p_current(x) / p_train(x)`` makes the training loss an estimate of the loss on the
current data (Shimodaira, 2000; Sugiyama et al., 2007). The ratio comes from the same cross-fitted
domain classifier that :class:`stalwart.shift.ImportanceWeightedEstimator` uses; the effective
sample size ``(sum w)^2 / sum w^2`` says how many training rows the fit really rests on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from stalwart._validation import check_array, check_choice, check_lengths, check_param, check_positive
from stalwart.errors import ConfigError, ModelError

__all__ = ["importance_weighted_fit", "ReweightedFit"]


@dataclass(frozen=True)
class ReweightedFit:
    """The refitted estimator, its training weights and how much they concentrate."""

    estimator: Any
    weights: np.ndarray
    effective_sample_size: float
    clipped: float  # share of weights cut at ``clip``
    domain_auc: float  # cross-fitted AUROC of train vs current (0.5: no detectable shift)


def importance_weighted_fit(estimator: Any, x_train: Any, y_train: Any, x_current: Any, *,
                            domain_classifier: str = "logistic", clip: float = 20.0, n_splits: int = 5,
                            seed: int = 0) -> ReweightedFit:
    """A clone of ``estimator`` fitted on ``x_train, y_train`` with density-ratio weights toward
    ``x_current`` (unlabelled); ``estimator`` must accept ``sample_weight`` in ``fit``."""
    import inspect

    from sklearn.base import clone
    from sklearn.metrics import roc_auc_score

    from stalwart.shift.performance import density_ratio

    if not hasattr(estimator, "fit"):
        raise ModelError(f"importance_weighted_fit needs a scikit-learn estimator; got {type(estimator).__name__}. "
                         "Pass an unfitted (or fitted: it is cloned) estimator.")
    final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator  # a Pipeline's last step
    if "sample_weight" not in inspect.signature(final.fit).parameters:
        raise ModelError(f"{type(final).__name__}.fit takes no sample_weight, so it cannot be refitted with "
                         "importance weights; use an estimator that does (LogisticRegression, gradient boosting, "
                         "forests, ...).")
    check_choice("importance_weighted_fit", "domain_classifier", domain_classifier, ("logistic", "hgb"))
    check_positive("importance_weighted_fit", "clip", clip)
    check_param("importance_weighted_fit", "n_splits", n_splits,
                isinstance(n_splits, (int, np.integer)) and n_splits >= 2, "an integer >= 2")
    xt = check_array(x_train, "x_train", ndim=2)
    xc = check_array(x_current, "x_current", ndim=2)
    if xt.shape[1] != xc.shape[1]:
        raise ConfigError(f"x_current has {xc.shape[1]} columns but x_train has {xt.shape[1]}; pass the same columns.")
    yt = np.asarray(y_train)
    check_lengths("x_train", xt, "y_train", yt)
    if min(len(xt), len(xc)) < n_splits:
        raise ConfigError(f"need at least n_splits={n_splits} rows in x_train and x_current for cross-fitting; "
                          "pass more rows or lower n_splits.")

    def make() -> Any:
        if domain_classifier == "hgb":
            from sklearn.ensemble import HistGradientBoostingClassifier

            return HistGradientBoostingClassifier(max_iter=100, random_state=seed)
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))

    ratio = density_ratio(xt, xc, make, clip=clip, n_splits=n_splits, seed=seed)
    w = ratio["weights"]
    fitted = clone(estimator)
    if hasattr(fitted, "steps"):  # a Pipeline routes the weight to its final step
        fitted.fit(xt, yt, **{f"{fitted.steps[-1][0]}__sample_weight": w})
    else:
        fitted.fit(xt, yt, sample_weight=w)
    return ReweightedFit(estimator=fitted, weights=w, effective_sample_size=float(w.sum() ** 2 / (w * w).sum()),
                         clipped=float(np.mean(ratio["raw"] > clip)),
                         domain_auc=float(roc_auc_score(ratio["domain"], ratio["p"])))
