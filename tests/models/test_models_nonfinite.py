"""Non-finite model outputs are a ModelError in every adapter, never argmax'd into class 0.

``np.argmax`` of a row of NaN is 0, so without the check a model that cannot answer would be
reported as predicting the first class (and be "right" whenever that is the label).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

from stalwart import Dataset, wrap
from stalwart.checks import NaturalRobustness
from stalwart.errors import InputError, ModelError
from stalwart.models.base import check_finite_output
from stalwart.suite import Suite

X = np.array([[0.5, 1.0], [np.nan, 2.0], [-1.0, 0.0], [3.0, np.nan], [1.0, 1.0]])
BAD_ROWS = [1, 3]


def _proba(x):
    x = np.asarray(x, dtype=float)
    p = 1 / (1 + np.exp(-(x[:, 0] - x[:, 1])))  # NaN wherever an input is NaN
    return np.stack([1 - p, p], axis=1)


def _assert_refused(call, rows=BAD_ROWS, n=5):
    with pytest.raises(ModelError) as err:
        call()
    text = str(err.value)
    assert f"for {len(rows)} of {n} input(s)" in text and f"first rows: {rows}" in text, text


def test_check_finite_output_names_the_bad_rows():
    scores = np.ones((6, 3))
    scores[2, 1] = np.nan
    scores[5, 0] = np.inf
    with pytest.raises(ModelError, match=r"2 of 6 input\(s\) \(first rows: \[2, 5\]\)"):
        check_finite_output(scores, "m")
    ok = np.ones((4, 2))
    assert check_finite_output(ok, "m") is ok
    labels = np.array(["a", "b"], dtype=object)  # labels are not scores: nothing to check
    assert check_finite_output(labels, "m") is labels


@pytest.mark.parametrize("kind", ["probabilities", "logits", "one column"])
def test_callable_returning_nan_is_a_model_error(kind):
    if kind == "probabilities":
        fn = _proba
    elif kind == "logits":
        def fn(x):
            return np.log(_proba(x))
    else:
        def fn(x):
            return _proba(x)[:, 1:]
    _assert_refused(lambda: wrap(fn).predict(X))
    _assert_refused(lambda: wrap(fn).predict_proba(X))
    # the rows without NaN are answered (a fresh wrapper: see the stickiness test below)
    finite = np.delete(X, BAD_ROWS, axis=0)
    np.testing.assert_allclose(wrap(fn).predict_proba(finite), _proba(finite), atol=1e-12)


@pytest.mark.parametrize("columns", [2, 1])
def test_a_refused_nan_batch_does_not_change_how_later_outputs_are_read(columns):
    def fn(x):
        return _proba(x)[:, 2 - columns:]
    finite = np.delete(X, BAD_ROWS, axis=0)
    model = wrap(fn)
    with pytest.raises(ModelError):
        model.predict(X)
    np.testing.assert_allclose(model.predict_proba(finite), _proba(finite), atol=1e-12)
    assert model.predict(finite).tolist() == np.argmax(_proba(finite), axis=1).tolist()


def test_callable_returning_infinite_logits_is_a_model_error():
    def fn(x):
        out = np.zeros((len(x), 2))
        out[1, 0] = np.inf
        return out
    with warnings.catch_warnings():  # numpy warns while softmaxing inf - inf before the check refuses it
        warnings.simplefilter("ignore", RuntimeWarning)
        _assert_refused(lambda: wrap(fn).predict(np.zeros((3, 2))), rows=[1], n=3)


def test_callable_regressor_returning_nan_is_a_model_error():
    model = wrap(lambda x: np.asarray(x, dtype=float).sum(axis=1), task="regression")
    _assert_refused(lambda: model.predict(X))
    np.testing.assert_allclose(model.predict(X[[0, 2]]), [1.5, -1.0])


class _Net(torch.nn.Module):
    """A linear classifier whose log turns negative first inputs into NaN logits."""

    def forward(self, x):
        z = torch.log(x[:, :1])
        return torch.cat([z, -z], dim=1)


def test_torch_module_returning_nan_is_a_model_error():
    model = wrap(_Net())
    x = np.array([[1.0, 0.0], [-1.0, 0.0], [2.0, 0.0], [-0.5, 0.0]], dtype=np.float32)
    _assert_refused(lambda: model.predict(x), rows=[1, 3], n=4)
    _assert_refused(lambda: model.predict_proba(x), rows=[1, 3], n=4)
    _assert_refused(lambda: model.scores_tensor(torch.as_tensor(x)), rows=[1, 3], n=4)
    ok = x[[0, 2]]
    z = np.log(ok[:, 0])
    expected = np.exp(np.stack([z, -z], 1)) / np.exp(np.stack([z, -z], 1)).sum(1, keepdims=True)
    np.testing.assert_allclose(model.predict_proba(ok), expected, rtol=1e-5)


class _NanClassifier(ClassifierMixin, BaseEstimator):
    """An estimator that answers NaN for rows whose first feature is negative."""

    def fit(self, x, y):
        self.classes_ = np.unique(y)
        self.n_features_in_ = np.asarray(x).shape[1]
        return self

    def predict_proba(self, x):
        x = np.asarray(x, dtype=float)
        p = np.where(x[:, 0] < 0, np.nan, 1 / (1 + np.exp(-x[:, 1])))
        return np.stack([1 - p, p], axis=1)

    def predict(self, x):
        return self.classes_[np.argmax(self.predict_proba(x), axis=1)]


class _NanRegressor(RegressorMixin, BaseEstimator):
    def fit(self, x, y):
        self.n_features_in_ = np.asarray(x).shape[1]
        return self

    def predict(self, x):
        x = np.asarray(x, dtype=float)
        return np.where(x[:, 0] < 0, np.nan, 2 * x[:, 1])


def test_sklearn_estimators_returning_nan_are_model_errors():
    x = np.array([[1.0, 0.0], [-1.0, 3.0], [1.0, -2.0], [1.0, 1.0]])
    clf = wrap(_NanClassifier().fit(x, [0, 1, 0, 1]))
    assert np.argmax([np.nan, np.nan]) == 0  # what the check prevents: class 0 for "no answer"
    _assert_refused(lambda: clf.predict(x), rows=[1], n=4)
    _assert_refused(lambda: clf.predict_proba(x), rows=[1], n=4)
    assert clf.predict(x[[0, 2, 3]]).tolist() == [0, 0, 1]
    reg = wrap(_NanRegressor().fit(x, [0.0, 1.0, 2.0, 3.0]))
    _assert_refused(lambda: reg.predict(x), rows=[1], n=4)
    np.testing.assert_allclose(reg.predict(x[[0, 2, 3]]), [0.0, -4.0, 2.0])


@pytest.fixture(scope="module")
def onnx_lr(tmp_path_factory):
    """A LogisticRegression (no imputer) exported to ONNX, and held-out breast-cancer rows."""
    from skl2onnx import to_onnx

    x, y = load_breast_cancer(return_X_y=True)
    x = x.astype(np.float32)
    order = np.random.default_rng(0).permutation(len(x))
    train, test = order[:400], order[400:]
    lr = LogisticRegression(max_iter=10000).fit(x[train], y[train])
    onx = to_onnx(lr, x[:1], options={"zipmap": False})
    path = tmp_path_factory.mktemp("onnx") / "lr.onnx"
    path.write_bytes(onx.SerializeToString())
    return path, lr, x[test], y[test]


def test_onnx_model_fed_nan_is_a_model_error(onnx_lr):
    import onnxruntime as ort

    path, lr, x, _ = onnx_lr
    holes = x[:10].copy()
    holes[[2, 7], 4] = np.nan
    session = ort.InferenceSession(str(path))
    raw = session.run(None, {session.get_inputs()[0].name: holes})[1]
    assert np.isnan(raw[[2, 7]]).all() and np.isfinite(np.delete(raw, [2, 7], axis=0)).all()  # the graph's own output
    model = wrap(path)
    _assert_refused(lambda: model.predict(holes), rows=[2, 7], n=10)
    _assert_refused(lambda: model.predict_proba(holes), rows=[2, 7], n=10)
    # complete rows: the ONNX graph agrees with scikit-learn
    np.testing.assert_array_equal(model.predict(x[:50]), lr.predict(x[:50]))


def test_natural_check_reports_missing_values_on_onnx_as_an_error_row(onnx_lr):
    path, lr, x, y = onnx_lr
    data = Dataset.from_arrays(x, y)
    result = NaturalRobustness(perturbations=["missing_values", "rounding"], severities=(1, 3),
                               column_sensitivity=False).run(path, data, seed=0)
    rows = {(r["perturbation"], r["severity"]): r for r in result.tables["perturbations"]}
    # the error text sits on the row or, once per perturbation, in an "errors" table
    errors = {e["perturbation"]: e["error"] for e in result.tables.get("errors", [])}
    for sev in (1, 3):
        row = rows[("missing_values", sev)]
        assert row["status"] == "error" and row["accuracy"] is None and row["drop"] is None
        assert "NaN or infinite outputs" in (row.get("error") or errors["missing_values"])
        assert rows[("rounding", sev)]["status"] == "ok" and rows[("rounding", sev)]["accuracy"] is not None
    assert result.status.value != "PASS" and "could not handle 1 perturbation(s): missing_values" in result.message
    # the headline drop is measured on the perturbation that worked, not on a NaN-as-class-0 cell
    worst_ok = max(r["drop"] for r in rows.values() if r["status"] == "ok")
    assert result.metrics["accuracy_drop_s3"].value == pytest.approx(worst_ok)


def test_suite_refuses_nan_data_for_onnx_model_up_front(onnx_lr):
    path, _, x, y = onnx_lr
    holes = x.copy()
    holes[5, 0] = np.nan
    with pytest.raises(InputError, match=r"missing values in columns \['x0'\] \(1 row\(s\), first: \[5\]\)"):
        Suite([]).run(path, Dataset.from_arrays(holes, y))
