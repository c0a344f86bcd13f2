"""Contract every registered perturbation meets: purity, determinism, types, severity grading, errors."""

from __future__ import annotations

import pickle
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

from stalwart import perturb
from stalwart.data.schema import Schema
from stalwart.errors import ConfigError, InputError

# the first built-ins, which must stay registered
BUILTIN_TABULAR = {"category_swap", "feature_noise", "missing_values", "outliers", "rounding"}
BUILTIN_IMAGE = {"gaussian_noise", "shot_noise", "brightness", "contrast", "gaussian_blur", "rotation",
                 "translation", "pixelation"}
BUILTIN_TEXT = {"keyboard_typos", "char_swap", "char_insert", "char_delete", "case_change", "punctuation_removal"}
# the contract runs over everything registered, so a new perturbation is covered by adding it
TABULAR = set(perturb.names("tabular"))
IMAGE = set(perturb.names("image"))
TEXT = set(perturb.names("text"))
# no randomness: the seed must not matter
DETERMINISTIC = {"missing_not_at_random", "rounding", "brightness", "contrast", "gaussian_blur", "pixelation",
                 "defocus_blur", "zoom_blur",
                 "saturate", "jpeg_compression"}
ALL = sorted(TABULAR | IMAGE | TEXT)


# -- data ---------------------------------------------------------------------------------------------
def tabular_data() -> tuple[pd.DataFrame, Schema]:
    rng = np.random.default_rng(7)
    n = 300
    df = pd.DataFrame({
        "a": rng.normal(10.0, 2.0, n),
        "f32": rng.uniform(0.0, 1.0, n).astype(np.float32),
        "count": rng.integers(0, 60, n),
        "flag": rng.random(n) < 0.3,
        "color": pd.Series(rng.choice(["red", "green", "blue"], n)),
        "tier": pd.Categorical(rng.choice(["gold", "silver", "bronze"], n)),
        "age": rng.integers(18, 90, n),
    })
    return df, Schema.infer(df, immutable=["age"])


def image_data() -> tuple[np.ndarray, Schema]:
    """Mid-grey 1/f^1.5 noise (the spectrum of natural images), non-square."""
    rng = np.random.default_rng(3)
    n, c, h, w = 4, 3, 24, 32
    freq = np.hypot(np.fft.fftfreq(h)[:, None], np.fft.rfftfreq(w)[None, :])
    freq[0, 0] = 1.0
    spectrum = (rng.normal(size=(n, c, h, w // 2 + 1)) + 1j * rng.normal(size=(n, c, h, w // 2 + 1))) / freq**1.5
    spectrum[..., 0, 0] = 0.0
    img = np.fft.irfft2(spectrum, s=(h, w))
    img = np.clip(0.5 + 0.12 * img / img.std(axis=(1, 2, 3), keepdims=True), 0.0, 1.0)
    return img.astype(np.float32), Schema("image", value_range=(0.0, 1.0), shape=(c, h, w))


def text_data() -> tuple[list[str], Schema]:
    rng = np.random.default_rng(5)
    vocab = ["model", "robust", "noise", "input", "data", "the", "a", "of", "testing", "Report", "value",
             "is", "network", "Quick", "brown", "fox"]
    punct = [",", ".", "!", "?", ";", ":", "-", "'s"]
    names = ["Maria", "James", "Wei", "Amara"]
    places = ["Paris", "Lagos", "Japan", "New York"]
    texts = []
    for i in range(40):
        words = rng.choice(vocab, 12)
        marks = rng.choice(punct, 12)
        keep = rng.random(12) < 0.4
        text = " ".join(w + (m if k else "") for w, m, k in zip(words, marks, keep))
        if i % 2:  # names, places, numbers and contractions for the invariance perturbations
            text += f" {names[i % 4]} didn't fly to {places[i // 4 % 4]} for {10 + 7 * i} days; it is fine."
        texts.append(text)
    return texts, Schema("text")


DATA = {"tabular": tabular_data, "image": image_data, "text": text_data}


def modality_of(name: str) -> str:
    return "tabular" if name in TABULAR else "image" if name in IMAGE else "text"


# -- measures of change (independent of the implementation) ---------------------------------------------
def levenshtein(a: str, b: str) -> int:
    """Edit distance, one numpy row at a time (insertions via a running minimum)."""
    if not a:
        return len(b)
    bb = np.frombuffer(b.encode("utf-32-le"), dtype=np.uint32)
    j = np.arange(len(b) + 1)
    prev = j.astype(np.int64)
    for i, ch in enumerate(a, start=1):
        cost = (bb != ord(ch)).astype(np.int64)
        t = np.empty_like(prev)
        t[0] = i
        t[1:] = np.minimum(prev[1:] + 1, prev[:-1] + cost)
        prev = np.minimum.accumulate(t - j) + j
    return int(prev[-1])


def change(name: str, x, out) -> float:
    modality = modality_of(name)
    if modality == "image":
        return float(np.abs(out.astype(np.float64) - x).mean())
    if modality == "text":
        return sum(levenshtein(a, b) for a, b in zip(x, out)) / sum(len(a) for a in x)
    cells = []
    for col in x.columns:
        before, after = x[col], out[col]
        newly_missing = after.isna().to_numpy() & ~before.isna().to_numpy()
        if pd.api.types.is_numeric_dtype(before) and not pd.api.types.is_bool_dtype(before):
            b = before.to_numpy(dtype=float)
            a = after.to_numpy(dtype=float)
            spread = b.std() or 1.0
            d = np.where(newly_missing, 1.0, np.abs(np.nan_to_num(a - b)) / spread)
        else:
            same = (before.astype(object).to_numpy() == after.astype(object).to_numpy())
            d = np.where(newly_missing | ~same, 1.0, 0.0)
        cells.append(d)
    return float(np.mean(cells))


def equal(x, y) -> bool:
    if isinstance(x, pd.DataFrame):
        try:
            pd.testing.assert_frame_equal(x, y)
        except AssertionError:
            return False
        return True
    if isinstance(x, np.ndarray):
        return x.shape == y.shape and bool(np.array_equal(x, y))
    return list(x) == list(y)


# -- the registry -----------------------------------------------------------------------------------------
def test_names_per_modality_are_exactly_the_builtins():
    assert TABULAR >= BUILTIN_TABULAR and IMAGE >= BUILTIN_IMAGE and TEXT >= BUILTIN_TEXT
    assert set(perturb.names()) == TABULAR | IMAGE | TEXT
    assert perturb.names("image") == sorted(perturb.names("image"))


def test_unknown_name_lists_known_ones():
    with pytest.raises(ConfigError, match="unknown perturbation 'gaussian_nosie'.*gaussian_noise"):
        perturb.get("gaussian_nosie")


@pytest.mark.parametrize("name", ALL)
def test_class_attributes_and_repr_round_trip(name):
    p = perturb.get(name)
    cls = type(p)
    assert cls.name == name
    assert cls.modality == modality_of(name)
    assert isinstance(cls.description, str) and len(cls.description) > 10
    assert "severity" in (cls.__doc__ or "")  # the severity table is documented
    clone = cls(**p.params())
    assert repr(clone) == repr(p)
    assert repr(p).startswith(cls.__name__ + "(")


@pytest.mark.parametrize("name", ALL)
def test_constructor_is_keyword_only(name):
    cls = type(perturb.get(name))
    with pytest.raises(TypeError):
        cls(1)


# -- behaviour ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ALL)
def test_pure_deterministic_and_type_preserving(name):
    x, schema = DATA[modality_of(name)]()
    snapshot = x.copy() if not isinstance(x, list) else list(x)
    p = perturb.get(name)
    out = p.apply(x, 3, rng=11, schema=schema)
    assert equal(x, snapshot), "input was mutated"
    assert equal(out, p.apply(x, 3, rng=11, schema=schema))
    assert equal(out, p.apply(x, 3, rng=np.random.default_rng(11), schema=schema))
    other = p.apply(x, 3, rng=12, schema=schema)
    if name in DETERMINISTIC:
        assert equal(out, other)
    else:
        assert not equal(out, other)
    assert type(out) is type(x)
    if isinstance(x, np.ndarray):
        assert out.shape == x.shape and out.dtype == np.float32
        lo, hi = schema.value_range
        assert out.min() >= lo and out.max() <= hi
    elif isinstance(x, pd.DataFrame):
        assert list(out.columns) == list(x.columns) and out.index.equals(x.index)
        if name not in ("missing_values", "missing_not_at_random"):
            assert out.dtypes.to_dict() == x.dtypes.to_dict()
    else:
        assert len(out) == len(x) and all(isinstance(t, str) for t in out)


@pytest.mark.parametrize("name", ALL)
def test_change_grows_with_severity(name):
    x, schema = DATA[modality_of(name)]()
    p = perturb.get(name)
    sizes = [change(name, x, p.apply(x, s, rng=0, schema=schema)) for s in perturb.SEVERITIES]
    assert all(b >= a for a, b in zip(sizes, sizes[1:])), sizes
    assert sizes[-1] > sizes[0] > 0 or (name == "rounding" and sizes[-1] > sizes[0]), sizes


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("severity", [0, 6, 2.5, True, "3", None])
def test_bad_severity_is_a_config_error(name, severity):
    x, schema = DATA[modality_of(name)]()
    with pytest.raises(ConfigError, match=r"severity=\.\.\.\) must be an integer 1\.\.5"):
        perturb.get(name).apply(x, severity, rng=0, schema=schema)


def test_numpy_integer_severity_is_accepted():
    x, schema = image_data()
    out = perturb.get("contrast").apply(x, np.int64(2), schema=schema)
    assert equal(out, perturb.get("contrast").apply(x, 2, schema=schema))


BAD_INPUTS = {
    "tabular": [(pd.DataFrame({"a": []}), "empty")],
    "image": [
        (np.zeros((0, 3, 8, 8), dtype=np.float32), "empty"),
        (np.zeros((3, 8, 8), dtype=np.float32), "N x C x H x W"),
        (np.full((1, 1, 4, 4), np.nan, dtype=np.float32), "NaN"),
    ],
    "text": [([], "empty"), (["fine", 3, None], r"entries \[1, 2\] are not")],
}


@pytest.mark.parametrize("name", ALL)
def test_bad_input_is_an_input_error(name):
    for bad, message in BAD_INPUTS[modality_of(name)]:
        with pytest.raises(InputError, match=message):
            perturb.get(name).apply(bad, 3, rng=0)


# -- configured objects are immutable: apply keeps no state on them -----------------------------------------
def _state(p) -> bytes:
    return pickle.dumps(vars(p))


@pytest.mark.parametrize("name", ALL)
def test_apply_leaves_the_object_as_configured_and_it_pickles(name):
    x, schema = DATA[modality_of(name)]()
    p = perturb.get(name)
    before, keys = _state(p), {k: id(v) for k, v in vars(p).items()}
    out = p.apply(x, 3, rng=5, schema=schema)
    p.apply(x, 5, rng=6, schema=schema)
    assert {k: id(v) for k, v in vars(p).items()} == keys and _state(p) == before, "apply wrote to the object"
    clone = pickle.loads(pickle.dumps(p))
    assert repr(clone) == repr(p) and clone.params() == p.params()
    assert equal(clone.apply(x, 3, rng=5, schema=schema), out)  # a worker process gets the same object


@pytest.mark.parametrize("name", ALL)
def test_one_object_in_two_threads_gives_the_sequential_results(name):
    x, schema = DATA[modality_of(name)]()
    p = perturb.get(name)
    jobs = [(severity, seed) for severity in (2, 5) for seed in range(4)]
    sequential = [p.apply(x, s, rng=seed, schema=schema) for s, seed in jobs]
    with ThreadPoolExecutor(max_workers=2) as pool:
        threaded = list(pool.map(lambda job: p.apply(x, job[0], rng=job[1], schema=schema), jobs))
    assert all(equal(a, b) for a, b in zip(sequential, threaded))
