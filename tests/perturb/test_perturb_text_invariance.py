"""Text invariance perturbations: the shared contract, and each rewrite has the promised form."""

from __future__ import annotations

import re

import numpy as np
import pytest

from stalwart import perturb
from stalwart.errors import ConfigError, InputError
from stalwart.perturb import _text_resources as res
from stalwart.perturb.text import (
    AddIrrelevant,
    Contract,
    ExpandContractions,
    LocationSwap,
    NameSwap,
    NumberSwap,
    SynonymSwap,
    Whitespace,
)

SYN = {"good": ["fine", "decent"], "movie": ["film"], "quick": ["fast", "rapid", "speedy"],
       "happy": ["glad", "cheerful"], "house": ["home"]}
NEW = ["contract", "expand_contractions", "name_swap", "location_swap", "number_swap", "whitespace",
       "synonym_swap", "add_irrelevant"]
PARAMS = {"synonym_swap": {"synonyms": SYN}}


def corpus(n: int = 60, seed: int = 0) -> list[str]:
    """Sentences with names, places, numbers, contractions (both forms) and synonym-able words."""
    rng = np.random.default_rng(seed)
    names = rng.choice(res.FIRST_NAMES, n)
    cities = rng.choice(res.CITIES, n)
    countries = rng.choice(res.COUNTRIES, n)
    out = []
    for i in range(n):
        out.append(f"{names[i]} said it is not a good movie, but we don't mind. "
                   f"I am in {cities[i]}, {countries[i]} for {rng.integers(5, 5000)} days "
                   f"and paid {rng.integers(10, 99)}.{rng.integers(10, 99)} for a quick, happy house.")
    return out


def get(name: str):
    return perturb.get(name, **PARAMS.get(name, {}))


def levenshtein_ratio(a: list[str], b: list[str]) -> float:
    """Share of characters that differ position by position plus length change (cheap proxy)."""
    total = 0
    for s, t in zip(a, b):
        m = min(len(s), len(t))
        total += sum(x != y for x, y in zip(s[:m], t[:m])) + abs(len(s) - len(t))
    return total / sum(len(s) for s in a)


# -- shared contract --------------------------------------------------------------------------------------
def test_registered_as_text_perturbations():
    assert set(NEW) <= set(perturb.names("text"))


@pytest.mark.parametrize("name", NEW)
def test_attributes_repr_round_trip_and_keyword_only(name):
    p = get(name)
    cls = type(p)
    assert cls.name == name and cls.modality == "text"
    assert len(cls.description) > 10 and "severity" in cls.__doc__
    assert repr(cls(**p.params())) == repr(p)
    with pytest.raises(TypeError):
        cls(1)


@pytest.mark.parametrize("name", NEW)
def test_pure_deterministic_and_graded(name):
    x = corpus()
    snapshot = list(x)
    p = get(name)
    out = p.apply(x, 3, rng=11)
    assert x == snapshot
    assert out == p.apply(x, 3, rng=np.random.default_rng(11))
    assert out != p.apply(x, 3, rng=12)
    assert len(out) == len(x) and all(isinstance(t, str) for t in out)
    sizes = [levenshtein_ratio(x, p.apply(x, s, rng=0)) for s in perturb.SEVERITIES]
    assert sizes[0] > 0 and sizes[-1] > sizes[0]
    # same seed: the texts changed at a severity stay changed at every higher one
    changed = [np.array([a != b for a, b in zip(x, p.apply(x, s, rng=0))]) for s in perturb.SEVERITIES]
    assert all((lo <= hi).all() for lo, hi in zip(changed, changed[1:]))


@pytest.mark.parametrize("name", NEW)
@pytest.mark.parametrize("severity", [0, 6, 2.5, "3"])
def test_bad_severity(name, severity):
    with pytest.raises(ConfigError, match=r"severity=\.\.\.\) must be an integer 1\.\.5"):
        get(name).apply(["a b"], severity)


@pytest.mark.parametrize("name", NEW)
def test_bad_input(name):
    with pytest.raises(InputError, match="empty"):
        get(name).apply([], 3)
    with pytest.raises(InputError, match=r"entries \[1\] are not"):
        get(name).apply(["fine", 3], 3)


def test_text_without_eligible_spans_is_unchanged():
    texts = ["zzz qqq", "nothing to see"]
    for name in ["contract", "expand_contractions", "name_swap", "location_swap", "number_swap"]:
        assert get(name).apply(texts, 5, rng=0) == texts


# -- contractions ---------------------------------------------------------------------------------------
def test_contract_and_expand_round_trip_every_pair():
    expanded = [f"Well, {k} here and {k.upper()} there." for k in res.CONTRACTIONS]
    contracted = Contract().apply(expanded, 5, rng=0)
    for v, text in zip(res.CONTRACTIONS.values(), contracted):
        assert text == f"Well, {v} here and {v.upper()} there."
    assert ExpandContractions().apply(contracted, 5, rng=0) == expanded


def test_contractions_keep_the_first_letter_case_and_read_curly_apostrophes():
    assert Contract().apply(["Do not go. I am here."], 5) == ["Don't go. I'm here."]
    assert ExpandContractions().apply(["Don\u2019t panic, it\u2019s fine"], 5) == ["Do not panic, it is fine"]
    assert ExpandContractions().apply(["She's here, he's not; won't, can't"], 5) == \
        ["She is here, he is not; will not, cannot"]


def test_contract_share_of_spans_matches_the_level():
    x = ["we do not know"] * 2000
    for severity, level in zip((1, 3), (0.2, 0.6)):
        share = np.mean([t == "we don't know" for t in Contract().apply(x, severity, rng=3)])
        assert abs(share - level) < 4 * np.sqrt(level * (1 - level) / 2000)


# -- names and places -------------------------------------------------------------------------------------
def test_name_swap_replaces_names_by_other_names_only():
    x = [f"{n} met {m} and spoke." for n, m in zip(res.FIRST_NAMES, res.FIRST_NAMES[::-1])]
    out = NameSwap().apply(x, 5, rng=0)
    pattern = re.compile(r"^(\w+) met (\w+) and spoke\.$")
    for before, after in zip(x, out):
        a, b = pattern.match(before).groups(), pattern.match(after).groups()
        assert all(n in res.FIRST_NAMES for n in b)
        assert a[0] != b[0] and a[1] != b[1]


def test_name_swap_custom_list_and_lowercase_words_untouched():
    out = NameSwap(names=["Ann", "Bob"]).apply(["Ann saw an ann and Bob."], 5)
    assert out == ["Bob saw an ann and Ann."]


def test_location_swap_keeps_cities_cities_and_countries_countries():
    x = [f"From {c} in {k} to {c2}." for c, k, c2 in zip(res.CITIES, res.COUNTRIES, res.CITIES[::-1])]
    out = LocationSwap().apply(x, 5, rng=1)
    cities = "|".join(map(re.escape, res.CITIES))
    countries = "|".join(map(re.escape, res.COUNTRIES))
    pattern = re.compile(rf"^From ({cities}) in ({countries}) to ({cities})\.$")
    for before, after in zip(x, out):
        m = pattern.match(after)
        assert m is not None, after
        assert m.groups() != pattern.match(before).groups()
        assert all(new != old for new, old in zip(m.groups(), pattern.match(before).groups()))


# -- numbers -------------------------------------------------------------------------------------------------
def test_number_swap_changes_every_eligible_number_within_the_bound_keeping_format():
    rng = np.random.default_rng(0)
    ints = rng.integers(5, 100000, 300)
    decs = rng.integers(10, 100000, 300)
    x = [f"it took {i} days and {d / 100:.2f} hours, total {i * 1000:,}" for i, d in zip(ints, decs)]
    out = NumberSwap(max_change=0.2).apply(x, 5, rng=1)
    pattern = re.compile(r"^it took (\d+) days and (\d+\.\d\d) hours, total (\d{1,3}(?:,\d{3})+)$")
    for before, after in zip(x, out):
        m0, m1 = pattern.match(before), pattern.match(after)
        assert m1 is not None, after  # same format: integer, two decimals, comma groups
        for a, b in zip(m0.groups(), m1.groups()):
            va, vb = float(a.replace(",", "")), float(b.replace(",", ""))
            assert va != vb and abs(vb - va) <= 0.2 * va + 1e-9


def test_number_swap_leaves_small_numbers_codes_and_versions_alone():
    x = ["3 cats, 007, mp3, v1.2.3, 0 and 1,5"]
    assert NumberSwap(max_change=0.2).apply(x, 5, rng=0) == x
    # 5 * 0.2 = 1 unit: eligible, and moves by exactly one
    assert NumberSwap(max_change=0.2).apply(["5 cats"], 5, rng=0)[0] in ("4 cats", "6 cats")


@pytest.mark.parametrize("bad", [0, 1, 1.5, -0.1, True, "0.2"])
def test_number_swap_bad_max_change(bad):
    with pytest.raises(ConfigError, match=r"NumberSwap\(max_change=\.\.\.\) must be a number in \(0, 1\)"):
        NumberSwap(max_change=bad)


# -- whitespace, synonyms, irrelevant sentences ---------------------------------------------------------------
def test_whitespace_keeps_every_word_and_only_widens_gaps():
    x = corpus(30)
    out = Whitespace().apply(x, 5, rng=0)
    for before, after in zip(x, out):
        assert after.split() == before.split()
        assert len(re.findall(r"\s+", after)) == len(re.findall(r"\s+", before))
        assert all(len(g) >= 2 for g in re.findall(r"\s+", after))  # every gap got an addition


def test_synonym_swap_uses_only_listed_synonyms_in_the_word_case():
    out = SynonymSwap(synonyms=SYN).apply(["The Movie was GOOD and good", "no match here"], 5, rng=0)
    words = out[0].split()
    assert words[0] == "The" and words[2] == "was" and words[4] == "and"
    assert words[1] == "Film"
    assert words[3] in ("FINE", "DECENT") and words[5] in ("fine", "decent")
    assert out[1] == "no match here"


def test_synonym_swap_accepts_a_source_object():
    class Source:
        def synonyms(self, word):
            return ["large"] if word == "big" else []

    assert SynonymSwap(synonyms=Source()).apply(["a Big dog"], 5) == ["a Large dog"]


def test_synonym_swap_default_source():
    try:
        import stalwart.attacks.synonyms  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match=r"SynonymSwap\(synonyms=None\).*pass synonyms="):
            SynonymSwap().apply(["a good movie"], 3)
    else:
        out = SynonymSwap().apply(["a good movie"], 5, rng=0)
        assert len(out) == 1 and isinstance(out[0], str)


def test_synonym_swap_bad_source():
    with pytest.raises(ConfigError, match=r"SynonymSwap\(synonyms=\.\.\.\) must be None"):
        SynonymSwap(synonyms=["good", "fine"])


@pytest.mark.parametrize("position", ["end", "start"])
def test_add_irrelevant_adds_one_listed_sentence(position):
    x = corpus(40)
    out = AddIrrelevant(position=position).apply(x, 5, rng=0)
    for before, after in zip(x, out):
        if position == "end":
            assert after.startswith(before + " ")
            clause = after[len(before) + 1:]
        else:
            assert after.endswith(" " + before)
            clause = after[: -len(before) - 1]
        assert clause in res.IRRELEVANT_CLAUSES


def test_add_irrelevant_random_position_and_bad_params():
    x = ["alpha"] * 200
    out = AddIrrelevant(position="random", clauses=["X.", "Y."]).apply(x, 5, rng=0)
    assert {t for t in out} == {"alpha X.", "alpha Y.", "X. alpha", "Y. alpha"}
    with pytest.raises(ConfigError, match=r"AddIrrelevant\(position=\.\.\.\) must be one of"):
        AddIrrelevant(position="middle")
    with pytest.raises(ConfigError, match=r"AddIrrelevant\(clauses=\.\.\.\) must be None"):
        AddIrrelevant(clauses=["only one"])
    with pytest.raises(ConfigError, match=r"NameSwap\(names=\.\.\.\) must be None"):
        NameSwap(names="Ann")
