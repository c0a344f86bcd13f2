"""`stalwart harden`: a TorchScript model trained against attacks, written atomically with its
before/after numbers; bad input exits 2 and writes nothing."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from typer.testing import CliRunner

from stalwart.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("harden")
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(60):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(torch.as_tensor(x[:1000])), torch.as_tensor(y[:1000])).backward()
        opt.step()
    with warnings.catch_warnings():  # TorchScript is deprecated in torch 2.13 but still what users ship
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(net.eval()), d / "mlp.pt")
    np.savez(d / "digits.npz", x=x[:1000], y=y[:1000])
    return d


@pytest.mark.slow
def test_harden_raises_robust_accuracy_and_writes_model_and_numbers(files):
    out = files / "hard.pt"
    res = runner.invoke(app, ["harden", str(files / "mlp.pt"), str(files / "digits.npz"), "--out", str(out),
                              "--eps", "0.1", "--epochs", "8", "--steps", "5", "--lr", "0.003", "--batch-size", "64"])
    assert res.exit_code == 0, res.output
    summary = json.loads((files / "hard.pt.json").read_text())
    assert summary["after"]["robust_accuracy"] >= summary["before"]["robust_accuracy"] + 0.1, summary
    assert len(summary["training"]["history"]) == 8
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        hard = torch.jit.load(str(out))
    x = np.load(files / "digits.npz")["x"][:50]
    assert hard(torch.as_tensor(x)).shape == (50, 10)
    assert "before" in res.output and "after" in res.output


@pytest.mark.parametrize("args, match", [
    (["--method", "madry"], "--method must be one of"),
    (["--eps", "2"], "--eps must be"),
    (["--norm", "l1"], "--norm must be"),
])
def test_bad_options_exit_2_and_write_nothing(files, args, match):
    out = files / "never.pt"
    res = runner.invoke(app, ["harden", str(files / "mlp.pt"), str(files / "digits.npz"), "--out", str(out), *args])
    assert res.exit_code == 2, res.output
    assert match in res.output and "Traceback" not in res.output
    assert not out.exists() and not (files / "never.pt.json").exists()


def test_a_model_it_cannot_train_is_refused(files, tmp_path):
    from sklearn.linear_model import LogisticRegression
    from skops.io import dump

    x, y = load_digits(return_X_y=True)
    dump(LogisticRegression(max_iter=200).fit(x[:300], y[:300]), tmp_path / "lr.skops")
    res = runner.invoke(app, ["harden", str(tmp_path / "lr.skops"), str(files / "digits.npz"), "--out",
                              str(tmp_path / "x.pt")])
    assert res.exit_code == 2 and "TorchScript" in res.output and not (tmp_path / "x.pt").exists()
