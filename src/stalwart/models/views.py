"""Models seen through a change of their inputs, so an attack can work in another space.

Each view answers like the model it wraps (task, classes, output kind) and counts its own
queries; the wrapped model counts them too.

- :class:`RangeScaledModel`: inputs in [0, 1] per feature, mapped to the model's range (eps as a
  fraction of each feature's range, :mod:`stalwart.attacks._range`);
- :class:`DecodedModel`: float codes mapped back to the rows they stand for (categories, integers,
  booleans; the schema-aware tabular search).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd

from stalwart.models.base import Model

__all__ = ["ModelView", "RangeScaledModel", "DecodedModel"]


class ModelView(Model):
    """Base of the views: the wrapped model's facts, and its name with what the view does."""

    suffix: ClassVar[str] = "view"

    def __init__(self, model: Model) -> None:
        super().__init__()
        self.base = model
        self.task = model.task
        self.classes = model.classes
        self.output_kind = model.output_kind
        self.batch_size = max(int(getattr(model, "batch_size", 1024)), 1)
        self.verdict_draws = model.verdict_draws  # each call of the view is one call of the model

    @property
    def name(self) -> str:
        return f"{self.base.name} ({self.suffix})"


class RangeScaledModel(ModelView):
    """``model`` seen through ``x = lower + z * width``: attacks run on ``z`` in [0, 1]^d.

    Exposes ``torch_logits`` (differentiable through the affine map) and the scores of the
    original model; queries are counted here and on the original model.
    """

    suffix = "range-scaled"

    def __init__(self, model: Model, lower: np.ndarray, width: np.ndarray) -> None:
        super().__init__(model)
        self.input_bounds = (0.0, 1.0)
        self._lower = np.asarray(lower, dtype=np.float64)
        self._width = np.asarray(width, dtype=np.float64)

    @property
    def device(self) -> Any:
        import torch

        return getattr(self.base, "device", torch.device("cpu"))

    @property
    def differentiable(self) -> bool:
        return self.base.differentiable

    @property
    def logits_from_probabilities(self) -> bool:
        return self.base.logits_from_probabilities

    def _raw(self, z: Any) -> Any:
        import torch

        if isinstance(z, torch.Tensor):
            lo = torch.as_tensor(self._lower, dtype=z.dtype, device=z.device)
            w = torch.as_tensor(self._width, dtype=z.dtype, device=z.device)
            return lo + z * w
        return self._lower + np.asarray(z, dtype=np.float64) * self._width

    def _raw_predict(self, x: Any) -> np.ndarray:
        return self.base.predict_proba(self._raw(x))

    def scores_tensor(self, x: Any) -> Any:
        self.n_queries += int(x.shape[0])
        return self.base.scores_tensor(self._raw(x))

    def torch_logits(self, x: Any) -> Any:
        import torch

        if not isinstance(x, torch.Tensor):
            x = torch.as_tensor(np.asarray(x, dtype=np.float32))
        self.n_queries += int(x.shape[0])
        return self.base.torch_logits(self._raw(x))

    def _fingerprint_bytes(self) -> bytes:
        return self.base._fingerprint_bytes() + self._lower.tobytes() + self._width.tobytes()


class DecodedModel(ModelView):
    """``model`` fed the rows that float codes stand for: categories back from their index,
    integers and booleans in their own dtype, a DataFrame when the data was one (the view the
    schema-aware tabular search attacks)."""

    suffix = "decoded"

    def __init__(self, model: Model, schema: Any, cats: list[Any], labels: list[Any] | None,
                 dtypes: list[Any] | None) -> None:
        super().__init__(model)
        self._kinds = [c.kind for c in schema.columns]
        self._cats = cats
        self._labels = labels
        self._dtypes = dtypes

    def _raw_predict(self, x: Any) -> np.ndarray:
        z = np.asarray(x, dtype=np.float64)
        cols = []
        for j, kind in enumerate(self._kinds):
            v = z[:, j]
            if self._cats[j] is not None:
                v = self._cats[j][np.rint(v).astype(np.int64)]
            elif kind in ("integer", "boolean"):
                v = np.rint(v)
            cols.append(v)
        if self._labels is None:  # an array: float unless the categories are not numbers
            return self.base.predict_proba(np.stack(cols, axis=1))
        data = {}
        for label, v, dtype in zip(self._labels, cols, self._dtypes):
            s = pd.Series(v)
            data[label] = s if s.dtype == dtype else s.astype(dtype)
        return self.base.predict_proba(pd.DataFrame(data))

    def _fingerprint_bytes(self) -> bytes:
        return self.base._fingerprint_bytes() + repr((self._kinds, self._labels)).encode()
