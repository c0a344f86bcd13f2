"""Report: JSON round trip, determinism apart from timings, rendering and atomic saving."""

import json
import re

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from stalwart.checks import CheckResult, Metric, Status
from stalwart.data.dataset import Dataset
from stalwart.errors import InputError
from stalwart.models import wrap
from stalwart.report import Report, drop_timings, json_safe, render_html, render_markdown
from stalwart.suite import Suite

SUITE = """
name: small
checks:
  - check: natural_robustness
    params: {perturbations: [feature_noise, outliers], severities: [1, 3, 5], max_samples: 80}
  - check: adversarial_robustness
    params: {eps: [0.02, 0.05, 0.1], level: fast, minimal: false, max_samples: 60}
"""


@pytest.fixture(scope="module")
def setup():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5))
    y = (x @ np.array([1.0, -1.0, 0.5, 0.0, 0.2]) + 0.3 * rng.normal(size=200) > 0).astype(int)
    data = Dataset.from_arrays(x, y, name="toy")
    model = wrap(make_pipeline(StandardScaler(), LogisticRegression()).fit(data.x, y))
    return model, data


@pytest.fixture(scope="module")
def report(setup):
    return Suite.from_yaml(SUITE).run(*setup, seed=7)


def test_report_dict_carries_provenance(report, setup):
    model, data = setup
    d = report.to_dict()
    assert d["schema_version"] == "1.2" and d["seed"] == 7 and d["suite"]["name"] == "small"
    assert d["model"]["family"] == "sklearn"
    assert d["model"]["fingerprint"] == model.fingerprint() and d["model"]["differentiable"] is True
    assert d["model"]["classes"] == [0, 1]
    assert d["data"]["fingerprint"] == data.fingerprint() and d["data"]["n_samples"] == 200
    assert set(d["versions"]) == {"python", "numpy", "torch", "sklearn", "pandas"}
    assert {"natural", "adversarial"} <= set(d["scorecard"])
    assert d["status"] == report.status.value and d["passed"] == report.passed


def test_json_round_trip(report):
    text = report.to_json()
    assert text == json.dumps(json.loads(text), sort_keys=True, indent=2) + "\n"
    back = Report.from_json(text)
    assert back.to_json() == text
    assert [r.metrics for r in back.results] == [r.metrics for r in report.results]


@pytest.mark.slow
def test_same_seed_same_json_apart_from_timings(setup, report):
    again = Suite.from_yaml(SUITE).run(*setup, seed=7)
    assert drop_timings(again.to_dict()) == drop_timings(report.to_dict())
    other = Suite.from_yaml(SUITE).run(*setup, seed=8)
    assert drop_timings(other.to_dict()) != drop_timings(report.to_dict())


def test_nan_becomes_null_and_status_logic():
    res = [CheckResult("a", "natural", Status.PASS, {"m": Metric("m", float("nan"), None, None, 3)}),
           CheckResult("b", "adversarial", Status.SKIP, message="black-box")]
    rep = Report(results=res, model={"name": "M"}, data={"name": "D"})
    d = json.loads(rep.to_json())
    assert d["results"][0]["metrics"]["m"]["value"] is None
    assert json_safe({"x": np.float32(np.inf), "y": (1, np.int64(2))}) == {"x": None, "y": [1, 2]}
    assert rep.status is Status.PASS and rep.passed
    assert Report(results=res[1:], model={}, data={}).status is Status.SKIP
    failing = Report(results=[*res, CheckResult("c", "natural", Status.FAIL)], model={}, data={})
    assert failing.status is Status.FAIL and not failing.passed
    assert failing.scorecard["natural"]["status"] == "FAIL"
    # a skipped category's headline says why it was skipped
    assert failing.scorecard["adversarial"] == {"status": "SKIP", "headline": "skipped: black-box", "checks": ["b"]}


def test_html_is_self_contained_with_two_charts(report):
    html = report.to_html()
    assert len(re.findall(r"<svg class=\"chart\"", html)) == 2
    assert "Accuracy vs severity" in html and "Robust accuracy vs eps" in html
    assert "http://" not in html and "https://" not in html
    assert "<script" not in html and "<polygon" in html  # the Wilson band
    assert report.model["fingerprint"] in html and report.data["fingerprint"] in html
    # the page is a function of the dict alone: re-rendered from JSON it is identical
    assert render_html(json.loads(report.to_json())) == html


def test_markdown_has_scorecard_and_tables(report):
    md = report.to_markdown()
    assert md.startswith(f"# Robustness report: **{report.status.value}**")
    assert "| category | status | headline | checks |" in md
    assert "| perturbation | severity | accuracy |" in md
    assert render_markdown(report.to_dict()) == md


def test_save_writes_four_files_and_loads_back(report, tmp_path):
    out = report.save(tmp_path / "out")
    assert sorted(p.name for p in out.iterdir()) == ["index.html", "junit.xml", "report.json", "report.md"]
    assert (out / "junit.xml").read_text() == report.to_junit()
    assert Report.load(out).to_json() == report.to_json()
    assert Report.load(out / "report.json").to_json() == report.to_json()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temporary directory left behind


def test_save_leaves_nothing_when_rendering_fails(report, tmp_path, monkeypatch):
    from stalwart.report import markdown

    def broken(d):
        raise RuntimeError("renderer broke")

    monkeypatch.setattr(markdown, "render_markdown", broken)
    with pytest.raises(RuntimeError, match="renderer broke"):
        report.save(tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_save_failure_while_writing_keeps_old_report(report, tmp_path, monkeypatch):
    out = report.save(tmp_path / "out")
    before = {p.name: p.read_text() for p in out.iterdir()}
    import os

    real_replace = os.replace
    calls = []

    def flaky(src, dst):
        calls.append(dst)
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", flaky)
    with pytest.raises(OSError, match="disk full"):
        report.save(out)
    monkeypatch.setattr(os, "replace", real_replace)
    assert {p.name: p.read_text() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_load_rejects_bad_input(tmp_path):
    with pytest.raises(InputError, match=r"cannot read report"):
        Report.load(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(InputError, match=r"report .*bad.json. is not valid JSON"):
        Report.load(tmp_path / "bad.json")
    with pytest.raises(InputError, match=r"schema_version '2.0' is not readable"):
        Report.from_dict({"schema_version": "2.0", "results": [], "model": {}})
    with pytest.raises(InputError, match=r"not a stalwart report"):
        Report.from_dict({"a": 1})


# -- saving: permissions and what a killed save leaves behind ---------------------------------------
def _tiny_report() -> Report:
    res = [CheckResult("a", "natural", Status.PASS, {"m": Metric("m", 0.5)}, headline_metric="m")]
    return Report(results=res, model={"name": "M", "task": "classification", "classes": [0, 1], "fingerprint": "f",
                                      "differentiable": False, "output_kind": "probabilities"},
                  data={"name": "D", "modality": "tabular", "n_samples": 3, "fingerprint": "g"})


@pytest.mark.parametrize("umask, mode", [(0o027, 0o640), (0o002, 0o664)])
def test_saved_files_respect_the_umask(tmp_path, umask, mode):
    import os
    import stat

    old = os.umask(umask)
    try:
        out = _tiny_report().save(tmp_path / "out")
    finally:
        os.umask(old)
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()} == dict.fromkeys(
        ["index.html", "junit.xml", "report.json", "report.md"], mode)


def _dead_pid() -> int:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_save_removes_stale_temporary_directories_of_dead_processes(tmp_path):
    import os

    from stalwart._io import TMP_MARK, _host

    dead, host = _dead_pid(), _host()
    stale = tmp_path / f".out{TMP_MARK}{dead}.{host}.abcd1234"
    other_out = tmp_path / f".other{TMP_MARK}{dead}.{host}.efgh5678"
    alive = tmp_path / f".out{TMP_MARK}{os.getppid()}.{host}.ijkl9012"  # a save still running elsewhere
    elsewhere = tmp_path / f".out{TMP_MARK}{dead}.some-other-host.mnop3456"  # another machine's process
    unrelated = tmp_path / ".out-not-ours"
    for p in (stale, other_out, alive, elsewhere, unrelated):
        p.mkdir()
        (p / "report.json").write_text("{}")
    _tiny_report().save(tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out", alive.name, elsewhere.name, unrelated.name])


KILLED_SAVE = """
import os, signal, sys
from stalwart.checks import CheckResult, Status
from stalwart.report import Report

report = Report(results=[CheckResult("a", "natural", Status.PASS)],
                model={"name": "M", "task": "classification", "classes": [0, 1], "fingerprint": "f",
                       "differentiable": False, "output_kind": "probabilities"},
                data={"name": "D", "modality": "tabular", "n_samples": 3, "fingerprint": "g"})
os.replace = lambda src, dst: os.kill(os.getpid(), signal.SIGKILL)  # killed while moving files in place
report.save(sys.argv[1])
"""


def test_a_save_killed_midway_leaves_a_recognisable_directory_the_next_save_removes(tmp_path):
    import signal
    import subprocess
    import sys

    from stalwart.report.core import TMP_MARK

    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-c", KILLED_SAVE, str(out)], capture_output=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    left = [p for p in tmp_path.iterdir() if p.name.startswith(f".out{TMP_MARK}")]
    assert len(left) == 1 and left[0].is_dir() and {p.name for p in left[0].iterdir()} >= {"report.json"}
    _tiny_report().save(out)
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
