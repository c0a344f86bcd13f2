"""Loaders: CSV / Parquet / NPZ round trips, text tables, dispatch and the errors for bad files."""

import numpy as np
import pandas as pd
import pytest

import stalwart
from stalwart.data import load_csv, load_data, load_npz, load_parquet
from stalwart.errors import ConfigError, InputError


@pytest.fixture
def table():
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "age": rng.integers(18, 90, size=12),
        "income": rng.normal(3000, 500, size=12).round(2),
        "member": [True, False] * 6,
        "city": ["Oslo", "Lima", "Pune"] * 4,
        "label": [0, 1, 1, 0] * 3,
    })


def _check_table(ds, table, name):
    features = table.drop(columns="label")
    assert ds.modality == "tabular" and ds.name == name and ds.target == "label"
    assert list(ds.x.columns) == list(features.columns)
    np.testing.assert_array_equal(ds.x["age"].to_numpy(), features["age"].to_numpy())
    np.testing.assert_allclose(ds.x["income"].to_numpy(), features["income"].to_numpy())
    assert ds.x["member"].tolist() == features["member"].tolist()
    assert ds.x["city"].tolist() == features["city"].tolist()
    assert ds.y.dtype == np.int64 and ds.y.tolist() == table["label"].tolist()
    assert [c.kind for c in ds.schema.columns] == ["integer", "numeric", "boolean", "categorical"]
    assert ds.schema.column("age").lower == float(features["age"].min())


def test_csv_round_trip(tmp_path, table):
    path = tmp_path / "people.csv"
    table.to_csv(path, index=False)
    ds = load_csv(path, target="label", immutable=["age"], kinds={"member": "boolean"},
                  bounds={"income": (0, 10_000)})
    _check_table(ds, table, "people")
    assert ds.schema.mutable_mask.tolist() == [False, True, True, True]
    assert (ds.schema.column("income").lower, ds.schema.column("income").upper) == (0.0, 10_000.0)
    assert ds.meta["source"] == str(path)
    # load_data dispatches on the extension and gives the same data
    assert load_data(str(path), target="label").fingerprint() == load_csv(path, target="label").fingerprint()


def test_compressed_csv_and_unlabelled(tmp_path, table):
    path = tmp_path / "people.csv.gz"
    table.to_csv(path, index=False)
    ds = load_data(path, target="label")
    _check_table(ds, table, "people")
    unlabelled = load_data(path)
    assert unlabelled.y is None and unlabelled.target is None and unlabelled.x.shape == (12, 5)


def test_parquet_round_trip(tmp_path, table):
    path = tmp_path / "people.parquet"
    table.to_parquet(path, index=False)
    _check_table(load_parquet(path, target="label"), table, "people")
    pq = tmp_path / "people2.pq"
    table.to_parquet(pq, index=False)
    ds = load_data(pq, target="label")
    assert ds.name == "people2" and ds.fingerprint() == load_parquet(path, target="label").fingerprint()


def test_string_labels_stay_strings(tmp_path):
    path = tmp_path / "s.csv"
    pd.DataFrame({"v": [1.0, 2.0, 3.0], "label": ["cat", "dog", "cat"]}).to_csv(path, index=False)
    ds = load_csv(path, target="label")
    assert ds.y.tolist() == ["cat", "dog", "cat"] and ds.y.dtype.kind == "U"


def test_text_csv(tmp_path):
    path = tmp_path / "reviews.csv"
    texts = ["Great phone, loved it!", "awful, broke in a day", "fine, I guess"]
    pd.DataFrame({"review": texts, "stars": [5, 1, 3], "label": [1, 0, 1]}).to_csv(path, index=False)
    # one string column besides the target, but also a numeric column -> tabular unless asked
    tab = load_csv(path, target="label")
    assert tab.modality == "tabular" and tab.schema.column("review").kind == "categorical"
    text = load_csv(path, target="label", modality="text")
    assert text.modality == "text" and text.x == texts and text.y.tolist() == [1, 0, 1]
    assert text.meta["text_column"] == "review" and text.meta["dropped_columns"] == ["stars"]
    assert load_data(path, target="label", text_column="review").x == texts
    # a table whose only feature is a string column is text without being told
    only = tmp_path / "only.csv"
    pd.DataFrame({"sentence": texts, "label": [1, 0, 1]}).to_csv(only, index=False)
    ds = load_data(only, target="label")
    assert ds.modality == "text" and ds.x == texts and all(type(t) is str for t in ds.x)


def test_text_csv_errors(tmp_path):
    path = tmp_path / "two.csv"
    pd.DataFrame({"title": ["a", "b"], "body": ["c", "d"], "label": [0, 1]}).to_csv(path, index=False)
    with pytest.raises(InputError, match=r"string columns \['title', 'body'\] besides the target; .*text_column="):
        load_csv(path, target="label", modality="text")
    with pytest.raises(InputError, match=r"text_column column 'text' is not in .*\['title', 'body'\]"):
        load_csv(path, target="label", text_column="text")
    with pytest.raises(ConfigError, match=r"text_column and target are both 'label'"):
        load_csv(path, target="label", text_column="label")
    with pytest.raises(ConfigError, match=r"modality must be 'text' or None; got 'tabular'"):
        load_csv(path, target="label", text_column="title", modality="tabular")
    nums = tmp_path / "nums.csv"
    pd.DataFrame({"v": [1, 2], "label": [0, 1]}).to_csv(nums, index=False)
    with pytest.raises(InputError, match=r"has no string column besides the target"):
        load_csv(nums, target="label", modality="text")
    with pytest.raises(InputError, match=r"text column 'v' .* holds int64 values, not strings"):
        load_csv(nums, target="label", text_column="v")
    holes = tmp_path / "holes.csv"
    holes.write_text("text,label\nhello,1\n,0\nbye,1\n")
    with pytest.raises(InputError, match=r"text column 'text' .* has 1 empty cell\(s\) \(first rows: \[1\]\)"):
        load_csv(holes, target="label")


def test_target_errors(tmp_path, table):
    path = tmp_path / "people.csv"
    table.to_csv(path, index=False)
    with pytest.raises(InputError, match=r"target column 'Label' is not in data file .*people\.csv'; "
                                         r"available columns: \['age', 'income', 'member', 'city', 'label'\]\. "
                                         r"Did you mean 'label'\?"):
        load_csv(path, target="Label")
    with pytest.raises(InputError, match=r"target column 'zzz' is not in .*available columns"):
        load_data(path, target="zzz")
    only = tmp_path / "only_target.csv"
    pd.DataFrame({"label": [0, 1]}).to_csv(only, index=False)
    with pytest.raises(InputError, match=r"has only the target column 'label'; there are no features"):
        load_csv(only, target="label")
    gaps = tmp_path / "gaps.csv"
    gaps.write_text("a,label\n1,0\n2,\n3,1\n4,\n")
    with pytest.raises(InputError, match=r"target column 'label' .* has 2 missing label\(s\) \(first rows: \[1, 3\]\)"):
        load_csv(gaps, target="label")


def test_file_errors(tmp_path):
    with pytest.raises(InputError, match=r"data file '.*missing\.csv' does not exist"):
        load_csv(tmp_path / "missing.csv")
    with pytest.raises(InputError, match=r"data file '.*nothere\.npz' does not exist"):
        load_data(tmp_path / "nothere.npz")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(InputError, match=r"data file '.*empty\.csv' is empty \(0 bytes\)"):
        load_data(empty)
    blank = tmp_path / "blank.csv"
    blank.write_text("\n\n")
    with pytest.raises(InputError, match=r"blank\.csv' has no columns or rows"):
        load_csv(blank)
    header = tmp_path / "header.csv"
    header.write_text("a,b,label\n")
    with pytest.raises(InputError, match=r"header\.csv' has a header but no rows"):
        load_csv(header, target="label")
    with pytest.raises(InputError, match=r"data path '.*' is not a file"):
        load_csv(tmp_path)
    bad_pq = tmp_path / "bad.parquet"
    bad_pq.write_text("not parquet at all")
    with pytest.raises(InputError, match=r"could not read '.*bad\.parquet' as Parquet"):
        load_parquet(bad_pq)
    with pytest.raises(InputError, match=r"path must be a file path .*got int"):
        load_csv(3)


def test_unknown_extension_lists_supported(tmp_path):
    path = tmp_path / "data.xlsx"
    path.write_text("x")
    with pytest.raises(InputError, match=r"extension '\.xlsx'; supported: \.csv, .*\.parquet, \.pq, \.npz"):
        load_data(path)
    with pytest.raises(InputError, match=r"extension '\(none\)'"):
        load_data(tmp_path / "README")


def test_tables_refuse_images_and_bad_modality(tmp_path, table):
    path = tmp_path / "people.csv"
    table.to_csv(path, index=False)
    with pytest.raises(InputError, match=r"images cannot be read from CSV or Parquet.*numpy\.savez"):
        load_data(path, target="label", modality="image")
    with pytest.raises(ConfigError, match=r"modality must be one of \['tabular', 'image', 'text'\] or None"):
        load_csv(path, modality="audio")


def test_npz_images_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, size=(6, 1, 5, 5)).astype(np.float32)
    y = np.array([0, 1, 2, 0, 1, 2])
    path = tmp_path / "imgs.npz"
    np.savez(path, x=x, y=y)
    ds = load_npz(path)
    assert ds.modality == "image" and ds.name == "imgs" and ds.target == "y"
    np.testing.assert_array_equal(ds.x, x)
    assert ds.y.tolist() == y.tolist() and ds.schema.value_range == (0.0, 1.0)
    assert ds.meta["x_key"] == "x" and ds.meta["y_key"] == "y"
    assert load_data(path).fingerprint() == ds.fingerprint()
    # N x H x W uint8 images under other default keys: one channel added, 0..255 range
    raw = rng.integers(0, 256, size=(4, 3, 3), dtype=np.uint8)
    other = tmp_path / "raw.npz"
    np.savez(other, images=raw, labels=np.array([1, 0, 1, 0]))
    ds = load_npz(other, value_range=(0, 255))
    assert ds.x.shape == (4, 1, 3, 3) and ds.x.dtype == np.float32 and ds.schema.value_range == (0.0, 255.0)
    np.testing.assert_array_equal(ds.x[:, 0], raw.astype(np.float32))
    assert ds.y.tolist() == [1, 0, 1, 0] and ds.target == "labels"


def test_npz_tabular_text_and_keys(tmp_path):
    feats = np.arange(12.0).reshape(4, 3)
    path = tmp_path / "mixed.npz"
    np.savez(path, features=feats, answer=np.array([0, 1, 1, 0]), other=np.zeros(4))
    ds = load_npz(path, x_key="features", y_key="answer")
    assert ds.modality == "tabular" and ds.x.to_numpy().tolist() == feats.tolist() and ds.target == "answer"
    assert load_data(path, target="answer", x_key="features").y.tolist() == [0, 1, 1, 0]
    with pytest.raises(InputError, match=r"has no array named x / X / images / data; its arrays are "
                                         r"\['features', 'answer', 'other'\]\. Name the inputs with x_key="):
        load_npz(path)
    with pytest.raises(InputError, match=r"y_key 'label' is not in .*its arrays are \['features', 'answer', 'other'\]"):
        load_npz(path, x_key="features", y_key="label")
    with pytest.raises(ConfigError, match=r"target \('a'\) and y_key \('b'\) both name the labels"):
        load_data(path, target="a", y_key="b")
    single = tmp_path / "single.npz"
    np.savez(single, pixels=np.zeros((2, 4, 4)))
    only = load_npz(single)
    assert only.modality == "image" and only.y is None and only.target is None
    text = tmp_path / "text.npz"
    np.savez(text, x=np.array(["good day", "bad day"]), y=np.array([1, 0]))
    ds = load_npz(text)
    assert ds.modality == "text" and ds.x == ["good day", "bad day"] and type(ds.x[0]) is str


def test_npz_errors(tmp_path):
    path = tmp_path / "obj.npz"
    np.savez(path, x=np.array([{"a": 1}, None], dtype=object))
    with pytest.raises(InputError, match=r"holds object \(pickled\) arrays, which stalwart does not load"):
        load_npz(path)
    npy = tmp_path / "arr.npz"
    with open(npy, "wb") as fh:
        np.save(fh, np.zeros((2, 2)))
    with pytest.raises(InputError, match=r"holds a single array, not an \.npz archive"):
        load_npz(npy)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(InputError, match=r"could not read '.*junk\.npz' as an \.npz archive"):
        load_npz(junk)
    empty = tmp_path / "none.npz"
    np.savez(empty)
    with pytest.raises(InputError, match=r"contains no arrays"):
        load_npz(empty)
    imgs = tmp_path / "imgs.npz"
    np.savez(imgs, x=np.full((2, 1, 2, 2), 0.5), y=np.array([0, 1, 1]))
    with pytest.raises(InputError, match=r"dataset 'imgs' has 2 inputs but 3 labels"):
        load_npz(imgs)
    xonly = tmp_path / "xonly.npz"
    np.savez(xonly, x=np.full((2, 1, 2, 2), 0.5))
    with pytest.raises(InputError, match=r"image values span \[0\.5, 0\.5\] outside value_range \(0\.0, 0\.25\)"):
        load_npz(xonly, value_range=(0.0, 0.25))
    tab = tmp_path / "tab.npz"
    np.savez(tab, x=np.zeros((3, 2)))
    with pytest.raises(ConfigError, match=r"value_range applies to images only; the data is tabular"):
        load_npz(tab, value_range=(0, 1))


def test_top_level_exports():
    assert stalwart.load_data is load_data
    assert set(stalwart.data.__all__) == {"Dataset", "Schema", "Column", "load_csv", "load_parquet",
                                          "load_npz", "load_data"}


def test_npz_same_key_for_x_and_y(tmp_path):
    path = tmp_path / "a.npz"
    np.savez(path, x=np.zeros((2, 2)))
    with pytest.raises(ConfigError, match=r"x_key and y_key are both 'x'"):
        load_npz(path, x_key="x", y_key="x")
