"""Digital corruptions of ImageNet-C: saturation, elastic distortion and JPEG compression."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from stalwart.errors import InputError
from stalwart.perturb._image_base import (
    Tensor,
    _blur_matrix,
    _by_size,
    _Image,
    _pixel_grid,
    _separable,
    _uniform,
)
from stalwart.perturb.base import register

__all__ = ["Saturate", "ElasticTransform", "JpegCompression", "jpeg_tables"]


@register
class Saturate(_Image):
    """HSV saturation scaled and shifted: ``s' = clip(s * a + b, 0, 1)``, hue and value kept.

    With ``V = max`` and ``S = (max - min) / max`` over the channels, every channel is
    ``V - (V - x) * S' / S``, the exact HSV round trip without computing the hue. Grey pixels
    (``S = 0``) have no hue and stay grey; ImageNet-C's ``skimage`` round trip paints them red at
    severities 4-5 (hue 0). ImageNet-C constants at every size; severities 1-2 wash colours out,
    3-5 exaggerate them. Needs RGB images (3 channels). Deterministic.

    ====================  =====  =====  =====  =====  =====
    severity                1      2      3      4      5
    ====================  =====  =====  =====  =====  =====
    a (scale)              0.3    0.1    2      5      20
    b (shift)              0      0      0      0.1    0.2
    ====================  =====  =====  =====  =====  =====
    """

    name = "saturate"
    description = "HSV saturation change (ImageNet-C); RGB images only"
    levels: tuple[tuple[float, float], ...] = ((0.3, 0.0), (0.1, 0.0), (2.0, 0.0), (5.0, 0.1), (20.0, 0.2))

    def __init__(self) -> None:
        pass

    def _corrupt(self, x: Tensor, severity: int, rng: np.random.Generator) -> Tensor:
        if x.shape[1] != 3:
            raise InputError(
                f"saturate needs 3-channel images (RGB); got {x.shape[1]} channel(s). "
                "Use another colour corruption (contrast, brightness) for grey images."
            )
        a, b = self.levels[severity - 1]
        v = x.amax(dim=1, keepdim=True)
        s = (v - x.amin(dim=1, keepdim=True)) / v.clamp_min(1e-12)
        coloured = s > 1e-6
        ratio = (s * a + b).clamp(0.0, 1.0) / torch.where(coloured, s, torch.ones_like(s))
        return torch.where(coloured, v - (v - x) * ratio, x)


@register
class ElasticTransform(_Image):
    """Elastic distortion: every pixel moves by a smooth random displacement field.

    Per image and axis, uniform noise in ``[-m, m]`` (``m = 0.005 H`` pixels) is blurred by a
    Gaussian of ``0.01 H`` (rows) and ``0.01 W`` (columns) pixels and multiplied by ``alpha``; the
    image is resampled there (bilinear, mirrored at the borders). This is the size-relative form
    of ``imagecorruptions`` (Michaelis et al., 2019). ImageNet-C's own table adds a random affine
    map and falls in pixel change from severity 2 to 3 (CIFAR-10-C's from 1 on), so it is not used.
    The noise is the same at every severity (only scaled by ``alpha``).

    ====================  =====  =====  =====  =====  =====
    severity                1      2      3      4      5
    ====================  =====  =====  =====  =====  =====
    alpha                  12.5   16.25  21.25  25     30
    ====================  =====  =====  =====  =====  =====
    """

    name = "elastic_transform"
    description = "Smooth random displacement field (ImageNet-C / imagecorruptions)"
    levels: tuple[float, ...] = (12.5, 16.25, 21.25, 25.0, 30.0)

    def __init__(self) -> None:
        pass

    def _corrupt(self, x: Tensor, severity: int, rng: np.random.Generator) -> Tensor:
        n, _, h, w = x.shape
        reach = 0.005 * h * self.levels[severity - 1]
        field = _separable(_uniform(rng, (n, 2, h, w), x, -1.0, 1.0),
                           _blur_matrix(h, 0.01 * h), _blur_matrix(w, 0.01 * w)) * reach  # pixels
        ys, xs = _pixel_grid(n, h, w, x)
        grid = torch.stack([xs + field[:, 1] * (2.0 / w), ys + field[:, 0] * (2.0 / h)], dim=-1)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


# -- JPEG -----------------------------------------------------------------------------------------------
_LUMA = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99]).reshape(8, 8)
_CHROMA = np.array([
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99,
    47, 66, 99, 99, 99, 99, 99, 99] + [99] * 32).reshape(8, 8)


def jpeg_tables(quality: int) -> tuple[np.ndarray, np.ndarray]:
    """The IJG (libjpeg, Pillow) luma and chroma quantisation tables at ``quality`` 1..100."""
    scale = 5000 / quality if quality < 50 else 200 - 2 * quality
    return tuple(np.clip((base * scale + 50) // 100, 1, 255) for base in (_LUMA, _CHROMA))  # type: ignore[return-value]


def _dct_matrix() -> np.ndarray:
    k = np.arange(8)
    d = np.cos((2 * k[None, :] + 1) * k[:, None] * math.pi / 16) * math.sqrt(2 / 8)
    d[0] /= math.sqrt(2)
    return d  # orthonormal DCT-II: JPEG's 8 x 8 transform is d @ block @ d.T


def _quantise(planes: Tensor, table: np.ndarray) -> Tensor:
    """Level shift, 8 x 8 DCT, quantise and dequantise, inverse DCT of planes B x H x W (H, W % 8 == 0)."""
    b, h, w = planes.shape
    d = torch.from_numpy(_dct_matrix()).to(planes.device, torch.float32)
    q = torch.from_numpy(table).to(planes.device, torch.float32)
    blocks = (planes - 128.0).reshape(b, h // 8, 8, w // 8, 8).transpose(2, 3)
    coef = torch.round(d @ blocks @ d.T / q) * q
    return (d.T @ coef @ d).transpose(2, 3).reshape(b, h, w) + 128.0


def _pad_to(x: Tensor, multiple: int) -> Tensor:
    h, w = x.shape[-2:]
    pad = (0, -w % multiple, 0, -h % multiple)
    if pad == (0, 0, 0, 0):
        return x
    return F.pad(x, pad, mode="replicate")


@register
class JpegCompression(_Image):
    """Baseline JPEG at a severity-graded quality, in torch: the encoder's lossy steps exactly.

    8-bit rounding, RGB to YCbCr (JFIF), 4:2:0 chroma subsampling (2 x 2 means), 8 x 8 DCT,
    quantisation by the IJG tables at ``quality``, then the decoder's inverse DCT, triangular
    ("fancy") chroma upsampling and YCbCr to RGB, rounded to 8 bits. One-channel images are coded
    as greyscale (luma only). The entropy coding that follows quantisation is lossless and skipped,
    so this reproduces libjpeg (Pillow) up to its fixed-point rounding, on batches and on GPU.
    The quality is a ratio: CIFAR-10-C's at 32 px and below, ImageNet-C's at 224 px and above,
    geometric in between (rounded). Deterministic.

    ====================  =====  =====  =====  =====  =====
    severity                1      2      3      4      5
    ====================  =====  =====  =====  =====  =====
    quality at 32 px       80     65     58     50     40
    quality at 224 px      25     18     15     10     7
    ====================  =====  =====  =====  =====  =====
    """

    name = "jpeg_compression"
    description = "JPEG compression artefacts at a graded quality (ImageNet-C)"
    small: tuple[float, ...] = (80, 65, 58, 50, 40)
    large: tuple[float, ...] = (25, 18, 15, 10, 7)

    def __init__(self) -> None:
        pass

    def quality(self, severity: int, size: int) -> int:
        """JPEG quality at ``severity`` for images whose shorter side is ``size``."""
        return int(round(float(_by_size(self.small, self.large, size, lengths=False)[severity - 1])))

    def _corrupt(self, x: Tensor, severity: int, rng: np.random.Generator) -> Tensor:
        n, c, h, w = x.shape
        luma_q, chroma_q = jpeg_tables(self.quality(severity, min(h, w)))
        v = torch.round(x.clamp(0.0, 1.0) * 255.0)
        if c != 3:  # greyscale: each channel coded on its own as luma
            planes = _pad_to(v, 8).reshape(n * c, *_pad_to(v, 8).shape[-2:])
            out = _quantise(planes, luma_q).reshape(n, c, *planes.shape[-2:])
        else:
            r, g, b = _pad_to(v, 16).unbind(1)
            y = torch.round(0.299 * r + 0.587 * g + 0.114 * b)
            cb = torch.round(-0.168736 * r - 0.331264 * g + 0.5 * b + 128.0)
            cr = torch.round(0.5 * r - 0.418688 * g - 0.081312 * b + 128.0)
            chroma = torch.round(F.avg_pool2d(torch.stack([cb, cr], 1), 2))  # n x 2 x H/2 x W/2
            y = _quantise(y, luma_q)
            chroma = _quantise(chroma.reshape(-1, *chroma.shape[-2:]), chroma_q).reshape(chroma.shape)
            chroma = F.interpolate(chroma, scale_factor=2, mode="bilinear", align_corners=False) - 128.0
            cb, cr = chroma.unbind(1)
            out = torch.stack([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb], 1)
        return torch.round(out[..., :h, :w].clamp(0.0, 255.0)) / 255.0
