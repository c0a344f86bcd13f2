"""The security checks on scikit-learn models: a memorising tree leaks membership, a copy is
extracted from answers, a backdoor is learnt from a few poisoned rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.tree import DecisionTreeClassifier

from stalwart import Dataset
from stalwart.checks import Extraction, MembershipInference, Poisoning
from stalwart.errors import ConfigError


@pytest.fixture(scope="module")
def split():
    bunch = load_breast_cancer(as_frame=True)
    x, y = bunch.data, bunch.target.to_numpy()
    idx = np.random.default_rng(0).permutation(len(x))
    tr, te = idx[:300], idx[300:]
    train = Dataset.from_arrays(x.iloc[tr].reset_index(drop=True), y[tr], modality="tabular", target="target")
    test = Dataset.from_arrays(x.iloc[te].reset_index(drop=True), y[te], modality="tabular", target="target")
    tree = DecisionTreeClassifier(random_state=0).fit(train.x, train.y)  # memorises its training rows
    return tree, train, test


def test_a_memorising_tree_leaks_membership(split):
    tree, train, test = split
    r = MembershipInference(members=train, attack="loss").run(tree, test, seed=0)
    assert r.status.value == "PASS", r.message
    auc = r.metrics["membership_auc"]
    # a pure tree gives loss 0 to every member and to every non-member it gets right (93%): only the
    # non-members it gets wrong separate, so AUC ~ 0.5 + 0.07 / 2, and its interval excludes 0.5
    assert auc.value > 0.52 and auc.low > 0.5
    assert "tpr_at_0.1pct_fpr" not in r.metrics  # 269 non-members cannot measure a 0.1% FPR
    assert r.curves["roc"]["x_scale"] == "log"


def test_a_condition_on_the_low_fpr_point_judges_the_leak(split):
    tree, train, test = split
    r = MembershipInference(members=train, conditions=["membership_advantage <= 0.05"]).run(tree, test, seed=0)
    assert r.status.value == "FAIL"


def test_extraction_copies_the_tree_from_its_answers(split):
    tree, _, test = split
    r = Extraction(budgets=[30, 130], transfer_eps=None).run(tree, test, seed=0)
    assert r.status.value == "PASS", r.message
    assert r.metrics["fidelity"].value > 0.8
    assert [p["queries"] for p in r.tables["curve"]] == [30, 130]


def test_a_backdoor_is_learnt_from_few_rows(split):
    tree, train, test = split
    r = Poisoning(train_data=train, kind="backdoor", rates=[0.05]).run(tree, test, seed=0)
    assert r.status.value == "PASS", r.message
    assert r.metrics["attack_success"].value > 0.8
    assert r.metrics["poisoned_accuracy"].value > r.metrics["clean_accuracy"].value - 0.1
    assert [row["rate"] for row in r.tables["rates"]] == [0.0, 0.05]


def test_probes_that_refit_skip_a_model_they_cannot_refit(split):
    _, train, test = split

    def predict(v):
        v = np.asarray(v, dtype=float)
        return np.c_[v[:, 0] < 14, v[:, 0] >= 14].astype(float)

    r = Poisoning(train_data=train).run(predict, test, seed=0)
    assert r.status.value == "SKIP" and "membership inference" in r.message
    r = MembershipInference(members=train, attack="lira").run(predict, test, seed=0)
    assert r.status.value == "SKIP" and "'loss' and 'confidence'" in r.message


def test_bad_parameters(split):
    with pytest.raises(ConfigError, match="attack"):
        MembershipInference(members=pd.DataFrame({"a": [1]}), attack="magic")
    with pytest.raises(ConfigError, match="rates"):
        Poisoning(train_data="t.csv", rates=[1.5])
    with pytest.raises(ConfigError, match="budgets"):
        Extraction(budgets=[0])
