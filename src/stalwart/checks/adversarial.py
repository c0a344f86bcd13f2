"""Adversarial robustness: robust accuracy under white-box attacks at a ladder of budgets."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from stalwart._stats import wilson_interval
from stalwart._validation import check_choice, check_labels, check_positive, labels_to_index, param_error
from stalwart.checks.base import Check, Measurement, Metric, SkipCheck, register
from stalwart.errors import ConfigError
from stalwart.models.base import Model

__all__ = ["AdversarialRobustness", "DEFAULT_EPS"]

#: budgets as fractions of the input range (images: the value range; tabular: each feature's range)
DEFAULT_EPS: dict[str, tuple[float, ...]] = {
    "image": (0.01, 0.03, 0.05, 0.1, 0.2),
    "tabular": (0.01, 0.03, 0.05, 0.1, 0.2),
}
BLACK_BOX_SKIP = "model is black-box; black-box attacks arrive with the adversarial evaluation"


@register
class AdversarialRobustness(Check):
    """Robust accuracy under a white-box attack (PGD or FGSM) at each budget ``eps``.

    Budgets are fractions of the input range, so one list means the same on every data set:

    - **images**: ``eps * (hi - lo)`` of the declared value range (0.03 on [0, 1] images is
      about 8/255);
    - **tabular**: feature ``j`` may move by ``eps * (upper_j - lower_j)`` (linf), its range
      taken from the schema bounds (widened to cover the sample). This is done by attacking in a
      space rescaled to [0, 1] per feature: the model is wrapped in a differentiable adapter
      (``x = lower + z * (upper - lower)``) and the attack runs on ``z`` with budget ``eps`` and
      bounds [0, 1]. For l2 and l1 the budget is measured in that rescaled space too. Immutable
      columns, constant columns and boolean columns never move; integer columns are treated as
      continuous (a relaxation: the attack may use non-integer values, so on integer features
      it is stronger than a real adversary could be).

    Robust accuracy at eps is the share of samples classified correctly clean and not fooled
    at any budget up to eps: an adversarial example found at a small budget lies inside every
    larger ball, so the curve is non-increasing by construction, and each larger budget attacks
    only the samples still standing.

    The check is skipped (status SKIP) for black-box models, text data, data with categorical
    columns and regression models.

    Metrics
        ``clean_accuracy``; ``robust_accuracy_at_{eps}`` for each eps (Wilson intervals);
        ``robust_accuracy_ratio``: robust accuracy at the reference eps (the 2nd of the list, or
        the only one) divided by clean accuracy; ``auc``: area under robust accuracy vs eps from
        0 to the largest eps, divided by that eps (1.0 = no accuracy lost at any budget).

    Parameters
    ----------
    norm : {"linf", "l2", "l1"}, default "linf"
    eps : list of float, optional
        Budgets as fractions of the input range; default ``[0.01, 0.03, 0.05, 0.1, 0.2]``.
    attack : {"pgd", "fgsm"}, default "pgd"
    steps : int, default 50
        PGD steps (the quick preset uses 20).
    max_samples : int, default 200
        Size of the stratified sample the check runs on.
    conditions : list, optional
        Default ``robust_accuracy_ratio >= 0.5``.
    """

    name: ClassVar[str] = "adversarial_robustness"
    category: ClassVar[str] = "adversarial"
    modalities: ClassVar[tuple[str, ...]] = ("tabular", "image", "text")
    default_conditions: ClassVar[tuple[str, ...]] = ("robust_accuracy_ratio >= 0.5",)
    headline_metric: ClassVar[str | None] = "robust_accuracy_ratio"

    def __init__(self, *, norm: str = "linf", eps: Sequence[float] | None = None, attack: str = "pgd",
                 steps: int = 50, max_samples: int = 200, conditions: Sequence[Any] | None = None) -> None:
        super().__init__(conditions=conditions)
        self.norm = check_choice(self, "norm", norm, ("linf", "l2", "l1"))
        if eps is not None:
            ok = isinstance(eps, Sequence) and not isinstance(eps, str) and len(eps) > 0 and all(
                isinstance(e, (int, float, np.integer, np.floating)) and not isinstance(e, bool)
                and np.isfinite(e) and e > 0 for e in eps)
            if not ok:
                raise param_error(self, "eps", "a non-empty list of numbers > 0 (fractions of the input range)", eps)
            eps = sorted({float(e) for e in eps})
        self.eps = eps
        self.attack = check_choice(self, "attack", attack, ("pgd", "fgsm"))
        check_positive(self, "steps", steps, integer=True)
        self.steps = int(steps)
        check_positive(self, "max_samples", max_samples, integer=True)
        self.max_samples = int(max_samples)

    def eps_for(self, modality: str) -> list[float]:
        return list(self.eps) if self.eps is not None else list(DEFAULT_EPS.get(modality, DEFAULT_EPS["image"]))

    def validate(self, model: Any, data: Any) -> None:
        super().validate(model, data)
        if data.y is None:
            raise ConfigError(f"check {self.name!r} needs labels: the data has none (pass y or --target)")

    def _skip_reason(self, model: Any, data: Any) -> str | None:
        if data.modality == "text":
            return "text data: word-level attacks arrive with the adversarial evaluation"
        if getattr(model, "task", "classification") != "classification":
            return "adversarial robustness is measured for classifiers; the model is a regressor"
        if data.modality == "tabular" and any(c.kind == "categorical" for c in data.schema.columns):
            cats = [c.name for c in data.schema.columns if c.kind == "categorical"]
            return (f"categorical columns {cats[:5]} cannot be attacked with gradients; schema-aware "
                    "tabular attacks arrive with the adversarial evaluation")
        if not getattr(model, "differentiable", False):
            return BLACK_BOX_SKIP
        return None

    def _measure(self, model: Any, data: Any, rng: np.random.Generator) -> Measurement:
        from stalwart.attacks import FGSM, PGD, ThreatModel

        reason = self._skip_reason(model, data)
        if reason:
            raise SkipCheck(reason)
        sample = data.sample(self.max_samples, seed=rng)
        y = check_labels(np.asarray(sample.y), model.classes)
        n = len(y)
        if data.modality == "tabular":
            x, target, bounds, mutable, scale = _rescaled(model, sample)
        else:
            x = np.asarray(sample.x, dtype=np.float32)
            target, (lo, hi), mutable = model, sample.schema.value_range, None
            bounds, scale = (lo, hi), hi - lo
        attack_seed = int(rng.integers(2**31))

        y_idx = labels_to_index(y, model.classes)
        pred = np.asarray(target.predict_proba(x)).argmax(axis=1)
        robust = pred == y_idx  # still correct at every budget so far
        clean_k = int(robust.sum())
        c_lo, c_hi = wilson_interval(clean_k, n)
        metrics = {"clean_accuracy": Metric("clean_accuracy", clean_k / n, c_lo, c_hi, n)}
        eps_list = self.eps_for(data.modality)
        rows = []
        xs, ys, lows, highs = [0.0], [clean_k / n], [c_lo], [c_hi]
        for eps in eps_list:
            idx = np.flatnonzero(robust)
            if idx.size:
                threat = ThreatModel(self.norm, eps * scale, bounds, mutable)
                atk = PGD(threat, steps=self.steps, seed=attack_seed) if self.attack == "pgd" \
                    else FGSM(threat)
                res = atk.run(target, x[idx], y[idx])
                robust[idx[res.success]] = False
            k = int(robust.sum())
            lo_, hi_ = wilson_interval(k, n)
            key = f"robust_accuracy_at_{eps:g}"
            metrics[key] = Metric(key, k / n, lo_, hi_, n)
            rows.append({"eps": eps, "robust_accuracy": k / n, "low": lo_, "high": hi_,
                         "attack_success_rate": (1 - k / clean_k) if clean_k else None})
            xs.append(eps)
            ys.append(k / n)
            lows.append(lo_)
            highs.append(hi_)
        ref = eps_list[1] if len(eps_list) > 1 else eps_list[0]
        ref_acc = metrics[f"robust_accuracy_at_{ref:g}"]
        if clean_k:
            ratio = ref_acc.value / (clean_k / n)
            metrics["robust_accuracy_ratio"] = Metric("robust_accuracy_ratio", ratio, n=n)
        ex, ey = np.asarray(xs), np.asarray(ys)
        auc = float(np.sum(np.diff(ex) * (ey[1:] + ey[:-1]) / 2) / ex[-1])
        metrics["auc"] = Metric("auc", auc, n=n)
        curve = {"robust_accuracy_vs_eps": {
            "title": "Robust accuracy vs eps", "x_label": f"eps ({self.norm}, fraction of input range)",
            "y_label": "robust accuracy",
            "series": [{"name": f"{self.attack.upper()} {self.norm}", "x": xs, "y": ys, "low": lows,
                        "high": highs}]}}
        metrics["reference_eps"] = Metric("reference_eps", ref)
        return Measurement(metrics, {"robust_accuracy": rows}, curve)


def _rescaled(model: Model, sample: Any) -> tuple[np.ndarray, Model, tuple, np.ndarray, float]:
    """Tabular inputs mapped to [0, 1] per feature, and the model seen through that map."""
    x = sample.numeric_x().astype(np.float64)
    if not np.isfinite(x).all():
        raise ConfigError("the tabular data contains NaN or infinite values; gradient attacks need "
                          "complete numeric rows (impute them first)")
    schema = sample.schema
    lo, hi = schema.numeric_bounds()
    lo = np.where(np.isfinite(lo), np.minimum(lo, x.min(axis=0)), x.min(axis=0))
    hi = np.where(np.isfinite(hi), np.maximum(hi, x.max(axis=0)), x.max(axis=0))
    width = hi - lo
    kinds = np.array([c.kind for c in schema.columns])
    # booleans cannot take in-between values; constant columns have no range to move in
    mutable = schema.mutable_mask & (width > 0) & (kinds != "boolean")
    width = np.where(width > 0, width, 1.0)
    # the widened bounds contain the sample, so z lies in [0, 1] up to rounding
    z = np.clip((x - lo) / width, 0.0, 1.0).astype(np.float32)
    return z, _RangeScaledModel(model, lo, width), (0.0, 1.0), mutable, 1.0


class _RangeScaledModel(Model):
    """``model`` seen through ``x = lower + z * width``: attacks run on ``z`` in [0, 1]^d.

    Exposes ``torch_logits`` (differentiable through the affine map) and ``predict_proba``
    through the original model; queries are counted on both.
    """

    def __init__(self, model: Model, lower: np.ndarray, width: np.ndarray) -> None:
        super().__init__()
        self.base = model
        self.task = model.task
        self.classes = model.classes
        self.output_kind = model.output_kind
        self.batch_size = max(int(getattr(model, "batch_size", 1024)), 1)
        self.input_bounds = (0.0, 1.0)
        self._lower = np.asarray(lower, dtype=np.float64)
        self._width = np.asarray(width, dtype=np.float64)

    @property
    def device(self) -> Any:
        import torch

        return getattr(self.base, "device", torch.device("cpu"))

    @property
    def differentiable(self) -> bool:
        return self.base.differentiable

    @property
    def name(self) -> str:
        return f"{self.base.name} (range-scaled)"

    def _raw_predict(self, x: Any) -> np.ndarray:
        z = np.asarray(x, dtype=np.float64)
        return self.base.predict_proba(self._lower + z * self._width)

    def torch_logits(self, x: Any) -> Any:
        import torch

        if not isinstance(x, torch.Tensor):
            x = torch.as_tensor(np.asarray(x, dtype=np.float32))
        lo = torch.as_tensor(self._lower, dtype=x.dtype, device=x.device)
        w = torch.as_tensor(self._width, dtype=x.dtype, device=x.device)
        self.n_queries += int(x.shape[0])
        return self.base.torch_logits(lo + x * w)

    def _fingerprint_bytes(self) -> bytes:
        return self.base._fingerprint_bytes() + self._lower.tobytes() + self._width.tobytes()
