"""A small English sentiment data set, generated from templates (no download).

Sentences describe products, places and services ("the movie", "this phone", "our hotel room")
with positive or negative adjectives, verb phrases and intensifiers. Negations flip the label
the way a reader would: "the food was not very good" is negative, "the flight was not boring at
all" is positive. A few longer sentences add punctuation, contrast ("I had high hopes, but ...")
and a verdict. Labels: 0 = negative, 1 = positive.

Each template spans a grid of slot choices; sentences are drawn from that grid without
replacement, so a draw has no duplicates, and the whole set is a pure function of ``(n, seed)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stalwart._validation import check_param, check_seed

__all__ = ["make_sentiment", "max_sentences"]

SUBJECTS = (
    "the movie", "this phone", "the service", "our hotel room", "the food", "this laptop",
    "the waiter", "the book", "the concert", "this restaurant", "the app", "the camera",
    "the delivery", "this game", "the coffee", "the flight",
)
BE = ("is", "was")
BE_NOT = ("is not", "was not", "isn't", "wasn't")
INTENSIFIERS = ("", "really ", "very ", "truly ", "absolutely ", "quite ", "incredibly ")
# intensifiers that read naturally after a negation ("not very good")
NEG_INTENSIFIERS = ("", "very ", "really ", "particularly ")
POSITIVE = (
    "good", "great", "excellent", "wonderful", "amazing", "fantastic", "delightful", "superb",
    "pleasant", "enjoyable", "impressive", "lovely", "brilliant", "outstanding",
)
NEGATIVE = (
    "bad", "terrible", "awful", "horrible", "disappointing", "poor", "dreadful", "mediocre",
    "unpleasant", "boring", "frustrating", "useless", "annoying", "lousy",
)
# negatives whose negation is clearly praise ("not boring at all"); "not terrible" is not
MILD_NEGATIVE = ("bad", "disappointing", "boring", "annoying", "frustrating")
POSITIVE_VERBS = (
    "loved", "enjoyed", "really liked", "adored", "was impressed by", "was delighted with",
    "would happily recommend",
)
NEGATIVE_VERBS = (
    "hated", "disliked", "did not like", "was disappointed by", "was annoyed by",
    "could not stand", "would never recommend",
)
POSITIVE_CLAUSES = (
    "exceeded my expectations", "made my day", "was worth every penny", "deserves five stars",
    "was a pleasant surprise", "never disappoints",
)
NEGATIVE_CLAUSES = (
    "let me down", "was a waste of money", "ruined my evening", "deserves zero stars",
    "left me disappointed", "was not worth the money",
)
OPENERS = ("Honestly", "Overall", "All in all", "In short", "To be fair", "After two weeks")
POSITIVE_CONTRAST = ("I expected little, but", "I was skeptical at first, but", "Despite the mixed reviews,")
NEGATIVE_CONTRAST = ("I had high hopes, but", "It looked promising, but", "Despite the great reviews,")
POSITIVE_VERDICTS = ("highly recommended!", "five stars.", "I would do it again.", "well done!")
NEGATIVE_VERDICTS = ("never again.", "avoid it!", "what a waste.", "one star.")


def _pairs(words: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(f"{a} and {b}" for a in words for b in words if a != b)


@dataclass(frozen=True)
class _Template:
    """A sentence pattern with named slots, each filled from a tuple of options."""

    pattern: str
    slots: tuple[tuple[str, tuple[str, ...]], ...]
    weight: float

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(options) for _, options in self.slots)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def render(self, flat: np.ndarray) -> list[str]:
        """Sentences for flat indices into the slot grid."""
        coords = np.unravel_index(flat, self.shape)
        names = [name for name, _ in self.slots]
        options = [opts for _, opts in self.slots]
        out = []
        for row in zip(*coords):
            text = self.pattern.format(**{n: o[i] for n, o, i in zip(names, options, row)})
            out.append(text[0].upper() + text[1:])
        return out


S, B = ("subject", SUBJECTS), ("be", BE)
_TEMPLATES: dict[int, tuple[_Template, ...]] = {
    1: (
        _Template("{subject} {be} {very}{adj}.", (S, B, ("very", INTENSIFIERS), ("adj", POSITIVE)), 0.30),
        _Template("{subject} {be_not} {adj} at all.", (S, ("be_not", BE_NOT), ("adj", MILD_NEGATIVE)), 0.14),
        _Template("I {verb} {subject}.", (("verb", POSITIVE_VERBS), S), 0.12),
        _Template("{subject} {clause}.", (S, ("clause", POSITIVE_CLAUSES)), 0.12),
        _Template("{opener}, {subject} {be} {very}{adj}; I would recommend it to anyone!",
                  (("opener", OPENERS), S, B, ("very", INTENSIFIERS), ("adj", POSITIVE)), 0.12),
        _Template("{contrast} {subject} {be} {very}{adj}.",
                  (("contrast", POSITIVE_CONTRAST), S, B, ("very", INTENSIFIERS), ("adj", POSITIVE)), 0.10),
        _Template("{subject} {be} {adjs} - {verdict}",
                  (S, B, ("adjs", _pairs(POSITIVE)), ("verdict", POSITIVE_VERDICTS)), 0.10),
    ),
    0: (
        _Template("{subject} {be} {very}{adj}.", (S, B, ("very", INTENSIFIERS), ("adj", NEGATIVE)), 0.30),
        _Template("{subject} {be_not} {very}{adj}.",
                  (S, ("be_not", BE_NOT), ("very", NEG_INTENSIFIERS), ("adj", POSITIVE)), 0.14),
        _Template("I {verb} {subject}.", (("verb", NEGATIVE_VERBS), S), 0.12),
        _Template("{subject} {clause}.", (S, ("clause", NEGATIVE_CLAUSES)), 0.12),
        _Template("{opener}, {subject} {be} {very}{adj}; I would not recommend it to anyone.",
                  (("opener", OPENERS), S, B, ("very", INTENSIFIERS), ("adj", NEGATIVE)), 0.12),
        _Template("{contrast} {subject} {be} {very}{adj}.",
                  (("contrast", NEGATIVE_CONTRAST), S, B, ("very", INTENSIFIERS), ("adj", NEGATIVE)), 0.10),
        _Template("{subject} {be} {adjs} - {verdict}",
                  (S, B, ("adjs", _pairs(NEGATIVE)), ("verdict", NEGATIVE_VERDICTS)), 0.10),
    ),
}


def max_sentences() -> int:
    """The largest ``n`` :func:`make_sentiment` accepts (twice the smaller class's capacity)."""
    return 2 * min(sum(t.size for t in ts) for ts in _TEMPLATES.values())


def _quotas(templates: tuple[_Template, ...], n: int) -> np.ndarray:
    """Sentences per template: proportional to the weights (largest remainder), capped by size."""
    weights = np.array([t.weight for t in templates])
    sizes = np.array([t.size for t in templates])
    quota = n * weights / weights.sum()
    take = np.minimum(np.floor(quota).astype(np.int64), sizes)
    while take.sum() < n:  # n <= sizes.sum(), so this ends; it loops over templates only
        for k in np.argsort(take - quota, kind="stable"):  # largest rounding shortfall first
            if take.sum() < n and take[k] < sizes[k]:
                take[k] += 1
    return take


def make_sentiment(n: int = 400, seed: int | np.random.Generator = 0) -> tuple[list[str], np.ndarray]:
    """Generate ``n`` distinct labelled sentences, balanced between the two classes.

    Parameters
    ----------
    n : number of sentences, at least 2; ``n // 2`` are negative and the rest positive.
    seed : seed or generator; the same seed gives the same sentences in the same order.

    Returns
    -------
    texts : list of ``n`` distinct strings
    labels : int64 array of shape (n,), 0 = negative, 1 = positive

    Examples
    --------
    >>> texts, labels = make_sentiment(6, seed=0)
    >>> len(set(texts)), int(labels.sum())
    (6, 3)
    """
    check_param("make_sentiment", "n", n,
                isinstance(n, (int, np.integer)) and not isinstance(n, bool) and 2 <= n <= max_sentences(),
                f"an integer between 2 and {max_sentences()}")
    rng = np.random.default_rng(check_seed("make_sentiment", seed, generator=True))
    texts: list[str] = []
    labels: list[np.ndarray] = []
    for label, count in ((0, n // 2), (1, n - n // 2)):
        templates = _TEMPLATES[label]
        for template, take in zip(templates, _quotas(templates, count)):
            if take:
                texts.extend(template.render(rng.choice(template.size, size=int(take), replace=False)))
        labels.append(np.full(count, label, dtype=np.int64))
    order = rng.permutation(n)
    y = np.concatenate(labels)[order]
    return [texts[i] for i in order], y
