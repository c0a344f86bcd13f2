"""Word-substitution attack on text classifiers, and the synonym sources it draws from."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline

from stalwart import attacks
from stalwart.attacks.synonyms import LexiconSynonyms, WordNetSynonyms, default_synonyms
from stalwart.attacks.text import STOP_WORDS, WordSubstitution, tokenize
from stalwart.datasets import load_split
from stalwart.errors import ConfigError, InputError, ModelError
from stalwart.models.function import FunctionModel

WORDNET = Path("/usr/share/wordnet")
needs_wordnet = pytest.mark.skipif(
    not (WORDNET / "index.noun").is_file(),
    reason="WordNet 3.0 database not installed in /usr/share/wordnet (apt-get install wordnet-base)")

# the test's own tokenizer (ASCII data): words keep inner apostrophes and hyphens
_TEST_WORD = re.compile(r"([A-Za-z]+(?:['-][A-Za-z]+)*)")


def _split(text: str) -> list[str]:
    return _TEST_WORD.split(text)


@pytest.fixture(scope="module")
def sentiment():
    """(fitted TF-IDF + logistic regression pipeline, test texts, test labels)."""
    train, test = load_split("sentiment")
    clf = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(train.x, train.y)
    return clf, list(test.x), np.asarray(test.y)


@pytest.fixture(scope="module")
def lexicon() -> LexiconSynonyms:
    return LexiconSynonyms()


@pytest.fixture(scope="module")
def attacked(sentiment, lexicon):
    clf, x, y = sentiment
    return WordSubstitution(synonyms=lexicon, max_change=0.3).run(clf, x, y)


# -- the attack on the built-in sentiment data ------------------------------------------------------

def test_attack_lowers_accuracy_substantially(sentiment, attacked):
    clf, x, y = sentiment
    assert attacked.clean_accuracy == pytest.approx(clf.score(x, y))  # 0.933 on this split
    # measured: 0.933 -> 0.608 (35% of correct sentences fooled with at most 30% of words changed)
    assert attacked.robust_accuracy <= attacked.clean_accuracy - 0.25
    assert attacked.attack_success_rate >= 0.25
    correct = attacked.clean_correct
    assert attacked.robust_accuracy == pytest.approx(np.mean(correct & ~attacked.success))


def test_success_is_real_when_re_predicted(sentiment, attacked):
    clf, x, y = sentiment
    pred = clf.predict(attacked.perturbed)  # independent of the attack's own bookkeeping
    np.testing.assert_array_equal(pred, attacked.pred_adv)
    np.testing.assert_array_equal(attacked.success, pred != y)
    fooled = attacked.success & attacked.clean_correct
    assert fooled.sum() >= 25
    assert np.all(attacked.words_changed[fooled] >= 1)
    # failed attacks and clean mistakes return the input untouched
    for i in np.flatnonzero(~fooled):
        assert attacked.perturbed[i] == x[i]
        assert attacked.words_changed[i] == 0


def test_only_words_are_replaced_by_listed_synonyms(attacked, lexicon):
    checked = 0
    for i in np.flatnonzero(attacked.words_changed > 0):
        before, after = _split(attacked.original[i]), _split(attacked.perturbed[i])
        assert len(before) == len(after)  # same number of words and gaps
        assert before[0::2] == after[0::2]  # every gap (spaces, punctuation) byte-identical
        changed = [(a, b) for a, b in zip(before[1::2], after[1::2]) if a != b]
        assert len(changed) == attacked.words_changed[i]
        for old, new in changed:
            assert old.lower() not in STOP_WORDS
            assert new.lower() in lexicon.synonyms(old)
            assert new[0].isupper() == old[0].isupper()  # case pattern kept
            checked += 1
    assert checked >= 25


def test_word_budget_is_respected(attacked):
    n_words = np.array([len(_split(t)[1::2]) for t in attacked.original])
    np.testing.assert_array_equal(attacked.words_changed <= np.floor(0.3 * n_words + 1e-9), True)
    np.testing.assert_allclose(attacked.fraction_changed, attacked.words_changed / n_words)
    assert attacked.fraction_changed.max() <= 0.3


def test_same_seed_same_output_and_batch_independence(sentiment, lexicon, attacked):
    clf, x, y = sentiment
    again = WordSubstitution(synonyms=lexicon, max_change=0.3).run(clf, x, y)
    assert again.perturbed == attacked.perturbed
    np.testing.assert_array_equal(again.queries, attacked.queries)
    # a sample's outcome does not depend on its batch
    sub = np.arange(0, len(x), 7)
    part = WordSubstitution(synonyms=lexicon, max_change=0.3).run(clf, [x[i] for i in sub], y[sub])
    assert part.perturbed == [attacked.perturbed[i] for i in sub]


def test_mask_importance_and_larger_budget(sentiment, lexicon, attacked):
    clf, x, y = sentiment
    masked = WordSubstitution(synonyms=lexicon, max_change=0.3, importance="mask").run(clf, x, y)
    np.testing.assert_array_equal(clf.predict(masked.perturbed) != y, masked.success)
    small = WordSubstitution(synonyms=lexicon, max_change=0.2).run(clf, x, y)
    # a bigger word budget can only help: what 20% fooled, 30% fools too
    assert np.all(attacked.success[small.success])
    assert small.robust_accuracy >= attacked.robust_accuracy


def test_result_summary_and_examples(attacked):
    d = attacked.to_dict()
    json.dumps(d)  # JSON-ready
    assert d["attack"] == "word_substitution" and d["n_samples"] == 120
    assert d["robust_accuracy"] == attacked.robust_accuracy
    assert d["params"]["max_change"] == 0.3 and d["params"]["synonyms"] == "LexiconSynonyms()"
    assert 1.0 <= d["mean_words_changed"] <= 3.0
    ex = attacked.examples(4)
    assert len(ex) == 4
    json.dumps(ex)
    for e in ex:
        assert e["perturbed"] != e["original"] and e["pred_adv"] != e["label"]
        assert set(e) == {"original", "perturbed", "label", "pred_adv", "words_changed"}
    assert attacked.examples(0) == []


def test_registered():
    assert attacks.ATTACKS.get("word_substitution") is WordSubstitution
    assert attacks.names(modalities="text") == ["word_substitution"]
    assert isinstance(attacks.get("word_substitution", max_change=0.3), WordSubstitution)
    assert "WordSubstitution(synonyms='LexiconSynonyms()', max_change=0.5" in repr(
        WordSubstitution(synonyms=LexiconSynonyms(), max_change=0.5))


# -- exact behaviour on a toy model ----------------------------------------------------------------

class _Table:
    """A synonym source from a dict, for tests."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table

    def synonyms(self, word: str, pos: str | None = None) -> list[str]:
        return sorted(self.table.get(word.lower(), []))


def _keyword_model(word: str = "good", p_hit: float = 0.9, p_miss: float = 0.2) -> FunctionModel:
    """P(positive) = p_hit when ``word`` is in the text, else p_miss; classes ['neg', 'pos']."""
    def fn(texts):
        hit = np.array([word in re.findall(r"[a-z]+", t.lower()) for t in texts])
        p = np.where(hit, p_hit, p_miss)
        return np.stack([1 - p, p], axis=1)
    return FunctionModel(fn, classes=["neg", "pos"])


def test_query_count_and_choice_on_toy_model():
    syn = _Table({"good": ["fine", "nice", "decent", "solid", "great"], "movie": ["film"]})
    model = _keyword_model()
    r = WordSubstitution(synonyms=syn, max_change=0.5).run(model, ["A good movie!", "GOOD movie"], ["pos", "pos"])
    # per sample: 1 clean query + 2 importance queries (good, movie) + 5 candidates for "good",
    # which all flip the label; the tie goes to the first in sorted order
    np.testing.assert_array_equal(r.queries, [8, 8])
    assert r.perturbed == ["A decent movie!", "DECENT movie"]
    np.testing.assert_array_equal(r.pred_adv, ["neg", "neg"])
    np.testing.assert_array_equal(r.words_changed, [1, 1])
    np.testing.assert_allclose(r.fraction_changed, [1 / 3, 1 / 2])
    assert model.n_queries == 8 + 8 + 2  # + the final check of the two returned texts


def test_query_budget_and_word_budget_limits():
    syn = _Table({"good": ["fine", "nice", "decent"]})
    text, label = ["a good movie"], ["pos"]
    r = WordSubstitution(synonyms=syn, max_change=0.5, queries=3).run(_keyword_model(), text, label)
    assert r.queries.tolist() == [3] and r.perturbed == ["a decent movie"]  # one candidate tried
    r = WordSubstitution(synonyms=syn, max_change=0.5, queries=2).run(_keyword_model(), text, label)
    assert r.queries.tolist() == [2] and not r.success[0] and r.perturbed == text
    # 3 words * 0.3 -> no word may change: the sample is not attacked at all
    r = WordSubstitution(synonyms=syn, max_change=0.3).run(_keyword_model(), text, label)
    assert r.queries.tolist() == [1] and not r.success[0]


def test_no_change_when_no_candidate_helps():
    # the model ignores every word, so no synonym lowers the true-class probability
    model = FunctionModel(lambda t: np.tile([0.3, 0.7], (len(t), 1)), classes=[0, 1])
    syn = _Table({"good": ["fine", "nice"], "movie": ["film"]})
    r = WordSubstitution(synonyms=syn, max_change=1.0).run(model, ["good movie"], [1])
    assert r.perturbed == ["good movie"] and r.words_changed.tolist() == [0]
    assert r.queries.tolist() == [1 + 2 + 2 + 1]
    assert r.robust_accuracy == 1.0 and r.attack_success_rate == 0.0


def test_misclassified_samples_are_not_attacked():
    syn = _Table({"good": ["fine"], "bad": ["poor"]})
    r = WordSubstitution(synonyms=syn, max_change=1.0).run(_keyword_model(), ["bad movie", "good movie"], ["pos", "pos"])
    # "bad movie" is predicted neg: counted as not robust, left alone, one query
    assert r.success.tolist() == [True, True] and r.perturbed == ["bad movie", "fine movie"]
    assert r.queries[0] == 1 and r.words_changed.tolist() == [0, 1]
    assert r.robust_accuracy == 0.0 and r.attack_success_rate == 1.0
    assert [e["original"] for e in r.examples()] == ["good movie"]


def test_stop_words_are_never_replaced():
    syn = _Table({"not": ["never"], "good": ["fine"]})
    model = _keyword_model(word="not", p_hit=0.1, p_miss=0.8)  # "not" decides the label
    r = WordSubstitution(synonyms=syn, max_change=1.0).run(model, ["not good"], ["neg"])
    assert r.perturbed == ["not good"] and not r.success[0]
    custom = WordSubstitution(synonyms=syn, max_change=1.0, stop_words=["good"]).run(model, ["not good"], ["neg"])
    assert custom.perturbed == ["never good"]


def test_seed_picks_candidate_subsets():
    many = [f"w{c}" for c in "abcdefghijklmnop"]  # 16 synonyms, all flip the label
    syn = _Table({"good": [f"good{c}" for c in many]})
    texts, labels = ["good"] * 1, ["pos"]
    outs = {s: WordSubstitution(synonyms=syn, max_change=1.0, max_candidates=3, seed=s)
            .run(_keyword_model(), texts, labels) for s in range(6)}
    for r in outs.values():
        assert r.queries.tolist() == [1 + 1 + 3]
        assert r.perturbed[0] in syn.synonyms("good")
    assert outs[0].perturbed == WordSubstitution(synonyms=syn, max_change=1.0, max_candidates=3, seed=0) \
        .run(_keyword_model(), texts, labels).perturbed
    assert len({r.perturbed[0] for r in outs.values()}) > 1


def test_tokenize_round_trips():
    text = "  Isn't it first-rate?! 3 stars… — wow\n"
    segs = tokenize(text)
    assert "".join(segs) == text
    assert segs[1::2] == ["Isn't", "it", "first-rate", "stars", "wow"]


# -- bad input ---------------------------------------------------------------------------------------

@pytest.fixture()
def toy_attack():
    return WordSubstitution(synonyms=_Table({"good": ["fine"]}))


@pytest.mark.parametrize("texts, y, match", [
    ([], [], "texts is empty"),
    ("good movie", ["pos"], "got a single string"),
    (["good", 3, None], ["pos"] * 3, r"2 item\(s\) are not \(first at index 1: int\)"),
    (["good", "bad"], ["pos"], "texts has 2 samples but y has 1"),
    (["good"], ["positive"], r"labels the model does not know: \['positive'\]"),
    (5, [1], "texts must be a list of strings; got int"),
])
def test_bad_inputs(toy_attack, texts, y, match):
    with pytest.raises(InputError, match=match):
        toy_attack.run(_keyword_model(), texts, y)


@pytest.mark.parametrize("kwargs, match", [
    ({"max_change": 0}, r"WordSubstitution\(max_change=...\) must be a number in \(0, 1\]; got 0"),
    ({"max_change": 1.5}, r"max_change=...\) must be a number in \(0, 1\]"),
    ({"importance": "drop"}, r"importance=...\) must be 'delete' or 'mask'; got 'drop'"),
    ({"max_candidates": 0}, r"max_candidates=...\) must be an integer >= 1"),
    ({"queries": 2.5}, r"queries=...\) must be an integer >= 1"),
    ({"synonyms": ["good", "fine"]}, r"synonyms=...\) must be a SynonymSource"),
    ({"stop_words": "the"}, r"stop_words=...\) must be None or an iterable of strings"),
    ({"mask_token": ""}, r"mask_token=...\) must be a non-empty string"),
    ({"seed": -1}, r"seed=...\) must be an integer >= 0"),
])
def test_bad_params(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        WordSubstitution(**kwargs)


def test_regression_model_is_refused(toy_attack):
    reg = FunctionModel(lambda t: np.zeros(len(t)), task="regression")
    with pytest.raises(ModelError, match="attacks classifiers"):
        toy_attack.run(reg, ["good"], [0.0])
    with pytest.raises(ModelError, match="attacks classifiers"):
        toy_attack.run(LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0]), ["good"], [0.0])


# -- the shipped lexicon ---------------------------------------------------------------------------

def test_lexicon_entries(lexicon):
    terrible = lexicon.synonyms("Terrible", pos="adj")
    assert {"awful", "dreadful", "horrible", "atrocious"} <= set(terrible)
    assert terrible == sorted(terrible) and "terrible" not in terrible
    assert "film" in lexicon.synonyms("movie") and "movie" in lexicon.synonyms("film")
    assert lexicon.synonyms("movie", pos="verb") == []
    assert lexicon.synonyms("movie", pos="n") == lexicon.synonyms("movie", pos="noun")
    assert lexicon.synonyms("xyzzy") == []
    assert "adored" in lexicon.synonyms("loved") and "enjoyed" in lexicon.synonyms("liked")
    # a few hundred head words, most with 2-6 synonyms of their own
    assert len(lexicon.words()) > 1000
    with pytest.raises(ConfigError, match=r"synonyms\(pos=...\) must be None or one of"):
        lexicon.synonyms("good", pos="article")


def test_lexicon_covers_the_sentiment_vocabulary(lexicon):
    from stalwart.data.text_sentiment import NEGATIVE, POSITIVE
    missing = [w for w in POSITIVE + NEGATIVE if len(lexicon.synonyms(w, pos="adj")) < 3]
    assert missing == []


def test_lexicon_file_is_parsed_and_made_symmetric(tmp_path):
    path = tmp_path / "lex.tsv"
    path.write_text("# comment\n\nquick\tadj\tfast, Rapid\nrun\tverb\tsprint\nfast\tadv\tquickly\n",
                    encoding="utf-8")
    lex = LexiconSynonyms(path)
    assert lex.synonyms("quick") == ["fast", "rapid"]
    assert lex.synonyms("rapid") == ["quick"]  # symmetric, but not transitive ("fast" not added)
    assert lex.synonyms("fast") == ["quick", "quickly"]  # adj and adv together
    assert lex.synonyms("fast", pos="adv") == ["quickly"]
    assert lex.synonyms("sprint", pos="verb") == ["run"]
    assert repr(lex) == f"LexiconSynonyms({str(path)!r})"


@pytest.mark.parametrize("content, match", [
    ("quick adj fast\n", r"line 1: expected 'word<TAB>pos<TAB>synonym"),
    ("# ok\nquick\tadjective-ish\tfast\n", r"line 2: unknown part of speech 'adjective-ish'"),
    ("quick\tadj\t\n", r"line 1: expected"),
])
def test_lexicon_bad_file(tmp_path, content, match):
    path = tmp_path / "bad.tsv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=match):
        LexiconSynonyms(path)


def test_lexicon_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"no file at .*nope.tsv"):
        LexiconSynonyms(tmp_path / "nope.tsv")


# -- WordNet ------------------------------------------------------------------------------------------

def _fake_wordnet(root: Path) -> Path:
    """A three-synset WordNet database in the real file format, with real byte offsets."""
    header = "  1 This software and database is provided under a licence.  \n"
    synsets = {
        "adj": [["happy", "glad", "felicitous(a)"], ["happy", "well-chosen", "in_high_spirits"],
                ["big"] + [f"huge{c}" for c in "abcdefghij"]],  # 11 words: count "0b" in hex
        "noun": [["car", "auto", "motor_vehicle"]],
    }
    root.mkdir(parents=True, exist_ok=True)
    index: dict[str, dict[str, list[int]]] = {}
    for pos in ("noun", "verb", "adj", "adv"):
        data = header
        for words in synsets.get(pos, []):
            off = len(data.encode())
            body = " ".join(f"{w} 0" for w in words)
            data += f"{off:08d} 00 {pos[0]} {len(words):02x} {body} 000 | a gloss; \"an example\"  \n"
            for w in words:
                index.setdefault(pos, {}).setdefault(re.sub(r"\(.*\)", "", w).lower(), []).append(off)
        (root / f"data.{pos}").write_text(data, encoding="utf-8")
        lines = [f"{lemma} {pos[0]} {len(offs)} 1 & {len(offs)} 0 " + " ".join(f"{o:08d}" for o in offs) + "  "
                 for lemma, offs in sorted(index.get(pos, {}).items())]
        (root / f"index.{pos}").write_text(header + "".join(line + "\n" for line in lines), encoding="utf-8")
    return root


def test_wordnet_reader_on_fake_database(tmp_path):
    wn = WordNetSynonyms(_fake_wordnet(tmp_path / "wn"))
    assert wn.synonyms("HAPPY") == ["felicitous", "glad", "well-chosen"]  # marker dropped, multiword skipped
    assert wn.synonyms("glad") == ["felicitous", "happy"]
    assert wn.synonyms("big") == [f"huge{c}" for c in "abcdefghij"]  # hex word count
    assert wn.synonyms("car", pos="noun") == ["auto"] and wn.synonyms("car", pos="adj") == []
    assert wn.synonyms("nothing") == []
    multi = WordNetSynonyms(tmp_path / "wn", multiword=True)
    assert multi.synonyms("happy") == ["felicitous", "glad", "in high spirits", "well-chosen"]
    assert multi.synonyms("in high spirits") == ["happy", "well-chosen"]
    assert WordNetSynonyms(tmp_path / "wn", senses=1).synonyms("happy") == ["felicitous", "glad"]


def test_wordnet_missing_files(tmp_path):
    with pytest.raises(InputError, match=r"missing index.noun, data.noun.*wordnet-base.*LexiconSynonyms"):
        WordNetSynonyms(tmp_path)
    with pytest.raises(ConfigError, match=r"senses=...\) must be None or an integer >= 1"):
        WordNetSynonyms(_fake_wordnet(tmp_path / "wn"), senses=0)


def test_default_synonyms_prefers_wordnet(tmp_path, monkeypatch):
    monkeypatch.delenv("STALWART_WORDNET", raising=False)
    assert isinstance(default_synonyms([tmp_path / "empty"]), LexiconSynonyms)
    fake = _fake_wordnet(tmp_path / "wn")
    chosen = default_synonyms([tmp_path / "empty", fake])
    assert isinstance(chosen, WordNetSynonyms) and chosen.root == fake
    monkeypatch.setenv("STALWART_WORDNET", str(fake))
    assert default_synonyms().root == fake


@needs_wordnet
def test_wordnet_3_0_entries():
    wn = WordNetSynonyms(WORDNET)
    assert {"auto", "automobile", "machine", "motorcar"} <= set(wn.synonyms("car", pos="noun"))
    assert {"felicitous", "glad"} <= set(wn.synonyms("happy"))
    assert {"beneficial", "well"} <= set(wn.synonyms("good"))
    assert "goodness" in wn.synonyms("good", pos="noun") and "beneficial" not in wn.synonyms("good", pos="noun")
    assert {"awful", "dreadful", "atrocious"} <= set(wn.synonyms("terrible", pos="adj"))
    assert "galore" in wn.synonyms("abounding", pos="adj")  # "galore(ip)" in data.adj
    assert WordNetSynonyms(WORDNET, senses=1).synonyms("car") == ["auto", "automobile", "machine", "motorcar"]
    assert "railway car" in WordNetSynonyms(WORDNET, multiword=True).synonyms("car")
    assert all(" " not in s for s in wn.synonyms("car"))
    out = wn.synonyms("good")
    assert out == sorted(set(out)) and "good" not in out


@needs_wordnet
def test_attack_with_wordnet(sentiment):
    clf, x, y = sentiment
    wn = WordNetSynonyms(WORDNET)
    r = WordSubstitution(synonyms=wn, max_change=0.3).run(clf, x, y)
    # measured: 0.933 -> 0.658
    assert r.robust_accuracy <= r.clean_accuracy - 0.2
    np.testing.assert_array_equal(clf.predict(r.perturbed) != y, r.success)
    for i in np.flatnonzero(r.words_changed > 0):
        pairs = [(a, b) for a, b in zip(_split(x[i])[1::2], _split(r.perturbed[i])[1::2]) if a != b]
        assert len(pairs) == r.words_changed[i] <= math.floor(0.3 * len(_split(x[i])[1::2]))
        assert all(b.lower() in wn.synonyms(a) for a, b in pairs)
