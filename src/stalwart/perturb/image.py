"""Natural corruptions of images: the ImageNet-C families that need no image assets, plus geometry.

Images are float arrays (or torch tensors, CPU or CUDA) N x C x H x W (any H, W; 1, 3 or more
channels) in the schema's ``value_range`` ``(lo, hi)``. Every corruption works on
``(x - lo) / (hi - lo)`` in torch, so its parameters mean the same for images in [0, 1] and in
[0, 255]; the base class clips the result to the range. Arrays come back as float32 arrays,
tensors as float32 tensors on their device.

Severities follow ImageNet-C (Hendrycks & Dietterich, "Benchmarking Neural Network Robustness to
Common Corruptions and Perturbations", ICLR 2019). Pixel-wise corruptions (noise, brightness,
contrast, saturation) use its constants as they are. Corruptions measured in pixels depend on the
image size: they interpolate between the CIFAR-10-C constants at 32 px and the ImageNet-C ones at
224 px, log-linearly in ``min(H, W)`` (see :func:`_by_size`); ``constants="imagenet"`` (or
``"cifar"``) fixes one published table at every size, for numbers comparable with ImageNet-C results.
Each class's docstring gives its table and says which source it follows; docs/corruptions.md
collects them. Rotation, translation, scale,
flip, crop and occlusion are not in ImageNet-C; their tables are given in each class.

Families: noise (``gaussian_noise``, ``shot_noise``, ``impulse_noise``, ``speckle_noise``), blur
(``gaussian_blur``, ``defocus_blur``, ``motion_blur``, ``zoom_blur``, ``glass_blur``), weather
(``fog``, ``brightness``), digital (``contrast``, ``saturate``, ``elastic_transform``,
``pixelation``, ``jpeg_compression``) and geometric (``rotation``, ``translation``, ``scale``,
``flip``, ``crop``, ``occlusion``).

Random draws do not depend on the severity: the same seed gives the same noise pattern (only
scaled), the same directions, positions and masks at every severity, so the change grows with it.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from stalwart._validation import check_choice
from stalwart.perturb._image_base import (
    ImagePerturbation,
    SizedImagePerturbation,
    Tensor,
    affine_warp,
    gaussian_filter,
    normal_noise,
    on_device_of,
    tensor_like,
)
from stalwart.perturb.base import register

__all__ = [
    "GaussianNoise", "ShotNoise", "Brightness", "Contrast", "GaussianBlur", "Rotation", "Translation",
    "Pixelation",
    # defined in the helper modules, registered on import below
    "ImpulseNoise", "SpeckleNoise", "DefocusBlur", "MotionBlur", "ZoomBlur", "GlassBlur", "Fog",
    "Saturate", "ElasticTransform", "JpegCompression", "Scale", "Flip", "Crop", "Occlusion",
]


# -- pixel-wise ---------------------------------------------------------------------------------------
@register
class GaussianNoise(ImagePerturbation):
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
    arrays = True

    def _corrupt(self, x: Tensor, severity: int, rng: np.random.Generator) -> Tensor:
        noise = normal_noise(rng, tuple(x.shape), x)
        noise *= self.levels[severity - 1]
        noise += x
        return noise


@register
class ShotNoise(ImagePerturbation):
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
    arrays = True

    def _corrupt(self, x: Tensor, severity: int, rng: np.random.Generator) -> Tensor:
        lam = self.levels[severity - 1]
        counts = poisson_counts(x, lam, rng)  # exact table sampler, ~10x numpy's (_image_noise)
        counts /= lam
        return counts


@register
class Brightness(ImagePerturbation):
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
    arrays = True

    def __init__(self, *, direction: str = "up") -> None:
        self.direction = check_choice(self, "direction", direction, ("up", "down", "random"))

    @property
    def _draws(self) -> bool:  # type: ignore[override]
        return self.direction == "random"

    def _corrupt(self, x: Tensor, severity: int, rng: np.random.Generator) -> Tensor:
        c = self.levels[severity - 1]
        if self.direction == "random":
            shift = np.where(rng.random(x.shape[0]) < 0.5, -c, c).astype(np.float32)[:, None, None, None]
            return x + (shift if isinstance(x, np.ndarray) else tensor_like(shift, x))
        return x + (c if self.direction == "up" else -c)


@register
class Contrast(ImagePerturbation):
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
    affine = True
    arrays = True
    _draws = False

    def _corrupt(self, x: Tensor, severity: int, rng: np.random.Generator | None) -> Tensor:
        c = self.levels[severity - 1]
        # (x - mean) c + mean in one pass over the images, the mean accumulated in float64
        if isinstance(x, np.ndarray):
            out = x * np.float32(c)
            out += (x.mean(axis=(1, 2, 3), keepdims=True, dtype=np.float64) * (1.0 - c)).astype(np.float32)
            return out
        mean = x.mean(dim=(1, 2, 3), keepdim=True, dtype=torch.float64)
        return x.mul(c).add_((mean * (1.0 - c)).to(torch.float32))


# -- filters and resampling -------------------------------------------------------------------------
@register
class GaussianBlur(SizedImagePerturbation):
    """Gaussian blur with standard deviation ``sigma`` pixels (separable, reflect padding, torch).

    ``sigma`` depends on the image side ``min(H, W)``: the CIFAR-10-C constants at 32 px, the
    ImageNet-C ones at 224 px, geometric in between and beyond, proportional below 32 px.

    ====================  =====  =====  =====  =====  =====
    severity                1      2      3      4      5
    ====================  =====  =====  =====  =====  =====
    sigma at 32 px         0.4    0.6    0.7    0.8    1.0
    sigma at 224 px        1      2      3      4      6
    ====================  =====  =====  =====  =====  =====

    Parameters
    ----------
    constants : {"auto", "imagenet", "cifar"}, default "auto"
        ``"auto"``: the table above, scaled to the image size. ``"imagenet"``: the 224 px row at every
        size (the published ImageNet-C constants, as imagecorruptions applies them), for numbers
        comparable with ImageNet-C results; ``"cifar"``: the 32 px row at every size.
    """

    name = "gaussian_blur"
    description = "Gaussian blur, sigma scaled to the image size (ImageNet-C)"
    small: tuple[float, ...] = (0.4, 0.6, 0.7, 0.8, 1.0)
    large: tuple[float, ...] = (1.0, 2.0, 3.0, 4.0, 6.0)
    affine = True
    _draws = False

    def sigma(self, severity: int, size: int) -> float:
        """Blur sigma in pixels at ``severity`` for images whose shorter side is ``size``."""
        return float(self._table(self.small, self.large, size, lengths=True)[severity - 1])

    def _corrupt(self, x: Tensor, severity: int, rng: np.random.Generator) -> Tensor:
        _, _, h, w = x.shape
        sigma = self.sigma(severity, min(h, w))
        return gaussian_filter(x, sigma)


@register
class Rotation(ImagePerturbation):
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
    affine = True

    def _corrupt(self, x: Tensor, severity: int, rng: np.random.Generator) -> Tensor:
        n, _, h, w = x.shape
        sign = np.where(rng.random(n) < 0.5, -1.0, 1.0)
        angle = np.deg2rad(self.levels[severity - 1]) * sign
        cos, sin = np.cos(angle), np.sin(angle)
        # rotate in pixel units; normalised coordinates scale x by 2/W and y by 2/H
        theta = np.zeros((n, 2, 3))
        theta[:, 0, 0], theta[:, 0, 1] = cos, -sin * h / w
        theta[:, 1, 0], theta[:, 1, 1] = sin * w / h, cos
        return affine_warp(x, theta)


@register
class Translation(ImagePerturbation):
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
    affine = True

    def _corrupt(self, x: Tensor, severity: int, rng: np.random.Generator) -> Tensor:
        n = x.shape[0]
        phi = rng.uniform(0.0, 2.0 * np.pi, n)
        c = self.levels[severity - 1]
        theta = np.zeros((n, 2, 3))
        theta[:, 0, 0] = theta[:, 1, 1] = 1.0
        # output(p) = input(p - shift); a shift of c * W pixels is 2c in normalised units
        theta[:, 0, 2] = -2.0 * c * np.cos(phi)
        theta[:, 1, 2] = -2.0 * c * np.sin(phi)
        return affine_warp(x, theta)


@register
class Pixelation(SizedImagePerturbation):
    """Downsampling by exact area averaging to ``factor`` times the size, then nearest upsampling.

    The factor depends on the image side ``min(H, W)``: the CIFAR-10-C constants at 32 px and
    below, the ImageNet-C ones at 224 px and above, geometric in between.

    ====================  =====  =====  =====  =====  =====
    severity                1      2      3      4      5
    ====================  =====  =====  =====  =====  =====
    factor at 32 px        0.95   0.9    0.85   0.75   0.65
    factor at 224 px       0.6    0.5    0.4    0.3    0.25
    ====================  =====  =====  =====  =====  =====

    The cell count is capped at ``side - severity`` (see :meth:`cells`), which changes nothing
    at 32 px and above and keeps small images coarsening with every severity. The *amount* of
    change is not strictly monotone on very small images: at non-integer ratios the cell grid
    aligns better with some sizes than others (8 px images change less at 5 cells than at 6).

    Parameters
    ----------
    constants : {"auto", "imagenet", "cifar"}, default "auto"
        ``"auto"``: the table above, scaled to the image size. ``"imagenet"``: the 224 px row at every
        size (the published ImageNet-C constants, as imagecorruptions applies them), for numbers
        comparable with ImageNet-C results; ``"cifar"``: the 32 px row at every size.
    """

    name = "pixelation"
    description = "Area downsampling then nearest upsampling (ImageNet-C)"
    small: tuple[float, ...] = (0.95, 0.9, 0.85, 0.75, 0.65)
    large: tuple[float, ...] = (0.6, 0.5, 0.4, 0.3, 0.25)
    affine = True
    arrays = True
    array_work = 1 << 18  # one RGB image up to ~295 px: the numpy taps below beat torch's index_select
    _draws = False

    def factor(self, severity: int, size: int) -> float:
        """Resize factor at ``severity`` for images whose shorter side is ``size``."""
        return float(self._table(self.small, self.large, size, lengths=False)[severity - 1])

    def cells(self, severity: int, size: int) -> int:
        """Cells along an axis of ``size`` pixels: ``round(size * factor)``, and at most
        ``size - severity`` so that on small images every severity coarsens more than the one
        before (on 8 px images rounding alone gives 8, 7, 7, 6, 5: severity 1 would change nothing)."""
        return max(1, min(round(size * self.factor(severity, size)), size - severity))

    def _corrupt(self, x: Tensor, severity: int, rng: np.random.Generator | None) -> Tensor:
        n, c, h, w = x.shape
        side = min(h, w)
        f = self.cells(severity, side) / side
        rows = _pixelate_maps(h, max(1, min(round(h * f), h - severity)))
        cols = _pixelate_maps(w, max(1, min(round(w * f), w - severity)))
        if isinstance(x, np.ndarray):
            if max(h, w) < _TAPS_FROM:  # small images: two products with the whole maps
                return np.matmul(rows[5], np.matmul(x, cols[6]))
            return _pixelate_array(x, _array_taps(h, rows[0].shape[0]), _array_taps(w, cols[0].shape[0]))
        if x.device.type == "cpu" and w >= _TAPS_FROM:  # CPU batches: the numpy route, an image or so at a time
            a, out = x.numpy(), torch.empty_like(x)
            taps = (_array_taps(h, rows[0].shape[0]), _array_taps(w, cols[0].shape[0]))
            per = max(1, _PIXELATE_CHUNK // (c * h * w))
            for i in range(0, n, per):
                out[i:i + per] = torch.from_numpy(_pixelate_array(a[i:i + per], *taps))
            return out
        return _pixelate_tensor(x, rows, cols)


def _pixelate_tensor(x: Tensor, rows: tuple, cols: tuple) -> Tensor:
    """Pixelation in torch by :func:`_pixelate_maps` (GPU batches, and narrow CPU ones)."""
    n, c, h, w = x.shape
    # cell means along H: each cell is a weighted sum of a few whole rows (copies of contiguous rows,
    # cheaper than a product with the mostly empty area matrix)
    y = _cell_means(x, rows)
    if w >= _TAPS_FROM:  # along W the same on the transposed rows, two small copies
        z = _cell_means(y.transpose(2, 3).contiguous(), cols).transpose(2, 3).contiguous()
    else:  # on narrow images one small matrix product
        z = torch.matmul(y.reshape(-1, w), on_device_of(cols[0], x).T).reshape(n, c, -1, cols[0].shape[0])
    if x.device.type == "cpu":  # numpy repeats runs along the last axis many times faster than torch
        return torch.from_numpy(np.repeat(np.repeat(z.numpy(), cols[4], axis=3), rows[4], axis=2))
    return z.index_select(3, on_device_of(cols[3], x)).index_select(2, on_device_of(rows[3], x))


_TAPS_FROM = 128  # pixels along W from which cell means by taps beat the product with the area matrix
# values per step of a CPU batch: one 224 px RGB image, whose intermediates stay in the core's cache; a whole
# batch's (24 images) spill to memory and take twice as long per image
_PIXELATE_CHUNK = 1 << 18


def _cell_means(x: Tensor, maps: tuple) -> Tensor:
    """Area means of cells along H (dim 2) by :func:`_pixelate_maps`' taps: a weighted sum of whole rows."""
    index, weight = maps[1], maps[2]
    y = x.index_select(2, on_device_of(index[0], x)).mul_(on_device_of(weight[0], x))
    for k in range(1, len(index)):
        y.addcmul_(x.index_select(2, on_device_of(index[k], x)), on_device_of(weight[k], x))
    return y


def _pixelate_array(x: np.ndarray, rows: tuple, cols: tuple) -> np.ndarray:
    """Pixelation of a numpy batch by :func:`_array_taps`: cell means down the rows (weighted sums of whole
    rows), the same along W on the transposed result, then the cells repeated: the torch path's steps and
    results, with numpy's faster row copies and repeats."""
    y = np.ascontiguousarray(_array_cell_means(x, rows).swapaxes(2, 3))  # n x c x W x cells
    z = np.repeat(_array_cell_means(y, cols), cols[2], axis=2)  # n x c x W x cells, W cells means
    return np.repeat(np.ascontiguousarray(z.swapaxes(2, 3)), rows[2], axis=2)


def _array_cell_means(x: np.ndarray, taps: tuple) -> np.ndarray:
    """:func:`_cell_means` on arrays: area means of cells along axis 2. The rows of each tap are gathered by
    numpy (``take`` copies whole rows several times faster than torch's ``index_select``) and weighted and
    summed by torch's ``addcmul_``, exactly as on the torch path (bit for bit)."""
    index, weight, _ = taps
    n, c, _, w = x.shape
    out = np.empty((n, c, len(index[0]), w), dtype=np.float32)
    np.take(x, index[0], axis=2, out=out, mode="clip")  # in range; "raise" would copy through a buffer
    y = torch.from_numpy(out).mul_(weight[0])
    rows = np.empty_like(out)
    tap = torch.from_numpy(rows)
    for k in range(1, len(index)):
        np.take(x, index[k], axis=2, out=rows, mode="clip")
        y.addcmul_(tap, weight[k])
    return out


@functools.lru_cache(maxsize=64)
def _array_taps(size: int, cells: int) -> tuple[tuple[np.ndarray, ...], tuple[Tensor, ...], np.ndarray]:
    """:func:`_pixelate_maps`' taps for arrays: per tap each cell's pixel (an array) and weight (the torch
    column, cells x 1), and how many pixels each cell covers."""
    maps = _pixelate_maps(size, cells)
    return tuple(i.numpy() for i in maps[1]), maps[2], maps[4]


@functools.lru_cache(maxsize=64)
def _pixelate_maps(size: int, cells: int) -> tuple[Tensor, tuple[Tensor, ...], tuple[Tensor, ...], Tensor,
                                                   np.ndarray, np.ndarray, np.ndarray]:
    """One axis of pixelation: exact box (area) downsampling to ``cells``, then nearest upsampling.

    Cell ``k`` covers ``[k, k + 1) * size / cells``; each input pixel contributes its overlap with
    the cell (torch's ``area`` mode uses whole pixels instead, which shifts content when the factor
    is not an integer). Each output pixel takes the cell its centre lies in. Returns the
    ``cells x size`` downsampling matrix; the same as taps (for tap ``t``, each cell's pixel and weight
    ``1 x 1``: ``down[k, index[t][k]] == weight[t][k, 0]``); each pixel's cell; how many pixels
    each cell covers; and the whole map, down then up (``size x size``), also transposed (contiguous).
    """
    width = size / cells
    edges = np.arange(cells + 1) * width
    pixel = np.arange(size)
    overlap = np.minimum(edges[1:, None], pixel[None] + 1.0) - np.maximum(edges[:-1, None], pixel[None])
    down = np.clip(overlap, 0.0, None) / width  # cells x size, rows sum to 1
    first = np.floor(edges[:-1]).astype(np.int64)
    taps = int(np.count_nonzero(down, axis=1).max())
    index = np.minimum(first[None, :] + np.arange(taps)[:, None], size - 1)  # taps x cells
    weight = np.where(first[None, :] + np.arange(taps)[:, None] < size, down[np.arange(cells)[None, :], index], 0.0)
    cell_of = np.minimum(((pixel + 0.5) / width).astype(np.int64), cells - 1)  # non-decreasing: runs
    return (torch.from_numpy(down.astype(np.float32)), tuple(torch.from_numpy(i) for i in index),
            tuple(torch.from_numpy(wt.astype(np.float32)[:, None]) for wt in weight), torch.from_numpy(cell_of),
            np.bincount(cell_of, minlength=cells), down[cell_of].astype(np.float32),
            np.ascontiguousarray(down[cell_of].T, dtype=np.float32))


# the other ImageNet-C families and the geometric set live in helper modules; importing them registers them
from stalwart.perturb._image_blur import DefocusBlur, GlassBlur, MotionBlur, ZoomBlur  # noqa: E402
from stalwart.perturb._image_digital import ElasticTransform, JpegCompression, Saturate  # noqa: E402
from stalwart.perturb._image_geometry import Crop, Flip, Occlusion, Scale  # noqa: E402
from stalwart.perturb._image_noise import ImpulseNoise, SpeckleNoise, poisson_counts  # noqa: E402
from stalwart.perturb._image_weather import Fog  # noqa: E402
