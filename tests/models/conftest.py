"""Data sets shared by the model-adapter tests (sklearn's bundled ones: offline and fast)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_digits, load_wine
from sklearn.preprocessing import StandardScaler


def _load(loader, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    x, y = loader(return_X_y=True)
    if n is not None:
        order = np.random.default_rng(0).permutation(len(x))[:n]
        x, y = x[order], y[order]
    return x, y


@pytest.fixture(scope="session")
def cancer() -> tuple[np.ndarray, np.ndarray]:
    """Breast cancer, raw features (binary)."""
    return _load(load_breast_cancer)


@pytest.fixture(scope="session")
def wine() -> tuple[np.ndarray, np.ndarray]:
    """Wine, raw features (3 classes)."""
    return _load(load_wine)


@pytest.fixture(scope="session")
def digits() -> tuple[np.ndarray, np.ndarray]:
    """600 digits (10 classes, 64 features in 0..16)."""
    return _load(load_digits, 600)


@pytest.fixture(scope="session")
def cancer_std(cancer) -> tuple[np.ndarray, np.ndarray]:
    return StandardScaler().fit_transform(cancer[0]), cancer[1]


@pytest.fixture(scope="session")
def wine_std(wine) -> tuple[np.ndarray, np.ndarray]:
    return StandardScaler().fit_transform(wine[0]), wine[1]
