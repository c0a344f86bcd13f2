"""OODDetection: the protocol, the metrics against sklearn and Wilson, and which detectors run."""

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from stalwart import datasets
from stalwart._stats import wilson_interval
from stalwart.checks.base import Status
from stalwart.checks.ood import OODDetection, auroc_interval
from stalwart.data.dataset import Dataset
from stalwart.errors import ConfigError, InputError, ModelError
from stalwart.models import load_model, wrap


@pytest.fixture(scope="module")
def cancer():
    train, _ = datasets.load_split("breast_cancer", seed=0)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(train.x, train.y)
    return wrap(model), train


@pytest.fixture(scope="module")
def synthetic(cancer):
    model, train = cancer
    return OODDetection().run(model, train, seed=0)


def test_default_detectors_protocol_and_far_rows_are_found(cancer, synthetic):
    _, train = cancer
    rows = {r["detector"]: r for r in synthetic.tables["detectors"]}
    # a scaler + logistic pipeline has a torch mirror, so energy runs; tables get an isolation forest
    assert sorted(rows) == sorted(["max_softmax", "energy", "knn_distance", "isolation_forest"])
    proto = synthetic.tables["protocol"][0]
    assert proto["fit_rows"] + proto["in_distribution_rows"] == len(train)  # max_samples >= n: all rows
    assert proto["ood_rows"] == proto["in_distribution_rows"] and proto["ood_source"] == "synthetic (far)"
    # rows 3-4 standard deviations beyond every column's range: distances separate them perfectly
    assert rows["knn_distance"]["auroc"] == 1.0 and rows["knn_distance"]["fpr95"] == 0.0
    assert synthetic.metrics["best_auroc"].value == max(r["auroc"] for r in rows.values())
    assert synthetic.status is Status.PASS


def test_fpr95_carries_a_wilson_interval_over_the_in_distribution_rows(synthetic):
    n_in = synthetic.tables["protocol"][0]["in_distribution_rows"]
    for r in synthetic.tables["detectors"]:
        k = round(r["fpr95"] * n_in)
        assert (r["fpr95_low"], r["fpr95_high"]) == pytest.approx(wilson_interval(k, n_in))
        m = synthetic.metrics[f"{r['detector']}_fpr95"]
        assert m.n == n_in and m.value == r["fpr95"]
        assert r["auroc_low"] <= r["auroc"] <= r["auroc_high"]


def test_figures_show_the_best_detector_and_every_auroc(synthetic):
    hist = synthetic.figures["best_detector_scores"]
    assert hist["kind"] == "histogram" and [s["name"] for s in hist["series"]] == ["in-distribution",
                                                                                   "out-of-distribution"]
    bars = synthetic.figures["auroc_by_detector"]
    assert bars["values"] == [r["auroc"] for r in synthetic.tables["detectors"]]


def test_auroc_interval_matches_the_rank_statistic():
    rng = np.random.default_rng(0)
    s_in, s_out = rng.normal(size=300), rng.normal(1.0, size=200)
    auc = roc_auc_score(np.r_[np.zeros(300), np.ones(200)], np.r_[s_in, s_out])
    lo, hi = auroc_interval(s_in, s_out, seed=0)
    # closed form: AUC = Phi(1 / sqrt(2)) = 0.760 for unit normals one sd apart
    assert lo < auc < hi and lo < 0.760 < hi and 0.05 < hi - lo < 0.12
    assert auroc_interval(np.zeros(5), np.ones(5)) == (1.0, 1.0)
    ties = auroc_interval(np.zeros(50), np.zeros(50))  # all tied: exactly 0.5 in every resample
    assert ties == pytest.approx((0.5, 0.5))


def _blobs(rng, n, loc=0.0):
    x = rng.normal(loc, 1.0, size=(n, 4))
    return x, (x[:, 0] + x[:, 1] > 2 * loc).astype(int)


def test_real_ood_data_decides_the_verdict():
    rng = np.random.default_rng(1)
    x, y = _blobs(rng, 600)
    model = wrap(LogisticRegression().fit(x, y))
    data = Dataset.from_arrays(x, y)
    same = OODDetection(ood_data=_blobs(rng, 400)[0]).run(model, data, seed=0)
    assert same.metrics["best_auroc"].value < 0.65 and same.status is Status.FAIL  # nothing to find
    far = OODDetection(ood_data=pd.DataFrame(_blobs(rng, 400, loc=6.0)[0], columns=data.x.columns)).run(
        model, data, seed=0)
    assert far.metrics["best_auroc"].value > 0.99 and far.status is Status.PASS
    assert far.tables["protocol"][0]["ood_rows"] == 300  # as many as the held-out half


def test_detectors_that_cannot_run_are_listed_with_the_reason():
    rng = np.random.default_rng(2)
    x, y = _blobs(rng, 300)
    tree = wrap(DecisionTreeClassifier(max_depth=3, random_state=0).fit(x, y))
    res = OODDetection(detectors=["energy", "knn_distance"], max_samples=200).run(tree, Dataset.from_arrays(x, y))
    rows = {r["detector"]: r for r in res.tables["detectors"]}
    assert rows["energy"]["status"] == "not run" and "logits" in rows["energy"]["reason"]
    assert rows["knn_distance"]["status"] == "ok"
    assert res.status in (Status.WARN, Status.FAIL) and "energy not run" in res.message
    only = OODDetection(detectors=["energy"]).run(tree, Dataset.from_arrays(x, y))
    assert only.status is Status.ERROR and "no OOD detector could run" in only.message
    # without a model only the input-space detectors apply
    res = OODDetection(max_samples=200).run(None, Dataset.from_arrays(x, y))
    assert sorted(r["detector"] for r in res.tables["detectors"]) == ["isolation_forest", "knn_distance"]


def test_images_get_noise_and_mahalanobis_on_penultimate_features():
    data = datasets.load("digits", split="train", seed=0).sample(400, seed=0)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    xt, yt = torch.as_tensor(data.x), torch.as_tensor(data.y).long()
    for _ in range(60):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()
    res = OODDetection(max_samples=300).run(wrap(net.eval()), data, seed=0)
    rows = {r["detector"]: r for r in res.tables["detectors"]}
    assert sorted(rows) == sorted(["max_softmax", "energy", "knn_distance", "mahalanobis"])
    assert res.tables["protocol"][0]["ood_source"] == "synthetic (noise)"
    assert rows["mahalanobis"]["auroc"] > 0.95  # uniform noise is nothing like a digit


def test_categorical_tables_are_skipped_and_bad_parameters_name_themselves():
    df = pd.DataFrame({"a": np.arange(40.0), "c": ["x", "y"] * 20})  # 40 rows: above the checks' minimum
    res = OODDetection().run(None, Dataset.from_arrays(df))
    assert res.status is Status.SKIP and "categorical" in res.message
    with pytest.raises(ConfigError, match=r"unknown detector\(s\) \['odin'\]"):
        OODDetection(detectors=["odin"])
    with pytest.raises(ConfigError, match=r"OODDetection\(ood_kind=...\) must be one of"):
        OODDetection(ood_kind="held_out")
    with pytest.raises(ConfigError, match=r"OODDetection\(max_samples=...\)"):
        OODDetection(max_samples=2)
    with pytest.raises(ConfigError, match=r"OODDetection\(ood_data=...\)"):
        OODDetection(ood_data=42)
    x = np.zeros((10, 3))
    with pytest.raises(InputError, match=r"ood_data has columns \['x0', 'x1'\] but the data has"):
        OODDetection(ood_data=np.ones((5, 2))).run(None, Dataset.from_arrays(x))


# -- layer=: the feature space of mahalanobis and knn_distance, TorchScript included ----------------
class _DigitMLP(torch.nn.Module):
    """Flatten, hidden Linear, ReLU (a function, not a module), output Linear."""

    def __init__(self):
        super().__init__()
        self.hidden = torch.nn.Linear(64, 32)
        self.out = torch.nn.Linear(32, 10)

    def forward(self, x):
        return self.out(torch.relu(self.hidden(torch.flatten(x, 1))))


class _SharedActivation(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.act, self.fc2 = torch.nn.Linear(64, 16), torch.nn.ReLU(), torch.nn.Linear(16, 10)

    def forward(self, x):
        return self.fc2(self.act(self.act(self.fc1(torch.flatten(x, 1)))))


def _torchscript(net, path, example=None):
    with warnings.catch_warnings():  # TorchScript is deprecated in torch 2.13 but still what users ship
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(net) if example is None else torch.jit.trace(net, example), path)
    return load_model(path)


@pytest.fixture(scope="module")
def digit_mlp(tmp_path_factory):
    """_DigitMLP trained on the digits training split; eager, scripted and traced; inverted test digits."""
    train, test = datasets.load_split("digits", seed=0)
    torch.manual_seed(0)
    net = _DigitMLP()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    xt, yt = torch.as_tensor(train.x), torch.as_tensor(train.y)
    for _ in range(100):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()
    net.eval()
    d = tmp_path_factory.mktemp("mlp")
    models = {"eager": wrap(net), "scripted": _torchscript(net, d / "s.pt"),
              "traced": _torchscript(net, d / "t.pt", xt[:2])}
    return models, test, 1.0 - test.x


@pytest.mark.parametrize("layer", [None, "hidden"])
def test_layer_runs_mahalanobis_and_knn_on_torchscript_as_on_eager(digit_mlp, layer):
    models, test, inverted = digit_mlp
    results = {kind: OODDetection(detectors=["mahalanobis", "knn_distance"], ood_data=inverted, layer=layer,
                                  max_samples=400).run(m, test, seed=0) for kind, m in models.items()}
    eager = results["eager"]
    assert eager.params["layer"] == layer
    # inverted digits are far from every digit in the hidden layer: measured AUROC 1.0 for
    # Mahalanobis (FPR95 0) on either layer, 0.972 / 0.999 for k-NN on the penultimate layer /
    # on hidden; the same to the last digit for the eager, scripted and traced model
    assert eager.metrics["mahalanobis_auroc"].value >= 0.99
    assert eager.metrics["knn_distance_auroc"].value >= 0.95
    assert eager.metrics["mahalanobis_fpr95"].value <= 0.05
    for kind in ("scripted", "traced"):
        res = results[kind]
        assert [r["status"] for r in res.tables["detectors"]] == ["ok", "ok"], res.tables["detectors"]
        for key in ("mahalanobis_auroc", "knn_distance_auroc", "mahalanobis_fpr95", "knn_distance_fpr95"):
            assert res.metrics[key].value == pytest.approx(eager.metrics[key].value, abs=1e-9), (kind, key)
        assert res.status is Status.PASS


def test_torchscript_gets_the_feature_detectors_by_default(digit_mlp):
    models, test, inverted = digit_mlp
    res = OODDetection(ood_data=inverted, max_samples=400).run(models["scripted"], test, seed=0)
    rows = {r["detector"]: r for r in res.tables["detectors"]}
    # before layers could be cut from TorchScript graphs, both feature detectors were "not run"
    assert sorted(rows) == sorted(["max_softmax", "energy", "knn_distance", "mahalanobis"])
    assert all(r["status"] == "ok" for r in rows.values())
    assert rows["mahalanobis"]["auroc"] >= 0.99 and res.tables["protocol"][0]["best_detector"] == "mahalanobis"
    # the features are what finds this shift: the logits are *more* confident on inverted digits
    # (measured AUROC max_softmax 0.38, energy 0.13)
    assert rows["max_softmax"]["auroc"] < 0.6 and rows["energy"]["auroc"] < 0.6


def test_a_layer_that_cannot_be_used_is_an_error_before_measuring(digit_mlp, cancer, tmp_path):
    models, test, inverted = digit_mlp
    with pytest.raises(ConfigError, match=r"must name a submodule of _DigitMLP \(as in model.named_modules\(\)\); "
                                          r"got 'fc9'. Available: \['hidden', 'out'\]"):
        OODDetection(layer="fc9", ood_data=inverted).run(models["traced"], test)
    model, train = cancer
    with pytest.raises(ConfigError, match=r"OODDetection\(layer='hidden'\) picks a layer of a torch model; the "
                                          r"model is SklearnModel"):
        OODDetection(layer="hidden").run(model, train)
    with pytest.raises(ConfigError, match=r"sets the feature space of \['knn_distance', 'mahalanobis'\], but "
                                          r"detectors=\['energy'\] runs neither"):
        OODDetection(layer="hidden", detectors=["energy"])
    with pytest.raises(ConfigError, match=r"OODDetection\(layer=...\) must be the name of a submodule"):
        OODDetection(layer=3)
    shared = _torchscript(_SharedActivation(), tmp_path / "shared.pt")
    with pytest.raises(ModelError, match=r"the TorchScript forward of _SharedActivation calls 'act' 2 times"):
        OODDetection(layer="act", ood_data=inverted).run(shared, test)
