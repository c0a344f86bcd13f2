"""FunctionModel: what a plain callable returns decides how it is read."""

from __future__ import annotations

import numpy as np
import pytest

from stalwart.errors import ConfigError, ModelError
from stalwart.models import FunctionModel, wrap

X = np.array([[0.0, 1.0], [2.0, -1.0], [-3.0, 0.5]])


def test_probabilities_pass_through():
    def proba(x):
        p = 1 / (1 + np.exp(-x[:, 0]))
        return np.stack([1 - p, p], axis=1)

    model = wrap(proba)
    assert isinstance(model, FunctionModel)
    np.testing.assert_allclose(model.predict_proba(X), proba(X))
    assert model.output_kind == "probabilities" and model.classes.tolist() == [0, 1]


def test_logits_are_softmaxed():
    model = wrap(lambda x: x @ np.array([[1.0, -1.0, 0.0], [0.0, 2.0, 1.0]]))
    z = X @ np.array([[1.0, -1.0, 0.0], [0.0, 2.0, 1.0]])
    expected = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    np.testing.assert_allclose(model.predict_proba(X), expected, atol=1e-12)
    assert model.output_kind == "logits"


def test_single_column_probability_and_logit():
    p = wrap(lambda x: 1 / (1 + np.exp(-x[:, :1]))).predict_proba(X)
    z = wrap(lambda x: 10 * x[:, :1]).predict_proba(X)
    s = 1 / (1 + np.exp(-X[:, 0]))
    np.testing.assert_allclose(p, np.stack([1 - s, s], 1))
    s10 = 1 / (1 + np.exp(-10 * X[:, 0]))
    np.testing.assert_allclose(z, np.stack([1 - s10, s10], 1))


def test_labels_become_one_hot_and_need_classes():
    model = wrap(lambda x: np.where(x[:, 0] > 0, "yes", "no"), classes=["no", "yes"])
    np.testing.assert_array_equal(model.predict_proba(X), [[1, 0], [0, 1], [1, 0]])
    assert model.output_kind == "labels" and model.predict(X).tolist() == ["no", "yes", "no"]
    with pytest.raises(ModelError, match=r"returns labels.*pass classes=\[\.\.\.\]"):
        wrap(lambda x: (x[:, 0] > 0).astype(int)).predict_proba(X)
    with pytest.raises(ModelError, match=r"labels not in classes: \['maybe'\]"):
        wrap(lambda x: np.array(["maybe"] * len(x)), classes=["no", "yes"]).predict(X)


def test_regression_and_query_counting():
    model = wrap(lambda x: x.sum(axis=1), task="regression", batch_size=2)
    np.testing.assert_allclose(model.predict(X), [1.0, 1.0, -2.5])
    assert model.n_queries == 3 and model.output_kind == "values"


def test_bad_outputs_and_parameters():
    with pytest.raises(ModelError, match="returned 1 outputs for 3 inputs"):
        wrap(lambda x: np.ones((1, 2))).predict_proba(X)
    with pytest.raises(ModelError, match="returned 3 scores per sample but classes has 2"):
        wrap(lambda x: np.ones((len(x), 3)) / 3, classes=["a", "b"]).predict_proba(X)
    with pytest.raises(ConfigError, match=r"FunctionModel\(task=\.\.\.\) must be one of"):
        FunctionModel(lambda x: x, task="ranking")


def test_fingerprint_depends_on_code():
    a = wrap(lambda x: x * 2.0)
    b = wrap(lambda x: x * 3.0)
    assert a.fingerprint() != b.fingerprint()
