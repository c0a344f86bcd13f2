"""Adversarial robustness of text classifiers: greedy synonym substitution under a word budget."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from stalwart._stats import wilson_interval
from stalwart._validation import check_labels, check_param, check_positive
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
from stalwart.errors import ConfigError

__all__ = ["TextAdversarialRobustness", "MAX_EXAMPLES"]

#: adversarial examples shown in the figure (the table lists up to four times as many)
MAX_EXAMPLES = 10
_SOURCES = ("auto", "wordnet", "lexicon")


@register
class TextAdversarialRobustness(Check):
    """Robust accuracy of a text classifier under word substitution (TextFooler / PWWS style).

    :class:`~stalwart.attacks.WordSubstitution` replaces, in each correctly classified text, at
    most ``floor(max_change * n_words)`` words by synonyms, most important words first, and
    stops at the first change of label. It needs only predictions (black-box). Success is
    recomputed from a fresh prediction on the returned texts, so every example shown is a real
    failure of the model.

    A text shorter than ``1 / max_change`` words allows no substitution at all and counts as
    robust; how many such texts there were is metric ``unattackable_share`` and, when any, the
    first line of the message, so a short-text data set cannot pass for a robust model unnoticed.

    Metrics
        ``clean_accuracy``, ``robust_accuracy`` (Wilson intervals); ``attack_success_rate``:
        share of correctly classified texts the attack fooled (Wilson); ``robust_accuracy_ratio``
        (robust over clean accuracy); ``mean_words_changed`` and ``median_fraction_changed`` over
        the adversarial examples; ``unattackable_share`` of correctly classified texts.
    Tables and figures
        ``examples``: up to 40 adversarial examples (original, adversarial, label, predictions,
        words changed); ``attack``: the attack's settings, queries and time; a ``text_examples``
        figure of up to 10 of them.

    Parameters
    ----------
    max_change : float in (0, 1], default 0.2
        Largest share of a text's words the attack may replace.
    max_samples : int, default 200
        Size of the stratified sample the check runs on.
    synonyms : {"auto", "wordnet", "lexicon"} or str, default "auto"
        Where substitutes come from: WordNet's database files when installed ("auto" falls back
        to the lexicon shipped with stalwart), the shipped lexicon, or the path of a lexicon file
        (``word<TAB>pos<TAB>synonym, ...`` lines). The source used is recorded in table ``attack``.
    max_candidates : int, default 20
        Synonyms tried per word.
    queries : int, default 2000
        Model queries per text.
    conditions : list, optional
        Default ``robust_accuracy_ratio >= 0.5``.

    Examples
    --------
    >>> TextAdversarialRobustness(max_change=0.3).params()["max_change"]
    0.3
    """

    name: ClassVar[str] = "text_adversarial_robustness"
    category: ClassVar[str] = "adversarial"
    modalities: ClassVar[tuple[str, ...]] = ("text",)
    default_conditions: ClassVar[tuple[str, ...]] = ("robust_accuracy_ratio >= 0.5",)
    headline_metric: ClassVar[str | None] = "robust_accuracy_ratio"

    def __init__(self, *, max_change: float = 0.2, max_samples: int = 200, synonyms: str = "auto",
                 max_candidates: int = 20, queries: int = 2000, conditions: Sequence[Any] | None = None) -> None:
        super().__init__(conditions=conditions)
        ok = isinstance(max_change, (int, float, np.integer, np.floating)) and not isinstance(max_change, bool) \
            and 0 < max_change <= 1
        self.max_change = float(check_param(self, "max_change", max_change, bool(ok), "a number in (0, 1]"))
        check_positive(self, "max_samples", max_samples, integer=True)
        self.max_samples = int(max_samples)
        self.synonyms = check_param(self, "synonyms", synonyms, isinstance(synonyms, str) and synonyms != "",
                                    f"one of {list(_SOURCES)} or the path of a lexicon file")
        check_positive(self, "max_candidates", max_candidates, integer=True)
        self.max_candidates = int(max_candidates)
        check_positive(self, "queries", queries, integer=True)
        self.queries = int(queries)

    def metric_names(self, model: Any, data: Any) -> tuple[str, ...]:
        return ("clean_accuracy", "robust_accuracy", "attack_success_rate", "robust_accuracy_ratio",
                "mean_words_changed", "median_fraction_changed", "unattackable_share")

    def validate(self, model: Any, data: Any) -> None:
        super().validate(model, data)
        if data.y is None:
            raise ConfigError(f"check {self.name!r} needs labels: the data has none (pass y or --target)")

    def run(self, model: Any, data: Any, seed: int = 0) -> CheckResult:
        """As :meth:`Check.run`; texts too short to attack are named first in the message."""
        return notes_first(super().run(model, data, seed=seed))

    def _source(self) -> Any:
        from stalwart.attacks.synonyms import LexiconSynonyms, WordNetSynonyms, default_synonyms

        if self.synonyms == "auto":
            return default_synonyms()
        if self.synonyms == "wordnet":
            return WordNetSynonyms()
        return LexiconSynonyms() if self.synonyms == "lexicon" else LexiconSynonyms(self.synonyms)

    def _measure(self, model: Any, data: Any, rng: np.random.Generator) -> Measurement:
        from stalwart.attacks.text import WordSubstitution, tokenize
        from stalwart.models import wrap

        model = wrap(model)
        if getattr(model, "task", "classification") != "classification":
            raise SkipCheck("text adversarial robustness is measured for classifiers; the model is a regressor")
        sample = data.sample(self.max_samples, seed=rng)
        texts = list(sample.x)
        y = check_labels(np.asarray(sample.y), model.classes)
        at_chance = chance_reason(y, model.predict(texts))
        if at_chance:
            k = int(np.sum(model.predict(texts) == y))
            return Measurement({"clean_accuracy": _rate("clean_accuracy", k, len(texts))}, {}, {},
                               not_meaningful=at_chance)
        attack = WordSubstitution(synonyms=self._source(), max_change=self.max_change,
                                  max_candidates=self.max_candidates, queries=self.queries,
                                  seed=int(rng.integers(2**31)))
        res = attack.run(model, texts, y)
        n = len(texts)
        correct = res.clean_correct
        clean_k, robust_k = int(correct.sum()), int((~res.success).sum())
        fooled = res.success & correct
        metrics = {"clean_accuracy": _rate("clean_accuracy", clean_k, n),
                   "robust_accuracy": _rate("robust_accuracy", robust_k, n)}
        if clean_k:
            metrics["attack_success_rate"] = _rate("attack_success_rate", int(fooled.sum()), clean_k)
            metrics["robust_accuracy_ratio"] = Metric("robust_accuracy_ratio", robust_k / clean_k, n=n)
        nan = float("nan")
        metrics["mean_words_changed"] = Metric(
            "mean_words_changed", float(res.words_changed[fooled].mean()) if fooled.any() else nan, n=int(fooled.sum()))
        metrics["median_fraction_changed"] = Metric(
            "median_fraction_changed", float(np.median(res.fraction_changed[fooled])) if fooled.any() else nan,
            n=int(fooled.sum()))
        # the attack's own budget rule: floor(max_change * words) substitutions allowed
        budget = np.array([math.floor(self.max_change * (len(tokenize(t)) // 2) + 1e-9) for t in texts])
        short = int((correct & (budget == 0)).sum())
        if clean_k:
            metrics["unattackable_share"] = Metric("unattackable_share", short / clean_k, n=clean_k)
        notes = []
        if short:
            min_words = math.ceil(1 / self.max_change - 1e-9)
            notes.append(f"{short} of {clean_k} correctly classified texts have fewer than {min_words} words, so "
                         f"max_change={self.max_change:g} allows no substitution in them and they count as robust")

        idx = np.flatnonzero(fooled)
        rows = [{"original": res.original[i], "adversarial": res.perturbed[i], "label": _py(res.y[i]),
                 "pred_before": _py(res.pred_clean[i]), "pred_after": _py(res.pred_adv[i]),
                 "words_changed": int(res.words_changed[i])} for i in idx[:4 * MAX_EXAMPLES].tolist()]
        summary = res.to_dict()
        tables = {
            "examples": rows,
            "attack": [{"attack": summary["attack"], "synonyms": summary["params"]["synonyms"],
                        "max_change": self.max_change, "max_candidates": self.max_candidates,
                        "queries": self.queries, "seed": summary["params"]["seed"], "n_samples": n,
                        "queries_mean": summary["queries_mean"], "time_s": summary["time_s"]}],
            "notes": note_rows(notes, []),
        }
        figures = {}
        if rows:
            figures["adversarial_examples"] = {
                "kind": "text_examples", "title": "Adversarial examples (word substitution, re-predicted)",
                "items": [{"original": r["original"], "perturbed": r["adversarial"], "label": r["label"],
                           "pred_before": r["pred_before"], "pred_after": r["pred_after"]}
                          for r in rows[:MAX_EXAMPLES]]}
        return Measurement(metrics, tables, {}, (), figures)


def _rate(name: str, k: int, n: int) -> Metric:
    lo, hi = wilson_interval(k, n)
    return Metric(name, k / n, float(lo), float(hi), n)


def _py(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
