"""MMD, domain-classifier and PCA-reconstruction drift tests."""

import numpy as np
import pandas as pd
import pytest

from stalwart.errors import ConfigError, InputError
from stalwart.shift.base import DETECTORS
from stalwart.shift.multivariate import (
    ClassifierDrift,
    MMDDrift,
    PCAReconstructionDrift,
    median_bandwidth,
    mmd2_unbiased,
)


def _naive_mmd2(x, y, sigma):
    def k(a, b):
        return np.exp(-np.sum((a - b) ** 2) / (2 * sigma ** 2))

    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def test_unbiased_mmd2_equals_double_loop_and_median_heuristic():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(7, 3)), rng.normal(0.5, size=(5, 3))
    value, sigma = mmd2_unbiased(x, y, sigma=0.8)
    assert value == pytest.approx(_naive_mmd2(x, y, 0.8), rel=1e-12)
    z = np.vstack([x, y])
    d2 = ((z[:, None] - z[None]) ** 2).sum(-1)
    med = np.median(d2[np.triu_indices(len(z), 1)])
    _, auto = mmd2_unbiased(x, y)
    assert auto == pytest.approx(np.sqrt(med / 2))
    assert median_bandwidth(d2) == pytest.approx(np.sqrt(med / 2))


def test_mmd_permutation_null_is_uniformish_and_shift_is_detected():
    rng = np.random.default_rng(1)
    pvals = [MMDDrift(seed=s).fit(rng.normal(size=(80, 3))).test(rng.normal(size=(80, 3))).p_value
             for s in range(12)]
    assert 0.25 < np.mean(pvals) < 0.75
    assert np.mean(np.array(pvals) <= 0.05) <= 0.25
    det = MMDDrift(n_permutations=100, seed=0).fit(rng.normal(size=(300, 5)))
    r = det.test(rng.normal(0.5, size=(300, 5)))
    assert r.p_value < 0.01 and r.drifted and r.method == "mmd"
    assert r.statistic > r.details["null_quantile"]
    # the observed statistic is the unbiased MMD^2 at the reported bandwidth
    again = det.test(rng.normal(size=(300, 5)))
    assert not again.drifted
    assert np.all(np.isfinite([r.statistic, r.details["sigma"]]))


def test_mmd_same_seed_same_result():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(60, 2)), rng.normal(size=(50, 2))
    a, b = MMDDrift(seed=3).fit(x).test(y), MMDDrift(seed=3).fit(x).test(y)
    assert a.p_value == b.p_value and a.statistic == pytest.approx(mmd2_unbiased(x, y)[0])


def test_mmd_linear_time():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(4000, 4))
    null = MMDDrift(linear_time=True, seed=0).fit(x).test(rng.normal(size=(4000, 4)))
    shifted = MMDDrift(linear_time=True, seed=0).fit(x).test(rng.normal(0.4, size=(4000, 4)))
    assert null.p_value > 0.01 and not null.drifted
    assert shifted.p_value < 1e-4 and shifted.details["n_pairs"] == 2000


def test_classifier_drift_auc_under_null_and_strong_shift():
    rng = np.random.default_rng(4)

    def frame(shift):
        df = pd.DataFrame(rng.normal(size=(400, 4)), columns=list("abde"))
        df["b"] += shift
        df["c"] = rng.choice(["p", "q"], 400)
        return df

    ref = frame(0.0)
    null = ClassifierDrift(n_folds=3, seed=0, n_jobs=1).fit(ref).test(frame(0.0))
    assert abs(null.statistic - 0.5) < 0.06 and not null.drifted
    for model in ("hgb", "logistic"):
        r = ClassifierDrift(model=model, n_folds=3, seed=0, n_jobs=1).fit(ref).test(frame(1.5))
        assert r.statistic > 0.7 and r.p_value < 1e-6 and r.drifted
        assert r.details["top_features"][0][0] == "b"
    assert DETECTORS.get("classifier") is ClassifierDrift


def test_pca_reconstruction_detects_a_correlation_flip_not_null():
    rng = np.random.default_rng(5)
    cov = [[1.0, 0.9, 0.0], [0.9, 1.0, 0.0], [0.0, 0.0, 0.1]]
    flip = [[1.0, -0.9, 0.0], [-0.9, 1.0, 0.0], [0.0, 0.0, 0.1]]
    det = PCAReconstructionDrift(variance=0.9).fit(rng.multivariate_normal([0, 0, 0], cov, 2000))
    null = det.test(rng.multivariate_normal([0, 0, 0], cov, 1000))
    changed = det.test(rng.multivariate_normal([0, 0, 0], flip, 1000))
    assert null.p_value > 0.01 and 0.8 < null.details["error_ratio"] < 1.25
    assert changed.p_value < 1e-10 and changed.details["error_ratio"] > 5
    # standardised: the correlated pair needs one component, the independent third its own
    assert det.n_components_ == 2 and det.score(np.zeros((2, 3))).shape == (2,)


def test_multivariate_errors():
    rng = np.random.default_rng(6)
    with pytest.raises(InputError, match="2 features but the reference has 3"):
        MMDDrift().fit(rng.normal(size=(10, 3))).test(rng.normal(size=(10, 2)))
    with pytest.raises(ConfigError, match="call fit"):
        MMDDrift().test(np.zeros((4, 2)))
    with pytest.raises(ConfigError, match=r"n_permutations=\.\.\.\) must be an integer >= 1"):
        MMDDrift(n_permutations=0)
    with pytest.raises(InputError, match="linear_time=True"):
        MMDDrift(max_samples=20).fit(rng.normal(size=(15, 2))).test(rng.normal(size=(15, 2)))
    with pytest.raises(InputError, match="NaN"):
        MMDDrift().fit(np.array([[1.0], [np.nan]]))
    with pytest.raises(ConfigError, match="model"):
        ClassifierDrift(model="forest")
    with pytest.raises(InputError, match="at least n_folds"):
        ClassifierDrift(n_folds=5).fit(rng.normal(size=(3, 2))).test(rng.normal(size=(3, 2)))
    with pytest.raises(InputError, match="at least 2 features"):
        PCAReconstructionDrift().fit(rng.normal(size=(50, 1)))
    with pytest.raises(ConfigError, match="variance"):
        PCAReconstructionDrift(variance=1.5)
