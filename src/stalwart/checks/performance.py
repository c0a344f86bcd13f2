"""Clean performance: is the model any better than a constant guess? The gate every suite opens with.

A model that is never right never changes its answer under noise or attack, so every robustness
number looks perfect on it. This check establishes first that there is something to be robust:
accuracy significantly above the majority-class rate (regression: squared error significantly
below that of predicting the mean). Robustness checks use :func:`chance_reason` on their own
sample and report their numbers as not meaningful when there is no evidence there that the model
beats chance (p > 0.05; the gate itself asks for p <= 0.01).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from stalwart._stats import bootstrap_ci, wilson_interval
from stalwart._validation import check_param
from stalwart.checks.base import MIN_SAMPLES, Check, Condition, Measurement, Metric, register
from stalwart.errors import ConfigError

__all__ = ["CleanPerformance", "CHANCE_ALPHA", "MEANINGFUL_ALPHA", "chance_p_value", "chance_reason"]

#: the gate fails unless "no better than chance" is rejected at this level (strong evidence
#: that the model works)
CHANCE_ALPHA = 0.01
#: robustness checks report their numbers as not meaningful when chance is not rejected even at
#: this level (no evidence at all, on the check's own sample, that the model beats chance)
MEANINGFUL_ALPHA = 0.05


def chance_p_value(y: Any, pred: Any, task: str = "classification") -> tuple[float, float, float]:
    """One-sided p-value that the model beats the trivial baseline, with the two scores.

    Classification: exact binomial test of accuracy against the majority-class rate of ``y``
    (the accuracy of always answering the most frequent label). Regression: one-sided paired
    t-test that the model's squared errors are below those of predicting the mean of ``y``.

    Returns
    -------
    (p_value, score, baseline) : accuracy and majority rate, or MSE and the mean's MSE
    """
    from scipy import stats

    y = np.asarray(y)
    pred = np.asarray(pred)
    n = len(y)
    if task == "regression":
        yf = y.astype(float)
        err_model = (pred.astype(float) - yf) ** 2
        err_mean = (yf - yf.mean()) ** 2
        d = err_mean - err_model
        if n < 2 or float(d.std(ddof=1)) == 0.0:
            p = 0.0 if n >= 2 and d.mean() > 0 else 1.0
        else:
            p = float(stats.ttest_1samp(d, 0.0, alternative="greater").pvalue)
        return p, float(err_model.mean()), float(err_mean.mean())
    _, counts = np.unique(y, return_counts=True)
    majority = float(counts.max() / n)
    k = int(np.sum(pred == y))
    p = 0.0 if majority >= 1.0 and k == n else float(stats.binomtest(k, n, min(majority, 1.0),
                                                                     alternative="greater").pvalue)
    if majority >= 1.0:
        p = 1.0  # one class only: nothing distinguishes a model from a constant
    return p, k / n, majority


def chance_reason(y: Any, pred: Any, task: str = "classification") -> str | None:
    """Why robustness is not meaningful on this sample (the model is at chance), or None."""
    p, score, base = chance_p_value(y, pred, task)
    if p <= MEANINGFUL_ALPHA:
        return None
    if task == "regression":
        return (f"the model's RMSE {math.sqrt(score):.4g} is not significantly below predicting the mean "
                f"(RMSE {math.sqrt(base):.4g}, p = {p:.2g}); robustness of a model that has not learned "
                "the task is not meaningful")
    return (f"clean accuracy {score:.3f} is not significantly above the majority-class rate {base:.3f} "
            f"(p = {p:.2g}): on this sample the model does no better than always answering the most frequent "
            "label, so how its accuracy holds up under perturbation says nothing about it")


@register
class CleanPerformance(Check):
    """Clean accuracy (regression: RMSE) against the trivial baseline — the suite's gate.

    Classification: ``clean_accuracy`` (Wilson interval), ``majority_rate`` (the accuracy of
    always predicting the most frequent label), ``accuracy_lift`` (their difference) and
    ``chance_p_value``, the exact one-sided binomial test of accuracy > majority rate.
    Regression: ``clean_rmse`` (bootstrap interval), ``baseline_rmse`` (predicting the mean), ``r2``
    (``1 - MSE / MSE_mean``, bootstrap interval) and ``chance_p_value`` (one-sided paired t-test
    on the squared errors).

    A sample too small to show that the model beats chance fails the gate (it does not skip it):
    evidence of a working model is what the gate asks for, and a handful of rows cannot give it.

    Parameters
    ----------
    min_accuracy : float in (0, 1], optional
        Also require ``clean_accuracy >= min_accuracy`` (classification).
    max_rmse : float > 0, optional
        Also require ``clean_rmse <= max_rmse`` (regression).
    conditions : list, optional
        Default ``chance_p_value <= 0.01`` plus the thresholds above.

    Examples
    --------
    >>> from sklearn.dummy import DummyClassifier
    >>> import stalwart
    >>> data = stalwart.datasets.load("breast_cancer")
    >>> dummy = DummyClassifier().fit(data.x, data.y)
    >>> CleanPerformance().run(dummy, data).status.value
    'FAIL'
    """

    name: ClassVar[str] = "clean_performance"
    category: ClassVar[str] = "performance"
    modalities: ClassVar[tuple[str, ...]] = ("tabular", "image", "text")
    default_conditions: ClassVar[tuple[str, ...]] = (f"chance_p_value <= {CHANCE_ALPHA:g}",)
    headline_metric: ClassVar[str | None] = "clean_accuracy"
    #: the gate judges any sample: too few rows fail it, with the reason
    min_samples: ClassVar[int] = 1

    def __init__(self, *, min_accuracy: float | None = None, max_rmse: float | None = None,
                 conditions: list[Any] | None = None) -> None:
        super().__init__(conditions=conditions)
        if min_accuracy is not None:
            check_param(self, "min_accuracy", min_accuracy, isinstance(min_accuracy, (int, float))
                        and not isinstance(min_accuracy, bool) and 0 < min_accuracy <= 1, "a number in (0, 1]")
            min_accuracy = float(min_accuracy)
        if max_rmse is not None:
            check_param(self, "max_rmse", max_rmse, isinstance(max_rmse, (int, float)) and not isinstance(
                max_rmse, bool) and math.isfinite(max_rmse) and max_rmse > 0, "a number > 0")
            max_rmse = float(max_rmse)
        self.min_accuracy = min_accuracy
        self.max_rmse = max_rmse

    def conditions_for(self, model: Any, data: Any) -> list[Condition]:
        if self.conditions is not None:
            return list(self.conditions)
        texts = list(self.default_conditions)
        regression = getattr(model, "task", None) == "regression"
        if self.min_accuracy is not None and not regression:
            texts.append(f"clean_accuracy >= {self.min_accuracy:g}")
        if self.max_rmse is not None and regression:
            texts.append(f"clean_rmse <= {self.max_rmse:g}")
        return [Condition.parse(t) for t in texts]

    def metric_names(self, model: Any, data: Any) -> tuple[str, ...]:
        if getattr(model, "task", None) == "regression":
            return ("clean_rmse", "baseline_rmse", "r2", "chance_p_value")
        return ("clean_accuracy", "majority_rate", "accuracy_lift", "chance_p_value")

    def headline_for(self, model: Any) -> str | None:
        return "clean_rmse" if getattr(model, "task", None) == "regression" else "clean_accuracy"

    def validate(self, model: Any, data: Any) -> None:
        super().validate(model, data)
        if model is None:
            raise ConfigError(f"check {self.name!r} measures a model; pass one")
        if data.y is None:
            raise ConfigError(f"check {self.name!r} needs labels: the data has none (pass y or --target)")

    def _measure(self, model: Any, data: Any, rng: np.random.Generator) -> Measurement:
        y = np.asarray(data.y)
        pred = np.asarray(model.predict(data.x))
        n = len(y)
        regression = model.task == "regression"
        p, score, base = chance_p_value(y, pred, model.task)
        boot_seed = int(rng.integers(2**31))
        if regression:
            yf = y.astype(float)
            sq = (pred.astype(float) - yf) ** 2
            lo, hi = bootstrap_ci(sq, stat=lambda s, axis=None: np.sqrt(np.mean(s, axis=axis)), seed=boot_seed)
            pairs = np.stack([sq, (yf - yf.mean()) ** 2], axis=1)

            def r2(s: np.ndarray, axis: int | None = None) -> Any:
                num, den = s[..., 0].mean(axis=-1), s[..., 1].mean(axis=-1)
                return 1 - num / np.where(den > 0, den, np.nan)
            r_lo, r_hi = bootstrap_ci(pairs, stat=r2, seed=boot_seed)
            metrics = {"clean_rmse": Metric("clean_rmse", math.sqrt(score), lo, hi, n),
                       "baseline_rmse": Metric("baseline_rmse", math.sqrt(base), n=n),
                       "r2": Metric("r2", 1 - score / base if base > 0 else float("nan"), r_lo, r_hi, n),
                       "chance_p_value": Metric("chance_p_value", p, n=n)}
        else:
            k = int(np.sum(pred == y))
            lo, hi = wilson_interval(k, n)
            metrics = {"clean_accuracy": Metric("clean_accuracy", score, lo, hi, n),
                       "majority_rate": Metric("majority_rate", base, n=n),
                       "accuracy_lift": Metric("accuracy_lift", score - base, lo - base, hi - base, n),
                       "chance_p_value": Metric("chance_p_value", p, n=n)}
        warnings = ()
        if n < MIN_SAMPLES:
            warnings = (f"only {n} sample(s): too few to show that the model beats chance; pass at least "
                        f"{MIN_SAMPLES}",)
        elif p > CHANCE_ALPHA:
            what = "RMSE is not significantly below predicting the mean" if regression else \
                "accuracy is not significantly above the majority-class rate"
            warnings = (f"the model's {what} (p = {p:.2g} > {CHANCE_ALPHA:g}): there is no evidence it has "
                        "learned the task, so its robustness means little",)
        return Measurement(metrics, {}, {}, warnings)
