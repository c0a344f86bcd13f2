"""Every command refuses bad invocations the same way: exit 2, one message, no traceback, nothing written.

Each case is a command line that a user could type by mistake. What must hold for all of them:
the exit code is 2 (the code for bad input, never 1, which means "a check failed"), the message
names the problem (a regex per case), no Python traceback appears, and the output path given was
not created. Files the cases need are made once per module.
"""

import os
import pickle
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from typer.testing import CliRunner

from stalwart import datasets
from stalwart.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def f(tmp_path_factory):
    """Models (fitted on named columns, on text, a small CNN) and good and bad data files."""
    from skops.io import dump

    d = tmp_path_factory.mktemp("bad")
    train, test = datasets.load_split("breast_cancer", seed=0)
    dump(make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(train.x, train.y), d / "bc.skops")
    dump(HistGradientBoostingClassifier(max_iter=20).fit(train.x, train.y), d / "hgb.skops")
    table = test.x.assign(label=test.y)
    table.to_csv(d / "test.csv", index=False)
    table[list(table.columns)[::-1]].to_csv(d / "reordered.csv", index=False)  # fine: matched by name
    table.drop(columns=["mean radius"]).to_csv(d / "missing_col.csv", index=False)
    table.assign(extra=1.0).to_csv(d / "extra_col.csv", index=False)
    table.rename(columns={"mean radius": "mean radius "}).to_csv(d / "space_col.csv", index=False)
    table.rename(columns={"mean radius": "mean\u00a0radius"}).to_csv(d / "nbsp_col.csv", index=False)
    (d / "dup_col.csv").write_text("a,a,label\n" + "".join(f"{i},{i},{i % 2}\n" for i in range(40)))
    nan = table.copy()
    nan.loc[3, "mean area"] = np.nan
    nan.to_csv(d / "nan.csv", index=False)
    inf = table.copy()
    inf.loc[3, "mean area"] = np.inf
    inf.to_csv(d / "inf.csv", index=False)
    text_in_numbers = table.astype({"mean area": object})
    text_in_numbers.loc[3, "mean area"] = "n/a"
    text_in_numbers.to_csv(d / "string_in_numeric.csv", index=False)
    table.iloc[:, :5].assign(label=test.y).to_csv(d / "few_cols.csv", index=False)
    np.savez(d / "table.npz", x=test.x.to_numpy()[:, :5], y=np.asarray(test.y))

    text_train, text_test = datasets.load_split("sentiment", seed=0)
    dump(make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(text_train.x, text_train.y), d / "text.skops")
    pd.DataFrame({"text": text_test.x, "label": text_test.y}).to_csv(d / "text.csv", index=False)

    torch.manual_seed(0)
    cnn = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                              torch.nn.Linear(4 * 8 * 8, 10)).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.trace(cnn, torch.zeros(1, 1, 8, 8)), d / "cnn.pt")
    digits = datasets.load("digits")
    np.savez(d / "digits.npz", x=digits.x[:60], y=np.asarray(digits.y)[:60])
    np.savez(d / "flat.npz", x=digits.x[:60].reshape(60, -1), y=np.asarray(digits.y)[:60])
    np.savez(d / "big.npz", x=np.zeros((40, 1, 32, 32), np.float32), y=np.zeros(40, int))
    np.savez(d / "rgb.npz", x=np.zeros((40, 3, 8, 8), np.float32), y=np.zeros(40, int))

    with open(d / "good.pkl", "wb") as fh:
        pickle.dump(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), fh)
    (d / "truncated.pkl").write_bytes((d / "good.pkl").read_bytes()[:40])
    # a pickle of a class from a module that is not installed
    (d / "foreign.pkl").write_bytes(b"\x80\x02cnot_a_module\nThing\nq\x00)\x81q\x01.")
    (d / "garbage.pt2").write_bytes(b"not a program" * 10)
    (d / "garbage.skops").write_bytes(b"not a zip" * 10)
    (d / "model.xyz").write_bytes(b"?")
    (d / "a_file").write_text("I am a file")
    (d / "bad_metric.yaml").write_text("name: x\nchecks:\n  - check: natural_robustness\n"
                                       "    conditions: ['acuracy_drop_s3 <= 0.05']\n")
    (d / "unknown_check.yaml").write_text("name: x\nchecks:\n  - check: no_such_check\n")
    (d / "broken.yaml").write_text("name: [unclosed\n")
    return d


CASES = {
    # name: (argv with {d} for the fixture folder and {out} for the output, message regex)
    "missing model": (["scan", "{d}/nope.skops", "{d}/test.csv", "--target", "label", "--out", "{out}"],
                      r"does not exist"),
    "missing data": (["scan", "{d}/bc.skops", "{d}/nope.csv", "--target", "label", "--out", "{out}"],
                     r"does not exist"),
    "unknown model extension": (["scan", "{d}/model.xyz", "{d}/test.csv", "--target", "label", "--out", "{out}"],
                                r"unknown extension '.xyz'"),
    "garbage skops": (["scan", "{d}/garbage.skops", "{d}/test.csv", "--target", "label", "--out", "{out}"],
                      r"not a readable skops file"),
    "garbage pt2": (["scan", "{d}/garbage.pt2", "{d}/digits.npz", "--out", "{out}"],
                    r"not a loadable torch.export program"),
    "pickle without trust": (["scan", "{d}/good.pkl", "{d}/test.csv", "--target", "label", "--out", "{out}"],
                             r"--trust"),
    "truncated pickle": (["scan", "{d}/truncated.pkl", "{d}/test.csv", "--target", "label", "--trust",
                          "--out", "{out}"], r"truncated\.pkl"),
    "pickle of a missing package": (["scan", "{d}/foreign.pkl", "{d}/test.csv", "--target", "label", "--trust",
                                     "--out", "{out}"], r"not_a_module"),
    "negative seed": (["scan", "{d}/bc.skops", "{d}/test.csv", "--target", "label", "--seed", "-1",
                       "--out", "{out}"], r"--seed.*greater than or equal to 0"),
    "out is a file": (["scan", "{d}/bc.skops", "{d}/test.csv", "--target", "label", "--out", "{d}/a_file"],
                      r"is an existing file; pass a directory"),
    "out under a file": (["scan", "{d}/bc.skops", "{d}/test.csv", "--target", "label", "--out",
                          "{d}/a_file/report"], r"which is a file, not a directory"),
    "unknown suite": (["scan", "{d}/bc.skops", "{d}/test.csv", "--target", "label", "--suite", "fastest",
                       "--out", "{out}"], r"suite must be one of \['quick', 'standard', 'thorough'\]"),
    "condition on a metric that does not exist": (
        ["scan", "{d}/bc.skops", "{d}/test.csv", "--target", "label", "--suite", "{d}/bad_metric.yaml",
         "--out", "{out}"], r"names the metric 'acuracy_drop_s3'.*Did you mean 'accuracy_drop_s3'"),
    "unknown check in yaml": (["scan", "{d}/bc.skops", "{d}/test.csv", "--target", "label", "--suite",
                               "{d}/unknown_check.yaml", "--out", "{out}"], r"unknown check 'no_such_check'"),
    "broken yaml": (["scan", "{d}/bc.skops", "{d}/test.csv", "--target", "label", "--suite", "{d}/broken.yaml",
                     "--out", "{out}"], r"does not parse"),
    "unknown modality": (["scan", "{d}/bc.skops", "{d}/test.csv", "--target", "label", "--modality", "audio",
                          "--out", "{out}"], r"--modality must be one of tabular, image, text"),
    "unknown target": (["scan", "{d}/bc.skops", "{d}/test.csv", "--target", "lable", "--out", "{out}"],
                       r"target column 'lable' is not in .*Did you mean 'label'"),
    "no labels": (["scan", "{d}/bc.skops", "{d}/test.csv", "--out", "{out}"], r"(no labels|unexpected \['label'\])"),
    "a missing column": (["scan", "{d}/bc.skops", "{d}/missing_col.csv", "--target", "label", "--out", "{out}"],
                         r"missing \['mean radius'\]"),
    "an extra column": (["scan", "{d}/bc.skops", "{d}/extra_col.csv", "--target", "label", "--out", "{out}"],
                        r"unexpected \['extra'\]"),
    "a renamed column (trailing space)": (["scan", "{d}/bc.skops", "{d}/space_col.csv", "--target", "label",
                                           "--out", "{out}"], r"differs from 'mean radius' only in whitespace"),
    "a renamed column (no-break space)": (["scan", "{d}/bc.skops", "{d}/nbsp_col.csv", "--target", "label",
                                           "--out", "{out}"], r"'mean\\xa0radius'"),
    "duplicate column names": (["scan", "{d}/bc.skops", "{d}/dup_col.csv", "--target", "label", "--out", "{out}"],
                               r"repeats the column name\(s\) \['a'\]"),
    "NaN where the model cannot take it": (["scan", "{d}/bc.skops", "{d}/nan.csv", "--target", "label",
                                            "--out", "{out}"], r"missing values in columns \['mean area'\]"),
    "infinite value": (["scan", "{d}/hgb.skops", "{d}/inf.csv", "--target", "label", "--out", "{out}"],
                       r"infinite values in columns \['mean area'\]"),
    "text in a numeric column": (["scan", "{d}/bc.skops", "{d}/string_in_numeric.csv", "--target", "label",
                                  "--out", "{out}"], r"cannot take"),
    "too few unnamed columns for a named model": (["scan", "{d}/bc.skops", "{d}/table.npz", "--out", "{out}"],
                                                   r"5 unnamed columns but .* takes 30 named columns"),
    "tabular model on text": (["scan", "{d}/bc.skops", "{d}/text.csv", "--target", "label", "--out", "{out}"],
                              r"the data is text but .* takes 30 named columns"),
    "text model on a table": (["scan", "{d}/text.skops", "{d}/test.csv", "--target", "label", "--out", "{out}"],
                              r"cannot take this data"),
    "CNN given flat rows": (["scan", "{d}/cnn.pt", "{d}/flat.npz", "--out", "{out}"], r"cannot take this data"),
    "CNN given 32x32 images": (["scan", "{d}/cnn.pt", "{d}/big.npz", "--out", "{out}"], r"cannot take this data"),
    "CNN given RGB images": (["scan", "{d}/cnn.pt", "{d}/rgb.npz", "--out", "{out}"], r"cannot take this data"),
    "CNN given a CSV": (["scan", "{d}/cnn.pt", "{d}/test.csv", "--target", "label", "--out", "{out}"],
                        r"cannot take this data"),
    "attack: out is a directory": (["attack", "{d}/bc.skops", "{d}/test.csv", "--target", "label", "--out", "{d}"],
                                   r"is a directory; pass a file name"),
    "attack: out with an unknown extension": (["attack", "{d}/bc.skops", "{d}/test.csv", "--target", "label",
                                               "--out", "{out}.txt"], r"must end in one of .npz"),
    "attack: images to a CSV": (["attack", "{d}/cnn.pt", "{d}/digits.npz", "--out", "{out}.csv"],
                                r"image adversarial examples are written as .npz"),
    "attack: text to NPZ": (["attack", "{d}/text.skops", "{d}/text.csv", "--target", "label", "--out",
                             "{out}.npz"], r"text adversarial examples are written as .csv"),
    "attack: unknown attack": (["attack", "{d}/bc.skops", "{d}/test.csv", "--target", "label", "--attack", "pgdd",
                                "--out", "{out}.npz"], r"unknown attack 'pgdd'"),
    "attack: negative eps": (["attack", "{d}/bc.skops", "{d}/test.csv", "--target", "label", "--eps", "-0.1",
                              "--out", "{out}.npz"], r"eps=.*must be a finite number >= 0"),
    "attack: eps covering the whole range": (["attack", "{d}/bc.skops", "{d}/test.csv", "--target", "label",
                                              "--eps", "1.5", "--out", "{out}.npz"], r"covers the whole input range"),
    "attack: bad eps unit": (["attack", "{d}/bc.skops", "{d}/test.csv", "--target", "label", "--eps-unit", "pct",
                              "--out", "{out}.npz"], r"--eps-unit must be range or raw"),
    "attack: bad norm": (["attack", "{d}/bc.skops", "{d}/test.csv", "--target", "label", "--norm", "l3",
                          "--out", "{out}.npz"], r"--norm must be linf, l2 or l1"),
    "attack: negative seed": (["attack", "{d}/bc.skops", "{d}/test.csv", "--target", "label", "--seed", "-3",
                               "--out", "{out}.npz"], r"--seed.*greater than or equal to 0"),
    "attack: wrong shape for the CNN": (["attack", "{d}/cnn.pt", "{d}/big.npz", "--out", "{out}.npz"],
                                        r"cannot take this data"),
    "perturb: out equal to the input": (["perturb", "{d}/test.csv", "--perturbation", "feature_noise",
                                         "--target", "label", "--out", "{d}/test.csv"], r"is the input file"),
    "perturb: out in another format": (["perturb", "{d}/test.csv", "--perturbation", "feature_noise",
                                        "--out", "{out}.npz"], r"must end in one of .csv"),
    "perturb: unknown perturbation": (["perturb", "{d}/test.csv", "--perturbation", "fog", "--target", "label",
                                       "--out", "{out}.csv"], r"'fog' is for image data"),
    "perturb: severity 0": (["perturb", "{d}/test.csv", "--perturbation", "feature_noise", "--severity", "0",
                             "--out", "{out}.csv"], r"--severity must be an integer 1..5"),
    "drift: out is a file": (["drift", "{d}/test.csv", "{d}/test.csv", "--out", "{d}/a_file"],
                             r"is an existing file"),
    "drift: a CNN on a table": (["drift", "{d}/test.csv", "{d}/test.csv", "--target", "label", "--model",
                                 "{d}/cnn.pt", "--out", "{out}"], r"cannot take this data"),
    "drift: negative seed": (["drift", "{d}/test.csv", "{d}/test.csv", "--seed", "-1", "--out", "{out}"],
                             r"--seed.*greater than or equal to 0"),
    "drift: tiny current sample": (["drift", "{d}/test.csv", "{d}/dup_col.csv", "--out", "{out}"],
                                   r"repeats the column name"),
    "ood: out under a file": (["ood", "{d}/cnn.pt", "{d}/digits.npz", "{d}/digits.npz", "--out", "{d}/a_file/x"],
                              r"which is a file"),
    "ood: unknown detector": (["ood", "{d}/cnn.pt", "{d}/digits.npz", "{d}/digits.npz", "--detectors", "magic",
                               "--out", "{out}"], r"magic"),
    "report render: not a report": (["report", "render", "{d}/test.csv", "--out", "{out}"], r"not valid JSON"),
    "demo: out is a file": (["demo", "--out", "{d}/a_file"], r"is an existing file"),
    "demo: unknown suite": (["demo", "--suite", "slow", "--out", "{out}"], r"--suite must be quick, standard or thorough"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_invocation_exits_2_with_a_message_and_writes_nothing(case, f, tmp_path):
    argv, pattern = CASES[case]
    out = tmp_path / "out"
    before = sorted(p.name for p in f.iterdir())
    args = [a.format(d=f, out=out) for a in argv]
    result = runner.invoke(app, args)
    text = " ".join(result.output.split())
    assert result.exit_code == 2, f"{case}: exit {result.exit_code}\n{result.output}"
    assert "Traceback" not in result.output, result.output
    import re

    assert re.search(pattern, text), f"{case}: {text}"
    assert not any(p.name.startswith("out") for p in tmp_path.iterdir()), f"{case} wrote {list(tmp_path.iterdir())}"
    assert sorted(p.name for p in f.iterdir()) == before, f"{case} wrote into the fixture folder"


def test_reordered_columns_are_matched_by_name_not_refused(f, tmp_path):
    """The counterpart of the column cases: the same columns in another order give the same numbers."""
    import json

    runs = {}
    for name in ("test", "reordered"):
        result = runner.invoke(app, ["attack", str(f / "bc.skops"), str(f / f"{name}.csv"), "--target", "label",
                                     "--max-samples", "60", "--out", str(tmp_path / f"{name}.npz")])
        assert result.exit_code == 0, result.output
        runs[name] = json.loads((tmp_path / f"{name}.json").read_text())
    assert runs["test"]["clean_accuracy"] == runs["reordered"]["clean_accuracy"] > 0.9
    assert runs["test"]["robust_accuracy"] == runs["reordered"]["robust_accuracy"]


def test_outputs_respect_the_umask(f, tmp_path):
    old = os.umask(0o022)
    try:
        out = tmp_path / "adv.csv"
        result = runner.invoke(app, ["attack", str(f / "bc.skops"), str(f / "test.csv"), "--target", "label",
                                     "--max-samples", "40", "--out", str(out)])
        assert result.exit_code == 0, result.output
        for path in (out, tmp_path / "adv.json"):
            assert path.stat().st_mode & 0o777 == 0o644, oct(path.stat().st_mode)
        table = pd.read_csv(out)  # the format follows the extension: a table under the data's own names
        assert list(table.columns[:2]) == ["mean radius", "mean texture"] and "success" in table.columns
    finally:
        os.umask(old)


def test_an_internal_error_exits_3_with_one_line_and_a_traceback_file(capsys):
    from stalwart._cli_support import run_main

    def broken() -> None:
        raise RuntimeError("boom\nsecond line")

    with pytest.raises(SystemExit) as info:
        run_main(broken)
    assert info.value.code == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error (RuntimeError: boom second line)" in err
    log = err.split("the traceback is in ")[1].split(". Please")[0]
    text = Path(log).read_text()
    assert "Traceback (most recent call last)" in text and "RuntimeError: boom" in text
    os.unlink(log)


def test_ctrl_c_prints_one_line_and_exits_130(tmp_path):
    """A real SIGINT to a running scan: exit 130, one line, and no half-written report."""
    import signal
    import subprocess
    import sys
    import time

    script = ("import time, numpy as np, stalwart\n"
              "from stalwart._cli_support import run_main\n"
              "def slow():\n"
              "    print('ready', flush=True)\n"
              "    time.sleep(30)\n"
              "run_main(slow)\n")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130
    assert err.strip() == "stalwart: interrupted" and "Traceback" not in err


@pytest.mark.slow
def test_long_commands_report_progress_when_piped(f, tmp_path):
    """CliRunner's output is not a terminal: progress comes as plain lines, one per stage."""
    result = runner.invoke(app, ["attack", str(f / "bc.skops"), str(f / "test.csv"), "--target", "label",
                                 "--attack", "evaluate", "--max-samples", "40", "--out", str(tmp_path / "a.npz")])
    assert result.exit_code == 0, result.output
    lines = [ln for ln in result.output.splitlines() if ln.startswith("stalwart: [")]
    assert lines[:3] == ["stalwart: [1/5] evaluate: apgd-ce", "stalwart: [2/5] evaluate: apgd-t",
                         "stalwart: [3/5] evaluate: square"], lines
    assert "stalwart: [5/5] evaluate: sanity checks" in lines and "finished 5 step(s)" in result.output
