"""Fixtures shared by the check tests."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from stalwart import datasets


@pytest.fixture(scope="module")
def digits_mlp_split():
    """An MLP 64-64-10 trained on the digits split (seed 0), in eval mode, and the split's test set."""
    train, test = datasets.load_split("digits", seed=0)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    xt, yt = torch.as_tensor(train.x), torch.as_tensor(np.asarray(train.y), dtype=torch.long)
    for _ in range(150):
        opt.zero_grad()
        nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()
    return net.eval(), test
