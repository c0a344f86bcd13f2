"""Test-session settings shared by every test module."""

import numpy as np
import pytest
import torch
from torch import nn

import stalwart

# pytest-xdist runs one worker per core; torch's own intra-op threads on top oversubscribe the CPU
# and make small tensor ops 10-40x slower on a 2-core machine
torch.set_num_threads(1)


@pytest.fixture()
def linear_problem():
    """``make(n, d, seed) -> (net, x, y, dist)``: a two-class linear net whose linf distance from each
    sample to the boundary is known in closed form, ``|margin| / ||w||_1``."""

    def make(n=48, d=8, seed=0):
        rng = np.random.default_rng(seed)
        w = rng.normal(size=d)
        x = rng.uniform(0.3, 0.7, size=(n, d)).astype(np.float32)
        z = x @ w - np.median(x @ w)
        net = nn.Linear(d, 2)
        with torch.no_grad():
            net.weight.copy_(torch.tensor(np.stack([np.zeros(d), w]), dtype=torch.float32))
            net.bias.copy_(torch.tensor([0.0, -np.median(x @ w)], dtype=torch.float32))
        return net, x, (z > 0).astype(int), np.abs(z) / np.abs(w).sum()

    return make


@pytest.fixture(scope="module")
def digits_logreg():
    """A logistic regression on 8x8 digits scaled to [0, 1] (white-box through its torch mirror), 24 test rows."""
    from sklearn.linear_model import LogisticRegression

    train, test = stalwart.datasets.load_split("digits", seed=0)
    xtr = np.asarray(train.x, dtype=np.float32).reshape(len(train.y), -1)
    xte = np.asarray(test.x, dtype=np.float32).reshape(len(test.y), -1)
    model = LogisticRegression(max_iter=300).fit(xtr, np.asarray(train.y))
    return model, xte[:24], np.asarray(test.y)[:24]
