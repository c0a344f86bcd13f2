"""Input transforms (feature squeezing, Xu et al. 2018) as a defended model, attacked adaptively.

:class:`SqueezedModel` answers ``model(squeeze(x))``. Squeezers such as bit-depth reduction have no
useful gradient (rounding: zero almost everywhere), so a plain gradient attack on them fails and
the defence looks robust. That is gradient masking, not robustness (Athalye et al., 2018). The
model therefore exposes the **BPDA** gradient by default (``gradient="bpda"``): the forward pass is
``model(squeeze(x))``, the backward pass treats the squeezer as the identity, and every white-box
attack and :func:`stalwart.attacks.evaluate` becomes the adaptive attack. ``gradient="exact"``
keeps the squeezer's own gradient, to show the illusion beside the real number.

:class:`JPEG` codes images with stalwart's own JPEG corruption
(:class:`stalwart.perturb.image.JpegCompression`: the encoder's lossy steps, 8-bit rounding
included) at a fixed quality. Its exact derivative is zero almost everywhere (every output is
rounded), which is what ``gradient="exact"`` shows the attack.

:class:`SqueezingDetector` flags inputs whose prediction moves when squeezed (the L1 distance
between the probability vectors, maximised over the squeezers, Xu et al.), with a threshold set
on clean data at a chosen false-positive rate.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812

from stalwart._validation import check_array, check_choice, check_param, check_positive, param_error
from stalwart.data.schema import Schema
from stalwart.defend._params import ParamsRepr
from stalwart.errors import InputError, ModelError
from stalwart.models.base import Model
from stalwart.perturb.image import JpegCompression

__all__ = ["Squeezer", "BitDepth", "MedianFilter", "JPEG", "SqueezedModel", "SqueezingDetector"]


class Squeezer(ParamsRepr, ABC):
    """A deterministic input transform on float tensors within ``bounds`` (N x ...)."""

    name: ClassVar[str] = ""

    @abstractmethod
    def __call__(self, x: torch.Tensor, bounds: tuple[float, float]) -> torch.Tensor:
        """``x`` squeezed; ``bounds`` is the inputs' valid range (lower, upper)."""


class BitDepth(Squeezer):
    """Each value rounded to one of ``2 ** bits`` evenly spaced levels of the bounds."""

    name = "bit_depth"

    def __init__(self, bits: int = 4) -> None:
        check_param(self, "bits", bits, isinstance(bits, (int, np.integer)) and not isinstance(bits, bool)
                    and 1 <= bits <= 16, "an integer from 1 to 16")
        self.bits = int(bits)

    def __call__(self, x: torch.Tensor, bounds: tuple[float, float]) -> torch.Tensor:
        lo, hi = bounds
        levels = 2 ** self.bits - 1
        return torch.round((x - lo) / (hi - lo) * levels) / levels * (hi - lo) + lo


class MedianFilter(Squeezer):
    """The median of each ``size x size`` window, per channel, edges reflected (images N x C x H x W)."""

    name = "median_filter"

    def __init__(self, size: int = 2) -> None:
        check_param(self, "size", size, isinstance(size, (int, np.integer)) and not isinstance(size, bool)
                    and 2 <= size <= 9, "an integer from 2 to 9")
        self.size = int(size)

    def __call__(self, x: torch.Tensor, bounds: tuple[float, float]) -> torch.Tensor:
        if x.ndim != 4:
            raise InputError(f"MedianFilter works on images N x C x H x W; got shape {tuple(x.shape)}. Use BitDepth "
                             "for tables.")
        k = self.size
        before, after = (k - 1) // 2, k // 2
        padded = F.pad(x, (before, after, before, after), mode="reflect")
        windows = padded.unfold(2, k, 1).unfold(3, k, 1)  # N, C, H, W, k, k
        flat = windows.reshape(*windows.shape[:4], k * k)
        # the lower median for an even window, like scipy.ndimage.median_filter's rank (k*k - 1) // 2
        return flat.kthvalue((k * k + 1) // 2, dim=-1).values


class JPEG(Squeezer):
    """Baseline JPEG at ``quality`` (1..100, IJG tables) of images N x C x H x W (C = 1 or 3).

    The codec is stalwart's ``jpeg_compression`` corruption run at this one quality instead of its
    severity table; values are mapped from the bounds to 8 bits and back. The result carries a
    gradient of exactly zero (JPEG's derivative almost everywhere), so the plain attack stalls and
    the BPDA one of :class:`SqueezedModel` goes through.
    """

    name = "jpeg"

    def __init__(self, quality: int = 75) -> None:
        check_param(self, "quality", quality, isinstance(quality, (int, np.integer)) and not isinstance(quality, bool)
                    and 1 <= quality <= 100, "an integer from 1 to 100 (75 is usual; lower compresses more)")
        self.quality = int(quality)

    def __call__(self, x: torch.Tensor, bounds: tuple[float, float]) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise InputError(f"JPEG codes images N x C x H x W with 1 or 3 channels; got shape {tuple(x.shape)}. "
                             "Use BitDepth for tables.")
        codec = _FixedQualityJpeg(self.quality)
        schema = Schema("image", value_range=(float(bounds[0]), float(bounds[1])), shape=tuple(x.shape[1:]))
        coded = torch.as_tensor(codec.apply(x.detach(), 1, schema=schema), device=x.device, dtype=x.dtype)
        return coded + 0.0 * x  # JPEG's own derivative: zero almost everywhere


class _FixedQualityJpeg(JpegCompression):
    """stalwart's JPEG corruption at one quality, whatever the severity (not registered)."""

    def __init__(self, quality: int) -> None:
        super().__init__()
        self.fixed_quality = quality

    def quality(self, severity: int, size: int) -> int:
        return self.fixed_quality


class SqueezedModel(Model):
    """``model(squeeze(x))`` for each squeezer in turn (applied in order).

    Parameters
    ----------
    model : the classifier to defend (anything :func:`stalwart.wrap` takes)
    squeezers : one :class:`Squeezer` or a list, applied in order
    bounds : the inputs' valid range (lower, upper); default the model's declared range, else (0, 1)
    gradient : {"bpda", "exact"}, default "bpda" — the gradient white-box attacks see (see module doc)
    """

    def __init__(self, model: Any, squeezers: Any, *, bounds: tuple[float, float] | None = None,
                 gradient: str = "bpda") -> None:
        from stalwart.models import wrap

        super().__init__()
        base = wrap(model)
        if base.task != "classification":
            raise ModelError(f"feature squeezing defends classifiers; {base.name} is a {base.task} model. Pass a "
                             "classifier.")
        items = [squeezers] if isinstance(squeezers, Squeezer) else squeezers
        if not isinstance(items, Sequence) or not items or not all(isinstance(s, Squeezer) for s in items):
            raise param_error(self, "squeezers", "a Squeezer (BitDepth(4), MedianFilter(2), JPEG(75)) or a list of them",
                              squeezers)
        self.gradient = check_choice(self, "gradient", gradient, ("bpda", "exact"))
        bounds = bounds if bounds is not None else (base.input_bounds or (0.0, 1.0))
        ok = isinstance(bounds, (tuple, list)) and len(bounds) == 2 and all(np.isfinite(bounds)) and \
            bounds[0] < bounds[1]
        check_param(self, "bounds", bounds, ok, "a pair (lower, upper) of finite numbers with lower < upper")
        self.base, self.squeezers = base, list(items)
        self.bounds = (float(bounds[0]), float(bounds[1]))
        self.task, self.classes, self.output_kind = base.task, base.classes, base.output_kind
        self.batch_size, self.input_bounds = base.batch_size, self.bounds
        self.verdict_draws = base.verdict_draws  # squeezing a random model leaves it random

    @property
    def name(self) -> str:
        return f"{self.base.name} + {' + '.join(s.name for s in self.squeezers)}"

    def squeeze(self, x: torch.Tensor) -> torch.Tensor:
        for s in self.squeezers:
            x = s(x, self.bounds)
        return x

    def known_classes(self, x: Any) -> np.ndarray | None:
        self.classes = self.base.known_classes(x)
        return self.classes

    def _raw_predict(self, x: Any) -> np.ndarray:
        t = torch.from_numpy(np.array(x, dtype=np.float32))  # a copy: the input may be read-only
        with torch.no_grad():
            squeezed = self.squeeze(t).numpy()
        return self.base.predict_proba(squeezed)

    @property
    def differentiable(self) -> bool:
        return self.base.differentiable

    @property
    def device(self) -> Any:
        return getattr(self.base, "device", None)

    @property
    def logits_from_probabilities(self) -> bool:
        return self.base.logits_from_probabilities

    def non_adaptive(self) -> SqueezedModel:
        """The same defence attacked through the squeezers' own gradients (the plain attack), for
        reports that show plain and adaptive robust accuracy side by side."""
        return SqueezedModel(self.base, self.squeezers, bounds=self.bounds, gradient="exact")

    def torch_logits(self, x):  # noqa: ANN001, ANN201
        self.n_queries += int(x.shape[0])
        squeezed = self.squeeze(x)
        if self.gradient == "bpda":  # forward: the squeezed input; backward: the identity
            squeezed = x + (squeezed - x).detach()
        return self.base.torch_logits(squeezed)


class SqueezingDetector:
    """Flags inputs whose probabilities move when squeezed (Xu et al., 2018).

    ``score(x)`` is the largest L1 distance between the model's probabilities on ``x`` and on each
    squeezed version; :meth:`fit` sets the threshold at the ``1 - fpr`` quantile of the scores of
    clean inputs, so about ``fpr`` of clean inputs are flagged.
    """

    def __init__(self, model: Any, squeezers: Sequence[Squeezer], *, bounds: tuple[float, float] | None = None
                 ) -> None:
        from stalwart.models import wrap

        self.model = wrap(model)
        if not isinstance(squeezers, Sequence) or not squeezers or not all(isinstance(s, Squeezer)
                                                                            for s in squeezers):
            raise param_error(self, "squeezers", "a non-empty list of Squeezers", squeezers)
        self.views = [SqueezedModel(self.model, s, bounds=bounds) for s in squeezers]
        self.threshold_: float | None = None

    def score(self, x: Any) -> np.ndarray:
        xs = check_array(x, "x", dtype=np.float32)
        p = self.model.predict_proba(xs)
        return np.max([np.abs(v.predict_proba(xs) - p).sum(axis=1) for v in self.views], axis=0)

    def fit(self, x_clean: Any, *, fpr: float = 0.05) -> SqueezingDetector:
        ok = isinstance(fpr, (float, int)) and not isinstance(fpr, bool) and 0 < fpr < 1
        check_param(self, "fpr", fpr, ok, "a false-positive rate strictly between 0 and 1")
        scores = self.score(x_clean)
        check_positive(self, "x_clean rows", len(scores), integer=True)
        self.threshold_ = float(np.quantile(scores, 1 - fpr, method="higher"))
        return self

    def predict(self, x: Any) -> np.ndarray:
        """True for inputs flagged as adversarial."""
        if self.threshold_ is None:
            raise ModelError("SqueezingDetector is not fitted: call fit(x_clean) first to set its threshold.")
        return self.score(x) > self.threshold_
