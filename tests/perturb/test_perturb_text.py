"""Text perturbations: each edit has the form its name promises, at the rate its table says."""

from __future__ import annotations

import re
import string

import numpy as np
import pytest

from stalwart import perturb
from stalwart.errors import ConfigError
from stalwart.perturb.text import (
    NEIGHBOURS,
    CaseChange,
    CharDelete,
    CharInsert,
    CharSwap,
    KeyboardTypos,
    PunctuationRemoval,
)

WORD_EDITS = ["keyboard_typos", "char_swap", "char_insert", "char_delete", "case_change"]


def corpus(n_texts: int = 200, seed: int = 0) -> list[str]:
    """Lower-case words of 3-9 distinct-ish letters joined by single spaces, no punctuation."""
    rng = np.random.default_rng(seed)
    letters = np.array(list(string.ascii_lowercase))
    texts = []
    for _ in range(n_texts):
        words = ["".join(rng.choice(letters, rng.integers(3, 10))) for _ in range(10)]
        texts.append(" ".join(words))
    return texts


def word_pairs(before: list[str], after: list[str]) -> list[tuple[str, str]]:
    pairs = []
    for a, b in zip(before, after):
        wa, wb = a.split(" "), b.split(" ")
        assert len(wa) == len(wb)  # word edits never merge or split words
        pairs += list(zip(wa, wb))
    return pairs


def test_qwerty_neighbours():
    assert set(NEIGHBOURS["s"]) == set("awedxz")
    assert set(NEIGHBOURS["q"]) == set("wa")
    assert set(NEIGHBOURS["p"]) == set("ol")
    assert set(NEIGHBOURS["m"]) == set("njk")
    assert set(NEIGHBOURS["g"]) == set("fhtyvb")
    assert set(NEIGHBOURS) == set(string.ascii_lowercase)
    for a, near in NEIGHBOURS.items():  # adjacency is symmetric
        assert all(a in NEIGHBOURS[b] for b in near)


@pytest.mark.parametrize("name", WORD_EDITS)
@pytest.mark.parametrize("severity", [1, 3, 5])
def test_share_of_words_edited_matches_the_table(name, severity):
    texts = corpus()
    out = perturb.get(name).apply(texts, severity, rng=1)
    pairs = word_pairs(texts, out)
    rate = perturb.get(name).levels[severity - 1]
    edited = np.mean([a != b for a, b in pairs])
    # every picked word changes (a swap needs two different adjacent letters: almost always there)
    assert abs(edited - rate) < 4 * np.sqrt(rate * (1 - rate) / len(pairs)) + 0.005


def test_keyboard_typos_replace_one_letter_by_a_neighbour():
    texts = [t.title() for t in corpus(50)]
    for a, b in word_pairs(texts, KeyboardTypos().apply(texts, 5, rng=0)):
        if a == b:
            continue
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        assert len(a) == len(b) and len(diff) == 1
        i = diff[0]
        assert b[i].lower() in NEIGHBOURS[a[i].lower()] and a[i].isupper() == b[i].isupper()


def test_char_swap_transposes_two_adjacent_different_letters():
    texts = corpus(50)
    for a, b in word_pairs(texts, CharSwap().apply(texts, 5, rng=0)):
        if a == b:
            continue
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        assert len(diff) == 2 and diff[1] == diff[0] + 1
        i = diff[0]
        assert b[i] == a[i + 1] and b[i + 1] == a[i]


def test_char_insert_adds_a_double_or_neighbouring_key():
    texts = corpus(50)
    for a, b in word_pairs(texts, CharInsert().apply(texts, 5, rng=0)):
        if a == b:
            continue
        assert len(b) == len(a) + 1
        i = next((k for k in range(len(a)) if a[k] != b[k]), len(a))  # first difference in b
        assert b[:i] + b[i + 1:] == a
        # the extra letter follows the letter it doubles or neighbours (which may also equal it)
        prev = b[i - 1] if i > 0 else None
        assert prev is not None and (b[i] == prev or b[i] in NEIGHBOURS[prev] or b[i + 1:i + 2] == b[i])


def test_char_delete_removes_one_letter():
    texts = corpus(50)
    for a, b in word_pairs(texts, CharDelete().apply(texts, 5, rng=0)):
        if a == b:
            continue
        assert len(b) == len(a) - 1
        assert any(a[:i] + a[i + 1:] == b for i in range(len(a)))


def test_case_change_only_changes_case_and_always_changes_picked_words():
    texts = ["Hello WORLD this is Mixed cAsE text " * 20]
    out = CaseChange().apply(texts, 5, rng=0)
    assert out[0].lower() == texts[0].lower()
    for a, b in zip(texts[0].split(), out[0].split()):
        assert b == a or b in {a.upper(), a.lower(), a.title()}


def test_short_words_are_left_alone_unless_asked():
    texts = ["a an to of is it I on at by we " * 10]
    for name in WORD_EDITS:
        assert perturb.get(name).apply(texts, 5, rng=0) == texts
    edited = CharSwap(min_length=2).apply(texts, 5, rng=0)
    assert edited != texts and len(edited[0]) == len(texts[0])


def test_non_letters_and_other_scripts_are_kept():
    texts = ["café naïve 12345 — über 東京 🙂 zürich, résumé!"] * 30
    for name in WORD_EDITS:
        out = perturb.get(name).apply(texts, 5, rng=0)
        for t in out:
            assert re.findall(r"\d+|🙂|—|東京", t) == ["12345", "—", "東京", "🙂"]
    typos = KeyboardTypos().apply(texts, 5, rng=0)
    for t in typos:  # accented letters have no QWERTY key, so they are never replaced
        assert t.count("é") == texts[0].count("é") and t.count("ü") == texts[0].count("ü")


@pytest.mark.parametrize("severity", [1, 3])
def test_punctuation_removal_rate_and_nothing_else_changes(severity):
    rng = np.random.default_rng(0)
    marks = list("!?.,;:'\"()-") + ["…", "«", "»", "¿"]
    texts = [" ".join(f"word{rng.choice(marks)}" for _ in range(30)) for _ in range(60)]
    out = PunctuationRemoval().apply(texts, severity, rng=2)
    n_marks = sum(sum(ch in marks for ch in t) for t in texts)
    kept = sum(sum(ch in marks for ch in t) for t in out)
    rate = PunctuationRemoval.levels[severity - 1]
    assert abs((n_marks - kept) / n_marks - rate) < 4 * np.sqrt(rate * (1 - rate) / n_marks)
    for a, b in zip(texts, out):
        assert "".join(c for c in a if c not in marks) == "".join(c for c in b if c not in marks)


def test_punctuation_removal_at_severity_5_removes_all_marks_only():
    texts = ["Hello, world! It's 3:45 p.m. — “quoted” (yes)?  Tabs\tand\nnewlines & 100% $5 #tag"]
    out = PunctuationRemoval().apply(texts, 5, rng=0)
    assert out == ["Hello world Its 345 pm  quoted yes  Tabs\tand\nnewlines  100 5 tag"]


@pytest.mark.parametrize("min_length", [0, -2, 2.0, True, "3"])
def test_bad_min_length(min_length):
    with pytest.raises(ConfigError, match=r"KeyboardTypos\(min_length=\.\.\.\) must be an integer >= 1"):
        KeyboardTypos(min_length=min_length)


def test_empty_strings_and_tuples_are_fine():
    out = CharDelete().apply(("", "abc def", ""), 5, rng=0)
    assert isinstance(out, list) and out[0] == "" and out[2] == ""
