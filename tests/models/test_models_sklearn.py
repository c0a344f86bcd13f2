"""SklearnModel: output methods, classes, DataFrames, regression, errors, fingerprints."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.cluster import KMeans
from sklearn.datasets import load_diabetes
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from stalwart.errors import InputError, ModelError
from stalwart.models import SklearnModel, wrap


class _MajorityByFirstFeature(ClassifierMixin, BaseEstimator):
    """A classifier with predict only (no predict_proba, no decision_function)."""

    def fit(self, x, y):
        self.classes_ = np.unique(y)
        self.n_features_in_ = np.asarray(x).shape[1]
        return self

    def predict(self, x):
        return np.where(np.asarray(x)[:, 0] > 0, self.classes_[-1], self.classes_[0])


def test_predict_proba_passes_through_with_string_classes(wine_std):
    x, y = wine_std
    names = np.array(["barolo", "grignolino", "barbera"])[y]
    est = RandomForestClassifier(n_estimators=5, random_state=0).fit(x, names)
    model = wrap(est)
    assert isinstance(model, SklearnModel) and model.output_kind == "probabilities"
    assert model.classes.tolist() == ["barbera", "barolo", "grignolino"]
    np.testing.assert_array_equal(model.predict_proba(x), est.predict_proba(x))
    np.testing.assert_array_equal(model.predict(x), est.predict(x))
    assert model.n_queries == 2 * len(x)


def test_decision_function_binary_uses_sigmoid(cancer_std):
    x, y = cancer_std
    est = LinearSVC(C=0.1, max_iter=20000).fit(x, y)
    model = wrap(est)
    assert model.output_kind == "logits"
    d = est.decision_function(x)
    expected = np.stack([1 / (1 + np.exp(d)), 1 / (1 + np.exp(-d))], axis=1)
    np.testing.assert_allclose(model.predict_proba(x), expected, atol=1e-12)
    np.testing.assert_array_equal(model.predict(x), est.predict(x))


def test_decision_function_multiclass_uses_softmax(wine_std):
    x, y = wine_std
    est = LinearSVC(C=0.1, max_iter=20000).fit(x, y)
    d = est.decision_function(x)
    expected = np.exp(d) / np.exp(d).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(wrap(est).predict_proba(x), expected, atol=1e-12)


def test_predict_only_classifier_gives_one_hot():
    x = np.array([[-1.0, 0.0], [2.0, 1.0], [0.5, 3.0]])
    model = wrap(_MajorityByFirstFeature().fit(x, ["a", "b", "a"]))
    assert model.output_kind == "labels"
    np.testing.assert_array_equal(model.predict_proba(x), [[1, 0], [0, 1], [0, 1]])
    assert model.predict(x).tolist() == ["a", "b", "b"]


def test_regression_returns_values_and_refuses_predict_proba():
    x, y = load_diabetes(return_X_y=True)
    est = Ridge(alpha=1.0).fit(x, y)
    model = wrap(est)
    assert model.task == "regression" and model.output_kind == "values" and model.classes is None
    pred = model.predict(x[:50])
    assert pred.shape == (50,)
    np.testing.assert_allclose(pred, x[:50] @ est.coef_ + est.intercept_, rtol=1e-12)
    with pytest.raises(ModelError, match=r"regression model; use predict\(\)"):
        model.predict_proba(x[:2])
    assert not model.differentiable


def test_dataframe_fitted_model_accepts_numpy_and_reordered_frames(wine):
    x, y = wine
    cols = [f"f{i}" for i in range(x.shape[1])]
    frame = pd.DataFrame(x, columns=cols)
    est = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(frame, y)
    model = wrap(est)
    expected = est.predict_proba(frame)
    # numpy in: converted to a frame with the fitted names (no sklearn feature-name warning)
    np.testing.assert_allclose(model.predict_proba(x), expected, atol=1e-12)
    shuffled = frame[cols[::-1]]
    np.testing.assert_allclose(model.predict_proba(shuffled), expected, atol=1e-12)
    with pytest.raises(InputError, match=r"missing \['f3'\], unknown \['colour'\]"):
        model.predict_proba(frame.drop(columns="f3").assign(colour=1.0))


def test_wrong_shapes_and_empty_inputs(wine_std):
    x, y = wine_std
    model = wrap(LogisticRegression(max_iter=2000).fit(x, y))
    with pytest.raises(InputError, match="x has 12 features but the model expects 13"):
        model.predict_proba(x[:, :12])
    with pytest.raises(InputError, match=r"x must be 2-D .*reshape\(1, -1\)"):
        model.predict_proba(x[0])
    with pytest.raises(InputError, match="x is empty"):
        model.predict_proba(np.empty((0, 13)))
    with pytest.raises(InputError, match="x is empty"):
        model.predict(pd.DataFrame(columns=[str(i) for i in range(13)]))


def test_unfitted_and_unknown_objects_are_model_errors():
    with pytest.raises(ModelError, match=r"LogisticRegression is not fitted; call \.fit\(X, y\)"):
        wrap(LogisticRegression())
    with pytest.raises(ModelError, match="classes has 2 labels but the estimator knows 3"):
        wrap(LogisticRegression().fit(np.eye(3), [0, 1, 2]), classes=["a", "b"])


def test_nan_is_left_to_the_model_and_clusterers_need_a_task(cancer):
    # validation of values is the caller's job; a model that handles NaN must receive it
    x, y = cancer
    est = HistGradientBoostingClassifier(max_iter=5, random_state=0).fit(x, y)
    holes = x[:3].copy()
    holes[:, 0] = np.nan
    np.testing.assert_allclose(wrap(est).predict_proba(holes), est.predict_proba(holes))
    with pytest.raises(ModelError, match="pass task='classification' or task='regression'"):
        wrap(KMeans(n_clusters=2, n_init=1, random_state=0).fit(x))


def test_batches_and_query_counting(cancer_std):
    x, y = cancer_std
    est = LogisticRegression(max_iter=2000).fit(x, y)
    model = wrap(est, batch_size=100)
    np.testing.assert_allclose(model.predict_proba(x), est.predict_proba(x), atol=1e-12)
    assert model.n_queries == len(x)


def test_text_pipeline_takes_raw_strings():
    docs = ["good movie", "great film", "bad movie", "awful film", "good great", "bad awful"]
    est = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(docs, [1, 1, 0, 0, 1, 0])
    model = wrap(est)
    assert model.n_features is None
    np.testing.assert_allclose(model.predict_proba(["good film", "awful movie"]),
                               est.predict_proba(["good film", "awful movie"]))


def test_fingerprint_is_stable_and_sensitive(wine_std):
    x, y = wine_std
    a = RandomForestClassifier(n_estimators=4, random_state=0).fit(x, y)
    b = RandomForestClassifier(n_estimators=4, random_state=0).fit(x, y)
    c = RandomForestClassifier(n_estimators=4, random_state=1).fit(x, y)
    fa = wrap(a).fingerprint()
    assert fa == wrap(b).fingerprint() == wrap(pickle.loads(pickle.dumps(a))).fingerprint()
    assert fa != wrap(c).fingerprint()
    lr = LogisticRegression(max_iter=2000).fit(x, y)
    f_lr = wrap(lr).fingerprint()
    lr.coef_[0, 0] += 1e-9  # any change to a fitted attribute changes the identity
    assert wrap(lr).fingerprint() != f_lr
