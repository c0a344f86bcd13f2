"""Natural noise in text: typos, swapped, inserted and deleted letters, case and punctuation.

Word-level perturbations pick each *eligible* word — a run of at least ``min_length`` letters
(default 3, so "a", "is", "to" stay intact) — independently with the severity's probability and
edit it once. Everything else in the string (spaces, digits, punctuation) is kept as it was.

Random draws do not depend on the severity: the same seed picks a superset of words at a higher
severity and edits each picked word the same way, so the amount of change grows with severity.
"""

from __future__ import annotations

import re
import string
import unicodedata
from functools import lru_cache

import numpy as np

from stalwart._validation import check_param
from stalwart.data.schema import Schema
from stalwart.perturb.base import Perturbation, register

__all__ = ["KeyboardTypos", "CharSwap", "CharInsert", "CharDelete", "CaseChange", "PunctuationRemoval"]

_WORD = re.compile(r"[^\W\d_]+")  # runs of letters, any script


def _qwerty_neighbours() -> dict[str, str]:
    """Letters adjacent on a staggered QWERTY keyboard (rows offset by 0, 1/4 and 3/4 key)."""
    rows = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
    offsets = (0.0, 0.25, 0.75)
    pos = {ch: (r, offsets[r] + i) for r, row in enumerate(rows) for i, ch in enumerate(row)}
    return {
        a: "".join(b for b, (rb, xb) in pos.items()
                   if b != a and ((rb == ra and abs(xb - xa) == 1) or (abs(rb - ra) == 1 and abs(xb - xa) < 1)))
        for a, (ra, xa) in pos.items()
    }


NEIGHBOURS: dict[str, str] = _qwerty_neighbours()


def _neighbour(ch: str, v: float) -> str:
    """The QWERTY neighbour of ``ch`` picked by ``v`` in [0, 1), in the case of ``ch``."""
    near = NEIGHBOURS[ch.lower()]
    out = near[int(v * len(near))]
    return out.upper() if ch.isupper() else out


def _pick(options: list[int], v: float) -> int:
    return options[int(v * len(options))]


class _WordEdit(Perturbation):
    """Picks eligible words with probability ``rate`` and rewrites each with :meth:`_edit`."""

    modality = "text"
    levels: tuple[float, ...] = (0.05, 0.1, 0.2, 0.35, 0.5)

    def __init__(self, *, min_length: int = 3) -> None:
        self.min_length = check_param(
            self, "min_length", min_length,
            isinstance(min_length, (int, np.integer)) and not isinstance(min_length, bool) and min_length >= 1,
            "an integer >= 1 (shorter words are never edited)")

    def _edit(self, word: str, v: np.ndarray) -> str:
        """Edit one word, using the uniform numbers ``v`` (shape (2,)) for every random choice."""
        raise NotImplementedError  # pragma: no cover

    def _apply(self, x: list[str], severity: int, rng: np.random.Generator, schema: Schema) -> list[str]:
        spans = [(i, m.start(), m.end()) for i, text in enumerate(x) for m in _WORD.finditer(text)
                 if m.end() - m.start() >= self.min_length]
        u = rng.random(len(spans))
        v = rng.random((len(spans), 2))
        edits: dict[int, list[tuple[int, int, str]]] = {}
        for k in np.flatnonzero(u < self.levels[severity - 1]):
            i, start, end = spans[k]
            edits.setdefault(i, []).append((start, end, self._edit(x[i][start:end], v[k])))
        out = list(x)
        for i, parts in edits.items():  # spans are in order within a text
            text, pieces, pos = x[i], [], 0
            for start, end, new in parts:
                pieces += [text[pos:start], new]
                pos = end
            pieces.append(text[pos:])
            out[i] = "".join(pieces)
        return out


_TABLE = """
    ======================  =====  =====  =====  =====  =====
    severity                  1      2      3      4      5
    ======================  =====  =====  =====  =====  =====
    share of words edited    0.05   0.1    0.2    0.35   0.5
    ======================  =====  =====  =====  =====  =====

    Parameters
    ----------
    min_length : int, default 3
        Words with fewer letters are never edited.
"""


@register
class KeyboardTypos(_WordEdit):
    __doc__ = """One letter of a picked word replaced by a neighbouring key on a QWERTY keyboard.

    Case is kept; letters without a QWERTY key (accented, other scripts) are not replaced.
    """ + _TABLE + """
    Examples
    --------
    >>> from stalwart import perturb
    >>> perturb.get("keyboard_typos").apply(["the quick brown fox"], severity=5, rng=1)
    ['the quick briwn fox']
    """

    name = "keyboard_typos"
    description = "A letter replaced by a neighbouring QWERTY key"

    def _edit(self, word: str, v: np.ndarray) -> str:
        options = [j for j, ch in enumerate(word) if ch.lower() in NEIGHBOURS]
        if not options:
            return word
        j = _pick(options, v[0])
        return word[:j] + _neighbour(word[j], v[1]) + word[j + 1:]


@register
class CharSwap(_WordEdit):
    __doc__ = """Two adjacent, different letters of a picked word swapped ("teh" for "the").
    """ + _TABLE

    name = "char_swap"
    description = "Two adjacent letters swapped"

    def _edit(self, word: str, v: np.ndarray) -> str:
        options = [j for j in range(len(word) - 1) if word[j] != word[j + 1]]
        if not options:
            return word
        j = _pick(options, v[0])
        return word[:j] + word[j + 1] + word[j] + word[j + 2:]


@register
class CharInsert(_WordEdit):
    __doc__ = """An extra letter typed inside a picked word: the previous letter doubled or a QWERTY
    neighbour of it (a finger slipping), in the same case.
    """ + _TABLE

    name = "char_insert"
    description = "An extra letter inserted (doubled key or neighbouring key)"

    def _edit(self, word: str, v: np.ndarray) -> str:
        j = int(v[0] * len(word))
        ch = word[j]
        near = NEIGHBOURS.get(ch.lower(), "")
        # choice among len(near) + 1 options: index 0 doubles the letter
        k = int(v[1] * (len(near) + 1))
        extra = ch if k == 0 else (near[k - 1].upper() if ch.isupper() else near[k - 1])
        return word[:j + 1] + extra + word[j + 1:]


@register
class CharDelete(_WordEdit):
    __doc__ = """One letter of a picked word deleted.
    """ + _TABLE

    name = "char_delete"
    description = "A letter deleted"

    def _edit(self, word: str, v: np.ndarray) -> str:
        j = int(v[0] * len(word))
        return word[:j] + word[j + 1:]


@register
class CaseChange(_WordEdit):
    __doc__ = """A picked word rewritten in UPPER, lower or Title case, always different from before.

    A word already in one of the three forms gets one of the other two; a word whose forms all
    coincide with it (no cased letters) is left as it is.
    """ + _TABLE

    name = "case_change"
    description = "Words rewritten in upper, lower or title case"

    def _edit(self, word: str, v: np.ndarray) -> str:
        forms = [f for f in dict.fromkeys((word.upper(), word.lower(), word.title())) if f != word]
        return forms[int(v[0] * len(forms))] if forms else word


@lru_cache(maxsize=4096)
def _is_punctuation(ch: str) -> bool:
    return ch in string.punctuation or unicodedata.category(ch).startswith("P")


_MARK = re.compile(r"[^\w\s]")


@register
class PunctuationRemoval(Perturbation):
    """Punctuation marks dropped at random.

    Marks are the characters of ``string.punctuation`` (which includes ASCII symbols such as
    ``$ % & #``) and every Unicode punctuation character (categories ``P*``: dashes, quotes, ...).

    Each mark is removed independently with the severity's probability; at severity 5 all are.
    The spaces around a removed mark stay.

    ======================  =====  =====  =====  =====  =====
    severity                  1      2      3      4      5
    ======================  =====  =====  =====  =====  =====
    share of marks removed   0.1    0.25   0.5    0.75   1.0
    ======================  =====  =====  =====  =====  =====
    """

    name = "punctuation_removal"
    modality = "text"
    description = "Punctuation marks removed"
    levels: tuple[float, ...] = (0.1, 0.25, 0.5, 0.75, 1.0)

    def __init__(self) -> None:
        pass

    def _apply(self, x: list[str], severity: int, rng: np.random.Generator, schema: Schema) -> list[str]:
        marks = [(i, m.start()) for i, text in enumerate(x) for m in _MARK.finditer(text)
                 if _is_punctuation(m.group())]
        drop = rng.random(len(marks)) < self.levels[severity - 1]
        removed: dict[int, set[int]] = {}
        for k in np.flatnonzero(drop):
            i, pos = marks[k]
            removed.setdefault(i, set()).add(pos)
        out = list(x)
        for i, positions in removed.items():
            out[i] = "".join(ch for j, ch in enumerate(x[i]) if j not in positions)
        return out
