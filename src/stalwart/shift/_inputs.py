"""Inputs, classifiers and logits as the label-free shift tools take them (OOD detectors,
performance estimators): one home for what both need."""

from __future__ import annotations

from typing import Any

import numpy as np

from stalwart._validation import check_array
from stalwart.errors import InputError, ModelError
from stalwart.models.base import Model

__all__ = ["as_array", "flat_rows", "classifier", "batched_logits"]


def as_array(x: Any, name: str = "x") -> np.ndarray:
    """Inputs as a float array with samples on axis 0 (Dataset, DataFrame, tensor or array)."""
    from stalwart.data.dataset import Dataset

    if isinstance(x, Dataset):
        x = x.numeric_x()
    elif hasattr(x, "to_numpy") and hasattr(x, "columns"):  # DataFrame
        x = x.to_numpy(dtype=float)
    elif hasattr(x, "detach") and hasattr(x, "cpu"):  # torch tensor
        x = x.detach().cpu().numpy()
    arr = check_array(x, name, dtype=None if np.asarray(x).dtype == np.float32 else np.float64)
    if arr.ndim < 2:
        raise InputError(f"{name} must have one row per sample (2-D or more); got shape {arr.shape}. "
                         "Use x.reshape(-1, 1) for a single feature.")
    return arr


def flat_rows(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float64).reshape(len(x), -1)


def classifier(model: Any, owner: str) -> Model:
    from stalwart.models import wrap

    model = wrap(model)
    if model.task != "classification":
        raise ModelError(f"{owner} needs a classifier; {model.name} is a regression model.")
    return model


def batched_logits(model: Model, x: np.ndarray) -> np.ndarray:
    """Logits from ``torch_logits`` in batches, without building a graph."""
    import torch

    parts = []
    with torch.no_grad():
        for start in range(0, len(x), model.batch_size):
            out = model.torch_logits(x[start:start + model.batch_size])
            parts.append(out.detach().to("cpu", torch.float64).numpy())
    return np.concatenate(parts, axis=0)
