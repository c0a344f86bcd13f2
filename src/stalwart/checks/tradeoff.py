"""The accuracy/robustness trade-off of hardening options, as a report section.

:class:`HardeningTradeoff` hardens copies of a torch model with each option
(:func:`stalwart.defend.tradeoff`) on part of the data and measures them all, beside the undefended
model, on the rest: a table (clean and robust accuracy, training time, Pareto front) and a chart
of clean against robust accuracy with the baseline marked. :func:`tradeoff_measurement` turns a
:class:`~stalwart.defend.TradeoffResult` measured elsewhere (``stalwart harden --compare``) into
the same section.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from stalwart._stats import wilson_interval
from stalwart._validation import check_choice, check_param, check_positive, labels_to_index, param_error
from stalwart.checks.adversarial import LEVELS, tabular_box
from stalwart.checks.base import Check, Measurement, Metric, SkipCheck, note_rows, register
from stalwart.errors import ConfigError

__all__ = ["HardeningTradeoff", "tradeoff_measurement"]

BASELINE = "baseline (undefended)"


def _rate(name: str, value: float, n: int) -> Metric:
    return Metric(name, value, *wilson_interval(round(value * n), n), n)


def tradeoff_measurement(result: Any, *, eps_text: str = "") -> Measurement:
    """Metrics, the ``tradeoff`` table and the clean-vs-robust chart of a :class:`~stalwart.defend.TradeoffResult`.

    Metrics: ``baseline_clean_accuracy``, ``baseline_robust_accuracy``, ``best_robust_accuracy`` (the
    hardened option with the highest robust accuracy, Wilson intervals on the held-out samples),
    ``best_option_clean_accuracy`` (that option's clean accuracy), ``robust_gain`` and ``clean_cost``
    (the option against the baseline). ``eps_text`` describes the budget in the chart's axis label.
    """
    from stalwart.defend import TradeoffResult

    if not isinstance(result, TradeoffResult) or len(result.rows) < 2:
        raise ConfigError("tradeoff_measurement(result=...) must be a TradeoffResult with the baseline and at least "
                          "one option, as stalwart.defend.tradeoff returns.")
    n = result.n_test
    base = result.rows[0]
    options = result.rows[1:]
    best = max(options, key=lambda r: (r["robust_accuracy"], r["clean_accuracy"]))
    metrics = {
        "baseline_clean_accuracy": _rate("baseline_clean_accuracy", base["clean_accuracy"], n),
        "baseline_robust_accuracy": _rate("baseline_robust_accuracy", base["robust_accuracy"], n),
        "best_robust_accuracy": _rate("best_robust_accuracy", best["robust_accuracy"], n),
        "best_option_clean_accuracy": _rate("best_option_clean_accuracy", best["clean_accuracy"], n),
        "robust_gain": Metric("robust_gain", best["robust_accuracy"] - base["robust_accuracy"], n=n),
        "clean_cost": Metric("clean_cost", base["clean_accuracy"] - best["clean_accuracy"], n=n),
    }
    rows = [{"option": BASELINE if r["baseline"] else r["option"], "method": r["method"],
             "clean_accuracy": r["clean_accuracy"], "robust_accuracy": r["robust_accuracy"],
             "pareto": "yes" if r["pareto"] else "", "time_s": r["time_s"]} for r in result.rows]
    series = [{"name": f"{row['option']}{' (Pareto)' if r['pareto'] else ''}", "x": [r["clean_accuracy"]],
               "y": [r["robust_accuracy"]]} for row, r in zip(rows, result.rows)]
    front = sorted((r["clean_accuracy"], r["robust_accuracy"]) for r in result.rows if r["pareto"])
    if len(front) >= 2:
        series.append({"name": "Pareto front", "x": [p[0] for p in front], "y": [p[1] for p in front]})
    threat = result.threat
    budget = eps_text or f"{threat['norm']} eps {threat['eps']:g} ({threat['eps_unit']})"
    curves = {"tradeoff": {"title": f"Clean vs robust accuracy per hardening option ({budget})",
                           "x_label": "clean accuracy", "y_label": f"robust accuracy (evaluate, {result.level})",
                           "series": series}}
    notes = [f"best option by robust accuracy: {best['option']}; every row measured on the same {n} held-out "
             f"samples with stalwart.attacks.evaluate ({result.level}), adaptive for squeezing (BPDA) and "
             "distillation (logits)",
             "Pareto front: no other row is at least as accurate and at least as robust and better in one; "
             "time_s is the time hardening took (0 for the baseline), not weighed in the front"]
    tables = {"tradeoff": rows,
              "evaluation": [{"n_test": n, "level": result.level, "norm": threat["norm"], "eps": threat["eps"],
                              "eps_unit": threat["eps_unit"], "seed": result.seed}],
              "notes": note_rows([], notes)}
    return Measurement(metrics, tables, curves)


@register
class HardeningTradeoff(Check):
    """Clean against robust accuracy of a torch model hardened several ways, beside the model itself.

    A share ``test_size`` of the data (at most ``max_samples`` rows) is held out; every option
    hardens a copy of the model on the rest (:func:`stalwart.defend.tradeoff`) and every row is
    measured on the held-out rows at the same budget. The model is not changed.

    Metrics
        ``baseline_clean_accuracy``, ``baseline_robust_accuracy``, ``best_robust_accuracy``,
        ``best_option_clean_accuracy``, ``robust_gain``, ``clean_cost`` (see
        :func:`tradeoff_measurement`).
    Tables and figures
        ``tradeoff`` (option, method, clean and robust accuracy, Pareto flag, training time),
        ``evaluation``, ``notes``; the chart of clean against robust accuracy.

    Parameters
    ----------
    options : hardening options, as :func:`stalwart.defend.tradeoff` takes them; default
        ``["pgd", "trades", "noise"]``
    norm : {"linf", "l2"}, default "linf"
    eps : the budget, a fraction of each feature's range, default 0.03
    epochs, steps, lr, batch_size : shared training settings
    level : strength of the attack ensemble, default "fast"
    test_size : share of the rows held out for measuring, default 0.3
    max_samples : most held-out rows measured, default 200
    """

    name: ClassVar[str] = "hardening_tradeoff"
    category: ClassVar[str] = "adversarial"
    modalities: ClassVar[tuple[str, ...]] = ("tabular", "image")
    default_conditions: ClassVar[tuple[str, ...]] = ()
    headline_metric: ClassVar[str | None] = "best_robust_accuracy"

    def __init__(self, *, options: Sequence[Any] = ("pgd", "trades", "noise"), norm: str = "linf",
                 eps: float = 0.03, epochs: int = 10, steps: int = 10, lr: float = 1e-3, batch_size: int = 128,
                 level: str = "fast", test_size: float = 0.3, max_samples: int = 200,
                 conditions: Sequence[Any] | None = None) -> None:
        from stalwart.defend import option_names

        super().__init__(conditions=conditions)
        option_names(options)
        if any(isinstance(o, tuple) for o in options):
            raise param_error(self, "options", "names and dicts only (they are written into the report); pass "
                              "(name, callable) options to stalwart.defend.tradeoff", options)
        self.options = list(options)
        self.norm = check_choice(self, "norm", norm, ("linf", "l2"))
        check_positive(self, "eps", eps)
        check_param(self, "eps", eps, float(eps) <= 1, "a fraction of each feature's range in (0, 1]")
        self.eps = float(eps)
        for name, value in (("epochs", epochs), ("steps", steps), ("batch_size", batch_size),
                            ("max_samples", max_samples)):
            check_positive(self, name, value, integer=True)
        check_positive(self, "lr", lr)
        self.epochs, self.steps, self.lr, self.batch_size = int(epochs), int(steps), float(lr), int(batch_size)
        self.level = check_choice(self, "level", level, LEVELS)
        ok = isinstance(test_size, (int, float, np.floating)) and not isinstance(test_size, bool) and 0 < test_size < 1
        self.test_size = float(check_param(self, "test_size", test_size, ok, "a share strictly between 0 and 1"))
        self.max_samples = int(max_samples)

    def metric_names(self, model: Any, data: Any) -> tuple[str, ...]:
        return ("baseline_clean_accuracy", "baseline_robust_accuracy", "best_robust_accuracy",
                "best_option_clean_accuracy", "robust_gain", "clean_cost")

    def validate(self, model: Any, data: Any) -> None:
        super().validate(model, data)
        if data.y is None:
            raise ConfigError(f"check {self.name!r} needs labels: the data has none (pass y or --target)")

    def _measure(self, model: Any, data: Any, rng: np.random.Generator) -> Measurement:
        import torch

        from stalwart.attacks import ThreatModel
        from stalwart.defend import tradeoff

        module = getattr(model, "module", None)
        if not isinstance(module, torch.nn.Module) or not any(True for _ in module.parameters()) \
                or getattr(model, "output_kind", "logits") != "logits" or model.task != "classification":
            raise SkipCheck("the trade-off hardens a torch classifier that returns logits; for scikit-learn models "
                            "compare stalwart.defend.AugmentedClassifier refits in Python with "
                            "stalwart.attacks.evaluate")
        if data.modality == "tabular":
            x, bounds, mutable = tabular_box(data)
        else:
            x = np.asarray(data.x, dtype=np.float32)
            bounds, mutable = data.schema.value_range or (float(x.min()), float(x.max())), None
        y = labels_to_index(np.asarray(data.y), np.asarray(model.classes))
        order = rng.permutation(len(y))
        n_test = min(max(int(round(len(y) * self.test_size)), 1), self.max_samples)
        test, train = order[:n_test], order[n_test:]
        threat = ThreatModel(self.norm, self.eps, bounds, mutable, unit="range")
        res = tradeoff(module, x[train], y[train], x[test], y[test], threat, options=self.options,
                       epochs=self.epochs, steps=self.steps, lr=self.lr, batch_size=self.batch_size,
                       level=self.level, seed=int(rng.integers(2**31)))
        return tradeoff_measurement(res, eps_text=f"{self.norm} eps {self.eps:g} of each range")
