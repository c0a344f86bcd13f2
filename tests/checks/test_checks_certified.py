"""The certified_robustness check and `stalwart certify`: the bracket in a report, bad input exits 2."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from typer.testing import CliRunner

import stalwart
from stalwart import checks
from stalwart.cli import app
from stalwart.errors import ConfigError

runner = CliRunner()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(80):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(torch.as_tensor(x[:1200])), torch.as_tensor(y[:1200])).backward()
        opt.step()
    net.eval()
    d = tmp_path_factory.mktemp("certify")
    with warnings.catch_warnings():  # TorchScript is deprecated in torch 2.13 but still what users ship
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(net), d / "mlp.pt")
    np.savez(d / "test.npz", x=x[1200:], y=y[1200:])
    return net, stalwart.Dataset.from_arrays(x[1200:], y[1200:]), d


def test_the_bracket_in_a_check(trained):
    net, ds, _ = trained
    res = checks.get("certified_robustness", max_samples=80, eps=[0.01, 0.05]).run(net, ds)
    assert res.status.value == "PASS"
    for e in (0.01, 0.05):
        cert, rob = res.metrics[f"certified_accuracy_at_{e:g}"].value, res.metrics[f"robust_accuracy_at_{e:g}"].value
        assert 0 < cert <= rob <= res.metrics["clean_accuracy"].value
        assert res.metrics[f"gap_at_{e:g}"].value == pytest.approx(rob - cert)
    assert res.metrics["certified_accuracy"].value == res.metrics["certified_accuracy_at_0.05"].value
    names = [s["name"] for s in res.curves["certified_vs_eps"]["series"]]
    assert names[0].startswith("certified") and names[1].startswith("attacked")


def test_conditions_judge_the_certified_accuracy(trained):
    net, ds, _ = trained
    res = checks.get("certified_robustness", max_samples=60, eps=[0.05], attack=False,
                     conditions=["certified_accuracy >= 0.99"]).run(net, ds)
    assert res.status.value == "FAIL" and "certified_accuracy" in res.message
    with pytest.raises(ConfigError, match="robust_accuracy_at_0.05.*does not measure"):
        checks.get("certified_robustness", eps=[0.05], attack=False,
                   conditions=["robust_accuracy_at_0.05 >= 0.5"]).run(net, ds)


def test_smoothing_in_a_check(trained):
    net, ds, _ = trained
    res = checks.get("certified_robustness", method="smoothing", norm="l2", eps=[0.1, 0.5], n=300,
                     max_samples=40).run(net, ds)
    acc = [res.metrics[f"certified_accuracy_at_{e:g}"].value for e in (0.1, 0.5)]
    assert acc[0] >= acc[1] and acc[0] <= res.metrics["smoothed_accuracy"].value
    assert 0 <= res.metrics["abstain_rate"].value < 0.5


def test_the_check_refuses_bad_parameters():
    with pytest.raises(ConfigError, match="method"):
        checks.get("certified_robustness", method="nope")
    with pytest.raises(ConfigError, match="'l2' with method='smoothing'"):
        checks.get("certified_robustness", method="smoothing", norm="linf")
    with pytest.raises(ConfigError, match="eps"):
        checks.get("certified_robustness", eps=[0.0])


def test_the_command_writes_the_bracket_and_exits_0(trained):
    _, _, d = trained
    out = d / "rep"
    res = runner.invoke(app, ["certify", str(d / "mlp.pt"), str(d / "test.npz"), "--eps", "0.01,0.05",
                              "--max-samples", "60", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "certified" in res.output and "attacked" in res.output
    report = json.loads((out / "report.json").read_text())
    rows = report["results"][0]["tables"]["bracket"]
    assert [r["eps"] for r in rows] == [0.01, 0.05]
    assert all(r["certified_accuracy"] <= r["robust_accuracy"] for r in rows)


@pytest.mark.parametrize("args, match", [
    (["--eps", "0,x"], "--eps must be"),
    (["--method", "nope"], "method"),
    (["--method", "smoothing", "--norm", "linf"], "l2"),
])
def test_bad_options_exit_2_and_write_nothing(trained, args, match):
    _, _, d = trained
    out = d / "never"
    res = runner.invoke(app, ["certify", str(d / "mlp.pt"), str(d / "test.npz"), *args, "--out", str(out)])
    assert res.exit_code == 2, res.output
    assert match in res.output and "Traceback" not in res.output
    assert not out.exists()


def test_a_model_crown_cannot_bound_exits_2_with_the_way_out(trained, tmp_path):
    _, _, d = trained
    x, y = load_digits(return_X_y=True)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(64, 16), torch.nn.Tanh(), torch.nn.Linear(16, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(60):  # trained: a model at chance is refused before any certificate
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(torch.as_tensor(x[:1200] / 16.0, dtype=torch.float32)),
                                          torch.as_tensor(y[:1200])).backward()
        opt.step()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(net), tmp_path / "tanh.pt")
    res = runner.invoke(app, ["certify", str(tmp_path / "tanh.pt"), str(d / "test.npz"), "--out",
                              str(tmp_path / "rep")])
    assert res.exit_code == 2, res.output
    assert "smoothing" in res.output and not (tmp_path / "rep").exists()


def test_sequential_smoothing_from_the_command_line_draws_fewer_copies(trained):
    _, _, d = trained
    queries, rows = {}, {}
    for flag in ("", "--sequential"):
        out = d / f"smooth{flag}"
        res = runner.invoke(app, ["certify", str(d / "mlp.pt"), str(d / "test.npz"), "--method", "smoothing",
                                  "--eps", "0.05,0.1", "--n", "1000", "--max-samples", "30", "--out", str(out),
                                  *([flag] if flag else [])])
        assert res.exit_code == 0, res.output
        result = json.loads((out / "report.json").read_text())["results"][0]
        ev = result["tables"]["evaluation"][0]
        assert ev["sequential"] is bool(flag) and ev["n_samples"] == 30
        queries[flag], rows[flag] = ev["queries"], result["tables"]["bracket"]
        smoothed = result["metrics"]["smoothed_accuracy"]["value"]
        assert all(0 <= r["certified_accuracy"] <= smoothed for r in rows[flag])
    # every input gets n0 + n = 1,100 copies without it; with it, inputs stop once decided
    assert queries[""] == 30 * 1100
    assert queries["--sequential"] < queries[""]
    assert "sequential" in res.output


def test_sequential_needs_smoothing_and_a_reachable_radius(trained):
    _, _, d = trained
    out = d / "never-seq"
    res = runner.invoke(app, ["certify", str(d / "mlp.pt"), str(d / "test.npz"), "--sequential", "--out", str(out)])
    assert res.exit_code == 2 and "--method smoothing" in res.output and not out.exists()
    with pytest.raises(ConfigError, match="sequential"):
        checks.get("certified_robustness", method="crown", sequential=True)
    with pytest.raises(ConfigError, match="cannot be certified"):
        checks.get("certified_robustness", method="smoothing", norm="l2", eps=[0.05, 2.0], n=100, sequential=True)
