"""Geometric corruptions beyond rotation and translation: scale, flip, crop and occlusion."""

from __future__ import annotations

import math

import numpy as np
import torch

from stalwart._validation import check_param
from stalwart.perturb._image_base import ImagePerturbation, Tensor, affine_warp
from stalwart.perturb.base import register

__all__ = ["Scale", "Flip", "Crop", "Occlusion"]


@register
class Scale(ImagePerturbation):
    """Magnification about the centre by ``1 + c`` or reduction by ``1 / (1 + c)``, at random per image.

    Bilinear; pixels uncovered when shrinking take the nearest edge value. The direction per image
    is the same at every severity.

    ====================  =====  =====  =====  =====  =====
    severity                1      2      3      4      5
    ====================  =====  =====  =====  =====  =====
    c                      0.05   0.1    0.15   0.2    0.3
    ====================  =====  =====  =====  =====  =====
    """

    name = "scale"
    description = "Zoom in or out about the centre by a severity-graded factor"
    levels: tuple[float, ...] = (0.05, 0.1, 0.15, 0.2, 0.3)
    affine = True

    def _corrupt(self, x: Tensor, severity: int, rng: np.random.Generator) -> Tensor:
        n = x.shape[0]
        factor = np.where(rng.random(n) < 0.5, 1.0 + self.levels[severity - 1], 1.0 / (1.0 + self.levels[severity - 1]))
        theta = np.zeros((n, 2, 3))
        theta[:, 0, 0] = theta[:, 1, 1] = 1.0 / factor  # output -> input
        return affine_warp(x, theta)


@register
class Flip(ImagePerturbation):
    """Horizontal (left-right) mirror of a severity-graded fraction of the images.

    Each image draws one uniform number; it is flipped when that number is below ``p``, so the
    flipped images at a lower severity are flipped at every higher one. Exact (no resampling).

    ====================  =====  =====  =====  =====  =====
    severity                1      2      3      4      5
    ====================  =====  =====  =====  =====  =====
    p (images flipped)     0.2    0.4    0.6    0.8    1.0
    ====================  =====  =====  =====  =====  =====
    """

    name = "flip"
    description = "Horizontal mirror of a severity-graded fraction of images"
    levels: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8, 1.0)
    affine = True

    def _corrupt(self, x: Tensor, severity: int, rng: np.random.Generator) -> Tensor:
        chosen = torch.from_numpy(rng.random(x.shape[0]) < self.levels[severity - 1]).to(x.device)
        return torch.where(chosen[:, None, None, None], x.flip(-1), x)


@register
class Crop(ImagePerturbation):
    """A random crop of ``k`` times the height and width, resized back to the full size (bilinear).

    The crop's position is uniform over the places it fits, drawn once per image as a fraction of
    the free margin, the same at every severity.

    ====================  =====  =====  =====  =====  =====
    severity                1      2      3      4      5
    ====================  =====  =====  =====  =====  =====
    k (side kept)          0.95   0.9    0.85   0.8    0.7
    ====================  =====  =====  =====  =====  =====
    """

    name = "crop"
    description = "Random crop resized back to the full size"
    levels: tuple[float, ...] = (0.95, 0.9, 0.85, 0.8, 0.7)
    affine = True

    def _corrupt(self, x: Tensor, severity: int, rng: np.random.Generator) -> Tensor:
        n = x.shape[0]
        k = self.levels[severity - 1]
        where = rng.random((n, 2))  # fraction of the free margin along x and y
        theta = np.zeros((n, 2, 3))
        theta[:, 0, 0] = theta[:, 1, 1] = k
        # normalised output [-1, 1] maps to the input window [-1 + 2 u (1 - k), ... + 2 k]
        theta[:, :, 2] = -1.0 + 2.0 * where * (1.0 - k) + k
        return affine_warp(x, theta)


@register
class Occlusion(ImagePerturbation):
    """Cutout: a rectangle covering a fraction ``a`` of the image is filled with a constant.

    The rectangle has the image's aspect ratio, sides ``round(sqrt(a) * H)`` by ``round(sqrt(a) * W)``
    (at least 1 pixel), and lies fully inside the image at a uniform position (drawn once per image
    as a fraction of the free margin, the same at every severity). All channels are covered.

    ====================  =====  =====  =====  =====  =====
    severity                1      2      3      4      5
    ====================  =====  =====  =====  =====  =====
    a (area fraction)      0.04   0.08   0.12   0.2    0.3
    ====================  =====  =====  =====  =====  =====

    Parameters
    ----------
    fill : float in [0, 1], default 0.0
        The fill value as a fraction of the value range (0 = the range's minimum, black).
    """

    name = "occlusion"
    description = "Cutout of a severity-graded area fraction"
    levels: tuple[float, ...] = (0.04, 0.08, 0.12, 0.2, 0.3)

    def __init__(self, *, fill: float = 0.0) -> None:
        self.fill = check_param(
            self, "fill", fill,
            lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0.0 <= v <= 1.0,
            "a number in [0, 1] (a fraction of the value range)")

    def _corrupt(self, x: Tensor, severity: int, rng: np.random.Generator) -> Tensor:
        n, _, h, w = x.shape
        side = math.sqrt(self.levels[severity - 1])
        oh, ow = max(1, round(side * h)), max(1, round(side * w))
        where = rng.random((n, 2))
        top = torch.from_numpy(np.floor(where[:, 0] * (h - oh + 1)).astype(np.int64)).to(x.device)
        left = torch.from_numpy(np.floor(where[:, 1] * (w - ow + 1)).astype(np.int64)).to(x.device)
        rows = torch.arange(h, device=x.device)[None, :]
        cols = torch.arange(w, device=x.device)[None, :]
        in_rows = (rows >= top[:, None]) & (rows < top[:, None] + oh)
        in_cols = (cols >= left[:, None]) & (cols < left[:, None] + ow)
        mask = in_rows[:, None, :, None] & in_cols[:, None, None, :]
        return x.masked_fill(mask, float(self.fill))
