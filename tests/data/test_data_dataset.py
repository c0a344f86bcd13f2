"""Dataset.from_arrays and the Dataset helpers: modality, image layout, ranges, subsets, hashes."""

import hashlib

import numpy as np
import pandas as pd
import pytest

from stalwart.data import Dataset
from stalwart.data.dataset import _stratified_counts, infer_modality
from stalwart.errors import ConfigError, InputError


@pytest.mark.parametrize("x, modality", [
    (["good", "bad"], "text"),
    (("good", "bad"), "text"),
    (np.array(["good", "bad"]), "text"),
    (np.zeros((2, 3)), "tabular"),
    ([[1, 2], [3, 4]], "tabular"),
    (pd.DataFrame({"a": [1, 2]}), "tabular"),
    (np.zeros((2, 4, 4)), "image"),
    (np.zeros((2, 3, 4, 4)), "image"),
])
def test_modality_inference(x, modality):
    assert infer_modality(x) == modality
    assert Dataset.from_arrays(x).modality == modality


def test_modality_cannot_be_inferred():
    with pytest.raises(InputError, match=r"cannot tell the modality of data with shape \(3,\); pass modality="):
        Dataset.from_arrays(np.array([1.0, 2.0, 3.0]))
    with pytest.raises(ConfigError, match=r"modality must be one of .*got 'audio'"):
        Dataset.from_arrays(np.zeros((2, 2)), modality="audio")


def test_image_layout_and_range():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, size=(5, 6, 7))
    ds = Dataset.from_arrays(x, np.arange(5))
    assert ds.x.shape == (5, 1, 6, 7) and ds.x.dtype == np.float32
    np.testing.assert_allclose(ds.x[:, 0], x.astype(np.float32))
    assert ds.schema.value_range == (0.0, 1.0) and ds.schema.shape == (1, 6, 7)
    # 0..255 pixel values get a (0, 255) range; anything else its observed span
    assert Dataset.from_arrays(np.full((2, 3, 4, 4), 200.0)).schema.value_range == (0.0, 255.0)
    assert Dataset.from_arrays(np.linspace(-2, 3, 32).reshape(2, 1, 4, 4)).schema.value_range == (-2.0, 3.0)


def test_nhwc_images_get_a_transpose_hint():
    with pytest.raises(InputError, match=r"N x C x H x W .*got shape \(2, 8, 8, 3\).*transpose\(0, 3, 1, 2\)"):
        Dataset.from_arrays(np.zeros((2, 8, 8, 3)))


def test_image_value_range_errors():
    x = np.full((2, 1, 3, 3), 0.5)
    x[1, 0, 0, 0] = 1.5
    with pytest.raises(InputError, match=r"image values span \[0\.5, 1\.5\] outside value_range \(0\.0, 1\.0\)"):
        Dataset.from_arrays(x, value_range=(0.0, 1.0))
    with pytest.raises(ConfigError, match=r"value_range must be finite with low < high; got \(1, 0\)"):
        Dataset.from_arrays(x, value_range=(1, 0))
    with pytest.raises(ConfigError, match=r"value_range must be a pair"):
        Dataset.from_arrays(x, value_range=1.0)
    x[0, 0, 1, 1] = np.nan
    with pytest.raises(InputError, match=r"x contains 1 NaN or infinite value\(s\) in 1 row\(s\)"):
        Dataset.from_arrays(x, modality="image")


def test_label_and_emptiness_errors():
    with pytest.raises(InputError, match=r"has 3 inputs but 2 labels"):
        Dataset.from_arrays(np.zeros((3, 2)), [0, 1])
    with pytest.raises(InputError, match=r"y must be one-dimensional .*got shape \(3, 1\)"):
        Dataset.from_arrays(np.zeros((3, 2)), np.zeros((3, 1)))
    with pytest.raises(InputError, match=r"dataset 'data' is empty"):
        Dataset.from_arrays(np.zeros((0, 2)))
    with pytest.raises(InputError, match=r"text data must be strings; entries \[1\]"):
        Dataset.from_arrays(["ok", 3], modality="text")


def test_tabular_from_array_and_non_string_columns():
    ds = Dataset.from_arrays(np.array([[1.0, 2.0], [3.0, 4.0]]), [0, 1])
    assert list(ds.x.columns) == ["x0", "x1"] and ds.schema.names == ["x0", "x1"]
    ds = Dataset.from_arrays(pd.DataFrame({0: [1.0, 2.0], 1: [3, 4]}, index=[10, 20]))
    assert list(ds.x.columns) == ["0", "1"] == ds.schema.names
    assert ds.x.index.tolist() == [0, 1]


@pytest.fixture
def tab():
    x = pd.DataFrame({"a": np.arange(10.0), "b": np.arange(10) * 2})
    return Dataset.from_arrays(x, np.array([0] * 7 + [1] * 3), name="t", target="label")


def test_subset_keeps_schema(tab):
    part = tab.subset([8, 1])
    assert part.x["a"].tolist() == [8.0, 1.0] and part.y.tolist() == [1, 0]
    assert part.schema is tab.schema and part.name == "t" and part.target == "label"
    one = tab.subset(3)
    assert isinstance(one.x, pd.DataFrame) and one.x.shape == (1, 2) and one.y.tolist() == [0]
    mask = np.arange(10) >= 7
    assert tab.subset(mask).y.tolist() == [1, 1, 1]
    assert tab.subset(slice(0, 4)).x["b"].tolist() == [0, 2, 4, 6]


def test_subset_of_text_and_images():
    text = Dataset.from_arrays(["a", "b", "c"], [0, 1, 0])
    assert text.subset([2, 0]).x == ["c", "a"]
    imgs = Dataset.from_arrays(np.arange(3 * 4, dtype=float).reshape(3, 2, 2) / 12)
    assert imgs.subset([1]).x.shape == (1, 1, 2, 2)


def test_sample_is_stratified_exact_and_seeded(tab):
    s = tab.sample(5, seed=3)
    assert len(s) == 5
    # 7:3 classes -> quotas 3.5 and 1.5; the tie keeps the first class's larger share
    assert np.bincount(s.y).tolist() == [4, 1]
    assert s.fingerprint() == tab.sample(5, seed=3).fingerprint()
    assert len({tab.sample(5, seed=k).fingerprint() for k in range(6)}) > 1
    assert tab.sample(50) is tab
    plain = tab.sample(4, seed=0, stratify=False)
    assert len(plain) == 4 and np.all(np.diff(plain.x["a"].to_numpy()) > 0)
    with pytest.raises(ConfigError, match=r"Dataset.sample\(n=...\) must be an integer >= 1; got 0"):
        tab.sample(0)


@pytest.mark.parametrize("counts, n, expected", [
    ([70, 30], 10, [7, 3]),
    ([70, 30], 5, [4, 1]),   # 3.5 / 1.5: largest remainder, ties to the first class
    ([98, 1, 1], 3, [1, 1, 1]),  # every class kept when n allows
    ([98, 1, 1], 10, [8, 1, 1]),
    ([5, 5, 5], 2, [1, 1, 0]),
])
def test_stratified_counts(counts, n, expected):
    take = _stratified_counts(np.array(counts), n)
    assert take.tolist() == expected and take.sum() == n


def test_with_x_and_numeric_x(tab):
    moved = tab.with_x(tab.x + 1)
    assert moved.x["a"].tolist()[:2] == [1.0, 2.0] and moved.y is tab.y and moved.schema is tab.schema
    np.testing.assert_array_equal(tab.numeric_x()[:, 1], np.arange(10) * 2.0)
    with pytest.raises(InputError, match=r"dataset .t. has 9 inputs but 10 labels"):
        tab.with_x(tab.x.iloc[:9])
    cats = Dataset.from_arrays(pd.DataFrame({"c": ["u", "v"], "n": [1.0, 2.0]}))
    with pytest.raises(InputError, match=r"columns \['c'\] are categorical"):
        cats.numeric_x()
    with pytest.raises(InputError, match=r"text data has no numeric form"):
        Dataset.from_arrays(["a"]).numeric_x()
    flags = Dataset.from_arrays(pd.DataFrame({"f": [True, False]}))
    assert flags.numeric_x().tolist() == [[1.0], [0.0]]


def test_fingerprint_stable_and_sensitive(tab):
    x = np.linspace(0, 1, 2 * 3 * 3, dtype=np.float32).reshape(2, 1, 3, 3)
    ds = Dataset.from_arrays(x)
    # independent recomputation: sha256 of the shape text and the raw float32 bytes
    expected = hashlib.sha256(str((2, 1, 3, 3)).encode() + x.tobytes()).hexdigest()[:16]
    assert ds.fingerprint() == expected
    with_y = Dataset.from_arrays(x, [0, 1])
    assert with_y.fingerprint() != ds.fingerprint()
    assert with_y.fingerprint() != Dataset.from_arrays(x, [1, 0]).fingerprint()

    same = Dataset.from_arrays(tab.x.copy(), tab.y.copy())
    assert same.fingerprint() == tab.fingerprint()
    changed = tab.x.copy()
    changed.loc[4, "a"] = 4.5
    assert Dataset.from_arrays(changed, tab.y).fingerprint() != tab.fingerprint()
    renamed = tab.x.rename(columns={"a": "z"})
    assert Dataset.from_arrays(renamed, tab.y).fingerprint() != tab.fingerprint()
    reordered = tab.subset(np.arange(10)[::-1])
    assert reordered.fingerprint() != tab.fingerprint()

    t1 = Dataset.from_arrays(["ab", "c"])
    assert t1.fingerprint() == Dataset.from_arrays(["ab", "c"]).fingerprint()
    assert t1.fingerprint() != Dataset.from_arrays(["a", "bc"]).fingerprint()


def test_describe(tab):
    d = tab.describe()
    assert d["n_samples"] == 10 and d["labels"] == {"0": 7, "1": 3} and d["target"] == "label"
    assert d["fingerprint"] == tab.fingerprint() and d["schema"]["modality"] == "tabular"
