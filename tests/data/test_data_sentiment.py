"""The generated sentiment sentences: balance, uniqueness, determinism and label semantics."""

import re

import numpy as np
import pytest

from stalwart.data.text_sentiment import NEGATIVE, POSITIVE, make_sentiment, max_sentences
from stalwart.errors import ConfigError


def test_default_set_is_balanced_unique_and_deterministic():
    texts, y = make_sentiment()
    assert len(texts) == 400 and len(set(texts)) == 400
    assert y.dtype == np.int64 and set(y.tolist()) == {0, 1} and int(y.sum()) == 200
    again, y2 = make_sentiment(400, seed=0)
    assert again == texts and y2.tolist() == y.tolist()
    other, _ = make_sentiment(400, seed=1)
    assert other != texts
    # shuffled: the classes are interleaved, not in two blocks
    assert 0 < int(np.abs(np.diff(y)).sum()) and y[:200].sum() not in (0, 200)


def test_sentences_look_like_sentences():
    texts, _ = make_sentiment(400, seed=3)
    assert all(t[0].isupper() and t[-1] in ".!" for t in texts)
    assert sum(len(t.split()) >= 10 for t in texts) >= 40  # some longer sentences
    assert any(";" in t for t in texts) and any("," in t for t in texts)


_POS = re.compile(r"\b(" + "|".join(POSITIVE) + r")\b")
_NEG = re.compile(r"\b(" + "|".join(NEGATIVE) + r")\b")
_NEGATION = re.compile(r"\b(not|isn't|wasn't)\b")


def test_labels_follow_adjectives_and_negations():
    texts, y = make_sentiment(2000, seed=0)
    checked = negated = 0
    for text, label in zip(texts, y.tolist()):
        low = text.lower()
        pos, neg = bool(_POS.search(low)), bool(_NEG.search(low))
        if pos == neg or "recommend" in low:
            continue  # verb-only phrases, or "not bad at all": checked below
        expected = int(pos)
        if _NEGATION.search(low):
            expected = 1 - expected
            negated += 1
        assert label == expected, text
        checked += 1
    assert checked > 1000 and negated > 100
    # negated negatives read as praise, negated positives as criticism
    assert {lab for t, lab in zip(texts, y.tolist()) if " at all." in t} == {1}
    assert {lab for t, lab in zip(texts, y.tolist()) if re.search(r"(not|n't) (very |really )?good\.", t)} == {0}
    assert {lab for t, lab in zip(texts, y.tolist()) if "would not recommend" in t} == {0}


@pytest.mark.parametrize("n", [2, 3, 7, 101])
def test_small_and_odd_sizes(n):
    texts, y = make_sentiment(n, seed=5)
    assert len(texts) == n == len(set(texts)) and int((y == 0).sum()) == n // 2


def test_bad_n():
    with pytest.raises(ConfigError, match=r"make_sentiment\(n=...\) must be an integer between 2 and \d+; got 1"):
        make_sentiment(1)
    with pytest.raises(ConfigError, match=r"make_sentiment\(n=...\) must be an integer between 2"):
        make_sentiment(max_sentences() + 1)
    with pytest.raises(ConfigError, match=r"got 10.0"):
        make_sentiment(10.0)
