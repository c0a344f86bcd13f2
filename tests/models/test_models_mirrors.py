"""Torch mirrors reproduce scikit-learn's probabilities to 1e-5 and give exact gradients."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, Perceptron, RidgeClassifier, SGDClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, StandardScaler
from sklearn.svm import SVC, LinearSVC
from sklearn.tree import DecisionTreeClassifier

from stalwart.models import torch_mirror, wrap


def _fit(est, x, y):
    with warnings.catch_warnings():
        # short MLP/SGD fits are on purpose: the mirror must match whatever was fitted
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(x, y)


def _assert_mirror_matches(est, x):
    model = wrap(est)
    assert model.differentiable
    expected = est.predict_proba(x) if hasattr(est, "predict_proba") else None
    got_adapter = model.predict_proba(x)
    if expected is not None:
        np.testing.assert_allclose(got_adapter, expected, atol=1e-12)
    logits = model.torch_logits(torch.as_tensor(x, dtype=torch.float32))
    assert logits.dtype == torch.float32 and logits.shape == (len(x), len(est.classes_))
    probs = torch.softmax(logits.double(), dim=1).numpy()
    np.testing.assert_allclose(probs, got_adapter, atol=1e-5, rtol=0)
    # the mirror ranks classes like sklearn wherever sklearn's top two are not a near tie
    top2 = np.sort(got_adapter, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1e-4
    np.testing.assert_array_equal(np.argmax(probs, 1)[clear], np.searchsorted(est.classes_, est.predict(x))[clear])


BINARY_AND_MULTI = ["cancer_std", "wine_std"]


@pytest.mark.parametrize("data", BINARY_AND_MULTI)
@pytest.mark.parametrize("make", [
    lambda: LogisticRegression(C=0.5, max_iter=2000),
    lambda: LinearSVC(C=0.1, max_iter=20000),
    lambda: SGDClassifier(loss="hinge", random_state=0),
    lambda: SGDClassifier(loss="log_loss", random_state=0),  # multiclass: normalised one-vs-rest sigmoids
    lambda: RidgeClassifier(alpha=1.0),
    lambda: Perceptron(random_state=0),
    lambda: LinearDiscriminantAnalysis(),
    lambda: LogisticRegression(fit_intercept=False, max_iter=2000),
], ids=["logreg", "linearsvc", "sgd_hinge", "sgd_log", "ridge", "perceptron", "lda", "logreg_noint"])
def test_linear_mirror_matches_sklearn(make, data, request):
    x, y = request.getfixturevalue(data)
    _assert_mirror_matches(_fit(make(), x, y), x)


def test_logreg_mirror_on_digits(digits):
    x, y = digits[0] / 16.0, digits[1]
    _assert_mirror_matches(_fit(LogisticRegression(max_iter=3000), x, y), x)


@pytest.mark.parametrize("activation", ["identity", "logistic", "tanh", "relu"])
@pytest.mark.parametrize("data", BINARY_AND_MULTI)
def test_mlp_mirror_matches_sklearn(activation, data, request):
    x, y = request.getfixturevalue(data)
    est = _fit(MLPClassifier((16, 8), activation=activation, max_iter=60, random_state=0), x, y)
    _assert_mirror_matches(est, x)


@pytest.mark.parametrize("pipe", [
    lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
    lambda: make_pipeline(MinMaxScaler(), LinearSVC(max_iter=20000)),
    lambda: make_pipeline(MinMaxScaler(feature_range=(-1, 1), clip=True), MLPClassifier((8,), max_iter=80, random_state=0)),
    lambda: make_pipeline(MaxAbsScaler(), SGDClassifier(loss="hinge", random_state=0)),
    lambda: Pipeline([("skip", "passthrough"), ("std", StandardScaler(with_mean=False)),
                      ("clf", LogisticRegression(max_iter=2000))]),
    lambda: make_pipeline(make_pipeline(StandardScaler(), MaxAbsScaler()), LogisticRegression(max_iter=2000)),
], ids=["std_logreg", "minmax_svc", "minmax_clip_mlp", "maxabs_sgd", "passthrough_std", "nested"])
@pytest.mark.parametrize("data", ["cancer", "wine"])
def test_pipeline_mirror_matches_sklearn(pipe, data, request):
    x, y = request.getfixturevalue(data)
    _assert_mirror_matches(_fit(pipe(), x, y), x)


def test_minmax_clip_mirror_clips_out_of_range_inputs(wine):
    x, y = wine
    est = _fit(make_pipeline(MinMaxScaler(clip=True), LogisticRegression(max_iter=2000)), x, y)
    far = x[:20] + 5 * x.std(axis=0)  # beyond the fitted range, so clipping is active
    _assert_mirror_matches(est, far)


def test_binary_logreg_gradient_is_the_coefficient(cancer):
    # z = ((x - mean) / scale) . w + b, so dz/dx = w / scale exactly
    x, y = cancer
    est = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(x, y)
    model = wrap(est)
    xt = torch.as_tensor(x[:5], dtype=torch.float32).requires_grad_(True)
    logits = model.torch_logits(xt)
    assert torch.all(logits[:, 0] == 0)
    logits[:, 1].sum().backward()
    expected = est[-1].coef_[0] / est[0].scale_
    np.testing.assert_allclose(xt.grad.numpy(), np.tile(expected, (5, 1)), rtol=1e-5)


def test_mirror_output_is_binary_zero_then_logit(cancer_std):
    x, y = cancer_std
    est = LogisticRegression(max_iter=2000).fit(x, y)
    out = torch_mirror(est)(torch.as_tensor(x[:4]))
    np.testing.assert_allclose(out[:, 1].numpy(), est.decision_function(x[:4]), rtol=1e-12)
    assert out.dtype == torch.float64 and not any(p.requires_grad for p in torch_mirror(est).parameters())


@pytest.mark.parametrize("make", [
    lambda: DecisionTreeClassifier(random_state=0),
    lambda: RandomForestClassifier(n_estimators=3, random_state=0),
    lambda: SVC(kernel="linear"),  # one-vs-one decision scores: no single linear map
    lambda: KNeighborsClassifier(),
    lambda: SGDClassifier(loss="modified_huber", random_state=0),
    lambda: make_pipeline(PCA(3), LogisticRegression()),
    lambda: make_pipeline(StandardScaler(), DecisionTreeClassifier(random_state=0)),
], ids=["tree", "forest", "svc", "knn", "modified_huber", "pca_pipeline", "scaled_tree"])
def test_no_mirror_means_black_box(make, wine_std):
    x, y = wine_std
    est = _fit(make(), x, y)
    assert torch_mirror(est) is None
    model = wrap(est)
    assert not model.differentiable
    with pytest.raises(Exception, match="black-box model: it gives no gradients"):
        model.torch_logits(torch.zeros(1, x.shape[1]))


def test_multilabel_mlp_has_no_mirror(wine_std):
    x, y = wine_std
    multilabel = np.stack([y == 0, y == 1], axis=1).astype(int)
    est = _fit(MLPClassifier((4,), max_iter=20, random_state=0), x, multilabel)
    assert torch_mirror(est) is None


def test_torch_logits_counts_queries_once(wine_std):
    x, y = wine_std
    model = wrap(LogisticRegression(max_iter=2000).fit(x, y))
    model.torch_logits(torch.as_tensor(x[:7], dtype=torch.float32))
    assert model.n_queries == 7
    model.predict_proba(x[:5])
    assert model.n_queries == 12
