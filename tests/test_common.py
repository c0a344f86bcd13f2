"""Every registered attack and detector meets the shared contract in :mod:`stalwart.testing`."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

import stalwart
from stalwart import attacks, perturb
from stalwart.shift import DETECTORS
from stalwart.testing import check_attack, check_detector, check_perturbation

# cheap parameters per registered attack: (norm, eps, params)
ATTACK_CASES = {
    "fgsm": ("linf", 0.1, {}),
    "pgd": ("linf", 0.1, {"steps": 10}),
    "apgd": ("linf", 0.1, {"steps": 10}),
    "apgd-ce": ("l2", 1.0, {"steps": 10}),
    "apgd-dlr": ("linf", 0.1, {"steps": 10}),
    "apgd-t": ("linf", 0.1, {"steps": 10, "targeted_classes": 2}),
    "cw": ("l2", 1.0, {"steps": 20, "binary_steps": 3}),
    "deepfool": ("l2", 1.0, {"steps": 10}),
    "square": ("linf", 0.1, {"queries": 100}),
    "hopskipjump": ("l2", 2.0, {"max_queries": 200, "steps": 5}),
    "tabular-search": ("linf", 0.1, {"queries": 50}),
}


def test_every_registered_attack_has_a_case():
    assert set(attacks.ATTACKS.names()) == set(ATTACK_CASES)


@pytest.fixture(scope="module")
def image_model():
    train, test = stalwart.datasets.load_split("digits", seed=0)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    xt, yt = torch.as_tensor(train.x), torch.as_tensor(np.asarray(train.y), dtype=torch.long)
    for _ in range(60):
        opt.zero_grad()
        nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()
    return net.eval(), test.x[:24], np.asarray(test.y)[:24]


@pytest.fixture(scope="module")
def tabular_model():
    train, test = stalwart.datasets.load_split("breast_cancer", seed=0)
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(train.x, train.y)
    return pipe, test.subset(slice(0, 24))


@pytest.mark.parametrize("name", sorted(ATTACK_CASES))
def test_attack_contract(name, image_model, tabular_model):
    norm, eps, params = ATTACK_CASES[name]
    if name == "tabular-search":
        pipe, data = tabular_model
        threat = attacks.ThreatModel.from_schema(data.schema, norm, eps)
        attack = attacks.get(name, threat, schema=data.schema, seed=3, **params)
        check_attack(attack, pipe, data.numeric_x().astype(np.float32), data.y)
        return
    net, x, y = image_model
    mutable = np.ones((1, 8, 8), dtype=bool)
    mutable[:, :2, :] = False  # the top two rows of pixels may not change
    threat = attacks.ThreatModel(norm, eps, (0.0, 1.0), mutable)
    check_attack(attacks.get(name, threat, seed=3, **params), net, x, y)


def test_check_attack_catches_a_lying_attack(image_model):
    net, x, y = image_model

    class Liar(attacks.PGD):
        def run(self, model, x, y, *, targeted=None):
            res = super().run(model, x, y)
            object.__setattr__(res, "success", np.ones_like(res.success))
            return res

    with pytest.raises(AssertionError, match="reported success differs"):
        check_attack(Liar(attacks.ThreatModel("linf", 0.01, (0.0, 1.0)), steps=2), net, x, y)


def test_every_perturbation_meets_the_contract():
    rng = np.random.default_rng(0)
    data = {
        "tabular": stalwart.datasets.load("wine").x.iloc[:30],
        "image": rng.uniform(0, 1, size=(4, 3, 16, 16)).astype(np.float32),
        "text": ["Maria didn't like the movie in Paris, it cost 12 dollars!", "The phone is great."] * 3,
    }
    for modality, x in data.items():
        for name in perturb.names(modality):
            check_perturbation(perturb.get(name), x)


def _detector_cases(image_model):
    net, x, _ = image_model
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(300, 4))
    cur = rng.normal(size=(300, 4)) + [1.0, 0, 0, 0]
    model_based = {"max_softmax", "max_logit", "energy"}
    for name in DETECTORS.names():
        cls = DETECTORS.get(name)
        if name in model_based:
            yield name, cls(net), x.reshape(len(x), 1, 8, 8), x[::-1].copy()
        elif name == "mahalanobis":
            yield name, cls(), ref, cur
        elif name in ("adwin", "ddm", "kswin", "page_hinkley"):
            stream = (rng.random(400) < np.r_[np.full(200, 0.1), np.full(200, 0.5)]).astype(float)
            yield name, cls(), None, stream
        elif name == "tabular":
            import pandas as pd
            yield name, cls(), pd.DataFrame(ref, columns=list("abcd")), pd.DataFrame(cur, columns=list("abcd"))
        else:
            yield name, cls(), ref, cur


def test_every_detector_meets_the_contract(image_model):
    seen = set()
    for name, detector, reference, current in _detector_cases(image_model):
        check_detector(detector, reference, current)
        seen.add(name)
    assert seen == set(DETECTORS.names())


def test_linear_closed_form_check_catches_a_weak_attack():
    from stalwart.testing import check_linear_closed_form, linear_boundary_distance

    rng = np.random.default_rng(0)
    w, b = rng.normal(size=6), 0.05
    x = rng.uniform(0.3, 0.7, size=(200, 6)).astype(np.float32)
    b = b - float(np.median(x @ w + b))
    net = nn.Linear(6, 2)
    with torch.no_grad():
        net.weight.copy_(torch.tensor(np.stack([np.zeros(6), w]), dtype=torch.float32))
        net.bias.copy_(torch.tensor([0.0, b], dtype=torch.float32))
    y = (x @ w + b > 0).astype(int)
    eps = float(np.median(linear_boundary_distance(x, w, b, "linf")))
    threat = attacks.ThreatModel("linf", eps, None)
    check_linear_closed_form(attacks.FGSM(threat), net, x, y, w, b)  # exact on linear models
    weak = attacks.PGD(threat, steps=1, step_size=eps / 10, random_start=False)
    with pytest.raises(AssertionError, match="missed .* samples within reach of eps"):
        check_linear_closed_form(weak, net, x, y, w, b)
