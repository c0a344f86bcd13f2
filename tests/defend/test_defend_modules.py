"""Trainable copies and fresh weights, for eager and TorchScript networks (what `stalwart harden` loads)."""

from __future__ import annotations

import io
import math
import warnings

import pytest
import torch

from stalwart.defend._modules import reinitialise, trainable_copy
from stalwart.errors import ModelError


def _scripted(net: torch.nn.Module) -> torch.jit.ScriptModule:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(net), buf)
        buf.seek(0)
        return torch.jit.load(buf)


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU(), torch.nn.Flatten(),
                               torch.nn.Linear(8 * 6 * 6, 10))


class _Wrapper(torch.nn.Module):
    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@pytest.mark.parametrize("wrap", [False, True])
def test_a_copy_of_a_loaded_torchscript_network_trains_and_leaves_the_original(wrap):
    original = _scripted(_net())
    net = _Wrapper(original) if wrap else original
    twin = trainable_copy(net)
    before = {k: v.clone() for k, v in original.state_dict().items()}
    opt = torch.optim.SGD(twin.parameters(), lr=0.1)  # refuses non-leaf parameters
    torch.nn.functional.cross_entropy(twin(torch.randn(4, 1, 8, 8)), torch.tensor([0, 1, 2, 3])).backward()
    opt.step()
    assert all(torch.equal(before[k], v) for k, v in original.state_dict().items())
    assert not torch.equal(twin.state_dict()[("net." if wrap else "") + "4.weight"], before["4.weight"])


@pytest.mark.parametrize("script", [False, True])
def test_fresh_weights_follow_pytorchs_default_initialisation(script):
    net = _net()
    with torch.no_grad():  # "trained": far from any initialisation
        for p in net.parameters():
            p.fill_(3.0)
        net[1].running_mean.fill_(2.0)
        net[1].running_var.fill_(5.0)
    net = _scripted(net) if script else net
    reinitialise(net, seed=1)
    state = net.state_dict()
    for key, fan_in in (("0", 1 * 3 * 3), ("4", 8 * 6 * 6)):
        bound = 1 / math.sqrt(fan_in)  # Kaiming-uniform with a = sqrt(5): +-sqrt(6 / (6 fan_in))
        w, b = state[f"{key}.weight"], state[f"{key}.bias"]
        assert float(w.abs().max()) <= bound and float(w.abs().max()) > 0.8 * bound
        assert abs(float(w.std()) - bound / math.sqrt(3)) < 0.15 * bound  # uniform's std
        assert float(b.abs().max()) <= bound
    assert torch.equal(state["1.weight"], torch.ones(8)) and torch.equal(state["1.bias"], torch.zeros(8))
    assert torch.equal(state["1.running_mean"], torch.zeros(8)) and torch.equal(state["1.running_var"], torch.ones(8))


def test_same_seed_same_weights_for_eager_and_torchscript():
    a, b = _net(), _scripted(_net())
    reinitialise(a, seed=3)
    reinitialise(b, seed=3)
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k


class _Scale(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gain = torch.nn.Parameter(torch.ones(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gain


@pytest.mark.parametrize("script", [False, True])
def test_a_layer_it_cannot_reinitialise_is_named(script):
    net = torch.nn.Sequential(torch.nn.Linear(3, 3), _Scale())
    net = _scripted(net) if script else net
    with pytest.raises(ModelError, match=r"layer '1' \(_Scale\).*reset_parameters"):
        reinitialise(net)
