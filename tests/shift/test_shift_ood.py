"""OOD scores: closed forms, synthetic OOD on digits and breast_cancer, and the metrics."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from scipy.spatial.distance import mahalanobis as scipy_mahalanobis
from scipy.special import logsumexp
from sklearn.ensemble import RandomForestClassifier

from stalwart.datasets import load_split
from stalwart.errors import ConfigError, InputError, ModelError
from stalwart.models import wrap
from stalwart.shift.base import DETECTORS, OODDetector
from stalwart.shift.ood import (
    Energy,
    IsolationForestOOD,
    KNNDistance,
    Mahalanobis,
    MaxLogit,
    MaxSoftmax,
    evaluate_ood,
    make_ood,
    ood_metrics,
)


@pytest.fixture(scope="module")
def digits_0_to_7():
    """An MLP trained on digits 0-7 (about 1 s); digits 8 and 9 of the test split are OOD."""
    train, test = load_split("digits")
    tr = make_ood(train, "held_out_class", held_out=(8, 9))
    te = make_ood(test, "held_out_class", held_out=(8, 9))
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 64), torch.nn.ReLU(),
                              torch.nn.Linear(64, 8))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    xt, yt = torch.as_tensor(tr.x_in), torch.as_tensor(tr.y_in)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny net: threads only contend, badly so on a loaded machine
    try:
        for _ in range(200):  # full batch: deterministic
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(xt), yt).backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    net.eval()
    noise = make_ood(test, "noise", seed=0, n=300).x_out
    return wrap(net), tr, te, noise


def test_registered():
    for name, cls in [("max_softmax", MaxSoftmax), ("max_logit", MaxLogit), ("energy", Energy),
                      ("mahalanobis", Mahalanobis), ("knn_distance", KNNDistance),
                      ("isolation_forest", IsolationForestOOD)]:
        assert DETECTORS.get(name) is cls and issubclass(cls, OODDetector)


# -- metrics ---------------------------------------------------------------------------------------
def test_fpr95_hand_made():
    # 95% of 20 OOD scores 1..20 are flagged at threshold 2 (19 of them); in-distribution scores
    # 1.5 < 2 <= 2, 3: 2 of 4 flagged
    out = ood_metrics([0.0, 1.5, 2.0, 3.0], np.arange(1.0, 21.0))
    assert out["fpr95"] == 0.5
    # in-distribution positive: 95% of 4 in-distribution scores -> all 4 kept below 3.0;
    # OOD scores <= 3: 1, 2, 3 -> 3 of 20 accepted
    assert out["fpr95_id_positive"] == pytest.approx(3 / 20)
    # AUROC by counting pairs: P(out > in) + 0.5 P(tie) over 4 * 20 pairs
    s_in, s_out = np.array([0.0, 1.5, 2.0, 3.0]), np.arange(1.0, 21.0)
    pairs = (s_out[None] > s_in[:, None]).mean() + 0.5 * (s_out[None] == s_in[:, None]).mean()
    assert out["auroc"] == pytest.approx(pairs)


def test_fpr95_extremes():
    rng = np.random.default_rng(0)
    separated = ood_metrics(rng.normal(0, 1, 500), rng.normal(100, 1, 500))
    assert separated["fpr95"] == 0.0 and separated["auroc"] == 1.0 and separated["aupr"] == pytest.approx(1.0)
    same = ood_metrics(rng.normal(0, 1, 20000), rng.normal(0, 1, 20000))
    assert same["fpr95"] == pytest.approx(0.95, abs=0.01)
    assert same["fpr95_id_positive"] == pytest.approx(0.95, abs=0.01)
    assert same["auroc"] == pytest.approx(0.5, abs=0.01)
    assert same["aupr"] == pytest.approx(0.5, abs=0.01)  # precision = OOD share everywhere


# -- closed forms ----------------------------------------------------------------------------------
def test_energy_and_max_logit_closed_form():
    torch.manual_seed(1)
    lin = torch.nn.Linear(3, 4).double()
    x = np.random.default_rng(0).normal(size=(50, 3))
    with torch.no_grad():
        z = lin(torch.as_tensor(x)).numpy()
    energy = Energy(lin, temperature=2.0).fit(x).score(x)
    np.testing.assert_allclose(energy, -2.0 * logsumexp(z / 2.0, axis=1), rtol=1e-10)
    np.testing.assert_allclose(MaxLogit(lin).score(x), -z.max(axis=1), rtol=1e-10)
    p = np.exp(z - logsumexp(z, axis=1, keepdims=True))
    np.testing.assert_allclose(MaxSoftmax(lin).score(x), -p.max(axis=1), rtol=1e-10)


def test_black_box_models():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 2))
    y = (x[:, 0] > 0).astype(int)
    forest = RandomForestClassifier(n_estimators=10, random_state=0).fit(x, y)
    p = forest.predict_proba(x[:20])
    # log-probabilities stand in for logits: the score is -log max p
    np.testing.assert_allclose(MaxLogit(forest).score(x[:20]), -np.log(p.max(axis=1)))
    with pytest.raises(ModelError, match="Energy needs the model's logits, but SklearnModel"
                                         r"\[RandomForestClassifier\] gives only probabilities"):
        Energy(forest)


def test_mahalanobis_matches_scipy():
    rng = np.random.default_rng(0)
    x = np.r_[rng.normal(0, 1, (300, 3)), rng.normal(3, 1, (300, 3)) @ np.diag([1.0, 2.0, 0.5])]
    y = np.r_[np.zeros(300), np.ones(300)]
    det = Mahalanobis(reg=1e-12).fit(x, y)
    means = [x[y == c].mean(axis=0) for c in (0, 1)]
    pooled = sum(np.cov(x[y == c].T, bias=True) * 300 for c in (0, 1)) / 600
    inv = np.linalg.inv(pooled)
    query = rng.normal(1, 2, (10, 3))
    expect = [min(scipy_mahalanobis(q, m, inv) for m in means) for q in query]
    np.testing.assert_allclose(det.score(query), expect, rtol=1e-6)
    # without labels: one Gaussian; in 1-D the distance is |x - mean| / std
    one = Mahalanobis(reg=1e-12).fit(x[:, :1])
    np.testing.assert_allclose(one.score(query[:, :1]), np.abs(query[:, 0] - x[:, 0].mean()) / x[:, 0].std(),
                               rtol=1e-6)


def test_knn_distance_by_hand():
    train = np.array([[0.0], [1.0], [3.0]])
    # from 2.5: distances 0.5 (to 3), 1.5 (to 1), 2.5 (to 0)
    assert KNNDistance(k=1, normalize=None).fit(train).score([[2.5]])[0] == pytest.approx(0.5)
    assert KNNDistance(k=2, normalize=None).fit(train).score([[2.5]])[0] == pytest.approx(1.5)
    # l2: only directions count
    pts = np.random.default_rng(0).normal(size=(50, 4))
    det = KNNDistance(k=3, normalize="l2").fit(pts)
    np.testing.assert_allclose(det.score(pts[:5] * 7.0), det.score(pts[:5]), atol=1e-12)
    with pytest.raises(InputError, match=r"KNNDistance\(k=5\) needs at least k in-distribution samples; got 3"):
        KNNDistance().fit(train)


def test_threshold_and_predict():
    rng = np.random.default_rng(0)
    det = KNNDistance(k=5, normalize=None).fit(rng.normal(size=(500, 2)))
    with pytest.raises(ConfigError, match="KNNDistance.predict needs a threshold"):
        det.predict([[0.0, 0.0]])
    x_in = rng.normal(size=(2000, 2))
    det.infer_threshold(x_in, fpr=0.05)
    assert det.predict(x_in).mean() == pytest.approx(0.05, abs=0.002)
    assert det.predict(rng.normal(10, 1, (100, 2))).all()


# -- synthetic OOD on real data --------------------------------------------------------------------
def test_held_out_digits(digits_0_to_7):
    model, tr, te, _ = digits_0_to_7
    assert (model.predict(te.x_in) == te.y_in).mean() > 0.95
    # measured AUROC: MSP 0.946, MaxLogit 0.971, Energy 0.971, KNN 0.952, Mahalanobis 0.821
    for det, bound in [(MaxSoftmax(model), 0.88), (MaxLogit(model), 0.9), (Energy(model), 0.9),
                       (KNNDistance(model=model), 0.9), (Mahalanobis(model), 0.75)]:
        res = evaluate_ood(det.fit(tr.x_in, tr.y_in), te.x_in, te.x_out)
        assert res["auroc"] > bound, (type(det).__name__, res)
        assert res["n_in"] == len(te.x_in) and res["n_out"] == len(te.x_out)


def test_noise_digits(digits_0_to_7):
    model, tr, te, noise = digits_0_to_7
    # feature distances separate uniform noise completely (measured AUROC 1.0, FPR95 <= 0.002);
    # logit scores only partly: the MLP gives noise large logits (measured 0.86 for both)
    for det in (Mahalanobis(model), KNNDistance(model=model)):
        res = evaluate_ood(det.fit(tr.x_in, tr.y_in), te.x_in, noise)
        assert res["auroc"] > 0.99 and res["fpr95"] < 0.02, (type(det).__name__, res)
    for det in (MaxLogit(model), Energy(model)):
        assert evaluate_ood(det.fit(tr.x_in), te.x_in, noise)["auroc"] > 0.78


def test_mahalanobis_uses_penultimate_features(digits_0_to_7):
    model, tr, _, _ = digits_0_to_7
    det = Mahalanobis(model).fit(tr.x_in, tr.y_in)
    assert det.means_.shape == (8, 64)  # 8 classes x 64 hidden units (input of the last Linear)
    on_output = Mahalanobis(model, layer="3").fit(tr.x_in, tr.y_in)
    assert on_output.means_.shape == (8, 8)  # the output of the named module
    # an unknown name is a configuration mistake; the message lists the names there are
    with pytest.raises(ConfigError, match=r"Mahalanobis\(layer=\.\.\.\) must name a submodule of Sequential "
                                          r"\(as in model.named_modules\(\)\); got 'fc9'. Available: "
                                          r"\['0', '1', '2', '3'\]"):
        Mahalanobis(model, layer="fc9")
    with pytest.raises(ModelError, match=r"KNNDistance\(layer=\.\.\.\) needs a torch model"):
        KNNDistance(layer="fc")


def test_far_out_breast_cancer():
    train, test = load_split("breast_cancer")
    far = make_ood(test, "far", seed=0)
    x = test.x.to_numpy()
    lo, hi, sd = x.min(axis=0), x.max(axis=0), x.std(axis=0)
    new = far.x_out.to_numpy()
    assert list(far.x_out.columns) == list(test.x.columns)
    assert np.all((new >= hi + 3 * sd - 1e-9) | (new <= lo - 3 * sd + 1e-9))
    # measured AUROC: KNN 1.0, isolation forest 0.9999
    for det in (KNNDistance(), IsolationForestOOD()):
        res = evaluate_ood(det.fit(train), test, far.x_out)
        assert res["auroc"] > 0.95 and res["fpr95"] < 0.05, (type(det).__name__, res)


def test_isolation_forest_is_seeded():
    x = np.random.default_rng(0).normal(size=(200, 3))
    a = IsolationForestOOD(n_estimators=20, seed=3).fit(x).score(x[:10])
    b = IsolationForestOOD(n_estimators=20, seed=3).fit(x).score(x[:10])
    np.testing.assert_array_equal(a, b)


def test_make_ood_kinds_and_errors():
    train, _ = load_split("digits")
    noise = make_ood(train, "noise", seed=1, n=50)
    assert noise.x_out.shape == (50, 1, 8, 8) and noise.x_out.dtype == np.float32
    assert noise.x_out.min() >= 0.0 and noise.x_out.max() <= 1.0
    assert noise.x_out.std() == pytest.approx(np.sqrt(1 / 12), abs=0.01)  # uniform on [0, 1]
    np.testing.assert_array_equal(make_ood(train, "noise", seed=1, n=50).x_out, noise.x_out)
    held = make_ood(train, "held_out_class")
    assert held.held_out == (8, 9) and set(np.unique(held.y_out)) == {8, 9}
    assert len(held.x_in) + len(held.x_out) == len(train)
    with pytest.raises(ConfigError, match=r"make_ood\(kind=\.\.\.\) must be one of \['noise', 'far', 'held_out_class'\]"):
        make_ood(train, "weird")
    with pytest.raises(InputError, match="needs labels"):
        make_ood(np.zeros((5, 2)), "held_out_class")
    with pytest.raises(InputError, match=r"names labels not in the data: \[11\]"):
        make_ood(train, "held_out_class", held_out=11)
    with pytest.raises(InputError, match="must be an OODDetector"):
        evaluate_ood("knn", [[0.0]], [[1.0]])
    with pytest.raises(InputError, match=r"x must have one row per sample \(2-D or more\); got shape \(3,\)"):
        KNNDistance(k=1).fit([1.0, 2.0, 3.0])


# -- TorchScript: no forward hooks, so the graph is cut at the layer ------------------------------
class DigitNet(torch.nn.Module):
    """A small CNN whose forward mixes module calls with functions (relu, flatten): not a chain of
    children that could simply be called in order."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 8, 3, padding=1)
        self.pool = torch.nn.MaxPool2d(2)
        self.fc1 = torch.nn.Linear(8 * 4 * 4, 32)
        self.head = torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Linear(32, 10))

    def forward(self, x):
        x = self.pool(torch.relu(self.conv(x)))
        return self.head(self.fc1(torch.flatten(x, 1)))


def _save_torchscript(net, path, example=None):
    """``torch.jit.script`` (or ``trace`` on ``example``) saved with ``torch.jit.save``."""
    with warnings.catch_warnings():  # TorchScript is deprecated in torch 2.13 but still what users ship
        warnings.simplefilter("ignore", DeprecationWarning)
        module = torch.jit.script(net) if example is None else torch.jit.trace(net, example)
        torch.jit.save(module, path)


@pytest.fixture(scope="module")
def digit_net(tmp_path_factory):
    """DigitNet trained on all ten digits (full batch, deterministic), saved scripted and traced."""
    from stalwart.models import load_model

    train, test = load_split("digits")
    torch.manual_seed(0)
    net = DigitNet()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    xt, yt = torch.as_tensor(train.x), torch.as_tensor(train.y)
    for _ in range(100):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()
    net.eval()
    d = tmp_path_factory.mktemp("torchscript")
    _save_torchscript(net, d / "scripted.pt")
    _save_torchscript(net, d / "traced.pt", xt[:4])
    loaded = {kind: load_model(d / f"{kind}.pt") for kind in ("scripted", "traced")}
    return net, loaded, train, test


@pytest.mark.parametrize("kind", ["scripted", "traced"])
def test_torchscript_features_are_the_eager_activations(digit_net, kind):
    net, loaded, _, test = digit_net
    model = loaded[kind]
    assert isinstance(model.module, torch.jit.ScriptModule)
    with pytest.raises(RuntimeError, match="not supported on ScriptModules"):  # why the graph is cut instead
        model.module.fc1.register_forward_hook(lambda *a: None)
    x = test.x[:50]
    xt = torch.as_tensor(x)
    with torch.no_grad():
        conv = torch.relu(net.conv(xt))
        flat = torch.flatten(net.pool(conv), 1)
        hidden = net.fc1(flat)
    by_hand = {None: torch.relu(hidden), "head.0": torch.relu(hidden), "fc1": hidden, "pool": flat,
               "conv": net.conv(xt).detach(), "head": net(xt).detach()}
    for layer, want in by_hand.items():
        got = Mahalanobis(model, layer=layer).features(x)
        # the default is the input of the last Linear (head.1): the post-ReLU penultimate layer
        np.testing.assert_allclose(got, want.double().reshape(50, -1).numpy(), rtol=1e-6, atol=1e-6)
    before = model.n_queries
    KNNDistance(model=model, layer="fc1").features(x)
    assert model.n_queries == before + 50  # features count as queries, as predict_proba would


@pytest.mark.parametrize("kind", ["scripted", "traced"])
def test_torchscript_mahalanobis_separates_inverted_digits(digit_net, kind):
    net, loaded, train, test = digit_net
    model = loaded[kind]
    assert (model.predict(test.x) == test.y).mean() > 0.95
    inverted = 1.0 - test.x  # white digits on black -> black on white: a clear covariate shift
    half = len(test.x) // 2
    # measured (scripted = traced = eager) on inverted digits: AUROC Mahalanobis 1.0 (FPR95 0.0, on
    # the penultimate layer and on fc1), k-NN 0.994 (FPR95 0.03), where MaxSoftmax gets 0.81; on
    # two halves of the same test split 0.475-0.52 for each
    for det, bound in [(Mahalanobis(model), 0.99), (KNNDistance(model=model), 0.95),
                       (Mahalanobis(model, layer="fc1"), 0.99)]:
        det.fit(train.x, train.y)
        shifted = evaluate_ood(det, test.x, inverted)
        assert shifted["auroc"] >= bound and shifted["fpr95"] < 0.1, (type(det).__name__, shifted)
        null = evaluate_ood(det, test.x[:half], test.x[half:])
        assert abs(null["auroc"] - 0.5) < 0.08, (type(det).__name__, null)  # SE under no shift ~0.025
        # the same detector on the eager module gives the same scores
        eager = type(det)(model=net, layer=det.features.layer).fit(train.x, train.y)
        np.testing.assert_allclose(det.score(inverted[:100]), eager.score(inverted[:100]), rtol=1e-5)


class _Twice(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.act, self.fc2 = torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)
        self.gate = True

    def forward(self, x):
        h = self.act(self.fc1(x))
        if self.gate:
            h = self.act(h) * 2.0
        return self.fc2(h)


class _WeightsOnly(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = torch.nn.Linear(4, 8), torch.nn.Linear(8, 3)

    def forward(self, x):
        return torch.nn.functional.linear(self.fc1(x), self.fc2.weight, self.fc2.bias)


def test_torchscript_layers_without_one_output_say_why(digit_net, tmp_path):
    from stalwart.models import load_model

    _, loaded, _, _ = digit_net
    with pytest.raises(ConfigError, match=r"Mahalanobis\(layer=\.\.\.\) must name a submodule of DigitNet \(as in "
                                          r"model.named_modules\(\)\); got 'fc9'. Available: \['conv', 'pool', "
                                          r"'fc1', 'head', 'head.0', 'head.1'\]"):
        Mahalanobis(loaded["scripted"], layer="fc9")
    _save_torchscript(_Twice(), tmp_path / "twice.pt")
    twice = load_model(tmp_path / "twice.pt")
    with pytest.raises(ModelError, match=r"Mahalanobis\(layer='act'\): the TorchScript forward of _Twice calls "
                                         r"'act' 2 times, so it has no single output to take"):
        Mahalanobis(twice, layer="act")
    assert Mahalanobis(twice, layer="fc1").features(np.ones((3, 4), np.float32)).shape == (3, 8)
    _save_torchscript(_WeightsOnly(), tmp_path / "weights.pt")
    weights = load_model(tmp_path / "weights.pt")
    # the last Linear's weights are used by a function, the module itself is never called
    with pytest.raises(ModelError, match=r"KNNDistance\(layer='fc2'\): the TorchScript forward of _WeightsOnly "
                                         r"never calls 'fc2' as a module"):
        KNNDistance(model=weights)
    # the eager module says the same from its hooks instead of returning no rows
    with pytest.raises(ModelError, match=r"layer 'fc2' of TorchModel is never called by forward"):
        Mahalanobis(_WeightsOnly()).fit(np.ones((5, 4), np.float32))
    with pytest.raises(ModelError, match=r"layer 'act' of TorchModel is called 2 times per sample"):
        Mahalanobis(_Twice(), layer="act").fit(np.ones((5, 4), np.float32))
