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


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """A TorchScript network on a CSV table (first column in the hundreds) with a label column."""
    import pandas as pd

    d = tmp_path_factory.mktemp("harden_table")
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    s = 2.0 * y - 1
    x = np.column_stack([100 * (0.5 + 0.25 * s + rng.normal(0, 0.15, 300)),
                         0.5 + 0.03 * s[:, None] + rng.normal(0, 0.01, (300, 3))]).astype(np.float32)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    xs = torch.as_tensor(x / np.array([100, 1, 1, 1], dtype=np.float32))
    for _ in range(150):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(xs), torch.as_tensor(y)).backward()
        opt.step()
    with torch.no_grad():
        net[0].weight[:, 0] /= 100  # the network takes the raw table
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(net.eval()), d / "tab.pt")
    frame = pd.DataFrame(x, columns=["area", "a", "b", "c"])
    frame["label"] = y
    frame.to_csv(d / "table.csv", index=False)
    return d


def test_a_table_with_compare_writes_the_tradeoff_report(table):
    out, rep = table / "hard.pt", table / "rep"
    res = runner.invoke(app, ["harden", str(table / "tab.pt"), str(table / "table.csv"), "--target", "label",
                              "--out", str(out), "--eps", "0.1", "--epochs", "3", "--steps", "3", "--lr", "0.01",
                              "--batch-size", "64", "--compare", "pgd-at,noise", "--report", str(rep)])
    assert res.exit_code == 0, res.output
    summary = json.loads((table / "hard.pt.json").read_text())
    assert [r["option"] for r in summary["tradeoff"]] == ["baseline", "pgd-at", "noise"]
    assert summary["before"]["robust_accuracy"] == summary["tradeoff"][0]["robust_accuracy"]
    assert summary["after"]["robust_accuracy"] == summary["tradeoff"][1]["robust_accuracy"]
    assert summary["held_out_samples"] == 60 and len(summary["training"]["history"]) == 3
    report = json.loads((rep / "report.json").read_text())["results"][0]
    assert report["check"] == "hardening_tradeoff"
    assert [r["option"] for r in report["tables"]["tradeoff"]] == ["baseline (undefended)", "pgd-at", "noise"]
    assert "Clean vs robust accuracy" in (rep / "index.html").read_text()
    # the written model is the --method one, and it takes the raw table
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        hard = torch.jit.load(str(out))
    import pandas as pd

    frame = pd.read_csv(table / "table.csv")
    x = torch.as_tensor(frame.drop(columns="label").to_numpy(np.float32))
    assert hard(x).shape == (300, 2)
    assert "noise" in res.output and "Pareto" in res.output


@pytest.mark.parametrize("args, match", [
    (["--compare", "pgd-at,madry"], "--compare must be"),
    (["--compare", ","], "--compare must be"),
])
def test_bad_compare_exits_2_and_writes_nothing(table, args, match):
    out = table / "never.pt"
    res = runner.invoke(app, ["harden", str(table / "tab.pt"), str(table / "table.csv"), "--target", "label", "--out",
                              str(out), "--report", str(table / "never-rep"), *args])
    assert res.exit_code == 2, res.output
    assert match in res.output and "Traceback" not in res.output
    assert not out.exists() and not (table / "never-rep").exists()


def test_a_table_without_labels_or_a_scikit_learn_model_is_refused_with_the_way_out(table, tmp_path):
    from sklearn.linear_model import LogisticRegression
    from skops.io import dump

    res = runner.invoke(app, ["harden", str(table / "tab.pt"), str(table / "table.csv"), "--out",
                              str(tmp_path / "x.pt")])
    assert res.exit_code == 2 and "--target" in res.output and not (tmp_path / "x.pt").exists()
    import pandas as pd

    frame = pd.read_csv(table / "table.csv")
    dump(LogisticRegression().fit(frame.drop(columns="label"), frame["label"]), tmp_path / "lr.skops")
    res = runner.invoke(app, ["harden", str(tmp_path / "lr.skops"), str(table / "table.csv"), "--target", "label",
                              "--out", str(tmp_path / "x.pt")])
    assert res.exit_code == 2 and "AugmentedClassifier" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "x.pt").exists()


def test_distill_writes_a_student_with_fresh_weights_and_its_logits_robust_accuracy(files):
    out = files / "student.pt"
    res = runner.invoke(app, ["harden", str(files / "mlp.pt"), str(files / "digits.npz"), "--out", str(out),
                              "--method", "distill", "--temperature", "50", "--eps", "0.1", "--epochs", "15",
                              "--lr", "0.01", "--batch-size", "64", "--compare", "squeeze"])
    assert res.exit_code == 0, res.output
    summary = json.loads((files / "student.pt.json").read_text())
    assert [r["option"] for r in summary["tradeoff"]] == ["baseline", "distill", "squeeze"]
    assert summary["training"]["temperature"] == 50.0
    assert [h["stage"] for h in summary["training"]["history"]] == ["teacher"] * 15 + ["student"] * 15
    assert summary["after"]["clean_accuracy"] >= 0.85, summary
    # attacked on its logits, the student is no fortress (Carlini & Wagner 2016): well below its clean accuracy
    assert summary["after"]["robust_accuracy"] <= summary["after"]["clean_accuracy"] - 0.3, summary
    assert summary["after"]["robust_accuracy"] <= summary["before"]["robust_accuracy"] + 0.15, summary  # no real gain
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        student, original = torch.jit.load(str(out)), torch.jit.load(str(files / "mlp.pt"))
    x = torch.as_tensor(np.load(files / "digits.npz")["x"][:200])
    # a new network of the same architecture, not the trained one fine-tuned: its weights moved far
    w_new, w_old = student.state_dict()["1.weight"], original.state_dict()["1.weight"]
    assert w_new.shape == w_old.shape and float((w_new - w_old).abs().mean()) > 0.5 * float(w_old.abs().mean())
    assert student(x).shape == (200, 10)
    assert "distilled at temperature 50" in res.output


def test_bad_temperature_exits_2(files):
    out = files / "never.pt"
    res = runner.invoke(app, ["harden", str(files / "mlp.pt"), str(files / "digits.npz"), "--out", str(out),
                              "--method", "distill", "--temperature", "0"])
    assert res.exit_code == 2 and "--temperature must be" in res.output and not out.exists()
