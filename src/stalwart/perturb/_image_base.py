"""Shared machinery of the image corruptions: the base class, size-scaled tables and torch kernels.

Every corruption works on float32 torch tensors N x C x H x W scaled to [0, 1], on the device the
images live on. Random draws come from the caller's numpy ``Generator`` and are moved to that
device, so a seed gives the same corruption on CPU and GPU.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from dataclasses import replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from stalwart._validation import check_image_layout
from stalwart.data.schema import Schema
from stalwart.errors import InputError
from stalwart.perturb.base import Perturbation

Tensor = torch.Tensor


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
    with np.errstate(divide="ignore", invalid="ignore"):
        out = s * (big / s) ** t
    return np.where(s == 0, big * t, out)  # a zero at 32 px grows linearly instead


def _size_t(size: int) -> float:
    """Where ``size`` lies between 32 px (0) and 224 px (1), clamped; picks a table for integer parameters."""
    return min(max(math.log(size / 32.0) / math.log(7.0), 0.0), 1.0)


class _Image(Perturbation):
    modality = "image"

    def _prepare(self, x: Any, schema: Schema | None):
        if schema is not None:
            if schema.modality != "image":
                raise InputError(f"{self.name} is an image perturbation but the schema is for {schema.modality} "
                                 "data; pass the images' own schema, or none to infer it.")
            if schema.value_range is not None:
                lo, hi = schema.value_range
                if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
                    raise InputError(
                        f"schema.value_range must be (lo, hi) with finite lo < hi; got {schema.value_range!r}. "
                        "Declare the images' range, e.g. (0, 1) or (0, 255)."
                    )
        if isinstance(x, torch.Tensor):
            return self._prepare_tensor(x, schema)
        if schema is not None and schema.value_range is None:
            # infer the range like the base class does, keep the rest of the schema
            arr, inferred, _ = super()._prepare(x, None)
            schema = replace(schema, value_range=inferred.value_range)
            return arr, schema, lambda out: np.clip(out, *schema.value_range).astype(np.float32)
        return super()._prepare(x, schema)

    def _prepare_tensor(self, x: Tensor, schema: Schema | None):
        """Tensors stay tensors on their device: validated like arrays, returned float32 and clamped."""
        if x.ndim != 4:
            raise InputError(
                f"{self.name} needs images as N x C x H x W; got shape {tuple(x.shape)}. "
                "Add a channel axis with x[:, None] for grey images."
            )
        if x.shape[0] == 0:
            raise InputError("x is empty; pass at least one image.")
        if schema is None or schema.shape is None or tuple(schema.shape) != tuple(x.shape[1:]):
            check_image_layout(tuple(x.shape), tensor=True)
        # a contiguous copy: tensors permuted from N x H x W x C arrays (the usual numpy-to-torch path)
        # are strided views, which reshaping kernels (JPEG's blocks) cannot take
        t = x.detach().to(torch.float32).clone(memory_format=torch.contiguous_format)
        if not bool(torch.isfinite(t).all()):
            raise InputError("images contain NaN or infinite values; clean them first.")
        if schema is None or schema.value_range is None:
            hi = 1.0 if float(t.max()) <= 1.0 else 255.0
            schema = (Schema("image", value_range=(0.0, hi), shape=tuple(t.shape[1:])) if schema is None
                      else replace(schema, value_range=(0.0, hi)))
        lo, hi = (float(v) for v in schema.value_range)  # type: ignore[misc]
        return t, schema, lambda out: out.clamp(lo, hi)

    def _apply(self, x: Any, severity: int, rng: np.random.Generator, schema: Schema) -> Any:
        lo, hi = (float(v) for v in schema.value_range)  # type: ignore[misc]
        t = x if isinstance(x, torch.Tensor) else torch.from_numpy(x)
        with torch.no_grad():
            unit = self._corrupt((t - lo) / (hi - lo), severity, rng)
            out = (unit * (hi - lo) + lo).to(torch.float32)
        return out if isinstance(x, torch.Tensor) else out.numpy()

    @abstractmethod
    def _corrupt(self, x: Tensor, severity: int, rng: np.random.Generator) -> Tensor:
        """Corrupt float32 images scaled to [0, 1]; clipping is done by the caller."""


# -- random draws ---------------------------------------------------------------------------------------
# Bulk draws use torch's CPU generator (several times faster than numpy's), seeded from the caller's
# numpy Generator and moved to the images' device: the same seed gives the same numbers everywhere.
def _torch_gen(rng: np.random.Generator) -> torch.Generator:
    return torch.Generator().manual_seed(int(rng.integers(0, 2**63 - 1)))


def _tensor(a: np.ndarray, like: Tensor) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(like.device)


def _uniform(rng: np.random.Generator, shape: tuple[int, ...], like: Tensor, low: float = 0.0,
             high: float = 1.0) -> Tensor:
    u = torch.rand(shape, generator=_torch_gen(rng))
    return (u * (high - low) + low if (low, high) != (0.0, 1.0) else u).to(like.device)


def _normal(rng: np.random.Generator, shape: tuple[int, ...], like: Tensor) -> Tensor:
    return torch.randn(shape, generator=_torch_gen(rng)).to(like.device)


# -- linear filters -------------------------------------------------------------------------------------
def _separable(x: Tensor, rows: np.ndarray, cols: np.ndarray) -> Tensor:
    """Apply one linear map along H and another along W: ``rows @ x @ cols.T`` per image and channel."""
    return torch.matmul(torch.matmul(_tensor(rows, x), x), _tensor(cols, x).T)


def _reflect(index: np.ndarray, size: int) -> np.ndarray:
    """Fold indices into ``[0, size)`` by mirror reflection without repeating the edge (``dcb|abcd|cba``).

    Works for offsets of any length (a kernel wider than the image folds more than once).
    """
    if size == 1:
        return np.zeros_like(index)
    period = 2 * (size - 1)
    index = np.mod(index, period)
    return np.where(index > size - 1, period - index, index)


def _blur_matrix(size: int, sigma: float) -> np.ndarray:
    """Gaussian convolution along one axis with reflect padding (``dcb|abcd|cba``), as a matrix.

    The kernel is cut at ``3 sigma`` and renormalised. As a banded matrix product the convolution
    runs much faster on CPU than ``conv2d`` with a one-channel kernel.
    """
    if sigma <= 0:
        return np.eye(size, dtype=np.float32)
    radius = max(1, math.ceil(3.0 * sigma))
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    kernel /= kernel.sum()
    src = _reflect(np.arange(size)[:, None] + offsets[None, :], size)
    matrix = np.zeros((size, size))
    np.add.at(matrix, (np.repeat(np.arange(size), offsets.size), src.ravel()), np.tile(kernel, size))
    return matrix.astype(np.float32)


def _gaussian(x: Tensor, sigma: float) -> Tensor:
    """Gaussian blur of the last two axes with reflect padding."""
    h, w = x.shape[-2:]
    return _separable(x, _blur_matrix(h, sigma), _blur_matrix(w, sigma))


def _filter2d(x: Tensor, kernel: np.ndarray) -> Tensor:
    """Correlate every image and channel with one 2-D ``kernel`` (odd sides), reflect padding."""
    n, c, h, w = x.shape
    kh, kw = kernel.shape
    rows = _reflect(np.arange(-(kh // 2), h + kh // 2), h)
    cols = _reflect(np.arange(-(kw // 2), w + kw // 2), w)
    dev = x.device
    padded = x[:, :, torch.from_numpy(rows).to(dev)][..., torch.from_numpy(cols).to(dev)]
    # a sum of shifted copies: for the small, partly empty kernels here it beats a one-channel conv2d
    # on CPU by an order of magnitude
    out = torch.zeros_like(x)
    for i, j in zip(*np.nonzero(kernel)):
        out += float(kernel[i, j]) * padded[:, :, i:i + h, j:j + w]
    return out


def _warp(x: Tensor, theta: np.ndarray, padding: str = "border") -> Tensor:
    """Bilinear resampling by per-image affine maps (output -> input, normalised coordinates).

    Pixels that map outside the image take the nearest edge value (``padding="border"``) or their
    mirror image (``"reflection"``).
    """
    grid = F.affine_grid(_tensor(theta, x), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode=padding, align_corners=False)


def _pixel_grid(n: int, h: int, w: int, like: Tensor) -> tuple[Tensor, Tensor]:
    """Pixel-centre coordinates as normalised ``grid_sample`` units (``align_corners=False``)."""
    ys = (torch.arange(h, device=like.device, dtype=torch.float32) + 0.5) * (2.0 / h) - 1.0
    xs = (torch.arange(w, device=like.device, dtype=torch.float32) + 0.5) * (2.0 / w) - 1.0
    return ys[None, :, None].expand(n, h, w), xs[None, None, :].expand(n, h, w)


def _shift_gather(x: Tensor, dy: Tensor, dx: Tensor) -> Tensor:
    """``out[n, c, i, j] = x[n, c, clamp(i + dy[n, i, j]), clamp(j + dx[n, i, j])]`` (integer offsets)."""
    n, c, h, w = x.shape
    i = torch.arange(h, device=x.device)[None, :, None]
    j = torch.arange(w, device=x.device)[None, None, :]
    src = (i + dy).clamp_(0, h - 1) * w + (j + dx).clamp_(0, w - 1)  # n x h x w
    flat = x.reshape(n, c, h * w)
    return flat.gather(2, src.reshape(n, 1, h * w).expand(n, c, h * w)).reshape(n, c, h, w)
