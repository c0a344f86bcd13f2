"""Column identity: a table's columns are matched to the model's by name, or refused (models/compat.py).

The expectation for every clean accuracy here is scikit-learn's own ``accuracy_score`` of the
pipeline on the data in its original column order; a check that fed the columns to the model by
position would see a different (wrong) number.
"""

from __future__ import annotations

import unicodedata

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from stalwart import Dataset, wrap
from stalwart.checks import AdversarialRobustness, NaturalRobustness
from stalwart.checks.performance import CleanPerformance
from stalwart.data import load_data
from stalwart.datasets import load_split
from stalwart.errors import InputError
from stalwart.models.compat import align_columns, check_compatible
from stalwart.suite import Suite

N_ROWS = 90  # below every check's max_samples: each check measures on all rows


@pytest.fixture(scope="module")
def cancer():
    """A DataFrame-fitted scaler + logistic-regression pipeline and 90 held-out named rows."""
    train, test = load_split("breast_cancer", seed=0)
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(train.x, train.y)
    x = test.x.iloc[:N_ROWS].reset_index(drop=True)
    y = np.asarray(test.y)[:N_ROWS]
    return pipe, x, y, float(accuracy_score(y, pipe.predict(x)))


@pytest.fixture(scope="module")
def arr_pipe():
    """The same pipeline fitted on a bare array: it declares no column names."""
    train, _ = load_split("breast_cancer", seed=0)
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(train.x.to_numpy(), train.y)


def _checks():
    return [NaturalRobustness(perturbations=["feature_noise", "rounding"], severities=(1, 3),
                              column_sensitivity=False),
            AdversarialRobustness(attack="fgsm", eps=[0.01, 0.03], minimal=False)]


def _orders(columns):
    cols = list(columns)
    perm = np.random.default_rng(7).permutation(len(cols))
    return {"original": cols, "reversed": cols[::-1], "shuffled": [cols[i] for i in perm]}


@pytest.mark.parametrize("order", ["original", "reversed", "shuffled"])
def test_every_check_in_one_report_sees_sklearns_clean_accuracy(cancer, order):
    pipe, x, y, expected = cancer
    assert 0.9 < expected < 1.0  # a real model, not a degenerate case
    cols = _orders(x.columns)[order]
    report = Suite(_checks()).run(pipe, Dataset.from_arrays(x[cols], y), seed=0).to_dict()
    results = {r["check"]: r for r in report["results"]}
    assert list(results) == ["clean_performance", "natural_robustness", "adversarial_robustness"]
    for name, r in results.items():
        assert r["status"] not in ("ERROR", "SKIP"), (name, r["message"])
        assert r["metrics"]["clean_accuracy"]["value"] == pytest.approx(expected, abs=1e-12), name
        assert r["metrics"]["clean_accuracy"]["n"] == N_ROWS, name  # every row measured
    matching = report["data"].get("column_matching")
    if order == "original":
        assert matching == "by name"  # already in the model's order: matched by name, nothing moved
    else:
        assert matching.startswith("by name")


@pytest.mark.parametrize("check", [CleanPerformance(), *_checks()], ids=lambda c: c.name)
def test_each_check_run_alone_matches_columns_by_name(cancer, check):
    pipe, x, y, expected = cancer
    cols = _orders(x.columns)["shuffled"]
    result = check.run(pipe, Dataset.from_arrays(x[cols], y), seed=1)
    assert result.metrics["clean_accuracy"].value == pytest.approx(expected, abs=1e-12)


def test_adversarial_check_gives_the_same_robust_accuracy_in_any_column_order(cancer):
    pipe, x, y, _ = cancer
    check = AdversarialRobustness(attack="fgsm", eps=[0.01, 0.03, 0.1], minimal=False)
    a = check.run(pipe, Dataset.from_arrays(x, y), seed=0).metrics
    b = check.run(pipe, Dataset.from_arrays(x[x.columns[::-1]], y), seed=0).metrics
    for key in ("robust_accuracy_at_0.01", "robust_accuracy_at_0.03", "robust_accuracy_at_0.1"):
        assert a[key].value == b[key].value, key
    assert a["robust_accuracy_at_0.1"].value < a["clean_accuracy"].value  # the attack did something


def test_reordered_copy_keeps_schema_in_model_order(cancer):
    pipe, x, y, _ = cancer
    data = Dataset.from_arrays(x[x.columns[::-1]], y)
    out = check_compatible(wrap(pipe), data)
    assert list(out.x.columns) == list(x.columns)
    assert [c.name for c in out.schema.columns] == list(x.columns)
    # every column carried its own values (and bounds) along, not its position's
    pd.testing.assert_frame_equal(out.x, x, check_dtype=False)
    assert out.schema.column("mean area").upper == pytest.approx(float(x["mean area"].max()))


# -- refusals ------------------------------------------------------------------------------------
def _renamed(x, old, new):
    return x.rename(columns={old: new})


CASES = {
    "missing": (lambda x: x.drop(columns=["mean area"]), ["'mean area'"], "missing"),
    "extra": (lambda x: x.assign(hospital_id=1.0), ["'hospital_id'"], "unexpected"),
    "renamed": (lambda x: _renamed(x, "worst symmetry", "worst symmetry index"),
                ["'worst symmetry'", "'worst symmetry index'"], "missing"),
    "trailing space": (lambda x: _renamed(x, "mean area", "mean area "), ["'mean area '"], "whitespace"),
    "double space": (lambda x: _renamed(x, "mean area", "mean  area"), ["'mean  area'"], "whitespace"),
    "nbsp": (lambda x: _renamed(x, "mean area", "mean\u00a0area"), ["'mean\\xa0area'"], "Unicode"),
    "case": (lambda x: _renamed(x, "mean area", "Mean Area"), ["'Mean Area'"], "case"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_mismatched_columns_are_refused_naming_the_differences(cancer, case):
    pipe, x, y, _ = cancer
    make, names, word = CASES[case]
    data = Dataset.from_arrays(make(x), y)
    for run in (lambda: Suite(_checks()).run(pipe, data),
                lambda: CleanPerformance().run(pipe, data),
                lambda: check_compatible(wrap(pipe), data)):
        with pytest.raises(InputError) as err:
            run()
        text = str(err.value)
        assert word in text, text
        for name in names:
            assert name in text, text


def test_unicode_normal_forms_are_different_names_and_the_message_says_so():
    """NFC 'café' in the model, NFD 'cafe\\u0301' in the data: equal to the eye, not to the model."""
    rng = np.random.default_rng(0)
    nfc = unicodedata.normalize("NFC", "café")
    nfd = unicodedata.normalize("NFD", "café")
    assert nfc != nfd and len(nfd) == len(nfc) + 1
    x = pd.DataFrame({nfc: rng.normal(size=60), "b": rng.normal(size=60)})
    y = (x[nfc] > 0).astype(int).to_numpy()
    model = wrap(LogisticRegression().fit(x, y))
    with pytest.raises(InputError) as err:
        check_compatible(model, Dataset.from_arrays(x.rename(columns={nfc: nfd}), y))
    text = str(err.value)
    assert ascii(nfd) in text and ascii(nfc) in text and "Unicode" in text
    # the NFC spelling is accepted (and needs no reordering)
    assert check_compatible(model, Dataset.from_arrays(x, y)).x.columns.tolist() == [nfc, "b"]


def test_duplicate_column_names_are_refused(cancer):
    pipe, x, y, _ = cancer
    dup = x.copy()
    dup.columns = ["mean area" if c == "mean radius" else c for c in dup.columns]
    with pytest.raises(InputError, match="mean area"):
        Suite(_checks()).run(pipe, Dataset.from_arrays(dup, y))


def test_align_columns_refuses_duplicates_itself(cancer):
    """The frame may come from elsewhere than Dataset.from_arrays (which refuses duplicates too)."""
    pipe, x, y, _ = cancer
    good = Dataset.from_arrays(x, y)
    dup = x.copy()
    dup.columns = ["mean area" if c == "mean radius" else c for c in dup.columns]
    data = Dataset(dup, y, "tabular", good.schema)
    with pytest.raises(InputError, match="duplicate column names.*mean area"):
        align_columns(data, list(x.columns))


def test_extra_columns_ignored_only_on_request(cancer):
    pipe, x, y, _ = cancer
    data = Dataset.from_arrays(x.assign(zz=0.0)[["zz", *x.columns[::-1]]], y)
    out = align_columns(data, list(x.columns), extra="ignore")
    assert list(out.x.columns) == list(x.columns)
    # a missing column is still refused, and the extras are then named too
    with pytest.raises(InputError, match="missing.*'mean area'.*unexpected.*'zz'"):
        align_columns(Dataset.from_arrays(x.drop(columns="mean area").assign(zz=0.0), y), list(x.columns),
                      extra="ignore")


# -- models without names ------------------------------------------------------------------------
def test_model_fitted_on_arrays_matches_by_position_and_the_report_says_so(cancer, arr_pipe):
    pipe, x, y, _ = cancer
    expected = accuracy_score(y, arr_pipe.predict(x.to_numpy()))
    report = Suite([], gate=True).run(arr_pipe, Dataset.from_arrays(x, y)).to_dict()
    assert report["data"]["column_matching"].startswith("by position")
    assert report["results"][0]["metrics"]["clean_accuracy"]["value"] == pytest.approx(expected)
    # by position means the names are not consulted: reversed columns are fed as they are
    reversed_x = x[x.columns[::-1]]
    rev = CleanPerformance(conditions=[]).run(arr_pipe, Dataset.from_arrays(reversed_x, y))
    assert rev.metrics["clean_accuracy"].value == pytest.approx(
        accuracy_score(y, arr_pipe.predict(reversed_x.to_numpy())))
    # a wrong number of columns is still refused up front
    with pytest.raises(InputError, match="29 columns.*30 features"):
        check_compatible(wrap(arr_pipe), Dataset.from_arrays(x.iloc[:, :29], y))


def test_check_compatible_leaves_the_callers_dataset_alone(cancer, arr_pipe):
    """The dataset passed in must not be changed: meta is a shared dict."""
    pipe, x, y, _ = cancer
    arr_model = wrap(arr_pipe)
    data = Dataset.from_arrays(x, y)
    check_compatible(arr_model, data)
    assert "column_matching" not in data.meta


def test_column_matching_is_not_stale_from_an_earlier_model(cancer, arr_pipe):
    """The same dataset given first to an array-fitted model, then to a named one in its own order:
    the second report must not claim the columns were matched by position."""
    pipe, x, y, _ = cancer
    data = Dataset.from_arrays(x, y)
    Suite([]).run(arr_pipe, data)
    report = Suite([]).run(pipe, data).to_dict()
    assert not str(report["data"].get("column_matching", "")).startswith("by position")


# -- values ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_infinite_values_are_refused_naming_column_and_row(cancer, value):
    pipe, x, y, _ = cancer
    bad = x.copy()
    bad.loc[17, "mean texture"] = value
    data = Dataset.from_arrays(bad, y)
    for run in (lambda: Suite(_checks()).run(pipe, data), lambda: CleanPerformance().run(pipe, data)):
        with pytest.raises(InputError, match=r"infinite values in columns \['mean texture'\] \(1 row\(s\), first: "
                                             r"\[17\]\)"):
            run()


def _nan_table(n=200, seed=0):
    rng = np.random.default_rng(seed)
    x = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.normal(size=n)})
    y = (x["a"] - x["b"] > 0).astype(int).to_numpy()
    holes = x.copy()
    holes.loc[[3, 40, 41], "b"] = np.nan
    return x, y, holes


def test_missing_values_allowed_for_a_model_that_handles_them():
    x, y, holes = _nan_table()
    hgb = HistGradientBoostingClassifier(max_iter=30, random_state=0).fit(x, y)
    expected = accuracy_score(y, hgb.predict(holes))
    report = Suite([]).run(hgb, Dataset.from_arrays(holes, y)).to_dict()
    gate = report["results"][0]
    assert gate["status"] == "PASS"
    assert gate["metrics"]["clean_accuracy"]["value"] == pytest.approx(expected)


def test_missing_values_refused_for_a_model_that_cannot_answer_for_them():
    x, y, holes = _nan_table()
    lr = LogisticRegression().fit(x, y)
    with pytest.raises(InputError) as err:
        Suite([]).run(lr, Dataset.from_arrays(holes, y))
    text = str(err.value)
    assert "missing values in columns ['b'] (3 row(s), first: [3, 40, 41])" in text
    assert "impute" in text


def test_npz_and_csv_of_the_same_table_behave_the_same(tmp_path):
    x, y, holes = _nan_table(n=120, seed=1)
    lr = LogisticRegression().fit(x.to_numpy(), y)  # no names: matched by position either way
    expected = accuracy_score(y, lr.predict(x.to_numpy()))

    def both(frame, stem):
        table = frame.copy()
        table["label"] = y
        table.to_csv(tmp_path / f"{stem}.csv", index=False)
        np.savez(tmp_path / f"{stem}.npz", x=frame.to_numpy(), y=y)
        return (load_data(tmp_path / f"{stem}.csv", target="label"), load_data(tmp_path / f"{stem}.npz"))

    csv, npz = both(x, "clean")
    accs = [CleanPerformance().run(lr, d).metrics["clean_accuracy"].value for d in (csv, npz)]
    assert accs == [pytest.approx(expected)] * 2

    inf = x.copy()
    inf.loc[5, "c"] = np.inf
    for data in both(inf, "inf"):
        with pytest.raises(InputError, match=r"infinite values .*\(1 row\(s\), first: \[5\]\)"):
            CleanPerformance().run(lr, data)
    for data in both(holes, "nan"):
        with pytest.raises(InputError, match=r"missing values .*\(3 row\(s\), first: \[3, 40, 41\]\)"):
            CleanPerformance().run(lr, data)


def test_an_empty_column_is_reported_as_missing_values():
    x, y, _ = _nan_table(n=60)
    lr = LogisticRegression().fit(x, y)
    empty = x.assign(b=np.nan)
    with pytest.raises(InputError, match=r"missing values in columns \['b'\]"):
        check_compatible(wrap(lr), Dataset.from_arrays(empty, y))


def test_a_float32_torch_model_takes_a_float32_table_without_warnings():
    import warnings

    import torch

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(int)
    net = torch.nn.Linear(3, 2)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]))
        net.bias.zero_()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = check_compatible(wrap(net), Dataset.from_arrays(x, y))
    assert len(out) == 40
