"""The bracket: certified <= attacked robust accuracy at every eps, exact (no gap) on a linear
model, and a contradiction between the two sides stops the run."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from stalwart import attacks
from stalwart.certify import CROWN, bracket
from stalwart.errors import ConfigError
from stalwart.models import FunctionModel


@pytest.fixture(scope="module")
def digits_mlp():
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    xt, yt = torch.as_tensor(x[:1200]), torch.as_tensor(y[:1200])
    for _ in range(80):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()
    return net.eval(), x[1200:1320], y[1200:1320]


def test_certified_never_exceeds_attacked_and_both_fall_with_eps(digits_mlp):
    net, x, y = digits_mlp
    res = bracket(net, x, y, attacks.ThreatModel("linf", 0.01, (0.0, 1.0)), eps=[0.0, 0.01, 0.03, 0.05],
                  level="fast")
    assert res.certifier == "crown"
    cert, rob = np.array(res.certified_accuracy), np.array(res.robust_accuracy)
    assert np.all(cert <= rob) and np.all(np.diff(cert) <= 0) and np.all(np.diff(rob) <= 0)
    assert cert[0] == rob[0] > 0.85  # at eps 0 both are the clean accuracy
    assert cert[1] > 0.3 and rob[-1] < rob[0]
    for row, status in zip(res.table(), res.status):
        assert row["certified_accuracy"] == pytest.approx(np.mean(status == "certified"))
        assert row["robust_accuracy"] == pytest.approx(1 - np.mean(status == "broken"))
        assert row["gap"] == pytest.approx(row["undecided"])


def test_no_gap_on_a_linear_model_where_both_sides_are_exact():
    """On a linear model the robust accuracy at eps is known in closed form (the share of samples
    whose distance to the nearest boundary, margin / ||w_y - w_j||_2, is at least eps): CROWN is
    exact and the attacks find the boundary, so both sides equal it."""
    rng = np.random.default_rng(0)
    w = rng.normal(size=(3, 8))
    b = -w @ np.full(8, 0.5)  # boundaries through the middle of the cube
    net = torch.nn.Linear(8, 3)
    with torch.no_grad():
        net.weight.copy_(torch.as_tensor(w, dtype=torch.float32))
        net.bias.copy_(torch.as_tensor(b, dtype=torch.float32))
    x = rng.uniform(0.0, 1.0, size=(150, 8)).astype(np.float32)
    z = x.astype(np.float64) @ w.T + b
    y = z.argmax(axis=1)
    dist = np.array([min((z[i, y[i]] - z[i, j]) / np.linalg.norm(w[y[i]] - w[j]) for j in range(3) if j != y[i])
                     for i in range(len(x))])
    eps = [0.03, 0.08, 0.15]
    res = bracket(net, x, y, attacks.ThreatModel("l2", 0.08, (0.0, 1.0)), eps=eps)
    want = [float(np.mean(dist > e)) for e in eps]
    np.testing.assert_allclose(res.certified_accuracy, want, atol=1 / 150 + 1e-9)
    np.testing.assert_allclose(res.robust_accuracy, want, atol=1 / 150 + 1e-9)
    assert want[-1] < 0.6


def test_a_model_without_layers_gets_the_attacked_side_and_a_note():
    def predict(a):
        p = 1 / (1 + np.exp(-(a[:, 0] - a[:, 1]) * 8))
        return np.stack([1 - p, p], axis=1)

    model = FunctionModel(predict, task="classification", classes=[0, 1], output="probabilities")
    x = np.random.default_rng(1).uniform(0, 1, size=(60, 2)).astype(np.float32)
    y = (x[:, 0] > x[:, 1]).astype(int)
    res = bracket(model, x, y, attacks.ThreatModel("linf", 0.05, (0.0, 1.0)), level="fast")
    assert res.certifier is None and res.certified_accuracy == (0.0,)
    assert "RandomizedSmoothing" in res.notes[0]
    assert res.robust_accuracy[0] < 1.0


def test_a_sample_both_certified_and_broken_stops_the_run(digits_mlp, monkeypatch):
    net, x, y = digits_mlp
    monkeypatch.setattr(CROWN, "verify", lambda self, run, eps: np.ones(len(run["x"]), dtype=bool))
    with pytest.raises(RuntimeError, match="certified robust .* and broken .* nothing is reported"):
        bracket(net, x, y, attacks.ThreatModel("linf", 0.1, (0.0, 1.0)), level="fast")


def test_bad_threats_are_refused():
    net = torch.nn.Linear(2, 2)
    x, y = np.zeros((3, 2), dtype=np.float32), np.array([0, 1, 0])
    with pytest.raises(ConfigError, match="linf or l2"):
        bracket(net, x, y, attacks.ThreatModel("l1", 0.1, None))
    with pytest.raises(ConfigError, match="ThreatModel"):
        bracket(net, x, y, threat=0.1)
    with pytest.raises(ConfigError, match="eps"):
        bracket(net, x, y, attacks.ThreatModel("linf", 0.1, None), eps=[-0.1])
