"""Bound propagation against closed forms (linear models), exact margins at eps 0, and attacks:
a certified sample is never broken, so certified accuracy never exceeds robust accuracy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier

from stalwart import attacks, certify
from stalwart.certify import CROWN, IBP, margin_bounds, network_layers
from stalwart.errors import ConfigError, InputError, ModelError
from stalwart.models import FunctionModel

torch.manual_seed(0)


def linear(w: np.ndarray, b: np.ndarray) -> torch.nn.Linear:
    net = torch.nn.Linear(w.shape[1], w.shape[0]).double()
    with torch.no_grad():
        net.weight.copy_(torch.as_tensor(w))
        net.bias.copy_(torch.as_tensor(b))
    return net


def closed_form_radius(w, b, x, y, norm, scale=None):
    """min over j != y of margin_j / ||(w_y - w_j) * scale||_dual (dual of linf is l1)."""
    out = []
    for xi, yi in zip(x, y):
        z = w @ xi + b
        r = np.inf
        for j in range(len(b)):
            if j == yi:
                continue
            d = w[yi] - w[j]
            d = d if scale is None else d * scale
            r = min(r, (z[yi] - z[j]) / np.linalg.norm(d, 1 if norm == "linf" else 2))
        out.append(max(r, 0.0))
    return np.array(out)


@pytest.fixture(scope="module")
def lin():
    rng = np.random.default_rng(0)
    w, b = rng.normal(size=(4, 6)), rng.normal(size=4)
    x = rng.normal(size=(40, 6))
    y = np.argmax(x @ w.T + b, axis=1)  # labels = predictions: every radius is positive
    return w, b, x, y


@pytest.mark.parametrize("cls", [CROWN, IBP])
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_exact_on_a_linear_model(lin, cls, norm):
    w, b, x, y = lin
    res = cls(norm, max_eps=20.0, steps=40).certify(linear(w, b), x, y)
    np.testing.assert_allclose(res.radius, closed_form_radius(w, b, x, y, norm), rtol=1e-4, atol=1e-6)
    assert not res.abstained.any()


def test_a_wrong_prediction_has_radius_zero(lin):
    w, b, x, y = lin
    wrong = (y + 1) % 4
    res = CROWN("linf", max_eps=20.0).certify(linear(w, b), x, wrong)
    assert np.all(res.radius == 0) and res.abstained.all() and res.certified_accuracy() == 0.0


def test_scikit_learn_logistic_regression_through_its_mirror():
    x, y = load_digits(return_X_y=True)
    x = x / 16.0
    clf = LogisticRegression(max_iter=300).fit(x[:1000], y[:1000])
    xt, yt = x[1000:1060], y[1000:1060]
    res = CROWN("l2", max_eps=50.0, steps=40).certify(clf, xt, yt)
    correct = clf.predict(xt) == yt
    want = closed_form_radius(clf.coef_, clf.intercept_, xt, yt, "l2")
    np.testing.assert_allclose(res.radius[correct], want[correct], rtol=1e-5, atol=1e-6)
    assert np.all(res.radius[~correct] == 0)


def test_immutable_features_and_eps_in_units_of_each_range(lin):
    w, b, x, y = lin
    mutable = np.array([True, True, False, True, False, True])
    res = CROWN("linf", mutable=mutable, max_eps=50.0, steps=40).certify(linear(w, b), x, y)
    # (a margin counts as certified above 1e-6, so radii sit up to 1e-6 / ||d|| below the exact ones)
    np.testing.assert_allclose(res.radius, closed_form_radius(w, b, x, y, "linf", mutable.astype(float)), rtol=1e-4)
    hi = np.array([1.0, 2.0, 5.0, 10.0, 1.0, 3.0])
    lo = -hi * 20
    res = CROWN("l2", bounds=(lo, hi * 20), unit="range", max_eps=5.0, steps=40).certify(linear(w, b), x, y)
    np.testing.assert_allclose(res.radius, closed_form_radius(w, b, x, y, "l2", hi * 40), rtol=1e-4)


def test_the_box_is_used_exactly_for_linf_on_a_linear_model():
    """Near the edge of [0, 1] the ball is cut by the box; the radius is then the exact one (the
    worst point of a linear margin over a box is its clipped corner), found by brute force."""
    rng = np.random.default_rng(1)
    w, b = rng.normal(size=(2, 5)), np.zeros(2)
    x = rng.uniform(0.0, 0.15, size=(20, 5))
    y = np.argmax(x @ w.T + b, axis=1)
    res = CROWN("linf", bounds=(0.0, 1.0), max_eps=1.0, steps=40).certify(linear(w, b), x, y)

    def exact(xi, yi):
        d = w[yi] - w[1 - yi]
        lo, hi = 0.0, 1.0
        for _ in range(60):
            mid = (lo + hi) / 2
            worst = np.clip(xi - mid * np.sign(d), 0, 1)
            lo, hi = (mid, hi) if d @ worst > 0 else (lo, mid)
        return lo
    want = np.array([exact(xi, yi) for xi, yi in zip(x, y)])
    np.testing.assert_allclose(res.radius, want, rtol=1e-4, atol=1e-6)
    assert np.any(want > closed_form_radius(w, b, x, y, "linf") + 1e-4)  # the box mattered


# -- networks -----------------------------------------------------------------------------------------
def _train(net, x, y, epochs=60):
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    xt, yt = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y)
    for _ in range(epochs):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()
    return net.eval()


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    return (x / 16.0).astype(np.float32), y


@pytest.fixture(scope="module")
def mlp(digits):
    x, y = digits
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 32), torch.nn.ReLU(),
                              torch.nn.Linear(32, 10))
    return _train(net, x[:1200], y[:1200])


@pytest.fixture(scope="module")
def cnn(digits):
    x, y = digits
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                              torch.nn.AvgPool2d(2), torch.nn.Flatten(), torch.nn.Linear(36, 10))
    return _train(net, x[:1200].reshape(-1, 1, 8, 8), y[:1200], epochs=80)


def test_the_layers_reproduce_the_network(mlp, cnn, digits):
    x, _ = digits
    for net, xs in ((mlp, x[1200:1250]), (cnn, x[1200:1250].reshape(-1, 1, 8, 8))):
        layers = network_layers(net, xs.shape[1:])
        z = torch.as_tensor(xs.reshape(len(xs), -1), dtype=torch.float64)
        for i, (w, b) in enumerate(layers):
            z = z @ w.T + b
            z = z.clamp(min=0) if i < len(layers) - 1 else z
        with torch.no_grad():
            np.testing.assert_allclose(z.numpy(), net(torch.as_tensor(xs)).double().numpy(), atol=1e-4)


def test_at_eps_zero_the_bounds_are_the_margins(mlp, digits):
    x, y = digits
    xs = torch.as_tensor(x[1200:1230], dtype=torch.float64)
    layers = network_layers(mlp, (64,))
    labels = torch.as_tensor(y[1200:1230])
    low = margin_bounds(layers, xs, labels, torch.zeros(30, dtype=torch.float64), "linf", torch.ones(64), None, None)
    with torch.no_grad():
        z = mlp(xs.float()).double()
    true = z.gather(1, labels[:, None]) - z
    others = torch.ones_like(z, dtype=torch.bool).scatter(1, labels[:, None], False)
    np.testing.assert_allclose(low.numpy(), true[others].reshape(30, 9).numpy(), atol=1e-4)


@pytest.mark.parametrize("which", ["mlp", "cnn"])
@pytest.mark.parametrize("eps", [0.005, 0.02])
def test_certified_samples_are_never_broken_and_crown_beats_ibp(which, eps, request, digits):
    net = request.getfixturevalue(which)
    x, y = digits
    xs, ys = x[1200:1400], y[1200:1400]
    if which == "cnn":
        xs = xs.reshape(-1, 1, 8, 8)
    threat = attacks.ThreatModel("linf", eps, (0.0, 1.0))
    crown = CROWN.from_threat(threat).verified(net, xs, ys, eps)
    ibp = IBP.from_threat(threat).verified(net, xs, ys, eps)
    assert np.all(crown >= ibp)  # never looser
    pgd = attacks.PGD(threat, steps=40, restarts=3, seed=1).run(net, xs, ys)
    assert not np.any(crown & pgd.success), "a certified sample was broken: a bound is unsound"
    robust = 1.0 - pgd.success.mean()
    assert crown.mean() <= robust
    assert crown.mean() > 0.2  # not vacuous at these eps


def test_crown_is_tighter_than_ibp_on_a_deeper_network(mlp, digits):
    x, y = digits
    xs, ys = x[1200:1300], y[1200:1300]
    r_crown = CROWN("linf", bounds=(0, 1), max_eps=0.2).certify(mlp, xs, ys).radius
    r_ibp = IBP("linf", bounds=(0, 1), max_eps=0.2).certify(mlp, xs, ys).radius
    assert np.all(r_crown >= r_ibp - 1e-5)
    assert r_crown.mean() > 1.3 * r_ibp.mean()


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_scikit_learn_relu_mlp(digits):
    x, y = digits
    clf = MLPClassifier((16,), max_iter=300, random_state=0).fit(x[:1000], y[:1000])
    xs, ys = x[1000:1100], y[1000:1100]
    threat = attacks.ThreatModel("l2", 0.1, (0.0, 1.0))
    ok = CROWN.from_threat(threat).verified(clf, xs, ys, 0.1)
    broken = attacks.PGD(threat, steps=40, restarts=2).run(clf, xs, ys).success
    assert ok.any() and not np.any(ok & broken)


def test_registered_and_bad_input_is_refused_with_the_way_out(mlp, digits):
    x, y = digits
    assert {"crown", "ibp", "smoothing"} <= set(certify.names())
    with pytest.raises(ModelError, match="Tanh.*smoothing"):
        CROWN().certify(torch.nn.Sequential(torch.nn.Linear(64, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2)), x[:5])
    black = FunctionModel(lambda a: np.stack([a[:, 0], 1 - a[:, 0]], axis=1), task="classification",
                          classes=[0, 1], output="probabilities")
    with pytest.raises(ModelError, match="only predictions.*RandomizedSmoothing"):
        CROWN().certify(black, x[:5, :2])
    bn = torch.nn.Sequential(torch.nn.Linear(64, 8), torch.nn.BatchNorm1d(8), torch.nn.Linear(8, 2)).train()
    with pytest.raises(ModelError, match="eval"):
        network_layers(bn, (64,))  # (stalwart.wrap puts a module in eval mode itself)
    with pytest.raises(ConfigError, match="norm"):
        CROWN("l1")
    with pytest.raises(ConfigError, match="max_eps"):
        CROWN(max_eps=0)
    with pytest.raises(ConfigError, match="finite bounds"):
        CROWN(unit="range")
    with pytest.raises(ConfigError, match="eps"):
        CROWN().verified(mlp, x[:5], y[:5], -0.1)
    with pytest.raises(InputError, match="outside"):
        CROWN(bounds=(0.0, 0.5)).certify(mlp, x[:5], y[:5])
    with pytest.raises(InputError, match="Linear cannot take samples of shape"):
        CROWN().certify(mlp, x[:5, :10], y[:5])


class _Custom(torch.nn.Module):
    """Its own forward: conv, relu, view(x.size(0), -1), linear."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3)
        self.fc = torch.nn.Linear(144, 10)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).view(x.size(0), -1))


class _Residual(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(64, 64)

    def forward(self, x):
        return x + self.fc(x)


class _MaxPooled(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                                        torch.nn.Flatten(), torch.nn.Linear(36, 10))

    def forward(self, x):
        return self.body(x)


def test_a_module_with_its_own_forward_is_read_from_its_graph():
    torch.manual_seed(0)
    net = _Custom().eval()
    x = torch.rand(6, 1, 8, 8)
    layers = network_layers(net, (1, 8, 8))
    z = x.reshape(6, -1).double()
    for i, (w, b) in enumerate(layers):
        z = z @ w.T + b
        z = z.clamp(min=0) if i < len(layers) - 1 else z
    with torch.no_grad():
        np.testing.assert_allclose(z.numpy(), net(x).double().numpy(), atol=1e-5)
    with pytest.raises(ModelError, match="not a chain of layers.*skip connection.*smoothing"):
        network_layers(_Residual(), (64,))
    # a module with its own forward around a max-pooled body is read through it, exactly
    pooled = _MaxPooled().eval()
    z = x.reshape(6, -1).double()
    layers = network_layers(pooled, (1, 8, 8))
    for i, (w, b) in enumerate(layers):
        z = z @ w.T + b
        z = z.clamp(min=0) if i < len(layers) - 1 else z
    with torch.no_grad():
        np.testing.assert_allclose(z.numpy(), pooled(x).double().numpy(), atol=1e-5)
