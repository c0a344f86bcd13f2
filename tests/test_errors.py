import re

import numpy as np
import pytest

from stalwart import errors
from stalwart._validation import (
    check_array,
    check_choice,
    check_labels,
    check_lengths,
    check_param,
    check_positive,
    labels_to_index,
)


@pytest.mark.parametrize("cls, builtin", [(errors.InputError, ValueError), (errors.ModelError, ValueError),
                                          (errors.ConfigError, ValueError),
                                          (errors.MissingDependencyError, ImportError)])
def test_errors_subclass_base_and_builtin(cls, builtin):
    assert issubclass(cls, errors.StalwartError)
    assert issubclass(cls, builtin)


def test_require_names_the_extra():
    with pytest.raises(errors.MissingDependencyError, match=r"pip install 'stalwart\[onnx\]'"):
        errors.require("a_module_that_does_not_exist_xyz", "onnx")
    assert errors.require("json", "core").dumps([1]) == "[1]"


def test_check_param_sentence_names_owner_param_expectation_and_value():
    with pytest.raises(errors.ConfigError, match=r"PGD\(steps=\.\.\.\) must be an integer > 0; got 0"):
        check_positive("PGD", "steps", 0, integer=True)
    with pytest.raises(errors.ConfigError, match=r"X\(norm=\.\.\.\) must be one of \['linf', 'l2'\]; got 'l3'"):
        check_choice("X", "norm", "l3", ["linf", "l2"])
    assert check_param("X", "a", 3, lambda v: v > 2, "> 2") == 3
    assert check_positive("X", "a", 0.0, strict=False) == 0.0
    with pytest.raises(errors.ConfigError):
        check_positive("X", "a", True)
    with pytest.raises(errors.ConfigError):
        check_positive("X", "a", float("nan"))


def test_check_array_rejects_nan_empty_wrong_ndim_and_text():
    with pytest.raises(errors.InputError, match=r"NaN or infinite value\(s\) in 1 row\(s\) \(first rows: \[1\]\)"):
        check_array([[0.0, 1.0], [float("nan"), 2.0]])
    with pytest.raises(errors.InputError, match="empty"):
        check_array([])
    with pytest.raises(errors.InputError, match="must have 4 dimensions; got shape \\(2, 3\\)"):
        check_array([[1, 2, 3], [4, 5, 6]], ndim=4)
    with pytest.raises(errors.InputError, match="must be numeric"):
        check_array([["a", "b"]])
    out = check_array([[1, 2]], ndim=2)
    assert out.dtype.kind == "f" and out.shape == (1, 2)
    assert check_array([[float("nan")]], allow_nan=True).shape == (1, 1)


def test_check_labels_lists_unknown_labels_and_known_classes():
    with pytest.raises(errors.InputError, match=r"labels the model does not know: \[7\]; the model's classes are \[0, 1\]"):
        check_labels([0, 1, 7], [0, 1])
    with pytest.raises(errors.InputError, match="one-dimensional"):
        check_labels([[0, 1]], [0, 1])
    with pytest.raises(errors.InputError, match="empty"):
        check_labels([], [0, 1])
    assert labels_to_index(check_labels(["b", "a"], ["a", "b"]), ["a", "b"]).tolist() == [1, 0]


@pytest.mark.parametrize("y, classes, unknown", [
    ([0.5, 1.0], [0, 1], "[0.5]"), ([float("nan"), 1.0], [0, 1], "[nan]"), ([-1, 1], [0, 1], "[-1]"),
    ([3, 9, 3], [3, 5, 1], "[9]"), ([2, 1], [1, 3], "[2]")])
def test_check_labels_finds_every_unknown_numeric_label(y, classes, unknown):
    """Numeric labels are looked up by a search in the sorted classes; only misses reach the message."""
    with pytest.raises(errors.InputError, match=re.escape(f"does not know: {unknown}")):
        check_labels(np.array(y), np.array(classes))
    known = [c for c in classes if c in y] or classes[:1]
    assert check_labels(np.array(known, dtype=float), np.array(classes)).tolist() == [float(c) for c in known]


def test_check_lengths():
    with pytest.raises(errors.InputError, match="x has 2 samples but y has 3"):
        check_lengths("x", [1, 2], "y", [1, 2, 3])
