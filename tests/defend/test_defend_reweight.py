"""Importance-weighted refitting on a textbook covariate shift: a linear model fitted where the
data was is wrong where the data goes; weighted toward it, it is right there."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from stalwart.defend import importance_weighted_fit
from stalwart.errors import ConfigError, ModelError


def label(x):
    return (x[:, 0] ** 2 > 2.5).astype(int)  # no linear rule fits it everywhere, one does near x = 2


@pytest.fixture(scope="module")
def shifted():
    rng = np.random.default_rng(0)
    x_train = rng.normal(0.0, 1.5, size=(2000, 1))
    x_cur = rng.normal(2.0, 0.4, size=(1000, 1))
    x_test = rng.normal(2.0, 0.4, size=(1000, 1))
    return x_train, label(x_train), x_cur, x_test, label(x_test)


def test_reweighting_fits_the_region_the_data_moved_to(shifted):
    x_train, y_train, x_cur, x_test, y_test = shifted
    plain = LogisticRegression().fit(x_train, y_train)
    res = importance_weighted_fit(LogisticRegression(), x_train, y_train, x_cur)
    before = (plain.predict(x_test) == y_test).mean()
    after = (res.estimator.predict(x_test) == y_test).mean()
    assert after >= before + 0.15, (before, after)
    assert res.domain_auc > 0.8 and res.effective_sample_size < 0.5 * len(x_train)


def test_no_shift_gives_flat_weights_and_the_same_model(shifted):
    x_train, y_train, _, _, _ = shifted
    rng = np.random.default_rng(1)
    res = importance_weighted_fit(make_pipeline(StandardScaler(), LogisticRegression()), x_train, y_train,
                                  rng.normal(0.0, 1.5, size=(1000, 1)))
    assert 0.4 < res.domain_auc < 0.6
    assert res.effective_sample_size > 0.9 * len(x_train)


def test_refused_inputs(shifted):
    x_train, y_train, x_cur, _, _ = shifted
    with pytest.raises(ModelError, match="sample_weight"):
        importance_weighted_fit(KNeighborsClassifier(), x_train, y_train, x_cur)
    with pytest.raises(ConfigError, match="columns"):
        importance_weighted_fit(LogisticRegression(), x_train, y_train, np.hstack([x_cur, x_cur]))
    with pytest.raises(ConfigError, match="domain_classifier"):
        importance_weighted_fit(LogisticRegression(), x_train, y_train, x_cur, domain_classifier="svm")
