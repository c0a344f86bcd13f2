"""Defensive distillation looks robust to an attack on its probabilities and is not: attacked on
its logits it is about as breakable as the undefended teacher."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from stalwart import attacks
from stalwart.defend import DistilledModel, distill
from stalwart.errors import ConfigError, ModelError


@pytest.fixture(scope="module")
def teacher_and_data():
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(80):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(torch.as_tensor(x[:1200])), torch.as_tensor(y[:1200])).backward()
        opt.step()
    return net.eval(), x, y


def test_distillation_masks_gradients_but_not_robustness(teacher_and_data):
    teacher, x, y = teacher_and_data
    res = distill(teacher, x[:1200], y[:1200], temperature=100, epochs=50, lr=1e-2, batch_size=64)
    student = res.model
    assert isinstance(student, DistilledModel) and len(res.history) == 100
    xs, ys = x[1300:1500], y[1300:1500]
    assert (student.predict(xs) == ys).mean() >= 0.85
    threat = attacks.ThreatModel("linf", 0.1, (0.0, 1.0))
    ce = attacks.PGD(threat, steps=20, random_start=False)  # follows the saturated softmax: no gradient
    margin = attacks.PGD(threat, steps=20, random_start=False, loss="margin")  # on logits: not saturated
    plain = ce.run(student.non_adaptive(), xs, ys).robust_accuracy
    adaptive = margin.run(student, xs, ys).robust_accuracy
    undefended = margin.run(teacher, xs, ys).robust_accuracy
    # measured here: plain 0.905, adaptive 0.50, undefended 0.375
    assert plain >= adaptive + 0.2, (plain, adaptive)  # the illusion
    assert adaptive <= undefended + 0.15, (adaptive, undefended)  # little real gain


def test_bad_input(teacher_and_data):
    teacher, x, _ = teacher_and_data
    with pytest.raises(ModelError, match="torch module"):
        distill(object(), x[:10], np.zeros(10, dtype=int))
    with pytest.raises(ConfigError, match="temperature"):
        distill(teacher, x[:10], np.zeros(10, dtype=int), temperature=0)
