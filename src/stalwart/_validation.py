"""One place that turns bad arguments into clear :mod:`stalwart.errors` exceptions."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from stalwart.errors import ConfigError, InputError


def param_error(owner: object | str, name: str, expect: str, got: Any) -> ConfigError:
    """The standard sentence: ``Owner(name=...) must be <expect>; got <got>``."""
    owner_name = owner if isinstance(owner, str) else type(owner).__name__
    return ConfigError(f"{owner_name}({name}=...) must be {expect}; got {got!r}")


def check_param(owner: object | str, name: str, value: Any, ok: bool | Callable[[Any], bool],
                expect: str) -> Any:
    """Return ``value`` if ``ok`` (a bool or predicate) holds, else raise :class:`ConfigError`."""
    passed = ok(value) if callable(ok) else ok
    if not passed:
        raise param_error(owner, name, expect, value)
    return value


def check_choice(owner: object | str, name: str, value: Any, choices: Sequence[Any]) -> Any:
    return check_param(owner, name, value, value in choices, f"one of {list(choices)}")


def check_positive(owner: object | str, name: str, value: Any, *, strict: bool = True,
                   integer: bool = False) -> Any:
    kind = "an integer" if integer else "a number"
    is_num = isinstance(value, (int, np.integer)) if integer else isinstance(
        value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    ok = is_num and np.isfinite(value) and (value > 0 if strict else value >= 0)
    return check_param(owner, name, value, bool(ok), f"{kind} {'>' if strict else '>='} 0")


def check_severities(owner: object | str, value: Any, name: str = "severities") -> list[int]:
    """A non-empty list of integer severities in 1..5, returned sorted without repeats."""
    ok = isinstance(value, Sequence) and not isinstance(value, str) and len(value) > 0 and all(
        isinstance(s, (int, np.integer)) and not isinstance(s, bool) and 1 <= s <= 5 for s in value)
    if not ok:
        raise param_error(owner, name, "a non-empty list of integers in 1..5", value)
    return sorted({int(s) for s in value})


def check_array(x: Any, name: str = "x", *, ndim: int | Sequence[int] | None = None,
                allow_nan: bool = False, dtype: Any = np.float64,
                min_samples: int = 1) -> np.ndarray:
    """Convert ``x`` to a numeric array and check shape, emptiness and finiteness."""
    try:
        arr = np.asarray(x, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"{name} must be numeric (convertible to {np.dtype(dtype).name}); {exc}. "
            "Encode text or categorical columns first, or pass a DataFrame to a model that "
            "handles them."
        ) from None
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            raise InputError(
                f"{name} must have {' or '.join(map(str, allowed))} dimensions; got shape "
                f"{arr.shape}. Reshape it (tabular: n_samples x n_features; images: N x C x H x W)."
            )
    if arr.ndim == 0 or arr.shape[0] < min_samples:
        raise InputError(f"{name} is empty (shape {arr.shape}); pass at least {min_samples} sample(s).")
    if not allow_nan and np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
        bad = ~np.isfinite(arr)  # only on the way to the error: one pass less on clean data
        rows = np.unique(np.nonzero(bad.reshape(arr.shape[0], -1))[0])
        raise InputError(
            f"{name} contains {int(bad.sum())} NaN or infinite value(s) in {rows.size} row(s) "
            f"(first rows: {rows[:5].tolist()}); impute or drop them first."
        )
    return arr


def check_lengths(name_a: str, a: Any, name_b: str, b: Any) -> None:
    if len(a) != len(b):
        raise InputError(f"{name_a} has {len(a)} samples but {name_b} has {len(b)}; they must match.")


def check_labels(y: Any, classes: np.ndarray | None, name: str = "y") -> np.ndarray:
    """Check that every label in ``y`` is one the model knows."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise InputError(f"{name} must be one-dimensional (one label per sample); got shape {y.shape}.")
    if y.size == 0:
        raise InputError(f"{name} is empty; pass at least one label.")
    if classes is not None:
        if _is_index_range(classes) and y.dtype.kind in "iu" and y.min() >= 0 and y.max() < len(classes):
            return y  # classes 0..k-1 and integer labels within them: two reductions, no look-up
        known = set(np.asarray(classes).tolist())
        positions = _numeric_positions(y, classes)
        suspects = y if positions is None else y[~positions[1]]  # numeric: only the misses are looked up
        unknown = sorted({v for v in suspects.tolist() if v not in known}, key=str)
        if unknown:
            raise InputError(
                f"{name} contains labels the model does not know: {unknown[:10]}; the model's "
                f"classes are {sorted(known, key=str)[:20]}. Map the labels to the model's classes."
            )
    return y


def labels_to_index(y: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Map labels to their column index in ``predict_proba`` output (every label must be a class).

    Numeric labels are found by a search in the sorted classes (a dictionary look-up per sample
    would dominate a fast attack's fixed cost); classes ``0..k-1`` are their own indices.
    """
    classes, y = np.asarray(classes), np.asarray(y)
    if y.dtype.kind in "iu" and _is_index_range(classes):
        return y.astype(np.int64)
    positions = _numeric_positions(y, classes)
    if positions is not None and positions[1].all():
        return positions[0]
    lookup = {c: i for i, c in enumerate(classes.tolist())}
    return np.fromiter((lookup[v] for v in y.tolist()), dtype=np.int64, count=len(y))


def _is_index_range(classes: Any) -> bool:
    """Whether ``classes`` are the integers ``0..k-1`` in order (labels are then their own column)."""
    classes = np.asarray(classes)
    return classes.dtype.kind in "iu" and classes.ndim == 1 and bool(classes.size) and classes[0] == 0 \
        and classes[-1] == classes.size - 1 and np.array_equal(classes, np.arange(classes.size))


def _numeric_positions(y: np.ndarray, classes: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """For numeric labels and classes: each label's column in ``classes`` and whether the label is that
    class (False for a label that is no class: NaN, or a value between or beyond them); None otherwise."""
    classes = np.asarray(classes)
    if not (classes.ndim == 1 and classes.size and classes.dtype.kind in "iuf" and y.dtype.kind in "iuf"):
        return None
    order = np.argsort(classes, kind="stable")
    idx = order[np.minimum(np.searchsorted(classes[order], y), classes.size - 1)]
    return idx.astype(np.int64), classes[idx] == y


def check_seed(owner: object | str, value: Any, name: str = "seed", *, generator: bool = False) -> Any:
    """A non-negative integer seed (or, with ``generator=True``, also None, a sequence of such
    integers, a numpy ``Generator``/``BitGenerator``/``SeedSequence``), else :class:`ConfigError`.

    numpy's own errors for these ("expected non-negative integer", "SeedSequence expects int or
    sequence of ints") name neither the argument nor the fix.
    """
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        if value < 0:
            raise param_error(owner, name, "a non-negative integer", value)
        return value
    if not generator:
        raise param_error(owner, name, "an integer", value)
    if value is None or isinstance(value, (np.random.Generator, np.random.BitGenerator, np.random.SeedSequence)):
        return value
    ok = isinstance(value, Sequence) and not isinstance(value, (str, bytes)) and len(value) > 0 and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 0 for v in value)
    if ok:
        return value
    raise param_error(owner, name, "a seed (a non-negative integer), a numpy Generator or None", value)


def looks_channels_last(shape: Sequence[int]) -> bool:
    """Whether a 4-D image batch shape reads as N x H x W x C rather than stalwart's N x C x H x W."""
    return len(shape) == 4 and shape[1] not in (1, 3, 4) and shape[3] in (1, 3, 4)


def check_image_layout(shape: Sequence[int], name: str = "x", *, tensor: bool = False) -> None:
    """Refuse N x H x W x C image batches with a message that says how to transpose them."""
    if looks_channels_last(shape):
        fix = f"{name}.permute(0, 3, 1, 2)" if tensor else f"{name}.transpose(0, 3, 1, 2)"
        raise InputError(
            f"{name} looks like N x H x W x C images (shape {tuple(int(s) for s in shape)}); stalwart takes "
            f"N x C x H x W. Transpose with {fix}."
        )
