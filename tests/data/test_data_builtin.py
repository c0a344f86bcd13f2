"""Built-in data sets: shapes, classes, value ranges, stratified seeded splits, errors."""

import numpy as np
import pandas as pd
import pytest

from stalwart import datasets
from stalwart.errors import ConfigError

# sizes and class counts of scikit-learn's bundled copies (UCI originals)
EXPECTED = {
    "breast_cancer": (569, {0: 212, 1: 357}),
    "wine": (178, {0: 59, 1: 71, 2: 48}),
    "digits": (1797, {0: 178, 1: 182, 2: 177, 3: 183, 4: 181, 5: 182, 6: 181, 7: 179, 8: 174, 9: 180}),
    "sentiment": (400, {0: 200, 1: 200}),
}


def test_names():
    assert datasets.names() == ["breast_cancer", "digits", "sentiment", "wine"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_all_split_sizes_and_classes(name):
    n, counts = EXPECTED[name]
    ds = datasets.load(name, split="all")
    assert len(ds) == n and ds.name == name
    values, got = np.unique(ds.y, return_counts=True)
    assert dict(zip(values.tolist(), got.tolist())) == counts
    assert ds.y.dtype == np.int64
    assert len(ds.meta["class_names"]) == len(counts)


def test_breast_cancer_table():
    ds = datasets.load("breast_cancer", split="all")
    assert ds.modality == "tabular" and isinstance(ds.x, pd.DataFrame) and ds.x.shape == (569, 30)
    assert ds.x.columns[0] == "mean radius" and "worst fractal dimension" in ds.x.columns
    assert all(c.kind == "numeric" for c in ds.schema.columns)
    assert ds.meta["class_names"] == ["malignant", "benign"] and ds.target == "target"
    # observed ranges become the schema's bounds (known extremes of the UCI data)
    col = ds.schema.column("mean radius")
    assert (col.lower, col.upper) == (6.981, 28.11)


def test_wine_table():
    ds = datasets.load("wine", split="all")
    assert ds.modality == "tabular" and ds.x.shape == (178, 13) and ds.x.columns[0] == "alcohol"
    assert ds.schema.column("alcohol").lower == 11.03


def test_digits_images():
    ds = datasets.load("digits", split="all")
    assert ds.modality == "image" and ds.x.shape == (1797, 1, 8, 8) and ds.x.dtype == np.float32
    assert ds.schema.value_range == (0.0, 1.0) and ds.schema.shape == (1, 8, 8)
    assert ds.x.min() == 0.0 and ds.x.max() == 1.0
    # pixel values were integers 0..16, so 16 * x is integral
    np.testing.assert_array_equal(ds.x * 16, np.round(ds.x * 16))


def test_sentiment_text():
    ds = datasets.load("sentiment", split="all")
    assert ds.modality == "text" and isinstance(ds.x, list) and all(isinstance(t, str) for t in ds.x)
    assert len(set(ds.x)) == 400 and ds.meta["class_names"] == ["negative", "positive"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_split_is_stratified_disjoint_and_seeded(name):
    n, counts = EXPECTED[name]
    train, test = datasets.load_split(name, seed=0)
    assert len(test) == int(np.ceil(0.3 * n)) and len(train) + len(test) == n
    # each class keeps (almost exactly) its share in the test split
    for label, count in counts.items():
        assert abs(int(np.sum(test.y == label)) - 0.3 * count) <= 1
    assert train.schema is not None and train.schema == test.schema
    assert train.meta["split"] == "train" and test.meta["split"] == "test" and test.meta["seed"] == 0
    again = datasets.load(name, seed=0)
    assert again.fingerprint() == test.fingerprint()
    assert datasets.load(name, split="train", seed=0).fingerprint() == train.fingerprint()
    assert datasets.load(name, seed=1).fingerprint() != test.fingerprint()


def test_split_rows_partition_the_whole_set():
    full = datasets.load("wine", split="all")
    train, test = datasets.load_split("wine", seed=7, test_size=0.25)
    assert len(test) == 45
    rows = {tuple(r) for r in full.x.to_numpy().tolist()}
    tr = {tuple(r) for r in train.x.to_numpy().tolist()}
    te = {tuple(r) for r in test.x.to_numpy().tolist()}
    assert tr | te == rows and not tr & te


def test_errors():
    with pytest.raises(ConfigError, match=r"unknown dataset 'mnist'; built-in data sets are: "
                                          r"breast_cancer, digits, sentiment, wine"):
        datasets.load("mnist")
    with pytest.raises(ConfigError, match=r"unknown dataset 'iris'"):
        datasets.load_split("iris")
    with pytest.raises(ConfigError, match=r"datasets.load\(split=...\) must be one of \['test', 'train', 'all'\]; got 'val'"):
        datasets.load("wine", split="val")
    with pytest.raises(ConfigError, match=r"datasets.load_split\(test_size=...\) must be a fraction strictly between 0 and 1; got 1.5"):
        datasets.load_split("wine", test_size=1.5)
    with pytest.raises(ConfigError, match=r"datasets.load\(seed=...\) must be an integer; got 0.5"):
        datasets.load("wine", seed=0.5)
    with pytest.raises(ConfigError, match=r"datasets.load\(test_size=...\) must be large enough for every class"):
        datasets.load("wine", test_size=0.01)
