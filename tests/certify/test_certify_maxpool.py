"""MaxPool2d in bound propagation: the layers reproduce the network exactly, the bounds hold on
points sampled in the ball, certified samples are never broken, and where every window's winner is
decided over the ball the network is linear there and CROWN/IBP give the closed-form radius."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from stalwart import attacks
from stalwart.certify import CROWN, IBP, margin_bounds, network_layers
from stalwart.errors import ModelError

from .test_certify_bounds import _train

POOLS = [torch.nn.MaxPool2d(2), torch.nn.MaxPool2d(3, stride=1, padding=1), torch.nn.MaxPool2d((2, 3), stride=(1, 2)),
         torch.nn.MaxPool2d(2, stride=2, dilation=2)]


def small_cnn(pool: torch.nn.Module, seed: int = 0) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    body = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3, padding=1), torch.nn.ReLU(), pool, torch.nn.Flatten())
    with torch.no_grad():
        width = body(torch.zeros(1, 1, 8, 8)).shape[1]
    return torch.nn.Sequential(*body, torch.nn.Linear(width, 4)).double().eval()


def forward(layers, x):
    z = x.reshape(len(x), -1).double()
    for i, (w, b) in enumerate(layers):
        z = z @ w.T + b
        z = z.clamp(min=0) if i < len(layers) - 1 else z
    return z


def margins(net, x, labels):
    with torch.no_grad():
        z = net(x)
    true = z.gather(1, labels[:, None]) - z
    others = torch.ones_like(z, dtype=torch.bool).scatter(1, labels[:, None], False)
    return true[others].reshape(len(x), -1)


@pytest.mark.parametrize("pool", POOLS, ids=repr)
def test_the_layers_reproduce_the_network(pool):
    net = small_cnn(pool)
    x = torch.rand(9, 1, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(forward(network_layers(net, (1, 8, 8)), x), net(x), atol=1e-10, rtol=0)
    with warnings.catch_warnings():  # TorchScript is deprecated in recent torch but still what users ship
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.script(net)
    with torch.no_grad():
        torch.testing.assert_close(forward(network_layers(scripted, (1, 8, 8)), x), net(x), atol=1e-10, rtol=0)


@pytest.mark.parametrize("pool", POOLS, ids=repr)
@pytest.mark.parametrize("norm, eps", [("linf", 0.05), ("l2", 0.2)])
def test_the_bounds_hold_on_points_sampled_in_the_ball(pool, norm, eps):
    net = small_cnn(pool, seed=1)
    layers = network_layers(net, (1, 8, 8))
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(6, 1, 8, 8, dtype=torch.float64, generator=gen)
    with torch.no_grad():
        labels = net(x).argmax(1)
    flat = x.reshape(6, -1)
    for method in ("ibp", "crown"):
        low = margin_bounds(layers, flat, labels, torch.full((6,), eps, dtype=torch.float64), norm,
                            torch.ones(64, dtype=torch.float64), None, None, method=method)
        worst = torch.full_like(low, np.inf)
        for _ in range(40):  # 40 x 100 points per input: uniform, and corners / sphere points
            d = torch.rand(100, 1, 8, 8, dtype=torch.float64, generator=gen) * 2 - 1
            if norm == "linf":
                d = eps * (d.sign() if _ % 2 else d)
            else:
                d = eps * d / d.flatten(1).norm(dim=1).reshape(-1, 1, 1, 1)
            for i in range(6):
                m = margins(net, x[i] + d, labels[i].expand(100)).min(0).values
                worst[i] = torch.minimum(worst[i], m)
        assert torch.all(low <= worst + 1e-9), (method, (low - worst).max())
        assert torch.all(low > -1e6)  # and finite: not trivially true


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_crown_is_exact_where_every_windows_winner_is_decided(norm):
    """MaxPool2d(2) -> Flatten -> Linear on inputs in [1, 2] whose windows each have one entry 3
    above the rest: within a ball of radius < 1 every ReLU of the max tournament is stable, the
    network is the linear map of the winners, and CROWN's radius is its closed form. IBP, which
    loses the correlation of ``relu(a - b) + b`` term by term, stays below it (sound, not exact)."""
    rng = np.random.default_rng(0)
    w = rng.normal(size=(4, 16))
    b = -4.5 * w.sum(axis=1) + 0.3 * rng.normal(size=4)  # the logits near a tie at the winners' mean, 4.5
    net = torch.nn.Sequential(torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(16, 4)).double().eval()
    with torch.no_grad():
        net[2].weight.copy_(torch.as_tensor(w))
        net[2].bias.copy_(torch.as_tensor(b))
    x = 1 + rng.random((60, 1, 8, 8))
    win = rng.integers(0, 4, size=(60, 16))  # the winner of each 2 x 2 window
    rows, cols = 2 * (np.arange(16) // 4) + win // 2, 2 * (np.arange(16) % 4) + win % 2
    x[np.arange(60)[:, None], 0, rows, cols] += 3.0
    pooled = x[np.arange(60)[:, None], 0, rows, cols]  # 60 x 16: what the linear layer sees
    y = np.argmax(pooled @ w.T + b, axis=1)
    want = []
    for p, yi in zip(pooled, y, strict=True):
        z = w @ p + b
        want.append(min((z[yi] - z[j]) / np.linalg.norm(w[yi] - w[j], 1 if norm == "linf" else 2)
                        for j in range(4) if j != yi))
    want = np.array(want)  # the dual norm over the winners; the losers carry no weight
    assert np.all(want < 0.9)  # inside the region where the tournament is decided
    res = CROWN(norm, max_eps=5.0, steps=40).certify(net, x, y)
    np.testing.assert_allclose(res.radius, want, rtol=1e-4, atol=1e-6)
    ibp = IBP(norm, max_eps=5.0, steps=40).certify(net, x, y).radius
    assert np.all(ibp <= want + 1e-6) and np.all(ibp > 0)


def test_certified_samples_of_a_max_pooled_cnn_are_never_broken():
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(),
                              torch.nn.Linear(36, 10))
    net = _train(net, x[:1200], y[:1200], epochs=80)
    xs, ys = x[1200:1400], y[1200:1400]
    for eps in (0.005, 0.02):
        threat = attacks.ThreatModel("linf", eps, (0.0, 1.0))
        crown = CROWN.from_threat(threat).verified(net, xs, ys, eps)
        ibp = IBP.from_threat(threat).verified(net, xs, ys, eps)
        assert np.all(crown >= ibp)
        pgd = attacks.PGD(threat, steps=40, restarts=3, seed=1).run(net, xs, ys)
        assert not np.any(crown & pgd.success), "a certified sample was broken: a bound is unsound"
        assert crown.mean() <= 1.0 - pgd.success.mean()
        assert crown.mean() > 0.2  # not vacuous


def test_unusual_max_pooling_is_refused_with_the_way_out():
    for pool in (torch.nn.MaxPool2d(2, ceil_mode=True), torch.nn.MaxPool2d(2, return_indices=True)):
        with pytest.raises(ModelError, match="MaxPool2d.*ceil_mode.*smoothing"):
            network_layers(torch.nn.Sequential(pool, torch.nn.Flatten(), torch.nn.Linear(16, 2)), (1, 8, 8))
    with pytest.raises(ModelError, match="MaxPool2d.*smoothing"):
        network_layers(torch.nn.Sequential(torch.nn.MaxPool2d(2)), (64,))
