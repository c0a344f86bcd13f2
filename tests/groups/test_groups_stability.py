"""Stability: the folds are scikit-learn's own cross-validation scores, churn is 0 for a
deterministic fit and positive for a randomised one, and per-group spread is reported."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from stalwart import groups
from stalwart.errors import ConfigError, ModelError


@pytest.fixture(scope="module")
def bc():
    return load_breast_cancer(return_X_y=True)


def test_folds_are_sklearns_cross_validation_and_the_interval_holds_the_mean(bc):
    x, y = bc
    res = groups.stability(DecisionTreeClassifier(random_state=0), x, y, cv=5, seeds=())
    want = cross_val_score(DecisionTreeClassifier(random_state=0), x, y,
                           cv=StratifiedKFold(5, shuffle=True, random_state=0))
    np.testing.assert_allclose(res.folds, want)
    assert res.low < res.mean < res.high and res.spread == pytest.approx(want.max() - want.min())
    assert res.churn is None


def test_churn_is_zero_for_a_deterministic_fit_and_positive_for_a_random_one(bc):
    x, y = bc
    det = groups.stability(make_pipeline(StandardScaler(), LogisticRegression()), x, y, seeds=(0, 1, 2))
    assert det.churn == 0.0 and det.churn_low == 0.0
    rnd = groups.stability(RandomForestClassifier(n_estimators=5, random_state=0), x, y, seeds=(0, 1, 2, 3))
    assert rnd.churn > 0 and rnd.churn_low > 0 and rnd.churn < 0.2


def test_per_group_spread_and_a_fit_function(bc):
    x, y = bc
    big = np.where(x[:, 0] > np.median(x[:, 0]), "large", "small")

    def fit(xs, ys, seed):
        return DecisionTreeClassifier(max_depth=3, random_state=seed).fit(xs, ys)

    res = groups.stability(fit, x, y, sensitive=big, seeds=(0, 1))
    assert {r["group"] for r in res.by_group} == {"large", "small"}
    assert all(r["min"] <= r["mean"] <= r["max"] for r in res.by_group)


def test_refused_input(bc):
    x, y = bc
    with pytest.raises(ConfigError, match="cv"):
        groups.stability(LogisticRegression(), x, y, cv=1)
    with pytest.raises(ConfigError, match="two seeds"):
        groups.stability(LogisticRegression(), x, y, seeds=(0,))
    with pytest.raises(ConfigError, match="rarest class"):
        groups.stability(LogisticRegression(), x[:30], np.r_[np.zeros(28), np.ones(2)], cv=5)
    with pytest.raises(ModelError, match="estimator"):
        groups.stability(42, x, y)
