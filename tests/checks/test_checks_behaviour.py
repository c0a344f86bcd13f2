"""BehaviouralTests: CheckList INV / DIR / MFT as one check, on a keyword model whose failures are known."""

import numpy as np
import pytest

from stalwart import datasets
from stalwart._stats import wilson_interval
from stalwart.checks.base import Status
from stalwart.checks.behaviour import BehaviouralTests
from stalwart.errors import ConfigError
from stalwart.models import wrap
from stalwart.suite import Suite

POSITIVE = ("love", "great", "excellent", "wonderful", "amazing", "good", "fantastic")


def keyword_model(texts):
    s = np.array([any(w in t.lower() for w in POSITIVE) for t in texts], dtype=float)
    return np.stack([1 - s, s], axis=1)


@pytest.fixture(scope="module")
def data():
    return datasets.load("sentiment")


@pytest.fixture(scope="module")
def model():
    return wrap(keyword_model, classes=[0, 1])


DIRECTIONAL = [{"phrase": "It was great.", "expect": "not_increase", "class": 1},
               {"phrase": "It was awful.", "expect": "not_increase", "class": 1}]
MFT = [{"template": "The {thing} was {adj}.", "fills": {"thing": ["film", "meal", "hotel"],
                                                        "adj": ["superb", "great"]}, "label": 1}]


@pytest.fixture(scope="module")
def result(model, data):
    check = BehaviouralTests(perturbations=["case_change", "keyboard_typos", "name_swap"],
                             directional=DIRECTIONAL, minimum_functionality=MFT)
    return check.run(model, data, seed=0)


def test_failure_rates_match_what_the_model_does(result, data):
    m = result.metrics
    # the model lower-cases: case changes never flip it
    assert m["inv_case_change"].value == 0.0 and m["inv_case_change"].n > 0
    assert m["inv_keyboard_typos"].value > 0
    # "It was great." makes every sentence positive: it fails exactly on the ones not already positive
    n_not_pos = int((keyword_model(list(data.x))[:, 1] == 0).sum())
    assert m["dir_1"].n == len(data) and m["dir_1"].value == pytest.approx(n_not_pos / len(data))
    assert (m["dir_1"].low, m["dir_1"].high) == pytest.approx(wilson_interval(n_not_pos, len(data)))
    # "awful" is no keyword: the probability never moves
    assert m["dir_2"].value == 0.0
    # MFT: "superb" is not a keyword, "great" is: 3 of 6 sentences fail
    assert m["mft_1"].n == 6 and m["mft_1"].value == pytest.approx(0.5)
    assert m["worst_failure_rate"].value == max(v.value for k, v in m.items() if k != "worst_failure_rate")
    assert result.headline_metric == "worst_failure_rate"
    assert [c["condition"] for c in result.conditions] == ["worst_failure_rate <= 0.2 warn 0.1"]
    assert result.status is Status.FAIL


def test_tests_without_cases_are_listed_not_scored(result):
    rows = {r["test"]: r for r in result.tables["tests"]}
    assert rows["inv_name_swap"]["status"] == "no cases" and rows["inv_name_swap"]["failure_rate"] is None
    assert "inv_name_swap" not in result.metrics
    assert rows["mft_1"]["kind"] == "MFT" and rows["mft_1"]["failures"] == 3


def test_failure_examples_are_real(result, model):
    items = result.figures["failures"]["items"]
    assert 0 < len(items) <= 10
    assert {i["test"] for i in items} >= {"inv_keyboard_typos", "dir_1", "mft_1"}
    for i in items:
        before, after = model.predict([i["original"], i["perturbed"]])
        assert (before, after) == (i["pred_before"], i["pred_after"])
        if i["test"].startswith("inv"):
            assert before != after
        elif i["test"] == "mft_1":
            assert after != i["label"] == 1 and "superb" in i["original"]
        else:
            assert i["perturbed"].endswith(" It was great.") and (before, after) == (0, 1)


def test_default_runs_every_text_perturbation(model, data):
    from stalwart import perturb

    res = BehaviouralTests(max_samples=60).run(model, data, seed=1)
    assert {r["test"] for r in res.tables["tests"]} == {f"inv_{n}" for n in perturb.names("text")}


def test_bad_parameters():
    with pytest.raises(ConfigError, match=r"names unknown perturbation\(s\) \['gaussian_noise'\]; known \(modality='text'\)"):
        BehaviouralTests(perturbations=["gaussian_noise"])
    with pytest.raises(ConfigError, match=r"directional=\.\.\.\)\[0\] needs 'phrase'"):
        BehaviouralTests(directional=[{"expect": "not_increase"}])
    with pytest.raises(ConfigError, match=r"directional=\.\.\.\)\[0\]\['expect'\] must be 'not_increase' or"):
        BehaviouralTests(directional=[{"phrase": "x", "expect": "up"}])
    with pytest.raises(ConfigError, match=r"minimum_functionality=\.\.\.\)\[0\]: Template fills lack slot"):
        BehaviouralTests(minimum_functionality=[{"template": "A {b} c", "fills": {"x": ["y"]}, "label": 1}])
    with pytest.raises(ConfigError, match=r"BehaviouralTests\(severity=\.\.\.\) must be an integer in 1\.\.5"):
        BehaviouralTests(severity=0)
    with pytest.raises(ConfigError, match=r"has no test to run"):
        BehaviouralTests(perturbations=[])
    with pytest.raises(ConfigError, match=r"runs on text data; the data is tabular"):
        BehaviouralTests().run(wrap(lambda a: np.tile([0.5, 0.5], (len(a), 1)), classes=[0, 1]),
                               datasets.load("breast_cancer"))


def test_yaml_round_trip():
    suite = Suite([BehaviouralTests(perturbations=["char_swap"], severity=2, directional=DIRECTIONAL[:1],
                                    minimum_functionality=MFT, conditions=["dir_1 <= 0.3"])], name="b")
    back = Suite.from_yaml(suite.to_yaml())
    assert back.to_dict() == suite.to_dict()
    check = back.checks[1]  # after the clean-performance gate every suite opens with
    assert check.directional[0]["class"] == 1 and check.minimum_functionality[0]["fills"]["adj"] == ["superb", "great"]
    assert [str(c) for c in check.conditions] == ["dir_1 <= 0.3"]
