"""The README's Python example runs as written (examples/quickstart.py)."""

import json
import runpy
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "quickstart.py"


@pytest.mark.slow
def test_quickstart_example_runs_and_writes_a_report(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [str(EXAMPLE), str(tmp_path / "out")])
    runpy.run_path(str(EXAMPLE), run_name="__main__")
    printed = capsys.readouterr().out
    assert "robust accuracy at linf eps=0.03 (fraction of each feature's range):" in printed
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["data"]["name"] == "breast_cancer"
    assert {r["check"] for r in report["results"]} == {"clean_performance", "natural_robustness",
                                                       "adversarial_robustness"}
