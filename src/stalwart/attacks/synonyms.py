"""Where the word-substitution attack gets its synonyms.

A synonym source is anything with ``synonyms(word) -> list[str]``: the :class:`SynonymSource`
protocol, the one both the word-substitution attack and the ``synonym_swap`` perturbation take
(a plain dict ``{word: [synonyms]}`` becomes one through :class:`MappingSynonyms`). Two sources
ship with stalwart, and both also take a part of speech, ``synonyms(word, pos=None)``:

- :class:`LexiconSynonyms` reads the small hand-written English lexicon shipped with the package
  (``stalwart/data/resources/synonyms.tsv``: a few hundred everyday and sentiment words). It is
  always available.
- :class:`WordNetSynonyms` reads the Princeton WordNet 3.0 database files directly (the
  ``index.*`` and ``data.*`` files that Debian's ``wordnet-base`` package installs in
  ``/usr/share/wordnet``); no nltk needed. Synonyms are the other lemmas of every synset the word
  belongs to, as in PWWS (Ren et al., 2019).

:func:`default_synonyms` picks WordNet when its files are present, else the lexicon. Both sources
return sorted, lower-case, de-duplicated lists that never contain the word itself, so a run is
deterministic for a given source.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from stalwart._validation import param_error
from stalwart.errors import InputError

__all__ = ["SynonymSource", "MappingSynonyms", "LexiconSynonyms", "WordNetSynonyms", "default_synonyms",
           "as_synonym_source", "POS", "WORDNET_ROOTS"]

#: part-of-speech names the sources accept, with the WordNet letters as aliases
POS: dict[str, str] = {
    "noun": "noun", "n": "noun",
    "verb": "verb", "v": "verb",
    "adj": "adj", "a": "adj", "s": "adj", "adjective": "adj",
    "adv": "adv", "r": "adv", "adverb": "adv",
}
_POS_ORDER = ("noun", "verb", "adj", "adv")

#: where :func:`default_synonyms` looks for the WordNet database, in order ($STALWART_WORDNET first)
WORDNET_ROOTS: tuple[str, ...] = ("/usr/share/wordnet", "/usr/local/share/wordnet",
                                  "/usr/share/wordnet/dict")


@runtime_checkable
class SynonymSource(Protocol):
    """Gives the synonyms of a word: all the word-substitution attack and the ``synonym_swap``
    perturbation need. (The shipped sources also take ``pos``, a part of speech.)"""

    def synonyms(self, word: str) -> list[str]:
        """Synonyms of ``word`` (any case); empty when it has none."""
        ...  # pragma: no cover


class MappingSynonyms:
    """A dict ``{word: [synonyms]}`` as a :class:`SynonymSource` (words compared in lower case).

    >>> MappingSynonyms({"Film": ["movie", "picture"]}).synonyms("film")
    ['movie', 'picture']
    """

    def __init__(self, table: Mapping[str, Sequence[str]]) -> None:
        if not isinstance(table, Mapping):
            raise param_error(self, "table", "a dict {word: [synonyms, ...]}", table)
        self.table = {str(k).lower(): [str(s) for s in v] for k, v in table.items()}

    def synonyms(self, word: str, pos: str | None = None) -> list[str]:
        return list(self.table.get(_word("MappingSynonyms.synonyms", word).lower(), []))

    def __repr__(self) -> str:
        return f"MappingSynonyms({len(self.table)} words)"


def as_synonym_source(owner: object | str, value: Any) -> SynonymSource:
    """``value`` as a :class:`SynonymSource`: a source as it is, a dict through
    :class:`MappingSynonyms`; anything else is refused naming ``owner``'s ``synonyms`` parameter."""
    if isinstance(value, Mapping):
        return MappingSynonyms(value)
    if not callable(getattr(value, "synonyms", None)):
        raise param_error(owner, "synonyms", "a SynonymSource (an object with a synonyms(word) method, e.g. "
                          "LexiconSynonyms() or WordNetSynonyms()) or a dict {word: [synonyms, ...]}", value)
    return value


def _norm_pos(owner: str, pos: str | None) -> tuple[str, ...]:
    if pos is None:
        return _POS_ORDER
    key = pos.lower() if isinstance(pos, str) else pos
    if key not in POS:
        raise param_error(owner, "pos", f"None or one of {sorted(set(POS.values()))}", pos)
    return (POS[key],)


def _finish(word: str, found: Iterable[str]) -> list[str]:
    w = word.lower()
    return sorted({s for s in found if s and s != w})


# -- the shipped lexicon ------------------------------------------------------------------------

def _default_lexicon_text() -> tuple[str, str]:
    ref = resources.files("stalwart.data").joinpath("resources/synonyms.tsv")
    return ref.read_text(encoding="utf-8"), "stalwart/data/resources/synonyms.tsv"


def _parse_lexicon(text: str, where: str) -> dict[str, dict[str, set[str]]]:
    """``word<TAB>pos<TAB>syn, syn, ...`` lines -> {pos: {word: synonyms}}, made symmetric."""
    table: dict[str, dict[str, set[str]]] = {p: {} for p in _POS_ORDER}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split("\t")]
        if len(parts) != 3 or not parts[0] or not parts[2]:
            raise InputError(
                f"{where}, line {lineno}: expected 'word<TAB>pos<TAB>synonym, synonym, ...'; got {raw!r}. "
                "Separate the three fields with single tab characters.")
        word, pos, syns = parts[0].lower(), parts[1].lower(), parts[2]
        if pos not in POS:
            raise InputError(f"{where}, line {lineno}: unknown part of speech {parts[1]!r}; use one of "
                             f"{list(_POS_ORDER)}.")
        entry = table[POS[pos]]
        others = [s.strip().lower() for s in syns.split(",") if s.strip()]
        entry.setdefault(word, set()).update(others)
        # synonymy is symmetric; writing each pair once is enough
        for s in others:
            entry.setdefault(s, set()).add(word)
    return table


def _word(owner: str, word: Any) -> str:
    if not isinstance(word, str):
        raise param_error(owner, "word", "a single word (a str)", word)
    return word


class LexiconSynonyms:
    """Synonyms from a tab-separated lexicon; by default the one shipped with stalwart.

    Each line reads ``word<TAB>pos<TAB>synonym, synonym, ...`` with ``pos`` one of ``noun``,
    ``verb``, ``adj``, ``adv``; ``#`` starts a comment line. Pairs are made symmetric on loading
    (if *b* is listed for *a*, *a* is a synonym of *b*); the relation is not closed transitively.
    Inflected forms are separate entries (``loved``, ``movies``), so substitutions stay grammatical.

    Parameters
    ----------
    path : str or Path, optional
        A lexicon file in the format above; default: the shipped English lexicon.

    Examples
    --------
    >>> LexiconSynonyms().synonyms("Terrible", pos="adj")[:3]
    ['abysmal', 'appalling', 'atrocious']
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        if path is not None and not isinstance(path, (str, os.PathLike)):
            raise param_error(self, "path", "the path of a lexicon file (str or pathlib.Path) or None", path)
        self.path = None if path is None else Path(path)
        if self.path is None:
            text, where = _default_lexicon_text()
        else:
            if not self.path.is_file():
                raise InputError(f"LexiconSynonyms(path=...): no file at {str(self.path)!r}; pass the path "
                                 "of a 'word<TAB>pos<TAB>synonyms' file, or path=None for the shipped lexicon.")
            try:
                text, where = self.path.read_text(encoding="utf-8"), str(self.path)
            except (OSError, UnicodeDecodeError) as exc:
                raise InputError(f"LexiconSynonyms(path=...): cannot read {str(self.path)!r} as UTF-8 text ({exc}); "
                                 "pass a 'word<TAB>pos<TAB>synonyms' text file saved as UTF-8.") from None
        self._table = _parse_lexicon(text, where)

    def synonyms(self, word: str, pos: str | None = None) -> list[str]:
        """Sorted synonyms of ``word`` (case-insensitive); empty when the word is not listed."""
        w = _word("LexiconSynonyms.synonyms", word).lower()
        found: set[str] = set()
        for p in _norm_pos("LexiconSynonyms.synonyms", pos):
            found |= self._table[p].get(w, set())
        return _finish(w, found)

    def words(self) -> list[str]:
        """Every word that has at least one synonym, sorted."""
        return sorted({w for entry in self._table.values() for w in entry})

    def __repr__(self) -> str:
        return f"LexiconSynonyms({'' if self.path is None else repr(str(self.path))})"


# -- WordNet 3.0, read from its database files ---------------------------------------------------

_FILE_POS = {"noun": "noun", "verb": "verb", "adj": "adj", "adv": "adv"}
_MARKER = re.compile(r"\([a-z]+\)$")  # adjective syntactic markers: "galore(ip)"


def _wordnet_missing(root: Path) -> list[str]:
    return [f"{kind}.{p}" for p in _FILE_POS.values() for kind in ("index", "data")
            if not (root / f"{kind}.{p}").is_file()]


class WordNetSynonyms:
    """Synonyms from the WordNet 3.0 database files, read without nltk.

    For each part of speech the word's line in ``index.<pos>`` lists the byte offsets of its
    synsets; the synset's line at that offset in ``data.<pos>`` lists its lemmas. The synonyms are
    those lemmas (underscores read as spaces, adjective markers such as ``(a)`` dropped), minus the
    word itself. The word is looked up as given (lower-cased): WordNet holds base forms, so an
    inflected word ("loved") only finds entries WordNet lists under that exact form.

    Parameters
    ----------
    root : str or Path, default "/usr/share/wordnet"
        Folder holding ``index.noun``, ``data.noun``, ... (Debian/Ubuntu: ``apt-get install
        wordnet-base``; an nltk ``corpora/wordnet`` folder or the upstream ``dict/`` folder work too).
    multiword : bool, default False
        Keep lemmas of several words ("motor vehicle"); the attack only uses single words.
    senses : int, optional
        Use only the word's ``senses`` most frequent synsets per part of speech (WordNet orders
        them by tagged frequency); default: all. Fewer senses give fewer off-meaning substitutes.

    Raises
    ------
    InputError
        When the database files are not in ``root``.

    Examples
    --------
    >>> wn = WordNetSynonyms()  # doctest: +SKIP
    >>> "automobile" in wn.synonyms("car", pos="noun")  # doctest: +SKIP
    True
    """

    def __init__(self, root: str | os.PathLike[str] = "/usr/share/wordnet", *, multiword: bool = False,
                 senses: int | None = None) -> None:
        # the parameters first: a wrong one is the caller's to fix on any machine, with or without WordNet
        if not isinstance(multiword, bool):
            raise param_error(self, "multiword", "True or False", multiword)
        if senses is not None and (isinstance(senses, bool) or not isinstance(senses, int) or senses < 1):
            raise param_error(self, "senses", "None or an integer >= 1", senses)
        self.root = Path(root)
        missing = _wordnet_missing(self.root)
        if missing:
            raise InputError(
                f"WordNetSynonyms(root=...): the WordNet 3.0 database is not in {str(self.root)!r} "
                f"(missing {', '.join(missing[:4])}{', ...' if len(missing) > 4 else ''}). Install it "
                "(Debian/Ubuntu: apt-get install wordnet-base, which fills /usr/share/wordnet), pass "
                "the folder that holds index.noun and data.noun, or use LexiconSynonyms() instead.")
        self.multiword = multiword
        self.senses = senses
        self._index: dict[str, dict[str, str]] = {}
        # per-instance cache (a method-level lru_cache would keep every instance alive)
        self._cached = lru_cache(maxsize=65536)(self._lookup)

    def __getstate__(self) -> dict[str, Any]:
        # the caches are rebuilt on use: ship (or pickle) only the configuration
        return {"root": self.root, "multiword": self.multiword, "senses": self.senses}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._index = {}
        self._cached = lru_cache(maxsize=65536)(self._lookup)

    def _index_for(self, pos: str) -> dict[str, str]:
        """lemma -> rest of its index line, loaded once per part of speech (about 0.1 s for nouns)."""
        table = self._index.get(pos)
        if table is None:
            table = {}
            with open(self.root / f"index.{pos}", encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    if line.startswith(" "):  # the licence header lines start with two spaces
                        continue
                    lemma, _, rest = line.partition(" ")
                    table[lemma] = rest
            self._index[pos] = table
        return table

    def _offsets(self, pos: str, lemma: str) -> list[int]:
        rest = self._index_for(pos).get(lemma)
        if rest is None:
            return []
        # rest: pos synset_cnt p_cnt [ptr...] sense_cnt tagsense_cnt offset...; offsets close the line
        fields = rest.split()
        n = int(fields[1])
        offsets = [int(f) for f in fields[len(fields) - n:]]
        return offsets if self.senses is None else offsets[:self.senses]

    def _lemmas(self, fh, offset: int) -> list[str]:  # noqa: ANN001 - a binary file handle
        fh.seek(offset)
        fields = fh.readline().decode("utf-8", errors="replace").split()
        # data line: offset lex_filenum ss_type w_cnt(hex) word lex_id word lex_id ...
        count = int(fields[3], 16)
        words = fields[4:4 + 2 * count:2]
        return [_MARKER.sub("", w).replace("_", " ").lower() for w in words]

    def _lookup(self, word: str, pos: tuple[str, ...]) -> tuple[str, ...]:
        lemma = word.replace(" ", "_")
        found: set[str] = set()
        for p in pos:
            offsets = self._offsets(p, lemma)
            if not offsets:
                continue
            with open(self.root / f"data.{p}", "rb") as fh:
                for off in offsets:
                    found.update(self._lemmas(fh, off))
        if not self.multiword:
            found = {s for s in found if " " not in s}
        return tuple(_finish(word, found))

    def synonyms(self, word: str, pos: str | None = None) -> list[str]:
        """Sorted synonyms of ``word`` over all its synsets (in part of speech ``pos`` if given)."""
        return list(self._cached(_word("WordNetSynonyms.synonyms", word).lower(),
                                 _norm_pos("WordNetSynonyms.synonyms", pos)))

    def __repr__(self) -> str:
        extra = "".join([", multiword=True" if self.multiword else "",
                         f", senses={self.senses}" if self.senses is not None else ""])
        return f"WordNetSynonyms({str(self.root)!r}{extra})"


def default_synonyms(roots: Iterable[str | os.PathLike[str]] | None = None) -> SynonymSource:
    """WordNet when its database files are found, else the shipped lexicon.

    Parameters
    ----------
    roots : iterable of paths, optional
        Folders to try, in order; default: ``$STALWART_WORDNET`` (if set), then
        :data:`WORDNET_ROOTS`.

    Notes
    -----
    The choice depends on the machine; record ``repr(source)`` (attack results do) or pass a
    source explicitly where runs must match across machines.
    """
    if roots is None:
        env = os.environ.get("STALWART_WORDNET")
        roots = ((env,) if env else ()) + WORDNET_ROOTS
    elif isinstance(roots, (str, os.PathLike)):
        roots = (roots,)
    else:
        given = roots
        roots = tuple(roots) if isinstance(roots, Iterable) else None
        if roots is None or not all(isinstance(r, (str, os.PathLike)) for r in roots):
            raise param_error("default_synonyms", "roots", "a list of folder paths (str or pathlib.Path) or None",
                              given)
    for root in roots:
        if not _wordnet_missing(Path(root)):
            return WordNetSynonyms(root)
    return LexiconSynonyms()
