"""Natural corruptions of images: noise, brightness, contrast, blur and small geometric changes.

Images are float arrays N x C x H x W (any H, W; 1, 3 or more channels) in the schema's
``value_range`` ``(lo, hi)``. Every corruption works on ``(x - lo) / (hi - lo)``, so its
parameters mean the same for images in [0, 1] and in [0, 255]; the base class clips the result
to the range.

Severities follow ImageNet-C (Hendrycks & Dietterich, "Benchmarking Neural Network Robustness to
Common Corruptions and Perturbations", ICLR 2019). Pixel-wise corruptions (noise, brightness,
contrast) use its constants as they are. Corruptions measured in pixels depend on the image size:
blur and pixelation interpolate between the CIFAR-10-C constants at 32 px and the ImageNet-C ones
at 224 px, log-linearly in ``min(H, W)`` (see :func:`_by_size`). Rotation and translation are not
in ImageNet-C; their tables are given in each class.

Random draws do not depend on the severity: the same seed gives the same Gaussian noise pattern
(only scaled), rotation signs and translation directions at every severity.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np

from stalwart._validation import check_choice
from stalwart.data.schema import Schema
from stalwart.errors import InputError
from stalwart.perturb.base import Perturbation, register

__all__ = [
    "GaussianNoise", "ShotNoise", "Brightness", "Contrast", "GaussianBlur", "Rotation", "Translation",
    "Pixelation",
]


def _by_size(small: tuple[float, ...], large: tuple[float, ...], size: int, *, lengths: bool) -> np.ndarray:
    """Per-severity constants for an image of side ``size``: ``small`` at 32 px, ``large`` at 224 px.

    In between (and beyond 224 px for ``lengths``, which are in pixels) the values move
    geometrically: ``small * (large / small) ** t`` with ``t = log(size / 32) / log(7)``. Below
    32 px lengths shrink in proportion to the size; ratios (``lengths=False``) keep the 32 px values
    below 32 px and the 224 px values above 224 px.
    """
    s, big = np.asarray(small, dtype=np.float64), np.asarray(large, dtype=np.float64)
    t = math.log(size / 32.0) / math.log(7.0)
    if lengths and t < 0:
        return s * size / 32.0
    if not lengths:
        t = min(max(t, 0.0), 1.0)
    return s * (big / s) ** t


class _Image(Perturbation):
    modality = "image"

    def _prepare(self, x: Any, schema: Schema | None):
        if schema is not None:
            if schema.modality != "image":
                raise InputError(f"{self.name} is an image perturbation but the schema is for {schema.modality} data.")
            if schema.value_range is None:
                # infer the range like the base class does, keep the rest of the schema
                arr, inferred, restore = super()._prepare(x, None)
                schema = replace(schema, value_range=inferred.value_range)
                return arr, schema, lambda out: np.clip(out, *schema.value_range).astype(np.float32)
            lo, hi = schema.value_range
            if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
                raise InputError(
                    f"schema.value_range must be (lo, hi) with finite lo < hi; got {schema.value_range!r}. "
                    "Declare the images' range, e.g. (0, 1) or (0, 255)."
                )
        return super()._prepare(x, schema)

    def _apply(self, x: np.ndarray, severity: int, rng: np.random.Generator, schema: Schema) -> np.ndarray:
        lo, hi = (float(v) for v in schema.value_range)  # type: ignore[misc]
        unit = self._corrupt((x - lo) / (hi - lo), severity, rng)
        return (unit * (hi - lo) + lo).astype(np.float32)

    def _corrupt(self, x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
        """Corrupt float32 images scaled to [0, 1]; clipping is done by the caller."""
        raise NotImplementedError  # pragma: no cover


# -- pixel-wise ---------------------------------------------------------------------------------------
@register
class GaussianNoise(_Image):
    """Additive Gaussian noise, independent per pixel and channel: ``x + N(0, sigma)``.

    ``sigma`` is a fraction of the value range (ImageNet-C constants).

    ====================  =====  =====  =====  =====  =====
    severity                1      2      3      4      5
    ====================  =====  =====  =====  =====  =====
    sigma / range          0.08   0.12   0.18   0.26   0.38
    ====================  =====  =====  =====  =====  =====

    Examples
    --------
    >>> import numpy as np
    >>> from stalwart import perturb
    >>> x = np.full((2, 3, 8, 8), 0.5, dtype=np.float32)
    >>> out = perturb.get("gaussian_noise").apply(x, severity=1, rng=0)
    >>> out.shape, out.dtype.name
    ((2, 3, 8, 8), 'float32')
    """

    name = "gaussian_noise"
    description = "Additive Gaussian pixel noise (ImageNet-C)"
    levels: tuple[float, ...] = (0.08, 0.12, 0.18, 0.26, 0.38)

    def __init__(self) -> None:
        pass

    def _corrupt(self, x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
        return x + np.float32(self.levels[severity - 1]) * rng.standard_normal(x.shape, dtype=np.float32)


@register
class ShotNoise(_Image):
    """Photon (Poisson) noise: ``Poisson(lam * x) / lam`` with ``x`` scaled to [0, 1].

    ``lam`` is the number of photons a full-scale pixel collects; fewer photons, more noise (the
    noise std at value ``x`` is ``sqrt(x / lam)``). ImageNet-C constants.

    ====================  =====  =====  =====  =====  =====
    severity                1      2      3      4      5
    ====================  =====  =====  =====  =====  =====
    lam (photons)          60     25     12     5      3
    ====================  =====  =====  =====  =====  =====
    """

    name = "shot_noise"
    description = "Poisson photon noise (ImageNet-C)"
    levels: tuple[float, ...] = (60.0, 25.0, 12.0, 5.0, 3.0)

    def __init__(self) -> None:
        pass

    def _corrupt(self, x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
        lam = self.levels[severity - 1]
        counts = rng.poisson(np.clip(x, 0.0, 1.0).astype(np.float64) * lam)
        return (counts / lam).astype(np.float32)


@register
class Brightness(_Image):
    """A constant shift of every pixel by ``c`` times the value range (then clipped).

    ImageNet-C shifts the HSV value channel by the same constants; a plain shift keeps the
    operation defined for any number of channels.

    ====================  =====  =====  =====  =====  =====
    severity                1      2      3      4      5
    ====================  =====  =====  =====  =====  =====
    c (shift / range)      0.1    0.2    0.3    0.4    0.5
    ====================  =====  =====  =====  =====  =====

    Parameters
    ----------
    direction : {"up", "down", "random"}, default "up"
        Brighter, darker, or a random choice per image.
    """

    name = "brightness"
    description = "Brightness shift by a fraction of the value range (ImageNet-C)"
    levels: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5)

    def __init__(self, *, direction: str = "up") -> None:
        self.direction = check_choice(self, "direction", direction, ("up", "down", "random"))

    def _corrupt(self, x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
        if self.direction == "random":
            sign = np.where(rng.random(x.shape[0]) < 0.5, -1.0, 1.0).astype(np.float32)[:, None, None, None]
        else:
            sign = np.float32(1.0 if self.direction == "up" else -1.0)
        return x + sign * np.float32(self.levels[severity - 1])


@register
class Contrast(_Image):
    """Contrast reduced around each image's mean: ``(x - mean) * c + mean``.

    The mean is taken over all channels and pixels of the image (ImageNet-C constants).

    ====================  =====  =====  =====  =====  =====
    severity                1      2      3      4      5
    ====================  =====  =====  =====  =====  =====
    c (contrast kept)      0.4    0.3    0.2    0.1    0.05
    ====================  =====  =====  =====  =====  =====
    """

    name = "contrast"
    description = "Contrast reduced towards the image mean (ImageNet-C)"
    levels: tuple[float, ...] = (0.4, 0.3, 0.2, 0.1, 0.05)

    def __init__(self) -> None:
        pass

    def _corrupt(self, x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
        mean = x.mean(axis=(1, 2, 3), keepdims=True, dtype=np.float64).astype(np.float32)
        return (x - mean) * np.float32(self.levels[severity - 1]) + mean


# -- filters and resampling -------------------------------------------------------------------------
def _to_torch(x: np.ndarray):
    import torch

    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))


def _separable(x: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Apply one linear map along H and another along W: ``rows @ x @ cols.T`` per image and channel."""
    import torch

    with torch.no_grad():
        out = torch.matmul(torch.matmul(torch.from_numpy(rows), _to_torch(x)), torch.from_numpy(cols).T)
    return out.numpy()


def _blur_matrix(size: int, sigma: float) -> np.ndarray:
    """Gaussian convolution along one axis with reflect padding (``dcb|abcd|cba``), as a matrix.

    The kernel is cut at ``3 sigma`` or at ``size - 1`` pixels, whichever is shorter (reflection
    needs a radius below the side), and renormalised. As a banded matrix product the convolution
    runs much faster on CPU than ``conv2d`` with a one-channel kernel.
    """
    radius = min(math.ceil(3.0 * sigma), size - 1)
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    kernel /= kernel.sum()
    src = np.arange(size)[:, None] + offsets[None, :]
    src = np.abs(src)  # reflect at the start ...
    src = np.where(src > size - 1, 2 * (size - 1) - src, src)  # ... and at the end
    matrix = np.zeros((size, size))
    np.add.at(matrix, (np.repeat(np.arange(size), offsets.size), src.ravel()), np.tile(kernel, size))
    return matrix.astype(np.float32)


def _warp(x: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Bilinear resampling by per-image affine maps (output -> input, normalised coordinates).

    Pixels that map outside the image take the nearest edge value (``padding_mode="border"``).
    """
    import torch
    import torch.nn.functional as F

    t = _to_torch(x)
    with torch.no_grad():
        grid = F.affine_grid(torch.from_numpy(theta.astype(np.float32)), list(t.shape), align_corners=False)
        out = F.grid_sample(t, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out.numpy()


@register
class GaussianBlur(_Image):
    """Gaussian blur with standard deviation ``sigma`` pixels (separable, reflect padding, torch).

    ``sigma`` depends on the image side ``min(H, W)``: the CIFAR-10-C constants at 32 px, the
    ImageNet-C ones at 224 px, geometric in between and beyond, proportional below 32 px.

    ====================  =====  =====  =====  =====  =====
    severity                1      2      3      4      5
    ====================  =====  =====  =====  =====  =====
    sigma at 32 px         0.4    0.6    0.7    0.8    1.0
    sigma at 224 px        1      2      3      4      6
    ====================  =====  =====  =====  =====  =====
    """

    name = "gaussian_blur"
    description = "Gaussian blur, sigma scaled to the image size (ImageNet-C)"
    small: tuple[float, ...] = (0.4, 0.6, 0.7, 0.8, 1.0)
    large: tuple[float, ...] = (1.0, 2.0, 3.0, 4.0, 6.0)

    def __init__(self) -> None:
        pass

    def sigma(self, severity: int, size: int) -> float:
        """Blur sigma in pixels at ``severity`` for images whose shorter side is ``size``."""
        return float(_by_size(self.small, self.large, size, lengths=True)[severity - 1])

    def _corrupt(self, x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
        _, _, h, w = x.shape
        sigma = self.sigma(severity, min(h, w))
        return _separable(x, _blur_matrix(h, sigma), _blur_matrix(w, sigma))


@register
class Rotation(_Image):
    """Rotation about the image centre by a fixed angle, clockwise or not at random per image.

    Bilinear interpolation; corners uncovered by the rotated image take the nearest edge value.
    Angles span the range used for natural rotation robustness (Engstrom et al., 2019, rotate
    up to 30 degrees).

    ====================  =====  =====  =====  =====  =====
    severity                1      2      3      4      5
    ====================  =====  =====  =====  =====  =====
    degrees                5      10     15     20     30
    ====================  =====  =====  =====  =====  =====
    """

    name = "rotation"
    description = "Rotation by a severity-graded angle with a random sign"
    levels: tuple[float, ...] = (5.0, 10.0, 15.0, 20.0, 30.0)

    def __init__(self) -> None:
        pass

    def _corrupt(self, x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
        n, _, h, w = x.shape
        sign = np.where(rng.random(n) < 0.5, -1.0, 1.0)
        angle = np.deg2rad(self.levels[severity - 1]) * sign
        cos, sin = np.cos(angle), np.sin(angle)
        # rotate in pixel units; normalised coordinates scale x by 2/W and y by 2/H
        theta = np.zeros((n, 2, 3))
        theta[:, 0, 0], theta[:, 0, 1] = cos, -sin * h / w
        theta[:, 1, 0], theta[:, 1, 1] = sin * w / h, cos
        return _warp(x, theta)


@register
class Translation(_Image):
    """A shift by a fraction of the image size in a random direction per image.

    The shift is ``c * W`` horizontally times ``cos(phi)`` and ``c * H`` vertically times
    ``sin(phi)``, ``phi`` uniform; bilinear for sub-pixel shifts, uncovered pixels take the
    nearest edge value.

    ====================  =====  =====  =====  =====  =====
    severity                1      2      3      4      5
    ====================  =====  =====  =====  =====  =====
    c (shift / size)       0.02   0.05   0.1    0.15   0.2
    ====================  =====  =====  =====  =====  =====
    """

    name = "translation"
    description = "Shift by a fraction of the image size in a random direction"
    levels: tuple[float, ...] = (0.02, 0.05, 0.1, 0.15, 0.2)

    def __init__(self) -> None:
        pass

    def _corrupt(self, x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
        n = x.shape[0]
        phi = rng.uniform(0.0, 2.0 * np.pi, n)
        c = self.levels[severity - 1]
        theta = np.zeros((n, 2, 3))
        theta[:, 0, 0] = theta[:, 1, 1] = 1.0
        # output(p) = input(p - shift); a shift of c * W pixels is 2c in normalised units
        theta[:, 0, 2] = -2.0 * c * np.cos(phi)
        theta[:, 1, 2] = -2.0 * c * np.sin(phi)
        return _warp(x, theta)


@register
class Pixelation(_Image):
    """Downsampling by exact area averaging to ``factor`` times the size, then nearest upsampling.

    The factor depends on the image side ``min(H, W)``: the CIFAR-10-C constants at 32 px and
    below, the ImageNet-C ones at 224 px and above, geometric in between.

    ====================  =====  =====  =====  =====  =====
    severity                1      2      3      4      5
    ====================  =====  =====  =====  =====  =====
    factor at 32 px        0.95   0.9    0.85   0.75   0.65
    factor at 224 px       0.6    0.5    0.4    0.3    0.25
    ====================  =====  =====  =====  =====  =====
    """

    name = "pixelation"
    description = "Area downsampling then nearest upsampling (ImageNet-C)"
    small: tuple[float, ...] = (0.95, 0.9, 0.85, 0.75, 0.65)
    large: tuple[float, ...] = (0.6, 0.5, 0.4, 0.3, 0.25)

    def __init__(self) -> None:
        pass

    def factor(self, severity: int, size: int) -> float:
        """Resize factor at ``severity`` for images whose shorter side is ``size``."""
        return float(_by_size(self.small, self.large, size, lengths=False)[severity - 1])

    def _corrupt(self, x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
        _, _, h, w = x.shape
        f = self.factor(severity, min(h, w))
        return _separable(x, _pixelate_matrix(h, max(1, round(h * f))), _pixelate_matrix(w, max(1, round(w * f))))


def _pixelate_matrix(size: int, cells: int) -> np.ndarray:
    """The linear map of one axis: exact box (area) downsampling to ``cells``, then nearest upsampling.

    Cell ``k`` covers ``[k, k + 1) * size / cells``; each input pixel contributes its overlap with
    the cell (PIL's BOX filter; torch's ``area`` mode uses whole pixels instead, which shifts
    content when the factor is not an integer). Each output pixel takes the cell its centre lies in.
    """
    width = size / cells
    edges = np.arange(cells + 1) * width
    pixel = np.arange(size)
    overlap = np.minimum(edges[1:, None], pixel[None] + 1.0) - np.maximum(edges[:-1, None], pixel[None])
    down = np.clip(overlap, 0.0, None) / width  # cells x size, rows sum to 1
    cell_of = np.minimum(((pixel + 0.5) / width).astype(np.int64), cells - 1)
    return down[cell_of].astype(np.float32)  # size x size
