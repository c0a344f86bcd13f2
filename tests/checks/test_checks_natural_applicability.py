"""Default perturbations that cannot apply to the data are listed as not applicable, not as errors."""

import numpy as np
import pytest
import torch
from torch import nn

import stalwart
from stalwart.checks import NaturalRobustness
from stalwart.errors import InputError


@pytest.fixture(scope="module")
def grey_images():
    full = stalwart.datasets.load("digits")
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    x, y = torch.as_tensor(full.x), torch.as_tensor(np.asarray(full.y), dtype=torch.long)
    for _ in range(30):  # a trained model: the checks decline to judge one at chance level
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    return net.eval(), full.subset(np.arange(40))  # checks wrap raw models themselves


def test_saturate_on_grey_images_is_not_applicable_when_picked_by_default(grey_images):
    net, data = grey_images
    result = NaturalRobustness(severities=[3], max_samples=40, conditions=[]).run(net, data)
    rows = result.tables["perturbations"]
    assert "saturate" not in {r["perturbation"] for r in rows}
    assert all(r.get("status", "ok") == "ok" for r in rows)
    skipped = {r["perturbation"]: r["reason"] for r in result.tables["not_applicable"]}
    assert "3-channel" in skipped["saturate"]
    assert "could not handle" not in result.message


def test_saturate_asked_for_by_name_on_grey_images_is_reported(grey_images):
    net, data = grey_images
    result = NaturalRobustness(perturbations=["saturate", "brightness"], severities=[3], max_samples=40,
                               conditions=[]).run(net, data)
    assert result.status.value == "WARN" and "3-channel" in result.message
    status = {r["perturbation"]: r["status"] for r in result.tables["perturbations"]}
    assert status == {"saturate": "error", "brightness": "ok"}
    with pytest.raises(InputError):
        stalwart.perturb.get("saturate").apply(data.x, 3, rng=0)


def test_corruption_check_skips_saturate_quietly_by_default(grey_images):
    from stalwart.checks import CorruptionRobustness

    net, data = grey_images
    result = CorruptionRobustness(severities=[3], max_samples=40, conditions=[]).run(net, data)
    assert {r["corruption"] for r in result.tables["not_applicable"]} == {"saturate"}
    assert "not_scored" not in result.tables and "could not be scored" not in result.message
