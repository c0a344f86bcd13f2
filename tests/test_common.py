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
    "hopskipjump": ("l2", 2.0, {"queries": 200, "steps": 5}),
    "tabular-search": ("linf", 0.1, {"queries": 50}),
}


def test_every_registered_attack_has_a_case():
    # the numeric attacks (text attacks have their own contract, in tests/attacks/test_attacks_text.py)
    assert set(attacks.ATTACKS.names()) - set(attacks.names(modalities="text")) == set(ATTACK_CASES)


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

    class WrongPredictions(attacks.PGD):  # success right, predictions of something else
        def run(self, model, x, y, *, targeted=None):
            res = super().run(model, x, y)
            object.__setattr__(res, "pred_adv", np.where(res.success, res.pred_adv, (res.pred_adv + 1) % 10))
            return res

    with pytest.raises(AssertionError, match="reported predictions differ"):
        check_attack(WrongPredictions(attacks.ThreatModel("linf", 0.01, (0.0, 1.0)), steps=2), net, x, y)


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


# -- attack objects are stateless: same object, two models, two threads; pickled; unchanged ------
def _second_net(net: nn.Module) -> nn.Module:
    """Another model of the same shape: ``net`` with its weights shuffled by a fixed noise."""
    import copy

    other = copy.deepcopy(net)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(0.3 * p.std() * torch.randn(p.shape, generator=gen))
    return other.eval()


def _keyword_model(weights: dict[str, float]):
    """A text classifier: positive iff the weights of its words sum above zero."""
    from stalwart.models.function import FunctionModel

    def predict_proba(texts):
        z = np.array([sum(weights.get(w, 0.0) for w in t.lower().split()) for t in texts])
        p = 1 / (1 + np.exp(-3 * z))
        return np.stack([1 - p, p], axis=1)

    return FunctionModel(predict_proba, classes=[0, 1])


def _text_case():
    from stalwart.attacks.synonyms import LexiconSynonyms

    texts = ["a good movie", "a great film", "a fine story", "a bad movie", "an awful film", "a poor story"]
    labels = [1, 1, 1, 0, 0, 0]
    base = {"good": 1.0, "great": 1.0, "fine": 1.0, "bad": -1.0, "awful": -1.0, "poor": -1.0}
    one = _keyword_model(base)
    two = _keyword_model({**base, "decent": 0.8, "nice": 0.8, "terrible": -0.9, "lousy": -0.9, "film": 0.2})
    attack = attacks.get("word_substitution", synonyms=LexiconSynonyms(), max_change=0.5)
    return attack, (one, two), texts, labels


def _stateless_cases(image_model, tabular_model):
    """(name, attack, (model one, model two), x, y) for every registered attack."""
    net, x, y = image_model
    pipe, data = tabular_model
    text_names = set(attacks.names(modalities="text"))
    for name in attacks.ATTACKS.names():
        if name in text_names:
            yield (name, *_text_case())
            continue
        norm, eps, params = ATTACK_CASES[name]
        if name == "tabular-search":
            threat = attacks.ThreatModel.from_schema(data.schema, norm, eps)
            tx = data.numeric_x().astype(np.float32)
            other = make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=2000)).fit(tx, data.y)
            yield name, attacks.get(name, threat, schema=data.schema, seed=3, **params), (pipe, other), tx, data.y
            continue
        threat = attacks.ThreatModel(norm, eps, (0.0, 1.0))
        yield name, attacks.get(name, threat, seed=3, **params), (net, _second_net(net)), x, y


def _same_result(a, b) -> bool:
    if hasattr(a, "x_adv"):
        return (np.array_equal(a.x_adv, b.x_adv) and np.array_equal(a.success, b.success)
                and np.array_equal(a.queries, b.queries))
    return a.perturbed == b.perturbed and np.array_equal(a.success, b.success) and np.array_equal(a.queries, b.queries)


def test_one_attack_object_runs_on_two_models_from_two_threads(image_model, tabular_model):
    """Per-call state lives in each call: two threads running one object on two models get
    exactly the sequential results (adversarial examples, success, per-sample queries)."""
    from concurrent.futures import ThreadPoolExecutor

    seen = set()
    for name, attack, models, x, y in _stateless_cases(image_model, tabular_model):
        sequential = [attack.run(m, x, y) for m in models]
        assert not _same_result(*sequential), f"{name}: the two models must differ for the test to mean anything"
        for _ in range(2):
            with ThreadPoolExecutor(max_workers=2) as pool:
                futures = [pool.submit(attack.run, m, x, y) for m in models]
                together = [f.result() for f in futures]
            for seq, par in zip(sequential, together):
                assert _same_result(seq, par), f"{name}: a concurrent run differs from the sequential one"
        seen.add(name)
    assert seen == set(attacks.ATTACKS.names())


def test_attack_objects_are_unchanged_by_run_and_survive_pickle(image_model, tabular_model):
    import pickle

    for name, attack, models, x, y in _stateless_cases(image_model, tabular_model):
        before = {k: pickle.dumps(v) for k, v in vars(attack).items()}
        first = attack.run(models[0], x, y)
        after = {k: pickle.dumps(v) for k, v in vars(attack).items()}
        assert after == before, f"{name}: run changed the attack object ({set(after) ^ set(before) or 'values'})"
        shipped = pickle.loads(pickle.dumps(attack))
        assert type(shipped) is type(attack) and repr(shipped) == repr(attack)
        assert _same_result(shipped.run(models[0], x, y), first), f"{name}: the unpickled attack differs"
