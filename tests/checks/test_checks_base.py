"""Condition judging, the Check template (ERROR / SKIP / raise), results and the registry."""

import math

import numpy as np
import pytest

from stalwart.checks import (
    Check,
    CheckResult,
    Condition,
    Measurement,
    Metric,
    SkipCheck,
    Status,
    build,
    get,
    names,
    worst_status,
)
from stalwart.data.dataset import Dataset
from stalwart.errors import ConfigError


def metrics(**values):
    return {k: Metric(k, v) for k, v in values.items()}


@pytest.mark.parametrize(("text", "value", "status"), [
    ("drop <= 0.1", 0.1, Status.PASS),
    ("drop <= 0.1", 0.1000001, Status.FAIL),
    ("drop < 0.1", 0.1, Status.FAIL),
    ("drop < 0.1", 0.0999, Status.PASS),
    ("acc >= 0.5", 0.5, Status.PASS),
    ("acc >= 0.5", 0.4999, Status.FAIL),
    ("acc > 0.5", 0.5, Status.FAIL),
    ("drop <= 0.10 warn 0.05", 0.05, Status.PASS),
    ("drop <= 0.10 warn 0.05", 0.07, Status.WARN),
    ("drop <= 0.10 warn 0.05", 0.10, Status.WARN),
    ("drop <= 0.10, warn 0.05", 0.11, Status.FAIL),
    ("acc >= 0.5 warn 0.7", 0.7, Status.PASS),
    ("acc >= 0.5 warn 0.7", 0.6, Status.WARN),
    ("acc >= 0.5 warn 0.7", 0.3, Status.FAIL),
    ("x >= -1e-3", -0.002, Status.FAIL),
])
def test_condition_boundaries(text, value, status):
    name = text.split()[0]
    got, message = Condition.parse(text).evaluate(metrics(**{name: value}))
    assert got is status
    assert name in message


def test_condition_missing_or_nan_metric_is_error():
    cond = Condition("accuracy_drop_s3", "<=", 0.1)
    status, message = cond.evaluate(metrics(other=0.0))
    assert status is Status.ERROR and "accuracy_drop_s3 was not measured" in message and "other" in message
    status, message = cond.evaluate(metrics(accuracy_drop_s3=math.nan))
    assert status is Status.ERROR and "not a finite number" in message


def test_condition_round_trips_and_rejects_bad_input():
    c = Condition("robust_accuracy_ratio", ">=", 0.5, warn=0.7, description="keeps half")
    assert Condition.from_dict(c.to_dict()) == c
    assert str(c) == "robust_accuracy_ratio >= 0.5 warn 0.7"
    assert Condition.parse(str(c), description="keeps half") == c
    with pytest.raises(ConfigError, match=r"cannot parse condition 'accuracy =< 1'"):
        Condition.parse("accuracy =< 1")
    with pytest.raises(ConfigError, match=r"Condition\(op=\.\.\.\) must be one of"):
        Condition("a", "==", 1.0)
    with pytest.raises(ConfigError, match=r"Condition\(warn=\.\.\.\) must be a level <= threshold=0.1"):
        Condition.parse("drop <= 0.1 warn 0.2")
    with pytest.raises(ConfigError, match=r"Condition\(threshold=\.\.\.\) must be a finite number"):
        Condition("a", "<=", float("inf"))
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['limit'\]"):
        Condition.from_dict({"metric": "a", "op": "<=", "threshold": 1, "limit": 2})


def test_worst_status_order():
    assert worst_status(["PASS", "WARN", "FAIL"]) is Status.FAIL
    assert worst_status([Status.FAIL, Status.ERROR]) is Status.ERROR
    assert worst_status([Status.SKIP, Status.PASS]) is Status.PASS
    assert worst_status([]) is Status.PASS


class Dummy(Check):
    name = "dummy"
    category = "stability"
    modalities = ("tabular",)
    default_conditions = ("value <= 0.5 warn 0.2",)
    headline_metric = "value"
    min_samples = 1  # the tests below run on ten rows

    def __init__(self, *, value=0.3, fail_with=None, skip=None, warnings=(), conditions=None):
        super().__init__(conditions=conditions)
        self.value, self.fail_with, self.skip, self.warnings = value, fail_with, skip, tuple(warnings)

    def _measure(self, model, data, rng):
        if self.skip:
            raise SkipCheck(self.skip)
        if self.fail_with is not None:
            raise self.fail_with
        return Measurement({"value": Metric("value", self.value, self.value - 0.1, self.value + 0.1, 10)},
                           {"rows": [{"a": np.int64(1), "b": np.float32(0.5)}]}, {}, self.warnings)


@pytest.fixture(scope="module")
def tabular():
    return Dataset.from_arrays(np.arange(20.0).reshape(10, 2), np.arange(10) % 2)


def test_check_judges_with_default_and_custom_conditions(tabular):
    res = Dummy(value=0.3).run(None, tabular)
    assert res.status is Status.WARN
    assert res.conditions == [{"condition": "value <= 0.5 warn 0.2", "status": "WARN",
                               "message": "value = 0.3 is within <= 0.5 but not <= 0.2"}]
    assert res.headline == "value = 0.300 [0.200, 0.400]"
    assert Dummy(value=0.3, conditions=["value <= 0.4"]).run(None, tabular).status is Status.PASS
    assert Dummy(value=0.9, conditions=[]).run(None, tabular).status is Status.PASS
    assert Dummy(value=0.1, warnings=["could not do X"]).run(None, tabular).status is Status.WARN


def test_exception_while_measuring_gives_error_not_crash(tabular):
    res = Dummy(fail_with=RuntimeError("boom")).run(None, tabular)
    assert res.status is Status.ERROR
    assert res.message == "the check failed: RuntimeError: boom"
    assert res.metrics == {} and not res.passed


def test_skip_and_bad_modality(tabular):
    res = Dummy(skip="not applicable here").run(None, tabular)
    assert res.status is Status.SKIP and res.message == "not applicable here" and res.passed
    images = Dataset.from_arrays(np.zeros((4, 1, 2, 2), dtype=np.float32), [0, 1, 0, 1])
    with pytest.raises(ConfigError, match=r"check 'dummy' runs on tabular data; the data is image"):
        Dummy().run(None, images)


def test_result_dict_is_plain_and_round_trips(tabular):
    res = Dummy().run(None, tabular)
    d = res.to_dict()
    assert d["status"] == "WARN" and d["tables"]["rows"] == [{"a": 1, "b": 0.5}]
    assert type(d["tables"]["rows"][0]["a"]) is int
    back = CheckResult.from_dict(d)
    assert back.to_dict() == d
    with pytest.raises(ConfigError, match=r"Dummy\(conditions=\.\.\.\) must be a list"):
        Dummy(conditions="value <= 1")


def test_registry_get_and_build():
    assert {"natural_robustness", "adversarial_robustness"} <= set(names())
    check = get("natural_robustness", severities=[5, 1, 1])
    assert check.severities == [1, 5]
    with pytest.raises(ConfigError, match=r"unknown check 'nope'"):
        get("nope")
    with pytest.raises(ConfigError, match=r"check 'natural_robustness' got unknown parameter\(s\) \['sevs'\]"):
        get("natural_robustness", sevs=[1])
    built = build({"check": "adversarial_robustness", "params": {"eps": [0.1]}, "conditions": ["auc >= 0.2"]})
    assert built.eps == [0.1] and [str(c) for c in built.conditions] == ["auc >= 0.2"]
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['param'\]"):
        build({"check": "natural_robustness", "param": {}})
