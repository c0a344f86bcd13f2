"""Built-in data sets, all offline: scikit-learn's bundled data and a generated text set.

=============  ========  =======  ====================================================
name           modality  samples  inputs / labels
=============  ========  =======  ====================================================
breast_cancer  tabular   569      30 numeric features (sklearn names); 0 malignant, 1 benign
wine           tabular   178      13 numeric features; cultivars 0, 1, 2
digits         image     1797     1 x 8 x 8 float32 in [0, 1]; digits 0-9
sentiment      text      400      English sentences; 0 negative, 1 positive
=============  ========  =======  ====================================================

The schema (column ranges, image range) is inferred once on the whole set, so the train and test
splits of one data set share it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from stalwart._validation import check_param, param_error
from stalwart.data.dataset import Dataset
from stalwart.errors import ConfigError

__all__ = ["load", "load_split", "names"]

SPLITS = ("test", "train", "all")


def _sklearn_table(loader_name: str, name: str) -> Dataset:
    from sklearn import datasets as skd

    bunch = getattr(skd, loader_name)(as_frame=True)
    y = bunch.target.to_numpy(dtype=np.int64)
    ds = Dataset.from_arrays(bunch.data, y, modality="tabular", name=name, target="target")
    ds.meta.update(class_names=[str(c) for c in bunch.target_names], source=f"sklearn.datasets.{loader_name}")
    return ds


def _breast_cancer() -> Dataset:
    return _sklearn_table("load_breast_cancer", "breast_cancer")


def _wine() -> Dataset:
    return _sklearn_table("load_wine", "wine")


def _digits() -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    # pixel intensities are integers 0..16; scale to the conventional [0, 1] image range
    # N x 1 x 8 x 8 with the strides torch gives a new batch (``[:, None]`` would give the channel axis stride
    # one, and torch would then run a CNN channels-last: other rounding, other speed, and ``.view`` fails)
    images = (bunch.images / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    ds = Dataset.from_arrays(images, bunch.target.astype(np.int64), modality="image", name="digits",
                             target="digit", value_range=(0.0, 1.0))
    ds.meta.update(class_names=[str(c) for c in bunch.target_names], source="sklearn.datasets.load_digits")
    return ds


def _sentiment() -> Dataset:
    from stalwart.data.text_sentiment import make_sentiment

    texts, labels = make_sentiment(400, seed=0)
    ds = Dataset.from_arrays(texts, labels, modality="text", name="sentiment", target="label")
    ds.meta.update(class_names=["negative", "positive"], source="stalwart.data.text_sentiment")
    return ds


_BUILDERS: dict[str, Callable[[], Dataset]] = {
    "breast_cancer": _breast_cancer,
    "digits": _digits,
    "sentiment": _sentiment,
    "wine": _wine,
}


def names() -> list[str]:
    """Names of the built-in data sets, sorted."""
    return sorted(_BUILDERS)


def _full(name: str) -> Dataset:
    if name not in _BUILDERS:
        raise ConfigError(f"unknown dataset {name!r}; built-in data sets are: {', '.join(names())}. Pick one of "
                          "them, or load your own file with stalwart.load_data(path)")
    return _BUILDERS[name]()


def _check_split_args(owner: str, seed: int, test_size: float) -> None:
    check_param(owner, "seed", seed, isinstance(seed, (int, np.integer)) and not isinstance(seed, bool),
                "an integer")
    check_param(owner, "seed", seed, 0 <= seed < 2**32, "a non-negative integer below 2**32")
    ok = isinstance(test_size, (int, float, np.integer, np.floating)) and not isinstance(test_size, bool) \
        and 0 < test_size < 1
    check_param(owner, "test_size", test_size, bool(ok), "a fraction strictly between 0 and 1")


def _split(full: Dataset, seed: int, test_size: float) -> tuple[Dataset, Dataset]:
    from sklearn.model_selection import train_test_split

    index = np.arange(len(full))
    try:
        train_idx, test_idx = train_test_split(index, test_size=test_size, random_state=int(seed),
                                               stratify=full.y)
    except ValueError as exc:  # a split too small to hold every class
        raise param_error("datasets.load", "test_size", f"large enough for every class ({exc})",
                          test_size) from None
    parts = []
    for split, idx in (("train", train_idx), ("test", test_idx)):
        part = full.subset(idx)
        part.meta.update(split=split, seed=int(seed), test_size=float(test_size))
        parts.append(part)
    return parts[0], parts[1]


def load(name: str, *, split: str = "test", seed: int = 0, test_size: float = 0.3) -> Dataset:
    """Load a built-in data set (see :func:`names`).

    Parameters
    ----------
    name : "breast_cancer", "wine", "digits" or "sentiment".
    split : "test" (default), "train" or "all". Train and test come from a stratified split.
    seed : seed of the split; the same seed gives the same rows in the same order.
    test_size : fraction of the samples in the test split.

    Returns
    -------
    Dataset
        ``meta`` holds ``class_names``, ``source`` and the split's ``split``, ``seed`` and
        ``test_size``.

    Examples
    --------
    >>> from stalwart import datasets
    >>> data = datasets.load("breast_cancer")
    >>> data.modality, data.x.shape
    ('tabular', (171, 30))
    """
    check_param("datasets.load", "split", split, split in SPLITS, f"one of {list(SPLITS)}")
    _check_split_args("datasets.load", seed, test_size)
    full = _full(name)
    if split == "all":
        full.meta.update(split="all")
        return full
    train, test = _split(full, seed, test_size)
    return train if split == "train" else test


def load_split(name: str, seed: int = 0, test_size: float = 0.3) -> tuple[Dataset, Dataset]:
    """The (train, test) pair of a built-in data set, split stratified by label with ``seed``.

    Examples
    --------
    >>> from stalwart import datasets
    >>> train, test = datasets.load_split("wine", seed=1)
    >>> len(train), len(test)
    (124, 54)
    """
    _check_split_args("datasets.load_split", seed, test_size)
    return _split(_full(name), seed, test_size)
