"""Certified robustness: a proven lower bound beside the attacked upper bound.

``method="crown"`` (or ``"ibp"``) certifies the model itself by bound propagation and, with
``attack=True`` (default), runs the attack ensemble at the same budgets: the robustness bracket,
certified <= true robust accuracy <= attacked, with the gap between them reported per eps.
``method="smoothing"`` certifies the Gaussian-smoothed model (randomized smoothing, any model)
and reports certified accuracy against the L2 radius.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from stalwart._stats import wilson_interval
from stalwart._validation import check_choice, check_labels, check_param, check_positive, param_error
from stalwart.checks.adversarial import LEVELS, eps_list, tabular_box
from stalwart.checks.base import Check, Measurement, Metric, SkipCheck, note_rows, register
from stalwart.checks.performance import chance_reason
from stalwart.errors import ConfigError

__all__ = ["CertifiedRobustness", "DEFAULT_CERTIFIED_EPS"]

DEFAULT_CERTIFIED_EPS: tuple[float, ...] = (0.01, 0.03, 0.05, 0.1)


@register
class CertifiedRobustness(Check):
    """Certified accuracy (proven) beside robust accuracy under attack (found), per eps.

    Budgets are fractions of each feature's range, as in ``adversarial_robustness``. A sample is
    *certified* at eps when no input in the ball can change its (correct) prediction, *broken*
    when an attack changed it (or it was wrong to begin with), else *undecided*; the gap between
    attacked and certified accuracy is the share of undecided samples.

    Metrics
        ``clean_accuracy``; per eps ``certified_accuracy_at_{eps}`` and, with ``attack``,
        ``robust_accuracy_at_{eps}`` and ``gap_at_{eps}``; ``certified_accuracy`` and ``gap`` at
        the reference eps (the 2nd of the list, or the only one). Smoothing adds
        ``abstain_rate`` and ``smoothed_accuracy`` (certified at radius 0).
    Tables and figures
        ``bracket`` (eps, certified, attacked, gap), ``evaluation``, ``notes``; the curve of
        certified and attacked accuracy against eps.

    Parameters
    ----------
    method : {"crown", "ibp", "smoothing"}, default "crown"
    norm : {"linf", "l2"}, default "linf" (smoothing certifies l2 radii)
    eps : budgets (radii for smoothing), fractions of the input range; default 0.01, 0.03, 0.05, 0.1
    attack : run the attack ensemble too (crown, ibp), default True
    level : strength of the attack ensemble, default "fast"
    sigma, n, alpha : randomized smoothing's noise (a fraction of each range), samples and
        failure probability
    sequential : smoothing only: stop drawing noise for each input once its certificate at the
        reference radius is decided (:class:`~stalwart.certify.RandomizedSmoothing` with
        ``sequential=True, target_radius=`` the reference eps): fewer model calls, the same
        guarantee; radii above the reference may come out smaller than without it
    max_samples : samples certified, default 200
    """

    name: ClassVar[str] = "certified_robustness"
    category: ClassVar[str] = "certified"
    modalities: ClassVar[tuple[str, ...]] = ("tabular", "image")
    default_conditions: ClassVar[tuple[str, ...]] = ()
    headline_metric: ClassVar[str | None] = "certified_accuracy"

    def __init__(self, *, method: str = "crown", norm: str = "linf", eps: Sequence[float] | None = None,
                 attack: bool = True, level: str = "fast", sigma: float = 0.25, n: int = 10_000,
                 alpha: float = 0.001, max_samples: int = 200, sequential: bool = False,
                 conditions: Sequence[Any] | None = None) -> None:
        super().__init__(conditions=conditions)
        self.method = check_choice(self, "method", method, ("crown", "ibp", "smoothing"))
        self.norm = check_choice(self, "norm", norm, ("linf", "l2"))
        if method == "smoothing" and norm != "l2":
            raise param_error(self, "norm", "'l2' with method='smoothing' (it certifies l2 radii)", norm)
        self.eps = list(DEFAULT_CERTIFIED_EPS) if eps is None else eps_list(self, eps)
        self.attack = bool(check_param(self, "attack", attack, isinstance(attack, (bool, np.bool_)), "True or False"))
        self.level = check_choice(self, "level", level, LEVELS)
        check_positive(self, "sigma", sigma)
        self.sigma = float(sigma)
        check_positive(self, "n", n, integer=True)
        self.n = int(n)
        ok = isinstance(alpha, (float, int, np.floating)) and not isinstance(alpha, bool) and 0 < float(alpha) < 1
        self.alpha = float(check_param(self, "alpha", alpha, ok, "a probability strictly between 0 and 1"))
        check_positive(self, "max_samples", max_samples, integer=True)
        self.max_samples = int(max_samples)
        check_param(self, "sequential", sequential, isinstance(sequential, (bool, np.bool_)), "True or False")
        if sequential and method != "smoothing":
            raise param_error(self, "sequential", "False unless method='smoothing' (only sampling can stop early)",
                              sequential)
        self.sequential = bool(sequential)
        if self.sequential:  # refuse a reference radius that n samples cannot certify now, not mid-run
            from stalwart.certify import RandomizedSmoothing

            RandomizedSmoothing(self.sigma, n=self.n, n0=min(100, self.n), alpha=self.alpha, sequential=True,
                                target_radius=self.reference_eps)

    @property
    def reference_eps(self) -> float:
        return self.eps[1] if len(self.eps) > 1 else self.eps[0]

    def metric_names(self, model: Any, data: Any) -> tuple[str, ...]:
        names = ["clean_accuracy", "certified_accuracy", *(f"certified_accuracy_at_{e:g}" for e in self.eps)]
        if self.method == "smoothing":
            names += ["abstain_rate", "smoothed_accuracy"]
        elif self.attack:
            names += ["gap", *(f"robust_accuracy_at_{e:g}" for e in self.eps), *(f"gap_at_{e:g}" for e in self.eps)]
        return tuple(names)

    def validate(self, model: Any, data: Any) -> None:
        super().validate(model, data)
        if data.y is None:
            raise ConfigError(f"check {self.name!r} needs labels: the data has none (pass y or --target)")

    def _measure(self, model: Any, data: Any, rng: np.random.Generator) -> Measurement:
        if getattr(model, "task", "classification") != "classification":
            raise SkipCheck("certified robustness is measured for classifiers; the model is a regressor")
        sample = data.sample(self.max_samples, seed=rng)
        y = check_labels(np.asarray(sample.y), model.classes)
        clean_pred = np.asarray(model.predict(sample.x))
        k = int(np.sum(clean_pred == y))
        clean = Metric("clean_accuracy", k / len(y), *wilson_interval(k, len(y)), len(y))
        at_chance = chance_reason(y, clean_pred)
        if at_chance:
            return Measurement({"clean_accuracy": clean}, {}, {}, not_meaningful=at_chance)
        if data.modality == "tabular":
            x, bounds, mutable = tabular_box(sample)
        else:
            x = np.asarray(sample.x, dtype=np.float32)
            bounds, mutable = sample.schema.value_range or (float(x.min()), float(x.max())), None
        seed = int(rng.integers(2**31))
        if self.method == "smoothing":
            return self._smoothing(model, x, y, bounds, mutable, clean, seed)
        return self._bounds(model, x, y, bounds, mutable, clean, seed)

    def _bounds(self, model: Any, x: np.ndarray, y: np.ndarray, bounds: Any, mutable: Any, clean: Metric,
                seed: int) -> Measurement:
        from stalwart.attacks import ThreatModel
        from stalwart.certify import CROWN, IBP, bracket

        threat = ThreatModel(self.norm, self.reference_eps, bounds, mutable, unit="range")
        cls = CROWN if self.method == "crown" else IBP
        n = len(y)
        metrics = {"clean_accuracy": clean}
        rows = []
        if self.attack and self.method == "crown":
            res = bracket(model, x, y, threat, eps=self.eps, level=self.level, seed=seed)
            if res.certifier is None:
                raise SkipCheck(res.notes[0])
            cert, rob = res.certified_accuracy, res.robust_accuracy
        else:
            certifier = cls.from_threat(threat, max_eps=max(self.eps))
            problem = certifier.prepare(model, x, y)
            cert = [float(certifier.verify(problem, np.full(n, e)).mean()) for e in self.eps]
            rob = None
            if self.attack:  # ibp beside the attacks: the bracket with the looser certificate
                from stalwart.attacks import evaluate

                rob = [float(evaluate(model, x, y, ThreatModel(self.norm, e, bounds, mutable, unit="range"),
                                      level=self.level, eps_curve=[], seed=seed, sanity=False).robust_accuracy)
                       for e in self.eps]
                if any(c > r for c, r in zip(cert, rob)):
                    raise RuntimeError("IBP certified more samples than survived the attacks: one of the two is "
                                       "wrong; please report this as a stalwart bug.")
        for i, e in enumerate(self.eps):
            key = f"certified_accuracy_at_{e:g}"
            metrics[key] = Metric(key, cert[i], *wilson_interval(round(cert[i] * n), n), n)
            row = {"eps": e, "certified_accuracy": cert[i]}
            if rob is not None:
                metrics[f"robust_accuracy_at_{e:g}"] = Metric(f"robust_accuracy_at_{e:g}", rob[i],
                                                              *wilson_interval(round(rob[i] * n), n), n)
                metrics[f"gap_at_{e:g}"] = Metric(f"gap_at_{e:g}", rob[i] - cert[i], n=n)
                row.update(robust_accuracy=rob[i], gap=rob[i] - cert[i])
            rows.append(row)
        ref = self.eps.index(self.reference_eps)
        metrics["certified_accuracy"] = Metric("certified_accuracy", cert[ref],
                                               *wilson_interval(round(cert[ref] * n), n), n)
        if rob is not None:
            metrics["gap"] = Metric("gap", rob[ref] - cert[ref], n=n)
        xs = [0.0, *self.eps]
        series = [{"name": f"certified ({self.method})", "x": xs, "y": [clean.value, *cert]}]
        if rob is not None:
            series.append({"name": f"attacked (evaluate, {self.level})", "x": xs, "y": [clean.value, *rob]})
        curves = {"certified_vs_eps": {"title": "Certified and attacked accuracy vs eps",
                                       "x_label": f"eps ({self.norm}, fraction of each feature's range)",
                                       "y_label": "accuracy", "series": series}}
        notes = ["certified accuracy is a proven lower bound of robust accuracy; attacked accuracy an upper bound: "
                 "the true value lies between them"] if rob is not None else []
        tables = {"bracket": rows, "evaluation": [{"method": self.method, "norm": self.norm, "n_samples": n,
                                                   "reference_eps": self.reference_eps, "attack": self.attack,
                                                   "level": self.level, "seed": seed}],
                  "notes": note_rows([], notes)}
        return Measurement(metrics, tables, curves)

    def _smoothing(self, model: Any, x: np.ndarray, y: np.ndarray, bounds: Any, mutable: Any, clean: Metric,
                   seed: int) -> Measurement:
        from stalwart.certify import RandomizedSmoothing

        lo, hi = (np.broadcast_to(np.asarray(b, dtype=np.float64), x.shape[1:]) for b in bounds)
        span = np.where(hi > lo, hi - lo, 1.0)
        smooth = RandomizedSmoothing(self.sigma, n=self.n, n0=min(100, self.n), alpha=self.alpha, scale=span,
                                     mutable=mutable, sequential=self.sequential,
                                     target_radius=self.reference_eps if self.sequential else 0.0, seed=seed)
        res = smooth.certify(model, x, y)
        n = len(y)
        metrics = {"clean_accuracy": clean,
                   "abstain_rate": Metric("abstain_rate", res.abstain_rate, n=n),
                   "smoothed_accuracy": Metric("smoothed_accuracy", res.certified_accuracy(0.0), n=n)}
        rows = []
        for e in self.eps:
            acc = res.certified_accuracy(e)
            metrics[f"certified_accuracy_at_{e:g}"] = Metric(f"certified_accuracy_at_{e:g}", acc,
                                                             *wilson_interval(round(acc * n), n), n)
            rows.append({"radius": e, "certified_accuracy": acc})
        ref = metrics[f"certified_accuracy_at_{self.reference_eps:g}"]
        metrics["certified_accuracy"] = Metric("certified_accuracy", ref.value, ref.low, ref.high, n)
        curve = res.curve(np.linspace(0.0, max(max(self.eps), float(res.radius.max())), 25))
        curves = {"certified_vs_radius": {"title": "Certified accuracy of the smoothed model vs L2 radius",
                                          "x_label": "L2 radius (fraction of each feature's range)",
                                          "y_label": "certified accuracy",
                                          "series": [{"name": f"smoothing sigma={self.sigma:g}", "x": curve["radius"],
                                                      "y": curve["certified_accuracy"]}]}}
        notes = ["randomized smoothing certifies the smoothed model (the majority vote under Gaussian noise), "
                 "not the model itself; its prediction may differ from the model's"]
        tables = {"bracket": rows, "evaluation": [{"method": "smoothing", "sigma": self.sigma, "n": self.n,
                                                   "alpha": self.alpha, "n_samples": n, "seed": seed,
                                                   "sequential": self.sequential, "queries": res.queries}],
                  "notes": note_rows([], notes)}
        return Measurement(metrics, tables, curves)
