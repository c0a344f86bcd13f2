"""Noise corruptions beyond Gaussian and shot noise: impulse (salt and pepper) and speckle."""

from __future__ import annotations

import numpy as np

from stalwart.perturb._image_base import Tensor, _Image, _normal, _uniform
from stalwart.perturb.base import register

__all__ = ["ImpulseNoise", "SpeckleNoise"]


@register
class ImpulseNoise(_Image):
    """Salt-and-pepper noise: a fraction ``amount`` of values (per pixel and channel) is set to the
    range's minimum or maximum with equal chance.

    ImageNet-C constants at every size (``skimage.util.random_noise(mode="s&p")``). One uniform draw
    per value decides its fate at every severity, so the corrupted values at a lower severity are a
    subset of those at a higher one.

    ====================  =====  =====  =====  =====  =====
    severity                1      2      3      4      5
    ====================  =====  =====  =====  =====  =====
    amount                 0.03   0.06   0.09   0.17   0.27
    ====================  =====  =====  =====  =====  =====
    """

    name = "impulse_noise"
    description = "Salt-and-pepper noise on a fraction of values (ImageNet-C)"
    levels: tuple[float, ...] = (0.03, 0.06, 0.09, 0.17, 0.27)

    def __init__(self) -> None:
        pass

    def _corrupt(self, x: Tensor, severity: int, rng: np.random.Generator) -> Tensor:
        amount = self.levels[severity - 1]
        u = _uniform(rng, tuple(x.shape), x)
        out = x.masked_fill(u < amount / 2.0, 1.0)  # salt
        return out.masked_fill((u >= amount / 2.0) & (u < amount), 0.0)  # pepper


@register
class SpeckleNoise(_Image):
    """Multiplicative Gaussian noise: ``x + x * N(0, c)`` with ``x`` scaled to [0, 1].

    Brighter pixels get more noise; black stays black. ImageNet-C constants at every size. The
    standard normal draws are shared by all severities (only scaled).

    ====================  =====  =====  =====  =====  =====
    severity                1      2      3      4      5
    ====================  =====  =====  =====  =====  =====
    c (noise std / x)      0.15   0.2    0.35   0.45   0.6
    ====================  =====  =====  =====  =====  =====
    """

    name = "speckle_noise"
    description = "Multiplicative Gaussian (speckle) noise (ImageNet-C)"
    levels: tuple[float, ...] = (0.15, 0.2, 0.35, 0.45, 0.6)

    def __init__(self) -> None:
        pass

    def _corrupt(self, x: Tensor, severity: int, rng: np.random.Generator) -> Tensor:
        return x + x * (self.levels[severity - 1] * _normal(rng, tuple(x.shape), x))
