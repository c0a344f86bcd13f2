"""CheckList behavioural tests on a real TF-IDF + logistic regression sentiment model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

import stalwart
from stalwart import datasets, perturb
from stalwart._stats import wilson_interval
from stalwart.errors import ConfigError, InputError
from stalwart.perturb.checklist import (
    BehaviourResult,
    Paraphraser,
    Template,
    directional_test,
    invariance_test,
    minimum_functionality_test,
)


@pytest.fixture(scope="module")
def sentiment():
    train, test = datasets.load_split("sentiment")
    pipe = make_pipeline(TfidfVectorizer(ngram_range=(1, 2)), LogisticRegression(max_iter=1000))
    pipe.fit(train.x, train.y)
    return pipe, list(test.x)


def check_counts(result: BehaviourResult, failed: np.ndarray) -> None:
    """The result's numbers against an independent recount."""
    assert result.n == failed.size and result.failures == int(failed.sum())
    assert result.failure_rate == pytest.approx(failed.mean() if failed.size else 0.0)
    low, high = wilson_interval(int(failed.sum()), failed.size)
    assert (result.low, result.high) == pytest.approx((low, high))
    assert result.low <= result.failure_rate <= result.high


# -- INV -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["keyboard_typos", "add_irrelevant", "char_delete"])
def test_invariance_failures_are_real_prediction_changes(sentiment, name):
    pipe, texts = sentiment
    result = invariance_test(pipe, texts, name, severity=4, seed=3, max_examples=1000)
    perturbed = perturb.get(name).apply(texts, 4, rng=3)  # the same stream as the test's seed
    changed = np.array([a != b for a, b in zip(texts, perturbed)])
    idx = np.flatnonzero(changed)
    before = pipe.predict([texts[i] for i in idx])
    after = pipe.predict([perturbed[i] for i in idx])
    failed = before != after
    check_counts(result, failed)
    assert result.kind == "INV" and result.name == f"INV {name}@4"
    assert [e["index"] for e in result.examples] == idx[failed].tolist()
    for e in result.examples:  # re-predict each reported failure
        assert e["original"] == texts[e["index"]] and e["perturbed"] == perturbed[e["index"]]
        assert pipe.predict([e["original"]])[0] == e["pred_before"]
        assert pipe.predict([e["perturbed"]])[0] == e["pred_after"] != e["pred_before"]
        assert e["prob_after"] == pytest.approx(pipe.predict_proba([e["perturbed"]])[0].max())
    if name != "add_irrelevant":  # typos flip some predictions of a word-level model
        assert result.failures > 0


def test_invariance_counts_only_texts_the_change_altered(sentiment):
    pipe, texts = sentiment
    result = invariance_test(pipe, texts, "name_swap")  # the sentiment sentences have no names
    assert result.n == 0 and result.failures == 0 and result.failure_rate == 0.0
    assert (result.low, result.high) == (0.0, 1.0) and result.examples == []
    named = [f"Maria says: {t}" for t in texts[:30]]
    result = invariance_test(pipe, named, perturb.get("name_swap"), severity=5, max_examples=0)
    assert result.n == 30 and result.examples == []


def test_invariance_with_a_paraphraser(sentiment):
    pipe, texts = sentiment

    class Prefix:
        def paraphrase(self, texts, rng):
            openers = ["Honestly,", "Well,", "So,"]
            return [f"{openers[int(rng.integers(3))]} {t[0].lower()}{t[1:]}" for t in texts]

    assert isinstance(Prefix(), Paraphraser)
    result = invariance_test(pipe, texts[:80], Prefix(), seed=1)
    para = Prefix().paraphrase(texts[:80], np.random.default_rng(1))
    failed = pipe.predict(texts[:80]) != pipe.predict(para)
    check_counts(result, failed)
    assert result.name == "INV Prefix"

    class Broken:
        def paraphrase(self, texts, rng):
            return texts[:-1]

    with pytest.raises(ConfigError, match=r"Broken\.paraphrase\(\) must return one string per input text \(80\)"):
        invariance_test(pipe, texts[:80], Broken())


def test_invariance_bad_arguments(sentiment):
    pipe, texts = sentiment
    with pytest.raises(ConfigError, match=r"invariance_test\(perturbation=\.\.\.\) must be a text perturbation"):
        invariance_test(pipe, texts, "gaussian_noise")
    with pytest.raises(ConfigError, match=r"invariance_test\(perturbation=\.\.\.\) must be a registered"):
        invariance_test(pipe, texts, 42)
    with pytest.raises(InputError, match="texts must be a list of strings; got str"):
        invariance_test(pipe, "one text", "contract")
    with pytest.raises(InputError, match="texts is empty"):
        invariance_test(pipe, [], "contract")


# -- DIR -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("phrase", "expect", "position"), [
    ("I hated it.", "not_increase", "end"),
    ("I loved it.", "not_decrease", "end"),
    ("Terrible.", "not_increase", "start"),
])
def test_directional_failures_move_the_wrong_way(sentiment, phrase, expect, position):
    pipe, texts = sentiment
    result = directional_test(pipe, texts, phrase, position=position, expect=expect, class_=1, tol=0.01,
                              max_examples=1000)
    perturbed = [f"{t} {phrase}" if position == "end" else f"{phrase} {t}" for t in texts]
    delta = pipe.predict_proba(perturbed)[:, 1] - pipe.predict_proba(texts)[:, 1]
    failed = delta > 0.01 if expect == "not_increase" else delta < -0.01
    check_counts(result, failed)
    assert result.kind == "DIR" and result.params["class"] == 1
    for e in result.examples:
        p0 = pipe.predict_proba([e["original"]])[0, 1]
        p1 = pipe.predict_proba([e["perturbed"]])[0, 1]
        assert e["change"] == pytest.approx(p1 - p0) and e["perturbed"] == perturbed[e["index"]]
        assert (p1 - p0 > 0.01) if expect == "not_increase" else (p1 - p0 < -0.01)


def test_directional_a_contrary_phrase_fails_often(sentiment):
    pipe, texts = sentiment
    # appending praise must not *lower* "positive": a bag-of-words model obeys almost always,
    # while requiring it not to *raise* "positive" fails on almost every text
    ok = directional_test(pipe, texts, "I loved it.", expect="not_decrease")
    bad = directional_test(pipe, texts, "I loved it.", expect="not_increase")
    assert ok.failure_rate < 0.1 < 0.9 < bad.failure_rate


def test_directional_bad_arguments(sentiment):
    pipe, texts = sentiment
    with pytest.raises(ConfigError, match=r"directional_test\(class_=\.\.\.\) must be one of the model's classes"):
        directional_test(pipe, texts, "x", class_="pos")
    with pytest.raises(ConfigError, match=r"directional_test\(expect=\.\.\.\) must be one of"):
        directional_test(pipe, texts, "x", expect="increase")
    with pytest.raises(ConfigError, match=r"directional_test\(position=\.\.\.\) must be one of"):
        directional_test(pipe, texts, "x", position="middle")
    with pytest.raises(ConfigError, match=r"directional_test\(tol=\.\.\.\) must be a number >= 0"):
        directional_test(pipe, texts, "x", tol=-1)
    with pytest.raises(ConfigError, match=r"directional_test\(phrase=\.\.\.\) must be a non-empty string"):
        directional_test(pipe, texts, "  ")


# -- MFT and templates ------------------------------------------------------------------------------------------
FILLS = {"name": ["Maria", "Kwame", "Wei"], "thing": ["movie", "phone", "hotel room", "app"],
         "pos": ["great", "wonderful", "excellent"], "neg": ["awful", "terrible", "boring"]}


def test_minimum_functionality_counts_and_examples_are_real(sentiment):
    pipe, _ = sentiment
    for template, label in (("The {thing} was {pos}.", 1), ("The {thing} was {neg}.", 0),
                            ("{name} said the {thing} was not {pos}.", 0)):
        result = minimum_functionality_test(pipe, template, FILLS, label, max_examples=1000)
        texts = Template(template).fill(FILLS)
        failed = pipe.predict(texts) != label
        check_counts(result, failed)
        assert result.kind == "MFT" and result.params["n_possible"] == len(texts)
        for e in result.examples:
            assert e["text"] == texts[e["index"]] and pipe.predict([e["text"]])[0] == e["pred"] != label
    # max_cases below the product: a seeded sample of the same sentences
    sampled = minimum_functionality_test(pipe, "{name} said the {thing} was not {pos}.", FILLS, 0, max_cases=10,
                                         seed=2)
    texts = Template("{name} said the {thing} was not {pos}.").fill(FILLS, max_cases=10, seed=2)
    check_counts(sampled, pipe.predict(texts) != 0)


def test_template_fill_product_order_reuse_and_articles():
    t = Template("{name} ate {a:food}; {name} liked {a:food}.")
    assert t.fields == ("name", "food")
    out = t.fill({"name": ["Ann", "Bo"], "food": ["apple", "pear", "hour-long meal", "unicorn cake"]})
    assert out[:4] == ["Ann ate an apple; Ann liked an apple.", "Ann ate a pear; Ann liked a pear.",
                       "Ann ate an hour-long meal; Ann liked an hour-long meal.",
                       "Ann ate a unicorn cake; Ann liked a unicorn cake."]
    assert len(out) == 8 and out[4].startswith("Bo ate an apple")
    assert t.size({"name": ["Ann", "Bo"], "food": ["x"] * 5}) == 10


def test_template_max_cases_samples_distinct_combinations_in_order():
    t = Template("{a} {b} {c}")
    fills = {"a": list("abcdefghij"), "b": list("klmnopqrst"), "c": list("uvwxyz")}
    full = t.fill(fills)
    sample = t.fill(fills, max_cases=50, seed=4)
    assert len(sample) == 50 == len(set(sample)) and set(sample) <= set(full)
    assert sample == sorted(sample, key=full.index)
    assert sample == t.fill(fills, max_cases=50, seed=4) != t.fill(fills, max_cases=50, seed=5)
    assert t.fill(fills, max_cases=10_000) == full


def test_template_and_mft_errors(sentiment):
    pipe, _ = sentiment
    with pytest.raises(ConfigError, match=r"Template\(text=\.\.\.\) must be a string with at least one \{slot\}"):
        Template("no slots")
    with pytest.raises(ConfigError, match=r"lack slot\(s\) \['pos'\]"):
        Template("{thing} is {pos}").fill({"thing": ["x"]})
    with pytest.raises(ConfigError, match=r"fills\['thing'\] must be a non-empty list of strings"):
        Template("{thing}").fill({"thing": "movie"})
    with pytest.raises(ConfigError, match=r"Template\(max_cases=\.\.\.\) must be an integer >= 1"):
        Template("{thing}").fill({"thing": ["a"]}, max_cases=0)
    with pytest.raises(InputError, match=r"label=\.\.\.\) must be one of the model's classes \[0, 1\]; got 'pos'"):
        minimum_functionality_test(pipe, "The {thing} was {pos}.", FILLS, "pos")


# -- result --------------------------------------------------------------------------------------------------
def test_result_is_frozen_and_serialisable(sentiment):
    pipe, texts = sentiment
    model = stalwart.wrap(pipe)
    result = invariance_test(model, texts, "keyboard_typos", severity=5)
    d = json.loads(json.dumps(result.to_dict()))
    assert d["kind"] == "INV" and d["n"] == result.n and len(d["examples"]) == min(10, result.failures)
    with pytest.raises(AttributeError):
        result.n = 3  # type: ignore[misc]
    with pytest.raises(ConfigError, match="kind=...\\) must be one of"):
        BehaviourResult("x", "ABC", 0, 0, 0.0, 0.0, 1.0)
