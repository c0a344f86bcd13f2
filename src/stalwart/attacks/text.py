"""Black-box word-substitution attack on text classifiers (TextFooler / PWWS style).

Text is a list of strings and has no numeric threat model; the adversary's budget is a share of
the words it may replace, each by a synonym, plus a query budget. The attack follows TextFooler
(Jin et al., 2020) and PWWS (Ren et al., 2019):

1. rank the words of each sentence by importance: the drop in the true-class probability when
   the word is deleted (or replaced by a mask token); stop words and words without synonyms are
   never ranked;
2. walk the words in that order; for each, score every synonym in one batched query and keep the
   one that flips the label (the most confident flip when several do) or, failing that, the one
   that lowers the true-class probability most; a synonym that does not lower it is not used;
3. stop once the label flips or the word or query budget is spent.

Only ``model.predict_proba`` on lists of strings is used. Every step batches all sentences still
under attack into one model call. The text between words (spaces, punctuation, digits) is never
touched, and a substitute takes the case pattern of the word it replaces.
"""

from __future__ import annotations

import math
import re
import time
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np

from stalwart._validation import check_labels, check_lengths, check_param, labels_to_index, param_error
from stalwart.attacks._common import classifier
from stalwart.attacks.base import RobustnessRates, register
from stalwart.attacks.synonyms import SynonymSource, as_synonym_source, default_synonyms
from stalwart.errors import InputError

__all__ = ["WordSubstitution", "TextAttackResult", "STOP_WORDS", "tokenize"]

Importance = Literal["delete", "mask"]

#: a word: letters of any script, with inner apostrophes or hyphens ("isn't", "first-rate")
WORD = re.compile(r"[^\W\d_]+(?:['\u2019-][^\W\d_]+)*")

#: function words never replaced (changing them changes meaning or grammar, not wording);
#: negations are here on purpose, so "not good" is never turned into "good"
STOP_WORDS: frozenset[str] = frozenset("""
a about above across after afterwards again against ago all almost along already also although always
am among an and another any anybody anyhow anyone anything anyway anywhere are aren't around as at be
became because become becomes been before behind being below beside besides between beyond both but by
can can't cannot could couldn't did didn't do does doesn't doing don't done down during each either
else elsewhere enough etc even ever every everyone everything everywhere except few for from further
had hadn't has hasn't have haven't having he he'd he'll he's hence her here hers herself him himself
his how however i i'd i'll i'm i've if in indeed into is isn't it it's its itself just least less
let's many may me might mine more moreover most mostly much must mustn't my myself neither never
nevertheless next no nobody none noone nor not nothing now nowhere of off on once one only onto or
other others otherwise our ours ourselves out over own per rather same shall shan't she she'd she'll
she's should shouldn't since so some somehow someone something sometime sometimes somewhere such than
that that's the their theirs them themselves then thence there there's thereafter thereby therefore
therein these they they'd they'll they're they've this those though through throughout thru thus to
together too toward towards under unless until up upon us very was wasn't we we'd we'll we're we've
were weren't what what's whatever when whence whenever where where's whereas wherever whether which
while whither who who's whoever whole whom whose why will with within without won't would wouldn't yet
you you'd you'll you're you've your yours yourself yourselves
""".split()) - {"very"}  # "very" is an intensifier with real synonyms ("extremely")


def tokenize(text: str) -> list[str]:
    """Split ``text`` into alternating segments ``[gap, word, gap, word, ..., gap]``.

    ``"".join(segments) == text`` always holds; words sit at the odd positions.
    """
    parts = WORD.split(text)  # the pattern has no groups: split returns the gaps only
    words = WORD.findall(text)
    segs = [parts[0]]
    for w, gap in zip(words, parts[1:]):
        segs += [w, gap]
    return segs


def _match_case(src: str, word: str) -> str:
    """``word`` in the case pattern of ``src`` (UPPER, Title or as given)."""
    if len(src) > 1 and src.isupper():
        return word.upper()
    if src[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def _py(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


@dataclass(frozen=True, eq=False)
class TextAttackResult(RobustnessRates):
    """Outcome of one text attack run; arrays have one entry per sample.

    Attributes
    ----------
    original, perturbed : list of str
        Input texts and the adversarial texts (equal to the input where the attack failed or the
        sample was misclassified to begin with).
    y, pred_clean, pred_adv : ndarray
        True labels, and the model's labels on ``original`` and on ``perturbed``.
    success : ndarray of bool
        The model is wrong on ``perturbed`` (recomputed after the attack; samples it got wrong
        clean count as successes, i.e. not robust).
    words_changed, fraction_changed : ndarray
        Words replaced, and that count over the number of words in the text.
    queries : ndarray
        Texts sent to the model for each sample.
    """

    attack: str
    original: list[str]
    perturbed: list[str]
    y: np.ndarray
    pred_clean: np.ndarray
    pred_adv: np.ndarray
    success: np.ndarray
    words_changed: np.ndarray
    fraction_changed: np.ndarray
    queries: np.ndarray
    time_s: float
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no per-sample arrays)."""
        fooled = self.success & self.clean_correct
        return {
            "attack": self.attack, "params": self.params, "n_samples": len(self.original),
            "clean_accuracy": self.clean_accuracy, "robust_accuracy": self.robust_accuracy,
            "attack_success_rate": self.attack_success_rate,
            "mean_words_changed": float(self.words_changed[fooled].mean()) if fooled.any() else None,
            "median_fraction_changed": float(np.median(self.fraction_changed[fooled])) if fooled.any() else None,
            "queries_mean": float(self.queries.mean()), "time_s": self.time_s,
        }

    def examples(self, n: int = 5) -> list[dict[str, Any]]:
        """Up to ``n`` adversarial examples (samples fooled by the attack), in input order."""
        idx = np.flatnonzero(self.success & self.clean_correct)[:max(int(n), 0)]
        return [{"original": self.original[i], "perturbed": self.perturbed[i], "label": _py(self.y[i]),
                 "pred_adv": _py(self.pred_adv[i]), "words_changed": int(self.words_changed[i])}
                for i in idx.tolist()]


class _Sample:
    """Mutable attack state of one sentence."""

    __slots__ = ("row", "segs", "cands", "order", "budget", "changed", "p_true", "done")

    def __init__(self, row: int, segs: list[str], cands: dict[int, list[str]], budget: int) -> None:
        self.row, self.segs, self.cands, self.budget = row, segs, cands, budget
        self.order: list[int] = []
        self.changed = 0
        self.p_true = 1.0
        self.done = False

    def around(self, k: int) -> tuple[str, str]:
        """The text before and after word ``k`` (``segs[2k + 1]``)."""
        j = 2 * k + 1
        return "".join(self.segs[:j]), "".join(self.segs[j + 1:])


@register
class WordSubstitution:
    """Greedy synonym substitution guided by word importance (TextFooler / PWWS), black-box.

    Parameters
    ----------
    synonyms : SynonymSource or dict, optional
        Where substitutes come from: anything with ``synonyms(word) -> list[str]``, or a dict
        ``{word: [synonyms]}``; default :func:`~stalwart.attacks.synonyms.default_synonyms`
        (WordNet when installed, else the shipped lexicon). Only single-word synonyms are used.
    max_change : float, default 0.2
        Largest share of a text's words that may be replaced: ``floor(max_change * n_words)``
        words (a 4-word text with 0.2 gets none).
    importance : {"delete", "mask"}, default "delete"
        How a word's importance is measured: delete it, or replace it by ``mask_token``.
    max_candidates : int, default 20
        Synonyms tried per word; when a word has more, a subset is drawn with ``seed`` (the same
        subset for that word wherever it occurs).
    queries : int, default 2000
        Model queries per sample (the clean prediction, importance and candidates together).
    mask_token : str, default "<unk>"
        Replacement used by ``importance="mask"``.
    stop_words : iterable of str, optional
        Words never replaced (compared in lower case); default :data:`STOP_WORDS`.
    seed : int, default 0
        Seeds the candidate subsets; with at most ``max_candidates`` synonyms per word the attack
        is deterministic whatever the seed.

    Notes
    -----
    A sample's outcome does not depend on the other samples in the batch. Samples the model
    already misclassifies are not attacked and count as not robust. Success is recomputed from
    a fresh prediction on the returned texts.

    References
    ----------
    Jin, Jin, Zhou & Szolovits (2020), "Is BERT Really Robust? A Strong Baseline for Natural
    Language Attack on Text Classification and Entailment", AAAI.
    Ren, Deng, He & Che (2019), "Generating Natural Language Adversarial Examples through
    Probability Weighted Word Saliency", ACL.

    Examples
    --------
    >>> from sklearn.feature_extraction.text import TfidfVectorizer
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> from stalwart.attacks.synonyms import LexiconSynonyms
    >>> texts = ["a good movie", "a great film", "a bad movie", "an awful film"]
    >>> clf = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(texts, [1, 1, 0, 0])
    >>> attack = WordSubstitution(synonyms=LexiconSynonyms(), max_change=0.5)
    >>> attack.run(clf, ["a good movie"], [1]).perturbed
    ['a decent movie']
    """

    name: ClassVar[str] = "word_substitution"
    modalities: ClassVar[tuple[str, ...]] = ("text",)
    white_box: ClassVar[bool] = False

    def __init__(self, *, synonyms: SynonymSource | Mapping[str, Sequence[str]] | None = None,
                 max_change: float = 0.2, importance: Importance = "delete", max_candidates: int = 20,
                 queries: int = 2000, mask_token: str = "<unk>", stop_words: Iterable[str] | None = None,
                 seed: int = 0) -> None:
        self.synonyms = default_synonyms() if synonyms is None else as_synonym_source(self, synonyms)
        ok = isinstance(max_change, (int, float, np.integer, np.floating)) and not isinstance(max_change, bool)
        self.max_change = float(check_param(self, "max_change", max_change,
                                            bool(ok and 0 < max_change <= 1), "a number in (0, 1]"))
        self.importance = check_param(self, "importance", importance, importance in ("delete", "mask"),
                                      "'delete' or 'mask'")
        for pname, value in (("max_candidates", max_candidates), ("queries", queries)):
            check_param(self, pname, value, isinstance(value, (int, np.integer)) and not isinstance(value, bool)
                        and value >= 1, "an integer >= 1")
        self.max_candidates, self.queries = int(max_candidates), int(queries)
        self.mask_token = check_param(self, "mask_token", mask_token,
                                      isinstance(mask_token, str) and mask_token != "", "a non-empty string")
        if stop_words is None:
            self.stop_words = STOP_WORDS
        else:
            listed = None if isinstance(stop_words, str) else list(stop_words)
            if listed is None or not all(isinstance(w, str) for w in listed):
                raise param_error(self, "stop_words", "None or an iterable of strings", stop_words)
            self.stop_words = frozenset(w.lower() for w in listed)
        self.seed = check_param(self, "seed", seed, isinstance(seed, (int, np.integer)) and
                                not isinstance(seed, bool) and seed >= 0, "an integer >= 0")

    def params(self) -> dict[str, Any]:
        """JSON-ready parameters (the synonym source as its repr)."""
        return {"synonyms": repr(self.synonyms), "max_change": self.max_change, "importance": self.importance,
                "max_candidates": self.max_candidates, "queries": self.queries,
                "mask_token": self.mask_token, "custom_stop_words": self.stop_words is not STOP_WORDS,
                "seed": int(self.seed)}

    def __repr__(self) -> str:
        p = self.params()
        p.pop("custom_stop_words")
        return f"WordSubstitution({', '.join(f'{k}={v!r}' for k, v in p.items())})"

    # -- candidates -------------------------------------------------------------------------------
    def _candidates(self, word: str, cache: dict[str, list[str]]) -> list[str]:
        """Single-word synonyms of ``word`` (lower case), at most ``max_candidates``."""
        key = word.lower()
        found = cache.get(key)
        if found is None:
            found = [s for s in self.synonyms.synonyms(key) if s.lower() != key and WORD.fullmatch(s)]
            if len(found) > self.max_candidates:
                # seeded per word, so the subset does not depend on the rest of the batch
                rng = np.random.default_rng([int(self.seed), zlib.crc32(key.encode())])
                keep = np.sort(rng.choice(len(found), self.max_candidates, replace=False))
                found = [found[i] for i in keep]
            cache[key] = found
        return found

    # -- run ------------------------------------------------------------------------------------------
    def run(self, model: Any, texts: Sequence[str], y: Any) -> TextAttackResult:
        """Attack ``texts`` (true labels ``y``) and return a :class:`TextAttackResult`.

        Parameters
        ----------
        model : object
            A classifier taking a list of strings (e.g. a fitted scikit-learn text Pipeline), or a
            :class:`~stalwart.models.base.Model`; anything :func:`stalwart.models.wrap` accepts.
        texts : sequence of str
        y : array-like
            One label per text, among the model's classes.
        """
        texts = _check_texts(texts)
        model = classifier(self.name, model)
        ys = check_labels(y, model.classes, "y")
        check_lengths("texts", texts, "y", ys)
        y_idx = labels_to_index(ys, model.classes)
        n = len(texts)

        start = time.perf_counter()
        probs = model.predict_proba(texts)
        pred_clean = probs.argmax(axis=1)
        queries = np.ones(n, dtype=np.int64)
        todo = np.flatnonzero(pred_clean == y_idx)

        cache: dict[str, list[str]] = {}
        samples: list[_Sample] = []
        for i in todo.tolist():
            segs = tokenize(texts[i])
            n_words = len(segs) // 2
            budget = math.floor(self.max_change * n_words + 1e-9)
            cands = {}
            if budget > 0:
                for k in range(n_words):
                    word = segs[2 * k + 1]
                    if word.lower() not in self.stop_words:
                        found = self._candidates(word, cache)
                        if found:
                            cands[k] = [_match_case(word, c) for c in found]
            s = _Sample(i, segs, cands, budget)
            s.p_true = float(probs[i, y_idx[i]])
            if cands:
                samples.append(s)

        self._rank(model, samples, y_idx, queries)
        self._substitute(model, samples, y_idx, queries)

        perturbed = list(texts)
        words_changed = np.zeros(n, dtype=np.int64)
        for s in samples:
            if s.changed:
                perturbed[s.row] = "".join(s.segs)
                words_changed[s.row] = s.changed
        pred_adv = pred_clean.copy()
        moved = np.flatnonzero(words_changed > 0)
        if moved.size:  # success is recomputed from the returned texts, not taken from the search
            pred_adv[moved] = model.predict_proba([perturbed[i] for i in moved]).argmax(axis=1)
        elapsed = time.perf_counter() - start
        success = (pred_adv != y_idx) | (pred_clean != y_idx)
        # where the attack failed the result must not claim a change
        failed = np.flatnonzero(~success & (words_changed > 0))
        for i in failed.tolist():
            perturbed[i] = texts[i]
        words_changed[failed] = 0
        pred_adv[failed] = pred_clean[failed]
        n_words = np.fromiter((len(WORD.findall(t)) for t in texts), dtype=np.int64, count=n)
        classes = np.asarray(model.classes)
        return TextAttackResult(
            attack=self.name, original=texts, perturbed=perturbed, y=ys, pred_clean=classes[pred_clean],
            pred_adv=classes[pred_adv], success=success, words_changed=words_changed,
            fraction_changed=words_changed / np.maximum(n_words, 1), queries=queries, time_s=elapsed,
            params=self.params())

    def _rank(self, model: Any, samples: list[_Sample], y_idx: np.ndarray, queries: np.ndarray) -> None:
        """Order each sample's candidate words by importance, all samples in one model call."""
        variants: list[str] = []
        owner: list[int] = []
        word: list[int] = []
        for j, s in enumerate(samples):
            # the query budget caps how many words can be scored (the clean query is spent already)
            for k in list(s.cands)[:max(self.queries - 1, 0)]:
                before, after = s.around(k)
                variants.append(before + after if self.importance == "delete" else before + self.mask_token + after)
                owner.append(j)
                word.append(k)
        if not variants:
            return
        own, pos = np.asarray(owner), np.asarray(word)
        rows = np.asarray([s.row for s in samples])[own]
        p = model.predict_proba(variants)[np.arange(len(variants)), y_idx[rows]]
        base = np.asarray([s.p_true for s in samples])[own]
        drop = base - p
        np.add.at(queries, rows, 1)
        # by sample, then largest drop first, ties in reading order
        order = np.lexsort((pos, -drop, own))
        bounds = np.searchsorted(own[order], np.arange(len(samples) + 1))
        for j, s in enumerate(samples):
            s.order = pos[order[bounds[j]:bounds[j + 1]]].tolist()

    def _substitute(self, model: Any, samples: list[_Sample], y_idx: np.ndarray, queries: np.ndarray) -> None:
        """Greedy pass over the ranked words; step ``t`` tries the t-th word of every live sample."""
        steps = max((len(s.order) for s in samples), default=0)
        for t in range(steps):
            texts: list[str] = []
            owner: list[int] = []
            words: list[str] = []
            live: list[_Sample] = []
            for s in samples:
                left = self.queries - int(queries[s.row])
                if s.done or t >= len(s.order) or s.changed >= s.budget or left <= 0:
                    continue
                k = s.order[t]
                before, after = s.around(k)
                cands = s.cands[k][:left]
                texts += [before + c + after for c in cands]
                words += cands
                owner += [len(live)] * len(cands)
                live.append(s)
            if not live:
                break
            own = np.asarray(owner)
            rows = np.asarray([s.row for s in live])
            scores = model.predict_proba(texts)
            truth = y_idx[rows][own]
            p = scores[np.arange(len(texts)), truth]
            flips = scores.argmax(axis=1) != truth
            np.add.at(queries, rows[own], 1)
            # any flip beats any non-flip; among equals, the lowest true-class probability wins
            best = np.lexsort((p, ~flips, own))
            first = best[np.searchsorted(own[best], np.arange(len(live)))]
            for j, s in enumerate(live):
                c = first[j]
                if flips[c] or p[c] < s.p_true:
                    s.segs[2 * s.order[t] + 1] = words[c]
                    s.changed += 1
                    s.p_true = float(p[c])
                    s.done = bool(flips[c])


def _check_texts(texts: Any) -> list[str]:
    if isinstance(texts, (str, bytes)):
        raise InputError("texts must be a list of strings; got a single string. Wrap it in a list: [text].")
    try:
        out = list(texts)
    except TypeError:
        raise InputError(f"texts must be a list of strings; got {type(texts).__name__}.") from None
    if not out:
        raise InputError("texts is empty; pass at least one string.")
    bad = [i for i, t in enumerate(out) if not isinstance(t, str)]
    if bad:
        raise InputError(
            f"texts must contain only strings; {len(bad)} item(s) are not (first at index {bad[0]}: "
            f"{type(out[bad[0]]).__name__}). Convert them with str() or drop them.")
    return [str(t) for t in out]
