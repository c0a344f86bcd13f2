"""TextAdversarialRobustness: word substitution lowers accuracy, and every example shown is a
real failure of the model, re-predicted here."""

import math
import re

import numpy as np
import pytest
import yaml
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from stalwart import datasets
from stalwart._stats import wilson_interval
from stalwart.checks import Status, get
from stalwart.checks.text_adversarial import TextAdversarialRobustness
from stalwart.data.dataset import Dataset
from stalwart.errors import ConfigError
from stalwart.models import wrap

WORDS = re.compile(r"[^\W\d_]+(?:['\u2019-][^\W\d_]+)*")


@pytest.fixture(scope="module")
def sentiment():
    train, test = datasets.load_split("sentiment", seed=0)
    clf = make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=1000)).fit(train.x, train.y)
    return clf, test


@pytest.fixture(scope="module")
def result(sentiment):
    clf, test = sentiment
    return TextAdversarialRobustness(synonyms="lexicon", max_samples=1000).run(wrap(clf), test, seed=0)


def test_attack_lowers_accuracy_with_honest_intervals(sentiment, result):
    clf, test = sentiment
    n = len(test)  # max_samples >= len(test): every text is used
    clean_k = int((clf.predict(test.x) == np.asarray(test.y)).sum())
    clean, robust = result.metrics["clean_accuracy"], result.metrics["robust_accuracy"]
    assert clean.value == pytest.approx(clean_k / n) and (clean.low, clean.high) == pytest.approx(
        wilson_interval(clean_k, n))
    fooled = len(result.tables["examples"])  # fewer than 40 here, so the table lists all of them
    assert 0 < fooled < 40
    assert robust.value == pytest.approx((clean_k - fooled) / n) and robust.value < clean.value
    assert robust.low <= robust.value <= robust.high
    asr = result.metrics["attack_success_rate"]
    assert asr.value == pytest.approx(fooled / clean_k) and asr.n == clean_k
    assert result.metrics["robust_accuracy_ratio"].value == pytest.approx(robust.value / clean.value)
    changed = [r["words_changed"] for r in result.tables["examples"]]
    assert result.metrics["mean_words_changed"].value == pytest.approx(np.mean(changed))
    assert [c["condition"] for c in result.conditions] == ["robust_accuracy_ratio >= 0.5"]


def test_examples_are_real_failures(sentiment, result):
    clf, _ = sentiment
    rows = result.tables["examples"]
    originals = [r["original"] for r in rows]
    adversarial = [r["adversarial"] for r in rows]
    labels = np.array([r["label"] for r in rows])
    assert np.all(clf.predict(originals) == labels)  # classified correctly before
    assert np.all(clf.predict(adversarial) != labels)  # and wrongly after: a real failure
    assert [r["pred_after"] for r in rows] == clf.predict(adversarial).tolist()
    for r in rows:
        before, after = WORDS.findall(r["original"]), WORDS.findall(r["adversarial"])
        diff = sum(a != b for a, b in zip(before, after))
        assert len(before) == len(after) and diff == r["words_changed"] >= 1
        assert diff <= math.floor(0.2 * len(before))  # within the word budget
    fig = result.figures["adversarial_examples"]
    assert fig["kind"] == "text_examples" and 1 <= len(fig["items"]) <= 10
    assert fig["items"][0] == {"original": rows[0]["original"], "perturbed": rows[0]["adversarial"],
                               "label": rows[0]["label"], "pred_before": rows[0]["pred_before"],
                               "pred_after": rows[0]["pred_after"]}


def test_texts_too_short_to_attack_are_named(sentiment, result):
    clf, test = sentiment
    correct = clf.predict(test.x) == np.asarray(test.y)
    short = sum(1 for t, ok in zip(test.x, correct) if ok and len(WORDS.findall(t)) < 5)  # 0.2 * 4 words < 1
    assert short > 0
    assert result.metrics["unattackable_share"].value == pytest.approx(short / correct.sum())
    assert result.message.startswith(f"{short} of {int(correct.sum())} correctly classified texts have fewer "
                                     "than 5 words")
    assert result.status is Status.PASS  # a note, not a warning


def test_no_change_allowed_means_no_example():
    texts = ["good", "bad", "fine", "awful"] * 10  # one word each: max_change 0.5 allows no substitution
    y = [1, 0, 1, 0] * 10
    clf = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(texts, y)
    res = TextAdversarialRobustness(max_change=0.5, synonyms="lexicon").run(wrap(clf), Dataset.from_arrays(texts, y))
    assert res.metrics["robust_accuracy"].value == res.metrics["clean_accuracy"].value == 1.0
    assert res.metrics["unattackable_share"].value == 1.0 and "adversarial_examples" not in res.figures
    assert res.message.startswith("40 of 40 correctly classified texts have fewer than 2 words")


def test_params_round_trip_and_bad_parameters():
    check = TextAdversarialRobustness(max_change=0.3, max_samples=50, synonyms="lexicon", conditions=[])
    params = yaml.safe_load(yaml.safe_dump(check.params()))
    assert params == {"max_change": 0.3, "max_samples": 50, "synonyms": "lexicon", "max_candidates": 20,
                      "queries": 2000}
    assert get("text_adversarial_robustness", **params).params() == check.params()
    with pytest.raises(ConfigError, match=r"TextAdversarialRobustness\(max_change=\.\.\.\) must be a number in"):
        TextAdversarialRobustness(max_change=0)
    with pytest.raises(ConfigError, match=r"TextAdversarialRobustness\(synonyms=\.\.\.\) must be one of"):
        TextAdversarialRobustness(synonyms=3)
    with pytest.raises(ConfigError, match=r"runs on text data; the data is tabular"):
        TextAdversarialRobustness().run(wrap(LogisticRegression().fit([[0.0], [1.0]], [0, 1])),
                                        Dataset.from_arrays(np.array([[0.0], [1.0]]), [0, 1]))
