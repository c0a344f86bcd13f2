"""Adversarial robustness: robust accuracy from an ensemble that does not over-report it.

The default measurement is :func:`stalwart.attacks.evaluate` (AutoAttack-style: APGD-CE,
APGD-T and Square on white-box models, Square and HopSkipJump on black-box ones), run once at
the reference budget with the check's budgets as its robust-accuracy curve, with its sanity
checks (gradient masking, attack strength) turned into check warnings. Tabular models that are
black-box and see integer or categorical columns get the schema-aware
:class:`~stalwart.attacks.TabularSearch` instead, so every adversarial row is valid data.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from stalwart._stats import wilson_interval
from stalwart._validation import (
    check_choice,
    check_labels,
    check_param,
    check_positive,
    labels_to_index,
    param_error,
)
from stalwart.attacks.base import EPS_UNITS, predicted_index
from stalwart.checks.base import (
    Check,
    CheckResult,
    Measurement,
    Metric,
    SkipCheck,
    note_rows,
    notes_first,
    register,
)
from stalwart.checks.performance import chance_reason
from stalwart.data.schema import Schema
from stalwart.errors import ConfigError, InputError
from stalwart.models.base import Model
from stalwart.models.views import DecodedModel

__all__ = ["AdversarialRobustness", "DEFAULT_EPS", "LEVELS", "TABULAR_QUERIES", "MINIMAL_SAMPLES", "eps_list",
           "tabular_box"]

#: budgets as fractions of the input range (images: the value range; tabular: each feature's range)
DEFAULT_EPS: dict[str, tuple[float, ...]] = {
    "image": (0.01, 0.03, 0.05, 0.1, 0.2),
    "tabular": (0.01, 0.03, 0.05, 0.1, 0.2),
}
LEVELS: tuple[str, ...] = ("fast", "standard")
#: query budget per sample and budget of the schema-aware tabular search, per level
TABULAR_QUERIES: dict[str, int] = {"fast": 1000, "standard": 3000}
#: samples the minimal-perturbation distribution is measured on
MINIMAL_SAMPLES = 100
_BLACK_BOX_NOTE = ("black-box attacks only: the model gives no gradients, so robust accuracy is an upper "
                   "bound that a stronger attack may lower")


@register
class AdversarialRobustness(Check):
    """Robust accuracy under adversarial attack at each budget ``eps``.

    Budgets are fractions of each feature's range (``eps_unit="range"``, the unit of every eps
    in stalwart's checks and command line: ``ThreatModel(unit="range")``), so one list means the
    same on every data set:

    - **images**: ``eps * (hi - lo)`` of the declared value range (0.03 on [0, 1] images is
      about 8/255);
    - **tabular**: feature ``j`` may move by ``eps * (upper_j - lower_j)`` (linf), its range
      taken from the schema bounds (widened to cover the sample). Attacks run where every range
      is [0, 1] (see :mod:`stalwart.attacks._range`); for l2 and l1 the budget is measured there
      too. Immutable, constant, boolean and categorical columns never move; integer columns are
      treated as continuous (a relaxation: on them the attack is stronger than a real adversary,
      and the result's message says so).

    ``eps_unit="raw"`` takes eps in the data's own units instead.

    How robust accuracy is measured (``attack``):

    - ``"evaluate"`` (default): :func:`stalwart.attacks.evaluate` at ``level`` once, at the
      reference eps, with the other budgets as its curve (monotone by construction). A model
      without gradients gets the black-box attacks only; the message starts with "black-box
      attacks only" and metric ``white_box`` is 0. A black-box tabular model whose data has
      integer or categorical columns is attacked by :class:`~stalwart.attacks.TabularSearch`
      instead (integers stay whole, categories stay valid, ``search_queries`` queries per
      sample and budget). Failed sanity checks of the evaluation make the status at
      least WARN, one line each in the message.
    - any other registered attack name (``"pgd"``, ``"fgsm"``, ``"square"``, a plug-in's): that
      one attack at each budget, on the samples still standing (``steps`` for attacks that take
      it); a white-box attack is skipped on black-box models. Faster, weaker, and without sanity
      checks.

    Robust accuracy at eps is the share of samples classified correctly clean and not fooled at
    any budget up to eps: an adversarial example found at a small budget lies inside every
    larger ball, so the curve is non-increasing.

    The check is skipped (status SKIP) for text data (see ``text_adversarial_robustness``) and
    regression models.

    Metrics
        ``clean_accuracy``; ``robust_accuracy_at_{eps}`` for each eps (Wilson intervals);
        ``robust_accuracy_ratio``: robust accuracy at the reference eps (the 2nd of the list, or
        the only one) over clean accuracy; ``auc``: area under robust accuracy vs eps from 0 to
        the largest eps, divided by that eps (1.0 = no accuracy lost at any budget);
        ``reference_eps``; ``white_box`` (1 when gradient attacks ran, else 0);
        ``median_minimal_perturbation`` (with ``minimal``): the median over up to 100 correctly
        classified samples of the smallest perturbation found that changes the prediction
        (DeepFool, plus C&W for l2; HopSkipJump for black-box models), in the unit of eps.
    Tables and figures
        ``robust_accuracy`` (the curve), ``attacks`` (attack, eps, attacked, broken, mean queries,
        time), ``sanity`` (name, passed, detail), ``evaluation`` (access, level, seed, ...),
        ``notes``; a ``bars`` figure of samples broken per attack at the reference eps and a
        ``histogram`` of minimal perturbation sizes.

    Parameters
    ----------
    norm : {"linf", "l2", "l1"}, default "linf"
        ``"l1"`` only with ``attack="pgd"`` or ``"fgsm"`` (the ensemble covers linf and l2).
    eps : list of float, optional
        Budgets as fractions of the input range; default ``[0.01, 0.03, 0.05, 0.1, 0.2]``.
    attack : str, default "evaluate"
        "evaluate" (the ensemble) or the name of one registered image/tabular attack.
    level : {"fast", "standard"}, default "standard"
        The ensemble's level (see :func:`stalwart.attacks.evaluate`); the quick preset uses "fast".
    steps : int, default 50
        PGD steps for ``attack="pgd"`` (unused by the ensemble).
    minimal : bool, default True
        Measure the minimal-perturbation distribution (linf or l2; not for the tabular search).
    search_queries : int, optional
        Query budget per sample and budget of the schema-aware tabular search; default
        ``TABULAR_QUERIES[level]`` (1000 fast, 3000 standard).
    max_samples : int, default 200
        Size of the stratified sample the check runs on.
    eps_unit : {"range", "raw"}, default "range"
        What eps is measured in: a fraction of each feature's range, or the data's units.
    conditions : list, optional
        Default ``robust_accuracy_ratio >= 0.5``.

    Examples
    --------
    >>> check = AdversarialRobustness(eps=[0.01, 0.03], level="fast", minimal=False)
    >>> check.params()["attack"], check.params()["eps"]
    ('evaluate', [0.01, 0.03])
    """

    name: ClassVar[str] = "adversarial_robustness"
    category: ClassVar[str] = "adversarial"
    modalities: ClassVar[tuple[str, ...]] = ("tabular", "image", "text")
    default_conditions: ClassVar[tuple[str, ...]] = ("robust_accuracy_ratio >= 0.5",)
    headline_metric: ClassVar[str | None] = "robust_accuracy_ratio"

    def __init__(self, *, norm: str = "linf", eps: Sequence[float] | None = None, attack: str = "evaluate",
                 level: str = "standard", steps: int = 50, minimal: bool = True, search_queries: int | None = None,
                 max_samples: int = 200, eps_unit: str = "range", conditions: Sequence[Any] | None = None) -> None:
        super().__init__(conditions=conditions)
        self.norm = check_choice(self, "norm", norm, ("linf", "l2", "l1"))
        self.eps_unit = check_choice(self, "eps_unit", eps_unit, ("range", "raw"))
        self.eps = None if eps is None else eps_list(self, eps)
        from stalwart.attacks import ATTACKS

        if attack == "tabular-search":  # it needs the data's schema: the ensemble runs it where it applies
            raise param_error(self, "attack", "'evaluate' (which runs the schema-aware tabular search on black-box "
                              "tabular models) or another attack", attack)
        if attack != "evaluate":
            ATTACKS.check_names(self, "attack", [attack], modalities="tabular")
        self.attack = attack
        if self.attack == "evaluate" and self.norm == "l1":
            raise param_error(self, "norm", "'linf' or 'l2' with attack='evaluate' (for l1 use attack='pgd')", norm)
        self.level = check_choice(self, "level", level, LEVELS)
        check_positive(self, "steps", steps, integer=True)
        self.steps = int(steps)
        self.minimal = bool(check_param(self, "minimal", minimal, isinstance(minimal, (bool, np.bool_)),
                                        "True or False"))
        if search_queries is not None:
            check_positive(self, "search_queries", search_queries, integer=True)
            search_queries = int(search_queries)
        self.search_queries = search_queries
        check_positive(self, "max_samples", max_samples, integer=True)
        self.max_samples = int(max_samples)

    def metric_names(self, model: Any, data: Any) -> tuple[str, ...]:
        per_eps = tuple(f"robust_accuracy_at_{e:g}" for e in self.eps_for(data.modality))
        return ("clean_accuracy", *per_eps, "robust_accuracy_ratio", "auc", "reference_eps", "white_box",
                "median_minimal_perturbation", "plain_robust_accuracy")

    def eps_for(self, modality: str) -> list[float]:
        return list(self.eps) if self.eps is not None else list(DEFAULT_EPS.get(modality, DEFAULT_EPS["image"]))

    def validate(self, model: Any, data: Any) -> None:
        super().validate(model, data)
        if data.y is None:
            raise ConfigError(f"check {self.name!r} needs labels: the data has none (pass y or --target)")

    def run(self, model: Any, data: Any, seed: int = 0) -> CheckResult:
        """As :meth:`Check.run`; what the reader must know to trust the number (black-box
        attacks only, relaxed integer columns) opens the message."""
        return notes_first(super().run(model, data, seed=seed))

    # -- measuring --------------------------------------------------------------------------------
    def _measure(self, model: Any, data: Any, rng: np.random.Generator) -> Measurement:
        from stalwart.models import wrap

        model = wrap(model)
        if data.modality == "text":
            raise SkipCheck("text data: word-level attacks are measured by the text_adversarial_robustness check")
        if getattr(model, "task", "classification") != "classification":
            raise SkipCheck("adversarial robustness is measured for classifiers; the model is a regressor")
        white = bool(getattr(model, "differentiable", False))
        if self.attack != "evaluate" and not white and self._attack_class().white_box:
            raise SkipCheck(f"attack={self.attack!r} needs gradients and the model is black-box; use "
                            "attack='evaluate', which runs black-box attacks on it")
        sample = data.sample(self.max_samples, seed=rng)
        y = check_labels(np.asarray(sample.y), model.classes)
        attack_seed = int(rng.integers(2**31))
        clean_pred = np.asarray(model.predict(sample.x))
        at_chance = chance_reason(y, clean_pred)
        if at_chance:
            k = int(np.sum(clean_pred == y))
            return Measurement({"clean_accuracy": Metric("clean_accuracy", k / len(y), *wilson_interval(k, len(y)),
                                                         len(y))}, {}, {}, not_meaningful=at_chance)
        eps_list = self.eps_for(data.modality)
        ref = eps_list[1] if len(eps_list) > 1 else eps_list[0]
        notes: list[str] = []  # shown first in the message
        if data.modality == "tabular":
            kinds = {c.kind for c in sample.schema.columns}
            encoded = "categorical" in kinds and not _numeric_categoricals(sample)
            discrete = bool(kinds & {"categorical", "integer"})
            if self.attack == "evaluate" and (encoded or (not white and discrete)):
                if self.eps_unit != "range":
                    raise SkipCheck("the schema-aware tabular search measures eps as a fraction of each column's "
                                    "range; eps_unit='raw' needs numeric columns only (or a model with gradients)")
                if self.norm != "linf":
                    raise SkipCheck(f"the schema-aware tabular search measures linf budgets; norm={self.norm!r} "
                                    "needs numeric columns only (or a model with gradients)")
                if white:
                    notes.append("categorical columns are not numeric, so gradients cannot reach them: the "
                                 "schema-aware search ran instead of the gradient attacks")
                return self._search(model, sample, y, eps_list, ref, attack_seed, notes)
            if encoded:
                raise SkipCheck("categorical columns are not numeric codes, so gradient attacks cannot change "
                                "them; use attack='evaluate' (schema-aware search)")
            x, bounds, mutable = tabular_box(sample)
            relaxed = [c.name for c in sample.schema.columns if c.kind == "integer" and c.mutable]
            if relaxed and white:
                notes.append(f"integer columns {relaxed[:5]} were treated as continuous (the attack may use "
                             "non-integer values there)")
            fixed = [c.name for c in sample.schema.columns if c.kind == "categorical" and c.mutable]
            if fixed:
                notes.append(f"categorical columns {fixed[:5]} were held fixed")
        else:
            x = np.asarray(sample.x, dtype=np.float32)
            lo, hi = sample.schema.value_range or (float(x.min()), float(x.max()))
            bounds, mutable = (lo, hi), None
        from stalwart.attacks import ThreatModel

        threat = ThreatModel(self.norm, ref, bounds, mutable, unit=self.eps_unit)
        if self.attack != "evaluate":
            return self._single(model, x, y, threat, eps_list, attack_seed, notes)
        return self._ensemble(model, x, y, threat, eps_list, attack_seed, rng, notes)

    def _ensemble(self, model: Model, x: np.ndarray, y: np.ndarray, threat: Any, eps_list: list[float], seed: int,
                  rng: np.random.Generator, notes: list[str]) -> Measurement:
        from stalwart.attacks import evaluate

        ref = float(threat.eps)
        ev = evaluate(model, x, y, threat, level=self.level, eps_curve=list(eps_list), seed=seed, sanity=True)
        if not ev.white_box:
            notes.insert(0, _BLACK_BOX_NOTE)
        wanted = set(eps_list) | {0.0}
        points = [(e, r, lo, hi) for e, r, lo, hi in zip(ev.curve["eps"], ev.curve["robust_accuracy"],
                                                         ev.curve["low"], ev.curve["high"]) if e in wanted]
        left_off = [e for e in eps_list if e not in {p[0] for p in points}]
        extra = [f"eps {left_off} left off the curve: they cover the whole input range"] if left_off else []
        n, clean_k = ev.n, int(ev.clean_correct.sum())
        broken = Counter(b.split("@")[0] for b in ev.broken_by if b not in ("", "clean"))
        labels = [a["attack"] for a in ev.attacks] + sorted(set(broken) - {a["attack"] for a in ev.attacks})
        attacks = [{"attack": a["attack"], "eps": ref, "attacked": a["attacked"], "broken": a["broken"],
                    "queries": a["queries_mean"], "time_s": a["time_s"]} for a in ev.attacks]
        figures = {"broken_by_attack": {
            "kind": "bars", "title": f"Samples broken per attack at eps {ref:g}", "x_label": "samples broken",
            "y_label": "attack",
            "labels": labels, "values": [int(broken.get(a, 0)) for a in labels], "low": None, "high": None}}
        tables = {"attacks": attacks, "sanity": [{"name": s.name, "passed": s.passed, "detail": s.detail}
                                                 for s in ev.sanity]}
        m = self._curve_measurement(points, n, clean_k, ref, ev.white_box, f"evaluate ({self.level}) {self.norm}")
        m.tables.update(tables)
        if self.minimal:
            self._minimal(model, x, y, threat, seed, rng, m.metrics, m.tables, figures)
        m.tables["evaluation"] = [{"access": "white-box" if ev.white_box else "black-box", "level": self.level,
                                   "norm": self.norm, "reference_eps": ref, "eps_unit": threat.eps_unit_text,
                                   "n_samples": n, "seed": seed, "time_s": ev.time_s}]
        warnings = [f"sanity check {s.name} failed: {s.detail}" for s in ev.sanity if not s.passed]
        plain = getattr(model, "non_adaptive", None)
        if callable(plain):  # a defence: its plain evaluation beside the adaptive one
            pv = evaluate(plain(), x, y, threat, level=self.level, eps_curve=[], seed=seed, sanity=True)
            m.tables["defence"] = [_defence_row("adaptive (the reported number)", ev),
                                   _defence_row("plain (the defence's own gradients)", pv)]
            plain_grad = m.tables["defence"][1]["robust_accuracy_gradient_attacks"]
            plain_grad = pv.robust_accuracy if plain_grad is None else plain_grad
            m.metrics["plain_robust_accuracy"] = Metric("plain_robust_accuracy", pv.robust_accuracy, n=ev.n)
            m.metrics["plain_gradient_robust_accuracy"] = Metric("plain_gradient_robust_accuracy", plain_grad, n=ev.n)
            flagged = sorted({c.name for c in pv.sanity if not c.passed} - {c.name for c in ev.sanity if not c.passed})
            if max(pv.robust_accuracy, plain_grad) > ev.robust_accuracy + 0.05:
                warnings.append(
                    f"the defence looks robust only to a plain attack: robust accuracy {plain_grad:.3f} against "
                    f"gradient attacks through its own gradients ({pv.robust_accuracy:.3f} with the black-box attack "
                    f"added), {ev.robust_accuracy:.3f} attacked adaptively (reported)"
                    + (f"; the plain evaluation fails the sanity checks {', '.join(flagged)}" if flagged else ""))
        m.tables["notes"] = note_rows(notes, list(ev.notes) + extra)
        return Measurement(m.metrics, m.tables, m.curves, tuple(warnings), figures)

    def _minimal(self, model: Model, x: np.ndarray, y: np.ndarray, threat: Any, seed: int, rng: np.random.Generator,
                 metrics: dict[str, Metric], tables: dict[str, list], figures: dict[str, dict]) -> None:
        from stalwart.attacks import minimal_perturbation

        if self.norm not in ("linf", "l2"):
            return
        sub = np.sort(rng.choice(len(y), size=min(MINIMAL_SAMPLES, len(y)), replace=False))
        if threat.needs_rescaling:  # distances in the unit of eps: fractions of each feature's range
            space = threat.range_space(x[sub])
            target, xs, bounds, mutable = space.wrap(model), space.z, space.threat.bounds, space.threat.mutable
        else:
            target, xs, bounds, mutable = model, x[sub], threat.bounds, threat.mutable
        mp = minimal_perturbation(target, xs, y[sub], norm=self.norm, bounds=bounds, seed=seed, mutable=mutable)
        correct = mp.clean_correct
        found = correct & np.isfinite(mp.distance)
        d = mp.distance[found]
        tables["minimal_perturbation"] = [{
            "method": mp.method, "norm": self.norm, "eps_unit": threat.eps_unit_text, "samples": int(sub.size),
            "correct": int(correct.sum()), "found": int(found.sum()), **mp.quantiles}]
        if not found.any():
            return
        metrics["median_minimal_perturbation"] = Metric("median_minimal_perturbation", float(np.median(d)),
                                                        n=int(found.sum()))
        counts, edges = np.histogram(d, bins=min(20, max(5, int(np.sqrt(d.size)))))
        figures["minimal_perturbation"] = {
            "kind": "histogram", "title": f"Smallest {self.norm} perturbation that changes the prediction",
            "x_label": f"{self.norm} distance ({threat.eps_unit_text})", "y_label": "samples",
            "series": [{"name": mp.method, "edges": edges.tolist(), "counts": counts.tolist()}]}

    def _attack_class(self) -> Any:
        from stalwart.attacks import ATTACKS

        return ATTACKS.get(self.attack)

    def _single(self, model: Model, x: np.ndarray, y: np.ndarray, threat: Any, eps_list: list[float], seed: int,
                notes: list[str]) -> Measurement:
        """One registered attack per budget, each on the samples still standing."""
        import inspect

        from stalwart.attacks import ATTACKS

        cls = self._attack_class()
        takes = inspect.signature(cls).parameters
        extra = {"steps": self.steps} if "steps" in takes else {}
        if "seed" in takes:
            extra["seed"] = seed
        ref = float(threat.eps)
        y_idx = labels_to_index(y, model.classes)
        robust = predicted_index(model, x) == y_idx
        n, clean_k = len(y), int(robust.sum())
        points = [(0.0, clean_k / n, *wilson_interval(clean_k, n))]
        rows = []
        for eps in eps_list:
            idx = np.flatnonzero(robust)
            if idx.size:
                atk = ATTACKS.create(self.attack, dataclasses.replace(threat, eps=eps), **extra)
                res = atk.run(model, x[idx], y[idx])
                robust[idx[res.success]] = False
                rows.append({"attack": self.attack, "eps": eps, "attacked": int(idx.size),
                             "broken": int(res.success.sum()), "queries": float(res.queries.mean()),
                             "time_s": res.time_s})
            k = int(robust.sum())
            points.append((eps, k / n, *wilson_interval(k, n)))
        m = self._curve_measurement(points, n, clean_k, ref, bool(cls.white_box), f"{self.attack} {self.norm}")
        m.tables["attacks"] = rows
        m.tables["notes"] = note_rows(notes, [])
        return m

    def _search(self, model: Model, sample: Any, y: np.ndarray, eps_list: list[float], ref: float, seed: int,
                notes: list[str]) -> Measurement:
        """Schema-aware black-box search per budget, each on the samples still standing."""
        from stalwart.attacks import TabularSearch, ThreatModel

        z, schema, target = _encoded(model, sample)
        notes.insert(0, "black-box attacks only (schema-aware tabular search: integers stay whole, categories "
                        "valid): robust accuracy is an upper bound that a stronger attack may lower")
        y_idx = labels_to_index(y, target.classes)
        robust = predicted_index(target, z) == y_idx
        n, clean_k = len(y), int(robust.sum())
        points = [(0.0, clean_k / n, *wilson_interval(clean_k, n))]
        rows, broken_ref = [], 0
        queries = self.search_queries or TABULAR_QUERIES[self.level]
        start = time.perf_counter()
        for eps in eps_list:
            idx = np.flatnonzero(robust)
            if idx.size:
                atk = TabularSearch(ThreatModel("linf", eps, None, unit="range"), schema=schema, queries=queries, seed=seed)
                res = atk.run(target, z[idx], y[idx])
                robust[idx[res.success]] = False
                hit = int(res.success.sum())
                broken_ref += hit if eps <= ref else 0
                rows.append({"attack": atk.name, "eps": eps, "attacked": int(idx.size), "broken": hit,
                             "queries": float(res.queries.mean()), "time_s": res.time_s})
            k = int(robust.sum())
            points.append((eps, k / n, *wilson_interval(k, n)))
        m = self._curve_measurement(points, n, clean_k, ref, False, "tabular-search linf")
        m.tables["attacks"] = rows
        m.tables["sanity"] = []
        m.tables["evaluation"] = [{"access": "black-box", "level": self.level, "norm": "linf", "reference_eps": ref,
                                   "eps_unit": EPS_UNITS["range"], "n_samples": n, "seed": seed, "queries": queries,
                                   "time_s": time.perf_counter() - start}]
        m.tables["notes"] = note_rows(notes, ["the evaluation's sanity checks and the minimal-perturbation "
                                               "distribution are not defined for the schema-aware search"])
        figures = {"broken_by_attack": {
            "kind": "bars", "title": f"Samples broken per attack at eps {ref:g}", "x_label": "samples broken",
            "y_label": "attack",
            "labels": ["tabular-search"], "values": [broken_ref], "low": None, "high": None}}
        return Measurement(m.metrics, m.tables, m.curves, (), figures)

    def _curve_measurement(self, points: list[tuple[float, float, float, float]], n: int, clean_k: int, ref: float,
                           white: bool, series: str) -> Measurement:
        """Metrics, table and curve from ``(eps, robust accuracy, low, high)`` points, eps 0 first."""
        _, c_acc, c_lo, c_hi = points[0]
        metrics = {"clean_accuracy": Metric("clean_accuracy", c_acc, c_lo, c_hi, n)}
        rows = []
        for eps, acc, lo, hi in points[1:]:
            key = f"robust_accuracy_at_{eps:g}"
            metrics[key] = Metric(key, acc, lo, hi, n)
            rows.append({"eps": eps, "robust_accuracy": acc, "low": lo, "high": hi,
                         "attack_success_rate": (1 - acc * n / clean_k) if clean_k else None})
        ref_key = f"robust_accuracy_at_{ref:g}"
        if clean_k and ref_key in metrics:
            metrics["robust_accuracy_ratio"] = Metric("robust_accuracy_ratio", metrics[ref_key].value / c_acc, n=n)
        ex = np.array([p[0] for p in points])
        ey = np.array([p[1] for p in points])
        if ex.size > 1:
            metrics["auc"] = Metric("auc", float(np.sum(np.diff(ex) * (ey[1:] + ey[:-1]) / 2) / ex[-1]), n=n)
        metrics["reference_eps"] = Metric("reference_eps", ref)
        metrics["white_box"] = Metric("white_box", 1.0 if white else 0.0)
        curve = {"robust_accuracy_vs_eps": {
            "title": "Robust accuracy vs eps", "x_label": f"eps ({self.norm}, {EPS_UNITS[self.eps_unit]})",
            "y_label": "robust accuracy",
            "series": [{"name": series, "x": ex.tolist(), "y": ey.tolist(), "low": [p[2] for p in points],
                        "high": [p[3] for p in points]}]}}
        return Measurement(metrics, {"robust_accuracy": rows}, curve)


def _numeric_categoricals(sample: Any) -> bool:
    """Whether every categorical column already holds numbers (codes the model takes as they are)."""
    if not isinstance(sample.x, pd.DataFrame):
        return np.issubdtype(np.asarray(sample.x).dtype, np.number)
    cats = [j for j, c in enumerate(sample.schema.columns) if c.kind == "categorical"]
    return all(pd.api.types.is_numeric_dtype(sample.x.iloc[:, j]) and not pd.api.types.is_bool_dtype(
        sample.x.iloc[:, j]) for j in cats)


def eps_list(owner: object, eps: Any) -> list[float]:
    """``eps`` as a sorted list of distinct budgets > 0, else the ConfigError every check gives."""
    ok = isinstance(eps, Sequence) and not isinstance(eps, str) and len(eps) > 0 and all(
        isinstance(e, (int, float, np.integer, np.floating)) and not isinstance(e, bool)
        and np.isfinite(e) and e > 0 for e in eps)
    if not ok:
        raise param_error(owner, "eps", "a non-empty list of numbers > 0 (fractions of the input range)", eps)
    return sorted({float(e) for e in eps})


def tabular_box(sample: Any) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray], np.ndarray]:
    """Tabular inputs as floats, their bounds (the schema's, widened to cover the sample) and the
    columns an attack may move: mutable numeric/integer columns (booleans and categories cannot
    take in-between values)."""
    try:
        # the values float32 can hold: attacks work in float32, and the bounds must contain them exactly
        x = sample.numeric_x().astype(np.float32).astype(np.float64)
    except InputError as exc:
        raise ConfigError(str(exc)) from None
    if not np.isfinite(x).all():
        raise ConfigError("the tabular data contains NaN or infinite values; attacks need complete numeric rows "
                          "(impute them first)")
    schema = sample.schema
    lo, hi = schema.numeric_bounds()
    lo = np.where(np.isfinite(lo), np.minimum(lo, x.min(axis=0)), x.min(axis=0))
    hi = np.where(np.isfinite(hi), np.maximum(hi, x.max(axis=0)), x.max(axis=0))
    kinds = np.array([c.kind for c in schema.columns])
    mutable = schema.mutable_mask & ~np.isin(kinds, ("boolean", "categorical"))
    return x.astype(np.float32), (lo, hi), mutable


def _defence_row(label: str, ev: Any) -> dict[str, Any]:
    """One evaluation of a defence: robust accuracy after the gradient attacks alone and after the
    whole ensemble, and the sanity checks it fails."""
    white_only = np.isin(ev.broken_by, ("", "square", "hopskipjump"))  # standing after the gradient attacks
    failed = [c.name for c in ev.sanity if not c.passed]
    return {"evaluation": label, "robust_accuracy": ev.robust_accuracy,
            "robust_accuracy_gradient_attacks": float(white_only.mean()) if ev.white_box else None,
            "sanity_checks_failed": len(failed), "failed_checks": ", ".join(failed)}


def _encoded(model: Model, sample: Any) -> tuple[np.ndarray, Schema, Model]:
    """Rows as float codes (category ``i`` of a column -> ``i``), their schema, and the model
    seen through the decoding, for the schema-aware search."""
    schema = sample.schema
    frame = sample.x if isinstance(sample.x, pd.DataFrame) else None
    arr = None if frame is not None else np.asarray(sample.x)
    columns, values, cats = [], [], []
    for j, c in enumerate(schema.columns):
        v = frame.iloc[:, j] if frame is not None else pd.Series(arr[:, j])
        if c.kind == "categorical":
            codes = pd.Categorical(v, categories=list(c.categories)).codes
            if (codes < 0).any():
                raise ConfigError(f"categorical column {c.name!r} holds missing values or values outside the "
                                  "schema's categories; impute them or rebuild the schema from this data")
            values.append(codes.astype(np.float64))
            cats.append(np.asarray(c.categories, dtype=object))
            columns.append(dataclasses.replace(c, categories=tuple(float(i) for i in range(len(c.categories)))))
            continue
        num = pd.to_numeric(v, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        if not np.isfinite(num).all():
            raise ConfigError(f"column {c.name!r} holds missing or non-numeric values; attacks need complete "
                              "rows (impute them first)")
        values.append(num)
        cats.append(None)
        if c.kind in ("numeric", "integer"):
            lo = num.min() if c.lower is None else min(c.lower, num.min())
            hi = num.max() if c.upper is None else max(c.upper, num.max())
            c = dataclasses.replace(c, lower=float(lo), upper=float(hi))
        columns.append(c)
    z = np.stack(values, axis=1).astype(np.float32)
    dtypes = None if frame is None else list(frame.dtypes)
    labels = None if frame is None else list(frame.columns)
    return z, Schema("tabular", tuple(columns)), DecodedModel(model, schema, cats, labels, dtypes)
