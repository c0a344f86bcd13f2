"""Randomized input transforms and EOT: the averaged logits by hand, the transforms' contracts,
and the literature's lesson — a randomized defence looks more robust to an attack that follows
one draw's gradient than to one that averages over draws (Athalye et al., 2018)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from stalwart import attacks
from stalwart.defend import EOT, RandomizedModel, RandomNoise, RandomResizePad
from stalwart.errors import ConfigError, InputError, ModelError

TRANSFORMS = [RandomResizePad(1), RandomNoise(0.2)]


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    return (x / 16.0).astype(np.float32).reshape(-1, 1, 8, 8), y


@pytest.fixture(scope="module")
def net(digits):
    """A digits MLP on 1 x 8 x 8 images trained under the random transforms it is defended with."""
    x, y = digits
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    draws = RandomizedModel(net, TRANSFORMS, eot=1, seed=5)
    xt, yt = torch.as_tensor(x[:1200]), torch.as_tensor(y[:1200])
    for _ in range(150):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(draws.transform(xt)), yt).backward()
        opt.step()
    return net.eval()


def expected_accuracy(net, x, y, draws=16):
    """Accuracy of the deployed defence (one draw per call), averaged over fresh draws."""
    judge = RandomizedModel(net, TRANSFORMS, eot=1, seed=99)
    return float(np.mean([np.mean(judge.predict(x) == y) for _ in range(draws)]))


def test_eot_reaches_lower_robust_accuracy_than_one_draw_per_gradient(digits, net):
    x, y = digits
    xs, ys = x[1200:1400], y[1200:1400]
    clean = expected_accuracy(net, xs, ys)
    assert clean >= 0.7
    threat = attacks.ThreatModel("linf", 0.15, (0.0, 1.0))
    plain, adaptive = [], []
    for seed in (0, 1):
        defended = RandomizedModel(net, TRANSFORMS, eot=8, seed=seed)
        one = attacks.PGD(threat, steps=10, seed=seed).run(defended.non_adaptive(), xs, ys)
        eot = attacks.PGD(threat, steps=10, seed=seed).run(defended, xs, ys)
        # eight draws per gradient (fewer steps where it stops early), beyond the clean verdict's draws
        verdict = defended.verdict_draws * len(ys)
        assert eot.queries.sum() - verdict >= 8 * (one.queries.sum() - verdict) / 2
        plain.append(expected_accuracy(net, one.x_adv, ys))
        adaptive.append(expected_accuracy(net, eot.x_adv, ys))
    # the plain attack leaves the defence looking robust; EOT takes at least 5 more points, at each seed
    assert all(a <= p - 0.05 for a, p in zip(adaptive, plain, strict=True)), (plain, adaptive)
    assert np.mean(plain) <= clean  # and both do attack


def test_torch_logits_average_eot_draws_by_hand():
    net = torch.nn.Linear(4, 3)
    x = torch.rand(5, 4)
    defended = RandomizedModel(net, RandomNoise(0.3), eot=4, seed=7, bounds=(-5.0, 5.0))
    got = defended.torch_logits(x)
    gen = torch.Generator().manual_seed(7)
    want = torch.stack([net((x + 0.3 * torch.randn(x.shape, generator=gen)).clamp(-5, 5)) for _ in range(4)]).mean(0)
    torch.testing.assert_close(got, want)
    assert defended.n_queries == 20
    # the gradient is the average of the draws' gradients (a linear net: the same for every draw)
    xg = x.clone().requires_grad_(True)
    defended.torch_logits(xg)[:, 0].sum().backward()
    torch.testing.assert_close(xg.grad, net.weight[0].detach().expand(5, 4))
    # predictions are the defence as deployed: one draw per call, so two calls differ
    a, b = defended.predict_proba(x.numpy()), defended.predict_proba(x.numpy())
    assert not np.allclose(a, b)
    assert defended.non_adaptive().eot == 1 and defended.name.endswith("random_noise")


def test_the_eot_wrapper_averages_any_random_network():
    class Noisy(torch.nn.Module):  # a network with its own test-time noise
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(3, 2)

        def forward(self, x):
            return self.lin(x + torch.randn_like(x))

    net = Noisy().eval()
    x = torch.rand(4, 3)
    torch.manual_seed(3)
    got = EOT(net, draws=6).torch_logits(x)
    torch.manual_seed(3)
    want = torch.stack([net(x) for _ in range(6)]).mean(0)
    torch.testing.assert_close(got, want)
    # averaging shrinks the draw-to-draw spread by about sqrt(6)
    with torch.no_grad():
        spread_one = torch.stack([net(x) for _ in range(200)]).std(0).mean()
        spread_eot = torch.stack([EOT(net, draws=6).torch_logits(x) for _ in range(200)]).std(0).mean()
    assert 0.3 < float(spread_eot / spread_one) < 0.55


def test_random_resize_pad_stays_in_bounds_and_draws_per_image():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(64, 3, 10, 10, requires_grad=True)
    out = RandomResizePad(3)(x, (0.0, 1.0), gen)
    assert out.shape == x.shape and float(out.detach().min()) >= 0 and float(out.detach().max()) <= 1
    # images shrunk by c pixels leave c rows and c columns of padding (the lower bound); the sizes vary per image
    padded_rows = (out.detach() == 0).all(dim=(1, 3)).sum(dim=1)
    assert len(set(padded_rows.tolist())) >= 3 and int(padded_rows.max()) <= 3
    out.sum().backward()  # differentiable in x
    assert float(x.grad.abs().sum()) > 0
    with pytest.raises(InputError, match="N x C x H x W"):
        RandomResizePad(2)(torch.rand(3, 64), (0.0, 1.0), gen)
    with pytest.raises(InputError, match="larger"):
        RandomResizePad(4)(torch.rand(3, 1, 4, 4), (0.0, 1.0), gen)


def test_bad_parameters_say_how_to_fix_them():
    net = torch.nn.Linear(4, 3)
    with pytest.raises(ConfigError, match="sigma"):
        RandomNoise(0.0)
    with pytest.raises(ConfigError, match="max_shrink"):
        RandomResizePad(0)
    with pytest.raises(ConfigError, match="transforms"):
        RandomizedModel(net, "noise")
    with pytest.raises(ConfigError, match="eot"):
        RandomizedModel(net, RandomNoise(), eot=0)
    with pytest.raises(ConfigError, match="bounds"):
        RandomizedModel(net, RandomNoise(), bounds=(1.0, 0.0))
    with pytest.raises(ConfigError, match="draws"):
        EOT(net, draws=0)
    with pytest.raises(ConfigError, match="verdict_draws"):
        RandomizedModel(net, RandomNoise(), verdict_draws=2000)
    from sklearn.tree import DecisionTreeClassifier

    tree = DecisionTreeClassifier().fit(np.random.default_rng(0).random((20, 4)), [0, 1] * 10)
    with pytest.raises(ModelError, match="has none"):
        EOT(tree)
