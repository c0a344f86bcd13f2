"""Natural changes of text: noise (typos, swapped, inserted and deleted letters, case, punctuation)
and meaning-preserving rewrites for invariance tests (contractions, names, places, numbers,
whitespace, synonyms, irrelevant sentences).

Noise perturbations pick each *eligible* word — a run of at least ``min_length`` letters
(default 3, so "a", "is", "to" stay intact) — independently with the severity's probability and
edit it once. Everything else in the string (spaces, digits, punctuation) is kept as it was.

Invariance perturbations (CheckList's INV tests, Ribeiro et al., ACL 2020) find *eligible spans*
— a contraction, a first name, a city, a number, a gap between words, a word with a synonym, a
whole text for an added sentence — and rewrite each independently with probability 0.2, 0.4,
0.6, 0.8 or 1.0 (severity 1..5): at severity 5 every eligible span changes. Text with no
eligible span is returned unchanged.

Random draws do not depend on the severity: the same seed picks a superset of spans at a higher
severity and edits each picked span the same way, so the amount of change grows with severity.
"""

from __future__ import annotations

import re
import string
import unicodedata
from abc import abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any, Protocol, runtime_checkable

import numpy as np

from stalwart._validation import check_choice, check_param
from stalwart.data.schema import Schema
from stalwart.errors import ConfigError
from stalwart.perturb import _text_resources as res
from stalwart.perturb.base import Perturbation, register

__all__ = ["KeyboardTypos", "CharSwap", "CharInsert", "CharDelete", "CaseChange", "PunctuationRemoval",
           "Contract", "ExpandContractions", "NameSwap", "LocationSwap", "NumberSwap", "Whitespace",
           "SynonymSwap", "AddIrrelevant", "SynonymSource"]

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

    @abstractmethod
    def _edit(self, word: str, v: np.ndarray) -> str:
        """Edit one word, using the uniform numbers ``v`` (shape (2,)) for every random choice."""

    def _apply(self, x: list[str], severity: int, rng: np.random.Generator, schema: Schema) -> list[str]:
        spans = [(i, m.start(), m.end()) for i, text in enumerate(x) for m in _WORD.finditer(text)
                 if m.end() - m.start() >= self.min_length]
        u = rng.random(len(spans))
        v = rng.random((len(spans), 2))
        edits: dict[int, list[tuple[int, int, str]]] = {}
        for k in np.flatnonzero(u < self.levels[severity - 1]):
            i, start, end = spans[k]
            edits.setdefault(i, []).append((start, end, self._edit(x[i][start:end], v[k])))
        return _splice(x, edits)


def _splice(x: list[str], edits: dict[int, list[tuple[int, int, str]]]) -> list[str]:
    """Copy of ``x`` with each text's (start, end, replacement) edits applied; spans in order."""
    out = list(x)
    for i, parts in edits.items():
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


# == invariance perturbations ==========================================================================
_SPAN_TABLE = """
    ======================  =====  =====  =====  =====  =====
    severity                  1      2      3      4      5
    ======================  =====  =====  =====  =====  =====
    share of spans changed   0.2    0.4    0.6    0.8    1.0
    ======================  =====  =====  =====  =====  =====
"""


def _match_case(source: str, target: str) -> str:
    """``target`` in the case pattern of ``source``: UPPER, Capitalised or lower first letter."""
    if not target:
        return target
    letters = [c for c in source if c.isalpha()]
    if len(letters) > 1 and all(c.isupper() for c in letters):
        return target.upper()
    first = source[:1]
    return (target[0].upper() if first.isupper() else target[0].lower()) + target[1:]


def _alternation(words: Iterable[str]) -> str:
    # longest first, so "New York" wins over "York" and "cannot" is one token
    return "|".join(re.escape(w) for w in sorted(set(words), key=lambda w: (-len(w), w)))


def _swap_in(options: tuple[str, ...], current: str, v: float) -> str:
    """Another entry of ``options`` than ``current``, picked by ``v`` in [0, 1)."""
    m = len(options)
    k = options.index(current) if current in options else -1
    if k < 0:
        return options[int(v * m)]
    return options[(k + 1 + int(v * (m - 1))) % m]


class _SpanEdit(Perturbation):
    """Rewrites each eligible span (from :meth:`_spans`) with probability ``levels[severity - 1]``.

    State a call needs (a look-up table built from the batch) comes from :meth:`_context` and is
    passed along, never kept on the object: one object may run in several threads at once.
    """

    modality = "text"
    levels: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8, 1.0)

    def _context(self, x: list[str]) -> Any:
        """Per-call state for :meth:`_spans` and :meth:`_rewrite`, built from the whole batch (default none)."""
        return None

    @abstractmethod
    def _spans(self, text: str, context: Any) -> Iterable[tuple[int, int]]:
        """Character ranges ``(start, end)`` of the spans this perturbation may rewrite."""

    @abstractmethod
    def _rewrite(self, span: str, v: np.ndarray, context: Any) -> str:
        """New text for one span, using the uniform numbers ``v`` (shape (2,)) for every choice."""

    def _apply(self, x: list[str], severity: int, rng: np.random.Generator, schema: Schema) -> list[str]:
        context = self._context(x)
        spans = [(i, start, end) for i, text in enumerate(x) for start, end in self._spans(text, context)]
        u = rng.random(len(spans))
        v = rng.random((len(spans), 2))
        edits: dict[int, list[tuple[int, int, str]]] = {}
        for k in np.flatnonzero(u < self.levels[severity - 1]):
            i, start, end = spans[k]
            edits.setdefault(i, []).append((start, end, self._rewrite(x[i][start:end], v[k], context)))
        return _splice(x, edits)


_APOSTROPHE = "['\u2019]"
_CONTRACT = {k.lower(): v for k, v in res.CONTRACTIONS.items()}
_EXPAND = {v.lower(): k for k, v in res.CONTRACTIONS.items()}
_EXPANDED_RE = re.compile(r"\b(?:" + _alternation(res.CONTRACTIONS) + r")\b", re.IGNORECASE)
_CONTRACTED_RE = re.compile(
    r"\b(?:" + _alternation(res.CONTRACTIONS.values()).replace("'", _APOSTROPHE) + r")\b", re.IGNORECASE)


@register
class Contract(_SpanEdit):
    __doc__ = """Expanded forms contracted: "do not" -> "don't", "I am" -> "I'm", "cannot" -> "can't".

    The 33 pairs are listed in ``stalwart.perturb._text_resources.CONTRACTIONS``; the case of the
    first letter is kept ("Do not" -> "Don't"). :class:`ExpandContractions` is the inverse: at
    severity 5 one undoes the other on text that uses those forms.
    """ + _SPAN_TABLE + """
    Examples
    --------
    >>> from stalwart import perturb
    >>> perturb.get("contract").apply(["I am sure it is not what we do not want."], severity=5, rng=0)
    ["I'm sure it's not what we don't want."]
    """

    name = "contract"
    description = "Expanded forms contracted (do not -> don't)"

    def _spans(self, text: str, context: Any) -> Iterable[tuple[int, int]]:
        return (m.span() for m in _EXPANDED_RE.finditer(text))

    def _rewrite(self, span: str, v: np.ndarray, context: Any) -> str:
        return _match_case(span, _CONTRACT[span.lower()])


@register
class ExpandContractions(_SpanEdit):
    __doc__ = """Contractions written out: "don't" -> "do not", "it's" -> "it is", "can't" -> "cannot".

    Ambiguous contractions get one fixed reading ("it's" -> "it is", "he's" -> "he is"); both
    the straight (') and the typographic (\u2019) apostrophe are recognised. The inverse of
    :class:`Contract`.
    """ + _SPAN_TABLE

    name = "expand_contractions"
    description = "Contractions written out in full (don't -> do not)"

    def _spans(self, text: str, context: Any) -> Iterable[tuple[int, int]]:
        return (m.span() for m in _CONTRACTED_RE.finditer(text))

    def _rewrite(self, span: str, v: np.ndarray, context: Any) -> str:
        return _match_case(span, _EXPAND[span.lower().replace("\u2019", "'")])


def _word_list(owner: object, name: str, value: Any) -> tuple[str, ...] | None:
    ok = value is None or (isinstance(value, Sequence) and not isinstance(value, str) and len(set(value)) >= 2
                           and all(isinstance(w, str) and w.strip() == w and w for w in value))
    check_param(owner, name, value, ok, "None (the built-in list) or a list of at least two distinct, "
                "non-empty strings without surrounding spaces")
    return None if value is None else tuple(dict.fromkeys(value))


@register
class NameSwap(_SpanEdit):
    __doc__ = """Person first names replaced by other first names ("Maria liked it" -> "Kwame liked it").

    A name is a whole, case-sensitive match of an entry of ``names``; it becomes a different,
    uniformly drawn entry. A prediction should not depend on who is speaking.
    """ + _SPAN_TABLE + """
    Parameters
    ----------
    names : list of str, optional
        The names to find and swap among; default: ~100 common first names from many regions
        (``stalwart.perturb._text_resources.FIRST_NAMES``).
    """

    name = "name_swap"
    description = "First names replaced by other first names"

    def __init__(self, *, names: Sequence[str] | None = None) -> None:
        self.names = _word_list(self, "names", names)
        self._options = self.names or res.FIRST_NAMES
        self._pattern = re.compile(r"\b(?:" + _alternation(self._options) + r")\b")

    def _spans(self, text: str, context: Any) -> Iterable[tuple[int, int]]:
        return (m.span() for m in self._pattern.finditer(text))

    def _rewrite(self, span: str, v: np.ndarray, context: Any) -> str:
        return _swap_in(self._options, span, v[0])


@register
class LocationSwap(_SpanEdit):
    __doc__ = """Cities replaced by other cities and countries by other countries.

    Places are whole, case-sensitive matches of the entries of ``cities`` and ``countries``
    (multi-word names such as "New York" included); each becomes a different entry of its own list.
    """ + _SPAN_TABLE + """
    Parameters
    ----------
    cities, countries : list of str, optional
        The places to find and swap among; default: ~60 cities and ~60 countries worldwide.
    """

    name = "location_swap"
    description = "Cities and countries replaced by other cities and countries"

    def __init__(self, *, cities: Sequence[str] | None = None, countries: Sequence[str] | None = None) -> None:
        self.cities = _word_list(self, "cities", cities)
        self.countries = _word_list(self, "countries", countries)
        self._cities = self.cities or res.CITIES
        self._countries = self.countries or res.COUNTRIES
        self._pattern = re.compile(r"\b(?:" + _alternation(self._cities + self._countries) + r")\b")

    def _spans(self, text: str, context: Any) -> Iterable[tuple[int, int]]:
        return (m.span() for m in self._pattern.finditer(text))

    def _rewrite(self, span: str, v: np.ndarray, context: Any) -> str:
        return _swap_in(self._cities if span in self._cities else self._countries, span, v[0])


# a number on its own: 7, 42, 3.25, 12,500 - not part of a word ("mp3"), a version ("1.2.3") or
# a decimal comma ("1,5")
_NUMBER = re.compile(r"(?<![\w.,])(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(?!\w|[.,]\d)")


@register
class NumberSwap(_SpanEdit):
    __doc__ = """Numbers changed by a small relative amount, in the same format.

    A number ``x`` (digits with optional ``,`` thousands groups and ``.`` decimals) becomes
    ``x + k * ulp`` where ``ulp`` is one unit of its last digit and ``k`` a non-zero integer with
    ``|k| * ulp <= max_change * x``: "12,500" may become "13,125", "3.5" -> "3.8", "20" -> "17".
    Decimals and thousands separators are kept. Numbers too small to change within
    ``max_change`` at their precision (``x < ulp / max_change``: "3" with the default 0.2),
    zero, and codes with leading zeros ("007") are not eligible.
    """ + _SPAN_TABLE + """
    Parameters
    ----------
    max_change : float in (0, 1), default 0.2
        Largest relative change, ``|x' - x| / x``.
    """

    name = "number_swap"
    description = "Numbers changed by a small relative amount, format kept"

    def __init__(self, *, max_change: float = 0.2) -> None:
        self.max_change = float(check_param(
            self, "max_change", max_change,
            lambda v: isinstance(v, (int, float, np.number)) and not isinstance(v, bool) and 0 < v < 1,
            "a number in (0, 1)"))

    @staticmethod
    def _units(span: str) -> tuple[int, int]:
        """The number as an integer count of its last-digit unit, and its number of decimals."""
        whole, _, frac = span.replace(",", "").partition(".")
        return int(whole + frac), len(frac)

    def _spans(self, text: str, context: Any) -> Iterable[tuple[int, int]]:
        for m in _NUMBER.finditer(text):
            whole = m.group(1)
            if len(whole) > 1 and whole[0] == "0":
                continue
            units, _ = self._units(m.group())
            if units * self.max_change >= 1 - 1e-9:
                yield m.span()

    def _rewrite(self, span: str, v: np.ndarray, context: Any) -> str:
        units, decimals = self._units(span)
        d = (2.0 * v[0] - 1.0) * self.max_change
        step = max(1, int(np.floor(abs(d) * units)))
        new = units + step if d >= 0 else units - step
        whole, frac = divmod(new, 10**decimals)
        text = f"{whole:,}" if "," in span else str(whole)
        return f"{text}.{frac:0{decimals}d}" if decimals else text


_GAP = re.compile(r"(?<=\S)\s+(?=\S)")


@register
class Whitespace(_SpanEdit):
    __doc__ = """Extra whitespace between words: a space, two spaces, a tab or a line break added.

    A gap between two non-space characters keeps what it had and gets one of the four additions,
    so words and their order never change.
    """ + _SPAN_TABLE

    name = "whitespace"
    description = "Extra spaces, tabs or line breaks between words"
    additions: tuple[str, ...] = (" ", "  ", "\t", "\n")

    def _spans(self, text: str, context: Any) -> Iterable[tuple[int, int]]:
        return (m.span() for m in _GAP.finditer(text))

    def _rewrite(self, span: str, v: np.ndarray, context: Any) -> str:
        return span + self.additions[int(v[0] * len(self.additions))]


@runtime_checkable
class SynonymSource(Protocol):
    """Anything that lists synonyms of a (lower-case) word, e.g. ``attacks.synonyms.default_synonyms()``."""

    def synonyms(self, word: str) -> list[str]:
        ...


class _MappingSynonyms:
    """A dict ``{word: [synonyms]}`` as a :class:`SynonymSource`."""

    def __init__(self, table: Mapping[str, Sequence[str]]) -> None:
        self.table = {str(k).lower(): [str(s) for s in v] for k, v in table.items()}

    def synonyms(self, word: str) -> list[str]:
        return self.table.get(word.lower(), [])


@register
class SynonymSwap(_SpanEdit):
    __doc__ = """Words replaced by a synonym ("the film was great" -> "the movie was great").

    A word of at least ``min_length`` letters is eligible when the synonym source lists a synonym
    for it (other than the word itself); it becomes one of them, uniformly, in the word's case.
    The default source is :func:`stalwart.attacks.synonyms.default_synonyms`, imported on first use;
    pass ``synonyms`` (a dict ``{word: [synonyms]}`` or an object with ``synonyms(word)``) to use
    your own, e.g. one that keeps sentiment words out.
    """ + _SPAN_TABLE + """
    Parameters
    ----------
    synonyms : dict or SynonymSource, optional
    min_length : int, default 3
    """

    name = "synonym_swap"
    description = "Words replaced by synonyms"

    def __init__(self, *, synonyms: Mapping[str, Sequence[str]] | SynonymSource | None = None,
                 min_length: int = 3) -> None:
        self.synonyms = check_param(
            self, "synonyms", synonyms,
            synonyms is None or isinstance(synonyms, Mapping) or callable(getattr(synonyms, "synonyms", None)),
            "None (the default source), a dict {word: [synonyms]} or an object with a synonyms(word) method")
        self.min_length = check_param(
            self, "min_length", min_length,
            isinstance(min_length, (int, np.integer)) and not isinstance(min_length, bool) and min_length >= 1,
            "an integer >= 1")
        # a dict is wrapped once here; the default source is shared by the process (_default_source)
        self._source = _MappingSynonyms(synonyms) if isinstance(synonyms, Mapping) else synonyms

    def _context(self, x: list[str]) -> dict[str, list[str]]:
        """The batch's look-up table ``{word: [synonyms]}``: one query per distinct eligible word."""
        source = _default_source() if self._source is None else self._source
        words = {m.group() for text in x for m in _WORD.finditer(text) if len(m.group()) >= self.min_length}
        table = {}
        for w in words:
            options = [s for s in dict.fromkeys(source.synonyms(w.lower())) if s and s.lower() != w.lower()]
            if options:
                table[w] = options
        return table

    def _spans(self, text: str, context: dict[str, list[str]]) -> Iterable[tuple[int, int]]:
        return (m.span() for m in _WORD.finditer(text) if m.group() in context)

    def _rewrite(self, span: str, v: np.ndarray, context: dict[str, list[str]]) -> str:
        options = context[span]
        return _match_case(span, options[int(v[0] * len(options))])


@lru_cache(maxsize=1)
def _default_source() -> SynonymSource:
    """:func:`stalwart.attacks.synonyms.default_synonyms`, made once per process (it reads WordNet)."""
    try:
        from stalwart.attacks.synonyms import default_synonyms
    except ImportError as exc:
        raise ConfigError(
            "SynonymSwap(synonyms=None) uses stalwart.attacks.synonyms.default_synonyms(), which "
            f"could not be imported ({exc}); pass synonyms={{word: [synonyms, ...]}} instead"
        ) from None
    return default_synonyms()


@register
class AddIrrelevant(_SpanEdit):
    __doc__ = """A neutral sentence added before or after a text ("By the way, I read this on a Tuesday.").

    Each text is eligible once; a picked text gets one sentence of ``clauses`` (drawn uniformly)
    at the ``position`` asked for.
    """ + _SPAN_TABLE.replace("share of spans changed", "share of texts changed") + """
    Parameters
    ----------
    position : {"end", "start", "random"}, default "end"
    clauses : list of str, optional
        Sentences to add; default: twelve neutral ones
        (``stalwart.perturb._text_resources.IRRELEVANT_CLAUSES``).
    """

    name = "add_irrelevant"
    description = "A neutral, irrelevant sentence added to the text"

    def __init__(self, *, position: str = "end", clauses: Sequence[str] | None = None) -> None:
        self.position = check_choice(self, "position", position, ("end", "start", "random"))
        self.clauses = _word_list(self, "clauses", clauses)
        self._clauses = self.clauses or res.IRRELEVANT_CLAUSES

    def _spans(self, text: str, context: Any) -> Iterable[tuple[int, int]]:
        return ((0, len(text)),)

    def _rewrite(self, span: str, v: np.ndarray, context: Any) -> str:
        clause = self._clauses[int(v[0] * len(self._clauses))]
        if not span.strip():
            return clause
        at_end = self.position == "end" or (self.position == "random" and v[1] < 0.5)
        if at_end:
            return span + ("" if span[-1].isspace() else " ") + clause
        return clause + ("" if span[0].isspace() else " ") + span
