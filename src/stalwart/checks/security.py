"""Security probes as checks: ``membership_inference``, ``extraction`` and ``poisoning`` (the
"Security" section of a report, evidence for EU AI Act Art. 15(5))."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from stalwart._validation import check_param, check_positive, param_error
from stalwart.checks.base import Check, Measurement, Metric, SkipCheck, register
from stalwart.errors import ConfigError

__all__ = ["MembershipInference", "Extraction", "Poisoning"]


def _training_rows(check: Check, source: Any, model: Any, data: Any, what: str) -> Any:
    """The training rows ``source`` (path, Dataset, DataFrame) as a Dataset the model takes, labelled."""
    from stalwart.checks.drift import load_like
    from stalwart.models.compat import check_compatible

    ds = check_compatible(model, load_like(source, data, what))
    if ds.y is None:
        raise ConfigError(f"check {check.name!r}: the {what} have no labels; they need the label column "
                          f"{data.target!r} (or labels in the Dataset).")
    return ds


def _array(data: Any) -> np.ndarray:
    return data.numeric_x() if data.modality == "tabular" else np.asarray(data.x, dtype=np.float32)


@register
class MembershipInference(Check):
    """Can an attacker tell the model's training rows from others? The data under test are the
    non-members (rows the model never saw); ``members`` are (a sample of) its training rows. See
    :func:`stalwart.security.membership_inference`; judge it by the true-positive rate at a low
    false-positive rate (Carlini et al., 2022).

    Metrics
        ``tpr_at_1pct_fpr`` and ``tpr_at_0.1pct_fpr`` (NaN-free: the 0.1% point is reported only
        with >= 1000 non-members), ``membership_auc``, ``membership_advantage``, each with its
        interval.
    Tables and figures
        ``operating_points``, ``notes``; the ROC curve on log-log axes.

    Parameters
    ----------
    members : the training rows (path of a CSV/Parquet/NPZ with the label column, a Dataset or a DataFrame)
    attack : "loss" (default), "confidence" (no labels needed), "shadow" or "lira" (these two
        refit the model: scikit-learn estimators only, from a suite)
    n_shadow : shadow models for "shadow" and "lira" (default 8)
    max_samples : members and non-members scored, each (default 2000)
    """

    name: ClassVar[str] = "membership_inference"
    category: ClassVar[str] = "security"
    modalities: ClassVar[tuple[str, ...]] = ("tabular", "image")
    default_conditions: ClassVar[tuple[str, ...]] = ()
    headline_metric: ClassVar[str | None] = "tpr_at_1pct_fpr"

    def __init__(self, *, members: Any, attack: str = "loss", n_shadow: int = 8, max_samples: int = 2000,
                 conditions: Sequence[Any] | None = None) -> None:
        from stalwart.checks.drift import check_source
        from stalwart.security import MEMBERSHIP_ATTACKS

        super().__init__(conditions=conditions)
        source = check_source(self, "members", members)
        if attack not in MEMBERSHIP_ATTACKS:
            raise param_error(self, "attack", f"one of {list(MEMBERSHIP_ATTACKS)}", attack)
        check_param(self, "n_shadow", n_shadow, isinstance(n_shadow, int) and n_shadow >= 2, "an integer >= 2")
        check_positive(self, "max_samples", max_samples, integer=True)
        self.members = source if isinstance(source, str) else f"<{type(source).__name__} in memory>"
        self._members = source
        self.attack = attack
        self.n_shadow = int(n_shadow)
        self.max_samples = int(max_samples)

    def metric_names(self, model: Any, data: Any) -> tuple[str, ...]:
        return ("tpr_at_1pct_fpr", "tpr_at_0.1pct_fpr", "membership_auc", "membership_advantage")

    def validate(self, model: Any, data: Any) -> None:
        super().validate(model, data)
        if data.y is None:
            raise ConfigError(f"check {self.name!r} needs labels on the non-members (pass y or --target)")

    def _measure(self, model: Any, data: Any, rng: np.random.Generator) -> Measurement:
        from stalwart.security import membership_inference

        if getattr(model, "task", "classification") != "classification":
            raise SkipCheck("membership inference reads a classifier's probabilities; the model is a regressor")
        members = _training_rows(self, self._members, model, data, "members")
        inside = members.sample(self.max_samples, seed=rng)
        outside = data.sample(self.max_samples, seed=rng)
        if self.attack in ("shadow", "lira") and getattr(model, "estimator", None) is None:
            raise SkipCheck(f"attack={self.attack!r} refits the model, which needs a scikit-learn estimator; the "
                            "'loss' and 'confidence' attacks still apply (or call stalwart.security."
                            "membership_inference with fit=...)")
        res = membership_inference(model, _array(inside), np.asarray(inside.y),
                                   _array(outside), np.asarray(outside.y), attack=self.attack,
                                   n_shadow=self.n_shadow, seed=int(rng.integers(2**31)))
        n = res.n_members + res.n_non_members
        metrics = {"membership_auc": Metric("membership_auc", res.auc, res.auc_low, res.auc_high, n),
                   "membership_advantage": Metric("membership_advantage", res.advantage, res.advantage_low,
                                                  res.advantage_high, n)}
        points = []
        for op in res.operating_points:
            name = "tpr_at_1pct_fpr" if op.target_fpr == 0.01 else "tpr_at_0.1pct_fpr"
            if np.isfinite(op.tpr):
                metrics[name] = Metric(name, op.tpr, op.tpr_low, op.tpr_high, res.n_members)
            points.append({k: v for k, v in vars(op).items()})
        curve = {"roc": {"title": f"ROC of the {res.attack} attack (log axes)", "x_label": "false-positive rate",
                         "y_label": "true-positive rate", "x_scale": "log", "y_scale": "log",
                         "series": [{"name": res.attack, "x": np.asarray(res.fpr).tolist(),
                                     "y": np.asarray(res.tpr).tolist()},
                                    {"name": "chance", "x": [1e-4, 1.0], "y": [1e-4, 1.0]}]}}
        notes = [{"note": f"{res.n_members} members (training rows) against {res.n_non_members} non-members (the data "
                          "under test)"}, *[{"note": t} for t in res.notes]]
        return Measurement(metrics, {"operating_points": points, "notes": notes}, curve)


@register
class Extraction(Check):
    """How much of the model an attacker copies from its answers (:func:`stalwart.security.model_extraction`).
    The data under test is split in two: the attacker's unlabelled pool, and held-out rows on
    which the copy is compared with the model.

    Metrics
        ``fidelity`` (agreement of the copy with the model at the largest budget, Wilson
        interval), ``transfer_rate`` (share of the copy's adversarial examples that fool the model),
        ``extraction_queries``.
    Curves
        fidelity against the number of queries.

    Parameters
    ----------
    budgets : query budgets (default 100, 300, 1000; those above the pool are left out)
    queries : "natural" (default), "random" or "perturbed"
    output : "labels" (default) or "scores"
    transfer_eps : linf budget of the transfer attack, a fraction of each feature's range (default 0.1)
    """

    name: ClassVar[str] = "extraction"
    category: ClassVar[str] = "security"
    modalities: ClassVar[tuple[str, ...]] = ("tabular", "image")
    default_conditions: ClassVar[tuple[str, ...]] = ()
    headline_metric: ClassVar[str | None] = "fidelity"

    def __init__(self, *, budgets: Sequence[int] = (100, 300, 1000), queries: str = "natural",
                 output: str = "labels", transfer_eps: float | None = 0.1,
                 conditions: Sequence[Any] | None = None) -> None:
        from stalwart.security.extraction import QUERY_KINDS

        super().__init__(conditions=conditions)
        ok = isinstance(budgets, Sequence) and not isinstance(budgets, str) and len(budgets) > 0 and all(
            isinstance(b, int) and not isinstance(b, bool) and b > 0 for b in budgets)
        if not ok:
            raise param_error(self, "budgets", "a non-empty list of query counts, each an integer > 0", budgets)
        if queries not in QUERY_KINDS:
            raise param_error(self, "queries", f"one of {list(QUERY_KINDS)}", queries)
        if output not in ("labels", "scores"):
            raise param_error(self, "output", "'labels' or 'scores'", output)
        self.budgets = sorted(set(int(b) for b in budgets))
        self.queries = queries
        self.output = output
        self.transfer_eps = transfer_eps

    def metric_names(self, model: Any, data: Any) -> tuple[str, ...]:
        return ("fidelity", "transfer_rate", "extraction_queries")

    def _measure(self, model: Any, data: Any, rng: np.random.Generator) -> Measurement:
        from stalwart.security.extraction import model_extraction

        x = _array(data)
        order = rng.permutation(len(x))
        pool, test = x[order[: len(x) // 2]], x[order[len(x) // 2:]]
        budgets = [b for b in self.budgets if self.queries != "natural" or b <= len(pool)]
        if not budgets:
            raise SkipCheck(f"not applicable: the attacker's pool (half the data) has {len(pool)} rows, fewer than "
                            f"the smallest budget {self.budgets[0]}; pass more rows or smaller budgets")
        res = model_extraction(model, pool, test, None if data.y is None else np.asarray(data.y)[order[len(x) // 2:]],
                         budgets=budgets, queries=self.queries, output=self.output, transfer_eps=self.transfer_eps,
                         seed=int(rng.integers(2**31)))
        metrics = {"fidelity": Metric("fidelity", res.fidelity[-1], res.fidelity_low[-1], res.fidelity_high[-1],
                                      res.n_test),
                   "extraction_queries": Metric("extraction_queries", float(res.budgets[-1]))}
        if res.transfer_rate is not None:
            metrics["transfer_rate"] = Metric("transfer_rate", res.transfer_rate, res.transfer_low, res.transfer_high,
                                              res.transfer_n)
        curve = {"fidelity_vs_queries": {
            "title": f"Fidelity of the copy vs queries ({self.queries} queries, {self.output})",
            "x_label": "queries", "y_label": "fidelity (agreement with the model)",
            "series": [{"name": "fidelity", "x": list(res.budgets), "y": list(res.fidelity),
                        "low": list(res.fidelity_low), "high": list(res.fidelity_high)}]}}
        if len(budgets) < len(self.budgets):
            notes = [f"budgets above the pool's {len(pool)} rows were left out"]
        else:
            notes = []
        return Measurement(metrics, {"curve": res.table(), "notes": [{"note": t} for t in [*res.notes, *notes]]},
                           curve)


@register
class Poisoning(Check):
    """How much poisoned training data moves the model (:func:`stalwart.security.poisoning_sensitivity`):
    its scikit-learn estimator is refitted on ``train_data`` with a share of poisoned rows per
    rate and measured on the data under test.

    Metrics
        ``attack_success`` (at the largest rate: for targeted and backdoor poisoning the share of
        other-class rows answered as the target, for random flips the accuracy lost) and
        ``poisoned_accuracy`` (clean accuracy at that rate), each with its interval; and
        ``clean_accuracy`` (rate 0).

    Parameters
    ----------
    train_data : the training rows (path, Dataset or DataFrame, with labels)
    kind : "random", "targeted" or "backdoor" (default "backdoor")
    rates : poison rates (default 0, 0.01, 0.05, 0.1)
    target_class : the attacker's class (default: the first class)
    """

    name: ClassVar[str] = "poisoning"
    category: ClassVar[str] = "security"
    modalities: ClassVar[tuple[str, ...]] = ("tabular", "image")
    default_conditions: ClassVar[tuple[str, ...]] = ()
    headline_metric: ClassVar[str | None] = "attack_success"

    def __init__(self, *, train_data: Any, kind: str = "backdoor", rates: Sequence[float] = (0.0, 0.01, 0.05, 0.1),
                 target_class: Any = None, conditions: Sequence[Any] | None = None) -> None:
        from stalwart.checks.drift import check_source
        from stalwart.security.poisoning import POISON_KINDS

        super().__init__(conditions=conditions)
        source = check_source(self, "train_data", train_data)
        if kind not in POISON_KINDS:
            raise param_error(self, "kind", f"one of {list(POISON_KINDS)}", kind)
        ok = isinstance(rates, Sequence) and not isinstance(rates, str) and len(rates) > 0 and all(
            isinstance(r, (int, float)) and not isinstance(r, bool) and 0 <= r < 1 for r in rates)
        if not ok:
            raise param_error(self, "rates", "a non-empty list of poison rates, each in [0, 1)", rates)
        self.train_data = source if isinstance(source, str) else f"<{type(source).__name__} in memory>"
        self._train_data = source
        self.kind = kind
        self.rates = sorted(set([0.0, *(float(r) for r in rates)]))
        self.target_class = target_class

    def metric_names(self, model: Any, data: Any) -> tuple[str, ...]:
        return ("attack_success", "poisoned_accuracy", "clean_accuracy")

    def validate(self, model: Any, data: Any) -> None:
        super().validate(model, data)
        if data.y is None:
            raise ConfigError(f"check {self.name!r} needs labels on the data under test (pass y or --target)")

    def _measure(self, model: Any, data: Any, rng: np.random.Generator) -> Measurement:
        from stalwart.security.poisoning import poisoning_sensitivity

        estimator = getattr(model, "estimator", None)
        if estimator is None or not hasattr(estimator, "fit"):
            raise SkipCheck("poisoning refits the model, which needs a scikit-learn estimator; for other models call "
                            "stalwart.security.poisoning_sensitivity with fit=...; membership inference (loss, "
                            "confidence) and extraction still apply")
        train = _training_rows(self, self._train_data, model, data, "training rows")
        res = poisoning_sensitivity(estimator, _array(train), np.asarray(train.y), _array(data), np.asarray(data.y),
                                    kind=self.kind, rates=self.rates, target_class=self.target_class,
                                    seed=int(rng.integers(2**31)))
        top, base = res.rows[-1], res.rows[0]
        n = len(data)
        metrics = {
            "clean_accuracy": Metric("clean_accuracy", base["accuracy"], base["accuracy_low"], base["accuracy_high"], n),
            "poisoned_accuracy": Metric("poisoned_accuracy", top["accuracy"], top["accuracy_low"],
                                        top["accuracy_high"], n),
            "attack_success": Metric("attack_success", top["attack_success"], top["attack_success_low"],
                                     top["attack_success_high"], n),
        }
        curve = {"poison_rate": {
            "title": f"{self.kind} poisoning: clean accuracy and attack success vs poison rate",
            "x_label": "share of training rows poisoned", "y_label": "rate",
            "series": [{"name": "clean accuracy", "x": list(res.rates), "y": [r["accuracy"] for r in res.rows],
                        "low": [r["accuracy_low"] for r in res.rows], "high": [r["accuracy_high"] for r in res.rows]},
                       {"name": "attack success", "x": list(res.rates),
                        "y": [r["attack_success"] for r in res.rows]}]}}
        tables = {"rates": res.rows, "notes": [{"note": t} for t in res.notes]}
        if res.trigger is not None:
            tables["trigger"] = [{"feature": str(k), "value": v} for k, v in res.trigger.items()]
        return Measurement(metrics, tables, curve)
