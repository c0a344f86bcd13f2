"""`stalwart drift` on directories of Parquet files: the sketch path, what it reports, its errors."""

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from stalwart.cli import app

pytest.importorskip("pyarrow")
runner = CliRunner()


def _invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("sketch-cli")
    for name, shift in (("ref", 0.0), ("cur", 0.4)):
        (root / name).mkdir()
        for k in range(3):
            n = 3000
            pd.DataFrame({"x": rng.normal(size=n), "y": rng.normal(shift, size=n), "k": rng.integers(0, 3, n),
                          "c": rng.choice(list("ab"), n), "label": rng.integers(0, 2, n)}).to_parquet(
                root / name / f"part-{k}.parquet", index=False)
    return root


def test_a_directory_is_tested_from_summaries_and_the_report_says_so(dirs, tmp_path):
    res = _invoke("drift", dirs / "ref", dirs / "cur", "--target", "label", "--out", tmp_path / "r")
    assert res.exit_code == 1, res.output  # one column of four drifted: more than a fifth
    assert "1 of 4 columns drifted: y" in res.output
    out = " ".join(res.output.split())
    assert "mergeable summaries of 3 + 3 Parquet files" in out and "approximate" in out
    assert "label drift: from class counts (exact)" in out
    data = json.loads((tmp_path / "r" / "report.json").read_text())["data"]
    assert data["drift_path"] == "sketch"
    sk = data["sketch"]
    assert set(sk["exact_columns"]) == {"k", "c"}  # categories and few distinct numbers: exact
    assert 0 < sk["max_error"]["statistic"] < 1e-3
    lo, hi = sk["approximation"]["y"]["statistic"]
    assert lo <= hi and hi - lo <= sk["max_error"]["statistic"]


@pytest.mark.parametrize("float_labels", [False, True])
def test_label_drift_on_partitions_is_the_in_memory_one(dirs, tmp_path, float_labels):
    for name in ("ref", "cur"):
        df = pd.concat([pd.read_parquet(p) for p in sorted((dirs / name).iterdir())], ignore_index=True)
        if float_labels:  # regression targets: KS and Wasserstein, from the sketch on partitions
            df["label"] = df["label"] + df["y"] / 2
        (tmp_path / name).mkdir()
        for k, idx in enumerate(np.array_split(np.arange(len(df)), 3)):
            df.iloc[idx].to_parquet(tmp_path / name / f"part-{k}.parquet", index=False)
        df.to_parquet(tmp_path / f"{name}.parquet", index=False)
    runs = {"memory": [tmp_path / "ref.parquet", tmp_path / "cur.parquet", "--no-stream"],
            "sketch": [tmp_path / "ref", tmp_path / "cur"]}
    metrics = {}
    for how, args in runs.items():
        res = _invoke("drift", *args, "--target", "label", "--columns", "x", "--out", tmp_path / how)
        assert res.exit_code == 0, res.output
        report = json.loads((tmp_path / how / "report.json").read_text())
        metrics[how] = {k: v["value"] for k, v in report["results"][0]["metrics"].items() if k.startswith("label")}
    mem, sk = metrics["memory"], metrics["sketch"]
    if not float_labels:
        assert set(mem) == set(sk) == {"label_drift_p_value", "label_drift_js"}
        assert sk == pytest.approx(mem, rel=1e-12, abs=1e-300)
        return
    assert set(mem) == set(sk) == {"label_drift_p_value", "label_drift_wasserstein"}
    label = json.loads((tmp_path / "sketch" / "report.json").read_text())["data"]["label_drift"]
    lo, hi = label["p_value"]
    assert lo - 1e-12 <= mem["label_drift_p_value"] <= hi + 1e-12 and mem["label_drift_p_value"] < 1e-10
    lo, hi = label["wasserstein"]
    assert lo - 1e-12 <= mem["label_drift_wasserstein"] <= hi + 1e-12 and hi - lo < 1e-3


@pytest.mark.slow
def test_the_process_executor_gives_the_local_table(dirs, tmp_path):
    local = _invoke("drift", dirs / "ref", dirs / "cur", "--columns", "x,y,k", "--out", tmp_path / "a")
    pooled = _invoke("drift", dirs / "ref", dirs / "cur", "--columns", "x,y,k", "--executor", "process",
                     "--out", tmp_path / "b")
    assert local.exit_code == pooled.exit_code == 1, local.output + pooled.output
    tables = [json.loads((tmp_path / d / "report.json").read_text())["results"][0]["tables"]["columns"]
              for d in ("a", "b")]
    assert tables[0] == tables[1]


def test_sketch_on_two_files(dirs, tmp_path):
    one = _invoke("drift", dirs / "ref" / "part-0.parquet", dirs / "cur" / "part-0.parquet", "--sketch",
                  "--out", tmp_path / "c")
    assert "mergeable summaries of 1 + 1 Parquet files" in " ".join(one.output.split())


@pytest.mark.parametrize("extra, message", [
    (["--method", "anderson"], "not available on partitioned data"),
    (["--stream"], "--stream does not go with partitioned data"),
    (["--model", "m.skops"], "--model does not go with partitioned data"),
    (["--target", "nope"], "target column 'nope' is not in the reference"),
])
def test_bad_options_exit_2_without_traceback(dirs, tmp_path, extra, message):
    res = _invoke("drift", dirs / "ref", dirs / "cur", "--out", tmp_path / "r", *extra)
    assert res.exit_code == 2 and message in " ".join(res.output.split()), res.output
    assert "Traceback" not in res.output and not (tmp_path / "r").exists()


def test_a_partition_without_a_column_exits_2_naming_it(dirs, tmp_path):
    cur = tmp_path / "cur"
    cur.mkdir()
    for f in (dirs / "cur").iterdir():
        (cur / f.name).write_bytes(f.read_bytes())
    pd.DataFrame({"x": [1.0, 2.0]}).to_parquet(cur / "part-9.parquet", index=False)
    res = _invoke("drift", dirs / "ref", cur, "--out", tmp_path / "r")
    assert res.exit_code == 2 and "part-9.parquet" in res.output and "lacks columns" in res.output
