"""Digital corruptions of ImageNet-C: saturation, elastic distortion and JPEG compression."""

from __future__ import annotations

import functools
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


_RGB_TO_YCC = ((0.299, 0.587, 0.114), (-0.168736, -0.331264, 0.5), (0.5, -0.418688, -0.081312))  # JFIF


def jpeg_tables(quality: int) -> tuple[np.ndarray, np.ndarray]:
    """The IJG (libjpeg, Pillow) luma and chroma quantisation tables at ``quality`` 1..100."""
    scale = 5000 / quality if quality < 50 else 200 - 2 * quality
    return tuple(np.clip((base * scale + 50) // 100, 1, 255) for base in (_LUMA, _CHROMA))  # type: ignore[return-value]


def _dct_matrix() -> np.ndarray:
    k = np.arange(8)
    d = np.cos((2 * k[None, :] + 1) * k[:, None] * math.pi / 16) * math.sqrt(2 / 8)
    d[0] /= math.sqrt(2)
    return d  # orthonormal DCT-II: JPEG's 8 x 8 transform is d @ block @ d.T


@functools.lru_cache(maxsize=32)
def _block_codec(table_bytes: bytes) -> tuple[Tensor, Tensor, Tensor]:
    """The 8 x 8 DCT, quantisation steps and level shift of one table as 64 x 64 matrices on flat blocks.

    For a block flattened row-major, ``d @ B @ d.T`` is ``kron(d, d) @ vec(B)``. The division by the
    table is folded into the forward matrix and the multiplication into the inverse one, and the
    level shift by 128 into a bias (it only moves the DC coefficient), so coding every block of a
    batch is ``round(blocks @ fwd - shift) @ inv + 128``: two GEMMs and a rounding.
    """
    q = np.frombuffer(table_bytes, dtype=np.int64).astype(np.float64)
    k = np.kron(_dct_matrix(), _dct_matrix())  # 64 x 64, orthonormal
    fwd = k.T / q[None, :]
    shift = 128.0 * k.sum(axis=1) / q  # kron(d, d) @ (128 * ones): 1024 at DC, 0 elsewhere
    inv = k * q[:, None]
    return tuple(torch.from_numpy(a.astype(np.float32)) for a in (fwd, shift, inv))  # type: ignore[return-value]


def _quantise(planes: Tensor, table: np.ndarray) -> Tensor:
    """Level shift, 8 x 8 DCT, quantise and dequantise, inverse DCT of planes B x H x W (H, W % 8 == 0).

    Returns a B x H/8 x 8 x W/8 x 8 view of the coded planes in block order (no copy back: callers
    that write it into a B x H x W buffer view that the same way).
    """
    b, h, w = planes.shape
    fwd, shift, inv = (t.to(planes.device) for t in _block_codec(np.ascontiguousarray(table, np.int64).tobytes()))
    blocks = planes.reshape(b, h // 8, 8, w // 8, 8).transpose(2, 3).reshape(-1, 64)
    coef = torch.round_(torch.addmm(shift, blocks, fwd, alpha=1.0, beta=-1.0))
    out = torch.addmm(torch.full((1,), 128.0, device=planes.device), coef, inv)
    return out.view(b, h // 8, w // 8, 8, 8).transpose(2, 3)


def _upsample2(c: Tensor) -> Tensor:
    """libjpeg's "fancy" 2x upsampling of the last two axes: 3/4 of the nearest sample, 1/4 of the
    next nearest, edges repeated (``F.interpolate(bilinear, align_corners=False)``, without its
    slow CPU kernel)."""
    for dim in (-1, -2):
        n = c.shape[dim]
        out = c.new_empty(*c.shape[:dim], n, 2, *c.shape[dim:][1:])  # sample i -> rows 2i, 2i + 1
        even, odd = out.select(dim, 0), out.select(dim, 1)
        c3 = c * 0.75
        torch.add(c3.narrow(dim, 1, n - 1), c.narrow(dim, 0, n - 1), alpha=0.25, out=even.narrow(dim, 1, n - 1))
        torch.add(c3.narrow(dim, 0, n - 1), c.narrow(dim, 1, n - 1), alpha=0.25, out=odd.narrow(dim, 0, n - 1))
        even.narrow(dim, 0, 1).copy_(c.narrow(dim, 0, 1))
        odd.narrow(dim, n - 1, 1).copy_(c.narrow(dim, n - 1, 1))
        c = out.flatten(dim - 1, dim) if dim == -1 else out.flatten(-3, -2)
    return c


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
        v = _pad_to(torch.round_(x.clamp(0.0, 1.0).mul_(255.0)), 8 if c != 3 else 16)
        hh, ww = v.shape[-2:]
        blocked = (hh // 8, 8, ww // 8, 8)  # H x W split into 8 x 8 blocks, a view of any plane
        if c != 3:  # greyscale: each channel coded on its own as luma
            coded = _quantise(v.reshape(n * c, hh, ww), luma_q)
            v.view(n * c, *blocked).copy_(coded)
        else:
            # in-place into one buffer: fresh full-size tensors cost more than the arithmetic here
            ycc = torch.empty_like(v)
            r, g, b = v.unbind(1)
            for out, (kr, kg, kb), shift in zip(ycc.unbind(1), _RGB_TO_YCC, (0.0, 128.0, 128.0)):
                torch.mul(r, kr, out=out).add_(g, alpha=kg).add_(b, alpha=kb).add_(shift).round_()
            # 4:2:0: means of 2 x 2 blocks, rounded like libjpeg's integer downsampling; strided adds
            # beat sum() and avg_pool2d many times on CPU
            pairs = ycc[:, 1:].reshape(n, 2, hh // 2, 2, ww)
            rows = pairs[:, :, :, 0] + pairs[:, :, :, 1]
            rows = rows.view(n, 2, hh // 2, ww // 2, 2)
            chroma = torch.round_(rows[..., 0].add(rows[..., 1]).mul_(0.25))
            y = _quantise(ycc[:, 0], luma_q).reshape(n, hh, ww)  # one copy back: strided maths is slow
            chroma = _quantise(chroma.view(n * 2, hh // 2, ww // 2), chroma_q)
            chroma = _upsample2(chroma.reshape(n * 2, hh // 2, ww // 2).sub_(128.0))
            cb, cr = chroma.view(n, 2, hh, ww).unbind(1)
            vr, vg, vb = v.unbind(1)  # v is no longer needed: reuse it for RGB
            torch.add(y, cr, alpha=1.402, out=vr)
            torch.add(y, cb, alpha=-0.344136, out=vg).add_(cr, alpha=-0.714136)
            torch.add(y, cb, alpha=1.772, out=vb)
        return v[..., :h, :w].clamp_(0.0, 255.0).round_().div_(255.0)
