"""Plug-ins registered from outside the package work wherever their kind is used.

One plug-in of each kind -- an attack, a perturbation, an OOD detector and a check -- is
registered here with the package's own ``register`` decorator, as a user's module would, and then
used through the checks, a YAML suite and the command line; none of them is listed anywhere in
stalwart. A last test registers one through an entry point, as an installed package would.
"""

from __future__ import annotations

import json
from importlib import metadata
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

import stalwart
from stalwart import attacks, checks, perturb, shift
from stalwart.checks import Check, Measurement, Metric
from stalwart.cli import app
from stalwart.perturb import Perturbation
from stalwart.shift import OODDetector

runner = CliRunner()


class SignNoise(attacks.Attack):
    """Every movable feature moved by +-eps at random: a (weak) black-box attack."""

    name: ClassVar[str] = "toy_sign_noise"
    white_box: ClassVar[bool] = False

    def _attack(self, model: Any, x: torch.Tensor, y: torch.Tensor, target: Any) -> torch.Tensor:
        gen = torch.Generator().manual_seed(self.seed)
        return x + float(self.threat.eps) * torch.sign(torch.randn(x.shape, generator=gen)).to(x)


class ShiftUp(Perturbation):
    """Every numeric column moved up by ``severity`` times a tenth of its standard deviation."""

    name: ClassVar[str] = "toy_shift_up"
    modality: ClassVar[str] = "tabular"
    description: ClassVar[str] = "numeric columns shifted up"

    def _apply(self, x: pd.DataFrame, severity: int, rng: np.random.Generator, schema: Any) -> pd.DataFrame:
        out = x.copy()
        for col in schema.columns:
            if col.kind == "numeric" and col.mutable:
                out[col.name] = out[col.name] + 0.1 * severity * float(out[col.name].std())
        return out


class DistanceToMean(OODDetector):
    """Euclidean distance to the mean of the fitted inputs."""

    name: ClassVar[str] = "toy_distance_to_mean"

    def fit(self, x: Any, y: Any = None) -> DistanceToMean:
        self.mean_ = np.asarray(x, dtype=float).reshape(len(x), -1).mean(axis=0)
        return self

    def score(self, x: Any) -> np.ndarray:
        return np.linalg.norm(np.asarray(x, dtype=float).reshape(len(x), -1) - self.mean_, axis=1)


class RowCount(Check):
    """How many rows the data has (a check whose answer is known)."""

    name: ClassVar[str] = "toy_row_count"
    category: ClassVar[str] = "stability"
    default_conditions: ClassVar[tuple[str, ...]] = ("rows >= 1",)
    headline_metric: ClassVar[str | None] = "rows"

    def metric_names(self, model: Any, data: Any) -> tuple[str, ...]:
        return ("rows",)

    def _measure(self, model: Any, data: Any, rng: np.random.Generator) -> Measurement:
        return Measurement({"rows": Metric("rows", float(len(data)), n=len(data))}, {}, {})


PLUGINS = [(attacks.ATTACKS, SignNoise), (perturb.PERTURBATIONS, ShiftUp), (shift.DETECTORS, DistanceToMean),
           (checks.CHECKS, RowCount)]


@pytest.fixture(scope="module", autouse=True)
def registered():
    for registry, cls in PLUGINS:
        registry.register(cls)
    yield
    for registry, cls in PLUGINS:
        registry.unregister(cls.name)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from skops.io import dump

    d = tmp_path_factory.mktemp("plugins")
    train, test = stalwart.datasets.load_split("breast_cancer", seed=0)
    dump(make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(train.x, train.y), d / "bc.skops")
    test.x.assign(label=test.y).to_csv(d / "test.csv", index=False)
    (d / "suite.yaml").write_text(
        "name: plugins\n"
        "checks:\n"
        "  - check: toy_row_count\n"
        "  - check: natural_robustness\n"
        "    params: {perturbations: [toy_shift_up], severities: [1, 5], max_samples: 80}\n"
        "  - check: adversarial_robustness\n"
        "    params: {attack: toy_sign_noise, eps: [0.05, 0.3], max_samples: 60, minimal: false}\n"
        "  - check: ood_detection\n"
        "    params: {detectors: [toy_distance_to_mean], max_samples: 120}\n")
    return d


def test_each_kind_is_found_by_name_and_filters():
    assert "toy_sign_noise" in attacks.names(white_box=False) and "toy_sign_noise" not in attacks.names(white_box=True)
    assert "toy_shift_up" in perturb.names("tabular") and "toy_shift_up" not in perturb.names("image")
    assert "toy_distance_to_mean" in shift.names(kind="ood") and "toy_distance_to_mean" not in shift.names(kind="drift")
    assert "toy_row_count" in checks.names(category="stability")
    assert isinstance(attacks.get("toy_sign_noise", attacks.ThreatModel(), seed=3), SignNoise)
    assert isinstance(perturb.get("toy_shift_up"), ShiftUp)
    assert isinstance(shift.get("toy_distance_to_mean"), DistanceToMean)
    assert isinstance(checks.get("toy_row_count"), RowCount)


def test_plug_ins_work_in_a_yaml_suite_through_the_cli(files, tmp_path):
    out = tmp_path / "rep"
    result = runner.invoke(app, ["scan", str(files / "bc.skops"), str(files / "test.csv"), "--target", "label",
                                 "--suite", str(files / "suite.yaml"), "--out", str(out)])
    assert result.exit_code in (0, 1), result.output
    rep = {r["check"]: r for r in json.loads((out / "report.json").read_text())["results"]}
    assert rep["toy_row_count"]["metrics"]["rows"]["value"] == 171.0 and rep["toy_row_count"]["status"] == "PASS"
    nat = rep["natural_robustness"]
    assert {r["perturbation"] for r in nat["tables"]["perturbations"]} == {"toy_shift_up"}
    drops = {r["severity"]: r["drop"] for r in nat["tables"]["perturbations"]}
    assert drops[5] >= drops[1]  # a bigger shift costs at least as much
    adv = rep["adversarial_robustness"]
    assert {r["attack"] for r in adv["tables"]["attacks"]} == {"toy_sign_noise"}
    assert adv["metrics"]["white_box"]["value"] == 0  # a black-box plug-in on a white-box model
    ood = rep["ood_detection"]
    assert [r["detector"] for r in ood["tables"]["detectors"]] == ["toy_distance_to_mean"]
    assert ood["metrics"]["toy_distance_to_mean_auroc"]["value"] > 0.9  # synthetic far rows are far from the mean


def test_plug_ins_work_in_the_other_commands(files, tmp_path):
    listed = runner.invoke(app, ["perturb", "--list", "--modality", "tabular"])
    assert listed.exit_code == 0 and "toy_shift_up" in listed.output
    noisy = tmp_path / "noisy.csv"
    result = runner.invoke(app, ["perturb", str(files / "test.csv"), "--perturbation", "toy_shift_up", "--target",
                                 "label", "--severity", "2", "--out", str(noisy)])
    assert result.exit_code == 0, result.output
    before, after = pd.read_csv(files / "test.csv"), pd.read_csv(noisy)
    col = "mean radius"
    assert after[col].to_numpy() == pytest.approx(before[col].to_numpy() + 0.2 * before[col].std())
    result = runner.invoke(app, ["attack", str(files / "bc.skops"), str(files / "test.csv"), "--target", "label",
                                 "--attack", "toy_sign_noise", "--eps", "0.3", "--out", str(tmp_path / "a.npz")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "a.json").read_text())["attack"] == "toy_sign_noise"
    result = runner.invoke(app, ["ood", str(files / "bc.skops"), str(files / "test.csv"), str(files / "test.csv"),
                                 "--target", "label", "--detectors", "toy_distance_to_mean", "--out", str(tmp_path / "o")])
    assert result.exit_code in (0, 1), result.output
    rows = json.loads((tmp_path / "o" / "report.json").read_text())["results"][0]["tables"]["detectors"]
    assert [r["detector"] for r in rows] == ["toy_distance_to_mean"]
    assert rows[0]["auroc"] == pytest.approx(0.5, abs=0.15)  # the same file on both sides: nothing to tell apart


def test_an_installed_package_registers_through_its_entry_point(monkeypatch):
    class Installed(RowCount):
        name: ClassVar[str] = "toy_installed_check"

    class EntryPoint:
        name = "toy_installed_check"

        def load(self):
            return Installed

    real = metadata.entry_points
    monkeypatch.setattr("stalwart._registry.metadata.entry_points",
                        lambda group=None, **kw: [EntryPoint()] if group == "stalwart.checks" else real(group=group))
    monkeypatch.setattr(checks.CHECKS, "_loaded", False)
    try:
        assert "toy_installed_check" in checks.names() and checks.get("toy_installed_check").name == "toy_installed_check"
    finally:
        checks.CHECKS.unregister("toy_installed_check")
