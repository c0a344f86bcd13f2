"""Behavioural tests of text classifiers after CheckList (Ribeiro, Wu, Guestrin and Singh, ACL 2020).

Three kinds of test, each returning one :class:`BehaviourResult`:

- **INV** (:func:`invariance_test`): a label-preserving change (a registered perturbation such as
  ``name_swap``, or any :class:`Paraphraser`) must not change the prediction;
- **DIR** (:func:`directional_test`): adding a phrase must move one class's probability only in
  the expected direction ("... I hated it." must not raise the probability of *positive*);
- **MFT** (:func:`minimum_functionality_test`): simple sentences generated from a
  :class:`Template` must get the expected label.

The failure rate carries a 95% Wilson interval, and the examples are real failures, re-predicted
from the model, never constructed.

>>> t = Template("{name} thinks the {thing} is {adj}.")
>>> t.fill({"name": ["Ana", "Bo"], "thing": ["film"], "adj": ["great"]})
['Ana thinks the film is great.', 'Bo thinks the film is great.']
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from stalwart._validation import check_choice, check_param, param_error
from stalwart.errors import ConfigError, InputError, ModelError
from stalwart.perturb.base import Perturbation, get

try:  # the report's shared implementation, when present
    from stalwart._stats import wilson_interval as _wilson
except ImportError:  # pragma: no cover - only while _stats is absent
    def _wilson(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
        """Wilson score interval at 95% (z = 1.959964); (0, 1) for n = 0."""
        if n == 0:
            return 0.0, 1.0
        z = 1.959963984540054
        p = successes / n
        denom = 1 + z * z / n
        center = (p + z * z / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
        return max(0.0, center - half) if successes else 0.0, min(1.0, center + half) if successes < n else 1.0

__all__ = ["BehaviourResult", "Paraphraser", "Template", "invariance_test", "directional_test",
           "minimum_functionality_test"]

KINDS = ("INV", "DIR", "MFT")


@dataclass(frozen=True)
class BehaviourResult:
    """Outcome of one behavioural test.

    Attributes
    ----------
    name : str
        What was tested, e.g. ``"INV name_swap@3"``.
    kind : {"INV", "DIR", "MFT"}
    n : int
        Test cases: texts the change actually altered (INV, DIR) or generated sentences (MFT).
    failures : int
    failure_rate : float
        ``failures / n`` (0.0 when ``n == 0``).
    low, high : float
        95% Wilson interval of the failure rate.
    examples : list of dict
        Up to ``max_examples`` real failures, in input order.
    params : dict
        The test's settings, for the report.
    """

    name: str
    kind: str
    n: int
    failures: int
    failure_rate: float
    low: float
    high: float
    examples: list[dict[str, Any]] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"BehaviourResult(kind=...) must be one of {list(KINDS)}; got {self.kind!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (the report and service use this)."""
        return {"name": self.name, "kind": self.kind, "n": self.n, "failures": self.failures,
                "failure_rate": self.failure_rate, "low": self.low, "high": self.high,
                "examples": [dict(e) for e in self.examples], "params": dict(self.params)}


@runtime_checkable
class Paraphraser(Protocol):
    """Rewrites texts without changing their meaning (a back-translation model, an LLM, rules)."""

    def paraphrase(self, texts: list[str], rng: np.random.Generator) -> list[str]:
        """One paraphrase per text, same order; return a text unchanged when none is available."""
        ...


# -- helpers ------------------------------------------------------------------------------------------
def _model(model: Any) -> Any:
    from stalwart.models.base import Model

    if not isinstance(model, Model):
        from stalwart.models.wrap import wrap

        model = wrap(model)
    if model.task != "classification":
        raise ModelError(f"{model.name} is a regression model; behavioural tests need a classifier.")
    return model


def _texts(texts: Any, name: str = "texts") -> list[str]:
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise InputError(f"{name} must be a list of strings; got {type(texts).__name__}")
    out = list(texts)
    if not out:
        raise InputError(f"{name} is empty; pass at least one sentence.")
    bad = [i for i, t in enumerate(out) if not isinstance(t, str)]
    if bad:
        raise InputError(f"{name} must be strings; entries {bad[:5]} are not.")
    return out


def _column(classes: np.ndarray, label: Any) -> int:
    """Index of ``label`` among ``classes`` (Python equality, so 1 != "1"), or -1."""
    label = _py(label)
    return next((i for i, c in enumerate(classes.tolist()) if c == label), -1)


def _py(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _result(name: str, kind: str, failed: np.ndarray, examples: list[dict[str, Any]],
            params: dict[str, Any]) -> BehaviourResult:
    n, k = int(failed.size), int(failed.sum())
    low, high = _wilson(k, n)
    return BehaviourResult(name, kind, n, k, k / n if n else 0.0, float(low), float(high), examples, params)


def _check_max_examples(owner: str, max_examples: Any) -> int:
    check_param(owner, "max_examples", max_examples,
                isinstance(max_examples, (int, np.integer)) and not isinstance(max_examples, bool)
                and max_examples >= 0, "an integer >= 0")
    return int(max_examples)


# -- INV ------------------------------------------------------------------------------------------------
def invariance_test(model: Any, texts: Sequence[str], perturbation: str | Perturbation | Paraphraser,
                    severity: int = 3, seed: int | np.random.Generator = 0, *, max_examples: int = 10
                    ) -> BehaviourResult:
    """INV: a label-preserving change must not change the predicted label.

    Parameters
    ----------
    model : Model or anything :func:`stalwart.wrap` accepts
    texts : list of str
    perturbation : str, Perturbation or Paraphraser
        A registered text perturbation name (``"name_swap"``, ``"contract"``, ...), an instance, or
        a :class:`Paraphraser`.
    severity : int in 1..5, default 3
        Passed to a perturbation; a paraphraser ignores it.
    seed : int or numpy Generator, default 0
    max_examples : int, default 10

    Returns
    -------
    BehaviourResult
        ``n`` counts only the texts the change altered: an unchanged text cannot fail.
        Examples hold ``index, original, perturbed, pred_before, pred_after, prob_before,
        prob_after`` (probabilities of the predicted classes).
    """
    owner = "invariance_test"
    texts = _texts(texts)
    max_examples = _check_max_examples(owner, max_examples)
    gen = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    if isinstance(perturbation, str):
        perturbation = get(perturbation)
    if isinstance(perturbation, Perturbation):
        if perturbation.modality != "text":
            raise param_error(owner, "perturbation", "a text perturbation", perturbation.name)
        label = f"{perturbation.name}@{severity}"
        perturbed = perturbation.apply(texts, severity, gen)
    elif isinstance(perturbation, Paraphraser):
        label = type(perturbation).__name__
        perturbed = perturbation.paraphrase(list(texts), gen)
        if not isinstance(perturbed, Sequence) or isinstance(perturbed, str) or len(perturbed) != len(texts) \
                or not all(isinstance(t, str) for t in perturbed):
            got = len(perturbed) if isinstance(perturbed, Sequence) else type(perturbed).__name__
            raise ConfigError(f"{label}.paraphrase() must return one string per input text ({len(texts)}); "
                              f"got {got!r}")
        perturbed = list(perturbed)
    else:
        raise param_error(owner, "perturbation", "a registered text perturbation name, a Perturbation or "
                          "an object with paraphrase(texts, rng)", perturbation)
    model = _model(model)
    idx = np.flatnonzero([a != b for a, b in zip(texts, perturbed)])
    params = {"perturbation": label, "severity": int(severity), "n_texts": len(texts)}
    if idx.size == 0:
        return _result(f"INV {label}", "INV", np.zeros(0, dtype=bool), [], params)
    proba = model.predict_proba([texts[i] for i in idx] + [perturbed[i] for i in idx])
    before, after = proba[: idx.size], proba[idx.size:]
    cb, ca = before.argmax(axis=1), after.argmax(axis=1)
    failed = cb != ca
    classes = np.asarray(model.classes)
    examples = [{"index": int(idx[k]), "original": texts[idx[k]], "perturbed": perturbed[idx[k]],
                 "pred_before": _py(classes[cb[k]]), "pred_after": _py(classes[ca[k]]),
                 "prob_before": float(before[k, cb[k]]), "prob_after": float(after[k, ca[k]])}
                for k in np.flatnonzero(failed)[:max_examples]]
    return _result(f"INV {label}", "INV", failed, examples, params)


# -- DIR ------------------------------------------------------------------------------------------------
def directional_test(model: Any, texts: Sequence[str], phrase: str, position: str = "end",
                     expect: str = "not_increase", class_: Any = None, tol: float = 0.0, *,
                     max_examples: int = 10) -> BehaviourResult:
    """DIR: adding ``phrase`` must not move the probability of ``class_`` the wrong way.

    Parameters
    ----------
    model : Model or anything :func:`stalwart.wrap` accepts
    texts : list of str
    phrase : str
        Added after (``position="end"``) or before (``"start"``) each text, with one space.
    expect : {"not_increase", "not_decrease"}
        E.g. appending "I hated it." should *not increase* the probability of "positive".
    class_ : label, optional
        The class whose probability is watched; default: the last class of a binary model
        (required when there are more than two).
    tol : float >= 0, default 0.0
        Movements in the wrong direction up to ``tol`` are not failures.

    Returns
    -------
    BehaviourResult
        Examples hold ``index, original, perturbed, prob_before, prob_after, change,
        pred_before, pred_after``.
    """
    owner = "directional_test"
    texts = _texts(texts)
    check_param(owner, "phrase", phrase, isinstance(phrase, str) and phrase.strip() != "", "a non-empty string")
    check_choice(owner, "position", position, ("end", "start"))
    check_choice(owner, "expect", expect, ("not_increase", "not_decrease"))
    check_param(owner, "tol", tol, isinstance(tol, (int, float, np.number)) and not isinstance(tol, bool)
                and np.isfinite(tol) and tol >= 0, "a number >= 0")
    max_examples = _check_max_examples(owner, max_examples)
    model = _model(model)
    classes = np.asarray(model.classes)
    if class_ is None:
        if len(classes) != 2:
            raise param_error(owner, "class_", f"one of the model's classes {classes.tolist()} (no default "
                              "with more than two classes)", class_)
        col = 1
    else:
        col = _column(classes, class_)
        if col < 0:
            raise param_error(owner, "class_", f"one of the model's classes {classes.tolist()}", class_)
    perturbed = [t + " " + phrase if position == "end" else phrase + " " + t for t in texts]
    proba = model.predict_proba(texts + perturbed)
    n = len(texts)
    before, after = proba[:n], proba[n:]
    change = after[:, col] - before[:, col]
    failed = change > tol if expect == "not_increase" else change < -tol
    cb, ca = before.argmax(axis=1), after.argmax(axis=1)
    examples = [{"index": int(i), "original": texts[i], "perturbed": perturbed[i],
                 "prob_before": float(before[i, col]), "prob_after": float(after[i, col]),
                 "change": float(change[i]), "pred_before": _py(classes[cb[i]]),
                 "pred_after": _py(classes[ca[i]])}
                for i in np.flatnonzero(failed)[:max_examples]]
    params = {"phrase": phrase, "position": position, "expect": expect, "class": _py(classes[col]),
              "tol": float(tol)}
    return _result(f"DIR {position} {phrase!r}", "DIR", failed, examples, params)


# -- MFT ------------------------------------------------------------------------------------------------
_SLOT = re.compile(r"\{(?:(a):)?([A-Za-z_]\w*)\}")
_AN_EXCEPT = ("hour", "honest", "honour", "honor", "heir")
_A_EXCEPT = ("uni", "use", "usu", "eu", "one", "once", "ur")


def _article(word: str) -> str:
    w = word.lower()
    if w.startswith(_AN_EXCEPT):
        return "an"
    if w.startswith(_A_EXCEPT):
        return "a"
    return "an" if w[:1] in "aeiou" and w[:1] != "" else "a"


class Template:
    """A sentence with ``{slot}`` placeholders, filled by the cartesian product of word lists.

    ``{a:slot}`` puts "a" or "an" before the value ("an apple", "a car", "an hour"). A slot used
    twice gets the same value in both places. Braces that are not a slot stay as written.

    Parameters
    ----------
    text : str
        e.g. ``"{name} thinks {a:product} is {pos_adj}."``
    """

    def __init__(self, text: str) -> None:
        check_param(self, "text", text, isinstance(text, str) and _SLOT.search(text) is not None,
                    "a string with at least one {slot}")
        self.text = text
        self.fields: tuple[str, ...] = tuple(dict.fromkeys(m.group(2) for m in _SLOT.finditer(text)))

    def __repr__(self) -> str:
        return f"Template({self.text!r})"

    def size(self, fills: Mapping[str, Sequence[str]]) -> int:
        """Number of distinct sentences the fills give."""
        return int(np.prod([len(fills[f]) for f in self._check(fills)], dtype=np.int64))

    def _check(self, fills: Any) -> tuple[str, ...]:
        if not isinstance(fills, Mapping):
            raise param_error(self, "fills", "a dict {slot: [values]}", fills)
        missing = [f for f in self.fields if f not in fills]
        if missing:
            raise ConfigError(f"Template fills lack slot(s) {missing}; the template {self.text!r} needs "
                              f"{list(self.fields)}")
        for f in self.fields:
            values = fills[f]
            if isinstance(values, str) or not isinstance(values, Sequence) or not values \
                    or not all(isinstance(v, str) for v in values):
                raise ConfigError(f"Template fills[{f!r}] must be a non-empty list of strings; got {values!r}")
        return self.fields

    def fill(self, fills: Mapping[str, Sequence[str]], max_cases: int | None = None,
             seed: int | np.random.Generator = 0) -> list[str]:
        """All sentences of the product of ``fills`` (slot order: first use in the text).

        With ``max_cases`` below the product's size, a uniform sample of ``max_cases`` distinct
        combinations (drawn with ``seed``) is returned, in product order.
        """
        fields = self._check(fills)
        sizes = [len(fills[f]) for f in fields]
        total = int(np.prod(sizes, dtype=np.int64))
        if max_cases is not None:
            check_param(self, "max_cases", max_cases, isinstance(max_cases, (int, np.integer))
                        and not isinstance(max_cases, bool) and max_cases >= 1, "an integer >= 1 or None")
        if max_cases is not None and max_cases < total:
            gen = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
            flat = np.sort(gen.choice(total, size=int(max_cases), replace=False))
        else:
            flat = np.arange(total)
        choice = np.unravel_index(flat, sizes)
        out = []
        for row in range(flat.size):
            values = {f: fills[f][int(choice[j][row])] for j, f in enumerate(fields)}
            out.append(_SLOT.sub(lambda m, v=values: (_article(v[m.group(2)]) + " " if m.group(1) else "")
                                 + v[m.group(2)], self.text))
        return out


def minimum_functionality_test(model: Any, template: str | Template, fills: Mapping[str, Sequence[str]],
                               label: Any, *, max_cases: int | None = 500, seed: int = 0,
                               max_examples: int = 10) -> BehaviourResult:
    """MFT: every sentence generated from ``template`` must be predicted as ``label``.

    Parameters
    ----------
    model : Model or anything :func:`stalwart.wrap` accepts
    template : str or Template
    fills : dict {slot: [values]}
    label : one of the model's classes
    max_cases : int or None, default 500
        Cap on generated sentences (a seeded uniform sample of the product); None: all.
    seed : int, default 0

    Returns
    -------
    BehaviourResult
        Examples hold ``index, text, expected, pred, prob_expected``.
    """
    owner = "minimum_functionality_test"
    tpl = template if isinstance(template, Template) else Template(template)
    max_examples = _check_max_examples(owner, max_examples)
    model = _model(model)
    classes = np.asarray(model.classes)
    col = _column(classes, label)
    if col < 0:
        raise InputError(f"minimum_functionality_test(label=...) must be one of the model's classes "
                         f"{classes.tolist()}; got {label!r}")
    texts = tpl.fill(fills, max_cases=max_cases, seed=seed)
    proba = model.predict_proba(texts)
    pred = proba.argmax(axis=1)
    failed = pred != col
    examples = [{"index": int(i), "text": texts[i], "expected": _py(classes[col]),
                 "pred": _py(classes[pred[i]]), "prob_expected": float(proba[i, col])}
                for i in np.flatnonzero(failed)[:max_examples]]
    params = {"template": tpl.text, "label": _py(classes[col]), "n_possible": tpl.size(fills),
              "max_cases": max_cases, "seed": seed}
    return _result(f"MFT {tpl.text!r}", "MFT", failed, examples, params)
