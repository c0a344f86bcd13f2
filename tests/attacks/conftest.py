"""Small, seeded models shared by the attack tests."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from stalwart.models import wrap


def _train_digits_mlp() -> tuple[torch.nn.Module, np.ndarray, np.ndarray]:
    """A 64-32-10 ReLU MLP trained on sklearn digits scaled to [0, 1] (about 0.3 s on a CPU)."""
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(x))
    train, test = order[:1400], order[1400:]
    gen = torch.Generator().manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * (1.0 / np.sqrt(p.shape[-1])))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    xt, yt = torch.as_tensor(x[train]), torch.as_tensor(y[train])
    for _ in range(150):  # full-batch: deterministic and fast
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()
    net.eval()
    return net, x[test][:300], y[test][:300]


@pytest.fixture(scope="session")
def digits_mlp() -> tuple[torch.nn.Module, np.ndarray, np.ndarray]:
    """(trained module, 300 held-out inputs in [0, 1], their labels)."""
    return _train_digits_mlp()


@pytest.fixture()
def digits_model(digits_mlp):
    """A fresh wrapped model per test (query counters start at zero)."""
    return wrap(digits_mlp[0])
