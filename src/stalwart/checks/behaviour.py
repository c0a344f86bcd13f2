"""Behavioural tests of text classifiers (CheckList: Ribeiro et al., ACL 2020) as one check."""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from stalwart import perturb
from stalwart._validation import check_positive, param_error
from stalwart.checks.base import Check, Measurement, Metric, SkipCheck, register
from stalwart.errors import ConfigError
from stalwart.perturb.checklist import (
    BehaviourResult,
    Template,
    directional_test,
    invariance_test,
    minimum_functionality_test,
)

__all__ = ["BehaviouralTests"]

MAX_EXAMPLES = 10
_DIR_KEYS = {"phrase", "position", "expect", "class", "tol"}
_MFT_KEYS = {"template", "fills", "label", "max_cases"}


@register
class BehaviouralTests(Check):
    """CheckList behavioural tests of a text classifier: invariance, directional, minimum functionality.

    - **INV**: each text perturbation (default: every registered one) at ``severity`` must not
      change the predicted label; only the sentences it actually altered count as test cases.
    - **DIR** (``directional``): adding a phrase must not move one class's probability the wrong
      way, e.g. ``{phrase: "I hated it.", expect: not_increase, class: 1}``.
    - **MFT** (``minimum_functionality``): sentences generated from a template must get the
      expected label, e.g. ``{template: "The {thing} was {adj}.", fills: {thing: [film], adj:
      [great, superb]}, label: 1}``.

    Metrics
        one failure rate per test with its 95% Wilson interval: ``inv_<perturbation>``,
        ``dir_<i>``, ``mft_<i>`` (``i`` counts from 1 in the order given), and
        ``worst_failure_rate`` (headline): the highest of them. Tests without a case (a
        perturbation that changed no sentence) are listed in the table, not scored.
    Tables and figures
        ``tests``: one row per test; a ``text_examples`` figure of up to 10 failures, each
        re-predicted by the check, so every one shown is a failure of this model.

    Parameters
    ----------
    perturbations : list of str, optional
        Text perturbations for the invariance tests; default every registered one; ``[]`` none.
    severity : int in 1..5, default 3
    directional : list of dict, optional
        Keys ``phrase`` (required), ``position`` ("end"/"start", default "end"), ``expect``
        ("not_increase"/"not_decrease", default "not_increase"), ``class`` (default: the second
        class of a binary model), ``tol`` (default 0).
    minimum_functionality : list of dict, optional
        Keys ``template``, ``fills``, ``label`` (required) and ``max_cases`` (default 500).
    max_samples : int, default 500
        Sentences of the data used by the INV and DIR tests.
    conditions : list, optional
        Default ``worst_failure_rate <= 0.2 warn 0.1``.

    Examples
    --------
    >>> check = BehaviouralTests(perturbations=["name_swap"], directional=[{"phrase": "I hated it."}])
    >>> check.params()["directional"]
    [{'phrase': 'I hated it.', 'position': 'end', 'expect': 'not_increase', 'class': None, 'tol': 0.0}]
    """

    name: ClassVar[str] = "behavioural_tests"
    category: ClassVar[str] = "natural"
    modalities: ClassVar[tuple[str, ...]] = ("text",)
    default_conditions: ClassVar[tuple[str, ...]] = ("worst_failure_rate <= 0.2 warn 0.1",)
    headline_metric: ClassVar[str | None] = "worst_failure_rate"

    def __init__(self, *, perturbations: Sequence[str] | None = None, severity: int = 3,
                 directional: Sequence[Mapping[str, Any]] | None = None,
                 minimum_functionality: Sequence[Mapping[str, Any]] | None = None,
                 max_samples: int = 500, conditions: Sequence[Any] | None = None) -> None:
        super().__init__(conditions=conditions)
        if perturbations is not None:
            perturbations = perturb.PERTURBATIONS.check_names(self, "perturbations", perturbations, allow_empty=True,
                                                              modality="text")
        self.perturbations = perturbations
        if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)) or not 1 <= severity <= 5:
            raise param_error(self, "severity", "an integer in 1..5", severity)
        self.severity = int(severity)
        self.directional = [self._directional(i, d) for i, d in enumerate(_entries(self, "directional",
                                                                                   directional))]
        self.minimum_functionality = [self._mft(i, d) for i, d in enumerate(_entries(
            self, "minimum_functionality", minimum_functionality))]
        check_positive(self, "max_samples", max_samples, integer=True)
        self.max_samples = int(max_samples)
        if self.perturbations == [] and not self.directional and not self.minimum_functionality:
            raise ConfigError("BehaviouralTests has no test to run: perturbations=[] and no directional or "
                              "minimum_functionality tests; give at least one")

    def metric_names(self, model: Any, data: Any) -> tuple[str, ...]:
        return ("worst_failure_rate", "inv_*", "dir_*", "mft_*")

    def _directional(self, i: int, d: Mapping[str, Any]) -> dict[str, Any]:
        where = f"BehaviouralTests(directional=...)[{i}]"
        unknown = sorted(set(d) - _DIR_KEYS)
        if unknown:
            raise ConfigError(f"{where} has unknown key(s) {unknown}; use {sorted(_DIR_KEYS)}")
        phrase = d.get("phrase")
        if not isinstance(phrase, str) or not phrase.strip():
            raise ConfigError(f"{where} needs 'phrase': the non-empty text to add; got {phrase!r}")
        out = {"phrase": phrase, "position": d.get("position", "end"), "expect": d.get("expect", "not_increase"),
               "class": d.get("class"), "tol": d.get("tol", 0.0)}
        if out["position"] not in ("end", "start"):
            raise ConfigError(f"{where}['position'] must be 'end' or 'start'; got {out['position']!r}")
        if out["expect"] not in ("not_increase", "not_decrease"):
            raise ConfigError(f"{where}['expect'] must be 'not_increase' or 'not_decrease'; got {out['expect']!r}")
        tol = out["tol"]
        if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not np.isfinite(tol) or tol < 0:
            raise ConfigError(f"{where}['tol'] must be a number >= 0; got {tol!r}")
        out["tol"] = float(tol)
        return out

    def _mft(self, i: int, d: Mapping[str, Any]) -> dict[str, Any]:
        where = f"BehaviouralTests(minimum_functionality=...)[{i}]"
        unknown = sorted(set(d) - _MFT_KEYS)
        missing = [k for k in ("template", "fills", "label") if k not in d]
        if unknown or missing:
            raise ConfigError(f"{where} has unknown key(s) {unknown} or lacks {missing}; use template, fills, "
                              "label and optionally max_cases")
        try:
            Template(d["template"]).size(d["fills"])  # validates the template and its fills now
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        max_cases = d.get("max_cases", 500)
        if max_cases is not None and (isinstance(max_cases, bool) or not isinstance(max_cases, int)
                                      or max_cases < 1):
            raise ConfigError(f"{where}['max_cases'] must be an integer >= 1 or null; got {max_cases!r}")
        return {"template": d["template"], "fills": {k: list(v) for k, v in d["fills"].items()},
                "label": d["label"], "max_cases": max_cases}

    def _measure(self, model: Any, data: Any, rng: np.random.Generator) -> Measurement:
        if getattr(model, "task", "classification") == "regression":
            raise SkipCheck("behavioural tests need a classifier; the model is a regressor")
        sample = data.sample(self.max_samples, seed=rng, stratify=data.y is not None)
        texts = list(sample.x)
        seed = int(rng.integers(2**31))
        names = perturb.names("text") if self.perturbations is None else self.perturbations
        runs: list[tuple[str, BehaviourResult]] = []
        for name in names:
            # one stream per perturbation: a test's cases do not depend on which others were chosen
            runs.append((f"inv_{name}", invariance_test(model, texts, name, self.severity,
                                                        np.random.default_rng([seed, _crc(name)]),
                                                        max_examples=MAX_EXAMPLES)))
        for i, d in enumerate(self.directional, 1):
            runs.append((f"dir_{i}", directional_test(model, texts, d["phrase"], d["position"], d["expect"],
                                                      d["class"], d["tol"], max_examples=MAX_EXAMPLES)))
        for i, d in enumerate(self.minimum_functionality, 1):
            runs.append((f"mft_{i}", minimum_functionality_test(model, d["template"], d["fills"], d["label"],
                                                                max_cases=d["max_cases"], seed=seed,
                                                                max_examples=MAX_EXAMPLES)))
        metrics: dict[str, Metric] = {}
        rows = []
        for key, r in runs:
            rows.append({"test": key, "name": r.name, "kind": r.kind, "n": r.n, "failures": r.failures,
                         "failure_rate": r.failure_rate if r.n else None, "low": r.low if r.n else None,
                         "high": r.high if r.n else None, "status": "ok" if r.n else "no cases"})
            if r.n:
                metrics[key] = Metric(key, r.failure_rate, r.low, r.high, r.n)
        scored = [(key, r) for key, r in runs if r.n]
        if not scored:
            raise ConfigError("no behavioural test had a case: the perturbations changed no sentence of this "
                              "data; choose other perturbations or add directional / minimum_functionality tests")
        worst_key, worst = max(scored, key=lambda kr: kr[1].failure_rate)
        metrics = {"worst_failure_rate": Metric("worst_failure_rate", worst.failure_rate, worst.low, worst.high,
                                                worst.n), **metrics}
        figures = {}
        items = _confirmed_failures(model, sample, runs)
        if items:
            figures["failures"] = {"kind": "text_examples", "title": "Behavioural test failures (re-predicted)",
                                   "items": items}
        # tests without a case stay in the table (status "no cases") but are not scored
        return Measurement(metrics, {"tests": rows}, {}, (), figures)


def _crc(name: str) -> int:
    return zlib.crc32(name.encode())


def _entries(owner: Any, name: str, value: Any) -> list[Mapping[str, Any]]:
    if value is None:
        return []
    if isinstance(value, (str, Mapping)) or not isinstance(value, Sequence) \
            or not all(isinstance(d, Mapping) for d in value):
        raise param_error(owner, name, "a list of dicts (one per test)", value)
    return list(value)


def _confirmed_failures(model: Any, sample: Any, runs: list[tuple[str, BehaviourResult]]) -> list[dict[str, Any]]:
    """Up to MAX_EXAMPLES failure examples, one test after another, each re-predicted in one
    batched call and kept only if the model still fails it."""
    queues = [[(key, r.kind, e, r.params) for e in r.examples] for key, r in runs]
    picked: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = []
    while len(picked) < MAX_EXAMPLES and any(queues):
        for q in queues:
            if q and len(picked) < MAX_EXAMPLES:
                picked.append(q.pop(0))
    if not picked:
        return []
    pairs = [(e.get("original", e.get("text")), e.get("perturbed", e.get("text"))) for _, _, e, _ in picked]
    proba = np.asarray(model.predict_proba([a for a, _ in pairs] + [b for _, b in pairs]))
    before, after = proba[: len(pairs)], proba[len(pairs):]
    classes = np.asarray(model.classes).tolist()
    y = None if sample.y is None else np.asarray(sample.y)
    items = []
    for k, (key, kind, e, params) in enumerate(picked):
        pb, pa = classes[int(before[k].argmax())], classes[int(after[k].argmax())]
        if kind == "INV":
            real = pb != pa
            label = None if y is None else y[e["index"]]
        elif kind == "DIR":
            col = classes.index(params["class"])
            change = after[k, col] - before[k, col]
            real = change > params["tol"] if params["expect"] == "not_increase" else change < -params["tol"]
            label = None
        else:
            real = pa != e["expected"]
            label = e["expected"]
        if real:
            items.append({"original": pairs[k][0], "perturbed": pairs[k][1], "label": label,
                          "pred_before": pb, "pred_after": pa, "test": key})
    return items
